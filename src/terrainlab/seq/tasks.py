"""Synthetic sequence tasks with exact answers: modular arithmetic (chain of thought or direct),
copy, and associative lookup.

Every task is a frozen, callable spec: ``task(batch_size, generator) -> TaskBatch``, the signature
:func:`terrainlab.seq.train_lm` expects of any task (yours too). All randomness comes from the
``torch.Generator`` passed in, so a batch is a pure function of the generator's state.

The k-step modular-arithmetic chain (the test task of the monograph's chapter 7, §7.3 of the
specification) sums k+1 digits a_0 … a_k mod p with partial sums s_0 = a_0, s_i = s_{i−1} + a_i
(mod p). In chain-of-thought form (``form="cot"``) one sequence reads, for k = 2::

    <bos> a + b + c = ; a + b = s1 ; so s1 + c = s2 ; answer s2 <eos>

each step after the first opens with a connective — ``then`` for the middle steps, ``so`` for the
last — so the structural markers of Def 3 / Def 4 sit at known positions. In direct form
(``form="direct"``) the chain is left out: ``<bos> a + b + c = answer s2 <eos>``.

Conventions of :class:`TaskBatch`: ``loss_mask[b, t]`` is True when token ``t`` is a prediction target
(predicted from the logits at position ``t − 1``); ``answer_pos[b, j]`` indexes the answer tokens, so
``logits[b, answer_pos − 1].argmax(-1) == answers`` is a correct answer.

Example:
    >>> import torch
    >>> task = ModArithmetic(p=7, k=2, form="cot")
    >>> batch = task(3, torch.Generator().manual_seed(0))
    >>> batch.tokens.shape, task.length
    (torch.Size([3, 24]), 24)
    >>> text = task.vocab.decode(batch.tokens[0])
    >>> text
    '<bos> 4 + 3 + 0 = ; 4 + 3 = 0 ; so 0 + 0 = 0 ; answer 0 <eos>'
    >>> int(batch.answers[0, 0]), task.vocab.to_digit(batch.answers[0, 0])  # a token id, and its digit
    (12, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..core.validate import check_choice, check_instance, check_int

#: The non-digit words of every vocabulary, in id order (digits follow them).
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "+", "=", ";", "so", "then", "answer", ":", "?", "|")


@dataclass(frozen=True)
class Vocab:
    """A tiny word-level vocabulary: :data:`SPECIAL_TOKENS`, then the digits ``0 … p−1`` as tokens.

    ``encode`` splits a string on whitespace (``"3 + 4 ="``); ``decode`` joins with single spaces.

    Example:
        >>> v = Vocab(5)
        >>> v.size, v.digit(0), v.encode("<bos> 3 + 4 =")
        (17, 12, [1, 15, 3, 16, 4])
        >>> v.decode([1, 15, 3, 16, 4])
        '<bos> 3 + 4 ='
    """

    p: int
    words: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        check_int(self.p, "p", minimum=2)
        object.__setattr__(self, "words", SPECIAL_TOKENS + tuple(str(i) for i in range(self.p)))

    @property
    def size(self) -> int:
        return len(self.words)

    def __getattr__(self, name):  # pad, bos, eos, plus, … as ids
        ids = _NAMED_IDS
        if name in ids:
            return ids[name]
        raise AttributeError(name)

    def id(self, word: str) -> int:
        """The id of one word (``"so"``, ``"answer"``, ``"3"``)."""
        try:
            return self.words.index(word)
        except ValueError:
            raise ValueError(f"word must be one of the vocabulary's words, got {word!r}") from None

    def digit(self, d) -> int:
        """The id of digit ``d`` (0 ≤ d < p); a tensor of digits maps elementwise."""
        if torch.is_tensor(d):
            return d + len(SPECIAL_TOKENS)
        check_int(d, "d", minimum=0, maximum=self.p - 1)
        return d + len(SPECIAL_TOKENS)

    def to_digit(self, token_id: int) -> int | None:
        """The digit a token id stands for, or None for a non-digit token."""
        d = int(token_id) - len(SPECIAL_TOKENS)
        return d if 0 <= d < self.p else None

    @property
    def digit_ids(self) -> torch.Tensor:
        """The ids of ``0 … p−1`` (the answer set of the arithmetic tasks)."""
        return torch.arange(len(SPECIAL_TOKENS), len(SPECIAL_TOKENS) + self.p)

    def encode(self, text: str) -> list[int]:
        return [self.id(w) for w in text.split()]

    def decode(self, ids) -> str:
        if torch.is_tensor(ids):
            ids = ids.tolist()
        out = []
        for i in ids:
            if not 0 <= int(i) < self.size:
                raise ValueError(f"ids must lie in [0, {self.size}), got {int(i)}")
            out.append(self.words[int(i)])
        return " ".join(out)


_NAMED_IDS = {
    "pad": 0, "bos": 1, "eos": 2, "plus": 3, "equals": 4, "sep": 5, "so": 6, "then": 7,
    "answer": 8, "colon": 9, "query": 10, "bar": 11,
}
assert all(SPECIAL_TOKENS[i] == w for w, i in
           {"<pad>": 0, "<bos>": 1, "<eos>": 2, "+": 3, "=": 4, ";": 5, "so": 6, "then": 7,
            "answer": 8, ":": 9, "?": 10, "|": 11}.items())


@dataclass(frozen=True)
class TaskBatch:
    """One batch of a task: the tokens and which of them are supervised and scored.

    - ``tokens`` (B, T) int64, right-padded with ``<pad>`` (id 0) when rows differ in length;
    - ``loss_mask`` (B, T) bool: token t is a training target (predicted from the logits at t − 1);
    - ``answer_pos`` (B, A) int64 and ``answers`` (B, A) int64: the positions and ids of the answer
      tokens (A = 1 for arithmetic and lookup, n for copy);
    - ``prompt_len`` (B,) int64: the number of prompt tokens — through the ``=`` of CoT arithmetic,
      the ``answer`` of direct arithmetic, the ``|`` of copy, the ``=`` after the query of lookup;
      what :func:`~terrainlab.seq.generate` is given, the model writing the rest;
    - ``vocab``: the :class:`Vocab` the ids belong to.
    """

    tokens: torch.Tensor
    loss_mask: torch.Tensor
    answer_pos: torch.Tensor
    answers: torch.Tensor
    prompt_len: torch.Tensor
    vocab: Vocab

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]

    def to(self, device) -> TaskBatch:
        return TaskBatch(self.tokens.to(device), self.loss_mask.to(device), self.answer_pos.to(device),
                         self.answers.to(device), self.prompt_len.to(device), self.vocab)


def _check_generator(generator):
    return check_instance(generator, "generator", torch.Generator, "a torch.Generator")


def _check_batch(batch_size, generator):
    check_int(batch_size, "batch_size", minimum=1)
    _check_generator(generator)


def _batch(tokens, mask, answer_pos, prompt_len, vocab) -> TaskBatch:
    rows = torch.arange(tokens.shape[0])[:, None]
    return TaskBatch(tokens, mask, answer_pos, tokens[rows, answer_pos], prompt_len, vocab)


@dataclass(frozen=True)
class ModArithmetic:
    """k-step sums of k+1 digits mod p, with the chain of partial sums written out (``"cot"``) or not.

    ``s_0 = a_0, s_i = (s_{i−1} + a_i) mod p``; the answer is s_k. CoT supervises every token after the
    prompt's ``=``; direct supervises the answer and the ``<eos>`` after it. Operands are uniform on
    ``0 … p−1`` from ``generator``. ``length`` is 9k + 6 (CoT) or 2k + 6 (direct).

    Example:
        >>> import torch
        >>> b = ModArithmetic(p=5, k=1, form="direct")(2, torch.Generator().manual_seed(1))
        >>> b.tokens.shape, b.answer_pos[:, 0].tolist(), b.loss_mask[0].nonzero().flatten().tolist()
        (torch.Size([2, 8]), [6, 6], [6, 7])
    """

    p: int = 7
    k: int = 2
    form: str = "cot"

    def __post_init__(self):
        check_int(self.p, "p", minimum=2)
        check_int(self.k, "k", minimum=1)
        check_choice(self.form, "form", ("cot", "direct"))

    @property
    def vocab(self) -> Vocab:
        return Vocab(self.p)

    @property
    def prompt_length(self) -> int:
        """Prompt tokens: ``<bos> a_0 + … + a_k =`` (2k + 3), and the ``answer`` after it in direct form."""
        return 2 * self.k + 3 if self.form == "cot" else 2 * self.k + 4

    @property
    def length(self) -> int:
        return 9 * self.k + 6 if self.form == "cot" else 2 * self.k + 6

    def __call__(self, batch_size: int, generator: torch.Generator) -> TaskBatch:
        _check_batch(batch_size, generator)
        v = self.vocab
        a = torch.randint(0, self.p, (batch_size, self.k + 1), generator=generator)
        s = torch.cumsum(a, dim=1) % self.p  # s[:, i] = s_i
        B = batch_size

        def col(x):
            return torch.full((B, 1), x, dtype=torch.long) if isinstance(x, int) else x[:, None]

        D = v.digit
        cols = [col(v.bos), col(D(a[:, 0]))]
        for i in range(1, self.k + 1):
            cols += [col(v.plus), col(D(a[:, i]))]
        cols.append(col(v.equals))
        if self.form == "cot":
            for i in range(1, self.k + 1):
                cols.append(col(v.sep))
                if i > 1:
                    cols.append(col(v.so if i == self.k else v.then))
                cols += [col(D(s[:, i - 1])), col(v.plus), col(D(a[:, i])), col(v.equals), col(D(s[:, i]))]
            cols.append(col(v.sep))
        cols += [col(v.answer), col(D(s[:, self.k])), col(v.eos)]
        tokens = torch.cat(cols, dim=1)
        T = tokens.shape[1]
        mask = torch.zeros(B, T, dtype=torch.bool)
        if self.form == "cot":
            mask[:, self.prompt_length:] = True
        else:
            mask[:, T - 2:] = True
        return _batch(tokens, mask, torch.full((B, 1), T - 2), torch.full((B,), self.prompt_length), v)


@dataclass(frozen=True)
class Copy:
    """Copy n symbols: ``<bos> x_1 … x_n | x_1 … x_n <eos>``; the copy and ``<eos>`` are supervised.

    The symbols are the digits ``0 … p−1``, uniform from ``generator``. ``length`` is 2n + 3.

    Example:
        >>> import torch
        >>> b = Copy(n=3, p=4)(1, torch.Generator().manual_seed(0))
        >>> b.vocab.decode(b.tokens[0])
        '<bos> 0 3 1 | 0 3 1 <eos>'
    """

    n: int = 8
    p: int = 10

    def __post_init__(self):
        check_int(self.n, "n", minimum=1)
        check_int(self.p, "p", minimum=2)

    @property
    def vocab(self) -> Vocab:
        return Vocab(self.p)

    @property
    def length(self) -> int:
        return 2 * self.n + 3

    def __call__(self, batch_size: int, generator: torch.Generator) -> TaskBatch:
        _check_batch(batch_size, generator)
        v, n, B = self.vocab, self.n, batch_size
        x = v.digit(torch.randint(0, self.p, (B, n), generator=generator))
        bos = torch.full((B, 1), v.bos)
        tokens = torch.cat([bos, x, torch.full((B, 1), v.bar), x, torch.full((B, 1), v.eos)], dim=1)
        mask = torch.zeros(B, 2 * n + 3, dtype=torch.bool)
        mask[:, n + 2:] = True
        pos = torch.arange(n + 2, 2 * n + 2).expand(B, n)
        return _batch(tokens, mask, pos.clone(), torch.full((B,), n + 2), v)


@dataclass(frozen=True)
class Lookup:
    """Associative recall: ``<bos> k_1 : v_1 ; … ; k_n : v_n ? k_q = v_q <eos>``.

    The n keys are distinct digits (n ≤ p), the values uniform digits, the query one of the keys; the
    answer ``v_q`` and ``<eos>`` are supervised. ``length`` is 4n + 5.

    Example:
        >>> import torch
        >>> b = Lookup(n_pairs=2, p=5)(1, torch.Generator().manual_seed(0))
        >>> b.vocab.decode(b.tokens[0])
        '<bos> 2 : 4 ; 3 : 2 ? 3 = 2 <eos>'
    """

    n_pairs: int = 4
    p: int = 10

    def __post_init__(self):
        check_int(self.p, "p", minimum=2)
        check_int(self.n_pairs, "n_pairs", minimum=1, maximum=self.p)

    @property
    def vocab(self) -> Vocab:
        return Vocab(self.p)

    @property
    def length(self) -> int:
        return 4 * self.n_pairs + 5

    def __call__(self, batch_size: int, generator: torch.Generator) -> TaskBatch:
        _check_batch(batch_size, generator)
        v, n, B = self.vocab, self.n_pairs, batch_size
        keys = torch.argsort(torch.rand(B, self.p, generator=generator), dim=1)[:, :n]
        vals = torch.randint(0, self.p, (B, n), generator=generator)
        q = torch.randint(0, n, (B,), generator=generator)
        rows = torch.arange(B)
        cols = [torch.full((B, 1), v.bos)]
        for i in range(n):
            if i:
                cols.append(torch.full((B, 1), v.sep))
            cols += [v.digit(keys[:, i:i + 1]), torch.full((B, 1), v.colon), v.digit(vals[:, i:i + 1])]
        cols += [torch.full((B, 1), v.query), v.digit(keys[rows, q])[:, None], torch.full((B, 1), v.equals),
                 v.digit(vals[rows, q])[:, None], torch.full((B, 1), v.eos)]
        tokens = torch.cat(cols, dim=1)
        T = tokens.shape[1]
        mask = torch.zeros(B, T, dtype=torch.bool)
        mask[:, T - 2:] = True
        return _batch(tokens, mask, torch.full((B, 1), T - 2), torch.full((B,), T - 2), v)


@dataclass(frozen=True)
class Mixture:
    """A batch split between several tasks of one vocabulary (e.g. CoT + direct arithmetic).

    Rows go to the tasks in proportion to ``weights`` (equal by default; the remainder to the first
    tasks) and are right-padded with ``<pad>`` to the longest task. Every task must have the same
    ``vocab`` and the same number of answer tokens.

    Example:
        >>> import torch
        >>> mix = Mixture((ModArithmetic(7, 2, "cot"), ModArithmetic(7, 2, "direct")))
        >>> b = mix(4, torch.Generator().manual_seed(0))
        >>> b.tokens.shape, b.prompt_len.tolist(), b.answer_pos[:, 0].tolist()
        (torch.Size([4, 24]), [7, 7, 8, 8], [22, 22, 8, 8])
    """

    tasks: tuple
    weights: tuple | None = None

    def __post_init__(self):
        tasks = tuple(self.tasks) if isinstance(self.tasks, (list, tuple)) else ()
        if not tasks:
            raise ValueError(f"tasks must be a non-empty sequence of tasks, got {self.tasks!r}")
        object.__setattr__(self, "tasks", tasks)
        vocabs = {getattr(t, "vocab", None) for t in tasks}
        if len(vocabs) != 1 or None in vocabs:
            raise ValueError("tasks must all have the same vocab")
        if self.weights is not None:
            w = tuple(self.weights)
            if len(w) != len(tasks) or any(not isinstance(x, (int, float)) or x < 0 for x in w) or sum(w) <= 0:
                raise ValueError(f"weights must be {len(tasks)} non-negative numbers with a positive sum, "
                                 f"got {self.weights!r}")
            object.__setattr__(self, "weights", w)

    @property
    def vocab(self) -> Vocab:
        return self.tasks[0].vocab

    @property
    def length(self) -> int:
        return max(t.length for t in self.tasks)

    def __call__(self, batch_size: int, generator: torch.Generator) -> TaskBatch:
        _check_batch(batch_size, generator)
        w = self.weights or (1.0,) * len(self.tasks)
        counts = [int(batch_size * x / sum(w)) for x in w]
        for i in range(batch_size - sum(counts)):
            counts[i % len(counts)] += 1
        parts = [t(c, generator) for t, c in zip(self.tasks, counts) if c > 0]
        return concat_batches(parts)


def concat_batches(batches) -> TaskBatch:
    """Stack batches of one vocabulary row-wise, right-padding tokens with ``<pad>`` (mask False)."""
    batches = list(batches)
    if not batches:
        raise ValueError("batches must not be empty")
    if len({b.vocab for b in batches}) != 1:
        raise ValueError("batches must all have the same vocab")
    if len({b.answers.shape[1] for b in batches}) != 1:
        raise ValueError("batches must all have the same number of answer tokens")
    T = max(b.tokens.shape[1] for b in batches)

    def pad(x, value):
        return torch.nn.functional.pad(x, (0, T - x.shape[1]), value=value)

    return TaskBatch(
        torch.cat([pad(b.tokens, 0) for b in batches]),
        torch.cat([pad(b.loss_mask, False) for b in batches]),
        torch.cat([b.answer_pos for b in batches]),
        torch.cat([b.answers for b in batches]),
        torch.cat([b.prompt_len for b in batches]),
        batches[0].vocab,
    )
