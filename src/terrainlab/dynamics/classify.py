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

CLASSES = ("attractor", "repeller", "saddle", "non-hyperbolic")


def _as_eigs(eigs) -> torch.Tensor:
    e = eigs if torch.is_tensor(eigs) else torch.as_tensor(eigs)
    if e.ndim == 0:
        e = e.reshape(1)
    if not torch.is_complex(e):
        e = e.to(torch.complex128)
    return e


def _one(stable: torch.Tensor, unstable: torch.Tensor) -> str:
    if bool(stable.all()):
        return "attractor"
    if bool(unstable.all()):
        return "repeller"
    if bool((stable | unstable).all()):
        return "saddle"
    return "non-hyperbolic"


def _classify(stable, unstable):
    if stable.ndim == 1:
        return _one(stable, unstable)
    flat_s = stable.reshape(-1, stable.shape[-1])
    flat_u = unstable.reshape(-1, unstable.shape[-1])
    return [_one(a, b) for a, b in zip(flat_s, flat_u)]


def classify_flow(eigs, tol: float = 1e-8):
    """Class of a flow fixed point from the eigenvalues of DF: by the signs of Re λ.

    all Re λ < −tol: ``"attractor"``; all > tol: ``"repeller"``; mixed, none within tol:
    ``"saddle"``; any |Re λ| ≤ tol: ``"non-hyperbolic"``. A 1-D tensor gives a string, a (N, m)
    tensor a list of N strings.

    Example:
        >>> classify_flow(torch.tensor([-1.0, 2.0]))
        'saddle'
    """
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    re = _as_eigs(eigs).real
    return _classify(re < -tol, re > tol)


def classify_map(eigs, tol: float = 1e-8):
    """Class of a map fixed point from the eigenvalues μ of DT: by |μ| against 1.

    all |μ| < 1 − tol: ``"attractor"``; all > 1 + tol: ``"repeller"``; mixed: ``"saddle"``; any
    ||μ| − 1| ≤ tol: ``"non-hyperbolic"``.

    Example:
        >>> classify_map(torch.tensor([0.5, -0.9]))
        'attractor'
    """
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    mod = _as_eigs(eigs).abs()
    return _classify(mod < 1 - tol, mod > 1 + tol)


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
