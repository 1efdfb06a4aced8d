"""Issue 16 for the belief world: steps go through core (one landing rule per name), old names warn,
and bad inputs raise ValueError naming the right argument."""

import math
import warnings

import pytest
import torch

from terrainlab.belief import (
    contraction_audit,
    energy,
    energy_field,
    energy_step,
    entropy,
    exponentiated_gradient_step,
    grad_energy,
    kl,
    kl_freeze,
    langevin_orbit,
    logit_step,
    mirror_step,
    natural_gradient,
    orbit,
    project_simplex,
    projected_step,
    sample_dirichlet,
    yonglin_step,
)
from terrainlab.core import Euclidean, KLFreeze, Simplex, rollout
from terrainlab.optim import NegativeEntropy
from terrainlab.optim import mirror_step as optim_mirror_step

D = torch.float64
PSTAR = torch.tensor([0.7, 0.2, 0.1], dtype=D)
OFF = torch.tensor([0.8, 0.5, -0.3], dtype=D)  # sums to 1, one negative "probability"


def _beliefs(n=6, K=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return sample_dirichlet(n, K, generator=g, dtype=D) * 0.9 + 0.1 / K, torch.randn(n, K, generator=g, dtype=D)


# ------------------------------------------------------------------ one rule per name, in core


def test_belief_steps_are_the_core_rules():
    p, g = _beliefs()
    for step, rule in ((projected_step, "euclid"), (exponentiated_gradient_step, "mirror"), (logit_step, "logit")):
        assert torch.equal(step(p, g, 0.3), Simplex(rule).descend(p, g, 0.3))
    # the simplex belief step is negative-entropy mirror descent, as optim writes it for parameters
    assert torch.allclose(exponentiated_gradient_step(p, g, 0.3), optim_mirror_step(NegativeEntropy(), p, g, 0.3),
                          atol=1e-15)


@pytest.mark.parametrize("natural, rule", [(False, "euclid"), (True, "mirror"), (True, "logit")])
def test_rollout_of_the_energy_field_iterates_energy_step(natural, rule):
    """A rollout of E's field landed by Simplex(rule) is the iterated one-step map energy_step:
    Euclidean field + euclid = projected GD, natural field + mirror = EG, natural field + logit =
    GD on the logits."""
    p0, _ = _beliefs(5, 3, seed=1)
    eta = 0.15
    tr = rollout(energy_field(PSTAR, natural=natural), p0, eta=eta, steps=40, geometry=Simplex(rule))
    p = p0
    for k in range(1, 41):
        p = energy_step(p, PSTAR, eta, rule)
        assert torch.allclose(tr.states[k], p, rtol=0, atol=1e-13)


def test_kl_freeze_reads_the_core_rule_off_a_trajectory():
    u = torch.full((3,), 1 / 3, dtype=D)
    run = rollout(energy_field(PSTAR, natural=True), u, eta=0.3, steps=400, stop=KLFreeze(1e-8, 3))
    assert run.status == "converged"
    full = rollout(energy_field(PSTAR, natural=True), u, eta=0.3, steps=400).states
    assert kl_freeze(full, 1e-8, 3) == run.n_steps
    assert kl_freeze(full[: run.n_steps], 1e-8, 3) is None


def test_contraction_audit_counts_the_vertex_cycle_through_rollout():
    eta = 0.8 * 2 * 0.01 / 0.7  # the book's 0.8·η_max(p*)
    edge = torch.tensor([[1e-4, 0.5, 0.4999], [0.34, 0.33, 0.33]], dtype=D)
    a = contraction_audit(lambda p: energy_step(p, PSTAR, eta), PSTAR, n_pairs=10, n_starts=1,
                          extra_starts=edge, orbit_steps=20, generator=torch.Generator().manual_seed(0))
    assert a.n_starts == 3 and a.n_cycles == 1 and a.cycle_example == edge[0].tolist()
    with pytest.raises(ValueError, match="max_period"):
        contraction_audit(lambda p: p, PSTAR, n_pairs=10, n_starts=10, max_period=1)
    with pytest.raises(ValueError, match=r"step_fn\(p\)"):
        contraction_audit(lambda p: 2 * p, PSTAR, n_pairs=10, n_starts=10)


# ------------------------------------------------------------------ old names warn, and still work


def test_deprecated_names_warn_and_agree():
    p, g = _beliefs(3, 3)
    with pytest.warns(DeprecationWarning, match="exponentiated_gradient_step"):
        old = mirror_step(p, g, 0.2)
    assert torch.equal(old, exponentiated_gradient_step(p, g, 0.2))
    for old_name, new_name in (("euclidean_projected", "euclid"), ("mirror", "mirror"), ("logit", "logit")):
        with pytest.warns(DeprecationWarning, match="energy_step"):
            old = yonglin_step(p, PSTAR, 0.05, old_name)
        assert torch.equal(old, energy_step(p, PSTAR, 0.05, new_name))
    with pytest.warns(DeprecationWarning, match="energy_step"):
        assert torch.equal(yonglin_step(p, PSTAR, 0.05), energy_step(p, PSTAR, 0.05))
    with pytest.warns(DeprecationWarning, match="'logit'"):
        tr = orbit(energy_field(PSTAR, natural=True), p, 0.2, 5, proj="softmax_logits")
    assert torch.equal(tr.final, orbit(energy_field(PSTAR, natural=True), p, 0.2, 5, proj="logit").final)
    with pytest.warns(DeprecationWarning, match="'euclid'"):
        assert Simplex("euclidean_projected").projection == "euclid"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names are silent
        energy_step(p, PSTAR, 0.05, "euclid")
        Simplex("logit")


# ------------------------------------------------------------------ bad inputs name the argument


def test_orbit_names_its_own_argument():
    F = energy_field(PSTAR)
    for call in (lambda: orbit(F, OFF, 0.1, 3), lambda: langevin_orbit(F, OFF, 0.1, 0.01, 3)):
        with pytest.raises(ValueError, match=r"^p0 must"):
            call()
    with pytest.raises(ValueError, match="proj"):
        orbit(F, PSTAR, 0.1, 3, proj="kl")
    with pytest.raises(ValueError, match="T must"):
        langevin_orbit(F, PSTAR, 0.1, -1.0, 3)


def test_project_simplex_rejects_nan_and_int():
    # the public projection validates (tests/core/test_geometry.py has the full set)
    for v in (torch.tensor([0.2, math.nan, 0.5]), torch.tensor([3, 1, 0])):
        with pytest.raises(ValueError, match=r"^v must"):
            project_simplex(v)


@pytest.mark.parametrize("name, call", [
    ("p", lambda x: kl(x, PSTAR)),
    ("q", lambda x: kl(PSTAR, x)),
    ("p", lambda x: entropy(x)),
    ("p", lambda x: energy(x, PSTAR)),
    ("p_star", lambda x: energy(PSTAR, x)),
    ("p", lambda x: exponentiated_gradient_step(x, torch.zeros(3, dtype=D), 0.1)),
    ("p", lambda x: projected_step(x, torch.zeros(3, dtype=D), 0.1)),
    ("p", lambda x: logit_step(x, torch.zeros(3, dtype=D), 0.1)),
    ("p", lambda x: natural_gradient(x, torch.zeros(3, dtype=D))),
    ("p", lambda x: grad_energy(x, PSTAR)),
    ("p", lambda x: energy_step(x, PSTAR, 0.1)),
])
def test_off_simplex_vectors_raise(name, call):
    bad = (OFF, 2 * PSTAR, torch.tensor([0.5, math.nan, 0.5], dtype=D))  # negative, unnormalised, NaN
    for x in bad:
        with pytest.raises(ValueError, match=rf"^{name} must"):
            call(x)


def test_off_simplex_used_to_give_a_negative_kl():
    # KL(p*‖2p*) = −log 2 < 0 without the check: the "divergence" of a non-belief
    with pytest.raises(ValueError, match="rows summing to 1"):
        kl(PSTAR, 2 * PSTAR)
    # the generalised (I-)divergence takes unnormalised vectors, but still not negative ones
    assert float(kl(PSTAR, 2 * PSTAR, generalized=True)) == pytest.approx(1 - math.log(2))
    with pytest.raises(ValueError, match=r"^q must"):
        kl(PSTAR, OFF, generalized=True)


def test_checks_stay_out_of_torch_func_and_the_hot_loop():
    from torch.func import hessian, vmap

    H = vmap(hessian(lambda x: energy(x, PSTAR)))(PSTAR.expand(2, 3))  # no data-dependent checks inside
    assert torch.allclose(H[0], torch.diag(1 / PSTAR))
    # rollout lands with the kernels: a NaN field ends "nonfinite", it does not raise
    tr = orbit(lambda p, t: p * math.nan, PSTAR, 0.1, 3, proj="mirror")
    assert tr.status == "nonfinite"
    tr = rollout(lambda p, t: p * math.nan, PSTAR, eta=0.1, steps=3, geometry=Simplex("euclid"))
    assert tr.status == "nonfinite"


def test_float32_beliefs_pass_with_float32_tolerance():
    p = torch.softmax(torch.randn(50, 7, generator=torch.Generator().manual_seed(2)), -1)
    assert bool((entropy(p) > 0).all()) and torch.isfinite(kl(p, p.flip(0))).all()
    assert isinstance(Euclidean(), Euclidean)
