"""The foundation's atlas experiments: verdict logic both ways, and a quick run of each."""

import math

import pytest
import torch

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch03.euler_steps import decide_euler_limit
from terrainlab.atlas.chapters.ch04.learning_rate_stability import decide_critical_damping
from terrainlab.atlas.chapters.ch06.euler_fixed_points import decide_spurious, gd_lyapunov


def test_decide_euler_limit_both_ways():
    assert decide_euler_limit(0.97) == "holds"
    assert decide_euler_limit(0.02) == "fails"  # error not shrinking with η
    assert decide_euler_limit(2.0) == "inconclusive"
    assert decide_euler_limit(math.nan) == "inconclusive"


def test_decide_critical_damping_both_ways():
    assert decide_critical_damping(1.0) == "fails"  # period-2 flip at η = 2/λ
    assert decide_critical_damping(0.0) == "holds"  # what η = 1/λ does


def test_decide_spurious_both_ways():
    assert decide_spurious(1e-11, [3, 3, 3], 3) == "fails"
    assert decide_spurious(2.8, [3, 5, 9], 3) == "holds"  # Heun's map
    assert decide_spurious(1e-11, [3, 4], 3) == "holds"


@pytest.fixture(scope="module", autouse=True)
def _discover():
    discover()


def test_euler_steps_quick(tmp_path):
    res, figs = run_one("ch03.euler_steps", tmp_path, quick=True)
    assert res.verdict == "holds"
    assert abs(res.numbers["measured_order"] - 1) < 0.15
    errs = res.numbers["max_errors"]
    assert all(a > b for a, b in zip(errs, errs[1:]))  # error shrinks with η
    reg = res.numbers["regimes"]
    assert reg["0.05"]["settled"] == 6 and reg["0.8"]["escaped"] == 6
    assert 0 < reg["0.3"]["settled"] < 6  # start-dependent at η = 0.3
    assert all((tmp_path / f).stat().st_size > 1000 for f in figs)


def test_learning_rate_stability(tmp_path):
    res, figs = run_one("ch04.learning_rate_stability", tmp_path, quick=True)
    assert res.verdict == "fails" and res.corrected
    assert res.numbers["eta_one_step_measured"] == pytest.approx(0.25, abs=1e-3)
    assert res.numbers["eta_stability_edge_measured"] == pytest.approx(0.5, abs=2e-3)
    assert res.numbers["period_two_at_0.5"] is True
    assert len(figs) == 2


def test_gd_lyapunov_is_the_closed_form_average():
    """The toolkit's exponent (one orbit per η) equals mean log|1 − ηL''(θ_k)| along the GD orbit
    written out by hand, and an escaping orbit gives NaN."""
    etas = torch.tensor([0.05, 0.3, 0.45], dtype=torch.float64)
    burn, keep = 50, 200
    x, acc = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    for k in range(burn + keep):
        if k >= burn:
            acc += torch.log(torch.abs(1 - etas * (3 * x**2 - 4)))
        x = x - etas * (x**3 - 4 * x + 1)
    lyap = gd_lyapunov(etas, burn=burn, keep=keep)
    assert lyap[:2] == pytest.approx((acc / keep)[:2].tolist(), rel=1e-12, abs=1e-12)
    assert math.isnan(lyap[2]) and not math.isfinite(float(x[2]))


def test_euler_fixed_points_quick(tmp_path):
    res, _ = run_one("ch06.euler_fixed_points", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails"
    assert n["euler_max_distance_fixed_to_critical"] < 1e-8
    assert n["euler_fixed_point_counts_min_max"] == [3, 3]
    assert n["heun_claim_verdict"] == "holds" and n["heun_max_distance_fixed_to_critical"] > 0.1
    assert n["first_eta_with_stable_period2"] == pytest.approx(n["predicted_period_doubling_eta"], abs=0.03)
    assert n["n_etas_with_positive_lyapunov"] >= 1
