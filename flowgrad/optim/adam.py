"""Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization"), its AMSGrad variant
(Reddi, Kale & Kumar 2018) and AdamW with decoupled weight decay (Loshchilov & Hutter 2019,
"Decoupled Weight Decay Regularization"). Lecture: "Iterative training by SGD"."""

from __future__ import annotations

from .optimizer import Optimizer, implementation_options

__all__ = ["Adam", "AdamW"]


def _lerp_(xp, a, b, w: float, tmp) -> None:
    """a ← a + w·(b − a) in place, with torch.lerp's two formulas (the second for w ≥ 0.5)."""
    xp.subtract(b, a, out=tmp)
    if abs(w) < 0.5:
        xp.multiply(tmp, w, out=tmp)
        xp.add(a, tmp, out=a)
    else:
        xp.multiply(tmp, 1.0 - w, out=tmp)
        xp.subtract(b, tmp, out=a)


def _ema_square_(xp, s, d, rho: float, tmp) -> None:
    """s ← ρs + (1−ρ)·d·d in place (torch's ``mul_(ρ).addcmul_(d, d, value=1−ρ)``)."""
    xp.multiply(d, 1 - rho, out=tmp)
    xp.multiply(tmp, d, out=tmp)
    xp.multiply(s, rho, out=s)
    xp.add(s, tmp, out=s)


class Adam(Optimizer):
    """m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − lr·m̂ / (√v̂ + eps), with the bias
    corrections m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ) (Kingma & Ba 2015, Algorithm 1).

    ``weight_decay`` adds wd·θ to the gradient (an L2 penalty, see ``regularizers``);
    ``decoupled_weight_decay=True`` (AdamW) shrinks θ ← θ(1 − lr·wd) instead. ``amsgrad`` uses
    the running maximum of v. Exactly torch.optim.Adam's update. State per parameter: ``step``,
    ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``), each of the parameter's shape.

    Example:
        >>> opt = fg.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999))
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False):
        name = type(self).__name__
        if not 0.0 <= lr:
            raise ValueError(f"{name}: invalid learning rate {lr} (expected lr >= 0)")
        if not 0.0 <= eps:
            raise ValueError(f"{name}: invalid epsilon {eps} (expected eps >= 0)")
        for i in (0, 1):
            if not 0.0 <= betas[i] < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {betas[i]} "
                                 "(expected 0 <= beta < 1)")
        if not 0.0 <= weight_decay:
            raise ValueError(f"{name}: invalid weight_decay {weight_decay} (expected >= 0)")
        defaults = {"lr": lr, "betas": (float(betas[0]), float(betas[1])), "eps": eps,
                    "weight_decay": weight_decay, "amsgrad": amsgrad, "maximize": maximize,
                    **implementation_options(name, foreach=foreach, capturable=capturable,
                                             differentiable=differentiable, fused=fused),
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _step_group(self, group) -> None:
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        amsgrad = group["amsgrad"]
        arrays = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
        for p, a, d, xp, st in self._prepared(group, arrays):
            step = st["step"]
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2 ** 0.5
            state = [st[name]._data for name in arrays]

            def update(a_c, d_c, m, v, *rest, xp=xp, step_size=step_size,
                       bias_correction2_sqrt=bias_correction2_sqrt):
                *vmax, u = rest
                _lerp_(xp, m, d_c, 1 - beta1, u)
                _ema_square_(xp, v, d_c, beta2, u)   # v ← β₂v + (1−β₂)·g·g
                if amsgrad:
                    xp.maximum(vmax[0], v, out=vmax[0])
                    v = vmax[0]
                xp.sqrt(v, out=u)                    # denom = √v / √(1−β₂ᵗ) + eps
                xp.divide(u, bias_correction2_sqrt, out=u)
                xp.add(u, eps, out=u)
                xp.divide(m, u, out=u)
                xp.multiply(u, step_size, out=u)     # θ ← θ − lr/(1−β₁ᵗ)·m/denom
                xp.subtract(a_c, u, out=a_c)
            self._each_chunk((a, d, *state), update, defer=d is p.grad._data)


class AdamW(Adam):
    """Adam with decoupled weight decay θ ← θ(1 − lr·wd) (Loshchilov & Hutter 2019); default
    ``weight_decay=1e-2`` as in torch.optim.AdamW.

    Example:
        >>> opt = fg.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         foreach=foreach, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
