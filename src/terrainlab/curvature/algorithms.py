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
:class:`~terrainlab.curvature.operators.CurvatureOperator`). Non-convergence is a status in the
result, never an exception.

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

_WHICH = ("LA", "SA", "LM")


@dataclass(frozen=True)
class EigResult:
    """Eigenpairs with their certificates.

    ``eigenvalues`` (k,) sorted as requested by ``which``; ``eigenvectors`` (size, k) unit columns;
    ``residuals`` (k,) = ‖A v_i − λ_i v_i‖ computed with fresh products; ``converged`` (k,) bool;
    ``status`` is "converged" (all k converged) or "max_matvec"; ``n_matvec`` counts every
    product, including the certificate products.
    """

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    residuals: torch.Tensor
    converged: torch.Tensor
    status: str
    n_matvec: int
    n_restarts: int
    seconds: float
    which: str
    tol: float


@dataclass(frozen=True)
class TraceResult:
    """A trace estimate with its standard error and cost."""

    estimate: float
    std_error: float
    n_matvec: int
    seconds: float
    method: str
    n_samples: int


@dataclass(frozen=True)
class DensityResult:
    """Stochastic Lanczos quadrature: per-probe Ritz nodes/weights and a smoothed density.

    ``nodes`` and ``weights`` have shape (n_probes, m); ``density(grid, sigma)`` evaluates
    φ(t) = (1/n_probes) Σ_l Σ_j w_lj · N(t; θ_lj, σ²), which integrates to 1 (eigenvalue counting
    density divided by the size). ``grid``/``values`` hold it on a default grid.
    """

    nodes: torch.Tensor
    weights: torch.Tensor
    grid: torch.Tensor
    values: torch.Tensor
    sigma: float
    n_matvec: int
    seconds: float

    def density(self, grid: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        s = self.sigma if sigma is None else float(sigma)
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


def _orthogonalise(V: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w ⟂ span(V) by classical Gram–Schmidt twice; returns (w, coefficients)."""
    if V.shape[1] == 0:
        return w, w.new_zeros(0)
    h = V.T @ w
    w = w - V @ h
    h2 = V.T @ w
    w = w - V @ h2
    return w, h + h2


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
        v0: starting vector (warm start), e.g. the previous top eigenvector.
        generator: for the random start vector.
    """
    _check_op(op)
    if which not in _WHICH:
        raise ValueError(f"which must be one of {_WHICH}, got {which!r}")
    n = op.size
    if not (isinstance(k, int) and 1 <= k < n):
        raise ValueError(f"k must be an int with 1 ≤ k < size={n}, got {k!r}")
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    ncv = min(n, max(2 * k + 10, 20)) if ncv is None else int(ncv)
    if not (k < ncv <= n):
        raise ValueError(f"ncv must satisfy k < ncv ≤ size ({k} < ncv ≤ {n}), got {ncv}")
    max_matvec = 50 * ncv if max_matvec is None else int(max_matvec)
    if max_matvec < k + 2:
        raise ValueError(f"max_matvec must be at least k + 2 = {k + 2}, got {max_matvec}")
    t0 = time.perf_counter()
    dt, dev = op.dtype, op.device
    budget = max_matvec - k  # reserve the certificate products
    nmv = 0
    # basis vectors are rows of the storage (V is its transpose): V[:, :j] is a contiguous block
    V = torch.zeros(ncv + 1, n, dtype=dt, device=dev).T
    T = torch.zeros(ncv + 1, ncv + 1, dtype=torch.float64)
    start = v0.to(device=dev, dtype=dt).reshape(-1).clone() if v0 is not None else _rand(op, generator)
    if start.shape != (n,) or not torch.isfinite(start).all() or start.norm() == 0:
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
            w, h = _orthogonalise(V[:, : j + 1], w)
            hd = h.double().cpu()
            T[: j + 1, j] = hd
            T[j, : j + 1] = hd
            beta = float(w.norm())
            scale = max(scale, float(hd.abs().max()))
            if beta <= 1e-12 * max(scale, 1e-300) or not math.isfinite(beta):
                # invariant subspace: continue with a fresh random direction orthogonal to V
                r, _ = _orthogonalise(V[:, : j + 1], _rand(op, generator))
                r, _ = _orthogonalise(V[:, : j + 1], r)
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
    lam = theta[:want].to(dt)
    res = torch.empty(want, dtype=torch.float64)
    for i in range(want):
        av = op.matvec(vecs[:, i])
        nmv += 1
        lam_i = float(vecs[:, i] @ av)  # Rayleigh quotient of the returned vector
        lam[i] = lam_i
        res[i] = float((av - lam_i * vecs[:, i]).norm())
    lam64 = lam.double().cpu()
    conv = res <= tol * lam64.abs() + atol
    order = _order(lam64, which)
    return EigResult(
        eigenvalues=lam[order.to(lam.device)],
        eigenvectors=vecs[:, order.to(vecs.device)],
        residuals=res[order],
        converged=conv[order],
        status="converged" if bool(conv.all()) and want == k else "max_matvec",
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
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if max_matvec < 1:
        raise ValueError(f"max_matvec must be ≥ 1, got {max_matvec}")
    t0 = time.perf_counter()
    v = v0.to(device=op.device, dtype=op.dtype).reshape(-1).clone() if v0 is not None else None
    if v is None or v.shape != (op.size,) or v.norm() == 0:
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
        status="converged" if conv else ("nonfinite" if not math.isfinite(res) else "max_matvec"),
        n_matvec=nmv,
        n_restarts=0,
        seconds=time.perf_counter() - t0,
        which="LM",
        tol=tol,
    )


_TRACE_METHODS = ("hutchinson", "hutch++", "krylov-hutch++")


def _hutchinson_residual(op, Q: torch.Tensor | None, n_probes: int, generator) -> torch.Tensor:
    """Probe values zᵀ A z with z = (I − QQᵀ) r, r Rademacher: unbiased for tr((I−P)A(I−P))."""
    vals = []
    for _ in range(n_probes):
        z = _rand(op, generator, rademacher=True)
        if Q is not None:
            z = z - Q @ (Q.T @ z)
        vals.append(float(z @ op.matvec(z)))
    return torch.tensor(vals, dtype=torch.float64)


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
    if method not in _TRACE_METHODS:
        raise ValueError(f"method must be one of {_TRACE_METHODS}, got {method!r}")
    if method == "hutch++" and n_matvec < 3:
        raise ValueError(f"n_matvec must be ≥ 3 for hutch++, got {n_matvec}")
    if n_matvec < 2:
        raise ValueError(f"n_matvec must be ≥ 2, got {n_matvec}")
    t0 = time.perf_counter()

    def result(exact: float, probes: torch.Tensor, nmv: int) -> TraceResult:
        g = probes.numel()
        se = float(probes.std() / math.sqrt(g)) if g > 1 else float("inf")
        est = exact + (float(probes.mean()) if g else 0.0)
        return TraceResult(est, se, nmv, time.perf_counter() - t0, method, g)

    if method == "hutchinson":
        return result(0.0, _hutchinson_residual(op, None, n_matvec, generator), n_matvec)
    if method == "hutch++":
        s = n_matvec // 3
        S = torch.stack([_rand(op, generator, rademacher=True) for _ in range(s)], dim=1)
        AS = torch.stack([op.matvec(S[:, i]) for i in range(s)], dim=1)
        Q, _ = torch.linalg.qr(AS)
        exact = sum(float(Q[:, i] @ op.matvec(Q[:, i])) for i in range(Q.shape[1]))
        g = n_matvec - 2 * s
        return result(exact, _hutchinson_residual(op, Q, g, generator), n_matvec)
    s = min(n_matvec // 2, op.size)
    alpha, _, used, Q = _lanczos(op, _rand(op, generator), s, keep_basis=True)
    exact = float(alpha.sum())  # tr(QᵀAQ) = Σ α_j, the diagonal of the Lanczos tridiagonal
    if Q.shape[1] == op.size:  # the Krylov space is everything: the trace is exact
        return result(exact, torch.zeros(0, dtype=torch.float64), used)
    probes = _hutchinson_residual(op, Q, n_matvec - used, generator)
    return result(exact, probes, n_matvec)


def _lanczos(op, v0: torch.Tensor, m: int, keep_basis: bool = False):
    """m Lanczos steps with full reorthogonalisation from v0 → (α, β, products, basis or None).

    Stops early, with fewer steps, when the Krylov space becomes invariant (β ≈ 0); the basis
    returned then has as many columns as products taken.
    """
    n = op.size
    m = min(m, n)
    V = torch.zeros(m, n, dtype=op.dtype, device=op.device).T  # rows of the storage: contiguous
    V[:, 0] = v0 / v0.norm()
    alpha = torch.zeros(m, dtype=torch.float64)
    beta = torch.zeros(max(m - 1, 0), dtype=torch.float64)
    used = 0
    for j in range(m):
        w = op.matvec(V[:, j])
        used += 1
        w, h = _orthogonalise(V[:, : j + 1], w)
        alpha[j] = float(h[j])
        if j + 1 < m:
            b = float(w.norm())
            if b <= 1e-12 * max(float(alpha[: j + 1].abs().max()), 1e-300):
                alpha, beta = alpha[: j + 1], beta[:j]
                break
            beta[j] = b
            V[:, j + 1] = w / b
    return alpha, beta, used, (V[:, :used] if keep_basis else None)


def lanczos_tridiag(op, v0: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """m steps of Lanczos with full reorthogonalisation from v0: returns (α, β, n_matvec)."""
    alpha, beta, used, _ = _lanczos(op, v0, m)
    return alpha, beta, used


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
    """
    _check_op(op)
    if n_probes < 1 or lanczos_steps < 2:
        raise ValueError("n_probes must be ≥ 1 and lanczos_steps ≥ 2")
    t0 = time.perf_counter()
    nodes, weights, nmv = [], [], 0
    m = min(lanczos_steps, op.size)
    for _ in range(n_probes):
        a, b, used = lanczos_tridiag(op, _rand(op, generator), m)
        nmv += used
        T = torch.diag(a) + torch.diag(b, 1) + torch.diag(b, -1)
        th, Y = torch.linalg.eigh(T)
        tau = Y[0, :] ** 2
        pad = m - th.shape[0]
        nodes.append(torch.cat([th, th.new_zeros(pad)]))
        weights.append(torch.cat([tau, tau.new_zeros(pad)]))
    N = torch.stack(nodes)
    W = torch.stack(weights)
    lo, hi = float(N.min()), float(N.max())
    span = max(hi - lo, 1e-12)
    s = float(sigma) if sigma is not None else span / 100
    grid = torch.linspace(lo - 5 * s, hi + 5 * s, n_grid, dtype=torch.float64)
    res = DensityResult(N, W, grid, torch.empty(0), s, nmv, 0.0)
    vals = res.density(grid)
    return DensityResult(N, W, grid, vals, s, nmv, time.perf_counter() - t0)
