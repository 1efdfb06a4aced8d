"""Krylov linear algebra shared by every world, one small file per method.

Each method works on a *matrix-free* operator (a callable v ↦ Av on tensors) so the same code
serves a Hessian-vector product, the Jacobian of a DEQ map or the Newton matrix of an implicit step.
"""
