"""Chapter 10 experiments, one module each."""
