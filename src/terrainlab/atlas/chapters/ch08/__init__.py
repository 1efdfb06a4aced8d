"""Chapter 8 experiments, one module each."""
