"""Chapter 4 experiments, one module each."""
