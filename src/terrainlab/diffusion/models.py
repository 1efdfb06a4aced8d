"""Score networks, the network → score hook, and denoising score matching.

Parametrisations of a network's output and their conversion to the score ∇log p_t(x), with
x_t = α x_0 + σ ε (Kingma et al. 2021; Salimans & Ho 2022):

    ε-prediction:  s = −ε̂/σ
    x₀-prediction: s = −(x − α x̂₀)/σ²
    v-prediction:  v = αε − σx₀  ⇒  ε̂ = (σx + αv)/(α² + σ²)
    score:         s itself

Denoising score matching (Vincent 2011; Song & Ermon 2019; Song et al. 2021):

    L(θ) = E_{t, x₀, ε} λ(t) ‖s_θ(α x₀ + σ ε, t) + ε/σ‖²,

with weightings ``"sigma2"`` λ = σ² (= the ε-MSE of Ho et al. 2020), ``"none"`` λ = 1 and
``"likelihood"`` λ = g(t)² (Song, Durkan et al. 2021, maximum-likelihood weighting).

Example (a few steps only; real training uses ~2000):
    >>> import torch
    >>> from terrainlab.diffusion import ScoreMLP, VPSchedule, as_score, train_dsm, two_moons
    >>> _ = torch.manual_seed(0)
    >>> net = ScoreMLP(dim=2)
    >>> score = as_score(net, VPSchedule())           # score(x, t) for any sampler
    >>> score(torch.randn(5, 2), torch.full((5,), 0.5)).shape
    torch.Size([5, 2])
    >>> res = train_dsm(net, two_moons(512, seed=0), VPSchedule(), steps=20, batch_size=128,
    ...                 generator=torch.Generator().manual_seed(0))
    >>> res.status, res.steps
    ('completed', 20)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..core.status import Status
from ..core.validate import (
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_number,
    check_positive,
    check_tensor,
)
from .schedules import Schedule

PREDICTIONS = ("eps", "score", "x0", "v")
WEIGHTINGS = ("sigma2", "none", "likelihood")


class TimeEmbedding(nn.Module):
    """Sinusoidal embedding of t·scale (Vaswani et al. 2017; Ho et al. 2020)."""

    def __init__(self, dim: int = 32, scale: float = 1000.0):
        super().__init__()
        if check_int(dim, "dim", minimum=2) % 2:
            raise ValueError(f"dim must be an even int >= 2, got {dim!r}")
        half = dim // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half) / half),
                             persistent=False)
        self.scale = scale

    def forward(self, t):
        a = (t * self.scale)[:, None] * self.freqs.to(t.dtype)
        return torch.cat([torch.sin(a), torch.cos(a)], dim=-1)


class ScoreMLP(nn.Module):
    """A small time-conditioned MLP: (x, t) ↦ ε̂ (or score / x₀ / v, see ``prediction``).

    x and a sinusoidal embedding of t go through ``depth`` SiLU layers of width ``hidden``; the time
    embedding is also added to every hidden layer (a cheap FiLM-free conditioning).

    Example:
        >>> net = ScoreMLP(dim=2, hidden=128, depth=3)
        >>> net(torch.randn(5, 2), torch.rand(5)).shape
        torch.Size([5, 2])
    """

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, time_dim: int = 32,
                 prediction: str = "eps"):
        super().__init__()
        check_int(dim, "dim", minimum=1)
        check_int(depth, "depth", minimum=1)
        check_choice(prediction, "prediction", PREDICTIONS)
        self.dim, self.prediction = dim, prediction
        self.embed = TimeEmbedding(time_dim)
        self.t_proj = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU())
        self.inp = nn.Linear(dim, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth - 1))
        self.t_layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth - 1))
        self.out = nn.Linear(hidden, dim)
        self.act = nn.SiLU()

    def forward(self, x, t):
        if not torch.is_tensor(t) or t.dim() == 0:
            t = torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)
        te = self.t_proj(self.embed(t.to(x.dtype)))
        h = self.act(self.inp(x) + te)
        for lin, tl in zip(self.layers, self.t_layers):
            h = self.act(lin(h) + tl(te))
        return self.out(h)


def _broadcast(v, x):
    if torch.is_tensor(v) and v.dim() > 0:
        return v.to(dtype=x.dtype, device=x.device).reshape(-1, *([1] * (x.dim() - 1)))
    return v


def eps_to_score(eps, sigma):
    """s = −ε/σ."""
    return -eps / sigma


def score_to_eps(score, sigma):
    """ε = −σ·s."""
    return -sigma * score


def x0_to_score(x0, x, alpha, sigma):
    """s = −(x − α x₀)/σ² (Tweedie: x₀ = (x + σ²s)/α)."""
    return -(x - alpha * x0) / (sigma * sigma)


def score_to_x0(score, x, alpha, sigma):
    """Tweedie's denoiser E[x₀ | x_t] = (x + σ²·s)/α (Efron 2011)."""
    return (x + sigma * sigma * score) / alpha


def v_to_score(v, x, alpha, sigma):
    """v = αε − σx₀  ⇒  ε = (σx + αv)/(α² + σ²), s = −ε/σ."""
    return -(sigma * x + alpha * v) / ((alpha * alpha + sigma * sigma) * sigma)


class NetworkScore:
    """Turns an ε / score / x₀ / v-predicting network into ``score(x, t)`` for the samplers.

    Args:
        net: callable ``net(x, time_input)``; e.g. :class:`ScoreMLP`, or a diffusers ``UNet2DModel``
            (its output object's ``.sample`` is taken automatically).
        schedule: the schedule the network was trained with (α, σ come from it).
        prediction: ``"eps" | "score" | "x0" | "v"``; default: ``net.prediction`` if present, else eps.
        time_input: how the sampler's continuous t ∈ [0, 1] is shown to the network —
            ``"continuous"`` (t itself), ``"discrete"`` (t·T − 1, the DDPM index whose ᾱ_i matches
            ᾱ(t); for networks trained on timesteps 0..T−1) or any callable t ↦ tensor/number.

    Calls are counted in ``n_evals`` (batch evaluations). Nothing is moved or put in eval mode.
    """

    def __init__(self, net, schedule: Schedule, prediction: str | None = None,
                 time_input="continuous"):
        check_callable(net, "net")  # net(x, t)
        check_instance(schedule, "schedule", Schedule, "a VPSchedule or VESchedule")
        prediction = getattr(net, "prediction", "eps") if prediction is None else prediction
        check_choice(prediction, "prediction", PREDICTIONS)
        if not (callable(time_input) or time_input in ("continuous", "discrete")):
            raise ValueError(f"time_input must be 'continuous', 'discrete' or a callable, got {time_input!r}")
        self.net, self.schedule, self.prediction, self.time_input = net, schedule, prediction, time_input
        self.n_evals = 0

    def _time(self, t, x):
        if callable(self.time_input):
            return self.time_input(t)
        tt = t if torch.is_tensor(t) else torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)
        if self.time_input == "discrete":
            tt = tt * self.schedule.T - 1
        return tt

    def raw(self, x, t):
        """The network's output (ε̂, ŝ, x̂₀ or v̂) at (x, t)."""
        out = self.net(x, self._time(t, x))
        if hasattr(out, "sample") and not torch.is_tensor(out):
            out = out.sample
        elif isinstance(out, (tuple, list)):
            out = out[0]
        return out

    def __call__(self, x, t):
        self.n_evals += 1
        out = self.raw(x, t)
        a = _broadcast(self.schedule.alpha(t), x)
        s = _broadcast(self.schedule.sigma(t), x)
        if self.prediction == "eps":
            return eps_to_score(out, s)
        if self.prediction == "x0":
            return x0_to_score(out, x, a, s)
        if self.prediction == "v":
            return v_to_score(out, x, a, s)
        return out


def as_score(net, schedule: Schedule, prediction: str | None = None, time_input="continuous") -> NetworkScore:
    """``score(x, t)`` from any ε / score / x₀ / v network (see :class:`NetworkScore`).

    Example (a diffusers UNet trained on DDPM timesteps; diffusers is not imported here):
        >>> score = as_score(unet, VPSchedule(), prediction="eps", time_input="discrete")  # doctest: +SKIP
    """
    return NetworkScore(net, schedule, prediction, time_input)


def dsm_loss(score, x0, schedule: Schedule, weighting: str = "sigma2", t_eps: float = 1e-3,
             generator=None):
    """Denoising score-matching loss (see module docstring), t ~ U[t_eps, t_max].

    ``score`` is a ``score(x, t)`` callable with tensor t, e.g. ``as_score(net, schedule)``.
    Returns a 0-d tensor (mean over the batch of the weighted squared error summed over dims).
    For ``weighting="sigma2"`` and an ε-network this is exactly ‖ε̂ − ε‖².
    """
    check_choice(weighting, "weighting", WEIGHTINGS)
    check_tensor(x0, "x0")
    check_number(t_eps, "t_eps", minimum=0, maximum=schedule.t_max, strict_min=True, strict_max=True)
    n = x0.shape[0]
    gdev = generator.device if generator is not None else x0.device
    t = (torch.rand(n, generator=generator, dtype=x0.dtype, device=gdev).to(x0.device)
         * (schedule.t_max - t_eps) + t_eps)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=gdev).to(x0.device)
    a, s = _broadcast(schedule.alpha(t), x0), _broadcast(schedule.sigma(t), x0)
    xt = a * x0 + s * eps
    if isinstance(score, NetworkScore) and score.prediction == "eps":
        eps_hat = score.raw(xt, t)                     # σ²‖s + ε/σ‖² = ‖ε̂ − ε‖² exactly
    else:
        eps_hat = score_to_eps(score(xt, t), s)
    err = ((eps_hat - eps) ** 2).flatten(1).sum(1)     # = σ²‖s − ∇log q(x_t|x_0)‖²
    s2 = s.flatten() ** 2
    lam_over_s2 = {"sigma2": 1.0, "none": 1.0 / s2, "likelihood": schedule.g2(t) / s2}[weighting]
    return (lam_over_s2 * err).mean()


@dataclass(frozen=True)
class TrainResult:
    """losses: per-step DSM loss (float64 tensor); status ``completed`` (every step ran) or
    ``nonfinite`` (a NaN/inf loss stopped training), a :class:`~terrainlab.core.Status`."""

    losses: torch.Tensor
    final_loss: float
    steps: int
    seconds: float
    status: Status


def train_dsm(net: nn.Module, data, schedule: Schedule, *, steps: int = 2000, batch_size: int = 512,
              lr: float = 2e-3, weighting: str = "sigma2", prediction: str | None = None,
              t_eps: float = 1e-3, generator=None, time_input="continuous") -> TrainResult:
    """Train ``net`` by denoising score matching with Adam (cosine-decayed lr) on ``data`` (N, d).

    Runs on data's device/dtype; the net must already live there. A NaN loss stops training with
    status ``nonfinite`` (no exception).

    Example (100 steps on a small net, well under a second; ~1500 steps and the default
    ``ScoreMLP(2)`` give a usable two-moons score, ~10 s on one CPU core):
        >>> import torch
        >>> from sklearn.datasets import make_moons
        >>> from terrainlab.diffusion import ScoreMLP, VPSchedule, train_dsm
        >>> data = torch.tensor(make_moons(1000, noise=0.05, random_state=0)[0], dtype=torch.float32)
        >>> _ = torch.manual_seed(0)
        >>> net = ScoreMLP(2, hidden=32, depth=2)
        >>> res = train_dsm(net, data, VPSchedule(), steps=100, batch_size=128,
        ...                 generator=torch.Generator().manual_seed(0))
        >>> res.status, res.steps, bool(res.losses[-20:].mean() < res.losses[:20].mean())
        ('completed', 100, True)
    """
    if not torch.is_tensor(data) or data.dim() < 2 or not torch.is_floating_point(data):
        raise ValueError("data must be a floating-point tensor of shape (N, d, ...)")
    check_int(steps, "steps", minimum=1)
    check_int(batch_size, "batch_size", minimum=1)
    check_positive(lr, "lr")
    score = as_score(net, schedule, prediction, time_input)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    losses = torch.empty(steps, dtype=torch.float64)
    gdev = generator.device if generator is not None else data.device
    start, status, k = time.perf_counter(), Status.COMPLETED, 0
    for k in range(steps):
        idx = torch.randint(0, data.shape[0], (batch_size,), generator=generator, device=gdev).to(data.device)
        loss = dsm_loss(score, data[idx], schedule, weighting, t_eps, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses[k] = loss.detach().double().cpu()
        if not math.isfinite(float(losses[k])):
            status = Status.NONFINITE
            break
    losses = losses[: k + 1]
    tail = losses[-max(1, len(losses) // 10):]
    return TrainResult(losses, float(tail.mean()), k + 1, time.perf_counter() - start, status)
