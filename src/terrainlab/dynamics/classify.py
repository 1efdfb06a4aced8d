"""Stability classes of fixed points, for flows and for maps.

Flow s' = F(s) at a zero s*: eigenvalues λ of DF(s*). Hartman–Grobman: if no Re λ = 0 the flow is
locally conjugate to its linearisation, so the class is read off the signs of Re λ.
Map s ↦ T(s) at T(s*) = s*: eigenvalues μ of DT(s*); the class is read off |μ| against 1.
The explicit Euler map T = I + ηF has μ = 1 + ηλ, so a flow attractor stays a map attractor only
while |1 + ηλ| < 1 for all λ, i.e. η < −2 Re λ / |λ|² (Strogatz §6, §10; Hairer–Wanner II §IV.2).
"""

from __future__ import annotations

import math

import torch

from ..core.validate import check_nonnegative

CLASSES = ("attractor", "repeller", "saddle", "non-hyperbolic")
#: The answer for a point whose eigenvalues hold NaN or ±inf: no class can be read off them.
NONFINITE = "nonfinite"


def _as_eigs(eigs) -> torch.Tensor:
    e = eigs if torch.is_tensor(eigs) else torch.as_tensor(eigs)
    if e.ndim == 0:
        e = e.reshape(1)
    if e.shape[-1] == 0:
        raise ValueError(f"eigs must hold at least one eigenvalue per point, got shape {tuple(e.shape)}")
    if not torch.is_complex(e):
        e = e.to(torch.complex128)
    return e


def _one(stable: torch.Tensor, unstable: torch.Tensor, finite: torch.Tensor) -> str:
    if not bool(finite.all()):
        return NONFINITE
    if bool(stable.all()):
        return "attractor"
    if bool(unstable.all()):
        return "repeller"
    if bool((stable | unstable).all()):
        return "saddle"
    return "non-hyperbolic"


def _classify(stable, unstable, finite):
    if stable.ndim == 1:
        return _one(stable, unstable, finite)
    m = stable.shape[-1]
    return [_one(a, b, c) for a, b, c in zip(stable.reshape(-1, m), unstable.reshape(-1, m), finite.reshape(-1, m))]


def classify_flow(eigs, tol: float = 1e-8):
    """Class of a flow fixed point from the eigenvalues of DF: by the signs of Re λ.

    all Re λ < −tol: ``"attractor"``; all > tol: ``"repeller"``; mixed, none within tol:
    ``"saddle"``; any |Re λ| ≤ tol: ``"non-hyperbolic"``; any λ NaN or infinite: ``"nonfinite"``
    (nothing can be read off it — a Jacobian that overflowed or was NaN). A 1-D tensor gives a
    string, a (N, m) tensor a list of N strings; no eigenvalues at all is a ``ValueError``.

    Example:
        >>> classify_flow(torch.tensor([-1.0, 2.0]))
        'saddle'
    """
    check_nonnegative(tol, "tol")
    e = _as_eigs(eigs)
    re = e.real
    return _classify(re < -tol, re > tol, torch.isfinite(e))


def classify_map(eigs, tol: float = 1e-8):
    """Class of a map fixed point from the eigenvalues μ of DT: by |μ| against 1.

    all |μ| < 1 − tol: ``"attractor"``; all > 1 + tol: ``"repeller"``; mixed: ``"saddle"``; any
    ||μ| − 1| ≤ tol: ``"non-hyperbolic"``; any μ NaN or infinite: ``"nonfinite"``. No eigenvalues
    at all is a ``ValueError`` (an empty product of |μ| < 1 is not an attractor).

    Example:
        >>> classify_map(torch.tensor([0.5, -0.9]))
        'attractor'
    """
    check_nonnegative(tol, "tol")
    e = _as_eigs(eigs)
    mod = e.abs()
    return _classify(mod < 1 - tol, mod > 1 + tol, torch.isfinite(e))


def euler_map_eigs(eigs, eta: float) -> torch.Tensor:
    """Eigenvalues 1 + ηλ of the Euler map T = I + ηF from the flow eigenvalues λ of DF."""
    return 1 + eta * _as_eigs(eigs)


def euler_flip_etas(eigs) -> torch.Tensor:
    """For each flow eigenvalue λ, the η where |1 + ηλ| crosses 1: η = −2 Re λ / |λ|².

    Only stable directions (Re λ < 0) flip, from |1+ηλ| < 1 to > 1; others give ``inf``.
    """
    e = _as_eigs(eigs)
    mod2 = (e.abs() ** 2).real if torch.is_complex(e.abs()) else e.abs() ** 2
    re = e.real
    out = torch.where(re < 0, -2 * re / mod2.clamp(min=torch.finfo(mod2.dtype).tiny), torch.full_like(re, math.inf))
    return out


def euler_flip_eta(eigs) -> torch.Tensor | float:
    """The smallest η at which the Euler map's class differs from the flow's (per point).

    For a flow attractor this is the Euler stability limit min_λ −2 Re λ/|λ|² (= 2/λ_max of the
    Hessian for gradient descent on a minimum). ``inf`` when no eigenvalue is stable.

    Example:
        >>> float(euler_flip_eta(torch.tensor([-4.0, -1.0])))
        0.5
    """
    out = euler_flip_etas(eigs).amin(-1)
    return float(out) if out.ndim == 0 else out
