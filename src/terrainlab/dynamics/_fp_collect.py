"""Deduplicate-and-classify step of a fixed-point search.

Converged starts are clustered into distinct points (greedy, best residual first, radius
``dedup_tol``); slow points likewise, except that a slow point within ``dedup_tol`` of a fixed point
*is* that fixed point. Each representative is then classified from the eigenvalues of its Jacobian
(flow class for fields, map class for maps; see :mod:`terrainlab.dynamics.classify`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._fp_problem import ResidualProblem
from ._fp_solve import CONV, SLOW
from .classify import classify_flow, classify_map, euler_flip_eta, euler_map_eigs
from .jacobian import _batched_jac


def cluster(points: torch.Tensor, order: torch.Tensor, tol: float):
    """Greedy clustering: representative = first point of ``order`` (best residual) still
    unassigned; returns (representative indices, labels)."""
    n = points.shape[0]
    labels = torch.full((n,), -1, dtype=torch.long, device=points.device)
    reps = []
    remaining = order.clone()
    while remaining.numel():
        i = int(remaining[0])
        dist = (points[remaining] - points[i]).norm(dim=-1)
        close = dist <= tol
        labels[remaining[close]] = len(reps)
        reps.append(i)
        remaining = remaining[~close]
    return reps, labels


@dataclass
class Distinct:
    """reps: start index of each distinct point; slow: whether each is a slow point; labels: (N,)
    point index each start reached (−1: failed)."""

    reps: list
    slow: list
    labels: torch.Tensor


def _merge_slow_into_fixed(s_final, idx, rep_local, lab_local, reps, dedup_tol, device):
    """Slow-point clusters that coincide with an existing fixed point take its label; the others
    become new points. Returns (labels for ``idx``, local representatives kept)."""
    fixed_pts = s_final[torch.tensor(reps, device=device)]
    keep = []
    for j, i in enumerate(rep_local):
        dist = (fixed_pts - s_final[idx[i]]).norm(dim=-1)
        if bool((dist <= dedup_tol).any()):
            lab_local[lab_local == j] = -(int(torch.argmin(dist)) + 2)  # map to existing
        else:
            keep.append(j)
    new_lab = torch.full_like(lab_local, -1)
    for k, j in enumerate(keep):
        new_lab[lab_local == j] = len(reps) + k
    existing = lab_local <= -2
    new_lab[existing] = -lab_local[existing] - 2
    return new_lab, [rep_local[j] for j in keep]


def deduplicate(s_final: torch.Tensor, res_norm: torch.Tensor, status: torch.Tensor, dedup_tol: float) -> Distinct:
    """Distinct fixed points first, then distinct slow points not already among them."""
    device = s_final.device
    labels = torch.full((s_final.shape[0],), -1, dtype=torch.long, device=device)
    reps: list[int] = []
    slow_flags: list[bool] = []
    for st in (CONV, SLOW):
        idx = torch.nonzero(status == st).flatten()
        if idx.numel() == 0:
            continue
        order = torch.argsort(res_norm[idx])
        rep_local, lab_local = cluster(s_final[idx], order, dedup_tol)
        if st == SLOW and reps:
            labels[idx], reps_add = _merge_slow_into_fixed(s_final, idx, rep_local, lab_local, reps, dedup_tol, device)
        else:
            labels[idx] = lab_local + len(reps)
            reps_add = rep_local
        reps.extend(int(idx[i]) for i in reps_add)
        slow_flags.extend([st == SLOW] * len(reps_add))
    return Distinct(reps=reps, slow=slow_flags, labels=labels)


@dataclass
class Classes:
    """eigenvalues (M, m) sorted by real part (descending), kinds, map_kinds, flip_eta (M,)."""

    eigenvalues: torch.Tensor
    kinds: list
    map_kinds: list | None
    flip_eta: torch.Tensor


def classify_points(problem: ResidualProblem, y_reps: torch.Tensor, *, kind: str, eta: float | None,
                    class_tol: float) -> Classes:
    """Eigenvalues of DF (fields) or DT = I + ∂r (maps) at each point, and its class."""
    M, m, device = y_reps.shape[0], problem.m, y_reps.device
    if M:
        A = _batched_jac(problem, y_reps)
        problem.n_vjp += M * m
        # eigenvalues in float64 on the CPU: LAPACK's nonsymmetric solver, whatever the precision
        work = A.to(torch.float64) if A.dtype in (torch.float16, torch.bfloat16, torch.float32) else A
        eig = torch.linalg.eigvals(work.detach().cpu()).to(device)
        if kind == "map":
            eig = eig + 1
        order = torch.argsort(eig.real, dim=-1, descending=True)
        eig = torch.gather(eig, -1, order)
    else:
        eig = torch.zeros(0, m, dtype=torch.complex128, device=device)
    if kind == "field":
        kinds = classify_flow(eig, class_tol) if M else []
        map_kinds = (classify_map(euler_map_eigs(eig, eta), class_tol) if M else []) if eta is not None else None
        flip = euler_flip_eta(eig) if M else torch.zeros(0, dtype=torch.float64, device=device)
    else:
        kinds = classify_map(eig, class_tol) if M else []
        map_kinds = list(kinds)
        flip = torch.full((M,), math.inf, dtype=torch.float64, device=device)
    flip = flip if torch.is_tensor(flip) else torch.tensor([flip], dtype=torch.float64)
    return Classes(eigenvalues=eig, kinds=list(kinds), map_kinds=map_kinds, flip_eta=flip)
