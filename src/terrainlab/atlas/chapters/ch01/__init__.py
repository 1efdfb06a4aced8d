"""Chapter 1 experiments, one module each."""
