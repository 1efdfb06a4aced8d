"""Bregman generators ψ for mirror descent: the mirror map ∇ψ, its inverse ∇ψ*, and D_ψ.

Mirror descent (Nemirovski & Yudin 1983; Beck & Teboulle 2003) takes the gradient step in the dual
coordinates y = ∇ψ(θ):

    ∇ψ(θ_{t+1}) = ∇ψ(θ_t) − η ∇L(θ_t),

explicit Euler on the dual flow d/dt ∇ψ(θ) = −∇L(θ), i.e. the Hessian-metric gradient flow
θ' = −(∇²ψ(θ))⁻¹ ∇L(θ) (Alvarez, Bolte & Brahic 2004). ``SquaredEuclidean`` gives gradient descent;
``NegativeEntropy`` gives exponentiated gradient θ ∝ θ·exp(−η∇L) (Kivinen & Warmuth 1997), whose
Bregman divergence is the KL divergence.

Example:
    >>> psi = NegativeEntropy()
    >>> p = torch.tensor([0.2, 0.3, 0.5]); q = torch.tensor([1 / 3] * 3)
    >>> float(psi.divergence(p, q))   # = KL(p‖q)
    0.0689...
"""

from __future__ import annotations

import torch


class BregmanGenerator:
    """A strictly convex ψ. Subclasses implement ``value``, ``grad``, ``grad_conj``, ``metric_diag``."""

    def value(self, x: torch.Tensor, dim: int | None = -1) -> torch.Tensor:
        """ψ(x), summed over ``dim`` (all entries when None)."""
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """The mirror map x ↦ ∇ψ(x) (primal → dual)."""
        raise NotImplementedError

    def grad_conj(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse mirror map y ↦ ∇ψ*(y) (dual → primal)."""
        raise NotImplementedError

    def metric_diag(self, x: torch.Tensor) -> torch.Tensor:
        """Diagonal of ∇²ψ(x), the metric of the continuous-time mirror flow."""
        raise NotImplementedError

    def validate(self, x: torch.Tensor, name: str = "params") -> None:
        return None

    def divergence(self, x: torch.Tensor, y: torch.Tensor, dim: int | None = -1) -> torch.Tensor:
        """D_ψ(x, y) = ψ(x) − ψ(y) − ⟨∇ψ(y), x − y⟩, summed over ``dim`` (all when None)."""
        lin = self.grad(y) * (x - y)
        lin = lin.sum() if dim is None else lin.sum(dim)
        return self.value(x, dim) - self.value(y, dim) - lin


class SquaredEuclidean(BregmanGenerator):
    """ψ(x) = ½‖x‖²: ∇ψ = identity, D_ψ(x, y) = ½‖x − y‖²; mirror descent is gradient descent."""

    def value(self, x, dim=-1):
        return 0.5 * ((x * x).sum() if dim is None else (x * x).sum(dim))

    def grad(self, x):
        return x

    def grad_conj(self, y):
        return y

    def metric_diag(self, x):
        return torch.ones_like(x)

    def __repr__(self):
        return "SquaredEuclidean()"


class NegativeEntropy(BregmanGenerator):
    """ψ(x) = Σ x log x − x on the positive orthant, or restricted to the simplex along ``dim``.

    ∇ψ(x) = log x;  on the orthant ∇ψ*(y) = exp(y);  on the simplex ∇ψ*(y) = softmax(y) (the
    normalisation is the Bregman projection back onto the simplex). D_ψ is the generalised KL
    Σ x log(x/y) − x + y, which is KL(x‖y) on the simplex.
    """

    def __init__(self, simplex: bool = True, dim: int = -1):
        self.simplex, self.dim = bool(simplex), dim

    def value(self, x, dim=-1):
        tiny = torch.finfo(x.dtype).tiny
        e = torch.where(x > 0, x * torch.log(x.clamp(min=tiny)), torch.zeros_like(x)) - x
        return e.sum() if dim is None else e.sum(dim)

    def grad(self, x):
        return torch.log(x.clamp(min=torch.finfo(x.dtype).tiny))

    def grad_conj(self, y):
        return torch.softmax(y, dim=self.dim) if self.simplex else torch.exp(y)

    def metric_diag(self, x):
        return 1.0 / x

    def validate(self, x, name="params"):
        if bool((x <= 0).any()):
            raise ValueError(f"{name} must be strictly positive for NegativeEntropy")
        if self.simplex:
            s = x.sum(self.dim)
            tol = 1e-5 if x.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-9
            if not bool(((s - 1).abs() <= tol * x.shape[self.dim]).all()):
                raise ValueError(f"{name} must lie on the simplex (sum to 1 along dim {self.dim})")

    def __repr__(self):
        return f"NegativeEntropy(simplex={self.simplex}, dim={self.dim})"


def mirror_step(psi: BregmanGenerator, theta: torch.Tensor, grad: torch.Tensor, lr: float) -> torch.Tensor:
    """θ' = ∇ψ*(∇ψ(θ) − η g)."""
    return psi.grad_conj(psi.grad(theta) - lr * grad)
