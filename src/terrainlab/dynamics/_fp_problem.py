"""Set-up of a fixed-point search: the residual r(y) in working coordinates, and how a step lands.

Unknowns are y = s (Euclidean) or tangent coordinates y with s = c + B y (simplex). The residual is
r = F(s) for fields and r = T(s) − s for maps (its tangent part on the simplex), so both kinds are
zeros of one function. The problem also counts evaluations and holds the convergence test, the one
place the solver and the report read them from.
"""

from __future__ import annotations

import math

import torch

from ..core import project_simplex
from ._util import Coords, state_fn


class ResidualProblem:
    """r(y) for ``fn`` of ``kind`` ("field" | "map") at time t, in the coordinates ``co``.

    ``bound`` (Euclidean only) is the box |s|∞ ≤ bound trial points are clipped to; ``tol`` the
    requested residual tolerance (floored by rounding, see :meth:`tol_of`).
    """

    def __init__(self, fn, kind: str, co: Coords, *, t: float, tol: float, bound: float | None):
        self.g = state_fn(fn, t)
        self.kind, self.co, self.tol, self.bound = kind, co, tol, bound
        self.m = co.m
        self.n_fn = self.n_vjp = self.n_jvp = 0

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """r(y), differentiable (the Jacobian A = ∂r/∂y is taken through this)."""
        s = self.co.to_s(y)
        out = self.g(s)
        if not torch.is_tensor(out) or out.shape != s.shape:
            raise ValueError(f"fn must return a tensor with the state's shape {tuple(s.shape)}, got "
                             f"{tuple(out.shape) if torch.is_tensor(out) else type(out).__name__}")
        return self.co.tangent(out - s) if self.kind == "map" else self.co.tangent(out)

    def evaluate(self, y: torch.Tensor) -> torch.Tensor:
        """r(y) without a graph, counted as one batched evaluation."""
        self.n_fn += 1
        with torch.no_grad():
            return self(y)

    def tol_of(self, y: torch.Tensor) -> torch.Tensor:
        """Per-start tolerance max(tol, 10·eps·√m·(1 + ‖s‖∞)): no start is asked for a residual
        below what rounding of s itself allows."""
        eps = torch.finfo(y.dtype).eps
        return torch.clamp(10 * eps * math.sqrt(self.m) * (1 + self.co.to_s(y).abs().amax(-1)), min=self.tol)

    def land(self, y: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """y + δ, kept in the domain.

        Euclidean: clipped to the box when ``bound`` is set (projected Levenberg–Marquardt).
        Simplex: an interior start moves at most 95% of the way to the boundary along δ
        (fraction-to-boundary rule), a start already on the boundary that δ pushes out is projected
        back.
        """
        co = self.co
        if not co.simplex:
            return y + delta if self.bound is None else (y + delta).clamp(-self.bound, self.bound)
        p, dp = co.to_s(y), delta @ co.B.T
        neg = dp < 0
        ratio = torch.where(neg, p.clamp(min=0) / (-dp).clamp(min=torch.finfo(y.dtype).tiny), torch.full_like(p, math.inf))
        amax = ratio.amin(-1)
        alpha = torch.where(amax >= 1, torch.ones_like(amax), 0.95 * amax)
        stuck = amax <= 0
        out = co.to_y(project_simplex(p + alpha[:, None] * dp))
        if bool(stuck.any()):
            out[stuck] = co.to_y(project_simplex(p[stuck] + dp[stuck]))
        return out
