"""Shared set-up of the ch11 LoRA experiments: an MLP pretrained on the digits, and the fine-tuning tasks.

Holds no experiment (the registry imports it and finds none). The pretrained model is built once per
atlas output folder through :meth:`terrainlab.atlas.Context.shared` (``lora_digits_mlp``) and shared by
``ch11.lora_rank_sweep`` and ``ch11.full_finetune_delta_is_low_rank``.

- Task A (pretraining): the 10-class digits on the first ``N_TRAIN`` images (float64, centred).
- Near task B: the same labels, every image shifted one pixel right (zero fill): a small input change.
- Far task B′: the same labels, the 64 pixels permuted by a fixed random permutation (one per seed): the
  first layer must be rebuilt almost entirely.

The model: 64 → 64 (tanh) → 64 (tanh) → 10 (``fc1``, ``fc2``, ``head``). Training is full-batch Adam on the
cross-entropy. Accuracies are measured on the held-out images.

Example:
    >>> x = torch.arange(64.0).reshape(1, 64)
    >>> shift_right(x).reshape(8, 8)[0, :3].tolist()
    [0.0, 0.0, 1.0]
"""

from __future__ import annotations

import torch
from torch import nn

from ._digits import centred_digits, default_init_, one_thread

VERSION = 1  # bump when _build changes
N_TRAIN = 500
WIDTH = 64
PRETRAIN_STEPS = (150, 60)  # (full, quick)
PRETRAIN_LR = 1e-2


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, WIDTH, dtype=torch.float64)
        self.fc2 = nn.Linear(WIDTH, WIDTH, dtype=torch.float64)
        self.head = nn.Linear(WIDTH, 10, dtype=torch.float64)

    def forward(self, x):
        return self.head(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


def data():
    """(X_train, y_train, X_test, y_test) of task A: float64, centred on all 1797 images."""
    X, y = centred_digits(1797)
    X = X.double()
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def shift_right(X: torch.Tensor) -> torch.Tensor:
    """Every 8×8 image moved one pixel to the right, the left column zero."""
    img = X.reshape(-1, 8, 8)
    out = torch.zeros_like(img)
    out[:, :, 1:] = img[:, :, :-1]
    return out.reshape(-1, 64)


def permutation(seed: int) -> torch.Tensor:
    return torch.randperm(64, generator=torch.Generator().manual_seed(10_000 + seed))


def task_inputs(task: str, X: torch.Tensor, seed: int) -> torch.Tensor:
    """The inputs of ``task`` ("A", "near", "far") for images ``X`` (the far task's permutation from ``seed``)."""
    if task == "A":
        return X
    if task == "near":
        return shift_right(X)
    if task == "far":
        return X[:, permutation(seed)]
    raise ValueError(f"task must be 'A', 'near' or 'far', got {task!r}")


def train(model: nn.Module, X, y, steps: int, lr: float) -> float:
    """Full-batch Adam on the cross-entropy over the trainable parameters of ``model``; the last loss."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, fused=True)
    loss = torch.tensor(float("nan"))
    with one_thread():
        for _ in range(steps):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X), y)
            loss.backward()
            opt.step()
    return float(loss.detach())


def accuracy(model: nn.Module, X, y) -> float:
    with torch.no_grad(), one_thread():
        return float((model(X).argmax(1) == y).double().mean())


def _build(seed: int, quick: bool) -> dict:
    model = MLP()
    default_init_([model.fc1, model.fc2, model.head], torch.Generator().manual_seed(seed))
    Xtr, ytr, Xte, yte = data()
    loss = train(model, Xtr, ytr, PRETRAIN_STEPS[1 if quick else 0], PRETRAIN_LR)
    return {"state_dict": model.state_dict(),
            "meta": {"final_loss": loss, "test_accuracy": accuracy(model, Xte, yte), "seed": seed}}


def pretrained(ctx) -> tuple[MLP, dict]:
    """The task-A MLP of this run (trained by the first experiment that asks, loaded after) and its
    record (final training loss, held-out accuracy)."""
    obj = ctx.shared("lora_digits_mlp", lambda: _build(ctx.seed, ctx.quick), version=VERSION)
    model = MLP()
    model.load_state_dict(obj["state_dict"])
    return model, obj["meta"]
