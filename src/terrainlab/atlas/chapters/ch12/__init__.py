"""Chapter 12 experiments, one module each."""
