"""Chapter 11 experiments, one module each."""
