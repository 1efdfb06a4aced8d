"""Chapter 6 under issue 17 §2: the new experiments (lasalle_overstatement, deq_backward_cost,
lossless_identity_path) and the controls added to euler_fixed_points, lyapunov_loss, phase_portrait,
resnet_is_euler and stiff_field — every decide function once per branch, every experiment once (quick)
with its verdict and its control's outcome asserted."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch06.deq_backward_cost import (
    Layer,
    decide_deq_backward,
    measure_seed,
    saved_bytes,
)
from terrainlab.atlas.chapters.ch06.euler_fixed_points import decide_spurious
from terrainlab.atlas.chapters.ch06.lasalle_overstatement import (
    decide_lasalle,
    run_system,
    tail_spread,
)
from terrainlab.atlas.chapters.ch06.lossless_identity_path import (
    Stack,
    analyse,
    decide_identity_path,
    train,
)
from terrainlab.atlas.chapters.ch06.lyapunov_loss import decide_lyapunov_loss
from terrainlab.atlas.chapters.ch06.phase_portrait import decide_phase_portrait
from terrainlab.atlas.chapters.ch06.resnet_is_euler import decide_resnet
from terrainlab.atlas.chapters.ch06.stiff_field import decide_stiff

NAN = float("nan")


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    errors = discover()
    bad = {k: v for k, v in errors.items() if ".ch06." in k}
    assert not bad, bad
    return tmp_path_factory.mktemp("ch06")


def _check(res, figs, out, verdict, kind):
    assert res.verdict == verdict, (res.verdict, res.numbers)
    assert res.threshold and res.explanation
    assert (res.corrected is not None) == (verdict in ("fails", "holds-with-correction"))
    json.dumps(res.numbers)
    assert res.numbers["claim_kind"] == kind
    assert any("control" in k for k in res.numbers)
    assert figs and all((out / f).exists() for f in figs)
    assert any(f.endswith(".png") for f in figs) and any(f.endswith(".svg") for f in figs)


# ---------------------------------------------------------------- ch06.lasalle_overstatement

def test_decide_lasalle_branches():
    assert decide_lasalle([0.0, 0.0], [0.66, 2.0], 0.0, 1e-12) == "fails"  # monotone V, no convergence
    assert decide_lasalle([0.0], [1e-6], 0.0, 1e-12) == "holds"  # the "counterexample" converged
    assert decide_lasalle([1e-3], [0.66], 0.0, 1e-12) == "holds"  # V rose: not a counterexample
    assert decide_lasalle([1e-3, 0.0], [0.66, 2.0], 0.0, 1e-12) == "fails"  # one valid counterexample is enough
    assert decide_lasalle([0.0], [0.66], 0.0, 0.1) == "inconclusive"  # the control did not converge
    assert decide_lasalle([0.0], [0.66], 1e-3, 1e-12) == "inconclusive"  # the control's V rose
    assert decide_lasalle([0.0], [NAN], 0.0, 1e-12) == "inconclusive"
    assert decide_lasalle([0.0], [0.66], 0.0, NAN) == "inconclusive"


def test_decide_lasalle_rejects_bad_input():
    with pytest.raises(ValueError, match="counter_violations"):
        decide_lasalle([], [], 0.0, 0.0)
    with pytest.raises(ValueError, match="counter_spreads"):
        decide_lasalle([0.0], [-1.0], 0.0, 0.0)
    with pytest.raises(ValueError, match="spread_tol"):
        decide_lasalle([0.0], [1.0], 0.0, 0.0, spread_tol=-1)
    with pytest.raises(ValueError, match="control_spread"):
        decide_lasalle([0.0], [1.0], 0.0, "x")


def test_tail_spread():
    ts = np.linspace(0, 10, 101)
    xs = np.stack([ts, np.zeros_like(ts)], -1)[:, None, :]  # x = t: spread over [5, 10] is 5
    assert tail_spread(ts, xs, 10.0) == pytest.approx([5.0])
    with pytest.raises(ValueError, match="T"):
        tail_spread(ts, xs, 0.0)
    with pytest.raises(ValueError, match="name"):
        run_system("nope", None, 1.0)
    with pytest.raises(ValueError, match="t_max"):
        run_system("valley", None, -1.0)


def test_lasalle_overstatement_quick(out):
    res, figs = run_one("ch06.lasalle_overstatement", out, quick=True)
    _check(res, figs, out, "fails", "theorem-check")
    n = res.numbers
    assert n["valley_V_max_relative_increase"] <= 1e-9 and n["cycle_V_max_relative_increase"] <= 1e-9
    assert n["valley_tail_spread_min"] > 0.1 and n["cycle_tail_spread_min"] > 1.9  # no convergence
    assert n["valley_closed_form_max_abs_error"] < 1e-6  # x(t) = log(e^{x0} + t)
    assert abs(n["cycle_radius_final_min_max"][0] - 1) < 1e-6  # LaSalle: onto the invariant circle
    assert n["control_verdict"] == "converges" and n["control_tail_spread_max"] < 1e-3
    assert n["control_distance_to_equilibrium_final_max"] < 1e-3
    assert not math.isnan(n["control_V_max_relative_increase"])


# ---------------------------------------------------------------- ch06.deq_backward_cost

def test_decide_deq_backward_branches():
    ok = dict(unrolled_growth=14.0, control_cos_mean=0.966, control_cos_se=0.001)
    assert decide_deq_backward(1.0, 1.15, cos_mean=1.0, cos_se=0.0, vjps=33.0, **ok) == "holds-with-correction"
    assert decide_deq_backward(1.0, 1.15, cos_mean=1.0, cos_se=0.0, vjps=1.0, **ok) == "holds"  # one VJP
    assert decide_deq_backward(3.0, 1.15, cos_mean=1.0, cos_se=0.0, vjps=33.0, **ok) == "fails"  # memory grows
    assert decide_deq_backward(1.0, 5.0, cos_mean=1.0, cos_se=0.0, vjps=33.0, **ok) == "fails"  # > 2 layers
    assert decide_deq_backward(1.0, 1.15, cos_mean=0.9, cos_se=0.001, vjps=33.0, **ok) == "fails"  # wrong gradient
    assert decide_deq_backward(1.0, 1.15, cos_mean=0.999, cos_se=0.01, vjps=33.0, **ok) == "inconclusive"
    # controls: a non-converged forward that still gives the right gradient, or an unrolled memory that
    # does not grow — the measurement cannot separate the cases
    assert decide_deq_backward(1.0, 1.15, 14.0, 1.0, 0.0, 33.0, 0.9999, 0.0) == "inconclusive"
    assert decide_deq_backward(1.0, 1.15, 1.0, 1.0, 0.0, 33.0, 0.966, 0.001) == "inconclusive"
    assert decide_deq_backward(NAN, 1.15, cos_mean=1.0, cos_se=0.0, vjps=33.0, **ok) == "inconclusive"
    with pytest.raises(ValueError, match="vjps"):
        decide_deq_backward(1.0, 1.15, cos_mean=1.0, cos_se=0.0, vjps=None, **ok)


def test_saved_bytes_and_layer_validation():
    import torch

    w = torch.ones(3, requires_grad=True)
    _, n = saved_bytes(lambda: (w * w).sum())
    assert n == 3 * 4  # w saved once (twice as an operand, one storage)
    with pytest.raises(ValueError, match="generator"):
        Layer(0)
    with pytest.raises(ValueError, match="rho"):
        Layer(torch.Generator().manual_seed(0), rho=-1.0)
    with pytest.raises(ValueError, match="fn"):
        saved_bytes(3)
    with pytest.raises(ValueError, match="ks"):
        measure_seed(0, [], torch.zeros(2, 64), torch.zeros(2, dtype=torch.long))


def test_deq_backward_cost_quick(out):
    res, figs = run_one("ch06.deq_backward_cost", out, quick=True)
    _check(res, figs, out, "holds-with-correction", "empirical")
    n = res.numbers
    assert len(n["seeds"]) >= 3
    assert n["implicit_memory_growth_over_K"] == pytest.approx(1.0) and n["implicit_memory_layers"] < 2  # O(1)
    assert n["control_unrolled_memory_growth_over_K"] > 5  # the unrolled backward's memory grows with K
    assert n["implicit_cos_at_convergence"] - 2 * n["implicit_cos_at_convergence_se"] > 0.999999
    assert n["unrolled_cos_at_convergence"] > 0.999999  # two independent backwards agree at z*
    assert n["implicit_backward_vjps"] > 5  # not one layer's compute
    assert n["control_implicit_cos"] + 2 * n["control_implicit_cos_se"] < 0.999  # the control: wrong gradient
    assert n["control_verdict"] == "wrong gradient"


# ---------------------------------------------------------------- ch06.lossless_identity_path

def test_decide_identity_path_branches():
    ctrl = (-14.7, 0.1)  # the plain stack loses directions
    assert decide_identity_path(-0.58, 0.05, 43.0, 1.6, *ctrl) == "holds-with-correction"
    assert decide_identity_path(-0.01, 0.01, 0.02, 0.01, *ctrl) == "holds"  # J ≈ I: lossless
    assert decide_identity_path(-5.0, 0.1, 43.0, 1.6, *ctrl) == "fails"  # residual loses directions too
    assert decide_identity_path(-2.0, 0.3, 43.0, 1.6, *ctrl) == "inconclusive"  # σ_min threshold within 2 SE
    assert decide_identity_path(-0.58, 0.05, 0.1, 0.05, *ctrl) == "inconclusive"  # ‖J − I‖ threshold within 2 SE
    assert decide_identity_path(-0.58, 0.05, 43.0, 1.6, -0.5, 0.1) == "inconclusive"  # control keeps directions
    assert decide_identity_path(-0.58, 0.05, 43.0, 1.6, NAN, 0.1) == "inconclusive"
    with pytest.raises(ValueError, match="smin_tol"):
        decide_identity_path(-0.58, 0.05, 43.0, 1.6, *ctrl, smin_tol=0)


def test_stack_validation():
    import torch

    with pytest.raises(ValueError, match="generator"):
        Stack(True, 0)
    with pytest.raises(ValueError, match="depth"):
        Stack(True, torch.Generator(), depth=0)
    with pytest.raises(ValueError, match="model"):
        analyse(None, torch.zeros(2, 64), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="steps"):
        train(Stack(True, torch.Generator()), torch.zeros(2, 64), torch.zeros(2, dtype=torch.long), 0)


def test_lossless_identity_path_quick(out):
    res, figs = run_one("ch06.lossless_identity_path", out, quick=True)
    _check(res, figs, out, "holds-with-correction", "empirical")
    n = res.numbers
    assert len(n["seeds"]) >= 3
    assert n["log10_sigma_min"] - 2 * n["log10_sigma_min_se"] > -2  # no direction vanishes
    assert n["distance_from_identity"] - 2 * n["distance_from_identity_se"] > 0.1  # but J is far from I
    assert n["control_log10_sigma_min"] + 2 * n["control_log10_sigma_min_se"] < -2  # the plain stack loses some
    assert n["control_init_gradient_gain"] < 1e-2  # and its gradient vanishes at initialisation
    assert n["control_verdict"] == "loses directions"


# ---------------------------------------------------------------- ch06.euler_fixed_points (control: Heun)

def test_decide_spurious_with_control():
    heun = dict(control_max_dist=2.8, control_counts=[3, 5, 9])
    assert decide_spurious(1e-11, [3, 3, 3], 3, **heun) == "fails"  # Euler: fixed points = critical points
    assert decide_spurious(0.5, [3, 4], 3, **heun) == "holds"
    assert decide_spurious(1e-11, [3, 3], 3, control_max_dist=1e-11, control_counts=[3, 3]) == "inconclusive"
    assert decide_spurious(NAN, [3, 3], 3, **heun) == "inconclusive"
    with pytest.raises(ValueError, match="control_counts"):
        decide_spurious(1e-11, [3], 3, control_max_dist=2.8)
    with pytest.raises(ValueError, match="n_critical"):
        decide_spurious(1e-11, [3], -1)


def test_euler_fixed_points_quick_control(out):
    res, figs = run_one("ch06.euler_fixed_points", out, quick=True)
    _check(res, figs, out, "fails", "theorem-check")
    n = res.numbers
    assert n["euler_max_distance_fixed_to_critical"] < 1e-8
    assert n["control_verdict"] == "spurious fixed points" and n["control_max_distance_fixed_to_critical"] > 0.1


# ---------------------------------------------------------------- ch06.lyapunov_loss (control: heavy-ball flow)

def test_decide_lyapunov_loss_with_control():
    assert decide_lyapunov_loss(0.0, 0.0, 0.3, control_frac=0.49) == "holds-with-correction"
    assert decide_lyapunov_loss(0.0, 0.0, 0.0, control_frac=0.49) == "holds"
    assert decide_lyapunov_loss(0.1, 0.0, 0.3, control_frac=0.49) == "fails"
    assert decide_lyapunov_loss(0.0, 0.05, 0.3, control_frac=0.49) == "fails"
    assert decide_lyapunov_loss(0.0, 0.0, 0.3, control_frac=0.0) == "inconclusive"  # the check saw no rise
    assert decide_lyapunov_loss(0.0, 0.0, 0.3, control_frac=NAN) == "inconclusive"
    with pytest.raises(ValueError, match="fractions"):
        decide_lyapunov_loss(0.0, 0.0, "x")


def test_lyapunov_loss_quick_control(out):
    res, figs = run_one("ch06.lyapunov_loss", out, quick=True)
    _check(res, figs, out, "holds-with-correction", "theorem-check")
    n = res.numbers
    assert n["flow_violating_fraction"] == 0.0 and n["max_fraction_below_2"] == 0.0
    assert n["control_heavy_ball_violating_fraction_min"] > 0.3  # L rises along the momentum flow
    assert n["control_heavy_ball_energy_violating_fraction_max"] == 0.0  # its energy does not
    assert n["control_verdict"] == "L rises along the heavy-ball flow"


# ---------------------------------------------------------------- ch06.phase_portrait (control: tilted single well)

def test_decide_phase_portrait_with_control():
    one = dict(control_n_attractors=1, control_n_saddles=0, control_basin_fractions=[1.0])
    two = dict(control_n_attractors=2, control_n_saddles=1, control_basin_fractions=[0.5, 0.5])
    assert decide_phase_portrait(2, 1, [0.5, 0.5], 0.0, **one) == "holds"
    assert decide_phase_portrait(1, 0, [1.0], 0.0, **one) == "fails"
    assert decide_phase_portrait(2, 1, [0.5, 0.5], 0.2, **one) == "fails"  # boundary is not the stable manifold
    assert decide_phase_portrait(2, 1, [0.5, 0.5], 0.0, **two) == "inconclusive"  # control not told apart
    assert decide_phase_portrait(2, 1, [0.5, 0.5], math.nan, **one) == "inconclusive"
    with pytest.raises(ValueError, match="control_n_saddles"):
        decide_phase_portrait(2, 1, [0.5, 0.5], 0.0, control_n_attractors=1)


def test_phase_portrait_quick_control(out):
    res, figs = run_one("ch06.phase_portrait", out, quick=True)
    _check(res, figs, out, "holds", "theorem-check")
    n = res.numbers
    assert sorted(n["flow_classes"]) == ["attractor", "attractor", "saddle"]
    assert n["control_n_attractors"] == 1 and n["control_n_saddles"] == 0
    assert n["control_basin_fractions"] == [1.0] and n["control_verdict"] == "one basin (no saddle)"


# ---------------------------------------------------------------- ch06.stiff_field (control: a growing mode)

def test_decide_stiff_with_control():
    grow = dict(control_implicit_max_growth=1e11)
    assert decide_stiff(0.04, 0.0401, 0.5, False, **grow) == "holds"
    assert decide_stiff(0.04, 0.0401, 0.5, True, **grow) == "holds-with-correction"
    assert decide_stiff(0.04, 0.0401, 1.5, True, **grow) == "fails"
    assert decide_stiff(0.04, 0.06, 0.5, True, **grow) == "inconclusive"  # threshold off the prediction
    assert decide_stiff(0.04, 0.0401, 0.5, True, control_implicit_max_growth=0.9) == "inconclusive"
    assert decide_stiff(0.04, 0.0401, 0.5, True, control_implicit_max_growth=NAN) == "inconclusive"


def test_stiff_field_quick_control(out):
    res, figs = run_one("ch06.stiff_field", out, quick=True)
    _check(res, figs, out, "holds-with-correction", "theorem-check")
    n = res.numbers
    assert n["implicit_max_growth_over_grid"] < 1.0 and n["relative_mismatch"] < 0.05
    assert n["control_jacobian_eig_real_max"] > 0 and n["control_implicit_max_growth"] > 1.0
    assert n["control_verdict"] == "implicit layers grow"


# ---------------------------------------------------------------- ch06.resnet_is_euler (control: small steps)

def test_decide_resnet_with_control():
    se = dict(se_dist_eta1=0.02, se_acc_eta1=0.6, se_dist_small=0.003, se_acc_small=0.2)
    assert decide_resnet(0.24, 3.8, 0.08, 0.3, **se) == "holds-with-correction"
    assert decide_resnet(0.05, 0.5, 0.08, 0.3, **se) == "holds"  # the standard ResNet is a flow too
    assert decide_resnet(0.24, 3.8, 0.08, 0.3, exact_gap=1e-3, **se) == "fails"  # not the hand-written ResNet
    assert decide_resnet(0.24, 3.8, 0.3, 0.3, **se) == "inconclusive"  # the control is not found faithful
    assert decide_resnet(0.1, 0.5, 0.08, 0.3, **se) == "inconclusive"  # 0.1 ± 2 SE straddles the threshold
    assert decide_resnet(NAN, 3.8, 0.08, 0.3, **se) == "inconclusive"
    with pytest.raises(ValueError, match="numbers"):
        decide_resnet(0.24, 3.8, 0.08, None)


def test_resnet_is_euler_quick_control(out):
    res, figs = run_one("ch06.resnet_is_euler", out, quick=True)
    _check(res, figs, out, "holds-with-correction", "empirical")
    n = res.numbers
    assert len(n["seeds"]) >= 3 and n["euler_stack_vs_handwritten_resnet_max_abs_gap"] == 0.0
    assert n["eta1_flow_limit_rel_distance"] - 2 * n["eta1_flow_limit_rel_distance_se"] > 0.1  # not a flow
    assert n["control_flow_limit_rel_distance"] + 2 * n["control_flow_limit_rel_distance_se"] < 0.1
    assert n["control_verdict"] == "faithful"
