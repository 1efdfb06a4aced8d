"""Fixed points of maps (T(s) = s) and zeros of fields (F(s) = 0), from many starts at once.

Every start is driven to a minimum of q(s) = ½‖r(s)‖², r = F(s) (fields) or r = T(s) − s (maps), by
Levenberg–Marquardt (Levenberg 1944; Marquardt 1963): δ = −(AᵀA + λI)⁻¹Aᵀr with A = ∂r/∂s and a
per-start damping λ that shrinks on success and grows on failure, so it is Newton's method near a
regular zero (quadratic convergence) and gradient descent on q far from one. Minima of q that are
not zeros are the *slow points* of Sussillo & Barak (2013), "Opening the black box", reported with
``is_slow``. For small d the Jacobian is formed densely with batched VJPs (torch.func); for large d
the linear system is solved matrix-free by conjugate gradients with one Jacobian-vector and one
vector-Jacobian product per iteration, so nothing d × d is ever stored.

On the simplex (``geometry=Simplex(...)``) the unknowns are tangent coordinates y, s = c + B y with
B an orthonormal basis of {Σv = 0}; trial points are projected back onto the simplex, and the
Jacobian and its K − 1 eigenvalues are those of the tangent restriction.

The search is three steps, one private module each: set-up (:mod:`._fp_problem`: the residual in
working coordinates and how a trial point lands), solve (:mod:`._fp_solve`: Levenberg–Marquardt,
dense or matrix-free with :func:`terrainlab.core.linalg.cg`) and deduplicate-and-classify
(:mod:`._fp_collect`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.validate import check_choice, check_int, check_positive
from ._fp_collect import classify_points, deduplicate
from ._fp_problem import ResidualProblem
from ._fp_solve import CONV, FAIL, SLOW, levenberg_marquardt
from ._util import KINDS, Coords, check_eta, check_geometry, check_states


@dataclass(frozen=True)
class FixedPointResult:
    """Distinct fixed points (and slow points) found from a batch of starts.

    points:       (M, d) locations (on the simplex for simplex geometry).
    residuals:    (M,) ‖F(s)‖₂ for fields, ‖T(s) − s‖₂ for maps (tangent part on the simplex).
    eigenvalues:  (M, m) complex; flow eigenvalues of DF for fields, map eigenvalues of DT for maps
                  (m = d, or K − 1 on the simplex: the tangent Jacobian).
    kinds:        class of the system as given: flow class (signs of Re λ) for fields, map class
                  (|μ| vs 1) for maps — "attractor" | "repeller" | "saddle" | "non-hyperbolic".
    map_kinds:    class of the Euler map s + ηF (|1 + ηλ| vs 1) for fields when ``eta`` is given;
                  equal to ``kinds`` for maps; ``None`` for fields without ``eta``.
    flip_eta:     (M,) the η at which the Euler-map class first differs from the flow class
                  (min over stable λ of −2Re λ/|λ|²); ``inf`` for maps or with no stable direction.
    is_slow:      (M,) True for local minima of q that are not zeros (slow points).
    multiplicity: (M,) how many starts ended at each point.
    start_labels: (N,) index of the point each start reached, −1 if it failed.
    start_residuals: (N,) final ‖r‖₂ of every start (diagnostic for failed starts).
    n_starts, n_converged (starts that reached a zero), n_slow (starts at slow points),
    n_failed, n_iter, n_fn_evals (batched evaluations), n_vjp / n_jvp (per-state products),
    seconds, method ("dense" or "matrix-free").
    """

    points: torch.Tensor
    residuals: torch.Tensor
    eigenvalues: torch.Tensor
    kinds: list
    map_kinds: list | None
    flip_eta: torch.Tensor
    is_slow: torch.Tensor
    multiplicity: torch.Tensor
    start_labels: torch.Tensor
    start_residuals: torch.Tensor
    kind: str
    eta: float | None
    n_starts: int
    n_converged: int
    n_slow: int
    n_failed: int
    n_iter: int
    n_fn_evals: int
    n_vjp: int
    n_jvp: int
    seconds: float
    method: str

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def fixed(self) -> torch.Tensor:
        """Points that are true zeros (not slow points)."""
        return self.points[~self.is_slow]

    def of_kind(self, kind: str) -> torch.Tensor:
        """The true fixed points of a given class, e.g. ``res.of_kind("attractor")``."""
        idx = [i for i, k in enumerate(self.kinds) if k == kind and not bool(self.is_slow[i])]
        return self.points[idx]

    def summary(self) -> str:
        lines = [f"{self.n_points} point(s) from {self.n_starts} starts ({self.n_converged} converged, "
                 f"{self.n_slow} slow, {self.n_failed} failed) in {self.seconds:.3f}s, {self.n_iter} iterations"]
        for i in range(self.n_points):
            tag = "slow" if bool(self.is_slow[i]) else self.kinds[i]
            lines.append(f"  {i}: {tag:<15} residual={float(self.residuals[i]):.2e} "
                         f"x{int(self.multiplicity[i])} at {self.points[i].tolist()}")
        return "\n".join(lines)


def find_fixed_points(
    fn: Callable,
    inits: torch.Tensor,
    *,
    kind: str = "field",
    geometry=None,
    eta: float | None = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    dedup_tol: float | None = None,
    slow_tol: float = 1e-6,
    class_tol: float = 1e-8,
    method: str = "auto",
    newton_max_dim: int = 256,
    cg_iters: int = 30,
    bound: float | None = None,
    patience: int | None = None,
    t: float = 0.0,
) -> FixedPointResult:
    """Find the fixed points of a map (T(s) = s) or the zeros of a field (F(s) = 0).

    Args:
        fn: a batched field ``F(s, t)``/``F(s)`` (``kind="field"``) or map ``T(s)`` (``kind="map"``)
            taking states of shape (N, d); rows must not interact. Any PyTorch code works:
            closed forms, ``gradient_field(loss)``, ``as_map(F, η)``, an ``nn.GRUCell`` update with
            the input held fixed, a DEQ layer.
        inits: starts, shape (..., d).
        kind: ``"field"`` or ``"map"``.
        geometry: ``None``/``Euclidean()`` or ``Simplex(...)`` (starts must lie on the simplex).
        eta: for fields, also classify the Euler map s + ηF (``map_kinds``).
        tol: a start has converged to a zero when ‖r‖₂ ≤ max(tol, 10·eps·√m·(1+‖s‖∞)).
        max_iter: Levenberg–Marquardt iterations.  dedup_tol: distance under which two points are
            the same (default 1e-6 in float64, 1e-3 in lower precision).
        slow_tol: a stalled start is a slow point when ‖Aᵀr‖ ≤ slow_tol·max(‖A‖_F, 1)·‖r‖
            (a minimum of q).
        class_tol: tolerance of the eigenvalue classification.
        method: ``"dense"`` (Jacobian formed by batched VJPs), ``"matrix-free"`` (CG with JVP/VJP)
            or ``"auto"`` (dense when m ≤ newton_max_dim).
        patience: if given, a start whose q fell by less than 1% over this many iterations has
            stalled (a slow point if its gradient test passes, else a failure) — saves time on
            starts crawling along slow manifolds; off by default so slow points are resolved.
        bound: optional box |s|∞ ≤ bound (Euclidean geometry): iterates are clipped to it
            (projected Levenberg–Marquardt), starts outside it fail. Useful where q has spurious zeros at infinity (e.g. an RNN whose gates saturate to
            exactly 1 in float32 far outside the range of its states).

    Returns:
        :class:`FixedPointResult`. Starts that produce NaN or never settle are counted in
        ``n_failed``; nothing raises for non-convergence.

    Example:
        >>> from terrainlab.core import gradient_field
        >>> F = gradient_field(lambda s: (s[..., 0] ** 2 - 1) ** 2 + s[..., 1] ** 2)
        >>> res = find_fixed_points(F, torch.randn(64, 2, dtype=torch.float64))
        >>> sorted(res.kinds)
        ['attractor', 'attractor', 'saddle']
    """
    check_choice(kind, "kind", KINDS)
    check_eta(eta)
    check_positive(tol, "tol")
    check_int(max_iter, "max_iter", minimum=1)
    check_int(cg_iters, "cg_iters", minimum=1)
    if patience is not None:
        check_int(patience, "patience", minimum=1)
    check_positive(slow_tol, "slow_tol")
    if dedup_tol is not None:
        check_positive(dedup_tol, "dedup_tol")
    if bound is not None:
        check_positive(bound, "bound")
    check_choice(method, "method", ("auto", "dense", "matrix-free"))
    geometry = check_geometry(geometry)
    x0 = check_states(inits, "inits").detach()
    geometry.validate(x0, "inits")
    start = time.perf_counter()
    N, d = x0.shape
    co = Coords(geometry, d, x0.dtype, x0.device)
    if method == "auto":
        method = "dense" if co.m <= newton_max_dim else "matrix-free"
    if dedup_tol is None:
        dedup_tol = 1e-6 if x0.dtype == torch.float64 else 1e-3

    problem = ResidualProblem(fn, kind, co, t=t, tol=tol, bound=bound)
    outside = x0.abs().amax(-1) > bound if bound is not None else None
    sol = levenberg_marquardt(problem, co.to_y(x0), method=method, max_iter=max_iter, slow_tol=slow_tol,
                              patience=patience, cg_iters=cg_iters, failed=outside)

    s_final, res_norm = co.to_s(sol.y), sol.r.norm(dim=-1)
    found = deduplicate(s_final, res_norm, sol.status, dedup_tol)
    rep_idx = torch.tensor(found.reps, dtype=torch.long, device=x0.device)
    classes = classify_points(problem, sol.y[rep_idx], kind=kind, eta=eta, class_tol=class_tol)
    M, labels = len(found.reps), found.labels
    multiplicity = (torch.bincount(labels[labels >= 0], minlength=M)[:M] if M
                    else torch.zeros(0, dtype=torch.long, device=x0.device))
    return FixedPointResult(
        points=s_final[rep_idx].detach(),
        residuals=res_norm[rep_idx].detach(),
        eigenvalues=classes.eigenvalues,
        kinds=classes.kinds,
        map_kinds=classes.map_kinds,
        flip_eta=classes.flip_eta,
        is_slow=torch.tensor(found.slow, dtype=torch.bool, device=x0.device),
        multiplicity=multiplicity,
        start_labels=labels,
        start_residuals=res_norm.detach(),
        kind=kind,
        eta=eta,
        n_starts=N,
        n_converged=int((sol.status == CONV).sum()),
        n_slow=int((sol.status == SLOW).sum()),
        n_failed=int((sol.status == FAIL).sum()),
        n_iter=sol.n_iter,
        n_fn_evals=problem.n_fn,
        n_vjp=problem.n_vjp,
        n_jvp=problem.n_jvp,
        seconds=time.perf_counter() - start,
        method=method,
    )
