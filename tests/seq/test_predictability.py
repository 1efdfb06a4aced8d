"""seq.predictability: held-out R² of a random-feature ridge regressor."""

import pytest
import torch
import torch.nn.functional as F

from terrainlab.seq import predictability, r2_score


def _recurrence(n_seq=60, T=20, d=6, n_tok=4, seed=0):
    """A known recurrence h_t = tanh(A h_{t−1} + B e(x_t)) over random token sequences."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=torch.float64) * 0.5 / d ** 0.5
    E = torch.randn(n_tok, d, generator=g, dtype=torch.float64)
    x = torch.randint(0, n_tok, (n_seq, T), generator=g)
    h = torch.zeros(n_seq, d, dtype=torch.float64)
    hs = []
    for t in range(T):
        h = torch.tanh(h @ A.T + E[x[:, t]])
        hs.append(h)
    H = torch.stack(hs, 1)  # (n_seq, T, d)
    y, prev = H[:, 1:].reshape(-1, d), H[:, :-1].reshape(-1, d)
    tok = x[:, 1:].reshape(-1)
    train = (torch.arange(n_seq) < int(0.7 * n_seq))[:, None].expand(n_seq, T - 1).reshape(-1)
    return y, prev, tok, F.one_hot(tok, n_tok).double(), train


def test_known_recurrence_is_predictable_and_token_alone_is_not():
    y, prev, tok, onehot, train = _recurrence()
    g = torch.Generator().manual_seed(1)
    b = predictability(y, (prev, onehot), train=train, generator=g, n_features=128)
    assert b.status == "completed" and b.r2_test > 0.97 and b.r2_train > 0.97
    # grouped by token: h_t = Φ_x(h_{t−1}) exactly
    bg = predictability(y, prev, groups=tok, train=train, generator=torch.Generator().manual_seed(1), n_features=64)
    assert bg.r2_test > 0.99 and bg.n_groups == 4
    # the token alone leaves the dependence on h_{t−1} unexplained
    a = predictability(y, onehot, train=train, generator=torch.Generator().manual_seed(1), n_features=64)
    assert a.r2_test < b.r2_test - 0.1


def test_pure_noise_gives_r2_near_zero():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 5, generator=g, dtype=torch.float64)
    y = torch.randn(600, 3, generator=g, dtype=torch.float64)
    train = torch.arange(600) < 400
    r = predictability(y, x, train=train, generator=torch.Generator().manual_seed(2), n_features=64)
    assert abs(r.r2_test) < 0.05
    assert r.r2_train < 0.3  # leave-one-out picks a strong penalty instead of fitting the noise


def test_deterministic_and_r2_score():
    y, prev, tok, onehot, train = _recurrence(n_seq=20, T=10)
    r1 = predictability(y, prev, train=train, generator=torch.Generator().manual_seed(3), n_features=32)
    r2 = predictability(y, prev, train=train, generator=torch.Generator().manual_seed(3), n_features=32)
    assert r1 == r2
    yy = torch.tensor([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0]])
    assert r2_score(yy, yy) == 1.0
    assert r2_score(yy, yy.mean(0).expand(3, 2)) == pytest.approx(0.0)


def test_nonfinite_is_a_status_and_bad_input_raises():
    y, prev, tok, onehot, train = _recurrence(n_seq=10, T=6)
    bad = prev.clone()
    bad[3, 0] = float("nan")
    r = predictability(y, bad, train=train, generator=torch.Generator().manual_seed(0))
    assert r.status == "nonfinite" and r.r2_test != r.r2_test
    with pytest.raises(ValueError, match="train"):
        predictability(y, prev, train=train.long(), generator=torch.Generator())
    with pytest.raises(ValueError, match="train"):
        predictability(y, prev, train=torch.ones_like(train), generator=torch.Generator())
    with pytest.raises(ValueError, match="inputs"):
        predictability(y, prev[:-1], train=train, generator=torch.Generator())
    with pytest.raises(ValueError, match="generator"):
        predictability(y, prev, train=train, generator=None)
    with pytest.raises(ValueError, match="groups"):
        predictability(y, prev, train=train, groups=tok[:-1], generator=torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    y, prev, tok, onehot, train = _recurrence(n_seq=20, T=10)
    cpu = predictability(y, prev, groups=tok, train=train, generator=torch.Generator().manual_seed(3), n_features=16)
    gpu = predictability(y.cuda(), prev.cuda(), groups=tok.cuda(), train=train.cuda(),
                         generator=torch.Generator().manual_seed(3), n_features=16)
    assert gpu.r2_test == pytest.approx(cpu.r2_test, abs=1e-6)
