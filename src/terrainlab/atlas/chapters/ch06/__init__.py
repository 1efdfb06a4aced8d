"""Chapter 6 experiments, one module each."""
