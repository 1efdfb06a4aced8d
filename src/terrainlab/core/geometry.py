"""Geometries: how a step lands. ``geometry.land(S, ΔS)`` turns the increment a scheme proposes into
the next state.

- :class:`Euclidean`: S + ΔS.
- :class:`Simplex`: the state is a probability vector p on Δ^{K−1} (last dimension), and
  ``projection`` says how p + Δ is brought back onto the simplex:
  ``"euclid"``  proj_Δ(p + Δ), the sort-based Euclidean projection (Held, Wolfe & Crowder 1974;
                Duchi et al. 2008);
  ``"mirror"``  p ∝ p·exp(Δ/p), the entropic-mirror (exponentiated-gradient) landing, which agrees
                with p + Δ to first order; for Δ = −η·p⊙∇E it is exactly exponentiated gradient
                p ∝ p·exp(−η∇E) (Kivinen & Warmuth 1997; Beck & Teboulle 2003);
  ``"logit"``   p = softmax(log p + Δ): the increment is taken in logit coordinates.
"""

from __future__ import annotations

import torch

_PROJECTIONS = ("euclid", "mirror", "logit")


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row (last dimension) of ``v`` onto the probability simplex.

    argmin_{p ∈ Δ} ‖p − v‖² = max(v − τ, 0) with τ chosen so the result sums to one; τ is found by
    sorting (Held, Wolfe & Crowder 1974; Duchi, Shalev-Shwartz, Singer & Chandra 2008). Batched,
    differentiable almost everywhere, O(K log K) per row.
    """
    if v.ndim == 0:
        raise ValueError("v must have at least one dimension (the simplex coordinates)")
    K = v.shape[-1]
    # the projection is invariant to adding c·1; shifting by the row maximum keeps the arithmetic
    # near the result's scale, so huge steps (a field blowing up at the boundary) stay accurate
    v = v - v.detach().amax(dim=-1, keepdim=True)
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = torch.cumsum(u, dim=-1) - 1
    ks = torch.arange(1, K + 1, device=v.device, dtype=v.dtype)
    cond = u - css / ks > 0
    # rho = the last index where cond holds (cond is true on a prefix)
    rho = cond.to(torch.int64).sum(dim=-1, keepdim=True).clamp(min=1)
    tau = torch.gather(css, -1, rho - 1) / rho.to(v.dtype)
    return torch.clamp(v - tau, min=0)


def simplex_tangent_basis(K: int, dtype=None, device=None) -> torch.Tensor:
    """An orthonormal basis of the simplex tangent space {v : Σv = 0}, as the columns of a
    (K, K−1) matrix: the Helmert contrasts, column j = (1, …, 1, −j, 0, …, 0)/√(j(j+1)) with j ones,
    so BᵀB = I and 1ᵀB = 0 (Helmert 1876; Lancaster 1965, "The Helmert matrices").

    Jacobians of fields on the simplex are taken as BᵀJB (K − 1 eigenvalues).
    """
    if isinstance(K, bool) or not isinstance(K, int) or K < 2:
        raise ValueError(f"K must be an int >= 2 (number of simplex coordinates), got {K!r}")
    j = torch.arange(1, K, dtype=torch.float64)
    rows = torch.arange(K, dtype=torch.float64)[:, None]
    B = (rows < j).to(torch.float64) - j * (rows == j).to(torch.float64)
    B = B / torch.sqrt(j * (j + 1))
    return B.to(dtype=dtype or torch.get_default_dtype(), device=device)


class Euclidean:
    """Flat space: S' = S + ΔS."""

    def land(self, state, increment):
        if isinstance(state, tuple):
            return tuple(s + d for s, d in zip(state, increment))
        return state + increment

    def validate(self, state, name: str = "s0") -> None:
        return None

    def __repr__(self) -> str:
        return "Euclidean()"


class Simplex:
    """The probability simplex {p ≥ 0, Σp = 1} along the last dimension."""

    def __init__(self, projection: str = "euclid"):
        if projection not in _PROJECTIONS:
            raise ValueError(f"projection must be one of {_PROJECTIONS}, got {projection!r}")
        self.projection = projection

    def land(self, p, increment):
        if self.projection == "euclid":
            return project_simplex(p + increment)
        # Multiplicative landings: a zero coordinate stays zero (log 0 = −inf), and an overflowing
        # logit saturates to the largest float so softmax returns the vertex instead of NaN.
        inside = p > 0
        logp = torch.log(p)
        if self.projection == "mirror":
            logits = torch.where(inside, logp + increment / torch.where(inside, p, 1), logp)
        else:  # logit
            logits = torch.where(inside, logp + increment, logp)
        big = torch.finfo(p.dtype).max
        logits = torch.nan_to_num(logits, nan=float("nan"), posinf=big, neginf=-float("inf"))
        return torch.softmax(logits, dim=-1)

    def validate(self, state, name: str = "s0", atol: float | None = None) -> None:
        if isinstance(state, tuple) or not torch.is_tensor(state) or state.ndim == 0:
            raise ValueError(f"{name} must be a tensor whose last dimension holds probabilities")
        if not torch.is_floating_point(state):
            raise ValueError(f"{name} must be a floating-point tensor, got {state.dtype}")
        atol = atol if atol is not None else (1e-5 if state.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-9)
        sums = state.sum(-1)
        if not bool(torch.isfinite(state).all()):
            raise ValueError(f"{name} must be on the simplex: it has non-finite entries")
        if bool((state < -atol).any()) or not bool(((sums - 1).abs() <= atol * state.shape[-1]).all()):
            raise ValueError(f"{name} must be on the simplex (entries >= 0, rows summing to 1)")

    def __repr__(self) -> str:
        return f"Simplex(projection={self.projection!r})"
