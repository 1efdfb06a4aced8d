"""Chapter 7 experiments, one module each."""
