"""Solve step of a fixed-point search: damped Gauss–Newton (Levenberg–Marquardt) on q = ½‖r‖².

Each start takes δ = −(AᵀA + λ·σI)⁻¹Aᵀr, A = ∂r/∂y (Levenberg 1944; Marquardt 1963); a step that
lowers q is accepted and λ shrinks (÷3), otherwise λ grows (×8). Near a regular zero this is
Newton's method, far from one gradient descent on q. Two ways to solve for δ:

* dense — A formed by batched VJPs; AᵀA, Aᵀr, ‖A‖ cached per start and recomputed only where the
  last step was accepted;
* matrix-free — conjugate gradients (:func:`terrainlab.core.linalg.cg`) on (AᵀA + λI)δ = −Aᵀr with
  one JVP and one VJP per iteration, stopped by the inexact-Newton forcing term
  min(0.1, max‖r‖) (Dembo, Eisenstat & Steihaug 1982).

Every start ends ``CONV`` (a zero), ``SLOW`` (a minimum of q that is not a zero: a slow point of
Sussillo & Barak 2013) or ``FAIL``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.linalg import cg
from ._fp_problem import ResidualProblem
from .jacobian import _batched_jac

ACTIVE, CONV, SLOW, FAIL = 0, 1, 2, 3


@dataclass
class Solution:
    """Final working coordinates y (N, m), residuals r (N, m), per-start status, iterations run."""

    y: torch.Tensor
    r: torch.Tensor
    status: torch.Tensor
    n_iter: int


class _DenseNormalEquations:
    """AᵀA, Aᵀr and ‖A‖_F per start, cached until the start's accepted step moves it."""

    def __init__(self, problem: ResidualProblem, N: int, device):
        self.problem, self.N, self.device = problem, N, device
        self.have = torch.zeros(N, dtype=torch.bool, device=device)
        self.H = self.g = self.a = None
        self.dscale = None

    def moved(self, idx: torch.Tensor) -> None:
        self.have[idx] = False

    def step(self, act, y, r, la):
        """(δ, Aᵀr, ‖A‖) for the active starts ``act`` with damping ``la``."""
        need = ~self.have[act]
        if bool(need.any()):
            idx_new = act[need]
            A_new = _batched_jac(self.problem, y[idx_new])
            self.problem.n_vjp += idx_new.numel() * self.problem.m
            if self.H is None:
                m = self.problem.m
                self.H = torch.zeros(self.N, m, m, dtype=A_new.dtype, device=self.device)
                self.g = torch.zeros(self.N, m, dtype=A_new.dtype, device=self.device)
                self.a = torch.zeros(self.N, dtype=A_new.dtype, device=self.device)
            self.H[idx_new] = A_new.transpose(-1, -2) @ A_new
            self.g[idx_new] = (A_new.transpose(-1, -2) @ r[idx_new].unsqueeze(-1)).squeeze(-1)
            self.a[idx_new] = A_new.flatten(1).norm(dim=-1)
            self.have[idx_new] = True
            del A_new
        H, grad_q, anorm = self.H[act], self.g[act], self.a[act]
        # damping scale fixed per start at its first iteration (Marquardt's scaling would vanish
        # together with A at a slow point and stall the descent there)
        hdiag = H.diagonal(dim1=-2, dim2=-1).mean(-1)
        if self.dscale is None:
            self.dscale = torch.full((self.N,), math.nan, dtype=y.dtype, device=self.device)
        sc = self.dscale[act]
        sc = torch.where(torch.isnan(sc), hdiag, sc)
        self.dscale[act] = sc
        scale = torch.maximum(sc, hdiag).clamp(min=torch.finfo(y.dtype).tiny)
        lhs = H
        lhs.diagonal(dim1=-2, dim2=-1).add_((la * scale)[:, None])  # H is a fresh gathered copy
        delta = torch.linalg.solve_ex(lhs, -grad_q.unsqueeze(-1))[0].squeeze(-1)
        delta = torch.where(torch.isfinite(delta), delta, torch.zeros_like(delta))
        return delta, grad_q, anorm


def _matrix_free_step(problem: ResidualProblem, act, ya, ra, la, cg_iters: int):
    """(δ, Aᵀr, ‖A‖ estimate) by CG, A v by the double-VJP trick (v ↦ ∂/∂u ⟨Aᵀu, v⟩) and Aᵀw by one
    VJP, both over one retained graph."""
    m, n_act = problem.m, act.numel()
    with torch.enable_grad():
        yr = ya.detach().requires_grad_(True)
        out = problem(yr)
        u = torch.zeros_like(out, requires_grad=True)
        (gy,) = torch.autograd.grad(out, yr, u, create_graph=True)

    def Aop(v):
        problem.n_jvp += n_act
        return torch.autograd.grad(gy, u, v, retain_graph=True)[0]

    def ATop(w):
        problem.n_vjp += n_act
        return torch.autograd.grad(out, yr, w, retain_graph=True)[0]

    grad_q = ATop(ra)
    forcing = float(ra.norm(dim=-1).max().clamp(max=1e-1).clamp(min=1e-10))
    delta = cg(lambda v: ATop(Aop(v)) + la[:, None] * v, -grad_q, max_iter=cg_iters, rtol=forcing).x
    # ‖A‖ estimate for the slow-point test: ‖A u‖ along the normalised gradient direction
    tiny = torch.finfo(ya.dtype).tiny
    un = grad_q / grad_q.norm(dim=-1, keepdim=True).clamp(min=tiny)
    anorm = Aop(un).norm(dim=-1) * math.sqrt(m)
    return delta.detach(), grad_q.detach(), anorm


def levenberg_marquardt(problem: ResidualProblem, y0: torch.Tensor, *, method: str, max_iter: int,
                        slow_tol: float, patience: int | None, cg_iters: int,
                        failed: torch.Tensor | None = None) -> Solution:
    """Drive every start y0[i] to a zero of r (or a slow point) — see the module docstring.

    ``failed`` marks starts that fail before the first step (outside the box). A start stalls when
    λ > 1e8, or — with ``patience`` — when q fell by less than 1% over that many iterations; a
    stalled start is a slow point when ‖Aᵀr‖ ≤ slow_tol·max(‖A‖, 1)·‖r‖, else a failure.
    """
    N = y0.shape[0]
    dtype, device = y0.dtype, y0.device
    tiny = torch.finfo(dtype).tiny
    y = y0.clone()
    r = problem.evaluate(y)
    q = 0.5 * (r * r).sum(-1)
    status = torch.full((N,), ACTIVE, dtype=torch.long, device=device)
    status[~torch.isfinite(q)] = FAIL
    if failed is not None:
        status[failed] = FAIL
    lam = torch.full((N,), 1e-6, dtype=dtype, device=device)
    conv = r.norm(dim=-1) <= problem.tol_of(y)
    status[conv & (status == ACTIVE)] = CONV
    gnorm_rel = torch.full((N,), math.inf, dtype=dtype, device=device)
    dense = _DenseNormalEquations(problem, N, device) if method == "dense" else None
    q_check = q.clone()
    it = 0
    for it in range(1, max_iter + 1):
        act = torch.nonzero(status == ACTIVE).flatten()
        if act.numel() == 0:
            it -= 1
            break
        ya, ra, qa, la = y[act], r[act], q[act], lam[act]
        if dense is not None:
            delta, grad_q, anorm = dense.step(act, y, r, la)
        else:
            delta, grad_q, anorm = _matrix_free_step(problem, act, ya, ra, la, cg_iters)
        gnorm_rel[act] = grad_q.detach().norm(dim=-1) / (anorm.clamp(min=1.0) * ra.norm(dim=-1)).clamp(min=tiny)
        trial = problem.land(ya, delta.detach())
        rt = problem.evaluate(trial)
        qt = 0.5 * (rt * rt).sum(-1)
        accept = torch.isfinite(qt) & (qt < qa)
        idx_acc = act[accept]
        y[idx_acc], r[idx_acc], q[idx_acc] = trial[accept], rt[accept], qt[accept]
        if dense is not None:
            dense.moved(idx_acc)
        lam[act] = torch.where(accept, (la / 3).clamp(min=1e-12), la * 8)
        conv = (r[act].norm(dim=-1) <= problem.tol_of(y[act])) & (status[act] == ACTIVE)
        status[act[conv]] = CONV
        stalled = (~conv) & (status[act] == ACTIVE) & (lam[act] > 1e8)
        if patience is not None and it % patience == 0:
            stuck = q[act] > 0.99 * q_check[act]
            stalled |= (~conv) & (status[act] == ACTIVE) & stuck
            q_check[act] = q[act]
        slow = stalled & (gnorm_rel[act] <= slow_tol)
        status[act[slow]] = SLOW
        status[act[stalled & ~slow]] = FAIL
    # starts still active after max_iter were still descending q: failures (not slow points, which
    # must have stalled at a minimum of q; e.g. q of e^x keeps falling as x → −∞)
    status[status == ACTIVE] = FAIL
    return Solution(y=y, r=r, status=status, n_iter=it)
