"""The hard-margin support vector machine by the project's own small QP (no scikit-learn needed).

Primal (Vapnik; Boser, Guyon & Vapnik 1992; Cortes & Vapnik 1995):

    min_{w,b} ½‖w‖²   subject to   y_i (wᵀx_i + b) ≥ 1,   i = 1..n,

whose margin is 2/‖w‖. It is solved through its dual

    min_α ½ αᵀQα − Σα_i,   Q_ij = y_i y_j x_iᵀx_j,   0 ≤ α_i ≤ C,   Σ α_i y_i = 0   (the last one only with b),

with w = Σ α_i y_i x_i, by a primal–dual interior-point method (Newton steps on the perturbed KKT
conditions, e.g. Nocedal & Wright 2006, *Numerical Optimization*, §16.6), followed by an exact solve of the
KKT equalities on the support set it finds ("polishing", to machine precision). Without a bias the
equality constraint is absent (the homogeneous SVM through the origin).

The hard margin is the limit C → ∞; a finite but huge box C (default 1e6, relative to the data's scale) keeps
the dual bounded on non-separable data, where the hard-margin dual is unbounded. The run stops when the
duality gap and the residuals are below ``tol`` or after ``max_iter`` Newton steps — never loops forever — and the result says which
(``status``): "optimal" (KKT met, every α_i < C and every margin ≥ 1 − tol: the hard-margin solution);
"non-separable" (the C-box problem solved but some α_i reached C or some point violates its margin: no
hard margin exists, the data are not linearly separable by this model); "max_iter"; "breakdown" (a Newton
system could not be factored even with a diagonal shift — non-finite or indefinite — and the α reached so far
is returned). The support vectors are
the points with α_i > 0 (above ``1e-8·max α``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["SVMResult", "hard_margin_svm"]

STATUSES = ("optimal", "non-separable", "max_iter", "breakdown")


@dataclass(frozen=True)
class SVMResult:
    """A hard-margin SVM fit: w (d,), b (a float; 0.0 without bias), the dual α (n,), the support
    indices (α_i > 0), the geometric margin 1/‖w‖ (half the band width 2/‖w‖), the smallest functional
    margin min_i y_i(wᵀx_i + b) (≥ 1 − tol when optimal), the status and the number of QP steps."""

    w: torch.Tensor
    b: float
    alpha: torch.Tensor
    support: torch.Tensor
    margin: float
    min_functional_margin: float
    status: str
    iterations: int

    @property
    def separable(self) -> bool:
        return self.status == "optimal"

    def decision(self, X: torch.Tensor) -> torch.Tensor:
        """wᵀx + b for the rows of ``X``."""
        return X @ self.w + self.b


def _check(X, y) -> None:
    if not isinstance(X, torch.Tensor) or X.ndim != 2 or X.shape[0] < 2 or X.shape[1] == 0:
        raise ValueError(f"X must be a 2-D tensor (n ≥ 2, d ≥ 1), got {getattr(X, 'shape', type(X).__name__)}")
    if not X.is_floating_point() or not bool(torch.isfinite(X).all()):
        raise ValueError("X must be a finite floating-point tensor")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be a 1-D tensor of length n = {X.shape[0]}, got {getattr(y, 'shape', type(y).__name__)}")
    vals = set(torch.unique(y).tolist())
    if not vals <= {-1.0, 1.0}:
        raise ValueError(f"y must hold labels in {{-1, +1}}, got values {sorted(vals)}")
    if vals != {-1.0, 1.0}:
        raise ValueError("y must hold both classes -1 and +1")


def hard_margin_svm(
    X: torch.Tensor, y: torch.Tensor, *, bias: bool = True, C: float = 1e6, tol: float = 1e-9,
    max_iter: int = 200,
) -> SVMResult:
    """Fit min ½‖w‖² s.t. y_i(wᵀx_i + b) ≥ 1 (``bias=False``: b = 0, the homogeneous SVM through the
    origin) by an interior-point method on the dual (see the module docstring). ``X`` (n, d) floating point, ``y`` (n,) in
    {−1, +1}; computed in float64 on X's device, returned in X's dtype. Non-separable data give status
    "non-separable" (never an endless loop: at most ``max_iter`` Newton steps). Margins below about
    1/√C (in the data's units) cannot be told from non-separability and are reported "non-separable".

    >>> X = torch.tensor([[2.0, 0.0], [3.0, 1.0], [-2.0, 0.0], [-3.0, -1.0]])
    >>> r = hard_margin_svm(X, torch.tensor([1.0, 1.0, -1.0, -1.0]))
    >>> r.status, [round(v, 6) for v in r.w.tolist()], round(r.b, 6), r.support.tolist()
    ('optimal', [0.5, 0.0], 0.0, [0, 2])
    """
    _check(X, y)
    for name, v in (("C", C), ("tol", tol)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    if not isinstance(bias, bool):
        raise ValueError(f"bias must be a bool, got {bias!r}")
    Xd = X.to(torch.float64)
    yd = y.to(torch.float64)
    Q = (yd[:, None] * Xd) @ (yd[:, None] * Xd).T
    C = float(C)
    alpha, it, ended = _ipm_box_qp(Q, yd if bias else None, C, tol, max_iter)
    alpha = _polish(Xd, yd, alpha, bias, C)
    w = (alpha * yd) @ Xd
    sv = alpha > 1e-8 * float(alpha.max().clamp_min(1e-300))
    free = sv & (alpha < C * (1 - 1e-6))
    if not bias:
        b = 0.0
    elif bool(free.any()):
        b = float((yd[free] - Xd[free] @ w).mean())  # y_i(wᵀx_i + b) = 1 on the margin
    else:
        b = float((yd[sv] - Xd[sv] @ w).mean()) if bool(sv.any()) else 0.0
    fm = yd * (Xd @ w + b)
    min_fm = float(fm.min())
    at_box = bool((alpha >= C * (1 - 1e-6)).any())
    if ended != "converged":
        status = ended
    elif at_box or min_fm < 1 - 1e-6:
        status = "non-separable"
    else:
        status = "optimal"
    support = torch.nonzero(sv).flatten()
    wn = float(w.norm())
    return SVMResult(
        w=w.to(X.dtype), b=b, alpha=alpha.to(X.dtype), support=support, margin=1.0 / wn if wn > 0 else math.inf,
        min_functional_margin=min_fm, status=status, iterations=it,
    )


def _ipm_box_qp(Q, a, C, tol, max_iter):
    """min ½αᵀQα − Σα s.t. aᵀα = 0 (when ``a`` is given), 0 ≤ α ≤ C, by a primal–dual path-following
    interior-point method (e.g. Nocedal & Wright 2006, §16.6; Wright 1997): Newton steps on the perturbed
    KKT conditions α∘z = μ, (C − α)∘s = μ with μ = σ·(mean complementarity), σ = 0.1, and a step to 99 %
    of the boundary. Returns (α, iterations, how it ended: "converged" | "max_iter" | "breakdown")."""
    n = Q.shape[0]
    one = torch.ones(n, dtype=Q.dtype, device=Q.device)
    alpha = one * min(1.0, C / 2)
    z, s = one.clone(), one.clone()
    # the upper slack u = C − α is carried as its own variable: recomputed as C − α it loses all its digits
    # once α nears a large C (C = 1e6: a resolution of 1e-10) and can round to 0, and s/u to inf
    u = C - alpha
    nu = 0.0
    scale = 1.0 + float(Q.diagonal().max())
    for it in range(1, max_iter + 1):
        rd = Q @ alpha - one - z + s - (nu * a if a is not None else 0.0)
        gap = (float(alpha @ z) + float(u @ s)) / (2 * n)
        rp = float(a @ alpha) if a is not None else 0.0
        if gap < tol and float(rd.abs().max()) < tol * scale and abs(rp) < tol * scale:
            return alpha, it - 1, "converged"
        mu = 0.1 * gap
        r = -rd + (mu / alpha - z) - (mu / u - s)
        M = Q + torch.diag(z / alpha + s / u)
        L, info = torch.linalg.cholesky_ex(M)
        if int(info) != 0:
            M = M + 1e-12 * float(M.diagonal().max()) * torch.eye(n, dtype=Q.dtype, device=Q.device)
            L, info = torch.linalg.cholesky_ex(M)
            if int(info) != 0:  # a breakdown (non-finite or indefinite system): a status, never an exception
                return alpha, it, "breakdown"
        Mr = torch.cholesky_solve(r[:, None], L)[:, 0]
        if a is not None:
            Ma = torch.cholesky_solve(a[:, None], L)[:, 0]
            dnu = (-rp - float(a @ Mr)) / float(a @ Ma)
            da = Mr + dnu * Ma
        else:
            dnu, da = 0.0, Mr
        dz = (mu - alpha * z - z * da) / alpha
        ds = (mu - u * s + s * da) / u
        step = 1.0
        for v, dv in ((alpha, da), (u, -da), (z, dz), (s, ds)):
            neg = dv < 0
            if bool(neg.any()):
                step = min(step, 0.99 * float((-v[neg] / dv[neg]).min()))
        alpha, u = alpha + step * da, u - step * da
        z, s = z + step * dz, s + step * ds
        nu = nu + step * dnu
    return alpha, max_iter, "max_iter"


def _polish(X, y, alpha, bias, C):
    """Solve the KKT equalities exactly on the support set the interior point found (y_i(wᵀx_i + b) = 1 for
    the free support vectors, w = Σ α_i y_i x_i, Σ α_i y_i = 0): machine precision when the set is right.
    Kept only if the polished α is non-negative and no margin drops below 1 − 1e-9; else α is returned."""
    amax = float(alpha.max())
    S = torch.nonzero((alpha > 1e-6 * amax) & (alpha < C * (1 - 1e-6))).flatten()
    if S.numel() == 0 or bool((alpha >= C * (1 - 1e-6)).any()):
        return alpha
    Xs, ys = X[S], y[S]
    k = S.numel()
    G = (ys[:, None] * Xs) @ (ys[:, None] * Xs).T
    if bias:
        A = torch.zeros(k + 1, k + 1, dtype=X.dtype, device=X.device)
        A[:k, :k] = G
        A[:k, k] = ys
        A[k, :k] = ys
        rhs = torch.cat([torch.ones(k, dtype=X.dtype, device=X.device), torch.zeros(1, dtype=X.dtype, device=X.device)])
    else:
        A, rhs = G, torch.ones(k, dtype=X.dtype, device=X.device)
    sol = torch.linalg.lstsq(A, rhs[:, None]).solution[:, 0]
    if not bool(torch.isfinite(sol).all()) or float((A @ sol - rhs).abs().max()) > 1e-9 * (1 + float(rhs.abs().max())):
        return alpha
    new = torch.zeros_like(alpha)
    new[S] = sol[:k]
    if bool((new < 0).any()):
        return alpha
    w = (new * y) @ X
    b = float(sol[k]) if bias else 0.0
    if float((y * (X @ w + b)).min()) < 1 - 1e-9:
        return alpha
    return new
