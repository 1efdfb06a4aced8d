"""Lanczos tridiagonalisation with full reorthogonalisation: one run, or a block of runs in lockstep.

For a symmetric A and a start v₁ = v₀/‖v₀‖, m steps build an orthonormal basis V_m of the Krylov
space K_m(A, v₀) and the tridiagonal T_m = V_mᵀ A V_m with diagonal α and off-diagonal β
(Lanczos 1950):

    w = A v_j,   α_j = v_jᵀ w,   w ← w − V_j (V_jᵀ w),   β_j = ‖w‖,   v_{j+1} = w / β_j.

In floating point the three-term recurrence loses orthogonality as soon as a Ritz value converges
(Paige 1971), so w is orthogonalised against the *whole* basis by classical Gram–Schmidt applied
twice ("twice is enough", Giraud, Langou, Rozložník & van den Eshof 2005); α_j is the j-th
coefficient of that projection. A run ends early when the Krylov space is invariant
(β_j ≤ 1e-12·max|α|): T then has fewer rows, and its eigenvalues are eigenvalues of A.

:func:`lanczos_block` runs b independent starts (the columns of V₀) in lockstep: every step is one
*block* product A [v_j⁽¹⁾ … v_j⁽ᵇ⁾], which a curvature operator computes in one pass over its data
(``CurvatureOperator.matmat``). Stochastic Lanczos quadrature runs its probes this way.

Used by ``terrainlab.curvature`` (``lanczos_tridiag``, ``spectral_density``, the Krylov-aware
trace); ``eigs``'s thick restart reuses :func:`orthogonalize`.

Example:
    >>> A = torch.diag(torch.arange(1.0, 6.0, dtype=torch.float64))
    >>> r = lanczos(lambda v: A @ v, torch.ones(5, dtype=torch.float64), 5)
    >>> T = torch.diag(r.alpha) + torch.diag(r.beta, 1) + torch.diag(r.beta, -1)
    >>> [round(x, 8) for x in torch.linalg.eigvalsh(T).tolist()], r.status
    ([1.0, 2.0, 3.0, 4.0, 5.0], 'completed')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..status import Status
from ..validate import check_callable, check_int, check_tensor

__all__ = ["LanczosResult", "lanczos", "lanczos_block", "orthogonalize"]

#: β below this fraction of max |α| counts as an invariant Krylov space (exact breakdown).
BREAKDOWN = 1e-12


@dataclass(frozen=True)
class LanczosResult:
    """The tridiagonal T = tridiag(β, α, β) of a Lanczos run.

    One run: ``alpha`` (m,), ``beta`` (m−1,) float64 on the CPU, ``n_steps`` = m products taken,
    ``basis`` (n, m) orthonormal columns when asked for (else None). A block of b runs: ``alpha``
    (b, m), ``beta`` (b, m−1), ``n_steps`` (b,) int64 — run c's T is its leading ``n_steps[c]``
    rows (the rest are zero) — and ``n_products`` block products taken.
    ``status``: ``completed`` (all steps taken), ``converged`` (a run found an invariant subspace
    and stopped early; its Ritz values are exact), ``nonfinite`` (NaN or inf in a product; α/β
    after it are NaN).
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    n_steps: int | torch.Tensor
    n_products: int
    status: Status
    basis: torch.Tensor | None = None


def orthogonalize(V: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w ⟂ span(columns of V) by classical Gram–Schmidt twice; returns (w, coefficients Vᵀw)."""
    if V.shape[1] == 0:
        return w, w.new_zeros(0)
    h = V.T @ w
    w = w - V @ h
    h2 = V.T @ w
    w = w - V @ h2
    return w, h + h2


def _check_start(v0, name, ndim):
    check_tensor(v0, name, ndim=ndim, nonempty=True, finite=True)
    norms = v0.norm(dim=0)
    if bool((norms == 0).any()):
        raise ValueError(f"{name} must be nonzero (every column)")
    return norms


def lanczos(apply: Callable[[torch.Tensor], torch.Tensor], v0: torch.Tensor, steps: int, *,
            keep_basis: bool = False) -> LanczosResult:
    """``steps`` Lanczos steps for the symmetric operator ``apply: v ↦ A v`` from ``v0`` (n,).

    Takes min(steps, n) products, fewer when the Krylov space becomes invariant. α and β are
    accumulated in float64 on the CPU whatever the operator's dtype and device; the basis is kept
    in ``v0``'s dtype on its device (rows of the storage are the basis vectors, so each V_j is a
    contiguous block).
    """
    check_callable(apply, "apply")
    _check_start(v0, "v0", 1)
    check_int(steps, "steps", minimum=1)
    n = v0.shape[0]
    m = min(steps, n)
    V = torch.zeros(m, n, dtype=v0.dtype, device=v0.device).T
    V[:, 0] = v0 / v0.norm()
    alpha = torch.zeros(m, dtype=torch.float64)
    beta = torch.zeros(max(m - 1, 0), dtype=torch.float64)
    used, status = 0, Status.COMPLETED
    for j in range(m):
        w = apply(V[:, j])
        used += 1
        w, h = orthogonalize(V[:, : j + 1], w)
        alpha[j] = float(h[j])
        if not math.isfinite(alpha[j]):
            alpha, beta, status = alpha[: j + 1], beta[:j], Status.NONFINITE
            break
        if j + 1 < m:
            b = float(w.norm())
            if not math.isfinite(b):
                alpha, beta, status = alpha[: j + 1], beta[:j], Status.NONFINITE
                break
            if b <= BREAKDOWN * max(float(alpha[: j + 1].abs().max()), 1e-300):
                alpha, beta, status = alpha[: j + 1], beta[:j], Status.CONVERGED
                break
            beta[j] = b
            V[:, j + 1] = w / b
    return LanczosResult(alpha, beta, used, used, status, V[:, :used] if keep_basis else None)


def lanczos_block(apply: Callable[[torch.Tensor], torch.Tensor], V0: torch.Tensor, steps: int) -> LanczosResult:
    """b independent Lanczos runs, one per column of ``V0`` (n, b), advanced together.

    ``apply`` maps an (n, b) block to A times it (one pass over the data for a curvature
    operator). Each run is the same as :func:`lanczos` from that column (the same α, β up to
    rounding); a run that reaches an invariant subspace continues on a zero vector, so its later
    coefficients are 0, and its length is ``n_steps[c]``. Memory: the b bases, (m + 1)·n·b numbers.
    """
    check_callable(apply, "apply")
    _check_start(V0, "V0", 2)
    check_int(steps, "steps", minimum=1)
    n, b = V0.shape
    m = min(steps, n)
    # basis stored (b, m, n): V[c, :j] is run c's basis as contiguous rows
    V = torch.zeros(b, m, n, dtype=V0.dtype, device=V0.device)
    V[:, 0] = (V0 / V0.norm(dim=0)).T
    alpha = torch.zeros(b, m, dtype=torch.float64)
    beta = torch.zeros(b, max(m - 1, 0), dtype=torch.float64)
    length = torch.full((b,), m, dtype=torch.int64)
    live = torch.ones(b, dtype=torch.bool)
    bad = torch.zeros(b, dtype=torch.bool)
    used = 0
    for j in range(m):
        W = apply(V[:, j].T).T  # (b, n): row c is A v_j of run c
        used += 1
        Vj = V[:, : j + 1]  # (b, j+1, n)
        h = torch.bmm(Vj, W.unsqueeze(-1))  # CGS2, run by run: h = V_cᵀ w_c
        W = W - torch.bmm(Vj.transpose(1, 2), h).squeeze(-1)
        h2 = torch.bmm(Vj, W.unsqueeze(-1))
        W = W - torch.bmm(Vj.transpose(1, 2), h2).squeeze(-1)
        a = (h + h2)[:, j, 0].double().cpu()
        alpha[:, j] = torch.where(live, a, alpha[:, j])
        if j + 1 == m:
            bad |= live & ~torch.isfinite(a)
            break
        bn = W.norm(dim=1).double().cpu()
        nonfinite = live & ~(torch.isfinite(a) & torch.isfinite(bn))
        scale = alpha[:, : j + 1].abs().amax(dim=1).clamp_min(1e-300)
        stop = live & ~nonfinite & (bn <= BREAKDOWN * scale)
        ends = nonfinite | stop
        length = torch.where(ends, torch.full_like(length, j + 1), length)
        bad |= nonfinite
        live &= ~ends
        beta[:, j] = torch.where(live, bn, beta[:, j])
        scale_dev = torch.where(live, bn, torch.ones_like(bn)).to(device=W.device, dtype=W.dtype)
        V[:, j + 1] = torch.where(live.to(W.device)[:, None], W / scale_dev[:, None], torch.zeros_like(W))
        if not bool(live.any()):
            break
    if bool(bad.any()):
        status = Status.NONFINITE
    elif bool((length < m).any()):
        status = Status.CONVERGED
    else:
        status = Status.COMPLETED
    return LanczosResult(alpha, beta, length, used, status)
