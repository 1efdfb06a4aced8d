"""Reasoning fields on the simplex: a belief p moves along a tangent field F(p) (Σ F = 0),
p_{t+1} = land(p_t, η F(p_t)), toward attractors.

What the book calls the reasoning field (its Def. 1, the expected score
E_{y∼p(·|p)}[∇_p log p(y|p)]) is identically zero for any normalised conditional model
(Σ_y ∇_p p(y|p) = ∇_p 1 = 0); :func:`literal_def1_field` is kept only to show that. The operational
fields are

- :class:`GradientField`: F = −P_T∇E (Euclidean) or the natural gradient −p ⊙ (∇E − ⟨p, ∇E⟩);
- :class:`MapField`: F = Φ(p) − p for a one-step belief update Φ (fixed points are Φ(p) = p);
- :func:`with_verifier`: F + η_v P_T∇V;  :func:`with_reward`: E − λR.

Landing (``proj``): ``"euclid"`` proj_Δ(p + ηF), ``"mirror"`` p ∝ p·exp(ηF/p) (exactly
exponentiated gradient when F is the natural-gradient field), ``"logit"`` softmax(log p + ηF);
these are the core ``Simplex`` geometries, and :func:`orbit` is core ``rollout`` with one of them.

Also: temperature (Langevin) orbits p_{t+1} = proj_Δ(p + ηF + √(2ηT)ξ) (core ``EulerMaruyama``);
the KL freeze rule (core ``KLFreeze``, read off a recorded trajectory by :func:`kl_freeze`); step
counts and the freeze error bound in their corrected forms; ruggedness and the stability margin
along a path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch.func import grad, jacrev, vmap

from terrainlab.core import EulerMaruyama, KLFreeze, MapField, Simplex, rollout
from terrainlab.core.geometry import simplex_rule
from terrainlab.core.validate import check_callable, check_number, check_positive, check_tensor

from .divergences import _kl, kl
from .energy import hessian_tangent
from .simplex import tangent_project

__all__ = [
    "ReasoningField",
    "GradientField",
    "MapField",
    "MultiWellEnergy",
    "CrossEntropyEnergy",
    "literal_def1_field",
    "with_verifier",
    "with_reward",
    "orbit",
    "langevin_orbit",
    "steps_to_eps",
    "steps_to_eps_book",
    "estimate_contraction",
    "freeze_error_bound",
    "freeze_bound_book",
    "kl_freeze",
    "kl_increments",
    "ruggedness",
    "stability_margin",
]

@runtime_checkable
class ReasoningField(Protocol):
    """A field on the simplex: ``F(p, t=0.0)`` returns a tangent vector (…, K) with Σ_i F_i = 0.
    Any core field F(state, t) with that property is one."""

    def __call__(self, p: torch.Tensor, t: float = 0.0) -> torch.Tensor: ...


def _egrad(energy):
    def total(p):
        return energy(p).sum()

    return grad(total)


class GradientField:
    """F(p) = −P_T ∇E(p) (``natural=False``) or F(p) = −p ⊙ (∇E − ⟨p, ∇E⟩), the Fisher natural
    gradient (``natural=True``; Amari 1998), for an energy E: (…, K) → (…) by autograd.

    Example:
        >>> from terrainlab.belief import energy
        >>> ps = torch.tensor([0.7, 0.2, 0.1])
        >>> F = GradientField(lambda p: energy(p, ps), natural=True)
        >>> F(torch.full((1, 3), 1 / 3))   # = p* − p for KL(p*‖p)
        tensor([[ 0.3667, -0.1333, -0.2333]])
    """

    def __init__(self, energy: Callable[[torch.Tensor], torch.Tensor], natural: bool = False):
        self.energy = check_callable(energy, "energy")
        self.natural = bool(natural)
        # closed-form gradient when the energy provides one (much faster than autograd in loops)
        self._g = energy.grad if callable(getattr(energy, "grad", None)) else _egrad(energy)

    def __call__(self, p: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        g = self._g(p)
        if self.natural:
            return -p * (g - (p * g).sum(-1, keepdim=True))
        return -tangent_project(g)

    def __repr__(self):
        return f"GradientField(natural={self.natural})"


class MultiWellEnergy:
    """A soft minimum of KL wells: E(p) = −τ log Σ_j w_j exp(−KL(a_j‖p)/τ).

    Each anchor a_j (an interior belief) is the bottom of one well; larger weights make deeper,
    wider wells, and smaller τ makes the barriers between wells sharper. With a "correct" anchor
    of large weight and "wrong" anchors of small weight this reproduces the picture of a wide
    correct basin and narrower error basins separated by saddles.

    Example:
        >>> E = MultiWellEnergy(torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]), [0.7, 0.3], 0.1)
        >>> E(torch.tensor([0.8, 0.1, 0.1])) < E(torch.tensor([0.1, 0.8, 0.1]))
        tensor(True)
    """

    def __init__(self, anchors: torch.Tensor, weights=None, tau: float = 0.1):
        if not torch.is_tensor(anchors) or anchors.ndim != 2 or anchors.shape[1] < 2:
            raise ValueError("anchors must be a (J, K) tensor of beliefs")
        if bool((anchors <= 0).any()) or not bool(((anchors.sum(-1) - 1).abs() < 1e-6).all()):
            raise ValueError("anchors must be interior beliefs (entries > 0, rows summing to 1)")
        J = anchors.shape[0]
        w = torch.full((J,), 1.0 / J) if weights is None else torch.as_tensor(weights, dtype=anchors.dtype)
        if w.shape != (J,) or bool((w <= 0).any()):
            raise ValueError(f"weights must be {J} positive numbers, one per anchor")
        check_positive(tau, "tau")
        self.anchors, self.weights, self.tau = anchors, w.to(anchors.dtype), float(tau)

    def wells(self, p: torch.Tensor) -> torch.Tensor:
        """KL(a_j‖p) for every anchor, shape (…, J)."""
        return kl(self.anchors, p.unsqueeze(-2))

    def __call__(self, p: torch.Tensor) -> torch.Tensor:
        a = self.anchors.to(p)
        w = self.weights.to(p)
        d = _kl(a, p.unsqueeze(-2))  # an energy is evaluated in loops and under torch.func: no checks
        return -self.tau * torch.logsumexp(torch.log(w) - d / self.tau, dim=-1)

    def _wells_fast(self, p: torch.Tensor) -> torch.Tensor:
        # KL(a_j‖p) = Σ a log a − ⟨a_j, log p⟩: one matmul instead of a (…, J, K) broadcast;
        # p is floored at 1e-12 (as in the book's script) so the gradient stays finite on the boundary
        a = self.anchors.to(p)
        return torch.xlogy(a, a).sum(-1) - torch.log(p.clamp(min=1e-12)) @ a.T

    def responsibilities(self, p: torch.Tensor) -> torch.Tensor:
        """π_j(p) = softmax_j(log w_j − KL(a_j‖p)/τ), the soft assignment of p to the wells."""
        d = self._wells_fast(p)
        return torch.softmax(torch.log(self.weights.to(p)) - d / self.tau, dim=-1)

    def grad(self, p: torch.Tensor) -> torch.Tensor:
        """Closed form ∇E(p) = −(Σ_j π_j(p) a_j)/p (Euclidean, ambient coordinates; p floored at 1e-12,
        so a noisy or overshooting step that lands on the boundary gets a large finite push back)."""
        return -(self.responsibilities(p) @ self.anchors.to(p)) / p.clamp(min=1e-12)


class CrossEntropyEnergy:
    """E(p) = E_{y∼q}[−log p_y] = H(q) + KL(q‖p): the expected cross-entropy of a belief p under
    label frequencies q (the book's ch08 Theorem 1 energy). Strictly convex on the simplex with the
    unique minimiser p = q (Gibbs' inequality), however frequent a wrong label is."""

    def __init__(self, q: torch.Tensor):
        if not torch.is_tensor(q) or q.ndim != 1 or bool((q < 0).any()):
            raise ValueError("q must be a 1-D tensor of label frequencies")
        self.q = q / q.sum()

    def __call__(self, p: torch.Tensor) -> torch.Tensor:
        return -torch.xlogy(self.q.to(p), p).sum(-1)

    def grad(self, p: torch.Tensor) -> torch.Tensor:
        """∇E(p) = −q/p."""
        return -self.q.to(p) / p


def literal_def1_field(cond_logits: Callable[[torch.Tensor], torch.Tensor]):
    """The book's Def. 1 taken literally: F(p) = P_T Σ_y p(y|p) ∇_p log p(y|p) with
    p(y|p) = softmax(cond_logits(p)).

    It is identically zero for every model: Σ_y p(y|p)∇_p log p(y|p) = ∇_p Σ_y p(y|p) = ∇_p 1 = 0
    (the score identity in the conditioning variable). Provided only so tests can show it; use
    :class:`GradientField`, :class:`MapField` or a score toward a target instead.
    """
    check_callable(cond_logits, "cond_logits")

    def logp(p1):
        return torch.log_softmax(cond_logits(p1), dim=-1)

    J = vmap(jacrev(logp))

    def field(p, t=0.0):
        flat = p.reshape(-1, p.shape[-1])
        lp = logp(flat)
        F = (lp.exp().unsqueeze(-1) * J(flat)).sum(-2)
        return tangent_project(F).reshape(p.shape)

    return field


def with_verifier(field, V: Callable[[torch.Tensor], torch.Tensor], eta_v: float):
    """F_ver(p) = F(p) + η_v·P_T∇V(p): a verifier score V pushes beliefs toward higher V
    (the book's Def. 6). For small η_v a hyperbolic attractor of F only moves (implicit function
    theorem); it disappears at a saddle-node bifurcation, which continuation locates."""
    check_callable(field, "field")
    check_callable(V, "V")
    check_number(eta_v, "eta_v", minimum=0)
    gV = _egrad(V)

    def F(p, t=0.0):
        return field(p, t) + eta_v * tangent_project(gV(p))

    return F


def with_reward(energy: Callable, R: Callable, lam: float):
    """E_λ(p) = E(p) − λR(p) (the book's Def. 7 energy). Fixed points are not preserved in
    general: a reward bump can create new minima through a saddle-node bifurcation."""
    check_callable(energy, "energy")
    check_callable(R, "R")
    check_number(lam, "lam")

    def E(p):
        return energy(p) - lam * R(p)

    return E


def _geometry(proj: str, p0: torch.Tensor) -> Simplex:
    geometry = Simplex(simplex_rule(proj, "proj"))
    geometry.validate(p0, "p0")  # name the caller's argument, not rollout's s0
    return geometry


def orbit(field, p0: torch.Tensor, eta: float, steps: int, *, proj: str = "euclid", stop=None,
          record="all"):
    """p_{t+1} = land(p_t, η F(p_t)) through core ``rollout`` with ``Simplex(proj)``; returns the
    core ``Trajectory``. ``proj`` ∈ {"euclid", "mirror", "logit"} (``"softmax_logits"``, the old
    spelling of ``"logit"``, warns). ``stop`` takes core rules, e.g. ``KLFreeze(eps, m)``."""
    return rollout(field, p0, eta=eta, steps=steps, geometry=_geometry(proj, p0), stop=stop, record=record)


def langevin_orbit(field, p0: torch.Tensor, eta: float, T, steps: int, *,
                   proj: str = "euclid", generator: torch.Generator | None = None, record="all"):
    """The temperature-perturbed Euler step p_{t+1} = proj_Δ(p_t + ηF(p_t) + √(2ηT)·ξ),
    ξ ∼ N(0, I) (Euler–Maruyama for overdamped Langevin dynamics), via core ``rollout`` with
    ``EulerMaruyama(√(2T))``. ``T`` is a temperature ≥ 0 or a tensor of per-row temperatures
    broadcasting against ``p0[..., :1]`` (many temperatures in one batch). The Euclidean projection
    keeps only the tangent part of the noise in the interior; a step that overshoots the boundary is
    clipped onto it (count such hits: they are an artefact of the discretisation)."""
    geometry = _geometry(proj, p0)
    if torch.is_tensor(T):
        if bool((T < 0).any()) or not bool(torch.isfinite(T).all()):
            raise ValueError("T must hold finite temperatures >= 0")
        g = torch.sqrt(2 * T.to(p0))

        def diffusion(state, t):
            return g

    else:
        diffusion = math.sqrt(2 * check_number(T, "T", minimum=0))
    return rollout(field, p0, eta=eta, steps=steps, scheme=EulerMaruyama(diffusion, generator),
                   geometry=geometry, record=record)


# --------------------------------------------------------------------------------------------
# step counts and freezing


def _check_k(k, name="k"):
    kk = torch.as_tensor(k, dtype=torch.float64)
    if bool(((kk <= 0) | (kk >= 1)).any()):
        raise ValueError(f"{name} must be a contraction factor in (0, 1), got {k!r}")


def steps_to_eps(D0, eps, k):
    """A SUFFICIENT number of steps: if D_t ≤ k^t D_0 then D_T ≤ ε for every
    T ≥ ⌈log(ε/D_0)/log k⌉ (0 when D_0 ≤ ε). This is an upper bound on the steps needed, not the
    "lower bound" the book calls it; each tenfold increase of D_0 adds log(10)/log(1/k) steps."""
    _check_k(k)
    D0t, epst, kt = (torch.as_tensor(x, dtype=torch.float64) for x in (D0, eps, k))
    if bool((epst <= 0).any()) or bool((D0t < 0).any()):
        raise ValueError("eps must be > 0 and D0 >= 0")
    T = torch.ceil(torch.log(epst / D0t) / torch.log(kt)).clamp(min=0)
    return int(T) if T.ndim == 0 else T.to(torch.int64)


def steps_to_eps_book(D0, eps, k):
    """The book's formula log(ε/D_0)/log k, unrounded (it calls it a lower bound T_min)."""
    D0t, epst, kt = (torch.as_tensor(x, dtype=torch.float64) for x in (D0, eps, k))
    out = torch.log(epst / D0t) / torch.log(kt)
    return float(out) if out.ndim == 0 else out


def kl_increments(beliefs: torch.Tensor) -> torch.Tensor:
    """Δ_t = KL(p_t‖p_{t−1}) along a trajectory (T+1, …, K) → (T, …)."""
    check_tensor(beliefs, "beliefs", min_ndim=2)
    return kl(beliefs[1:], beliefs[:-1])


def estimate_contraction(beliefs: torch.Tensor, *, worst: bool = False) -> float:
    """Empirical KL contraction factor from successive increments: median (or, with ``worst``,
    max) of Δ_{t+1}/Δ_t over a (T+1, K) trajectory, ignoring zero increments."""
    d = kl_increments(beliefs)
    r = d[1:] / d[:-1]
    r = r[torch.isfinite(r) & (d[:-1] > 0)]
    if r.numel() == 0:
        return math.nan
    return float(r.max() if worst else r.median())


def kl_freeze(beliefs: torch.Tensor, eps: float, m: int = 1) -> int | None:
    """The step at which core ``KLFreeze(eps, m)`` stops a run that produced ``beliefs`` (T+1, …, K):
    the first t at which Δ_s = KL(p_s‖p_{s−1}) < ε has held (for every row) at m consecutive steps
    s = t−m+1..t; None if it never freezes. For a run still to be made, pass the rule to
    ``rollout``/:func:`orbit` as ``stop=KLFreeze(eps, m)`` instead."""
    rule = KLFreeze(eps, m)
    check_tensor(beliefs, "beliefs", min_ndim=2)
    rule.reset()
    for t in range(1, beliefs.shape[0]):
        if rule(beliefs[t - 1], beliefs[t], t):
            return t
    return None


def freeze_bound_book(eps, k):
    """The book's freezing bound KL(p_freeze, p*) ≤ ε/(1 − k) (ch09 Theorem 6). Not valid: KL
    violates the triangle inequality the a-posteriori Banach bound needs."""
    _check_k(k)
    return eps / (1 - k)


def freeze_error_bound(eps, c):
    """Corrected (local) freeze bound KL(p*‖p_t) ≲ c²/(1 − c)²·Δ_t ≤ c²/(1 − c)²·ε for an orbit that
    contracts with factor c in a metric d in which KL ≈ ½d² (the Fisher metric near p*):
    d(p_t, p*) ≤ c/(1 − c)·d(p_t, p_{t−1}) (a-posteriori Banach), squared."""
    _check_k(c, "c")
    return c ** 2 / (1 - c) ** 2 * eps


# --------------------------------------------------------------------------------------------
# ruggedness and the stability margin


def _path_eigs(energy, path):
    H = hessian_tangent(energy, path)
    return torch.linalg.eigvalsh(H)


def ruggedness(energy: Callable, path: torch.Tensor) -> float:
    """κ(path) = std/mean of the tangent-Hessian eigenvalues pooled over the path (the book's ch09
    Def. 1, a coefficient of variation). Scale-free: it cannot by itself predict Euler failure."""
    lam = _path_eigs(energy, path).flatten()
    return float(lam.std() / lam.mean())


def stability_margin(energy: Callable, path: torch.Tensor, eta: float) -> float:
    """max_t η·λ_max(∇²E(p_t)) on the tangent space: Euler on a quadratic diverges iff this
    exceeds 2, which (not κ) is the quantity that decides failure at a fixed η."""
    lam = _path_eigs(energy, path)
    return float(eta * lam[..., -1].max())
