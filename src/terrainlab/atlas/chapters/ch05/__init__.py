"""Chapter 5 experiments, one module each."""
