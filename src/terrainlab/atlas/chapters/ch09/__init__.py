"""Chapter 9 experiments, one module each."""
