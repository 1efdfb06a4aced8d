"""Judging reasoning trajectories: ROC/AUROC with a bootstrap interval, chance-corrected agreement of two
labellings, and the contraction fit of a divergence sequence.

**AUROC** (Hanley & McNeil 1982): the probability that a random positive scores above a random negative,
ties counting one half — the Mann–Whitney statistic with mid-ranks r_i,

    AUROC = (Σ_{i ∈ pos} r_i − n₊(n₊ + 1)/2) / (n₊ n₋),

0.5 for a score that carries no information. Its interval is a stratified percentile bootstrap (Efron &
Tibshirani 1993): positives and negatives are resampled separately (so every resample has both), from
the ``generator`` passed in. This is how §7.3 of the monograph's chapter 7 asks the "fraction of
substantive steps" to be judged as an evaluator of answer correctness, with a predictor that must work
(the model's own confidence) as its control.

**Cohen's κ** (Cohen 1960): agreement of two labellings of the same items beyond what their marginals
give by chance, κ = (p_o − p_e)/(1 − p_e) with p_o the observed agreement and p_e = Σ_c a_c b_c. It is
what "the control reproduces the class assignment" means step by step: raw agreement is high whenever one
class dominates both labellings.

**Contraction fit** of D_0 … D_T, e.g. D_t = KL(p_T‖p_t) of an answer belief (Theorem 2 of chapter 7
claims D_t ≤ k^t D_0 with k < 1): whether D never increases, the share of steps that do not increase,
the least-squares rate k of log D_t ≈ a + t log k over the D_t > 0 with t < T and its R², the median and
the largest one-step ratio D_{t+1}/D_t, the envelope rate k_env = max_{0<t<T} (D_t/D_0)^{1/t} (the
smallest k with D_t ≤ k^t D_0 at every measured step), the first step with D_t ≤ ε and the step after
which D stays ≤ ε, and the book's count log(ε/D_0)/log k_env — a *sufficient* number of steps when
D_t ≤ k^t D_0 holds (an upper bound on the steps needed, :func:`terrainlab.belief.steps_to_eps`), not the
lower bound the book calls it.

Example:
    >>> import torch
    >>> r = roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([False, False, True, True]))
    >>> r.auroc
    0.75
    >>> cohen_kappa(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 1]))
    1.0
    >>> f = contraction_fit(0.5 ** torch.arange(6.0))
    >>> f.monotone, round(f.rate, 6), round(f.median_ratio, 6)
    (True, 0.5, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.validate import check_instance, check_int, check_number, check_tensor

__all__ = ["ContractionFit", "ROC", "cohen_kappa", "contraction_fit", "roc_auc"]


@dataclass(frozen=True)
class ROC:
    """auroc: P(score of a positive > score of a negative), ties ½ (NaN without both classes);
    low, high: the bootstrap percentile interval at ``level`` (NaN without a generator or without both
    classes); fpr, tpr: the ROC curve, from (0, 0) to (1, 1), one point per distinct score;
    n_pos, n_neg: the counts scored; n_nonfinite: items dropped for a NaN/inf score; n_boot."""

    auroc: float
    low: float
    high: float
    level: float
    fpr: torch.Tensor
    tpr: torch.Tensor
    n_pos: int
    n_neg: int
    n_nonfinite: int
    n_boot: int


def _midranks(x: torch.Tensor) -> torch.Tensor:
    """1-based mid-ranks along the last axis (ties share the mean of their ranks)."""
    s = torch.sort(x, dim=-1).values
    lo = torch.searchsorted(s, x, right=False)
    hi = torch.searchsorted(s, x, right=True)
    return (lo + hi + 1).to(torch.float64) / 2


def _auc(scores: torch.Tensor, n_pos: int, n_neg: int) -> torch.Tensor:
    """AUROC of rows whose first n_pos entries are the positives."""
    r = _midranks(scores)
    return (r[..., :n_pos].sum(-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def roc_auc(scores, labels, *, generator: torch.Generator | None = None, n_boot: int = 1000,
            level: float = 0.95) -> ROC:
    """AUROC of ``scores`` (N,) as a predictor of the boolean ``labels`` (N,) (True = positive), with the
    ROC curve and, when a ``generator`` is given, a stratified percentile-bootstrap interval from
    ``n_boot`` resamples. Non-finite scores are dropped and counted (``n_nonfinite``)."""
    s = torch.as_tensor(scores)
    if not (s.is_floating_point() or s.is_complex()) and s.dtype != torch.bool:
        s = s.to(torch.float64)  # integer scores (counts) are fine
    check_tensor(s, "scores", ndim=1)
    y = torch.as_tensor(labels)
    if y.shape != s.shape or y.is_floating_point() or y.is_complex():
        raise ValueError(f"labels must be a boolean/integer tensor of shape {tuple(s.shape)}, got "
                         f"{y.dtype} of shape {tuple(y.shape)}")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("labels must be 0/1 or boolean")
    check_int(n_boot, "n_boot", minimum=0)
    check_number(level, "level", minimum=0, maximum=1)
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    if generator is not None:
        check_instance(generator, "generator", torch.Generator, "a torch.Generator or None")
    s = s.detach().to("cpu", torch.float64)
    y = y.to("cpu").bool()
    ok = torch.isfinite(s)
    n_bad = int((~ok).sum())
    s, y = s[ok], y[ok]
    pos, neg = s[y], s[~y]
    n_pos, n_neg = pos.numel(), neg.numel()
    nan = float("nan")
    if n_pos == 0 or n_neg == 0:
        return ROC(auroc=nan, low=nan, high=nan, level=float(level), fpr=torch.zeros(0), tpr=torch.zeros(0),
                   n_pos=n_pos, n_neg=n_neg, n_nonfinite=n_bad, n_boot=0)
    auc = float(_auc(torch.cat([pos, neg]), n_pos, n_neg))
    # the ROC curve: thresholds at every distinct score, highest first
    thr = torch.unique(s).flip(0)
    tpr = (pos[None, :] >= thr[:, None]).double().mean(1)
    fpr = (neg[None, :] >= thr[:, None]).double().mean(1)
    fpr, tpr = torch.cat([torch.zeros(1), fpr]), torch.cat([torch.zeros(1), tpr])
    low = high = nan
    if generator is not None and n_boot > 0:
        ip = torch.randint(0, n_pos, (n_boot, n_pos), generator=generator)
        ineg = torch.randint(0, n_neg, (n_boot, n_neg), generator=generator)
        boots = _auc(torch.cat([pos[ip], neg[ineg]], dim=1), n_pos, n_neg)
        a = (1 - level) / 2
        q = torch.quantile(boots, torch.tensor([a, 1 - a], dtype=torch.float64))
        low, high = float(q[0]), float(q[1])
    else:
        n_boot = 0
    return ROC(auroc=auc, low=low, high=high, level=float(level), fpr=fpr, tpr=tpr, n_pos=n_pos, n_neg=n_neg,
               n_nonfinite=n_bad, n_boot=int(n_boot))


def cohen_kappa(a, b, *, n_classes: int | None = None) -> float:
    """Cohen's κ between two integer labellings of the same items (any equal shapes). Negative labels
    (e.g. −1, a nonfinite step in :func:`~terrainlab.seq.classify_steps`) are left out in both. κ = 1:
    the same assignment; 0: no more agreement than the marginals give by chance; NaN when no item is
    left. When both labellings put everything in one and the same class, κ is 1 (p_e = 1 = p_o)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f"b must have the shape of a {tuple(a.shape)}, got {tuple(b.shape)}")
    for t, name in ((a, "a"), (b, "b")):
        if t.is_floating_point() or t.is_complex():
            raise ValueError(f"{name} must hold integer class labels, got {t.dtype}")
    keep = (a >= 0) & (b >= 0)
    a, b = a[keep].long().cpu(), b[keep].long().cpu()
    if a.numel() == 0:
        return float("nan")
    C = int(max(int(a.max()), int(b.max())) + 1)
    if n_classes is not None:
        check_int(n_classes, "n_classes", minimum=C)
        C = n_classes
    n = a.numel()
    po = float((a == b).double().mean())
    pe = float((torch.bincount(a, minlength=C).double() / n * torch.bincount(b, minlength=C).double() / n).sum())
    if pe >= 1.0:
        return 1.0 if po >= 1.0 else float("nan")
    return (po - pe) / (1 - pe)


@dataclass(frozen=True)
class ContractionFit:
    """The contraction reading of one divergence sequence D (T+1,) (see the module docstring).

    monotone: no step increases D by more than ``rtol``·max(D_0, 1e-12), and every D_t is finite;
    n_increases; monotone_fraction: the share of finite steps that do not increase D;
    rate, r2: k and R² of log D_t ≈ a + t log k over the finite D_t > 0 with t < T (NaN with fewer
    than two points; R² NaN when those points have no spread);
    median_ratio, max_ratio: of D_{t+1}/D_t over the steps with D_t > 0 and t + 1 < T (the last step
    lands on D_T, which is 0 by definition when the target is p_T);
    envelope_rate: max over 0 < t < T of (D_t/D_0)^{1/t}, the smallest k with D_t ≤ k^t D_0 at every
    measured step (NaN unless D_0 > 0 and T ≥ 2);
    first_below: first t with D_t ≤ eps (None if never); settle: first t from which D stays ≤ eps;
    book_steps: log(eps/D_0)/log(envelope_rate), the book's count — with this k a sufficient count, so
    first_below ≤ ⌈book_steps⌉ whenever it is defined (NaN unless 0 < envelope_rate < 1 and D_0 > 0;
    negative when D_0 ≤ eps already); eps."""

    monotone: bool
    n_increases: int
    monotone_fraction: float
    rate: float
    r2: float
    median_ratio: float
    max_ratio: float
    envelope_rate: float
    first_below: int | None
    settle: int | None
    book_steps: float
    eps: float


def contraction_fit(D, *, eps: float = 1e-2, rtol: float = 1e-6) -> ContractionFit:
    """Fit D_t ≤ k^t D_0 to a divergence sequence ``D`` (T+1,) ≥ 0 (NaN entries are reported: they make
    the sequence non-monotone and are left out of the fits). See :class:`ContractionFit`."""
    D = torch.as_tensor(D)
    if not (D.is_floating_point() or D.is_complex()) and D.dtype != torch.bool:
        D = D.to(torch.float64)
    check_tensor(D, "D", ndim=1)
    if D.numel() < 2:
        raise ValueError(f"D must hold at least two values (D_0 … D_T), got {D.numel()}")
    check_number(eps, "eps", minimum=0)
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    check_number(rtol, "rtol", minimum=0)
    D = D.detach().to("cpu", torch.float64)
    fin = torch.isfinite(D)
    if bool((D[fin] < 0).any()):
        raise ValueError("D must be a divergence sequence (non-negative)")
    D0 = float(D[0])
    diff = D[1:] - D[:-1]
    step_ok = torch.isfinite(diff)
    inc = step_ok & (diff > rtol * max(abs(D0) if math.isfinite(D0) else 0.0, 1e-12))
    n_inc = int(inc.sum())
    n_steps = int(step_ok.sum())
    mono_frac = (n_steps - n_inc) / n_steps if n_steps else float("nan")
    T = D.numel() - 1
    head = D[:T]
    use = torch.isfinite(head) & (head > 0)
    t = torch.arange(T, dtype=torch.float64)[use]
    rate = r2 = float("nan")
    if t.numel() >= 2:
        y = torch.log(head[use])
        A = torch.stack([torch.ones_like(t), t], 1)
        sol = torch.linalg.lstsq(A, y[:, None]).solution[:, 0]
        rate = math.exp(float(sol[1]))
        ss_tot = float(((y - y.mean()) ** 2).sum())
        if ss_tot > 0:
            r2 = 1 - float(((y - A @ sol) ** 2).sum()) / ss_tot
    num, den = D[1:T], D[:T - 1]
    ok = torch.isfinite(num) & torch.isfinite(den) & (den > 0)
    ratios = num[ok] / den[ok]
    med = float(ratios.median()) if ratios.numel() else float("nan")
    mx = float(ratios.max()) if ratios.numel() else float("nan")
    below = fin & (D <= eps)
    first = int(below.nonzero()[0, 0]) if bool(below.any()) else None
    above = (~below).nonzero()
    settle = 0 if above.numel() == 0 else (int(above[-1, 0]) + 1 if int(above[-1, 0]) < T else None)
    env = float("nan")
    if D0 > 0 and math.isfinite(D0) and T >= 2:
        tt = torch.arange(1, T, dtype=torch.float64)
        env = float(((head[1:] / D0).clamp(min=0) ** (1 / tt)).max())  # NaN anywhere propagates
    book = float("nan")
    if 0 < env < 1:
        book = math.log(eps / D0) / math.log(env)
    return ContractionFit(monotone=n_inc == 0 and bool(fin.all()), n_increases=n_inc, monotone_fraction=mono_frac,
                          rate=rate, r2=r2, median_ratio=med, max_ratio=mx, envelope_rate=env, first_below=first, settle=settle,
                          book_steps=book, eps=float(eps))
