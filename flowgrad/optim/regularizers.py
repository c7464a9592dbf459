"""Regularizers Ω(θ) for the training criterion L = loss + λ·Ω(θ) (lecture: "Iterative
training by SGD": Δ = −∇θ l(f(x; θ), y) − λ∇θ Ω(θ)).

Both return a differentiable 0-d Tensor, so ``(loss + lam * l2_penalty(params)).backward()``
puts λ∇Ω into every ``.grad``.

L2 and weight decay: ∇(λ/2·Σθ²) = λθ, so with plain SGD (and SGD with momentum, RMSprop, Adagrad,
Adam) adding ``(lam / 2) * l2_penalty(params)`` to the loss is the same update as the
optimizer's ``weight_decay=lam``. With Adam the L2 gradient is rescaled by the adaptive
denominator; AdamW's decoupled weight decay θ ← θ(1 − lr·λ) is not (Loshchilov & Hutter 2019),
and is not an L2 penalty.
"""

from __future__ import annotations

from ..tensor import Tensor, tensor

__all__ = ["l2_penalty", "l1_penalty"]


def _params(params) -> list[Tensor]:
    if isinstance(params, Tensor):
        return [params]
    out = []
    for p in params:
        if isinstance(p, dict):  # an optimizer's param groups
            out.extend(p["params"])
        else:
            out.append(p)
    return out


def l2_penalty(params) -> Tensor:
    """Ω(θ) = Σ_p Σ_i p_i² over the given tensors (squared Frobenius norms), shape (); its
    gradient is 2θ, so ``lam / 2 * l2_penalty`` matches ``weight_decay=lam``.

    Example:
        >>> loss = mse + 1e-4 / 2 * fg.optim.l2_penalty([w1, w2])
    """
    total = None
    for p in _params(params):
        term = (p * p).sum()
        total = term if total is None else total + term
    return tensor(0.0) if total is None else total


def l1_penalty(params) -> Tensor:
    """Ω(θ) = Σ_p Σ_i |p_i| (sparsity-inducing), shape (); its gradient is sign(θ) (0 at 0).

    Example:
        >>> loss = mse + 1e-5 * fg.optim.l1_penalty([w1, w2])
    """
    total = None
    for p in _params(params):
        term = p.abs().sum()
        total = term if total is None else total + term
    return tensor(0.0) if total is None else total
