"""Implicit (backward) Euler: S' = S + η·F(S', t + η). Order 1, R(z) = 1/(1 − z).

A-stable: |R(z)| ≤ 1 on the whole left half-plane, so it never blows up on a stable linear problem
whatever η (Hairer & Wanner, *Solving ODEs II*, §IV.3). On a gradient field it is the proximal point
step S' = argmin L(x) + ‖x − S‖²/(2η) (Rockafellar 1976).

The implicit equation G(Y) = Y − S − η·F(Y) = 0 is solved per step by
- ``solver="newton"``: Newton with the per-state Jacobian of F by ``torch.func.jacrev`` (states are
  rows of the last dimension; suited to small state dimension), or
- ``solver="fixed_point"``: Y ← S + η·F(Y) (converges when η·Lip(F) < 1).
States whose inner solve does not reach ``tol`` within ``max_iter`` are counted in the step's
``inner_failures``; the rollout reports the total and never raises.
"""

from __future__ import annotations

import torch
from torch.func import jacrev, vmap

from .base import AbstractScheme, StepResult

_SOLVERS = ("newton", "fixed_point")


class ImplicitEuler(AbstractScheme):
    order = 1

    def __init__(self, solver: str = "newton", tol: float = 1e-10, max_iter: int = 50):
        if solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {solver!r}")
        if not tol > 0:
            raise ValueError(f"tol must be > 0, got {tol}")
        if not (isinstance(max_iter, int) and max_iter >= 1):
            raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
        self.solver, self.tol, self.max_iter = solver, tol, max_iter

    def R(self, z):
        return 1 / (1 - z)

    def __repr__(self) -> str:
        return f"ImplicitEuler(solver={self.solver!r}, tol={self.tol}, max_iter={self.max_iter})"

    def step(self, field, state, t, eta):
        if isinstance(state, tuple):
            raise ValueError("ImplicitEuler needs a single-tensor state")
        t1 = t + eta
        if self.solver == "fixed_point":
            return self._fixed_point(field, state, t1, eta)
        return self._newton(field, state, t1, eta)

    def _residual_scale(self, y):
        return self.tol * (1 + y.detach().abs().amax(dim=-1)) if y.ndim else self.tol * (1 + y.abs())

    def _fixed_point(self, field, s, t1, eta):
        y = s + eta * field(s, t1 - eta)  # explicit predictor
        evals = 1
        ok = torch.zeros(s.shape[:-1] if s.ndim else (), dtype=torch.bool, device=s.device)
        for _ in range(self.max_iter):
            y_new = s + eta * field(y, t1)
            evals += 1
            diff = (y_new - y).detach().abs()
            diff = diff.amax(dim=-1) if diff.ndim else diff
            ok = torch.isfinite(diff) & (diff <= self._residual_scale(y_new))
            y = y_new
            if bool(ok.all()):
                break
        return StepResult(y, evals, (~ok).sum())

    def _newton(self, field, s, t1, eta):
        shape = s.shape
        d = shape[-1] if s.ndim else 1
        flat_s = s.reshape(-1, d)

        if s.ndim <= 1:  # one state: hand the field its own shape
            def f_one(x):
                return field(x.reshape(shape), t1).reshape(d)
        else:  # rows of the last dimension are independent states
            def f_one(x):
                return field(x.unsqueeze(0), t1).squeeze(0)

        def f_batch(x):
            return field(x.reshape(shape), t1).reshape(-1, d)

        jac = vmap(jacrev(f_one))
        eye = torch.eye(d, dtype=s.dtype, device=s.device)
        y = flat_s + eta * f_batch(flat_s)  # explicit Euler predictor
        evals = 1
        ok = torch.zeros(flat_s.shape[0], dtype=torch.bool, device=s.device)
        for _ in range(self.max_iter):
            G = y - flat_s - eta * f_batch(y)
            J = eye - eta * jac(y)
            evals += 1 + d  # one residual and a Jacobian (d reverse passes)
            delta, info = torch.linalg.solve_ex(J, G.unsqueeze(-1))
            delta = delta.squeeze(-1)
            y = y - delta
            step = delta.detach().abs().amax(dim=-1)
            ok = (info == 0) & torch.isfinite(step) & (step <= self.tol * (1 + y.detach().abs().amax(dim=-1)))
            if bool(ok.all()):
                break
        return StepResult(y.reshape(shape), evals, (~ok).sum())
