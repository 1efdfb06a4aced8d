"""Training, scoring, greedy decoding and checkpoints of the small sequence models."""

import math

import pytest
import torch

from terrainlab.core import Status
from terrainlab.seq import (
    GRULM,
    Copy,
    Mixture,
    ModArithmetic,
    TinyGPT,
    accuracy,
    answer_correct,
    generate,
    generated_accuracy,
    lm_loss,
    load_checkpoint,
    save_checkpoint,
    train_lm,
)


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_one_layer_gpt_learns_copy():
    # CI-sized: ~2 s on one thread here; a 1-layer GPT must copy 8 symbols from 10 at > 95 %
    task = Copy(n=8, p=10)
    model = TinyGPT(task.vocab.size, d_model=32, n_layers=1, n_heads=2, context=task.length, generator=g())
    res = train_lm(model, task, steps=200, batch_size=32, lr=1e-2, seed=0, eval_batch_size=256)
    assert res.status == Status.COMPLETED and res.n_steps == 200
    assert res.accuracy > 0.95
    held = task(256, g(77))
    assert accuracy(model, held) > 0.95
    assert generated_accuracy(model, held, exact=False) > 0.95  # free-running copy, not only teacher-forced
    chance = 1 / task.p
    untrained = TinyGPT(task.vocab.size, d_model=32, n_layers=1, n_heads=2, context=task.length, generator=g())
    assert accuracy(untrained, held) < 3 * chance


def test_gru_learns_copy_above_chance():
    # ~1.5 s here: a 48-unit GRU copies 3 of 6 symbols at ~0.77 per token after 400 steps (chance 1/6)
    task = Copy(n=3, p=6)
    model = GRULM(task.vocab.size, d_hidden=48, generator=g())
    res = train_lm(model, task, steps=400, batch_size=32, lr=3e-2, seed=0, eval_batch_size=512)
    assert res.status == Status.COMPLETED
    assert res.accuracy > 3 / task.p
    assert float(res.losses[-20:].mean()) < 0.8 * float(res.losses[:5].mean())


def test_training_is_deterministic_given_the_seed():
    task = ModArithmetic(p=5, k=1, form="direct")

    def run(seed):
        m = TinyGPT(task.vocab.size, d_model=16, n_layers=1, n_heads=2, context=task.length, generator=g(3))
        return train_lm(m, task, steps=15, batch_size=8, seed=seed, eval_batch_size=32)

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a.losses, b.losses) and a.accuracy == b.accuracy and a.eval_loss == b.eval_loss
    assert not torch.equal(a.losses, c.losses)
    # an explicit generator is the same as the seed it was seeded with
    m = TinyGPT(task.vocab.size, d_model=16, n_layers=1, n_heads=2, context=task.length, generator=g(3))
    d = train_lm(m, task, steps=15, batch_size=8, generator=g(1), eval_batch_size=32)
    assert torch.equal(a.losses, d.losses)


def test_nonfinite_and_diverged_are_statuses_not_exceptions():
    task = Copy(n=3, p=4)
    m = TinyGPT(task.vocab.size, d_model=16, n_layers=1, n_heads=2, context=task.length, generator=g())
    with torch.no_grad():
        m.lm_head.weight[0, 0] = float("nan")
    res = train_lm(m, task, steps=10, batch_size=4, eval_batch_size=8)
    assert res.status == Status.NONFINITE and res.n_steps == 1 and math.isnan(float(res.losses[0]))
    m = TinyGPT(task.vocab.size, d_model=16, n_layers=1, n_heads=2, context=task.length, generator=g())
    res = train_lm(m, task, steps=40, batch_size=4, lr=50.0, grad_clip=None, weight_decay=0.0,
                   warmup=0, eval_batch_size=8, diverge_factor=1.5)
    assert res.status in (Status.DIVERGED, Status.NONFINITE) and res.n_steps < 40


def test_loss_and_accuracy_read_the_right_positions():
    task = ModArithmetic(p=7, k=1, form="direct")
    b = task(16, g())

    class Oracle(torch.nn.Module):
        """Puts all its mass on the next token of ``b`` (a perfect model of this batch)."""

        vocab_size, context = task.vocab.size, task.length

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, tokens):
            nxt = torch.cat([tokens[:, 1:], tokens[:, :1]], dim=1)
            return 50.0 * torch.nn.functional.one_hot(nxt, self.vocab_size).float() + self.w

    o = Oracle()
    assert accuracy(o, b) == 1.0 and float(lm_loss(o, b).detach()) < 1e-6
    assert bool(answer_correct(o, b).all())
    wrong = type(b)(b.tokens, b.loss_mask, b.answer_pos, (b.answers + 1), b.prompt_len, b.vocab)
    assert accuracy(o, wrong) == 0.0


def test_generate_is_greedy_and_stops_at_eos():
    task = Copy(n=3, p=4)
    m = TinyGPT(task.vocab.size, d_model=16, n_layers=1, n_heads=2, context=task.length, generator=g())
    prompt = task(2, g()).tokens[:, :5]
    out = generate(m, prompt, 4)
    assert out.shape == (2, 9) and torch.equal(out[:, :5], prompt)
    for t in range(5, 9):  # each new token is the argmax given the tokens before it
        assert torch.equal(out[:, t], m(out[:, :t])[:, -1].argmax(-1))
    eos = int(out[0, 5])
    stopped = generate(m, prompt, 4, eos_id=eos)
    assert int(stopped[0, 5]) == eos and bool((stopped[0, 6:] == 0).all())
    with pytest.raises(ValueError, match="^max_new_tokens"):
        generate(m, prompt, 5)  # 5 + 5 > context 9
    with pytest.raises(ValueError, match="^prompt"):
        generate(m, torch.full((1, 3), 99), 1)
    mix = Mixture((ModArithmetic(5, 1, "cot"), ModArithmetic(5, 1, "direct")))(4, g())
    gpt = TinyGPT(mix.vocab.size, d_model=16, n_layers=1, n_heads=2, context=15, generator=g())
    with pytest.raises(ValueError, match="^batch"):
        generated_accuracy(gpt, mix)  # two prompt lengths: score each task on its own
    assert 0.0 <= accuracy(gpt, mix) <= 1.0 and bool(torch.isfinite(lm_loss(gpt, mix)))


def test_checkpoint_round_trip_is_bit_identical(tmp_path):
    task = ModArithmetic(p=7, k=2, form="cot")
    for model, cls in ((TinyGPT(task.vocab.size, d_model=16, n_layers=2, n_heads=2, context=24, generator=g()), TinyGPT),
                       (GRULM(task.vocab.size, d_hidden=16, generator=g()), GRULM)):
        train_lm(model, task, steps=3, batch_size=4, eval_batch_size=4)
        meta = {"task": "ModArithmetic(7, 2, cot)", "steps": 3, "losses": [1.0, 0.5], "acc": torch.tensor(0.25)}
        path = save_checkpoint(tmp_path / f"{cls.__name__}.pt", model, meta)
        assert not list(tmp_path.glob(".*.tmp"))  # nothing left of the atomic write
        payload = torch.load(path, weights_only=True)  # loads without pickled code
        assert payload["config"] == model.config
        rebuilt, meta2 = load_checkpoint(path, cls)
        assert meta2["steps"] == 3 and torch.equal(meta2["acc"], meta["acc"])
        into = cls(**model.config)
        same, _ = load_checkpoint(path, into)
        assert same is into
        for m in (rebuilt, into):
            for (n1, p1), (n2, p2) in zip(model.state_dict().items(), m.state_dict().items()):
                assert n1 == n2 and torch.equal(p1, p2)
        x = task(4, g(1)).tokens
        assert torch.equal(model(x), rebuilt(x))


def test_checkpoint_bad_input(tmp_path):
    m = GRULM(10, d_hidden=4, generator=g())
    with pytest.raises(ValueError, match="^meta"):
        save_checkpoint(tmp_path / "a.pt", m, {"f": lambda: 0})
    with pytest.raises(ValueError, match="^path"):
        load_checkpoint(tmp_path / "missing.pt", GRULM)
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="^path"):
        load_checkpoint(tmp_path / "other.pt", GRULM)


@pytest.mark.parametrize("kw,name", [
    (dict(steps=0), "steps"), (dict(steps=1, lr=0.0), "lr"), (dict(steps=1, batch_size=0), "batch_size"),
    (dict(steps=1, schedule="step"), "schedule"), (dict(steps=1, generator=3), "generator"),
    (dict(steps=1, grad_clip=-1.0), "grad_clip"),
])
def test_train_bad_input(kw, name):
    m = GRULM(20, d_hidden=4, generator=g())
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        train_lm(m, Copy(2, 4), **kw)
    with pytest.raises(ValueError, match="^task"):
        train_lm(m, "copy", steps=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_models_and_training_run_on_cuda():
    task = ModArithmetic(p=5, k=1, form="cot")
    for model in (TinyGPT(task.vocab.size, d_model=16, n_layers=1, n_heads=2, context=task.length, generator=g()),
                  GRULM(task.vocab.size, d_hidden=16, generator=g())):
        cpu = train_lm(model, task, steps=5, batch_size=8, eval_batch_size=16)
        model.cuda()
        res = train_lm(model, task, steps=5, batch_size=8, eval_batch_size=16)
        assert res.status == Status.COMPLETED and cpu.status == Status.COMPLETED
        b = task(4, g(1))
        assert generate(model, b.tokens[:, :5].cuda(), 3).device.type == "cuda"
        assert 0.0 <= generated_accuracy(model, b) <= 1.0
