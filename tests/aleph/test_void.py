"""terrainlab.aleph.void: the reference build's 26,795 parameters, shapes, the zero-initialised conv pair, the
three address modes (none skips the address; hard rows are ± codebook rows with a straight-through gradient),
training, the data helpers, dtypes and bad input."""

import warnings

import numpy as np
import pytest
import torch

from terrainlab.aleph.address import AlephAddress
from terrainlab.aleph.void import (
    HELD_OUT_FROM,
    AlephVoid,
    VoidTrainResult,
    digit_images,
    patchify,
    photo_crops,
    reconstruction_cosine,
    sample_photos,
    train_void,
    unpatchify,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _model(mode="soft", seed=0, **kw):
    return AlephVoid(kw.pop("image_size", 8), mode=mode, generator=_gen(seed), **kw)


def test_reference_build_has_26795_parameters_by_part():
    m = AlephVoid(16, channels=3, ps=4, V=32, D=4, hidden=64, depth=1, K=64, tau=0.1, generator=_gen())
    assert m.n_parameters() == 26795
    parts = {
        "inp": 48 * 64 + 64, "blocks": 2 * 64 + 2 * (64 * 64 + 64), "out": 64 * 128 + 128, "address": 64 * 4,
        "decoder": 128 * 48 + 48, "conv1": 3 * 8 * 9 + 8, "conv2": 8 * 3 * 9 + 3,
    }
    for name, n in parts.items():
        assert sum(p.numel() for p in getattr(m, name).parameters()) == n, name
    assert sum(parts.values()) == 26795
    assert AlephVoid(8, generator=_gen()).n_parameters() == 26795  # independent of the image size
    assert m.supply_law_ok is False and AlephVoid(8, K=8, generator=_gen()).supply_law_ok is True


def test_reference_build_silences_the_supply_law_warning_but_the_address_still_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AlephVoid(8, K=64, D=4, generator=_gen())  # no warning escapes
    with pytest.warns(UserWarning, match="supply law"):
        AlephAddress(64, 4)


@pytest.mark.parametrize("mode", ["soft", "hard", "none"])
def test_shapes_and_encode(mode):
    m = _model(mode, image_size=(8, 12), channels=1, V=5, D=3, K=4)
    x = torch.rand(3, 1, 8, 12, generator=_gen(1))
    assert m(x).shape == x.shape
    rows = m.encode(x)
    assert rows.shape == (3, 6, 5, 3)
    torch.testing.assert_close(rows.norm(dim=-1), torch.ones(3, 6, 5))
    assert m.axis_counts(x).shape == (8,) and int(m.axis_counts(x).sum()) == 3 * 6 * 5
    assert int((m.axis_counts(x) > 0).sum()) == m.axes_in_use(x).numel()


def test_patchify_round_trip_and_order():
    x = torch.arange(2 * 3 * 8 * 4, dtype=torch.float64).reshape(2, 3, 8, 4)
    p = patchify(x, 4)
    assert p.shape == (2, 2, 48)
    torch.testing.assert_close(p[1, 1], x[1, :, 4:8, 0:4].reshape(-1))  # second patch = lower block, channel-first
    torch.testing.assert_close(unpatchify(p, 4, (8, 4)), x)


def test_conv_pair_is_zero_initialised_model_is_the_stitch_of_decoded_patches():
    m = _model("soft", image_size=16)
    assert torch.count_nonzero(m.conv2.weight) == 0 and torch.count_nonzero(m.conv2.bias) == 0
    assert torch.count_nonzero(m.conv1.weight) > 0
    x = torch.rand(2, 3, 16, 16, generator=_gen(1))
    with torch.no_grad():
        stitched = unpatchify(m.decoder(m.address(m.encode(x)).flatten(-2)), 4, (16, 16))
        torch.testing.assert_close(m(x), stitched, rtol=0, atol=0)
    # the residual branch is not dead: conv2 gets a gradient at init
    (m(x) - x).square().mean().backward()
    assert m.conv2.weight.grad.abs().sum() > 0


def test_mode_none_skips_the_address():
    m = _model("none")
    x = torch.rand(2, 3, 8, 8, generator=_gen(1))
    calls = []
    m.address.register_forward_hook(lambda mod, inp, out: calls.append(torch.equal(inp[0], out)))
    with torch.no_grad():
        torch.testing.assert_close(m(x), m.smooth(m.decode(m.encode(x))), rtol=0, atol=0)
    assert calls and all(calls)  # the address returned its input unchanged
    (m(x) - x).square().mean().backward()
    assert m.address.codebook.grad is None  # nothing reaches the codebook


def test_hard_rows_are_signed_codebook_rows_and_the_codebook_learns():
    m = _model("hard", dtype=torch.float64)
    x = torch.rand(2, 3, 8, 8, generator=_gen(1), dtype=torch.float64)
    rows = m.address(m.encode(x)).reshape(-1, 4)
    a_hat = m.address.unit_codebook().detach()
    signed = torch.cat([a_hat, -a_hat])  # the 2K oriented axes
    dist = (rows.detach()[:, None] - signed[None]).norm(dim=-1).min(dim=1).values
    assert float(dist.max()) < 1e-12
    # straight-through: the codebook and the encoder receive gradients through the hard forward
    loss = (m(x) - x).square().mean()
    loss.backward()
    assert m.address.codebook.grad is not None and m.address.codebook.grad.abs().sum() > 0
    assert m.inp.weight.grad.abs().sum() > 0
    # and the hard value differs from the soft one (it is a quantiser)
    m.mode = "soft"
    with torch.no_grad():
        assert not torch.allclose(m.address(m.encode(x)).reshape(-1, 4), rows.detach())


def test_same_seed_same_model_and_no_global_rng_use():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = _model(seed=3), _model(seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    c = _model(seed=4)
    assert not torch.equal(a.inp.weight, c.inp.weight)
    w = a.inp.weight.detach().double()  # orthogonal init: 48 orthonormal columns of a 64×48 weight
    torch.testing.assert_close(w.T @ w, torch.eye(48, dtype=torch.float64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype):
    m = _model("hard", dtype=dtype)
    assert all(p.dtype == dtype for p in m.parameters())
    x = torch.rand(2, 3, 8, 8, generator=_gen(1), dtype=dtype)
    y = m(x)
    assert y.dtype == dtype and torch.isfinite(y).all()
    assert reconstruction_cosine(x, y).dtype == dtype


def test_float64_and_float32_builds_agree():
    m32, m64 = _model("soft", dtype=torch.float32), _model("soft", dtype=torch.float64)
    x = torch.rand(2, 3, 8, 8, generator=_gen(1), dtype=torch.float64)
    torch.testing.assert_close(m32(x.float()).double(), m64(x), atol=1e-5, rtol=1e-4)


def test_a_few_adam_steps_reduce_the_loss_and_result_fields():
    x = photo_crops(64, 8, generator=_gen(2))
    m = _model("hard")
    r = train_void(m, x, steps=40, batch_size=16, lr=5e-3, seed=0)
    assert isinstance(r, VoidTrainResult) and r.status == "completed" and r.n_steps == 40
    assert r.losses.shape == (40,) and r.losses.dtype == torch.float64
    assert float(r.losses[-5:].mean()) < 0.5 * float(r.losses[:5].mean())
    assert 0.5 < r.cosine <= 1 and r.cosine_per_image.shape == (64,)
    assert 1 <= r.axes_in_use <= 128
    with pytest.raises(AttributeError):
        r.cosine = 0.0  # frozen
    # deterministic: the same seed gives the same run
    r2 = train_void(_model("hard"), x, steps=40, batch_size=16, lr=5e-3, seed=0)
    torch.testing.assert_close(r.losses, r2.losses)


def test_train_void_reports_nonfinite_instead_of_raising():
    x = photo_crops(16, 8, generator=_gen(2))
    x[0, 0, 0, 0] = float("nan")
    r = train_void(_model("none"), x, steps=20, batch_size=16, seed=0)
    assert r.status == "nonfinite" and r.n_steps < 20


def test_reconstruction_cosine():
    x = torch.randn(4, 3, 2, 2, generator=_gen(0))
    torch.testing.assert_close(reconstruction_cosine(x, 2 * x), torch.ones(4))
    torch.testing.assert_close(reconstruction_cosine(x, -x), -torch.ones(4))
    with pytest.raises(ValueError, match="y must have the shape"):
        reconstruction_cosine(x, x[:2])


def test_photo_crops_are_the_sklearn_photos_and_splits_are_disjoint():
    from sklearn.datasets import load_sample_images

    ref = np.stack(load_sample_images().images).astype(np.float64) / 255.0
    np.testing.assert_array_equal(sample_photos().permute(0, 2, 3, 1).numpy(), ref)
    tr = photo_crops(8, 16, split="train", generator=_gen(0), dtype=torch.float64)
    te = photo_crops(8, 16, split="test", generator=_gen(0), dtype=torch.float64)
    assert tr.shape == te.shape == (8, 3, 16, 16) and 0 <= float(tr.min()) and float(tr.max()) <= 1
    # each crop is the photograph's window at the drawn position, inside its split's column range
    photos = sample_photos()
    for crops, (lo, hi) in ((tr, (0, HELD_OUT_FROM - 16)), (te, (HELD_OUT_FROM, 640))):
        g = _gen(0)
        rows = torch.randint(427 - 16 + 1, (8,), generator=g)
        cols = torch.randint(lo, hi - 16 + 1, (8,), generator=g)
        assert int(cols.min()) >= lo and int(cols.max()) + 16 <= hi
        for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
            assert torch.equal(crops[i], photos[i % 2, :, r:r + 16, c:c + 16])
    assert torch.equal(photo_crops(4, 8, generator=_gen(5)), photo_crops(4, 8, generator=_gen(5)))


def test_digit_images():
    tr, te = digit_images("train"), digit_images("test")
    assert tr.shape == (1500, 1, 8, 8) and te.shape == (297, 1, 8, 8)
    assert float(tr.min()) == 0 and float(tr.max()) == 1
    m = AlephVoid(8, channels=1, generator=_gen())
    assert m(te[:4]).shape == (4, 1, 8, 8)


def test_bad_input():
    with pytest.raises(ValueError, match="image_size"):
        AlephVoid(10, ps=4)
    with pytest.raises(ValueError, match="image_size"):
        AlephVoid((8, 8, 8))
    with pytest.raises(ValueError, match="channels"):
        AlephVoid(8, channels=0)
    with pytest.raises(ValueError, match="ps"):
        AlephVoid(8, ps=0)
    with pytest.raises(ValueError, match="mode"):
        AlephVoid(8, mode="quantised")
    with pytest.raises(ValueError, match="tau"):
        AlephVoid(8, tau=0.0)
    with pytest.raises(ValueError, match="depth"):
        AlephVoid(8, depth=-1)
    with pytest.raises(ValueError, match="generator"):
        AlephVoid(8, generator=0)
    m = _model()
    with pytest.raises(ValueError, match="x must have shape"):
        m(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="x must have 4"):
        m(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="mode"):
        m.mode = "nope"
    x = torch.rand(4, 3, 8, 8)
    with pytest.raises(ValueError, match="steps"):
        train_void(m, x, steps=0)
    with pytest.raises(ValueError, match="eval_images"):
        train_void(m, x, steps=1, eval_images=torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="model"):
        train_void(torch.nn.Linear(2, 2), x, steps=1)
    with pytest.raises(ValueError, match="split"):
        photo_crops(2, split="val")
    with pytest.raises(ValueError, match="size"):
        photo_crops(2, size=200)
    with pytest.raises(ValueError, match="ps"):
        patchify(torch.rand(1, 1, 6, 6), 4)
