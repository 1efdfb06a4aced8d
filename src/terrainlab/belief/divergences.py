"""Bregman divergences, KL, and Bregman (information) projections.

A strictly convex, differentiable *generator* F gives the Bregman divergence (Bregman 1967)

    D_F(p‖q) = F(p) − F(q) − ⟨∇F(q), p − q⟩  ≥ 0,

the vertical gap at p between F and its tangent plane at q. With the negative entropy
F(p) = Σ p log p it is the Kullback–Leibler divergence on the simplex; with ½‖p‖² it is ½‖p − q‖².
Every divergence here is batched over leading dimensions (the last dimension holds the coordinates).

The three-point identity (Chen & Teboulle 1993)

    D(p‖r) = D(p‖q) + D(q‖r) + ⟨∇F(q) − ∇F(r), p − q⟩

gives the generalised Pythagorean theorem: if q is the Bregman projection of r onto an affine set
containing p, the inner product vanishes and D(p‖r) = D(p‖q) + D(q‖r) (Csiszár 1975).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import grad, hessian, vmap

from terrainlab.core.validate import check_tensor

from .simplex import _check_p, _traced

__all__ = [
    "half_sq_norm",
    "neg_entropy",
    "generalized_neg_entropy",
    "burg_entropy",
    "bregman",
    "kl",
    "entropy",
    "kl_gaussian",
    "kl_quadratic_approx",
    "three_point_residual",
    "BregmanProjection",
    "bregman_project",
    "softmax_kl_projection",
    "softmax_objective",
]


# --------------------------------------------------------------------------------------------
# generators: F maps (..., d) -> (...)


def half_sq_norm(p: torch.Tensor) -> torch.Tensor:
    """F(p) = ½‖p‖²; its Bregman divergence is ½‖p − q‖² and mirror descent with it is plain GD."""
    return 0.5 * (p * p).sum(-1)


def neg_entropy(p: torch.Tensor) -> torch.Tensor:
    """F(p) = Σ p_i log p_i (0 log 0 = 0); on the simplex D_F is KL(p‖q)."""
    return torch.xlogy(p, p).sum(-1)


def generalized_neg_entropy(p: torch.Tensor) -> torch.Tensor:
    """F(p) = Σ p_i log p_i − p_i on the positive orthant; D_F is the generalised KL
    Σ p log(p/q) − p + q, defined for unnormalised p, q ≥ 0 (Csiszár's I-divergence)."""
    return (torch.xlogy(p, p) - p).sum(-1)


def burg_entropy(p: torch.Tensor) -> torch.Tensor:
    """F(p) = −Σ log p_i (Burg 1967); D_F is the Itakura–Saito divergence Σ p/q − log(p/q) − 1."""
    return -torch.log(p).sum(-1)


def _check_pair(p, q, names=("p", "q")):
    for x, n in zip((p, q), names):
        check_tensor(x, n, min_ndim=1)
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same last dimension, got {p.shape[-1]} and {q.shape[-1]}"
        )


def _check_nonnegative(x, name):
    # generalised (unnormalised) vectors: finite and >= 0, one reduction and one host sync
    if x.numel() and not _traced(x) and not bool(torch.isfinite(x.sum()) & (x.amin() >= 0)):
        raise ValueError(f"{name} must be finite and nonnegative")


def _grad_of(F):
    def total(x):
        return F(x).sum()

    return grad(total)


def bregman(F, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """D_F(p‖q) = F(p) − F(q) − ⟨∇F(q), p − q⟩ for any convex generator ``F``, with ∇F by autograd.

    ``F`` maps a batch ``(..., d)`` to ``(...)`` (one value per row, rows independent). ``p`` and
    ``q`` broadcast against each other. Bregman (1967).

    Example:
        >>> p, q = torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.5])
        >>> torch.allclose(bregman(neg_entropy, p, q), kl(p, q))
        True
    """
    if not callable(F):
        raise ValueError(f"F must be a callable generator, got {type(F).__name__}")
    _check_pair(p, q)
    p, q = torch.broadcast_tensors(p, q)
    gq = _grad_of(F)(q)
    return F(p) - F(q) - (gq * (p - q)).sum(-1)


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Σ p log(p/q) without validation (the kernel of :func:`kl`, for loops and energies)."""
    # xlogy(p, 0) = -inf for p > 0 gives +inf; inf - inf cannot occur since xlogy(p, p) is finite.
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1)


def kl(p: torch.Tensor, q: torch.Tensor, *, generalized: bool = False) -> torch.Tensor:
    """KL(p‖q) = Σ p_i log(p_i/q_i), numerically safe: 0·log 0 = 0, and +∞ where q_i = 0 < p_i.

    ``p`` and ``q`` must be probability vectors (``ValueError`` otherwise: off the simplex the sum
    can be negative). ``generalized=True`` adds Σ (q_i − p_i) (the I-divergence of unnormalised
    vectors, which need only be ≥ 0). In nats. Kullback & Leibler (1951).

    Example:
        >>> kl(torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.5]))   # nats (0.531 bits)
        tensor(0.3681)
    """
    _check_pair(p, q)
    if generalized:
        _check_nonnegative(p, "p")
        _check_nonnegative(q, "q")
        return _kl(p, q) + (q - p).sum(-1)
    _check_p(p, "p")
    _check_p(q, "q")
    return _kl(p, q)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy H(p) = −Σ p log p in nats (0 log 0 = 0); ``p`` must be probability vectors."""
    _check_p(p, "p")
    return -torch.xlogy(p, p).sum(-1)


def kl_gaussian(m1, s1, m2, s2) -> torch.Tensor:
    """KL(N(m1, s1²) ‖ N(m2, s2²)) = log(s2/s1) + (s1² + (m1 − m2)²)/(2 s2²) − ½ (nats).

    Example: p = N(0, 1), q = N(4.345, 2.128²) gives KL(p‖q) ≈ 2.45 and KL(q‖p) ≈ 10.45.
    """
    m1, s1, m2, s2 = (torch.as_tensor(x, dtype=torch.get_default_dtype()) if not torch.is_tensor(x) else x
                      for x in (m1, s1, m2, s2))
    if bool((s1 <= 0).any()) or bool((s2 <= 0).any()):
        raise ValueError("s1 and s2 must be standard deviations > 0")
    return torch.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5


def kl_quadratic_approx(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The local quadratic ½ Σ (p_i − q_i)²/q_i ≈ KL(p‖q) (second-order Taylor expansion at q;
    the χ²/2 divergence). Error is O(‖p − q‖³)."""
    _check_pair(p, q)
    _check_p(p, "p")
    _check_p(q, "q")
    return 0.5 * ((p - q) ** 2 / q).sum(-1)


def three_point_residual(F, p, q, r) -> torch.Tensor:
    """D(p‖r) − D(p‖q) − D(q‖r) − ⟨∇F(q) − ∇F(r), p − q⟩, identically 0 (three-point identity,
    Chen & Teboulle 1993). Returned so tests and the atlas can measure it."""
    _check_pair(p, q, ("p", "q"))
    _check_pair(q, r, ("q", "r"))
    p, q, r = torch.broadcast_tensors(p, q, r)
    g = _grad_of(F)
    return (bregman(F, p, r) - bregman(F, p, q) - bregman(F, q, r)
            - ((g(q) - g(r)) * (p - q)).sum(-1))


# --------------------------------------------------------------------------------------------
# Bregman projection onto a linear family {p : A p = b}


@dataclass(frozen=True)
class BregmanProjection:
    """argmin_{A p = b} D_F(p‖r). ``residual`` = max |A p − b|; ``kkt`` = max norm of the part of
    ∇F(p) − ∇F(r) orthogonal to the row space of A (0 at the optimum); ``iterations`` Newton steps."""

    p: torch.Tensor
    residual: float
    kkt: float
    iterations: int
    converged: bool


def bregman_project(F, r: torch.Tensor, A: torch.Tensor, b: torch.Tensor, *, tol: float = 1e-10,
                    max_iter: int = 100) -> BregmanProjection:
    """Bregman (information) projection of ``r`` onto the affine family {p : A p = b}.

    Solves min_p D_F(p‖r) s.t. A p = b by Newton's method on the KKT system
    [∇²F(p) Aᵀ; A 0][δ; λ] = [−(∇F(p) − ∇F(r)); b − A p], with a backtracking line search that
    keeps F finite (so p stays in the domain of F, e.g. p > 0 for the entropies). The optimum
    satisfies ∇F(p) = ∇F(r) + Aᵀλ: for the negative entropy that is p ∝ r·exp(Aᵀλ), the
    exponential family through r (Csiszár 1975, I-projection). Batched over the rows of ``r``;
    Hessians by ``torch.func.hessian``. Pythagoras holds with equality for any p' in the family:
    D(p'‖r) = D(p'‖q) + D(q‖r).

    Example (softmax is the KL projection of e^z onto Σp = 1):
        >>> z = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
        >>> A = torch.ones(1, 3, dtype=torch.float64); b = torch.ones(1, dtype=torch.float64)
        >>> res = bregman_project(generalized_neg_entropy, z.exp(), A, b)
        >>> torch.allclose(res.p, torch.softmax(z, -1))
        True
    """
    if not callable(F):
        raise ValueError(f"F must be a callable generator, got {type(F).__name__}")
    if not torch.is_tensor(r) or not torch.is_floating_point(r) or r.ndim == 0:
        raise ValueError("r must be a floating-point tensor (..., d)")
    d = r.shape[-1]
    if not torch.is_tensor(A) or A.ndim != 2 or A.shape[1] != d:
        raise ValueError(f"A must be a matrix (m, {d}), got {tuple(A.shape) if torch.is_tensor(A) else A!r}")
    b = torch.as_tensor(b, dtype=r.dtype, device=r.device)
    if b.shape[-1] != A.shape[0]:
        raise ValueError(f"b must have last dimension {A.shape[0]} (one value per row of A)")
    A = A.to(r)
    batch = r.shape[:-1]
    R = r.reshape(-1, d)
    B = b.expand(*batch, A.shape[0]).reshape(-1, A.shape[0])
    n, m = R.shape[0], A.shape[0]

    def F1(x):
        return F(x)

    gF = vmap(grad(F1))
    hF = vmap(hessian(F1))
    g_r = gF(R)
    # start: r itself when feasible for F, else its Euclidean projection onto the family (clamped
    # into the interior when the family is the simplex).
    AAt = A @ A.T
    p = R - ((R @ A.T - B) @ torch.linalg.inv(AAt)) @ A
    if not bool(torch.isfinite(F(p)).all()):
        p = R.clone()
    n_iter, conv = 0, False
    for _ in range(max_iter):
        n_iter += 1
        g = gF(p) - g_r
        H = hF(p)
        top = torch.cat([H, A.expand(n, m, d).transpose(1, 2)], dim=2)
        bot = torch.cat([A.expand(n, m, d), p.new_zeros(n, m, m)], dim=2)
        KKT = torch.cat([top, bot], dim=1)
        rhs = torch.cat([-g, B - p @ A.T], dim=1)
        sol = torch.linalg.solve(KKT, rhs.unsqueeze(-1)).squeeze(-1)
        delta = sol[:, :d]
        # backtracking: keep F finite and the step well defined
        t = p.new_ones(n, 1)
        for _ in range(60):
            cand = p + t * delta
            ok = torch.isfinite(F(cand)) & torch.isfinite(gF(cand)).all(-1)
            if bool(ok.all()):
                break
            t = torch.where(ok.unsqueeze(-1), t, t * 0.5)
        p = p + t * delta
        if float(delta.abs().max()) < tol and float((t == 1).all()):
            conv = True
            break
    g = gF(p) - g_r
    # KKT residual: component of g outside the row space of A
    coef = torch.linalg.solve(AAt, (g @ A.T).T).T
    kkt = float((g - coef @ A).abs().max())
    res = float((p @ A.T - B).abs().max())
    return BregmanProjection(p.reshape(*batch, d), res, kkt, n_iter, conv)


def softmax_objective(z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """⟨z, p⟩ + H(p); softmax(z) is its unique maximiser over the simplex (Gibbs variational
    principle), with maximum value logsumexp(z)."""
    _check_pair(z, p, ("z", "p"))
    return (z * p).sum(-1) + entropy(p)


def softmax_kl_projection(z: torch.Tensor) -> BregmanProjection:
    """Softmax computed as a Bregman projection: argmin_{Σp = 1} KL_gen(p‖e^z), i.e. the
    generalised-entropy I-projection of e^z onto the simplex's affine hull (positivity is automatic).
    Agrees with ``torch.softmax(z, -1)``; returned with its KKT residual so the identity can be
    checked rather than assumed."""
    if not torch.is_tensor(z) or not torch.is_floating_point(z) or z.ndim == 0:
        raise ValueError("z must be a floating-point tensor (..., K)")
    zc = z - z.amax(-1, keepdim=True)  # shift invariance keeps exp finite
    K = z.shape[-1]
    A = torch.ones(1, K, dtype=z.dtype, device=z.device)
    b = torch.ones(1, dtype=z.dtype, device=z.device)
    return bregman_project(generalized_neg_entropy, zc.exp(), A, b)

