"""More adaptive-step successors of SGD, each exactly torch.optim's update: Adadelta (Zeiler
2012, "ADADELTA: An Adaptive Learning Rate Method"), Adamax (Kingma & Ba 2015, section 7.1),
NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam") and RAdam (Liu et al. 2020,
"On the Variance of the Adaptive Learning Rate and Beyond"). Lecture: "Iterative training by
SGD"."""

from __future__ import annotations

import numpy as np

from .adam import _ema_square_, _lerp_
from .optimizer import Optimizer, implementation_options

__all__ = ["Adadelta", "Adamax", "NAdam", "RAdam"]


def _check(who: str, lr, eps, weight_decay, betas=None) -> None:
    for name, value in (("learning rate", lr), ("epsilon", eps),
                        ("weight_decay", weight_decay)):
        if not 0.0 <= value:
            raise ValueError(f"{who}: invalid {name} {value} (expected >= 0)")
    for i, beta in enumerate(betas or ()):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{who}: invalid beta parameter at index {i}: {beta} "
                             "(expected 0 <= beta < 1)")


class Adadelta(Optimizer):
    """s ← ρs + (1−ρ)g², δ = √(a + eps) / √(s + eps) · g, a ← ρa + (1−ρ)δ², θ ← θ − lr·δ
    (Zeiler 2012, Algorithm 1; ``lr`` scales the step, 1.0 is the paper's). State per
    parameter: ``step``, ``square_avg``, ``acc_delta``.

    Example:
        >>> opt = fg.optim.Adadelta(params, rho=0.95)
    """

    _state_arrays = ("square_avg", "acc_delta")

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False):
        _check("Adadelta", lr, eps, weight_decay)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Adadelta: invalid rho {rho} (expected 0 <= rho <= 1)")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize,
                    **implementation_options("Adadelta", capturable=capturable, foreach=foreach,
                                             differentiable=differentiable)}
        super().__init__(params, defaults)

    def _step_group(self, group) -> None:
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        for _, a, d, xp, st in self._prepared(group, self._state_arrays):
            s, acc = st["square_avg"]._data, st["acc_delta"]._data
            u, delta = self._scratch(a, 1), self._scratch(a, 2)
            _ema_square_(xp, s, d, rho, u)
            xp.add(s, eps, out=u)                   # std = √(s + eps)
            xp.sqrt(u, out=u)
            xp.add(acc, eps, out=delta)             # δ = √(acc + eps) / std · g
            xp.sqrt(delta, out=delta)
            xp.divide(delta, u, out=delta)
            xp.multiply(delta, d, out=delta)
            _ema_square_(xp, acc, delta, rho, u)
            xp.multiply(delta, lr, out=delta)
            xp.subtract(a, delta, out=a)


class Adamax(Optimizer):
    """m ← β₁m + (1−β₁)g, u ← max(β₂u, |g| + eps), θ ← θ − lr/(1−β₁ᵗ) · m/u: Adam with the
    infinity norm in place of the second moment (Kingma & Ba 2015, Algorithm 2). State per
    parameter: ``step``, ``exp_avg``, ``exp_inf``.

    Example:
        >>> opt = fg.optim.Adamax(params, lr=2e-3)
    """

    _state_arrays = ("exp_avg", "exp_inf")

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False):
        _check("Adamax", lr, eps, weight_decay, betas)
        defaults = {"lr": lr, "betas": (float(betas[0]), float(betas[1])), "eps": eps,
                    "weight_decay": weight_decay, "maximize": maximize,
                    **implementation_options("Adamax", foreach=foreach,
                                             differentiable=differentiable,
                                             capturable=capturable)}
        super().__init__(params, defaults)

    def _step_group(self, group) -> None:
        lr, eps = group["lr"], group["eps"]
        beta1, beta2 = group["betas"]
        for _, a, d, xp, st in self._prepared(group, self._state_arrays):
            m, inf = st["exp_avg"]._data, st["exp_inf"]._data
            u = self._scratch(a, 1)
            _lerp_(xp, m, d, 1 - beta1, u)
            xp.multiply(inf, beta2, out=inf)
            xp.abs(d, out=u)
            xp.add(u, eps, out=u)
            xp.maximum(inf, u, out=inf)
            clr = lr / (1 - beta1 ** st["step"])
            xp.divide(m, inf, out=u)
            xp.multiply(u, clr, out=u)
            xp.subtract(a, u, out=a)


class NAdam(Optimizer):
    """Adam with Nesterov momentum (Dozat 2016): the momentum coefficient follows
    μₜ = β₁(1 − ½·0.96^(t·momentum_decay)), and the step mixes the current gradient and the
    look-ahead moment, θ ← θ − lr[(1−μₜ)/(1−Πμ) g + μₜ₊₁/(1−Πμ·μₜ₊₁) m] / (√v̂ + eps). State per
    parameter: ``step``, ``mu_product`` (a float32 scalar, as in torch), ``exp_avg``,
    ``exp_avg_sq``.

    Example:
        >>> opt = fg.optim.NAdam(params, lr=2e-3)
    """

    _state_arrays = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False):
        _check("NAdam", lr, eps, weight_decay, betas)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"NAdam: invalid momentum_decay {momentum_decay} (expected >= 0)")
        defaults = {"lr": lr, "betas": (float(betas[0]), float(betas[1])), "eps": eps,
                    "weight_decay": weight_decay, "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize,
                    **implementation_options("NAdam", foreach=foreach, capturable=capturable,
                                             differentiable=differentiable)}
        super().__init__(params, defaults)

    def _step_group(self, group) -> None:
        lr, eps, decay = group["lr"], group["eps"], group["momentum_decay"]
        beta1, beta2 = group["betas"]
        for _, a, d, xp, st in self._prepared(group, self._state_arrays):
            step = st["step"]
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * decay)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * decay)))
            mu_product = float(np.float32(st.get("mu_product", 1.0)) * np.float32(mu))
            st["mu_product"] = mu_product
            m, v = st["exp_avg"]._data, st["exp_avg_sq"]._data
            u, denom = self._scratch(a, 1), self._scratch(a, 2)
            _lerp_(xp, m, d, 1 - beta1, u)
            _ema_square_(xp, v, d, beta2, u)
            xp.divide(v, 1 - beta2 ** step, out=denom)     # √v̂ + eps
            xp.sqrt(denom, out=denom)
            xp.add(denom, eps, out=denom)
            xp.divide(d, denom, out=u)
            xp.multiply(u, -lr * (1.0 - mu) / (1.0 - mu_product), out=u)
            xp.add(a, u, out=a)
            xp.divide(m, denom, out=u)
            xp.multiply(u, (-lr * mu_next) / (1.0 - mu_product * mu_next), out=u)
            xp.add(a, u, out=a)


class RAdam(Optimizer):
    """Rectified Adam (Liu et al. 2020): while the variance of the adaptive rate is not yet
    tractable (ρₜ ≤ 5, the first steps) the step is plain momentum, lr·m̂; afterwards it is
    Adam's, lr·m̂·rₜ/(√v̂ + eps), scaled by the rectification rₜ. State per parameter:
    ``step``, ``exp_avg``, ``exp_avg_sq``.

    Example:
        >>> opt = fg.optim.RAdam(params, lr=1e-3)
    """

    _state_arrays = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False):
        _check("RAdam", lr, eps, weight_decay, betas)
        defaults = {"lr": lr, "betas": (float(betas[0]), float(betas[1])), "eps": eps,
                    "weight_decay": weight_decay, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay,
                    **implementation_options("RAdam", foreach=foreach, capturable=capturable,
                                             differentiable=differentiable)}
        super().__init__(params, defaults)

    def _step_group(self, group) -> None:
        lr, eps = group["lr"], group["eps"]
        beta1, beta2 = group["betas"]
        rho_inf = 2 / (1 - beta2) - 1
        for _, a, d, xp, st in self._prepared(group, self._state_arrays):
            step = st["step"]
            m, v = st["exp_avg"]._data, st["exp_avg_sq"]._data
            u, step_size = self._scratch(a, 1), self._scratch(a, 2)
            _lerp_(xp, m, d, 1 - beta1, u)
            _ema_square_(xp, v, d, beta2, u)
            bias_correction2 = 1 - beta2 ** step
            rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
            xp.divide(m, 1 - beta1 ** step, out=step_size)   # m̂·lr
            xp.multiply(step_size, lr, out=step_size)
            if rho_t > 5.0:
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                        / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                xp.sqrt(v, out=u)                              # √(1−β₂ᵗ) / (√v + eps)
                xp.add(u, eps, out=u)
                xp.divide(bias_correction2 ** 0.5, u, out=u)
                xp.multiply(step_size, u, out=step_size)
                xp.multiply(step_size, rect, out=step_size)
            xp.subtract(a, step_size, out=a)
