"""Geometries: how a step lands. ``geometry.land(S, ΔS)`` turns the increment a scheme proposes into
the next state.

- :class:`Euclidean`: S + ΔS.
- :class:`Simplex`: the state is a probability vector p on Δ^{K−1} (last dimension), and
  ``projection`` names the one rule by which a step is brought back onto the simplex:

  ==========  ===============================  =======================================================
  rule        ``land(p, Δ)`` (what rollout      ``descend(p, g, η)`` (a gradient step on a function
              hands over: an increment Δ)       with Euclidean gradient g)
  ==========  ===============================  =======================================================
  ``euclid``  proj_Δ(p + Δ)                    proj_Δ(p − η g)
  ``mirror``  p ∝ p·exp(Δ/p)                   p ∝ p·exp(−η g)   (exponentiated gradient)
  ``logit``   p = softmax(log p + Δ)           p = softmax(log p − η ∇_z),  ∇_z = p ⊙ (g − ⟨p, g⟩)
  ==========  ===============================  =======================================================

  ``euclid`` is the sort-based Euclidean projection (Held, Wolfe & Crowder 1974; Duchi et al. 2008).
  ``mirror`` is the entropic mirror map: the increment is moved to dual (log) coordinates by the
  metric diag(1/p), so it agrees with p + Δ to first order, and for Δ = −η·p ⊙ ∇E it is exactly
  exponentiated gradient (Kivinen & Warmuth 1997; Beck & Teboulle 2003). ``logit`` takes the
  increment in logit coordinates z = log p; ``descend`` pulls the gradient back through softmax.
  Both multiplicative rules are one kernel, p ∝ p·exp(u): a zero coordinate stays zero, an
  overflowing increment saturates to the vertex instead of NaN, and NaN propagates (so a rollout
  reports ``nonfinite`` rather than raising).

``land`` and ``descend`` are the hot path: they never validate and never synchronise with the host.
:func:`project_simplex` is the public, validated entry to the Euclidean rule.
"""

from __future__ import annotations

import warnings

import torch

from .validate import check_simplex, check_tensor

_PROJECTIONS = ("euclid", "mirror", "logit")
#: spellings used before the rules had one name each (accepted with a DeprecationWarning)
_OLD_NAMES = {"euclidean_projected": "euclid", "softmax_logits": "logit"}


def simplex_rule(projection: str, name: str = "projection") -> str:
    """The canonical name of a simplex landing rule: ``"euclid"``, ``"mirror"`` or ``"logit"``.

    The old spellings ``"euclidean_projected"`` and ``"softmax_logits"`` are accepted for one release
    with a ``DeprecationWarning``; anything else raises ``ValueError`` naming ``name``.
    """
    if projection in _OLD_NAMES:
        new = _OLD_NAMES[projection]
        warnings.warn(f"{name}={projection!r} is deprecated; use {new!r}", DeprecationWarning, stacklevel=3)
        return new
    if projection not in _PROJECTIONS:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, _PROJECTIONS))}, got {projection!r}")
    return projection


def _project(v: torch.Tensor, vmax: torch.Tensor | None = None) -> torch.Tensor:
    """The sort-based projection kernel (no validation; see :func:`project_simplex`). ``vmax`` is
    the detached row maximum when the caller has it already."""
    K = v.shape[-1]
    # the projection is invariant to adding c·1; shifting by the row maximum keeps the arithmetic
    # near the result's scale, so huge steps (a field blowing up at the boundary) stay accurate
    v = v - (v.detach().amax(dim=-1, keepdim=True) if vmax is None else vmax)
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = torch.cumsum(u, dim=-1) - 1
    ks = torch.arange(1, K + 1, device=v.device, dtype=v.dtype)
    cond = u - css / ks > 0
    # rho = the last index where cond holds (cond is true on a prefix)
    rho = cond.to(torch.int64).sum(dim=-1, keepdim=True).clamp(min=1)
    tau = torch.gather(css, -1, rho - 1) / rho.to(v.dtype)
    return torch.clamp(v - tau, min=0)


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row (last dimension) of ``v`` onto the probability simplex.

    argmin_{p ∈ Δ} ‖p − v‖² = max(v − τ, 0) with τ chosen so the result sums to one; τ is found by
    sorting (Held, Wolfe & Crowder 1974; Duchi, Shalev-Shwartz, Singer & Chandra 2008). Batched,
    differentiable almost everywhere, O(K log K) per row. A −inf entry (a coordinate ruled out)
    projects to 0.

    Raises ``ValueError`` for an integer or 0-d ``v``, or one holding NaN or +inf (whose projection
    is not a belief). ``Simplex("euclid").land`` is the same rule without the checks, for hot loops.

    Example:
        >>> project_simplex(torch.tensor([0.9, 0.6, -1.0]))
        tensor([0.6500, 0.3500, 0.0000])
    """
    check_tensor(v, "v", min_ndim=1)
    if torch.is_complex(v) or v.shape[-1] == 0:
        raise ValueError(f"v must be a real tensor with at least one coordinate, got {v.dtype} {tuple(v.shape)}")
    # the row maxima the kernel shifts by anyway: NaN or +inf anywhere in a row shows up there, so
    # the check costs one host sync and no extra pass over v
    vmax = v.detach().amax(dim=-1, keepdim=True)
    if not bool(torch.isfinite(vmax).all()):
        raise ValueError("v must not contain NaN or +inf (every row needs a finite maximum)")
    return _project(v, vmax)


def _tilt(p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """p ∝ p·exp(u) along the last dimension, as softmax(log p + u): zeros of p stay zero.

    The one kernel of the multiplicative rules. ``u`` must not be +inf where p > 0 (callers
    saturate it); NaN propagates."""
    return torch.softmax(torch.log(p) + u, dim=-1)


def _saturate(u: torch.Tensor) -> torch.Tensor:
    # an increment that overflowed to +inf becomes the largest float (the row lands on that vertex);
    # NaN and −inf are left alone
    big = torch.finfo(u.dtype).max
    return torch.nan_to_num(u, nan=float("nan"), posinf=big, neginf=-float("inf"))


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
    """The probability simplex {p ≥ 0, Σp = 1} along the last dimension, landed by one rule
    (``"euclid"``, ``"mirror"`` or ``"logit"``; see the module docstring for the formulas).

    Example:
        >>> p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
        >>> g = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
        >>> q = Simplex("mirror").descend(p, g, 0.1)          # exponentiated gradient
        >>> torch.allclose(q, p * torch.exp(-0.1 * g) / (p * torch.exp(-0.1 * g)).sum())
        True
    """

    def __init__(self, projection: str = "euclid"):
        self.projection = simplex_rule(projection)

    def land(self, p, increment):
        """The next state from an increment Δ in p-coordinates (what ``rollout`` hands over)."""
        if self.projection == "euclid":
            return _project(p + increment)
        if self.projection == "mirror":
            inside = p > 0
            # Δ/p: the increment in dual (log) coordinates; 0 where p = 0 (those coordinates stay 0)
            u = torch.where(inside, increment / torch.where(inside, p, 1), 0)
            return _tilt(p, _saturate(u))
        return _tilt(p, _saturate(increment))

    def descend(self, p, grad, eta):
        """One descent step −η·grad (a Euclidean gradient) landed by this rule, in the rule's own
        coordinates: proj_Δ(p − ηg), p ∝ p·e^{−ηg}, or softmax(log p − η p⊙(g − ⟨p, g⟩)).
        ``eta`` may be a tensor broadcasting against ``p[..., :1]``. No validation (hot path)."""
        if self.projection == "euclid":
            return _project(p - eta * grad)
        if self.projection == "mirror":
            return _tilt(p, -eta * grad)
        gz = p * (grad - (p * grad).sum(-1, keepdim=True))  # ∇_z of the function at z = log p
        return _tilt(p, -eta * gz)

    def validate(self, state, name: str = "s0", atol: float | None = None) -> None:
        """Raise ``ValueError`` naming ``name`` unless every row of ``state`` is a probability vector
        (within ``atol``: 1e−5 in half/single precision, 1e−9 in double — a landing renormalises,
        so a start need only be close)."""
        if isinstance(state, tuple) or not torch.is_tensor(state) or state.ndim == 0:
            raise ValueError(f"{name} must be a tensor whose last dimension holds probabilities")
        if not torch.is_floating_point(state):
            raise ValueError(f"{name} must be a floating-point tensor, got {state.dtype}")
        if atol is None:
            atol = 1e-5 if state.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-9
        if state.numel():  # an empty batch has no rows to check
            check_simplex(state, name, atol=atol)

    def __repr__(self) -> str:
        return f"Simplex(projection={self.projection!r})"
