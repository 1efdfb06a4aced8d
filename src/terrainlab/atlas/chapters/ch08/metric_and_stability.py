"""ch08.metric_and_stability — does the book's "Bregman stability" reading classify fixed points better than
the Euclidean one? Orbits decide.

The box (ch08, "Bregman stability") says that near the edges of the simplex Euclidean analysis can mistake an
attractor for a saddle (or the reverse), and that stability should be read from J_Bregman = G^{−1/2} J G^{−1/2},
G the Fisher metric at the fixed point. Two readings of the same fixed point p* of a field F on Δ^{K−1}:

- Euclidean: the signs of Re eig(J), J = ∂F/∂p at p* in orthonormal tangent coordinates (Def. 4; Hartman–Grobman,
  Strogatz *Nonlinear Dynamics and Chaos* §6.3);
- Bregman (the box): the signs of Re eig(G^{−1/2} J G^{−1/2}), G = Bᵀdiag(1/p*)B (Amari 1998; Rao 1945).

Measured, for ``N_SEEDS`` seeds: ``n`` random NON-gradient fields per family on Δ³ (K = 4, so an attractor can be
mistaken for a saddle — on Δ² (K = 3) det J and det G^{−1/2}JG^{−1/2} have the same sign and only attractor ↔
repeller flips are possible) with fixed points p* ~ Dirichlet(``ALPHA``) (many near an edge):

- *linear*: F(p) = B M Bᵀ(p − p*), M with N(0, 1) entries (J = M);
- *softmax update*: F(p) = softmax(W(p − p*) + log p*) − p, W with N(0, ``SIGMA``²) entries — a random one-step
  belief update Φ with Φ(p*) = p*, the book's operational reasoning field (a) (F = Φ − p).

Each fixed point is classified under both readings, and by its ORBITS: ``N_DIRS`` perturbations of relative size
``EPS_REL`` in random tangent directions are run forward and backward in time (core ``rollout``, RK4 on the
Euclidean simplex landing, time rescaled by 1/max|λ| so every field has unit fastest rate); attractor when every
forward orbit shrinks by ``SHRINK``, repeller when every backward one does, saddle otherwise. Points whose
Euclidean spectrum is nearly non-hyperbolic (min|Re λ| < ``HYPERBOLIC``·max|λ|: orbits too slow to decide) are left
out and counted. Reported per seed and as mean ± SE over seeds (atlas.stats.mean_se): the share of fixed points on
which the two readings disagree, the share each reading gets wrong against the orbits, and the shares by distance
to the edge (min_i p*_i).

Control: the natural-gradient field F = −G^{−1}∇E (``GradientField(E, natural=True)``) of
E(p) = KL(p*‖p) − ½(p − p*)ᵀW_s(p − p*), W_s = (W + Wᵀ)/√2 from the same draws as the softmax family — its Jacobian
at p* is −G^{−1}(G − W_s) = G^{−1}W_s − I, the softmax family's with W made symmetric: a gradient field of the
metric, where both readings have the inertia of the Hessian (Sylvester) and must agree on every fixed point.

Theorem check (labelled, not the verdict): eig(J) in simplex tangent coordinates equals eig(J) in logit
coordinates z_i = log(p_i/p_K) (a change of coordinates is a similarity J ↦ AJA⁻¹), both by autograd.

Verdict (:func:`decide_metric_and_stability`): inconclusive unless the theorem check holds (relative difference ≤
``COORD_TOL``) and the control's readings disagree on no fixed point (share ≤ ``CONTROL_MAX``); then fails when the
Bregman reading's error share against the orbits lies above ``SHARE_MIN`` (mean − 2 SE) while the Euclidean one's
lies below it (mean + 2 SE); holds when it is the other way round; inconclusive otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.belief import fisher_metric_tangent, sample_dirichlet, tangent_basis
from terrainlab.core import RK4, Simplex, rollout
from terrainlab.dynamics import classify_flow, jacobian
from terrainlab.plotting import BLACK, BLUE, GREEN, ORANGE, SKY, VERMILLION, figure, style

K = 4  # Δ³: attractor ↔ saddle mistakes are possible (on Δ² the determinant's sign is kept)
ALPHA = 0.5  # Dirichlet concentration of the fixed points (< 1: many near an edge)
SIGMA = 8.0  # scale of the softmax update's W
N_SEEDS = 3
HYPERBOLIC = 0.1  # usable when min|Re λ| ≥ this · max|λ| (Euclidean spectrum)
N_DIRS = 6  # perturbation directions per fixed point
EPS_REL = 0.02  # perturbation size, relative to min_i p*_i
ETA, STEPS = 0.25, 240  # RK4 step (in units of 1/max|λ|) and count: time 60 ⇒ decay ≥ e^{−6} at the margin
SHRINK = 1e-2  # an orbit "shrinks" when its distance to p* falls below this fraction of the start
SHARE_MIN = 0.01  # a "measurable share" of misclassified fixed points
CONTROL_MAX = 0.0  # the control's readings must agree on every fixed point (Sylvester)
COORD_TOL = 1e-6  # the theorem check: eig(J) equal in simplex and logit coordinates to this (relative)
FAMILIES = ("linear", "softmax")
EDGE_BINS = (0.0, 0.01, 0.03, 0.1, 0.25)  # min_i p*_i bins of the figure


def decide_metric_and_stability(euclid_err_mean: float, euclid_err_se: float, bregman_err_mean: float,
                                bregman_err_se: float, control_disagree_share: float, coord_rel_diff: float,
                                share_min: float = SHARE_MIN) -> str:
    """The verdict on the box from the readings' error shares against the orbits (mean and SE over seeds).

    inconclusive when the theorem check failed (``coord_rel_diff`` > ``COORD_TOL``) or the control (a
    natural-gradient field) has readings that disagree (share > ``CONTROL_MAX``); else fails when the Bregman
    reading's error share lies above ``share_min`` (mean − 2 SE) and the Euclidean one's below it (mean + 2 SE);
    holds when the Euclidean one is above and the Bregman one below; inconclusive otherwise.

    >>> decide_metric_and_stability(0.0, 0.0, 0.05, 0.01, 0.0, 1e-12)
    'fails'
    """
    vals = (euclid_err_mean, euclid_err_se, bregman_err_mean, bregman_err_se, control_disagree_share, coord_rel_diff)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        raise ValueError("decide_metric_and_stability takes numbers (shares, standard errors, a relative difference)")
    if not (math.isfinite(coord_rel_diff) and coord_rel_diff <= COORD_TOL):
        return "inconclusive"
    if not (math.isfinite(control_disagree_share) and control_disagree_share <= CONTROL_MAX):
        return "inconclusive"
    e = side_of(euclid_err_mean, euclid_err_se, share_min)
    b = side_of(bregman_err_mean, bregman_err_se, share_min)
    if b == "above" and e == "below":
        return "fails"
    if e == "above" and b == "below":
        return "holds"
    return "inconclusive"


def _rows(p_star: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """p* (n, K) broadcast against states (n, …, K)."""
    return p_star.reshape(p_star.shape[0], *([1] * (p.ndim - 2)), p_star.shape[-1])


def _apply(A: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Row-wise matrix–vector products: A (n, K, K) on v (n, K) or on v (n, m, K)."""
    return (A @ v.unsqueeze(-1)).squeeze(-1) if v.ndim == 2 else v @ A.transpose(-1, -2)


def linear_fields(p_star: torch.Tensor, M: torch.Tensor):
    """F(p) = B M Bᵀ(p − p*) row by row (p* (n, K), M (n, K−1, K−1)); states (n, …, K)."""
    B = tangent_basis(p_star.shape[-1], dtype=p_star.dtype)
    BMB = B @ M @ B.T

    def F(p, t=0.0):
        return _apply(BMB, p - _rows(p_star, p))

    return F


def softmax_update_fields(p_star: torch.Tensor, W: torch.Tensor):
    """F(p) = softmax(W(p − p*) + log p*) − p row by row: a one-step belief update with Φ(p*) = p*."""

    def F(p, t=0.0):
        q = _rows(p_star, p)
        return torch.softmax(_apply(W, p - q) + torch.log(q), -1) - p

    return F


def natural_gradient_fields(p_star: torch.Tensor, W_sym: torch.Tensor):
    """F = −G^{−1}∇E = −p ⊙ (∇E − ⟨p, ∇E⟩) for E(p) = KL(p*‖p) − ½(p − p*)ᵀW_s(p − p*) row by row (the
    closed-form gradient ∇E = −p*/p − W_s(p − p*); p floored at 1e-12 for stage states past an edge)."""

    def F(p, t=0.0):
        q = _rows(p_star, p)
        g = -q / p.clamp(min=1e-12) - _apply(W_sym, p - q)
        return -p * (g - (p * g).sum(-1, keepdim=True))

    return F


def _sqrtm_inv(G: torch.Tensor) -> torch.Tensor:
    w, Q = torch.linalg.eigh(G)
    return Q @ torch.diag_embed(w ** -0.5) @ Q.transpose(-1, -2)


def readings(F, p_star: torch.Tensor) -> dict:
    """Both readings of the fixed points p* (n, K) of the row-wise field F: the tangent Jacobian by autograd,
    its eigenvalues and class (Euclidean), those of G^{−1/2}JG^{−1/2} (Bregman), and the hyperbolicity mask."""
    B = tangent_basis(p_star.shape[-1], dtype=p_star.dtype)
    J = jacobian(F, p_star, basis=B)
    eig = torch.linalg.eigvals(J)
    S = _sqrtm_inv(fisher_metric_tangent(p_star))
    eig_b = torch.linalg.eigvals(S @ J @ S)
    rate = eig.abs().amax(-1)
    return {"J": J, "eig": eig, "eig_bregman": eig_b, "class_euclid": classify_flow(eig),
            "class_bregman": classify_flow(eig_b), "rate": rate,
            "usable": eig.real.abs().amin(-1) >= HYPERBOLIC * rate}


def _logit_field(F, K: int):
    """The field in logit coordinates z_i = log p_i − log p_K (i < K): ż = Dφ(p)·F(p)."""

    def Fz(z, t=0.0):
        p = torch.softmax(torch.cat([z, torch.zeros(*z.shape[:-1], 1, dtype=z.dtype)], -1), -1)
        v = F(p)
        return v[..., :-1] / p[..., :-1] - v[..., -1:] / p[..., -1:]

    return Fz


def coordinate_invariance(F, p_star: torch.Tensor, eig: torch.Tensor) -> float:
    """The theorem check: max over fixed points of |eig J(simplex) − eig J(logit)| / max|λ| (eigenvalues
    matched by sorting real parts and |imaginary| parts)."""
    z = torch.log(p_star[:, :-1]) - torch.log(p_star[:, -1:])
    ez = torch.linalg.eigvals(jacobian(_logit_field(F, p_star.shape[-1]), z))

    def key(e):
        return torch.sort(e.real, -1).values, torch.sort(e.imag.abs(), -1).values

    (r1, i1), (r2, i2) = key(eig), key(ez)
    diff = torch.maximum((r1 - r2).abs().amax(-1), (i1 - i2).abs().amax(-1))
    return float((diff / eig.abs().amax(-1)).max())


def orbit_classes(fields: list, p_stars: list, rates: list, generator: torch.Generator, *,
                  steps: int = STEPS) -> list[list[str]]:
    """Classify every fixed point by its orbits (module docstring), all fields in ONE core ``rollout``: each
    field's rows are run forward and backward (−F) from ``N_DIRS`` perturbations, time rescaled by 1/rate."""
    sizes = [int(p.shape[0]) for p in p_stars]
    dt = p_stars[0].dtype
    B = tangent_basis(K, dtype=dt)
    starts = []
    for ps in p_stars:
        d = torch.randn(ps.shape[0], N_DIRS, K - 1, generator=generator, dtype=dt)
        d = (d / d.norm(dim=-1, keepdim=True)) @ B.T
        starts.append(ps[:, None, :] + EPS_REL * ps.min(-1).values[:, None, None] * d)
    s0 = torch.cat(starts + starts)  # forward block, then backward block
    sign = torch.cat([torch.ones(sum(sizes), dtype=dt), -torch.ones(sum(sizes), dtype=dt)])
    scale = sign / torch.cat(rates + rates)
    bounds = np.cumsum([0] + sizes + sizes)

    def field(p, t=0.0):
        parts = [fields[i % len(fields)](p[bounds[i]:bounds[i + 1]]) for i in range(2 * len(fields))]
        return torch.cat(parts) * scale[:, None, None]

    final = rollout(field, s0, eta=ETA, steps=steps, scheme=RK4(), geometry=Simplex("euclid"), record="last").final
    ps_all = torch.cat(p_stars + p_stars)
    d0 = (s0 - ps_all[:, None]).norm(dim=-1)
    dist = (final - ps_all[:, None]).norm(dim=-1)
    shrunk = torch.nan_to_num(dist, nan=math.inf) < SHRINK * d0
    shrunk = shrunk.all(-1)
    n = sum(sizes)
    fw, bw = shrunk[:n], shrunk[n:]
    out, lo = [], 0
    for s in sizes:
        out.append(["attractor" if f else "repeller" if b else "saddle"
                    for f, b in zip(fw[lo:lo + s].tolist(), bw[lo:lo + s].tolist())])
        lo += s
    return out


def draw(generator: torch.Generator, n: int, dtype=torch.float64) -> dict:
    """One seed's draws: fixed points p* ~ Dirichlet(ALPHA) (kept 0.1 % inside), the linear family's M, the
    softmax family's W and the control's W_s = (W + Wᵀ)/√2."""
    ps = sample_dirichlet(n, K, alpha=ALPHA, generator=generator, dtype=dtype)
    ps = (ps + 1e-3) / (1 + K * 1e-3)
    M = torch.randn(n, K - 1, K - 1, generator=generator, dtype=dtype)
    W = SIGMA * torch.randn(n, K, K, generator=generator, dtype=dtype)
    return {"p_star": ps, "M": M, "W": W, "W_sym": (W + W.transpose(-1, -2)) / math.sqrt(2)}


def make_fields(d: dict, rows=slice(None)) -> dict:
    """The three families' row-wise fields of a :func:`draw` (``rows``: a subset of its rows)."""
    ps = d["p_star"][rows]
    return {"linear": linear_fields(ps, d["M"][rows]), "softmax": softmax_update_fields(ps, d["W"][rows]),
            "control": natural_gradient_fields(ps, d["W_sym"][rows])}


def survey(generators: list, n: int) -> list[dict]:
    """Readings and orbit classes of the three families (linear, softmax, control) for ``n`` draws per seed
    (one generator per seed); the seeds' draws are stacked so all orbits run in one rollout."""
    draws = [draw(g, n) for g in generators]
    d = {k: torch.cat([x[k] for x in draws]) for k in draws[0]}
    ps = d["p_star"]
    fields = make_fields(d)
    names = list(fields)
    rd = {k: readings(F, ps) for k, F in fields.items()}
    oc = orbit_classes([fields[k] for k in names], [ps] * len(names), [rd[k]["rate"] for k in names],
                       generators[0])
    out = []
    for i in range(len(generators)):
        rows = slice(i * n, (i + 1) * n)
        seed = {"p_star": ps[rows], "draw": {k: v[rows] for k, v in d.items()}}
        for k, cls in zip(names, oc):
            r = {key: (v[rows] if torch.is_tensor(v) else v[rows]) for key, v in rd[k].items()}
            cls = cls[rows]
            u = r["usable"].tolist()
            ce = [c for c, ok in zip(r["class_euclid"], u) if ok]
            cb = [c for c, ok in zip(r["class_bregman"], u) if ok]
            co = [c for c, ok in zip(cls, u) if ok]
            m = len(co)
            seed[k] = {**r, "class_orbit": cls, "n_usable": m,
                       "disagree": [a != b for a, b in zip(ce, cb)],
                       "euclid_wrong": [a != o for a, o in zip(ce, co)],
                       "bregman_wrong": [b != o for b, o in zip(cb, co)],
                       "min_p": ps[rows].min(-1).values[r["usable"]].tolist(),
                       "pairs": [(a, b, o) for a, b, o in zip(ce, cb, co) if a != b]}
            for key in ("disagree", "euclid_wrong", "bregman_wrong"):
                seed[k][f"{key}_share"] = sum(seed[k][key]) / m if m else math.nan
        out.append(seed)
    return out


def _share(rows: list, key: str, fams=FAMILIES) -> float:
    """A seed's share over the pooled usable fixed points of ``fams``."""
    v = [x for f in fams for x in rows[f][key]]
    return sum(v) / len(v) if v else math.nan


@experiment(
    id="ch08.metric_and_stability",
    chapter=8,
    title="Does the 'Bregman stability' reading G^(−1/2) J G^(−1/2) classify fixed points better? Orbits decide",
    claim="Near the simplex edges Euclidean analysis can mistake an attractor for a saddle (or the reverse); "
          "stability should be read from J_Bregman = G^{-1/2} J G^{-1/2} with the Fisher metric G.",
)
def metric_and_stability(ctx: Context) -> Result:
    n = 90 if ctx.quick else 250
    with one_thread():  # small batched ops: two threads are far slower here (softmax on (n, 6, 4) rows)
        seeds = survey([ctx.generator(i) for i in range(N_SEEDS)], n)
    s0 = seeds[0]
    f0 = make_fields(s0["draw"])
    coord = max(coordinate_invariance(f0[f], s0["p_star"], s0[f]["eig"]) for f in FAMILIES)

    stats = {}
    for key in ("disagree", "euclid_wrong", "bregman_wrong"):
        stats[key] = mean_se([_share(s, key) for s in seeds])
        for f in FAMILIES:
            stats[f"{f}_{key}"] = mean_se([s[f][f"{key}_share"] for s in seeds])
    ctrl = {key: mean_se([s["control"][f"{key}_share"] for s in seeds])
            for key in ("disagree", "euclid_wrong", "bregman_wrong")}
    ctrl_disagree_max = max(s["control"]["disagree_share"] for s in seeds)
    verdict = decide_metric_and_stability(*stats["euclid_wrong"], *stats["bregman_wrong"], ctrl_disagree_max, coord)
    control_verdict = decide_metric_and_stability(*ctrl["euclid_wrong"], *ctrl["bregman_wrong"], 0.0, coord)

    pairs: dict[str, int] = {}
    for s in seeds:
        for f in FAMILIES:
            for a, b, o in s[f]["pairs"]:
                k = f"euclid {a} / bregman {b} / orbits {o}"
                pairs[k] = pairs.get(k, 0) + 1
    n_usable = {f: [s[f]["n_usable"] for s in seeds] for f in (*FAMILIES, "control")}

    # shares by distance to the edge (all seeds, both non-gradient families pooled)
    mp = np.array([x for s in seeds for f in FAMILIES for x in s[f]["min_p"]])
    dis = np.array([x for s in seeds for f in FAMILIES for x in s[f]["disagree"]], dtype=float)
    bw = np.array([x for s in seeds for f in FAMILIES for x in s[f]["bregman_wrong"]], dtype=float)
    ew = np.array([x for s in seeds for f in FAMILIES for x in s[f]["euclid_wrong"]], dtype=float)
    bins = list(zip(EDGE_BINS[:-1], EDGE_BINS[1:]))
    by_edge = []
    for lo, hi in bins:
        m = (mp >= lo) & (mp < hi)
        by_edge.append({"min_p": [lo, hi], "n": int(m.sum()),
                        "disagree_share": float(dis[m].mean()) if m.any() else math.nan,
                        "bregman_wrong_share": float(bw[m].mean()) if m.any() else math.nan,
                        "euclid_wrong_share": float(ew[m].mean()) if m.any() else math.nan})

    # one disagreeing fixed point, its orbits drawn (first of seed 0, linear family preferred)
    example = None
    for f in FAMILIES:
        r = s0[f]
        for i, (a, b, ok) in enumerate(zip(r["class_euclid"], r["class_bregman"], r["usable"].tolist())):
            if ok and a != b and example is None:
                example = (f, i, a, b)
    ex_curves = None
    if example is not None:
        f, i, a, b = example
        ps_i = s0["p_star"][i:i + 1]
        F = make_fields(s0["draw"], slice(i, i + 1))[f]
        rate = float(s0[f]["rate"][i])
        B = tangent_basis(K, dtype=ps_i.dtype)
        g = ctx.generator(99)
        dirs = torch.randn(1, N_DIRS, K - 1, generator=g, dtype=ps_i.dtype)
        dirs = (dirs / dirs.norm(dim=-1, keepdim=True)) @ B.T
        p0 = ps_i[:, None] + EPS_REL * float(ps_i.min()) * dirs

        def Fi(p, t=0.0, F=F, rate=rate):
            return F(p) / rate

        tr = rollout(Fi, p0, eta=ETA, steps=STEPS, scheme=RK4(), geometry=Simplex("euclid"), record=4)
        ex_curves = {"family": f, "p_star": ps_i[0].tolist(), "euclid": a, "bregman": b,
                     "orbit": s0[f]["class_orbit"][i], "eig": [[float(v.real), float(v.imag)] for v in s0[f]["eig"][i]],
                     "eig_bregman": [[float(v.real), float(v.imag)] for v in s0[f]["eig_bregman"][i]],
                     "t": (tr.steps.double() * ETA).tolist(),
                     "dist": ((tr.states - ps_i[:, None]).norm(dim=-1)[:, 0] / (EPS_REL * float(ps_i.min()))).tolist()}

    def ms(key, src=stats):
        m, s = src[key]
        return m, s

    with style():
        fig, axes = figure("double", height=2.7, ncols=3, layout="constrained")
        ax = axes[0]
        x = np.arange(len(bins))
        w = 0.27
        ax.bar(x - w, [b["disagree_share"] for b in by_edge], w, color=SKY, label="readings disagree")
        ax.bar(x, [b["bregman_wrong_share"] for b in by_edge], w, color=VERMILLION, label="Bregman reading ≠ orbits")
        ax.bar(x + w, [b["euclid_wrong_share"] for b in by_edge], w, color=BLUE, label="Euclidean reading ≠ orbits")
        ax.axhline(SHARE_MIN, color="grey", ls="--", lw=0.8, label=f"threshold {SHARE_MIN:g}")
        ax.set_xticks(x, [f"{lo:g}–{hi:g}\n({b['n']})" for (lo, hi), b in zip(bins, by_edge)], fontsize=6)
        ax.set_xlabel("distance to the edge min_i p*_i (fixed points)")
        ax.set_ylabel("share of fixed points")
        ax.set_title(f"(a) non-gradient fields, {N_SEEDS} seeds", fontsize=7)
        ax.legend(frameon=False, fontsize=5.5, loc="upper right")
        ax = axes[1]
        labels = ["non-gradient\n(linear + softmax)", "control: natural\ngradient −G⁻¹∇E"]
        for j, (src, k) in enumerate(((stats, "bregman_wrong"), (ctrl, "bregman_wrong"))):
            m, s = ms(k, src)
            ax.bar(j - 0.18, m, 0.34, yerr=2 * s, capsize=2, color=VERMILLION,
                   label="Bregman reading ≠ orbits (±2 SE)" if j == 0 else None)
            m, s = ms("euclid_wrong", src)
            ax.bar(j + 0.18, m, 0.34, yerr=2 * s, capsize=2, color=BLUE,
                   label="Euclidean reading ≠ orbits (±2 SE)" if j == 0 else None)
        ax.axhline(SHARE_MIN, color="grey", ls="--", lw=0.8)
        ax.set_xticks([0, 1], labels, fontsize=6)
        ax.set_ylabel("share misclassified (mean over seeds)")
        ax.set_title(f"(b) verdict: {verdict}; control: {control_verdict}\n"
                     f"control disagreements {ctrl['disagree'][0]:.3f}", fontsize=7)
        ax.legend(frameon=False, fontsize=5.5, loc="upper right")
        ax = axes[2]
        if ex_curves is not None:
            ax.semilogy(ex_curves["t"], np.array(ex_curves["dist"]), color=ORANGE, lw=0.9)
            ax.set_xlabel("time (units of 1/max|λ|), RK4 orbits")
            ax.set_ylabel("‖p_t − p*‖ / ‖p_0 − p*‖")
            ax.set_title(f"(c) one {ex_curves['family']} field: Euclidean says {ex_curves['euclid']},\n"
                         f"Bregman says {ex_curves['bregman']}; the orbits: {ex_curves['orbit']}", fontsize=7)
            ax.axhline(SHRINK, color=GREEN, ls=":", lw=0.8, label=f"shrink threshold {SHRINK:g}")
            ax.axhline(1, color=BLACK, lw=0.5)
            ax.legend(frameon=False, fontsize=5.5)
        else:
            ax.text(0.5, 0.5, "no disagreeing fixed point in seed 0", ha="center", va="center", transform=ax.transAxes)
    ctx.savefig(fig, "metric_and_stability")

    def pm(key, src=stats):
        m, s = src[key]
        return f"{m:.3f} ± {s:.3f}"

    numbers = {
        "claim_kind": "theorem-check",
        "K": K, "n_seeds": N_SEEDS, "n_draws_per_family_per_seed": n, "n_usable": n_usable,
        "disagree_share_mean": stats["disagree"][0], "disagree_share_se": stats["disagree"][1],
        "bregman_wrong_share_mean": stats["bregman_wrong"][0], "bregman_wrong_share_se": stats["bregman_wrong"][1],
        "euclid_wrong_share_mean": stats["euclid_wrong"][0], "euclid_wrong_share_se": stats["euclid_wrong"][1],
        "per_family": {f: {k: list(stats[f"{f}_{k}"]) for k in ("disagree", "euclid_wrong", "bregman_wrong")}
                       for f in FAMILIES},
        "disagreements": pairs,
        "by_edge_distance": by_edge,
        "theorem_check_eig_simplex_vs_logit_rel_diff": coord,
        "control_disagree_share_mean": ctrl["disagree"][0], "control_disagree_share_se": ctrl["disagree"][1],
        "control_disagree_share_max": ctrl_disagree_max,
        "control_euclid_wrong_share_mean": ctrl["euclid_wrong"][0],
        "control_bregman_wrong_share_mean": ctrl["bregman_wrong"][0],
        "control_verdict": control_verdict,
        "example": ex_curves and {k: v for k, v in ex_curves.items() if k not in ("t", "dist")},
    }
    return Result(
        verdict=verdict,
        numbers=numbers,
        threshold=(f"readings' error shares against the orbits (mean ± 2 SE over {N_SEEDS} seeds): Bregman above "
                   f"{SHARE_MIN:g} and Euclidean below ⇒ fails, the reverse ⇒ holds, else inconclusive; decided only if "
                   f"the control's readings disagree on no fixed point and eig(J) agrees in simplex and logit "
                   f"coordinates to {COORD_TOL:g}"),
        explanation=(
            f"{N_SEEDS} seeds × {n} random non-gradient fields per family on Δ³ (linear, and softmax belief updates "
            f"Φ(p) = softmax(W(p − p*) + log p*)), fixed points p* ~ Dirichlet({ALPHA:g}); usable (hyperbolic) fixed "
            f"points per seed: {', '.join(f'{f} {n_usable[f]}' for f in FAMILIES)}. The two readings disagree on "
            f"{pm('disagree')} of them; against the orbits (perturbations run forward and backward with RK4) the "
            f"Bregman reading G^(−1/2)JG^(−1/2) is wrong on {pm('bregman_wrong')}, the Euclidean eig(J) on "
            f"{pm('euclid_wrong')} (linear family: Bregman {pm('linear_bregman_wrong')}; softmax updates: "
            f"{pm('softmax_bregman_wrong')}). The disagreements ({'; '.join(f'{k}: {v}' for k, v in pairs.items())}) "
            f"{'are more frequent' if by_edge[0]['disagree_share'] > by_edge[-1]['disagree_share'] else 'are not more frequent'} "
            f"near the edges (share {by_edge[0]['disagree_share']:.3f} for min p* < {EDGE_BINS[1]:g} against "
            f"{by_edge[-1]['disagree_share']:.3f} for min p* ≥ {EDGE_BINS[-2]:g}), where the box recommends "
            f"its reading. Control: the natural-gradient fields −G⁻¹∇E of the same draws (W symmetrised) — the two "
            f"readings disagree on {ctrl['disagree'][0]:.3f} of the fixed points (Sylvester's law of inertia), and the "
            f"orbits agree with both ({ctrl['euclid_wrong'][0]:.3f} wrong). Theorem check: eig(J) in simplex and in "
            f"logit coordinates agree to {coord:.1e} (relative): linear stability does not depend on the coordinates; "
            f"a congruence G^(−1/2)JG^(−1/2) is not a change of coordinates. This is a theorem check in kind "
            f"(Hartman–Grobman fixes which reading the orbits side with); the share depends on the family of fields."
        ),
        corrected=("Linear stability is read from eig(J) of the field at the fixed point, in any coordinates (a change "
                   "of coordinates is a similarity); a metric changes rates, not stability types. G^(−1/2)JG^(−1/2) "
                   "has the right signs only for gradient fields of the metric (J = −G⁻¹H, Sylvester), and for "
                   "non-gradient fields near the edges it misclassifies fixed points that eig(J) gets right."),
    )
