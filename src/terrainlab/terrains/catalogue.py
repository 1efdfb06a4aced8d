"""The book's landscapes as :class:`Terrain` objects.

Every function here returns a fresh :class:`Terrain`; :data:`CATALOGUE` maps names to these factories
and :func:`get` builds one by name. All losses are pure torch, batched over leading dimensions,
device/dtype agnostic and differentiable by autograd and ``torch.func``.

Example:
    >>> from terrainlab.terrains import get
    >>> T = get("rosenbrock", b=10.0)
    >>> T(torch.tensor([1.0, 1.0]))
    tensor(0.)
"""

from __future__ import annotations

import math

import torch

from .terrain import Terrain

_BOOK = "The Terrain of Learning, ch. 3"


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def bowl() -> Terrain:
    """L(θ) = θ1² + θ2², the isotropic bowl; unique minimum at 0 (Hessian 2I)."""

    def fn(t):
        return (t**2).sum(-1)

    return Terrain("bowl", fn, 2, ((-2.0, 2.0), (-2.0, 2.0)), "θ1² + θ2²", ((0.0, 0.0),),
                   f"{_BOOK} (loss bowl with a GD path).")


def anisotropic_bowl(a: float = 1.0, b: float = 3.0) -> Terrain:
    """L(θ) = a·θ1² + b·θ2² (default a = 1, b = 3); minimum at 0, Hessian diag(2a, 2b)."""
    a, b = _positive("a", a), _positive("b", b)

    def fn(t):
        return a * t[..., 0] ** 2 + b * t[..., 1] ** 2

    return Terrain("anisotropic_bowl", fn, 2, ((-2.0, 2.0), (-2.0, 2.0)), f"{a:g}·θ1² + {b:g}·θ2²",
                   ((0.0, 0.0),), f"{_BOOK}; condition number b/a = {b / a:g}.")


def bumpy_bowl(amplitude: float = 1.5, frequency: float = 1.8) -> Terrain:
    """L(θ) = θ1² + 2θ2² + A·sin(kθ1)·cos(kθ2), A = 1.5, k = 1.8 (the book's gradient-field figure).

    Every critical point satisfies 2θ1 = −Ak·cos(kθ1)cos(kθ2) and 4θ2 = Ak·sin(kθ1)sin(kθ2), so
    all of them lie in |θ1| ≤ Ak/2, |θ2| ≤ Ak/4 (inside the default box). The minima have no closed
    form; :func:`terrainlab.terrains.critical_points` finds them.
    """
    A, k = _finite("amplitude", amplitude), _positive("frequency", frequency)

    def fn(t):
        x, y = t[..., 0], t[..., 1]
        return x**2 + 2.0 * y**2 + A * torch.sin(k * x) * torch.cos(k * y)

    return Terrain("bumpy_bowl", fn, 2, ((-3.0, 3.0), (-2.0, 2.0)),
                   f"θ1² + 2θ2² + {A:g}·sin({k:g}θ1)·cos({k:g}θ2)", None,
                   f"{_BOOK} (gradient-field figure). All critical points lie in "
                   f"|θ1| ≤ {A * k / 2:g}, |θ2| ≤ {A * k / 4:g}.")


def _double_well_roots() -> tuple[float, float, float]:
    # L'(θ) = θ³ − 4θ + 1: depressed cubic t³ + pt + q with p = −4, q = 1 (Viète's trigonometric roots)
    p, q = -4.0, 1.0
    r = 2.0 * math.sqrt(-p / 3.0)
    phi = math.acos(3.0 * q / (2.0 * p) * math.sqrt(-3.0 / p)) / 3.0
    return tuple(sorted(r * math.cos(phi - 2.0 * math.pi * j / 3.0) for j in range(3)))


def double_well_1d() -> Terrain:
    """L(θ) = 0.25θ⁴ − 2θ² + θ + 6, the tilted 1-D double well of the Euler-steps figure.

    L'(θ) = θ³ − 4θ + 1; its three roots (Viète) are ≈ −2.115 (min), 0.254 (max), 1.861 (min).
    """

    def fn(t):
        x = t[..., 0]
        return 0.25 * x**4 - 2.0 * x**2 + x + 6.0

    lo, _, hi = _double_well_roots()
    return Terrain("double_well_1d", fn, 1, ((-3.2, 3.2),), "0.25θ⁴ − 2θ² + θ + 6", ((lo,), (hi,)),
                   f"{_BOOK} (Euler-steps figure). Minima are roots of θ³ − 4θ + 1 (Viète's formula).")


def double_well_2d() -> Terrain:
    """L(θ) = (θ1² − 1)² + θ2²: minima (±1, 0), a saddle at the origin."""

    def fn(t):
        return (t[..., 0] ** 2 - 1.0) ** 2 + t[..., 1] ** 2

    return Terrain("double_well_2d", fn, 2, ((-2.0, 2.0), (-1.5, 1.5)), "(θ1² − 1)² + θ2²",
                   ((-1.0, 0.0), (1.0, 0.0)), "Two minima (±1, 0) joined through a saddle at 0.")


def saddle() -> Terrain:
    """L(θ) = θ1² − θ2²: a saddle at 0 (Hessian diag(2, −2)); no minima, unbounded below."""

    def fn(t):
        return t[..., 0] ** 2 - t[..., 1] ** 2

    return Terrain("saddle", fn, 2, ((-2.0, 2.0), (-2.0, 2.0)), "θ1² − θ2²", (),
                   f"{_BOOK} (saddle-point figure). Unbounded below; no minimum.")


def rosenbrock(a: float = 1.0, b: float = 10.0) -> Terrain:
    """L(θ) = (a − θ1)² + b·(θ2 − θ1²)² (Rosenbrock 1960), book default b = 10; minimum (a, a²).

    At (1, 1) with b = 10 the Hessian is [[82, −40], [−40, 20]], eigenvalues ≈ 101.6 and 0.394.
    """
    a, b = _finite("a", a), _positive("b", b)

    def fn(t):
        x, y = t[..., 0], t[..., 1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    return Terrain("rosenbrock", fn, 2, ((-2.0, 2.0), (-1.0, 3.0)), f"({a:g} − θ1)² + {b:g}(θ2 − θ1²)²",
                   ((a, a * a),), f"Rosenbrock (1960); {_BOOK} optimizer comparison uses b = 10.")


def sharp(c: float = 0.8) -> Terrain:
    """L(θ) = c·θ² (book: c = 0.8), the 'sharp' 1-D minimum; L'' = 2c."""
    c = _positive("c", c)

    def fn(t):
        return c * t[..., 0] ** 2

    return Terrain("sharp", fn, 1, ((-2.0, 2.0),), f"{c:g}·θ²", ((0.0,),),
                   f"{_BOOK} (sharp vs flat figure).")


def flat(c: float = 0.08) -> Terrain:
    """L(θ) = c·θ⁴ (book: c = 0.08), the 'flat' minimum: its Hessian at 0 is exactly 0 (degenerate)."""
    c = _positive("c", c)

    def fn(t):
        return c * t[..., 0] ** 4

    return Terrain("flat", fn, 1, ((-2.0, 2.0),), f"{c:g}·θ⁴", ((0.0,),),
                   f"{_BOOK} (sharp vs flat figure). L''(0) = 0: a degenerate minimum, not a "
                   "'small-eigenvalue' one.")


def ring(radius: float = 1.0) -> Terrain:
    """L(θ) = (θ1² + θ2² − r²)² (r = 1): a circle of minima (degenerate) around a maximum at 0."""
    r = _positive("radius", radius)

    def fn(t):
        return ((t**2).sum(-1) - r * r) ** 2

    return Terrain("ring", fn, 2, ((-2.0, 2.0), (-2.0, 2.0)), f"(θ1² + θ2² − {r * r:g})²", None,
                   f"The minima form the circle |θ| = {r:g}: every one is degenerate (zero curvature "
                   "along the circle). The origin is a maximum.")


def quadratic(c: float = 2.0) -> Terrain:
    """L(θ) = c·θ² (book: c = 2, the learning-rate stability figure); L'' = 2c, GD stable for η < 1/c."""
    c = _positive("c", c)

    def fn(t):
        return c * t[..., 0] ** 2

    return Terrain("quadratic", fn, 1, ((-2.0, 2.0),), f"{c:g}·θ²", ((0.0,),),
                   "The book's learning-rate stability figure (ch. 4).")


def himmelblau() -> Terrain:
    """L(θ) = (θ1² + θ2 − 11)² + (θ1 + θ2² − 7)² (Himmelblau 1972).

    Four minima (value 0): (3, 2) exactly; the other three to the literature's six digits. Four
    saddles and one maximum (≈ (−0.270845, −0.923039)) complete the critical set.
    """

    def fn(t):
        x, y = t[..., 0], t[..., 1]
        return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2

    mins = ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126))
    return Terrain("himmelblau", fn, 2, ((-5.0, 5.0), (-5.0, 5.0)),
                   "(θ1² + θ2 − 11)² + (θ1 + θ2² − 7)²", mins,
                   "Himmelblau, Applied Nonlinear Programming (1972). Minima other than (3, 2) to 6 digits.")


def beale() -> Terrain:
    """L(θ) = (1.5 − θ1 + θ1θ2)² + (2.25 − θ1 + θ1θ2²)² + (2.625 − θ1 + θ1θ2³)², minimum (3, 0.5)."""

    def fn(t):
        x, y = t[..., 0], t[..., 1]
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2

    return Terrain("beale", fn, 2, ((-4.5, 4.5), (-4.5, 4.5)),
                   "(1.5 − θ1 + θ1θ2)² + (2.25 − θ1 + θ1θ2²)² + (2.625 − θ1 + θ1θ2³)²", ((3.0, 0.5),),
                   "Beale (1958). Global minimum 0 at (3, 0.5); (0, 1) is a saddle.")


CATALOGUE = {
    "bowl": bowl,
    "anisotropic_bowl": anisotropic_bowl,
    "bumpy_bowl": bumpy_bowl,
    "double_well_1d": double_well_1d,
    "double_well_2d": double_well_2d,
    "saddle": saddle,
    "rosenbrock": rosenbrock,
    "sharp": sharp,
    "flat": flat,
    "ring": ring,
    "quadratic": quadratic,
    "himmelblau": himmelblau,
    "beale": beale,
}


def get(name: str, **params) -> Terrain:
    """Build the catalogue terrain ``name`` (see :data:`CATALOGUE`), passing ``params`` to its factory."""
    if name not in CATALOGUE:
        raise ValueError(f"name must be one of {sorted(CATALOGUE)}, got {name!r}")
    return CATALOGUE[name](**params)
