"""K-means: Lloyd's iteration as a map on the core engine, k-means++ seeding, gradient descent on the
same objective, and Voronoi cells (chapter 10).

The objective is the within-cluster sum of squares (WCSS, "inertia") of K centroids C = (c_1, …, c_K),

    W(C) = Σ_i min_k ‖x_i − c_k‖².

**Lloyd's iteration** (Lloyd 1957/1982) is alternating minimisation: assign each point to its nearest
centroid (the Voronoi cell), then move each centroid to the mean μ_k of its n_k points. It is the map
T(C)_k = μ_k(C), run here through :func:`terrainlab.core.rollout` as Euler with η = 1 on the residual
field T(C) − C (:func:`terrainlab.core.map_field`). W never increases and the partition can repeat only
when it is fixed, so the iteration stops after finitely many steps (exactly: the step at which no
assignment changes moves no centroid). An empty cluster keeps its centroid.

**Gradient descent on the same W.** Where no point is equidistant from two centroids, W is a quadratic
in each c_k with ∂W/∂c_k = 2 n_k (c_k − μ_k) and Hessian 2 n_k I. A GD step c_k ← c_k − η·2n_k(c_k − μ_k)
equals Lloyd's step exactly when η = 1/(2 n_k) — a cluster-dependent step, i.e. a Newton step on the
active quadratic piece. With one η for all clusters, GD contracts cluster k by |1 − 2ηn_k| per step:
:func:`wcss_gd` runs it (:func:`terrainlab.core.gradient_field`, one rollout for a batch of starts).

**k-means++** (Arthur & Vassilvitskii, "k-means++: the advantages of careful seeding", SODA 2007): the
first centroid is a uniformly drawn point, each next one a point drawn with probability ∝ D(x)², its
squared distance to the nearest centroid chosen so far (the plain rule, without scikit-learn's greedy
extra trials). ``init="random"`` (Forgy) draws K distinct data points uniformly.

Example:
    >>> X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]], dtype=torch.float64)
    >>> r = kmeans(X, 2, n_init=3, generator=torch.Generator().manual_seed(0))
    >>> sorted(r.centroids[:, 0].tolist()), r.inertia, r.status
    ([0.0, 10.0], 1.0, 'converged')
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from terrainlab.core import StepTolerance, gradient_field, map_field, rollout
from terrainlab.core.status import Status

__all__ = [
    "KMeansResult",
    "VoronoiGrid",
    "WCSSGDResult",
    "assign",
    "kmeans",
    "kmeans_plus_plus",
    "lloyd_step",
    "voronoi_grid",
    "wcss",
    "wcss_gd",
]

INITS = ("k-means++", "random")
MOVE_TOL = 1e-300  # Lloyd has converged when a step moves no centroid at all (step length 0 < this)


def _data(X, name: str = "X") -> torch.Tensor:
    if not torch.is_tensor(X):
        raise ValueError(f"{name} must be a torch tensor, got {type(X).__name__}")
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty (n, d) matrix, got shape {tuple(X.shape)}")
    if not torch.is_floating_point(X):
        raise ValueError(f"{name} must be floating point, got {X.dtype}")
    if not bool(torch.isfinite(X).all()):
        raise ValueError(f"{name} must be finite (it holds NaN or inf)")
    return X


def _int(x, name: str, minimum: int) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {x!r}")
    return x


def _centroids(C, X: torch.Tensor, name: str = "centroids") -> torch.Tensor:
    C = _data(C, name)
    if C.shape[1] != X.shape[1]:
        raise ValueError(f"{name} must have {X.shape[1]} columns like X, got shape {tuple(C.shape)}")
    if C.dtype != X.dtype or C.device != X.device:
        raise ValueError(f"{name} must have X's dtype and device ({X.dtype}, {X.device}), got {C.dtype}, {C.device}")
    return C


def _sqdist(X: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """‖x_i − c_k‖² for every point and centroid: (..., n, K) for C of shape (..., K, d)."""
    return ((X[..., :, None, :] - C[..., None, :, :]) ** 2).sum(-1)


def assign(X: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The index of each point's nearest centroid (its Voronoi cell; ties to the lowest index), (n,)."""
    X = _data(X)
    return _sqdist(X, _centroids(centroids, X)).argmin(-1)


def wcss(X: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """W(C) = Σ_i min_k ‖x_i − c_k‖² (the inertia), for centroids (K, d) or a batch (..., K, d) → (...).

    Differentiable in the centroids (the min passes the gradient to the nearest one), so
    ``gradient_field`` of it is −∂W/∂c_k = −2 n_k (c_k − μ_k). Computed as ‖x‖² − 2xᵀc + ‖c‖² (one
    matrix product, no (n, K, d) intermediate); the nearest centroid is the one :func:`assign` picks up
    to rounding at exact ties.
    """
    d2 = (X * X).sum(-1)[:, None] - 2 * X @ centroids.mT + (centroids * centroids).sum(-1)[..., None, :]
    return d2.min(-1).values.clamp(min=0).sum(-1)


def lloyd_step(X: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """One Lloyd step T(C): assign, then move each centroid to the mean of its points (an empty cluster
    keeps its centroid). Shape (K, d) → (K, d), or a batch of centroid sets (B, K, d) → (B, K, d)."""
    X = _data(X)
    C = centroids
    if not torch.is_tensor(C) or C.ndim not in (2, 3):
        raise ValueError("centroids must be a (K, d) or (B, K, d) tensor")
    _centroids(C.reshape(-1, C.shape[-1]), X)
    onehot = torch.nn.functional.one_hot(_sqdist(X, C).argmin(-1), C.shape[-2]).to(X.dtype)  # (..., n, K)
    sums = onehot.mT @ X  # (..., K, d)
    counts = onehot.sum(-2)[..., None]  # (..., K, 1)
    return torch.where(counts > 0, sums / counts.clamp(min=1), C)


def kmeans_plus_plus(X: torch.Tensor, K: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """K initial centroids by k-means++ D² sampling (Arthur & Vassilvitskii 2007), shape (K, d).

    Raises:
        ValueError: bad ``X``; ``K`` not an int in [1, n].
    """
    X = _data(X)
    n = X.shape[0]
    K = _int(K, "K", 1)
    if K > n:
        raise ValueError(f"K must be <= the number of points n = {n}, got K = {K}")
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    d2 = ((X - X[first]) ** 2).sum(1)
    for _ in range(1, K):
        total = float(d2.sum())
        if total > 0:
            weights = (d2 / total).cpu()
            nxt = int(torch.multinomial(weights, 1, generator=generator))
        else:  # every point coincides with a chosen centroid: draw any point not yet chosen
            rest = torch.tensor([i for i in range(n) if i not in chosen])
            nxt = int(rest[torch.randint(len(rest), (1,), generator=generator)])
        chosen.append(nxt)
        d2 = torch.minimum(d2, ((X - X[nxt]) ** 2).sum(1))
    return X[chosen].clone()


def _init(X: torch.Tensor, K: int, init: str, generator) -> torch.Tensor:
    if init == "k-means++":
        return kmeans_plus_plus(X, K, generator)
    idx = torch.randperm(X.shape[0], generator=generator)[:K]
    return X[idx.to(X.device)].clone()


@dataclass(frozen=True)
class KMeansResult:
    """The result of :func:`kmeans` (the best of ``n_init`` runs by inertia).

    centroids: (K, d);  labels: (n,) each point's cluster;  inertia: W at the centroids;
    n_iter: Lloyd steps of the best run, including the final step that moved nothing;
    status: ``converged`` (a step moved no centroid) or ``max_steps``;
    inertia_path: W after each step of the best run (index 0: at the initial centroids), non-increasing;
    run_inertias, run_iters, run_statuses: every run's final inertia, steps and status, in run order;
    run_inertia_paths: (T + 1, n_init), W of every run after every step of the batch (a run that has
    stopped stays constant);
    init_centroids: (n_init, K, d), where every run started.
    """

    centroids: torch.Tensor
    labels: torch.Tensor
    inertia: float
    n_iter: int
    status: Status
    inertia_path: torch.Tensor
    run_inertias: torch.Tensor
    run_iters: tuple[int, ...]
    run_statuses: tuple[Status, ...]
    run_inertia_paths: torch.Tensor
    init_centroids: torch.Tensor


def kmeans(X: torch.Tensor, K: int, *, init: str | torch.Tensor = "k-means++", n_init: int = 10,
           max_iter: int = 300, generator: torch.Generator | None = None) -> KMeansResult:
    """K-means by Lloyd's iteration (Lloyd 1982) from ``n_init`` starts; returns the lowest inertia.

    The runs are one batch: the Lloyd map T (:func:`lloyd_step`) is iterated through
    :func:`terrainlab.core.rollout` (Euler, η = 1, on T(C) − C) until a step moves no centroid of any
    run or ``max_iter`` steps; a run's ``n_iter`` is the first step that moved none of its centroids
    (status ``converged``), else ``max_iter`` (``max_steps``).

    Args:
        X: (n, d) data.  K: the number of clusters, 1 ≤ K ≤ n.
        init: ``"k-means++"`` (Arthur & Vassilvitskii 2007), ``"random"`` (K distinct data points), or
            a tensor of starts, (K, d) or (n_init, K, d) (then ``n_init`` is its length).
        n_init: the number of starts.  max_iter: Lloyd steps per start.
        generator: the ``torch.Generator`` the seeding draws from (None: the global one).

    Raises:
        ValueError: bad ``X``; ``K`` not an int in [1, n] (K > n included); ``init`` unknown or of the
            wrong shape; ``n_init`` or ``max_iter`` not an int ≥ 1.
    """
    X = _data(X)
    n = X.shape[0]
    K = _int(K, "K", 1)
    if K > n:
        raise ValueError(f"K must be <= the number of points n = {n}, got K = {K}")
    n_init = _int(n_init, "n_init", 1)
    max_iter = _int(max_iter, "max_iter", 1)
    if torch.is_tensor(init):
        starts = init[None] if init.ndim == 2 else init
        if starts.ndim != 3 or starts.shape[1:] != (K, X.shape[1]):
            raise ValueError(f"init must have shape (K, d) = {(K, X.shape[1])} or (n_init, K, d), "
                             f"got {tuple(init.shape)}")
        _centroids(starts.reshape(-1, X.shape[1]), X, "init")
        starts = starts.clone()
    elif init in INITS:
        starts = torch.stack([_init(X, K, init, generator) for _ in range(n_init)])
    else:
        raise ValueError(f"init must be one of {INITS} or a tensor of starting centroids, got {init!r}")

    tr = rollout(map_field(lambda C: lloyd_step(X, C)), starts, eta=1.0, steps=max_iter,
                 stop=StepTolerance(MOVE_TOL))
    states = tr.states  # (T + 1, n_init, K, d)
    paths = wcss(X, states)  # (T + 1, n_init)
    still = (states[1:] == states[:-1]).flatten(2).all(-1)  # (T, n_init): step t + 1 moved nothing
    iters, statuses = [], []
    for b in range(starts.shape[0]):
        hit = still[:, b].nonzero()
        done = bool(hit.numel())
        iters.append(int(hit[0]) + 1 if done else tr.n_steps)
        statuses.append(Status.CONVERGED if done else (Status.NONFINITE if tr.status == "nonfinite"
                                                        else Status.MAX_STEPS))
    finals = paths[-1]
    b = int(finals.argmin())
    C = states[-1, b]
    return KMeansResult(
        centroids=C,
        labels=_sqdist(X, C).argmin(-1),
        inertia=float(finals[b]),
        n_iter=iters[b],
        status=statuses[b],
        inertia_path=paths[: iters[b] + 1, b],
        run_inertias=finals,
        run_iters=tuple(iters),
        run_statuses=tuple(statuses),
        run_inertia_paths=paths,
        init_centroids=starts,
    )


@dataclass(frozen=True)
class WCSSGDResult:
    """The result of :func:`wcss_gd`: plain gradient descent on W from a batch of B starts.

    centroids: (B, K, d) at the end;  inertia: (B,) W at the end;  inertia_path: (T + 1, B) W after
    every step;  centroid_path: (T + 1, B, K, d);  n_steps: steps taken;  status: ``converged`` when
    every start's step fell to ``tol``, else ``max_steps`` (or ``nonfinite``).
    """

    centroids: torch.Tensor
    inertia: torch.Tensor
    inertia_path: torch.Tensor
    centroid_path: torch.Tensor
    n_steps: int
    status: Status


def wcss_gd(X: torch.Tensor, starts: torch.Tensor, *, eta: float, steps: int, tol: float = 1e-10) -> WCSSGDResult:
    """Gradient descent C ← C − η ∇W(C) on the K-means objective W (hard assignments), one η for every
    cluster, from ``starts`` (K, d) or a batch (B, K, d); a :func:`terrainlab.core.rollout` of
    :func:`terrainlab.core.gradient_field` (Cauchy 1847).

    Lloyd's step is the special case η_k = 1/(2 n_k) per cluster; with one η cluster k contracts by
    |1 − 2ηn_k| per step, so the step must satisfy η < 1/n_k for every cluster to converge.

    Raises:
        ValueError: bad ``X`` or ``starts``; ``eta``/``tol`` not > 0; ``steps`` not an int ≥ 1.
    """
    X = _data(X)
    if not torch.is_tensor(starts) or starts.ndim not in (2, 3):
        raise ValueError("starts must be a (K, d) or (B, K, d) tensor of centroids")
    batch = starts[None] if starts.ndim == 2 else starts
    _centroids(batch.reshape(-1, batch.shape[-1]), X, "starts")
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not eta > 0:
        raise ValueError(f"eta must be a number > 0, got {eta!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0:
        raise ValueError(f"tol must be a number > 0, got {tol!r}")
    steps = _int(steps, "steps", 1)
    B, K, d = batch.shape

    def loss(flat: torch.Tensor) -> torch.Tensor:
        return wcss(X, flat.reshape(*flat.shape[:-1], K, d))

    tr = rollout(gradient_field(loss), batch.reshape(B, K * d).clone(), eta=float(eta), steps=steps,
                 stop=StepTolerance(float(tol)))
    path = tr.states.reshape(-1, B, K, d)
    inertia_path = wcss(X, path)
    return WCSSGDResult(centroids=path[-1], inertia=inertia_path[-1], inertia_path=inertia_path,
                        centroid_path=path, n_steps=tr.n_steps, status=tr.status)


@dataclass(frozen=True)
class VoronoiGrid:
    """The Voronoi cells of 2-D centroids on a grid: xs (nx,), ys (ny,), labels (ny, nx) = the nearest
    centroid of each grid point (for ``contourf``/``imshow``)."""

    xs: torch.Tensor
    ys: torch.Tensor
    labels: torch.Tensor


def voronoi_grid(centroids: torch.Tensor, bounds: tuple[float, float, float, float], n: int = 200) -> VoronoiGrid:
    """The nearest-centroid label of every point of an n × n grid over ``bounds`` = (xmin, xmax, ymin,
    ymax): the Voronoi tessellation the assignment step induces (cells bounded by perpendicular bisectors).

    Raises:
        ValueError: ``centroids`` not a finite floating (K, 2) tensor; ``bounds`` not four finite
            numbers with xmin < xmax, ymin < ymax; ``n`` not an int ≥ 2.

    Example:
        >>> g = voronoi_grid(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), (-1.0, 2.0, -1.0, 1.0), n=4)
        >>> g.labels.tolist()
        [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]]
    """
    C = _data(centroids, "centroids")
    if C.shape[1] != 2:
        raise ValueError(f"centroids must be 2-D points, shape (K, 2), got {tuple(C.shape)}")
    ok = (isinstance(bounds, (tuple, list)) and len(bounds) == 4
          and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds))
    if ok:
        x0, x1, y0, y1 = (float(b) for b in bounds)
        ok = all(torch.isfinite(torch.tensor([x0, x1, y0, y1]))) and x0 < x1 and y0 < y1
    if not ok:
        raise ValueError(f"bounds must be (xmin, xmax, ymin, ymax) with xmin < xmax and ymin < ymax, got {bounds!r}")
    n = _int(n, "n", 2)
    xs = torch.linspace(x0, x1, n, dtype=C.dtype, device=C.device)
    ys = torch.linspace(y0, y1, n, dtype=C.dtype, device=C.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    return VoronoiGrid(xs=xs, ys=ys, labels=_sqdist(pts, C).argmin(-1).reshape(n, n))
