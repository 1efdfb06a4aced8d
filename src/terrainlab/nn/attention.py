"""Attention as geometry: the weights, the bilinear form of a head, its metric report, entropy and saturation.

Scaled dot-product attention (Vaswani et al. 2017, "Attention is all you need", eq. 1)::

    Attention(Q, K, V) = softmax(Q Kᵀ · s + mask) V,   s = 1/√d_k by default,

with queries and keys as *rows* (Q ∈ ℝ^{n×d_k}, K ∈ ℝ^{m×d_k}). For one head with projections written in
the row convention q = x W_Q, k = y W_K (W_Q, W_K ∈ ℝ^{d_model×d_k}) the score is the bilinear form

    q · k = x W_Q W_Kᵀ yᵀ = x M yᵀ,   M = W_Q W_Kᵀ ∈ ℝ^{d_model×d_model},

of rank ≤ d_k and in general neither symmetric nor definite: it is a (Mahalanobis-type) metric only when M
is symmetric positive semi-definite, and q·k is a cosine only when ‖q‖ and ‖k‖ are fixed (QK-norm; Henry et
al. 2020, "Query-Key Normalization for Transformers"). Weight layouts:

* ``torch.nn.Linear`` stores W of shape (out, in) and computes x Wᵀ + b, so its ``weight`` is the
  *transpose* of the row-convention W_Q: pass ``layout="linear"`` (M = weight_Qᵀ weight_K).
* A fused ``qkv = nn.Linear(d, 3d)`` (e.g. :class:`terrainlab.seq.models.CausalSelfAttention`) holds
  the query rows ``weight[:d]``, the key rows ``weight[d:2d]`` and the values ``weight[2d:]``; head h
  owns the rows ``h·d_k:(h+1)·d_k`` of each block (the forward pass views the output as (…, 3, H, d_k)).
* Hugging Face BERT / MiniLM: ``attention.self.query.weight`` and ``attention.self.key.weight`` are
  ``nn.Linear`` weights (d_model, d_model); head h owns rows ``h·d_k:(h+1)·d_k`` (``transpose_for_scores``).

In every case ``bilinear_form(Wq, Wk, n_heads=H, layout="linear")`` gives the H forms. Biases add the
linear terms x W_Q b_Kᵀ + b_Q W_Kᵀ yᵀ + b_Q·b_K, which are not part of M.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> q, k, v = (torch.randn(2, 5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    >>> res = attention(q, k, v)
    >>> res.output.shape, res.weights.shape
    (torch.Size([2, 5, 4]), torch.Size([2, 5, 5]))
    >>> bool(torch.allclose(res.weights.sum(-1), torch.ones(2, 5, dtype=torch.float64)))
    True
    >>> W_Q = torch.randn(8, 2, generator=g, dtype=torch.float64)
    >>> rep = metric_report(bilinear_form(W_Q, W_Q))        # M = W_Q W_Qᵀ: symmetric PSD, rank 2
    >>> rep.rank, rep.is_psd, round(rep.sym_ratio, 6)
    (2, True, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from terrainlab.core.validate import check_choice, check_int, check_simplex, check_tensor

__all__ = [
    "AttentionResult",
    "MetricReport",
    "SaturationCurve",
    "attention",
    "bilinear_form",
    "metric_report",
    "attention_entropy",
    "saturation_curve",
]


@dataclass(frozen=True)
class AttentionResult:
    """``output`` (…, n, d_v) = ``weights`` @ v; ``weights`` (…, n, m): each row a probability vector."""

    output: torch.Tensor
    weights: torch.Tensor


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
              scale: float | None = None) -> AttentionResult:
    """softmax(q kᵀ · scale + mask) v and the weights (Vaswani et al. 2017, eq. 1).

    Args:
        q: queries (…, n, d_k); k: keys (…, m, d_k); v: values (…, m, d_v); leading dims broadcast.
        mask: optional, broadcastable to (…, n, m): boolean (True = may attend, as in
            ``torch.nn.functional.scaled_dot_product_attention``) or floating (added to the scores,
            −inf forbids). A query row with no allowed key raises ValueError.
        scale: the factor on the scores; None means 1/√d_k. 1.0 gives unscaled attention.

    Returns:
        :class:`AttentionResult` ``(output, weights)``.
    """
    check_tensor(q, "q", min_ndim=2, nonempty=True)
    check_tensor(k, "k", min_ndim=2, nonempty=True)
    check_tensor(v, "v", min_ndim=2, nonempty=True)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last dimension d_k, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys (dim −2), got k {tuple(k.shape)} "
                         f"and v {tuple(v.shape)}")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    elif isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number or None, got {scale!r}")
    scores = (q @ k.transpose(-1, -2)) * scale
    if mask is not None:
        if not torch.is_tensor(mask):
            raise ValueError(f"mask must be a tensor (bool or floating) or None, got {type(mask).__name__}")
        try:
            torch.broadcast_shapes(mask.shape, scores.shape)
        except RuntimeError:
            raise ValueError(f"mask must broadcast to the scores' shape {tuple(scores.shape)}, got "
                             f"{tuple(mask.shape)}") from None
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        elif mask.is_floating_point():
            scores = scores + mask.to(scores.dtype)
        else:
            raise ValueError(f"mask must be bool or floating point, got dtype {mask.dtype}")
        if bool(torch.isneginf(scores).all(-1).any()):
            raise ValueError("mask leaves a query row with no key to attend to")
    weights = torch.softmax(scores, dim=-1)
    return AttentionResult(output=weights @ v, weights=weights)


def bilinear_form(W_Q: torch.Tensor, W_K: torch.Tensor, n_heads: int | None = None, *,
                  layout: str = "row") -> torch.Tensor:
    """The score's bilinear form M = W_Q W_Kᵀ (row convention: score(x, y) = x M yᵀ), per head.

    Args:
        W_Q, W_K: the query and key projections of the same shape. ``layout="row"``: (d_model, H·d_k),
            q = x W_Q; ``layout="linear"``: ``nn.Linear`` weights (H·d_k, d_model), q = x W_Qᵀ — the
            form is then weight_Qᵀ weight_K. A 3-D (H, d_model, d_k) (row) or (H, d_k, d_model)
            (linear) stack is one head per leading index.
        n_heads: split a 2-D projection into this many contiguous heads of d_k = width / H (the
            layout of BERT's ``query``/``key`` and of a fused qkv block); None: one form (2-D input)
            or one per leading index (3-D input).
        layout: ``"row"`` or ``"linear"`` (see above).

    Returns:
        M (d_model, d_model) for one head, or (H, d_model, d_model).
    """
    check_choice(layout, "layout", ("row", "linear"))
    check_tensor(W_Q, "W_Q", ndim=(2, 3), nonempty=True)
    check_tensor(W_K, "W_K", ndim=(2, 3), nonempty=True)
    if W_Q.shape != W_K.shape:
        raise ValueError(f"W_Q and W_K must have the same shape, got {tuple(W_Q.shape)} and {tuple(W_K.shape)}")
    if layout == "linear":
        W_Q, W_K = W_Q.transpose(-1, -2), W_K.transpose(-1, -2)  # now (…, d_model, H·d_k)
    if n_heads is not None:
        n_heads = check_int(n_heads, "n_heads", minimum=1)
        if W_Q.ndim != 2:
            raise ValueError(f"n_heads applies to a 2-D projection; W_Q is a 3-D stack {tuple(W_Q.shape)}")
        d_model, width = W_Q.shape
        if width % n_heads:
            raise ValueError(f"n_heads must divide the projection width {width}, got {n_heads}")
        d_k = width // n_heads
        W_Q = W_Q.reshape(d_model, n_heads, d_k).permute(1, 0, 2)
        W_K = W_K.reshape(d_model, n_heads, d_k).permute(1, 0, 2)
    return W_Q @ W_K.transpose(-1, -2)


@dataclass(frozen=True)
class MetricReport:
    """How far a bilinear form M is from a metric (a symmetric PSD form).

    sym_ratio: ‖M_sym‖_F / ‖M‖_F with M_sym = (M + Mᵀ)/2 (1: symmetric; 0: antisymmetric;
        ‖M‖² = ‖M_sym‖² + ‖M_anti‖²).
    neg_eig_frac: the fraction of the numerically non-zero eigenvalues of M_sym that are negative.
    neg_eig_mass: Σ|λ_i| over negative eigenvalues / Σ|λ_i| over all (0 for PSD, ½ for balanced).
    rank: the numerical rank of M (singular values above ``rtol``·σ_max).
    is_symmetric: ‖M_anti‖_F ≤ 1e3·rtol·‖M‖_F, M_anti = (M − Mᵀ)/2.
    is_psd: xᵀMx ≥ 0 for all x, i.e. M_sym has no eigenvalue below −rtol·max|λ|.
    is_metric: symmetric and PSD (what a Mahalanobis metric needs).
    eigenvalues: the eigenvalues of M_sym, ascending (float64).
    """

    sym_ratio: float
    neg_eig_frac: float
    neg_eig_mass: float
    rank: int
    is_symmetric: bool
    is_psd: bool
    is_metric: bool
    eigenvalues: torch.Tensor


def metric_report(M: torch.Tensor, *, rtol: float = 1e-8) -> MetricReport:
    """The metric report of one square form M (computed in float64): symmetry ratio, negative
    eigenvalues of the symmetric part, numerical rank, PSD and metric flags.

    ``rtol`` is relative to the largest singular value (rank) or eigenvalue magnitude (signs, PSD); the
    symmetric test is ‖M_anti‖_F ≤ 1e3·rtol·‖M‖_F. A float32 weight product carries ~1e-7 relative
    round-off, so forms of float32 weights should be formed in float64 (as the experiments do).
    """
    check_tensor(M, "M", ndim=2, nonempty=True, finite=True)
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"M must be square, got shape {tuple(M.shape)}")
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 < rtol < 1:
        raise ValueError(f"rtol must be a number in (0, 1), got {rtol!r}")
    M = M.detach().to(torch.float64)
    norm = float(torch.linalg.matrix_norm(M))
    if norm == 0:
        raise ValueError("M must not be the zero matrix (no form to report on)")
    S = (M + M.T) / 2
    A = (M - M.T) / 2
    sym_ratio = float(torch.linalg.matrix_norm(S)) / norm
    lam = torch.linalg.eigvalsh(S)
    big = float(lam.abs().max())
    nonzero = lam.abs() > rtol * big
    neg = lam < -rtol * big
    sv = torch.linalg.svdvals(M)
    rank = int((sv > rtol * sv[0]).sum())
    is_symmetric = float(torch.linalg.matrix_norm(A)) <= 1e3 * rtol * norm
    is_psd = not bool(neg.any())
    return MetricReport(
        sym_ratio=sym_ratio,
        neg_eig_frac=float(neg.sum()) / max(1, int(nonzero.sum())),
        neg_eig_mass=float(lam[neg].abs().sum() / lam.abs().sum()) if big > 0 else 0.0,
        rank=rank,
        is_symmetric=bool(is_symmetric),
        is_psd=is_psd,
        is_metric=bool(is_symmetric and is_psd),
        eigenvalues=lam,
    )


def attention_entropy(A: torch.Tensor) -> torch.Tensor:
    """Shannon entropy −Σ_j a_ij log a_ij (nats, 0·log 0 = 0) of each row of attention weights A (…, m).

    Between 0 (one-hot) and log m (uniform). Rows must be probability vectors (ValueError otherwise).
    """
    check_simplex(A, "A")
    return -torch.special.xlogy(A, A).sum(-1)


@dataclass(frozen=True)
class SaturationCurve:
    """Attention of i.i.d. N(0, 1) queries on keys against d_k.

    d_k: the dimensions; scaled: whether the scores were multiplied by 1/√d_k;
    entropy: mean row entropy (nats) per d_k; entropy_normalised: entropy / log n_keys;
    max_weight: mean largest weight per row; logit_var: the sample variance of the raw q·k (≈ d_k);
    cosine_abs: mean |cos(q, k)| (≈ √(2/(π d_k)): random vectors nearly orthogonal);
    n_keys, n_queries: the sizes.
    """

    d_k: tuple[int, ...]
    scaled: bool
    entropy: tuple[float, ...]
    entropy_normalised: tuple[float, ...]
    max_weight: tuple[float, ...]
    logit_var: tuple[float, ...]
    cosine_abs: tuple[float, ...]
    n_keys: int
    n_queries: int


def saturation_curve(d_k_list: Sequence[int], scaled: bool, *, n_keys: int = 64, n_queries: int = 256,
                     generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                     device: torch.device | str | None = None) -> SaturationCurve:
    """Mean attention entropy of random queries on random keys (entries i.i.d. N(0, 1)) for each d_k,
    with (``scaled=True``: scores q·k/√d_k) or without the 1/√d_k of Vaswani et al. (2017).

    For i.i.d. unit-variance entries Var(q·k) = d_k, so unscaled scores spread as √d_k and the softmax
    saturates to one-hot (entropy → 0) as d_k grows, while the scaled scores keep unit variance and the
    entropy stays O(1). Each query has its own n_keys keys (independent rows). Draws on ``device``
    (the generator's device) in ``dtype``.
    """
    if isinstance(d_k_list, (str, bytes)) or not isinstance(d_k_list, Sequence) or len(d_k_list) == 0:
        raise ValueError(f"d_k_list must be a non-empty sequence of positive ints, got {d_k_list!r}")
    dims = tuple(check_int(d, "d_k_list", minimum=1) for d in d_k_list)
    if not isinstance(scaled, bool):
        raise ValueError(f"scaled must be a bool, got {scaled!r}")
    n_keys = check_int(n_keys, "n_keys", minimum=2)
    n_queries = check_int(n_queries, "n_queries", minimum=2)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    ent, entn, mx, var, cos = [], [], [], [], []
    for d in dims:
        q = torch.randn(n_queries, 1, d, generator=generator, dtype=dtype, device=device)
        k = torch.randn(n_queries, n_keys, d, generator=generator, dtype=dtype, device=device)
        dots = (q * k).sum(-1)  # (n_queries, n_keys): raw q·k
        w = torch.softmax(dots / math.sqrt(d) if scaled else dots, dim=-1)
        h = attention_entropy(w)
        ent.append(float(h.mean()))
        entn.append(float(h.mean()) / math.log(n_keys))
        mx.append(float(w.amax(-1).mean()))
        var.append(float(dots.var()))
        cos.append(float((dots / (q.norm(dim=-1) * k.norm(dim=-1))).abs().mean()))
    return SaturationCurve(d_k=dims, scaled=scaled, entropy=tuple(ent), entropy_normalised=tuple(entn),
                           max_weight=tuple(mx), logit_var=tuple(var), cosine_abs=tuple(cos), n_keys=n_keys,
                           n_queries=n_queries)
