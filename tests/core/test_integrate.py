"""core.integrate with Dopri5 / Bosh3 and the step-size controllers: measured orders, error ∝ tol,
NFE accounting, both directions, and every way a solve can end (a status, never an exception)."""

import math

import numpy as np
import pytest
import torch

from terrainlab.core import (
    RK4,
    Bosh3,
    ConstantStepSize,
    Dopri5,
    Euler,
    PIController,
    Solution,
    integrate,
    rollout,
)

PAIRS = [(Dopri5(), 5), (Bosh3(), 3)]


def rotation(y, t):  # y' = (y₂, −y₁): y(t) = (cos t, −sin t) from (1, 0)
    return torch.stack([y[..., 1], -y[..., 0]], -1)


def exact_rotation(t):
    return torch.tensor([math.cos(t), -math.sin(t)], dtype=torch.float64)


Y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)


@pytest.mark.parametrize("scheme,order", PAIRS)
def test_fixed_step_convergence_order_through_rollout(scheme, order):
    ns = np.array([4, 8, 16, 32])
    errs = []
    for n in ns:
        tr = rollout(rotation, Y0, eta=2.0 / n, steps=int(n), scheme=scheme, record="last")
        errs.append(float((tr.final - exact_rotation(2.0)).abs().max()))
    slope = np.polyfit(np.log(2.0 / ns), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.25, (errs, slope)


@pytest.mark.parametrize("scheme,order", PAIRS)
def test_stability_function_matches_exp_to_the_order(scheme, order):
    z = np.array([-0.05, -0.1])
    R = np.asarray(scheme.R(z.astype(complex)))
    ratio = np.abs(R[1] - np.exp(z[1])) / np.abs(R[0] - np.exp(z[0]))
    assert abs(math.log2(ratio) - (order + 1)) < 0.3
    # one fixed step on x' = λx multiplies by R(ηλ)
    lam, eta = -1.7, 0.3
    x1 = scheme.step(lambda x, t: lam * x, torch.ones(1, dtype=torch.float64), 0.0, eta).state
    assert abs(float(x1) - R_real(scheme, lam * eta)) < 1e-14


def R_real(scheme, z):
    return float(np.real(scheme.R(complex(z))))


def test_real_stability_intervals():
    assert Dopri5().stability_limit(1.0) == pytest.approx(3.3066, abs=2e-3)
    assert Bosh3().stability_limit(1.0) == pytest.approx(2.5127, abs=2e-3)


@pytest.mark.parametrize("scheme,per_step", [(Dopri5(), 6), (Bosh3(), 3)])
def test_adaptive_error_is_proportional_to_tolerance(scheme, per_step):
    tols = [1e-4, 1e-6, 1e-8]
    errs, nfe = [], []
    for tol in tols:
        sol = integrate(rotation, Y0, 0.0, 5.0, scheme=scheme, controller=PIController(rtol=tol, atol=tol))
        assert sol.status == "completed" and sol.ts == (5.0,)
        assert sol.n_steps == sol.n_accepted + sol.n_rejected
        # FSAL: one evaluation at t0, one for the first-step estimate, then s − 1 per trial step
        assert sol.n_evals == 2 + per_step * sol.n_steps
        errs.append(float((sol.y1 - exact_rotation(5.0)).abs().max()))
        nfe.append(sol.n_evals)
    slope = np.polyfit(np.log(tols), np.log(errs), 1)[0]
    assert 0.85 < slope < 1.15, (errs, slope)  # global error ∝ tol
    assert max(e / t for e, t in zip(errs, tols)) < 50
    assert nfe[0] < nfe[1] < nfe[2]


def test_backward_in_time_and_record_all():
    sol = integrate(rotation, exact_rotation(3.0), 3.0, 0.0, controller=PIController(1e-10, 1e-12), record="all")
    assert sol.status == "completed"
    assert torch.allclose(sol.y1, Y0, atol=1e-9)
    assert sol.ts[0] == 3.0 and sol.ts[-1] == 0.0 and all(a > b for a, b in zip(sol.ts, sol.ts[1:]))
    assert sol.ys.shape == (len(sol.ts), 2) and sol.n_accepted == len(sol.ts) - 1
    for t, y in zip(sol.ts, sol.ys):
        assert torch.allclose(y, exact_rotation(t), atol=1e-8)


def test_fixed_grid_is_a_rollout_in_both_directions():
    F = lambda y, t: -y + torch.sin(torch.as_tensor(t, dtype=torch.float64))  # noqa: E731
    y0 = torch.ones(3, dtype=torch.float64)
    fwd = integrate(F, y0, 0.0, 1.0, scheme=RK4(), controller=ConstantStepSize(0.3))
    tr = rollout(F, y0, eta=0.25, steps=4, scheme=RK4(), record="last")  # ⌈1/0.3⌉ = 4 steps of 0.25
    assert torch.equal(fwd.y1, tr.final) and fwd.n_steps == 4 and fwd.n_evals == 16
    assert fwd.status == "completed" and fwd.ts == (1.0,)
    # backwards: the same numbers as hand-written steps of size −0.25
    back = integrate(F, fwd.y1, 1.0, 0.0, scheme=RK4(), controller=ConstantStepSize(0.3), record="all")
    y = fwd.y1
    for k in range(4):
        y = RK4().step(F, y, 1.0 - 0.25 * k, -0.25).state
    assert torch.equal(back.y1, y)
    assert back.ts == (1.0, 0.75, 0.5, 0.25, 0.0)
    assert (back.y1 - y0).abs().max() < 1e-4


# ---- how a solve ends -----------------------------------------------------------------------------


def test_nonfinite_times_raise_naming_the_argument():
    y0 = torch.ones(2)
    with pytest.raises(ValueError, match="t0"):
        integrate(lambda y, t: -y, y0, float("nan"), 1.0)
    with pytest.raises(ValueError, match="t1"):
        integrate(lambda y, t: -y, y0, 0.0, float("inf"), max_steps=50)
    with pytest.raises(ValueError, match="t1"):
        integrate(lambda y, t: -y, y0, 0.0, float("-inf"), controller=ConstantStepSize(0.1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exponential_blow_up_is_diverged_not_stalled(dtype):
    # y' = 50y used to end "step_too_small" at 8.6e35 in float32: it left the float range
    sol = integrate(lambda y, t: 50 * y, torch.ones(3, dtype=dtype), 0.0, 10.0)
    bound = math.sqrt(torch.finfo(dtype).max)
    assert sol.status == "diverged"
    assert bound < sol.info["max_abs"] < 1e3 * bound and torch.isfinite(sol.y1).all()
    assert sol.ts[-1] == pytest.approx(math.log(bound) / 50, rel=0.02)


def test_without_a_bound_float32_overflow_is_nonfinite():
    sol = integrate(lambda y, t: 50 * y, torch.ones(3), 0.0, 10.0, divergence_bound=math.inf)
    assert sol.status == "nonfinite" and sol.n_rejected > 0
    assert torch.isfinite(sol.y1).all()  # the last accepted state is returned


def test_float64_exponential_to_the_end_without_a_bound():
    sol = integrate(lambda y, t: 50 * y, torch.ones(1, dtype=torch.float64), 0.0, 10.0, divergence_bound=math.inf)
    assert sol.status == "completed"
    assert float(sol.y1) == pytest.approx(math.exp(500), rel=1e-3)


def test_finite_time_singularity_stalls_with_a_finite_state():
    # y' = y², y(0) = 1 blows up at t = 1; the step size underflows there with everything finite
    sol = integrate(lambda y, t: y**2, torch.ones(1, 1, dtype=torch.float64), 0.0, 2.0)
    assert sol.status == "stalled"
    assert 0.999 < sol.ts[-1] < 1.0 + 1e-4 and torch.isfinite(sol.y1).all()


def test_max_steps_counts_trial_steps():
    sol = integrate(lambda y, t: y**2, torch.ones(1, 1, dtype=torch.float64), 0.0, 2.0, max_steps=50)
    assert sol.status == "max_steps" and sol.n_steps == 50


def test_fixed_grid_that_needs_too_many_steps_stops_at_max_steps():
    sol = integrate(lambda y, t: -y, torch.ones(2), 0.0, 1.0, scheme=RK4(), controller=ConstantStepSize(1e-300),
                    max_steps=20)
    assert sol.status == "max_steps" and sol.n_steps == 20 and sol.n_evals == 80
    assert sol.ts == (20e-300,)


def test_nan_start_and_nan_field_are_nonfinite():
    y0 = torch.tensor([1.0, float("nan")])
    assert integrate(lambda y, t: -y, y0, 0.0, 1.0).status == "nonfinite"
    assert integrate(lambda y, t: -y, y0, 0.0, 1.0, scheme=Euler(), controller=ConstantStepSize(0.1)).status == "nonfinite"

    def poisoned(y, t):  # NaN for t > 0.5, whatever the step size
        return -y if t <= 0.5 else torch.full_like(y, float("nan"))

    sol = integrate(poisoned, torch.ones(2, dtype=torch.float64), 0.0, 1.0)
    assert sol.status == "nonfinite" and sol.ts[-1] <= 0.5 and torch.isfinite(sol.y1).all()


def test_zero_length_interval_and_empty_state():
    sol = integrate(lambda y, t: -y, torch.ones(2), 0.5, 0.5)
    assert sol.status == "completed" and sol.n_evals == 0 and torch.equal(sol.y1, torch.ones(2))
    assert isinstance(sol, Solution)
    empty = integrate(lambda y, t: -y, torch.empty(0, 3), 0.0, 1.0)
    assert empty.status == "completed" and empty.y1.shape == (0, 3)


def test_bad_arguments_raise_value_error_naming_them():
    F, y0 = (lambda y, t: -y), torch.ones(2)
    with pytest.raises(ValueError, match="scheme"):
        integrate(F, y0, 0.0, 1.0, scheme=RK4())  # adaptive steps need an embedded pair
    with pytest.raises(ValueError, match="controller"):
        integrate(F, y0, 0.0, 1.0, controller="pi")
    with pytest.raises(ValueError, match="max_steps"):
        integrate(F, y0, 0.0, 1.0, max_steps=0)
    with pytest.raises(ValueError, match="record"):
        integrate(F, y0, 0.0, 1.0, record="every")
    with pytest.raises(ValueError, match="y0"):
        integrate(F, torch.ones(2, dtype=torch.int64), 0.0, 1.0)
    with pytest.raises(ValueError, match="field"):
        integrate(lambda y, t: y[:1], y0, 0.0, 1.0)  # wrong shape
    with pytest.raises(ValueError, match="field"):
        integrate(lambda y, t: y.double(), y0, 0.0, 1.0)  # no silent float32 → float64 promotion
    with pytest.raises(ValueError, match="divergence_bound"):
        integrate(F, y0, 0.0, 1.0, divergence_bound=-1.0)
    with pytest.raises(ValueError, match="first_step"):
        integrate(F, y0, 0.0, 1.0, first_step=0.0)
    with pytest.raises(ValueError, match="rtol"):
        PIController(rtol=0.0)
    with pytest.raises(ValueError, match="atol"):
        PIController(atol=-1.0)
    with pytest.raises(ValueError, match="factor_max"):
        PIController(factor_max=0.5)
    with pytest.raises(ValueError, match="step_size"):
        ConstantStepSize(0.0)
