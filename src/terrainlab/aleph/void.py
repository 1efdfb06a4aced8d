"""AlephVoid: the sphere-normalised patch autoencoder of geolip-aleph-void (../shared/aleph.md §4).

An image batch (B, C, H, W) is cut into non-overlapping ps×ps patches; every patch p ∈ ℝ^{C·ps²} goes
through a residual MLP encoder

    h = W_in p + b_in,   h ← h + W₂ GELU(W₁ LN(h) + b₁) + b₂   (``depth`` times),   m = W_out h + b_out,

m ∈ ℝ^{V·D} is read as V rows M ∈ ℝ^{V×D}, each row is put on the sphere S^{D−1} (M̂_v = M_v/‖M_v‖) and
replaced by its aleph address (:class:`~terrainlab.aleph.address.AlephAddress`: ``soft`` w Â, ``hard`` the
nearest oriented codebook axis ±Â_k with the straight-through gradient, ``none`` M̂ itself — the control
without a quantiser). A tied decoder, one Linear(V·D → C·ps²), maps the addressed rows back to a patch; the
patches are stitched into the image and a residual 3×3 convolution pair y + conv₂(GELU(conv₁(y))) smooths
the patch boundaries. conv₂ starts at zero, so at initialisation the model is exactly the stitch of the
decoded patches. The codebook learns only through the reconstruction loss (no commitment loss, no EMA).

The reference build (V=32, D=4, ps=4, hidden=64, depth=1, K=64, τ=0.1, C=3, conv pair 3→8→3) has exactly
26,795 parameters: 3,136 (W_in) + 8,448 (the residual block) + 8,320 (W_out) + 256 (codebook) + 6,192
(decoder) + 224 + 219 (the conv pair). K=64 > 2·D=8 breaks the author's supply law K ≤ 2·D on purpose; the
address's warning is silenced here (``AlephVoid.supply_law_ok`` records it).

:func:`train_void` is the author's training: plain Adam, a cosine learning-rate decay to 0, the mean squared
error; metrics are :func:`reconstruction_cosine` (per image, flattened) and the oriented axes in use
(:meth:`AlephVoid.axes_in_use`). Data: :func:`photo_crops` (crops of scikit-learn's two sample photographs,
training and held-out crops from disjoint column ranges) and :func:`digit_images` (the 8×8 digits).

Example:
    >>> m = AlephVoid(generator=torch.Generator().manual_seed(0))
    >>> m.n_parameters(), m.supply_law_ok
    (26795, False)
    >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    >>> m(x).shape
    torch.Size([2, 3, 16, 16])
"""

from __future__ import annotations

import functools
import importlib.util
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import skip_init

from terrainlab.aleph.address import MODES, AlephAddress
from terrainlab.core.status import Status
from terrainlab.core.validate import (
    check_choice,
    check_instance,
    check_int,
    check_positive,
    check_tensor,
)

__all__ = [
    "AlephVoid",
    "VoidTrainResult",
    "digit_images",
    "patchify",
    "photo_crops",
    "reconstruction_cosine",
    "sample_photos",
    "train_void",
    "unpatchify",
]


def patchify(x: Tensor, ps: int) -> Tensor:
    """(B, C, H, W) → (B, N, C·ps²), N = (H/ps)(W/ps) non-overlapping patches in row-major order, each
    flattened channel-first. H and W must be multiples of ``ps``.

    >>> x = torch.arange(2 * 1 * 4 * 4.).reshape(2, 1, 4, 4)
    >>> bool(torch.equal(unpatchify(patchify(x, 2), 2, (4, 4)), x))
    True
    """
    check_tensor(x, "x", ndim=4)
    check_int(ps, "ps", minimum=1)
    B, C, H, W = x.shape
    if H % ps or W % ps:
        raise ValueError(f"x must have height and width divisible by ps={ps}, got shape {tuple(x.shape)}")
    p = x.reshape(B, C, H // ps, ps, W // ps, ps).permute(0, 2, 4, 1, 3, 5)
    return p.reshape(B, (H // ps) * (W // ps), C * ps * ps)


def unpatchify(p: Tensor, ps: int, hw: tuple[int, int]) -> Tensor:
    """The inverse of :func:`patchify`: (B, N, C·ps²) → (B, C, H, W) for ``hw = (H, W)``."""
    check_tensor(p, "p", ndim=3)
    check_int(ps, "ps", minimum=1)
    H, W = hw
    B, N, P = p.shape
    if H % ps or W % ps or N != (H // ps) * (W // ps) or P % (ps * ps):
        raise ValueError(f"p of shape {tuple(p.shape)} does not tile an image of size {hw} with ps={ps}")
    C = P // (ps * ps)
    x = p.reshape(B, H // ps, W // ps, C, ps, ps).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(B, C, H, W)


class _ResidualBlock(nn.Module):
    """h + W₂ GELU(W₁ LN(h)): one pre-norm residual MLP block of the encoder."""

    def __init__(self, width: int, dtype: torch.dtype):
        super().__init__()
        self.norm = nn.LayerNorm(width, dtype=dtype)
        self.fc1 = skip_init(nn.Linear, width, width, dtype=dtype)
        self.fc2 = skip_init(nn.Linear, width, width, dtype=dtype)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.fc2(F.gelu(self.fc1(self.norm(h))))


class AlephVoid(nn.Module):
    """The aleph-void patch autoencoder (module docstring for the equations).

    Args:
        image_size: (H, W) of the images (or one int for square ones); both divisible by ``ps``.
        channels: C, the image channels (3 for the photographs, 1 for the digits).
        ps: the patch side.
        V, D: the latent of a patch is V rows of dimension D.
        hidden, depth: width and number of residual blocks of the encoder.
        K, tau, mode, init: the :class:`~terrainlab.aleph.address.AlephAddress` (mode ``soft`` | ``hard`` |
            ``none``; ``init`` ``"fibonacci"`` needs D = 4). K > 2·D is allowed without the address's warning
            (the reference build has K = 64 > 8); :attr:`supply_law_ok` records whether K ≤ 2·D.
        smooth_channels: hidden channels of the zero-initialised residual 3×3 conv pair (0: no conv pair).
        generator: a ``torch.Generator`` for every random initialisation (orthogonal linear weights, the
            first conv, a random codebook); no global random state is touched.
        dtype: the parameters' dtype (default: torch's default dtype).
    """

    def __init__(self, image_size: int | tuple[int, int] = 16, channels: int = 3, ps: int = 4, V: int = 32,
                 D: int = 4, hidden: int = 64, depth: int = 1, K: int = 64, tau: float = 0.1,
                 mode: str = "soft", init: str = "random", smooth_channels: int = 8, *,
                 generator: torch.Generator | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        if isinstance(image_size, int) and not isinstance(image_size, bool):
            image_size = (image_size, image_size)
        if not (isinstance(image_size, tuple) and len(image_size) == 2):
            raise ValueError(f"image_size must be an int or a pair (H, W) of ints, got {image_size!r}")
        H, W = (check_int(s, "image_size", minimum=1) for s in image_size)
        self.ps = check_int(ps, "ps", minimum=1)
        if H % ps or W % ps:
            raise ValueError(f"image_size must be divisible by ps={ps}, got {(H, W)}")
        self.image_size = (H, W)
        self.channels = check_int(channels, "channels", minimum=1)
        self.V, self.D = check_int(V, "V", minimum=1), check_int(D, "D", minimum=1)
        self.hidden, self.depth = check_int(hidden, "hidden", minimum=1), check_int(depth, "depth", minimum=0)
        check_int(smooth_channels, "smooth_channels", minimum=0)
        check_choice(mode, "mode", MODES)
        check_instance(generator, "generator", (torch.Generator, type(None)), "a torch.Generator or None")
        self.supply_law_ok = K <= 2 * D if isinstance(K, int) else False
        dtype = dtype or torch.get_default_dtype()
        P = self.channels * ps * ps
        self.patch_dim = P
        # built uninitialised (no draw from the global random state), then initialised from ``generator``
        self.inp = skip_init(nn.Linear, P, hidden, dtype=dtype)
        self.blocks = nn.ModuleList(_ResidualBlock(hidden, dtype) for _ in range(depth))
        self.out = skip_init(nn.Linear, hidden, V * D, dtype=dtype)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"K=\d+ > 2·D", category=UserWarning)
            self.address = AlephAddress(K, D, tau, mode=mode, init=init, generator=generator, dtype=dtype)
        self.decoder = skip_init(nn.Linear, V * D, P, dtype=dtype)
        if smooth_channels:
            self.conv1 = skip_init(nn.Conv2d, self.channels, smooth_channels, 3, padding=1, dtype=dtype)
            self.conv2 = skip_init(nn.Conv2d, smooth_channels, self.channels, 3, padding=1, dtype=dtype)
        else:
            self.conv1 = self.conv2 = None
        self._init(generator)

    @torch.no_grad()
    def _init(self, g: torch.Generator | None) -> None:
        linears = [self.inp, *(m for b in self.blocks for m in (b.fc1, b.fc2)), self.out, self.decoder]
        for lin in linears:  # orthogonal weights (drawn in float64 for the same draw in any dtype), zero biases
            w = torch.empty(lin.weight.shape, dtype=torch.float64)
            nn.init.orthogonal_(w, generator=g)
            lin.weight.copy_(w)
            lin.bias.zero_()
        if self.conv1 is not None:
            bound = 1 / math.sqrt(self.conv1.weight[0].numel())  # PyTorch's default conv bound, seeded
            self.conv1.weight.copy_((2 * torch.rand(self.conv1.weight.shape, generator=g, dtype=torch.float64) - 1)
                                    * bound)
            self.conv1.bias.copy_((2 * torch.rand(self.conv1.bias.shape, generator=g, dtype=torch.float64) - 1)
                                  * bound)
            self.conv2.weight.zero_()  # the residual branch starts at zero: the model is the stitch at init
            self.conv2.bias.zero_()

    @property
    def mode(self) -> str:
        return self.address.mode

    @mode.setter
    def mode(self, value: str) -> None:
        self.address.mode = check_choice(value, "mode", MODES)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return (f"image_size={self.image_size}, channels={self.channels}, ps={self.ps}, V={self.V}, D={self.D}, "
                f"hidden={self.hidden}, depth={self.depth}")

    def _check(self, x: Tensor, name: str = "x") -> Tensor:
        check_tensor(x, name, ndim=4)
        want = (self.channels, *self.image_size)
        if tuple(x.shape[1:]) != want:
            raise ValueError(f"{name} must have shape (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(x.shape)}")
        return x

    def encode(self, x: Tensor) -> Tensor:
        """The rows M̂ on the sphere, (B, N, V, D), before the address."""
        h = self.inp(patchify(self._check(x), self.ps))
        for blk in self.blocks:
            h = blk(h)
        m = self.out(h).unflatten(-1, (self.V, self.D))
        return m / m.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(m.dtype).tiny * 8)

    def decode(self, rows: Tensor) -> Tensor:
        """Addressed rows (B, N, V, D) → the stitched image (B, C, H, W) before the conv pair."""
        return unpatchify(self.decoder(rows.flatten(-2)), self.ps, self.image_size)

    def smooth(self, y: Tensor) -> Tensor:
        """y + conv₂(GELU(conv₁(y))), the residual boundary smoother (identity without a conv pair)."""
        if self.conv1 is None:
            return y
        return y + self.conv2(F.gelu(self.conv1(y)))

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction of x (B, C, H, W)."""
        return self.smooth(self.decode(self.address(self.encode(x))))

    @torch.no_grad()
    def axes_in_use(self, x: Tensor) -> Tensor:
        """The oriented codebook axes (of 2K) that some row of some patch of x picks (sorted unique indices:
        k for +Â_k, K + k for −Â_k)."""
        return self.address.axes_in_use(self.encode(x))

    @torch.no_grad()
    def axis_counts(self, x: Tensor) -> Tensor:
        """How many rows of the patches of x pick each oriented axis as their nearest: (2K,) int64, indexed as
        in :meth:`axes_in_use` (whose length is the number of non-zero counts)."""
        u = self.address.logits(self.encode(x)).reshape(-1, self.address.K)
        k = u.abs().argmax(dim=-1)
        neg = u.gather(1, k[:, None]).squeeze(1) < 0
        return torch.bincount(k + self.address.K * neg.long(), minlength=2 * self.address.K)


def reconstruction_cosine(x: Tensor, y: Tensor) -> Tensor:
    """The cosine between each image of x and of y, both flattened: (B,) — ⟨x_b, y_b⟩ / (‖x_b‖ ‖y_b‖).

    >>> x = torch.ones(2, 1, 2, 2)
    >>> reconstruction_cosine(x, 3 * x).tolist()
    [1.0, 1.0]
    """
    check_tensor(x, "x", min_ndim=2)
    check_tensor(y, "y", min_ndim=2)
    if x.shape != y.shape:
        raise ValueError(f"y must have the shape of x {tuple(x.shape)}, got {tuple(y.shape)}")
    return F.cosine_similarity(x.flatten(1), y.flatten(1), dim=1)


@dataclass(frozen=True)
class VoidTrainResult:
    """What :func:`train_void` did.

    - ``losses`` (n_steps,) float64: the training MSE at each step (before that step's update);
    - ``cosine``: mean :func:`reconstruction_cosine` on the evaluation images after training;
    - ``cosine_per_image`` (n_eval,) float64;
    - ``axes_in_use``: how many of the 2K oriented axes the evaluation images' rows pick (hard assignment);
    - ``status``: ``completed``, ``nonfinite`` (a NaN / inf loss) or ``diverged`` (a loss above
      ``diverge_factor`` × the first one); ``n_steps`` taken; ``seconds`` of the loop and evaluation.
    """

    losses: Tensor
    cosine: float
    cosine_per_image: Tensor
    axes_in_use: int
    status: Status
    n_steps: int
    seconds: float


def train_void(model: AlephVoid, images: Tensor, *, steps: int, batch_size: int = 64, lr: float = 3e-3,
               eval_images: Tensor | None = None, generator: torch.Generator | None = None, seed: int = 0,
               diverge_factor: float = 100.0) -> VoidTrainResult:
    """Train ``model`` in place to reconstruct ``images`` (N, C, H, W): plain Adam, learning rate
    lr·½(1 + cos(πt/steps)), the mean squared error on a minibatch drawn (with replacement) from
    ``generator`` (or a generator seeded with ``seed``). Evaluates on ``eval_images`` (default: ``images``).
    Never raises for what the numbers do: a NaN loss ends the run as ``nonfinite``, a loss above
    ``diverge_factor`` × the first as ``diverged``.

    >>> g = torch.Generator().manual_seed(0)
    >>> m = AlephVoid(8, channels=1, V=4, hidden=16, K=4, generator=g)
    >>> x = torch.rand(32, 1, 8, 8, generator=g)
    >>> r = train_void(m, x, steps=30, batch_size=8, seed=0)
    >>> r.status, r.n_steps, bool(r.losses[-5:].mean() < r.losses[:5].mean())
    ('completed', 30, True)
    """
    check_instance(model, "model", AlephVoid, "an AlephVoid")
    model._check(check_tensor(images, "images", ndim=4, nonempty=True), "images")
    if eval_images is None:
        eval_images = images
    else:
        model._check(check_tensor(eval_images, "eval_images", ndim=4, nonempty=True), "eval_images")
    check_int(steps, "steps", minimum=1)
    check_int(batch_size, "batch_size", minimum=1)
    check_positive(lr, "lr")
    check_positive(diverge_factor, "diverge_factor")
    check_instance(generator, "generator", (torch.Generator, type(None)), "a torch.Generator or None")
    g = generator if generator is not None else torch.Generator().manual_seed(check_int(seed, "seed"))
    t0 = time.perf_counter()
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)  # plain Adam, one fused kernel on the CPU
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
    losses, status, n = [], Status.COMPLETED, len(images)
    model.train()
    for _ in range(steps):
        idx = torch.randint(n, (batch_size,), generator=g)
        xb = images[idx]
        loss = F.mse_loss(model(xb), xb)
        val = float(loss.detach())
        losses.append(val)
        if not math.isfinite(val):
            status = Status.NONFINITE
            break
        if val > diverge_factor * losses[0]:
            status = Status.DIVERGED
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        cos = reconstruction_cosine(eval_images, model(eval_images)).double()
        axes = int(model.axes_in_use(eval_images).numel())
    return VoidTrainResult(losses=torch.tensor(losses, dtype=torch.float64), cosine=float(cos.mean()),
                           cosine_per_image=cos, axes_in_use=axes, status=status, n_steps=len(losses),
                           seconds=time.perf_counter() - t0)


SAMPLE_PHOTOS = ("china.jpg", "flower.jpg")
HELD_OUT_FROM = 512  # held-out crops lie in columns [512, 640) of each photograph, training crops in [0, 496)
_TRAIN_TO = 496


@functools.lru_cache(maxsize=1)
def _sample_photos_cached() -> Tensor:
    import numpy as np
    from PIL import Image

    # the JPEG files of sklearn.datasets.load_sample_images, read directly: the same arrays (a test checks it)
    # without the 1–2 s import of sklearn.datasets
    folder = Path(importlib.util.find_spec("sklearn").submodule_search_locations[0]) / "datasets" / "images"
    imgs = np.stack([np.asarray(Image.open(folder / f).convert("RGB")) for f in SAMPLE_PHOTOS])
    return torch.from_numpy(imgs.astype(np.float64) / 255.0).permute(0, 3, 1, 2).contiguous()


def sample_photos() -> Tensor:
    """scikit-learn's two bundled photographs (china, flower) as float64 (2, 3, 427, 640) in [0, 1]."""
    return _sample_photos_cached().clone()


def photo_crops(n: int, size: int = 16, *, split: str = "train", generator: torch.Generator | None = None,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """``n`` random size×size crops (n, 3, size, size), pixel values in [0, 1], of scikit-learn's two sample
    photographs (china, flower; alternating). ``split="train"`` crops lie in columns [0, 496), ``"test"`` in
    [512, 640): the two never share a pixel. Positions come from ``generator`` (default: seeded with 0).

    >>> photo_crops(4, 16, split="test").shape
    torch.Size([4, 3, 16, 16])
    """
    check_int(n, "n", minimum=1)
    check_int(size, "size", minimum=1, maximum=640 - HELD_OUT_FROM)
    check_choice(split, "split", ("train", "test"))
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    photos = _sample_photos_cached()
    lo, hi = (0, _TRAIN_TO) if split == "train" else (HELD_OUT_FROM, photos.shape[-1])
    rows = torch.randint(photos.shape[-2] - size + 1, (n,), generator=g)
    cols = torch.randint(lo, hi - size + 1, (n,), generator=g)
    out = torch.stack([photos[i % 2, :, r:r + size, c:c + size] for i, (r, c) in enumerate(zip(rows.tolist(),
                                                                                             cols.tolist()))])
    return out.to(dtype)


def digit_images(split: str = "train", *, n_train: int = 1500, dtype: torch.dtype = torch.float32) -> Tensor:
    """scikit-learn's 8×8 digits as (N, 1, 8, 8) images in [0, 1] (pixel / 16): the first ``n_train`` for
    ``split="train"``, the remaining ones for ``"test"``.

    >>> digit_images("test").shape
    torch.Size([297, 1, 8, 8])
    """
    check_choice(split, "split", ("train", "test"))
    check_int(n_train, "n_train", minimum=1, maximum=1796)
    from sklearn.datasets import load_digits

    X = torch.tensor(load_digits().data / 16.0, dtype=dtype).reshape(-1, 1, 8, 8)
    return X[:n_train] if split == "train" else X[n_train:]
