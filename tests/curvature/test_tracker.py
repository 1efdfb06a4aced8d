import pytest
import torch

from terrainlab.curvature import SharpnessTracker, stability_threshold

F = torch.nn.functional


def _linreg(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Linear(4, 1, bias=False)
    x = torch.randn(64, 4) * torch.tensor([3.0, 1.0, 0.5, 0.2])
    y = torch.randn(64, 1)
    return net, x, y


def mse(m, b):
    return F.mse_loss(m(b[0]), b[1])


def test_thresholds():
    p = [torch.nn.Parameter(torch.zeros(2))]
    assert stability_threshold(torch.optim.SGD(p, lr=0.1))[0] == pytest.approx(20.0)
    assert stability_threshold(torch.optim.SGD(p, lr=0.1, momentum=0.9))[0] == pytest.approx(38.0)
    nest = stability_threshold(torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True))[0]
    assert nest == pytest.approx(3.8 / 0.28)
    thr, kind = stability_threshold(torch.optim.Adam(p, lr=0.1))
    assert thr == pytest.approx(380.0) and kind == "P^-1 H"
    with pytest.raises(ValueError):
        stability_threshold(None, None)


@pytest.mark.parametrize("mu", [0.0, 0.9])
def test_threshold_is_the_true_divergence_boundary(mu):
    # heavy ball on a 1-D quadratic with curvature a: stable just below the threshold, not above
    for factor, stable in ((0.98, True), (1.02, False)):
        p = torch.nn.Parameter(torch.ones(1))
        opt = torch.optim.SGD([p], lr=0.1, momentum=mu)
        a = factor * stability_threshold(opt)[0]
        for _ in range(3000):
            opt.zero_grad()
            (0.5 * a * p**2).sum().backward()
            opt.step()
        assert (abs(float(p.detach())) < 1.0) == stable


def test_tracker_matches_exact_sharpness_of_linear_regression():
    net, x, y = _linreg()
    H = 2 * x.T.double() @ x.double() / 64  # Hessian of mean squared error
    lam = float(torch.linalg.eigvalsh(H)[-1])
    opt = torch.optim.SGD(net.parameters(), lr=0.5 / lam)
    tr = SharpnessTracker(net, mse, [(x, y)], optimizer=opt, every=5, max_matvec=6, tol=1e-6,
                          dtype=torch.float64)
    for _ in range(20):
        tr.step()
        opt.zero_grad()
        mse(net, (x, y)).backward()
        opt.step()
    assert [r.step for r in tr.records] == [0, 5, 10, 15]
    for r in tr.records:
        assert r.sharpness == pytest.approx(lam, rel=1e-6) and r.converged
        assert r.threshold == pytest.approx(2 * lam / 0.5)
        assert r.n_matvec <= 6
    assert tr.records[-1].loss < tr.records[0].loss
    fig = tr.plot()
    assert fig.axes[0].get_xlabel() == "step"


def test_tracker_adam_preconditioned_sharpness():
    net, x, y = _linreg(1)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    tr = SharpnessTracker(net, mse, [(x, y)], optimizer=opt, every=1, max_matvec=6, tol=1e-8,
                          dtype=torch.float64)
    tr.step()  # before Adam's first step: plain H
    assert tr.records[0].kind == "H"
    for _ in range(5):
        opt.zero_grad()
        mse(net, (x, y)).backward()
        opt.step()
    rec = tr.step()
    assert rec.kind == "P^-1 H" and rec.threshold == pytest.approx(38 / 0.01)
    st = opt.state[net.weight]
    P = (st["exp_avg_sq"] / (1 - 0.999 ** float(st["step"]))).sqrt().reshape(-1).double() + 1e-8
    H = 2 * x.T.double() @ x.double() / 64
    ref = float(torch.linalg.eigvals(torch.diag(1 / P) @ H).real.max())
    assert rec.sharpness == pytest.approx(ref, rel=1e-6)
