"""terrainlab.classical.svm: the hard-margin SVM by the project's own QP, cross-checked against
scikit-learn's SVC(kernel="linear", C=large) (a test-only use of scikit-learn), the KKT conditions, the
homogeneous (no-bias) variant, and the non-separable status."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from terrainlab.classical import hard_margin_svm

D = torch.float64


def _clouds(seed, n=40, shift=(2.5, 1.0)):
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(size=(n // 2, 2)) + shift, rng.normal(size=(n // 2, 2)) - shift]
    y = np.r_[np.ones(n // 2), -np.ones(n // 2)]
    return torch.tensor(X, dtype=D), torch.tensor(y, dtype=D)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_svc_with_a_large_c(seed):
    svm = pytest.importorskip("sklearn.svm")
    X, y = _clouds(seed)
    r = hard_margin_svm(X, y)
    assert r.status == "optimal" and r.separable
    ref = svm.SVC(kernel="linear", C=1e6, tol=1e-8).fit(X.numpy(), y.numpy())
    assert np.allclose(r.w.numpy(), ref.coef_[0], atol=1e-4)
    assert abs(r.b - float(ref.intercept_[0])) < 1e-4
    assert sorted(r.support.tolist()) == sorted(ref.support_.tolist())


def test_kkt_conditions_and_margin():
    X, y = _clouds(3)
    r = hard_margin_svm(X, y)
    fm = y * (X @ r.w + r.b)
    assert float(fm.min()) == pytest.approx(1.0, abs=1e-9)                    # tight on the support vectors
    assert torch.allclose(fm[r.support], torch.ones(len(r.support), dtype=D), atol=1e-9)
    assert float((r.alpha * y).sum()) == pytest.approx(0.0, abs=1e-9)           # Σ α_i y_i = 0
    assert torch.allclose(r.w, (r.alpha * y) @ X, atol=1e-9)                    # w = Σ α_i y_i x_i
    assert r.margin == pytest.approx(1 / float(r.w.norm()))
    assert float(r.alpha.sum()) == pytest.approx(float(r.w @ r.w), rel=1e-8)    # strong duality
    # only the support vectors matter: refitting on them alone gives the same machine
    r2 = hard_margin_svm(X[r.support], y[r.support])
    assert torch.allclose(r2.w, r.w, atol=1e-8) and abs(r2.b - r.b) < 1e-8


def test_no_bias_is_the_homogeneous_svm():
    X, y = _clouds(4)
    r = hard_margin_svm(X, y, bias=False)
    assert r.status == "optimal" and r.b == 0.0
    assert float((y * (X @ r.w)).min()) == pytest.approx(1.0, abs=1e-9)
    # its norm is no smaller than the biased machine's (one constraint fewer there)
    assert float(r.w.norm()) >= float(hard_margin_svm(X, y).w.norm()) - 1e-9


def test_real_data_breast_cancer_is_separable():
    datasets = pytest.importorskip("sklearn.datasets")
    Xn, yn = datasets.load_breast_cancer(return_X_y=True)
    Xn = (Xn - Xn.mean(0)) / Xn.std(0)
    X, y = torch.tensor(Xn[:200], dtype=D), torch.tensor(2.0 * yn[:200] - 1, dtype=D)
    r = hard_margin_svm(X, y)
    assert r.status == "optimal"
    assert float((y * (X @ r.w + r.b)).min()) >= 1 - 1e-7


@pytest.mark.parametrize("bias", [True, False])
def test_non_separable_gets_a_status_not_a_loop(bias):
    X, y = _clouds(0)
    y = y.clone()
    y[:3] = -y[:3]
    r = hard_margin_svm(X, y, bias=bias)
    assert r.status == "non-separable" and not r.separable
    assert r.iterations <= 200


def test_breakdown_is_a_status_not_an_exception(monkeypatch):
    # a Newton system that cannot be factored (here: every factorisation reports failure) ends the run with
    # status "breakdown" and the α reached so far, never a LinAlgError
    import terrainlab.classical.svm as svm_mod

    X, y = _clouds(0)
    monkeypatch.setattr(svm_mod.torch.linalg, "cholesky_ex",
                        lambda M: (torch.zeros_like(M), torch.ones((), dtype=torch.int32)))
    r = hard_margin_svm(X, y)
    assert r.status == "breakdown" and r.iterations == 1 and not r.separable


def test_non_separable_with_alpha_at_a_huge_box_converges():
    # α reaches the box C = 1e6 on non-separable data: the slack C − α is carried, not recomputed (recomputed,
    # it rounded to 0 on one CPU and the Newton matrix became NaN)
    X, y = _clouds(0)
    y = y.clone()
    y[:3] = -y[:3]
    for bias in (True, False):
        r = hard_margin_svm(X, y, bias=bias)
        assert r.status == "non-separable" and r.iterations < 60
        assert abs(float(r.alpha.max()) - 1e6) < 1e-3


def test_max_iter_status():
    X, y = _clouds(0)
    assert hard_margin_svm(X, y, max_iter=2).status == "max_iter"


def test_float32_in_float32_out():
    X, y = _clouds(1)
    r = hard_margin_svm(X.float(), y.float())
    assert r.w.dtype == torch.float32 and r.status == "optimal"


@pytest.mark.parametrize(
    "kw, word",
    [
        ({"y": torch.tensor([0.0, 1.0, 0.0, 1.0])}, "y"),
        ({"y": torch.ones(4)}, "both classes"),
        ({"y": torch.ones(3)}, "y"),
        ({"X": torch.ones(4)}, "X"),
        ({"X": torch.tensor([[1.0, float("nan")]] * 4)}, "X"),
        ({"C": 0.0}, "C"),
        ({"tol": -1.0}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"bias": 1}, "bias"),
    ],
)
def test_bad_input_names_the_argument(kw, word):
    args = {"X": torch.tensor([[1.0, 0.0], [2.0, 1.0], [-1.0, 0.0], [-2.0, 1.0]]),
            "y": torch.tensor([1.0, 1.0, -1.0, -1.0])}
    args.update(kw)
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(ValueError, match=word):
        hard_margin_svm(X, y, **args)
