"""The synthetic tasks: exact answers, the stated layout, determinism, bad input."""

import pytest
import torch

from terrainlab.seq import Copy, Lookup, Mixture, ModArithmetic, Vocab, concat_batches


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def parse_cot(words, p):
    """Parse '<bos> a0 + … + ak = ; a0 + a1 = s1 ; then … ; so s + ak = sk ; answer sk <eos>' back
    and check every step's arithmetic; returns (operands, partial sums, answer)."""
    assert words[0] == "<bos>" and words[-1] == "<eos>"
    eq = words.index("=")
    prompt = words[1:eq]
    operands = [int(w) for w in prompt[0::2]]
    assert all(w == "+" for w in prompt[1::2])
    k = len(operands) - 1
    steps = " ".join(words[eq + 1:-3]).split(";")[1:-1]  # '; a + b = s1 ; so … ;' → the step texts
    assert len(steps) == k
    sums, prev = [], operands[0]
    for i, text in enumerate(steps, start=1):
        w = text.split()
        if i > 1:
            assert w[0] == ("so" if i == k else "then")
            w = w[1:]
        x, plus, y, equals, s = w
        assert (plus, equals) == ("+", "=")
        assert int(x) == prev and int(y) == operands[i]
        assert int(s) == (int(x) + int(y)) % p
        sums.append(int(s))
        prev = int(s)
    assert words[-3] == "answer"
    return operands, sums, int(words[-2])


@pytest.mark.parametrize("p,k", [(7, 2), (5, 1), (11, 4)])
def test_cot_chain_is_exact_and_parses_back(p, k):
    task = ModArithmetic(p=p, k=k, form="cot")
    b = task(64, g(1))
    assert b.tokens.shape == (64, task.length) and task.length == 9 * k + 6
    for row in range(64):
        words = task.vocab.decode(b.tokens[row]).split()
        ops, sums, ans = parse_cot(words, p)
        assert ans == sum(ops) % p == sums[-1]
        assert task.vocab.to_digit(b.answers[row, 0]) == ans
        assert int(b.answer_pos[row, 0]) == len(words) - 2
    # supervised: everything after the prompt's '=' (chain, answer, eos); nothing before
    L = task.prompt_length
    assert bool(b.loss_mask[:, L:].all()) and not bool(b.loss_mask[:, :L].any())
    assert b.vocab.decode(b.tokens[0, L - 1:L]) == "="
    assert bool((b.prompt_len == L).all())


def test_issue_layout_for_two_steps():
    b = ModArithmetic(p=7, k=2, form="cot")(1, g(3))
    w = b.vocab.decode(b.tokens[0]).split()
    a, bb, c = int(w[1]), int(w[3]), int(w[5])
    s1, s2 = (a + bb) % 7, (a + bb + c) % 7
    assert w == ["<bos>", str(a), "+", str(bb), "+", str(c), "=", ";", str(a), "+", str(bb), "=", str(s1),
                 ";", "so", str(s1), "+", str(c), "=", str(s2), ";", "answer", str(s2), "<eos>"]


def test_direct_form_and_its_mask():
    task = ModArithmetic(p=7, k=3, form="direct")
    b = task(200, g(2))
    assert task.length == 2 * 3 + 6 == b.tokens.shape[1]
    for row in range(200):
        w = task.vocab.decode(b.tokens[row]).split()
        ops = [int(x) for x in w[1:w.index("=")][0::2]]
        assert w[-3:-1] == ["answer", str(sum(ops) % 7)]
    assert b.loss_mask.sum(1).tolist() == [2] * 200  # the answer and <eos>
    assert bool(b.loss_mask[:, -2:].all())
    # the operands cover the whole alphabet (uniform draws, not a constant)
    assert set(b.tokens[:, 1].tolist()) == set(task.vocab.digit_ids.tolist())


def test_copy_and_lookup_answers():
    b = Copy(n=5, p=6)(50, g(4))
    assert torch.equal(b.tokens[:, 1:6], b.tokens[:, 7:12]) and torch.equal(b.answers, b.tokens[:, 1:6])
    assert b.answer_pos[0].tolist() == list(range(7, 12))
    assert b.loss_mask[0].nonzero().flatten().tolist() == list(range(7, 13))
    task = Lookup(n_pairs=4, p=9)
    b = task(100, g(5))
    assert b.tokens.shape[1] == task.length
    for row in range(100):
        w = task.vocab.decode(b.tokens[row]).split()
        pairs = dict(tuple(x.split(":")) for x in "".join(w[1:w.index("?")]).split(";"))
        assert len(pairs) == 4  # distinct keys
        assert pairs[w[-4]] == w[-2] == task.vocab.decode(b.answers[row])


def test_deterministic_given_the_generator():
    for task in (ModArithmetic(7, 2), ModArithmetic(7, 2, "direct"), Copy(4, 5), Lookup(3, 6)):
        a, b, c = task(32, g(9)), task(32, g(9)), task(32, g(10))
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.loss_mask, b.loss_mask)
        assert not torch.equal(a.tokens, c.tokens)


def test_mixture_pads_and_keeps_answers():
    mix = Mixture((ModArithmetic(7, 2, "cot"), ModArithmetic(7, 2, "direct")), weights=(3, 1))
    b = mix(8, g(0))
    assert b.tokens.shape == (8, 24)
    assert b.answer_pos[:, 0].tolist() == [22] * 6 + [8] * 2
    assert bool((b.tokens[6:, 10:] == 0).all()) and not bool(b.loss_mask[6:, 10:].any())
    rows = torch.arange(8)[:, None]
    assert torch.equal(b.tokens[rows, b.answer_pos], b.answers)
    with pytest.raises(ValueError, match="vocab"):
        Mixture((ModArithmetic(7, 2), ModArithmetic(5, 2)))
    with pytest.raises(ValueError, match="number of answer tokens"):
        concat_batches([Copy(3, 7)(2, g()), ModArithmetic(7, 1)(2, g())])


def test_vocab_round_trip_and_names():
    v = Vocab(12)
    text = "<bos> 11 + 3 = ; so then answer : ? | <eos> <pad>"
    assert v.decode(v.encode(text)) == text
    assert (v.so, v.then, v.answer, v.eos) == (v.id("so"), v.id("then"), v.id("answer"), v.id("<eos>"))
    assert v.digit_ids.tolist() == [v.digit(i) for i in range(12)]
    assert v.to_digit(v.plus) is None


@pytest.mark.parametrize("make,name", [
    (lambda: ModArithmetic(p=1, k=2), "p"),
    (lambda: ModArithmetic(p=7, k=0), "k"),
    (lambda: ModArithmetic(p=7, k=2, form="chain"), "form"),
    (lambda: Copy(n=0), "n"),
    (lambda: Lookup(n_pairs=11, p=10), "n_pairs"),
    (lambda: ModArithmetic()(0, g()), "batch_size"),
    (lambda: ModArithmetic()(4, 0), "generator"),
    (lambda: Vocab(1), "p"),
    (lambda: Vocab(5).id("maybe"), "word"),
    (lambda: Vocab(5).decode([99]), "ids"),
    (lambda: Mixture(()), "tasks"),
    (lambda: Mixture((Copy(),), weights=(-1,)), "weights"),
])
def test_bad_input_names_the_argument(make, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        make()
