"""RMSprop (Tieleman & Hinton 2012, Coursera "Neural Networks for Machine Learning", lecture 6.5;
the centered variant after Graves 2013) and Adagrad (Duchi, Hazan & Singer 2011, "Adaptive
Subgradient Methods for Online Learning and Stochastic Optimization"). Lecture: "Iterative
training by SGD"."""

from __future__ import annotations

from .adam import _ema_square_, _lerp_
from .optimizer import Optimizer, _full_like, _wrap, implementation_options

__all__ = ["RMSprop", "Adagrad"]


class RMSprop(Optimizer):
    """s ← αs + (1−α)g², θ ← θ − lr·g / (√s + eps); ``centered`` divides by √(s − ḡ²) + eps
    with ḡ the running mean of g; ``momentum`` μ keeps b ← μb + g/(√s + eps), θ ← θ − lr·b.

    Exactly torch.optim.RMSprop's update (Tieleman & Hinton 2012). State per parameter:
    ``step``, ``square_avg`` (and ``momentum_buffer``, ``grad_avg``), each of the parameter's
    shape.

    Example:
        >>> opt = fg.optim.RMSprop(params, lr=1e-2, alpha=0.99, centered=True, momentum=0.9)
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False):
        for name, value in (("learning rate", lr), ("epsilon", eps), ("momentum", momentum),
                            ("weight_decay", weight_decay), ("alpha", alpha)):
            if not 0.0 <= value:
                raise ValueError(f"RMSprop: invalid {name} {value} (expected >= 0)")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay, "maximize": maximize,
                    **implementation_options("RMSprop", foreach=foreach, capturable=capturable,
                                             differentiable=differentiable)}
        super().__init__(params, defaults)

    def _step_group(self, group) -> None:
        lr = group["lr"]
        alpha = group["alpha"]
        eps = group["eps"]
        wd = group["weight_decay"]
        momentum = group["momentum"]
        centered = group["centered"]
        maximize = group["maximize"]
        state = self.state
        for p, a, d, xp in self._with_grads(group):
            st = state[p]
            if not st:
                st["step"] = 0.0
                st["square_avg"] = _wrap(_full_like(a))
                if momentum > 0:
                    st["momentum_buffer"] = _wrap(_full_like(a))
                if centered:
                    st["grad_avg"] = _wrap(_full_like(a))
            st["step"] += 1.0
            d = self._direction(a, d, xp, wd, maximize)  # g + wd·θ, −g to maximize
            s = st["square_avg"]._data
            u = self._scratch(a, 1)
            _ema_square_(xp, s, d, alpha, u)         # s ← αs + (1−α)·g·g
            if centered:
                ga = st["grad_avg"]._data
                _lerp_(xp, ga, d, 1 - alpha, u)
                xp.multiply(ga, ga, out=u)          # avg = √(s − ḡ²)
                xp.subtract(s, u, out=u)
                xp.sqrt(u, out=u)
            else:
                xp.sqrt(s, out=u)
            xp.add(u, eps, out=u)
            if momentum > 0:
                b = st["momentum_buffer"]._data
                xp.multiply(b, momentum, out=b)
                xp.divide(d, u, out=u)
                xp.add(b, u, out=b)
                xp.multiply(b, lr, out=u)
            else:
                xp.divide(d, u, out=u)
                xp.multiply(u, lr, out=u)
            xp.subtract(a, u, out=a)
            p._version += 1


class Adagrad(Optimizer):
    """s ← s + g², θ ← θ − lr_t·g / (√s + eps), lr_t = lr / (1 + (t−1)·lr_decay)
    (Duchi et al. 2011). Exactly torch.optim.Adagrad's update. State per parameter (created for
    every parameter at construction, as in torch): ``step``, ``sum`` (the parameter's shape,
    starting at ``initial_accumulator_value``).

    Example:
        >>> opt = fg.optim.Adagrad(params, lr=1e-2, lr_decay=1e-4)
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None):
        for name, value in (("learning rate", lr), ("lr_decay", lr_decay),
                            ("weight_decay", weight_decay),
                            ("initial_accumulator_value", initial_accumulator_value),
                            ("epsilon", eps)):
            if not 0.0 <= value:
                raise ValueError(f"Adagrad: invalid {name} {value} (expected >= 0)")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "maximize": maximize,
                    **implementation_options("Adagrad", foreach=foreach,
                                             differentiable=differentiable, fused=fused)}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state[p]
                st["step"] = 0.0
                st["sum"] = _wrap(_full_like(p._data, initial_accumulator_value))

    def _step_group(self, group) -> None:
        lr = group["lr"]
        lr_decay = group["lr_decay"]
        eps = group["eps"]
        wd = group["weight_decay"]
        maximize = group["maximize"]
        state = self.state
        for p, a, d, xp in self._with_grads(group):
            st = state[p]
            if not st:  # a parameter added with add_param_group after construction
                st["step"] = 0.0
                st["sum"] = _wrap(_full_like(a, self.defaults["initial_accumulator_value"]))
            step = st["step"] + 1.0
            st["step"] = step
            d = self._direction(a, d, xp, wd, maximize)  # g + wd·θ, −g to maximize
            clr = lr / (1 + (step - 1) * lr_decay)
            s = st["sum"]._data
            u = self._scratch(a, 1)
            xp.multiply(d, d, out=u)                 # s ← s + g·g
            xp.add(s, u, out=s)
            xp.sqrt(s, out=u)
            xp.add(u, eps, out=u)
            xp.divide(d, u, out=u)
            xp.multiply(u, clr, out=u)
            xp.subtract(a, u, out=a)
            p._version += 1
