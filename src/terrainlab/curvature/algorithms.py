"""Spectral algorithms on symmetric operators: eigenpairs, trace, spectral density.

* :func:`eigs` — thick-restart Lanczos (Wu & Simon 2000; Stathopoulos, Saad & Wu 1998) with full
  reorthogonalisation (classical Gram–Schmidt applied twice, "twice is enough", Giraud et al. 2005).
  Every returned pair carries its *explicitly computed* residual ‖Av − λv‖ (one extra product per
  pair) and ``converged`` is True only when that residual is ≤ ``tol``·|λ| + ``atol``.
* :func:`power_iteration` — warm-startable power method (von Mises 1929) for λ of largest
  magnitude, with the same residual certificate.
* :func:`trace` — Hutchinson (1989), Hutch++ (Meyer, Musco, Musco & Woodruff 2021) and its
  Krylov-aware variant (Chen & Hallman 2023), each with a standard error.
* :func:`spectral_density` — stochastic Lanczos quadrature (Golub & Meurant 1994; Ghorbani,
  Krishnan & Xiao 2019; Lin, Saad & Yang 2016) with Gaussian smoothing.

All algorithms accept any object with ``size``, ``dtype``, ``device`` and ``matvec`` (every
:class:`~terrainlab.curvature.operators.CurvatureOperator`); where the object also has ``matmat``
(a block of vectors in one pass over the data) the trace probes, the Hutch++ sketch, the eigenpair
certificates and the SLQ probes use it. The Lanczos recurrence itself is
:func:`terrainlab.core.linalg.lanczos`. Non-convergence, NaN and inf are a ``status`` in the
result (:class:`~terrainlab.core.status.Status`: ``converged`` / ``completed`` / ``max_steps`` /
``nonfinite``), never an exception; bad arguments raise ``ValueError`` naming the argument.

Example:
    >>> import torch
    >>> from terrainlab.curvature import DenseOperator, eigs
    >>> A = DenseOperator(torch.diag(torch.arange(1.0, 101.0, dtype=torch.float64)))
    >>> r = eigs(A, k=3, which="LA", tol=1e-10)
    >>> [round(lam, 6) for lam in r.eigenvalues.tolist()], bool(r.converged.all())
    ([100.0, 99.0, 98.0], True)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from terrainlab.core.linalg.lanczos import lanczos as _core_lanczos
from terrainlab.core.linalg.lanczos import lanczos_block, orthogonalize
from terrainlab.core.status import Status
from terrainlab.core.validate import (
    check_choice,
    check_int,
    check_nonnegative,
    check_positive,
    check_tensor,
)

_WHICH = ("LA", "SA", "LM")


@dataclass(frozen=True)
class EigResult:
    """Eigenpairs with their certificates.

    ``eigenvalues`` (k,) sorted as requested by ``which``; ``eigenvectors`` (size, k) unit columns;
    ``residuals`` (k,) = ‖A v_i − λ_i v_i‖ computed with fresh products; ``converged`` (k,) bool;
    ``status`` is ``converged`` (all k converged), ``max_steps`` (the product budget ran out) or
    ``nonfinite`` (a product held NaN or inf: the values are NaN); ``n_matvec`` counts every
    product, including the certificate products.
    """

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    residuals: torch.Tensor
    converged: torch.Tensor
    status: Status
    n_matvec: int
    n_restarts: int
    seconds: float
    which: str
    tol: float


@dataclass(frozen=True)
class TraceResult:
    """A trace estimate with its standard error and cost; ``status`` is ``completed``, or
    ``nonfinite`` (estimate and error NaN) when a product held NaN or inf."""

    estimate: float
    std_error: float
    n_matvec: int
    seconds: float
    method: str
    n_samples: int
    status: Status = Status.COMPLETED


@dataclass(frozen=True)
class DensityResult:
    """Stochastic Lanczos quadrature: per-probe Ritz nodes/weights and a smoothed density.

    ``nodes`` and ``weights`` have shape (n_probes, m); ``density(grid, sigma)`` evaluates
    φ(t) = (1/n_probes) Σ_l Σ_j w_lj · N(t; θ_lj, σ²), which integrates to 1 (eigenvalue counting
    density divided by the size). ``grid``/``values`` hold it on a default grid. ``status`` is
    ``completed``, or ``nonfinite`` when a product held NaN or inf (then ``grid`` and ``values``
    are empty and the nodes NaN).
    """

    nodes: torch.Tensor
    weights: torch.Tensor
    grid: torch.Tensor
    values: torch.Tensor
    sigma: float
    n_matvec: int
    seconds: float
    status: Status = Status.COMPLETED

    def density(self, grid: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        s = self.sigma if sigma is None else check_positive(float(sigma), "sigma")
        g = grid.to(self.nodes.dtype)[:, None, None]
        k = torch.exp(-0.5 * ((g - self.nodes[None]) / s) ** 2) / (s * math.sqrt(2 * math.pi))
        return (k * self.weights[None]).sum(-1).mean(-1)

    def trace_estimate(self, size: int) -> float:
        """SLQ estimate of tr(A) = size · mean_l Σ_j w_lj θ_lj."""
        return float(size * (self.weights * self.nodes).sum(-1).mean())


def _check_op(op):
    for attr in ("size", "dtype", "device", "matvec"):
        if not hasattr(op, attr):
            raise ValueError(f"op must be a linear operator with size/dtype/device/matvec, lacks {attr}")
    if not (isinstance(op.dtype, torch.dtype) and (op.dtype.is_floating_point or op.dtype.is_complex)):
        raise ValueError(f"op must have a floating-point dtype, got {op.dtype}")


def _matmat(op, V: torch.Tensor) -> torch.Tensor:
    """A V for a block (size, k): the operator's one-pass ``matmat`` if it has one, else columns."""
    if hasattr(op, "matmat"):
        return op.matmat(V)
    return torch.stack([op.matvec(V[:, i]) for i in range(V.shape[1])], dim=1)


def _check_v0(op, v0):
    """A warm start must be a finite, nonzero vector of the operator's size (never silently dropped)."""
    if v0 is None:
        return None
    check_tensor(v0, "v0", finite=True)
    if v0.numel() != op.size or v0.ndim not in (1, 2) or (v0.ndim == 2 and 1 not in v0.shape):
        raise ValueError(f"v0 must be a vector of shape ({op.size},), got {tuple(v0.shape)}")
    v = v0.to(device=op.device, dtype=op.dtype).reshape(-1).clone()
    if v.norm() == 0:
        raise ValueError("v0 must be nonzero")
    return v


def _rand(op, generator, rademacher=False):
    """A Gaussian (or Rademacher) vector of the operator's size, dtype and device.

    On the CPU it is drawn from ``generator`` directly. On an accelerator it is drawn *there*
    (drawing 10⁷ numbers on the host and copying them over cost more than a ResNet-18 Hessian
    product, measured on an H200), from a device generator seeded by ``generator`` so a seeded run
    stays reproducible; with no generator, from the device's default stream of random numbers.
    """
    dev, g, dt = op.device, generator, torch.float64
    if dev.type != "cpu" and (g is None or g.device != dev):
        dt = op.dtype
        if g is not None:
            g = torch.Generator(device=dev)
            g.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
    if rademacher:
        x = torch.randint(0, 2, (op.size,), generator=g, dtype=torch.int64, device=dev)
        x = (2 * x - 1).to(op.dtype)
    else:
        x = torch.randn(op.size, generator=g, dtype=dt, device=dev).to(op.dtype)
    sync = getattr(op, "broadcast", None)
    return sync(x) if sync is not None else x


def _order(theta: torch.Tensor, which: str) -> torch.Tensor:
    if which == "LA":
        return torch.argsort(theta, descending=True)
    if which == "SA":
        return torch.argsort(theta)
    return torch.argsort(theta.abs(), descending=True)


def _wanted_converged(T, j, beta, k, which, tol, atol) -> bool:
    Tm = T[:j, :j]
    theta, Y = torch.linalg.eigh(0.5 * (Tm + Tm.T))
    order = _order(theta, which)[:k]
    est = beta * Y[j - 1, order].abs()
    return bool((est <= tol * theta[order].abs() + atol).all())


def eigs(
    op,
    k: int = 1,
    which: str = "LA",
    tol: float = 1e-6,
    *,
    atol: float = 0.0,
    ncv: int | None = None,
    max_matvec: int | None = None,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> EigResult:
    """k extreme eigenpairs of a symmetric operator by thick-restart Lanczos.

    The Krylov basis V_m (``ncv`` columns) is kept orthonormal by full reorthogonalisation, and the
    projected matrix T_m = V_mᵀ A V_m is assembled from the orthogonalisation coefficients. After
    each cycle the Ritz pairs (θ_i, V_m y_i) are ranked by ``which`` ("LA" largest algebraic, "SA"
    smallest algebraic, "LM" largest magnitude) — also after every expansion step, so the
    iteration stops as soon as the wanted pairs are accurate; if the Krylov residual estimates |β_m y_{m,i}| of
    the k wanted pairs are not all ≤ tol·|θ_i| + atol, the basis is contracted to the best
    p = k + (ncv − k)//2 Ritz vectors plus the last Lanczos vector (the "thick restart", which
    keeps A V_p = V_p Θ_p + β v_{p+1} (y_m)ᵀ exact) and expanded again.

    The returned residuals are recomputed with fresh products, so ``converged`` is honest even if
    the operator is nondeterministic or orthogonality was lost.

    Args:
        op: symmetric operator (``size``, ``dtype``, ``device``, ``matvec``).
        k: number of eigenpairs, 1 ≤ k < size.
        which: "LA", "SA" or "LM".
        tol: relative residual tolerance; atol: absolute one. The tolerance must sit above the
            operator's own rounding level, which model operators measure with
            ``op.rounding_error()``: about 1e-7 relative for a float32 model in general, but
            1e-3 near a memorised point (then use ``dtype=torch.float64`` on the operator).
        ncv: basis size (default min(size, max(2k + 10, 20))).
        max_matvec: product budget including the k certificate products (default 50·ncv).
        v0: starting vector (warm start), e.g. the previous top eigenvector: finite, nonzero,
            ``size`` entries.
        generator: for the random start vector.

    A product holding NaN or inf (a NaN loss, a NaN operator) ends the run with status
    ``nonfinite`` and NaN values instead of an exception.
    """
    _check_op(op)
    check_choice(which, "which", _WHICH)
    n = op.size
    check_int(k, "k", minimum=1, maximum=n - 1)
    check_positive(tol, "tol")
    check_nonnegative(atol, "atol")
    if ncv is not None:
        check_int(ncv, "ncv", minimum=k + 1, maximum=n)
    ncv = min(n, max(2 * k + 10, 20)) if ncv is None else ncv
    if max_matvec is not None:
        check_int(max_matvec, "max_matvec", minimum=k + 2)
    max_matvec = 50 * ncv if max_matvec is None else max_matvec
    start = _check_v0(op, v0)
    t0 = time.perf_counter()
    dt, dev = op.dtype, op.device
    budget = max_matvec - k  # reserve the certificate products
    nmv = 0
    # basis vectors are rows of the storage (V is its transpose): V[:, :j] is a contiguous block
    V = torch.zeros(ncv + 1, n, dtype=dt, device=dev).T
    T = torch.zeros(ncv + 1, ncv + 1, dtype=torch.float64)
    if start is None:
        start = _rand(op, generator)
    V[:, 0] = start / start.norm()
    j = 0  # number of basis vectors whose product has been taken
    restarts = 0
    scale = 0.0
    theta = Y = None
    beta = 0.0
    while True:
        while j < ncv and nmv < budget:
            w = op.matvec(V[:, j])
            nmv += 1
            w, h = orthogonalize(V[:, : j + 1], w)
            hd = h.double().cpu()
            T[: j + 1, j] = hd
            T[j, : j + 1] = hd
            beta = float(w.norm())
            if not (math.isfinite(beta) and bool(torch.isfinite(hd).all())):
                return _nonfinite_eigs(op, k, nmv, restarts, t0, which, tol)
            scale = max(scale, float(hd.abs().max()))
            if beta <= 1e-12 * max(scale, 1e-300):
                # invariant subspace: continue with a fresh random direction orthogonal to V
                r, _ = orthogonalize(V[:, : j + 1], _rand(op, generator))
                r, _ = orthogonalize(V[:, : j + 1], r)
                V[:, j + 1] = r / r.norm()
                beta = 0.0
            else:
                V[:, j + 1] = w / beta
            j += 1
            if j > k and j < ncv and _wanted_converged(T, j, beta, k, which, tol, atol):
                break  # early exit: the k wanted Ritz pairs already meet the tolerance
        m = j
        Tm = T[:m, :m]
        Tm = 0.5 * (Tm + Tm.T)
        theta, Y = torch.linalg.eigh(Tm)
        order = _order(theta, which)
        theta, Y = theta[order], Y[:, order]
        est = beta * Y[m - 1, :].abs()
        want = min(k, m)
        ok = est[:want] <= tol * theta[:want].abs() + atol
        if (want == k and bool(ok.all())) or nmv >= budget or m >= n:
            break
        # thick restart: keep p best Ritz vectors + the residual direction
        p = min(max(k + (ncv - k) // 2, k + 1), ncv - 1, m - 1)
        Yp = Y[:, :p].to(device=dev, dtype=dt)
        V[:, :p] = V[:, :m] @ Yp
        V[:, p] = V[:, m]
        T.zero_()
        T[:p, :p] = torch.diag(theta[:p])
        coupling = beta * Y[m - 1, :p]
        T[p, :p] = coupling
        T[:p, p] = coupling
        j = p
        restarts += 1
    want = min(k, theta.shape[0])
    vecs = V[:, :m] @ Y[:, :want].to(device=dev, dtype=dt)
    vecs = vecs / vecs.norm(dim=0, keepdim=True)
    # the certificates: fresh products of the returned vectors, one block (one pass over the data)
    AV = _matmat(op, vecs)
    nmv += want
    lam = torch.stack([vecs[:, i] @ AV[:, i] for i in range(want)])  # Rayleigh quotients
    res = (AV - lam * vecs).norm(dim=0).double().cpu()
    lam64 = lam.double().cpu()
    conv = res <= tol * lam64.abs() + atol
    order = _order(lam64, which)
    if not bool(torch.isfinite(res).all() and torch.isfinite(lam64).all()):
        status = Status.NONFINITE
    elif bool(conv.all()) and want == k:
        status = Status.CONVERGED
    else:
        status = Status.MAX_STEPS
    return EigResult(
        eigenvalues=lam[order.to(lam.device)],
        eigenvectors=vecs[:, order.to(vecs.device)],
        residuals=res[order],
        converged=conv[order],
        status=status,
        n_matvec=nmv,
        n_restarts=restarts,
        seconds=time.perf_counter() - t0,
        which=which,
        tol=tol,
    )


def _nonfinite_eigs(op, k, nmv, restarts, t0, which, tol) -> EigResult:
    """The result of a run whose products turned NaN / inf: NaN pairs, status ``nonfinite``."""
    nan = float("nan")
    return EigResult(
        eigenvalues=torch.full((k,), nan, dtype=op.dtype, device=op.device),
        eigenvectors=torch.full((op.size, k), nan, dtype=op.dtype, device=op.device),
        residuals=torch.full((k,), nan, dtype=torch.float64),
        converged=torch.zeros(k, dtype=torch.bool),
        status=Status.NONFINITE,
        n_matvec=nmv,
        n_restarts=restarts,
        seconds=time.perf_counter() - t0,
        which=which,
        tol=tol,
    )


def residual(op, eigenvalue: float, eigenvector: torch.Tensor) -> float:
    """‖A v − λ v‖ / ‖v‖ for a claimed eigenpair (one product)."""
    v = eigenvector.to(device=op.device, dtype=op.dtype)
    return float((op.matvec(v) - eigenvalue * v).norm() / v.norm())


def power_iteration(
    op,
    *,
    tol: float = 1e-6,
    max_matvec: int = 1000,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> EigResult:
    """The eigenpair of largest |λ| by power iteration, warm-startable with ``v0``.

    Each product A v_t gives the Rayleigh quotient λ_t = v_tᵀ A v_t and the exact residual
    ‖A v_t − λ_t v_t‖ at no extra cost; iteration stops when it is ≤ tol·|λ_t|. Convergence is
    geometric with ratio |λ_2/λ_1|, so close top eigenvalues make it slow (use :func:`eigs`).
    """
    _check_op(op)
    check_positive(tol, "tol")
    check_int(max_matvec, "max_matvec", minimum=1)
    v = _check_v0(op, v0)
    t0 = time.perf_counter()
    if v is None:
        v = _rand(op, generator)
    v = v / v.norm()
    lam, res, nmv = float("nan"), float("inf"), 0
    while nmv < max_matvec:
        av = op.matvec(v)
        nmv += 1
        lam = float(v @ av)
        res = float((av - lam * v).norm())
        if not math.isfinite(res):
            break
        if res <= tol * abs(lam):
            break
        nrm = av.norm()
        if nrm == 0:
            break
        v = av / nrm
    conv = math.isfinite(res) and res <= tol * abs(lam)
    return EigResult(
        eigenvalues=torch.tensor([lam], dtype=op.dtype),
        eigenvectors=v.reshape(-1, 1),
        residuals=torch.tensor([res], dtype=torch.float64),
        converged=torch.tensor([conv]),
        status=Status.CONVERGED if conv else (Status.NONFINITE if not math.isfinite(res) else Status.MAX_STEPS),
        n_matvec=nmv,
        n_restarts=0,
        seconds=time.perf_counter() - t0,
        which="LM",
        tol=tol,
    )


_TRACE_METHODS = ("hutchinson", "hutch++", "krylov-hutch++")


def _hutchinson_residual(op, Q: torch.Tensor | None, n_probes: int, generator) -> torch.Tensor:
    """Probe values zᵀ A z with z = (I − QQᵀ) r, r Rademacher: unbiased for tr((I−P)A(I−P)).

    The probes are drawn one by one (the same random sequence whatever the block width) and
    multiplied in blocks of ``op.block_size`` (one pass over the data per block)."""
    width = max(1, int(getattr(op, "block_size", 1)))
    vals = []
    for start in range(0, n_probes, width):
        Z = torch.stack([_rand(op, generator, rademacher=True)
                         for _ in range(min(width, n_probes - start))], dim=1)
        if Q is not None:
            Z = Z - Q @ (Q.T @ Z)
        vals.append((Z * _matmat(op, Z)).sum(0).double().cpu())
    return torch.cat(vals) if vals else torch.zeros(0, dtype=torch.float64)


def trace(
    op,
    method: str = "krylov-hutch++",
    n_matvec: int = 99,
    *,
    generator: torch.Generator | None = None,
) -> TraceResult:
    """Stochastic trace estimate with a standard error, in ``n_matvec`` products (fewer only when a
    Krylov space fills the whole space and the trace comes out exact).

    * ``"hutchinson"`` (Hutchinson 1989): tr(A) ≈ (1/m) Σ z_iᵀ A z_i, Rademacher z; variance per
      probe 2(‖A‖_F² − Σ a_ii²).
    * ``"hutch++"`` (Meyer, Musco, Musco & Woodruff 2021): s = m/3 products sketch Q = orth(A S);
      tr(A) = tr(Qᵀ A Q) (another s products) + Hutchinson on (I − QQᵀ) A (I − QQᵀ) with the rest.
    * ``"krylov-hutch++"`` (default; the Krylov-aware variant of Chen & Hallman 2023, SIAM J.
      Matrix Anal. Appl. 44(3)): s = m/2 Lanczos steps from a random start build an orthonormal
      Krylov basis Q whose projection T = Qᵀ A Q *comes out of the same s products* (the
      Lanczos coefficients), so tr(Qᵀ A Q) costs nothing extra, and a Krylov space captures the
      dominant eigendirections far better than one sketch A S of the same size. The remaining
      m − s products are Hutchinson probes of the deflated remainder. The identity
      tr(A) = tr(PAP) + tr((I−P)A(I−P)) holds for every orthogonal projector P, so the estimate
      is unbiased given Q and its standard error is the probes' (sample std / √probes).

    When the spectrum is flat (‖A‖_F spread over many eigenvalues, e.g. a network at
    initialisation) no deflation helps and all three cost about the same per unit of standard
    error; when a few directions carry most of ‖A‖_F (trained networks) the Krylov variant needs
    far fewer products (``bench/curvature.py``).
    """
    _check_op(op)
    check_choice(method, "method", _TRACE_METHODS)
    check_int(n_matvec, "n_matvec", minimum=3 if method == "hutch++" else 2)
    t0 = time.perf_counter()

    def result(exact: float, probes: torch.Tensor, nmv: int) -> TraceResult:
        g = probes.numel()
        if not (math.isfinite(exact) and bool(torch.isfinite(probes).all())):
            nan = float("nan")
            return TraceResult(nan, nan, nmv, time.perf_counter() - t0, method, g, Status.NONFINITE)
        se = float(probes.std() / math.sqrt(g)) if g > 1 else float("inf")
        est = exact + (float(probes.mean()) if g else 0.0)
        return TraceResult(est, se, nmv, time.perf_counter() - t0, method, g)

    if method == "hutchinson":
        return result(0.0, _hutchinson_residual(op, None, n_matvec, generator), n_matvec)
    if method == "hutch++":
        s = n_matvec // 3
        S = torch.stack([_rand(op, generator, rademacher=True) for _ in range(s)], dim=1)
        AS = _matmat(op, S)  # the sketch: one block
        if not bool(torch.isfinite(AS).all()):
            return result(float("nan"), torch.zeros(0, dtype=torch.float64), s)
        Q, _ = torch.linalg.qr(AS)
        exact = float((Q * _matmat(op, Q)).sum(0).double().sum())  # tr(QᵀAQ): a second block
        g = n_matvec - 2 * s
        return result(exact, _hutchinson_residual(op, Q, g, generator), n_matvec)
    s = min(n_matvec // 2, op.size)
    run = _core_lanczos(op.matvec, _rand(op, generator), s, keep_basis=True)
    exact = float(run.alpha.sum())  # tr(QᵀAQ) = Σ α_j, the diagonal of the Lanczos tridiagonal
    Q = run.basis
    if run.status == Status.NONFINITE:
        return result(float("nan"), torch.zeros(0, dtype=torch.float64), run.n_steps)
    if Q.shape[1] == op.size:  # the Krylov space is everything: the trace is exact
        return result(exact, torch.zeros(0, dtype=torch.float64), run.n_steps)
    probes = _hutchinson_residual(op, Q, n_matvec - run.n_steps, generator)
    return result(exact, probes, n_matvec)


def lanczos_tridiag(op, v0: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """m steps of Lanczos with full reorthogonalisation from v0: returns (α, β, n_matvec).

    A thin wrapper of :func:`terrainlab.core.linalg.lanczos` on ``op.matvec`` (fewer steps when the
    Krylov space becomes invariant; a NaN product leaves NaN in α)."""
    _check_op(op)
    check_tensor(v0, "v0", shape=(op.size,))
    run = _core_lanczos(op.matvec, v0.to(device=op.device, dtype=op.dtype), m)
    return run.alpha, run.beta, run.n_steps


#: memory for the b Krylov bases SLQ advances together (at least one probe's basis is always allowed)
_SLQ_BLOCK_BYTES = 2**28


def spectral_density(
    op,
    *,
    n_probes: int = 10,
    lanczos_steps: int = 80,
    sigma: float | None = None,
    n_grid: int = 400,
    generator: torch.Generator | None = None,
) -> DensityResult:
    """Spectral density by stochastic Lanczos quadrature.

    For each Gaussian probe z (normalised), m Lanczos steps give T = Y diag(θ) Yᵀ; the Gauss
    quadrature nodes θ_j with weights τ_j = (Y_{0j})² approximate the spectral measure of A seen
    from z, zᵀ f(A) z ≈ Σ τ_j f(θ_j). Averaging over probes estimates (1/n) tr f(A); with f a
    Gaussian kernel of width σ this is the smoothed density (Ghorbani et al. 2019).

    The probes' Lanczos runs advance together (:func:`terrainlab.core.linalg.lanczos_block`):
    each step is one block product over up to ``op.block_size`` probes (and at most 256 MiB of
    Krylov bases), one pass over the data instead of one per probe. ``sigma`` (> 0) defaults to
    1/100 of the span of the nodes; ``n_grid`` ≥ 1 points.
    """
    _check_op(op)
    check_int(n_probes, "n_probes", minimum=1)
    check_int(lanczos_steps, "lanczos_steps", minimum=2)
    if sigma is not None:
        check_positive(sigma, "sigma")
    check_int(n_grid, "n_grid", minimum=1)
    t0 = time.perf_counter()
    m = min(lanczos_steps, op.size)
    per_probe = (m + 1) * op.size * torch.finfo(op.dtype).bits // 8
    width = max(1, min(n_probes, int(getattr(op, "block_size", 1)), _SLQ_BLOCK_BYTES // per_probe))
    nodes, weights, nmv, bad = [], [], 0, False
    for start in range(0, n_probes, width):
        # probes drawn one by one (the same random sequence for any width), run in lockstep
        V0 = torch.stack([_rand(op, generator) for _ in range(min(width, n_probes - start))], dim=1)
        run = lanczos_block(lambda V: _matmat(op, V), V0, m)
        nmv += run.n_products * V0.shape[1]
        bad |= run.status == Status.NONFINITE
        for c in range(V0.shape[1]):
            L = int(run.n_steps[c])
            a, b = run.alpha[c, :L], run.beta[c, : L - 1]
            if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
                bad = True
                nodes.append(torch.full((m,), float("nan"), dtype=torch.float64))
                weights.append(torch.full((m,), float("nan"), dtype=torch.float64))
                continue
            T = torch.diag(a) + torch.diag(b, 1) + torch.diag(b, -1)
            th, Y = torch.linalg.eigh(T)
            tau = Y[0, :] ** 2
            pad = m - th.shape[0]
            nodes.append(torch.cat([th, th.new_zeros(pad)]))
            weights.append(torch.cat([tau, tau.new_zeros(pad)]))
    N = torch.stack(nodes)
    W = torch.stack(weights)
    if bad:
        empty = torch.zeros(0, dtype=torch.float64)
        s = float(sigma) if sigma is not None else float("nan")
        return DensityResult(N, W, empty, empty, s, nmv, time.perf_counter() - t0, Status.NONFINITE)
    lo, hi = float(N.min()), float(N.max())
    span = max(hi - lo, 1e-12)
    s = float(sigma) if sigma is not None else span / 100
    grid = torch.linspace(lo - 5 * s, hi + 5 * s, n_grid, dtype=torch.float64)
    res = DensityResult(N, W, grid, torch.empty(0), s, nmv, 0.0)
    vals = res.density(grid)
    return DensityResult(N, W, grid, vals, s, nmv, time.perf_counter() - t0)
