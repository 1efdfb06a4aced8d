"""PCA, the SVD as rotate–scale–rotate, and the effective rank of a spectrum (chapter 10).

- :func:`pca`: the top-k eigenvectors of the covariance C = (1/n) X_cᵀX_c of the centred data X_c
  (Pearson 1901; Hotelling 1933). The eigenvalues are the variances along the principal axes:
  Var(X_c v_i) = v_iᵀ C v_i = λ_i for a unit eigenvector v_i.
- :func:`svd_geometry`: A = U Σ Vᵀ (Eckart & Young 1936), with U the eigenvectors of AAᵀ and V those of
  AᵀA; :meth:`SVDGeometry.stages` maps points through the three factors one at a time
  (x → Vᵀx → ΣVᵀx → UΣVᵀx = Ax), the picture of a linear map as rotate, scale, rotate.
- :func:`effective_rank`: how many directions a spectrum really uses — the *entropy* effective rank
  exp(H(p)), p_i = σ_i / Σ_j σ_j (Roy & Vetterli, "The effective rank: a measure of effective
  dimensionality", EUSIPCO 2007), or the *stable* rank ‖A‖_F² / ‖A‖_2² = Σσ_i² / σ_1² (Rudelson &
  Vershynin 2007). Both lie in [1, rank A], equal to the rank when the nonzero σ_i are equal.

Everything is plain torch linear algebra on the caller's device and dtype (use float64 where the
digits matter).

Example:
    >>> import torch
    >>> round(effective_rank(torch.tensor([1.0, 1.0, 1.0, 0.0])), 12)
    3.0
    >>> effective_rank(torch.tensor([2.0, 1.0, 1.0]), kind="stable")
    1.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["PCAResult", "SVDGeometry", "effective_rank", "pca", "svd_geometry"]

EFFECTIVE_RANK_KINDS = ("entropy", "stable")


def _matrix(X, name: str) -> torch.Tensor:
    if not torch.is_tensor(X):
        raise ValueError(f"{name} must be a torch tensor, got {type(X).__name__}")
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D matrix, got shape {tuple(X.shape)}")
    if not torch.is_floating_point(X):
        raise ValueError(f"{name} must be floating point, got {X.dtype}")
    if not bool(torch.isfinite(X).all()):
        raise ValueError(f"{name} must be finite (it holds NaN or inf)")
    return X


@dataclass(frozen=True)
class PCAResult:
    """The result of :func:`pca`.

    components: (k, d), the principal axes as orthonormal rows, in decreasing variance (each axis's
                sign fixed so its largest-|·| entry is positive).
    variances:  (k,), the eigenvalues λ_1 ≥ … ≥ λ_k of C = (1/n) X_cᵀX_c, the variance along each axis.
    mean:       (d,), the column means removed before the eigen-decomposition.
    explained_ratio: (k,), λ_i / trace C (zero for constant data).
    """

    components: torch.Tensor
    variances: torch.Tensor
    mean: torch.Tensor
    explained_ratio: torch.Tensor

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        """The coordinates (X − mean) V_kᵀ of the rows of ``X`` along the principal axes, shape (n, k)."""
        X = _matrix(X, "X")
        if X.shape[1] != self.mean.shape[0]:
            raise ValueError(f"X must have {self.mean.shape[0]} columns, got {X.shape[1]}")
        return (X - self.mean) @ self.components.T


def pca(X: torch.Tensor, k: int) -> PCAResult:
    """The top-``k`` principal components of the rows of ``X`` (n samples × d features).

    Eigen-decomposition of C = (1/n) X_cᵀX_c (the biased covariance the book writes; scikit-learn's
    ``explained_variance_`` is n/(n − 1) times these variances). Pearson (1901), Hotelling (1933).

    Raises:
        ValueError: ``X`` not a finite floating 2-D tensor; ``k`` not an int in [1, d].

    Example:
        >>> X = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
        >>> r = pca(X, 2)
        >>> r.variances.tolist(), r.components.abs().tolist()
        ([2.0, 0.5], [[1.0, 0.0], [0.0, 1.0]])
    """
    X = _matrix(X, "X")
    n, d = X.shape
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= d:
        raise ValueError(f"k must be an int in [1, {d}] (the number of features), got {k!r}")
    mean = X.mean(0)
    Xc = X - mean
    C = Xc.T @ Xc / n
    evals, evecs = torch.linalg.eigh((C + C.T) / 2)  # ascending
    evals = evals.flip(0).clamp(min=0)
    evecs = evecs.flip(1).T  # rows, descending
    idx = evecs.abs().argmax(1)
    sign = torch.sign(evecs.gather(1, idx[:, None]))
    sign[sign == 0] = 1
    evecs = evecs * sign
    total = evals.sum()
    ratio = evals / total if float(total) > 0 else torch.zeros_like(evals)
    return PCAResult(components=evecs[:k], variances=evals[:k], mean=mean, explained_ratio=ratio[:k])


@dataclass(frozen=True)
class SVDGeometry:
    """A = U diag(S) Vᵀ (thin SVD): U (m, r), S (r,) descending, V (n, r), r = min(m, n).

    U's columns are eigenvectors of AAᵀ and V's of AᵀA, with eigenvalues S² (Eckart & Young 1936).
    """

    U: torch.Tensor
    S: torch.Tensor
    V: torch.Tensor

    def stages(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The points (rows, shape (N, n)) after each factor: (x, Vᵀx, ΣVᵀx, UΣVᵀx = Ax), each as rows.

        For a square A: rotate (or reflect) by Vᵀ, scale the axes by Σ, rotate by U."""
        if not torch.is_tensor(points) or points.ndim != 2 or points.shape[1] != self.V.shape[0]:
            shape = tuple(points.shape) if torch.is_tensor(points) else type(points).__name__
            raise ValueError(f"points must be a 2-D tensor with {self.V.shape[0]} columns, got {shape}")
        a = points @ self.V
        b = a * self.S
        c = b @ self.U.T
        return points, a, b, c

    def reconstruct(self) -> torch.Tensor:
        """U diag(S) Vᵀ."""
        return (self.U * self.S) @ self.V.T


def svd_geometry(A: torch.Tensor) -> SVDGeometry:
    """The thin SVD A = U Σ Vᵀ as an :class:`SVDGeometry` (U, S, V with V, not Vᵀ).

    Raises:
        ValueError: ``A`` not a finite floating 2-D tensor.

    Example:
        >>> g = svd_geometry(torch.tensor([[3.0, 0.0], [0.0, -2.0]], dtype=torch.float64))
        >>> g.S.tolist(), bool(torch.allclose(g.reconstruct(), torch.tensor([[3.0, 0.0], [0.0, -2.0]],
        ...                                                            dtype=torch.float64)))
        ([3.0, 2.0], True)
    """
    A = _matrix(A, "A")
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return SVDGeometry(U=U, S=S, V=Vh.mT)


def effective_rank(S: torch.Tensor, kind: str = "entropy") -> float:
    """The effective rank of a spectrum of singular values ``S`` (1-D, non-negative, not all zero).

    ``kind="entropy"``: exp(−Σ p_i log p_i) with p_i = σ_i / Σ_j σ_j (Roy & Vetterli 2007; 0 log 0 = 0).
    ``kind="stable"``: Σ σ_i² / max_i σ_i², i.e. ‖A‖_F² / ‖A‖_2² (Rudelson & Vershynin 2007).

    Raises:
        ValueError: ``S`` not a 1-D floating tensor of finite non-negative values with one > 0;
            ``kind`` not "entropy" or "stable".

    Example:
        >>> round(effective_rank(torch.tensor([4.0, 2.0, 1.0, 1.0])), 4)
        3.3636
    """
    if kind not in EFFECTIVE_RANK_KINDS:
        raise ValueError(f"kind must be one of {EFFECTIVE_RANK_KINDS}, got {kind!r}")
    if not torch.is_tensor(S) or S.ndim != 1 or S.numel() == 0 or not torch.is_floating_point(S):
        got = f"shape {tuple(S.shape)}, {S.dtype}" if torch.is_tensor(S) else type(S).__name__
        raise ValueError(f"S must be a non-empty 1-D floating tensor of singular values, got {got}")
    if not bool(torch.isfinite(S).all()) or bool((S < 0).any()):
        raise ValueError("S must hold finite non-negative singular values")
    s = S.detach().to(torch.float64)
    total = float(s.sum())
    if not total > 0:
        raise ValueError("S must have at least one singular value > 0 (the zero matrix has no effective rank)")
    if kind == "stable":
        return float((s**2).sum() / s.max() ** 2)
    p = s[s > 0] / total
    return float(math.exp(float(-(p * p.log()).sum())))
