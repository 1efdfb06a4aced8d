"""Chapter 2 experiments (parameter space and representation space), one module each."""
