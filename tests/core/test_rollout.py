"""rollout: statuses, recording, geometries, errors, batching, dtypes."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from terrainlab.core import (
    RK4,
    CycleDetect,
    DivergenceBound,
    Euler,
    EulerMaruyama,
    KLFreeze,
    Leapfrog,
    Simplex,
    StepTolerance,
    gradient_field,
    project_simplex,
    rollout,
)

bowl = gradient_field(lambda th: (th**2).sum(-1))


def test_gradient_field_is_minus_grad_and_batched():
    L = lambda th: (th[..., 0] ** 2 + 3 * th[..., 1] ** 2)  # noqa: E731
    F = gradient_field(L)
    th = torch.randn(5, 7, 2, dtype=torch.float64)
    expected = -torch.stack([2 * th[..., 0], 6 * th[..., 1]], -1)
    assert torch.allclose(F(th, 0.0), expected)


def test_converged_and_counts():
    tr = rollout(bowl, torch.ones(3, 2), eta=0.1, steps=1000, stop=StepTolerance(1e-7))
    assert tr.status == "converged"
    assert tr.n_steps < 1000 and tr.n_evals == tr.n_steps
    assert tr.states.shape == (tr.n_steps + 1, 3, 2)
    assert torch.equal(tr.steps, torch.arange(tr.n_steps + 1))
    tr4 = rollout(bowl, torch.ones(3, 2), eta=0.1, steps=10, scheme=RK4())
    assert tr4.n_evals == 40 and tr4.status == "max_steps"


def test_record_modes_bound_memory():
    s0 = torch.ones(2, 2)
    last = rollout(bowl, s0, eta=0.01, steps=1000, record="last")
    assert last.states.shape == (1, 2, 2) and last.steps.tolist() == [1000]
    every = rollout(bowl, s0, eta=0.01, steps=1000, record=100)
    assert every.steps.tolist() == list(range(0, 1001, 100))
    full = rollout(bowl, s0, eta=0.01, steps=1000)
    assert torch.allclose(full.final, last.final) and torch.allclose(every.final, last.final)
    odd = rollout(bowl, s0, eta=0.01, steps=1005, record=100)
    assert odd.steps.tolist()[-1] == 1005


def test_nan_field_gives_nonfinite_status_not_exception():
    tr = rollout(lambda x, t: x * float("nan"), torch.ones(2), eta=0.1, steps=10)
    assert tr.status == "nonfinite"
    tr = rollout(lambda x, t: x * float("nan"), torch.ones(2), eta=0.1, steps=10, stop=StepTolerance(1e-6))
    assert tr.status == "nonfinite" and tr.n_steps == 1


def test_blow_up_gives_diverged_or_nonfinite():
    grow = lambda x, t: x**3  # noqa: E731 - finite-time blow-up
    tr = rollout(grow, torch.ones(3), eta=0.5, steps=200, stop=DivergenceBound(1e6))
    assert tr.status == "diverged" and tr.n_steps < 200
    tr = rollout(grow, torch.ones(3), eta=0.5, steps=200)
    assert tr.status == "nonfinite"


def test_cycle_detected_on_period_two():
    # GD on L = 2θ² at η = 0.5 flips the sign each step: a period-2 orbit
    F = gradient_field(lambda th: 2 * (th**2).sum(-1))
    tr = rollout(F, torch.tensor([1.0]), eta=0.5, steps=100, stop=CycleDetect(max_period=4, tol=1e-12))
    assert tr.status == "cycle" and tr.n_steps == 2


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(eta=0.0, steps=3), "eta"),
        (dict(eta=-1.0, steps=3), "eta"),
        (dict(eta=float("nan"), steps=3), "eta"),
        (dict(eta=0.1, steps=-1), "steps"),
        (dict(eta=0.1, steps=3, record="sometimes"), "record"),
        (dict(eta=0.1, steps=3, scheme="euler"), "scheme"),
        (dict(eta=0.1, steps=3, stop="tol"), "stop"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        rollout(bowl, torch.ones(2), **kwargs)


def test_shape_mismatch_and_bad_start():
    with pytest.raises(ValueError, match="field"):
        rollout(lambda x, t: x[:1], torch.ones(3), eta=0.1, steps=2)
    with pytest.raises(ValueError, match="s0"):
        rollout(bowl, torch.tensor([0.5, 0.6, 0.2]), eta=0.1, steps=2, geometry=Simplex())
    with pytest.raises(ValueError, match="s0"):
        rollout(bowl, torch.tensor([1.2, -0.2]), eta=0.1, steps=2, geometry=Simplex())
    with pytest.raises(ValueError, match="s0"):
        rollout(bowl, torch.ones(2), eta=0.1, steps=2, scheme=Leapfrog())
    with pytest.raises(ValueError, match="projection"):
        Simplex("sphere")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_preserved(dtype):
    tr = rollout(bowl, torch.ones(4, 2, dtype=dtype), eta=0.1, steps=5, scheme=RK4())
    assert tr.final.dtype == dtype


def test_euler_maruyama_reproducible_and_variance():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    s0 = torch.zeros(20000, 1, dtype=torch.float64)
    a = rollout(lambda x, t: -x, s0, eta=0.01, steps=300, scheme=EulerMaruyama(1.0, g1), record="last")
    b = rollout(lambda x, t: -x, s0, eta=0.01, steps=300, scheme=EulerMaruyama(1.0, g2), record="last")
    assert torch.equal(a.final, b.final)
    # Ornstein–Uhlenbeck dX = -X dt + dW: Var X_t = (1 - e^{-2t})/2 (t = 3 → 0.4988); EM error O(η)
    var = float(a.final.var())
    assert var == pytest.approx(0.5 * (1 - torch.exp(torch.tensor(-6.0)).item()), rel=0.04)


simplex_rows = st.integers(2, 8).flatmap(
    lambda K: st.lists(st.lists(st.floats(-5, 5), min_size=K, max_size=K), min_size=1, max_size=6)
)


@settings(max_examples=60, deadline=None)
@given(rows=simplex_rows, proj=st.sampled_from(["euclid", "mirror", "logit"]), eta=st.floats(1e-3, 2.0))
def test_simplex_geometry_keeps_states_on_simplex(rows, proj, eta):
    v = torch.tensor(rows, dtype=torch.float64)
    p0 = project_simplex(v)
    target = torch.softmax(v.flip(-1), -1)

    def F(p, t):  # pulls toward target; explodes near the boundary like −∇KL does
        return target / p.clamp(min=1e-12) - 1.0

    tr = rollout(F, p0.clamp(min=0) / p0.clamp(min=0).sum(-1, keepdim=True), eta=eta, steps=5, geometry=Simplex(proj))
    P = tr.states
    assert bool((P >= 0).all())
    assert torch.allclose(P.sum(-1), torch.ones_like(P.sum(-1)), atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(rows=simplex_rows)
def test_projection_is_idempotent_and_optimal(rows):
    v = torch.tensor(rows, dtype=torch.float64)
    p = project_simplex(v)
    assert torch.allclose(project_simplex(p), p, atol=1e-12)
    # optimality: no random simplex point is closer to v
    q = torch.distributions.Dirichlet(torch.ones(v.shape[-1], dtype=torch.float64)).sample((50,))
    d_best = ((p - v) ** 2).sum(-1)
    d_other = ((q[:, None, :] - v[None]) ** 2).sum(-1)
    assert bool((d_other >= d_best[None] - 1e-10).all())


def test_kl_freeze_stops_after_m_quiet_steps():
    target = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    F = lambda p, t: target - p  # noqa: E731 - linear contraction toward target
    p0 = torch.tensor([1 / 3, 1 / 3, 1 / 3], dtype=torch.float64)
    tr1 = rollout(F, p0, eta=0.2, steps=500, geometry=Simplex(), stop=KLFreeze(1e-8, m=1))
    tr5 = rollout(F, p0, eta=0.2, steps=500, geometry=Simplex(), stop=KLFreeze(1e-8, m=5))
    assert tr1.status == tr5.status == "converged"
    assert tr5.n_steps == tr1.n_steps + 4


def test_scheme_on_simplex_mirror_matches_exponentiated_gradient():
    # Δ = −η p⊙∇E lands as p·exp(−η∇E)/Z with the mirror geometry
    target = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    grad_E = lambda p: -target / p  # noqa: E731  (E = KL(target‖p))
    F = lambda p, t: -p * grad_E(p)  # noqa: E731
    p = torch.full((3,), 1 / 3, dtype=torch.float64)
    tr = rollout(F, p, eta=0.3, steps=1, scheme=Euler(), geometry=Simplex("mirror"))
    eg = p * torch.exp(-0.3 * grad_E(p))
    assert torch.allclose(tr.final, eg / eg.sum())
