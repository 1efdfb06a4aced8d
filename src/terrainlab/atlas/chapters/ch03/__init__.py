"""Chapter 3 experiments, one module each."""
