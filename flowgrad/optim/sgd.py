"""Stochastic gradient descent with momentum and Nesterov momentum (lecture: "Iterative training
by SGD"; Sutskever, Martens, Dahl & Hinton 2013, "On the importance of initialization and
momentum in deep learning")."""

from __future__ import annotations

from .optimizer import Optimizer, _wrap, implementation_options

__all__ = ["SGD"]


# parameters above this many numbers take the chunked update; smaller ones one expression
_CHUNKED_ABOVE = 4096

class SGD(Optimizer):
    """θ ← θ − lr·v, with v = g (+ weight_decay·θ), or with momentum μ:
    b ← μ·b + (1 − dampening)·g (b = g at the first step), v = b, or v = g + μ·b (Nesterov).

    Exactly torch.optim.SGD's update; ``maximize`` ascends. State per parameter:
    ``momentum_buffer`` (same shape as the parameter) when ``momentum != 0``.

    Example:
        >>> opt = fg.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None):
        if lr < 0.0:
            raise ValueError(f"SGD: invalid learning rate {lr} (expected lr >= 0)")
        if momentum < 0.0:
            raise ValueError(f"SGD: invalid momentum {momentum} (expected momentum >= 0)")
        if weight_decay < 0.0:
            raise ValueError(f"SGD: invalid weight_decay {weight_decay} (expected >= 0)")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    **implementation_options("SGD", foreach=foreach,
                                             differentiable=differentiable, fused=fused)}
        super().__init__(params, defaults)

    def _step_group(self, group) -> None:
        lr = group["lr"]
        momentum = group["momentum"]
        dampening = group["dampening"]
        wd = group["weight_decay"]
        nesterov = group["nesterov"]
        maximize = group["maximize"]
        state = self.state
        for p, a, d, xp in self._with_grads(group):
            d = self._direction(a, d, xp, wd, maximize)  # g + wd·θ, −g to maximize
            if momentum == 0:
                if a.size > _CHUNKED_ABOVE:  # θ ← θ − lr·g
                    def plain(a_c, d_c, u, xp=xp):
                        xp.multiply(d_c, lr, out=u)
                        xp.subtract(a_c, u, out=a_c)
                    self._each_chunk((a, d), plain)
                else:  # a small temporary costs less than fetching the scratch
                    a -= lr * d
                p._version += 1
                continue
            st = state[p]
            buf = st.get("momentum_buffer")
            first = buf is None
            if first:
                b = xp.array(d, copy=True)  # an array even for a 0-d parameter
                st["momentum_buffer"] = _wrap(b)
            else:
                b = buf._data

            def momentum_step(a_c, d_c, b_c, u, xp=xp, first=first):
                if not first:  # b ← μ·b + (1 − dampening)·g
                    xp.multiply(b_c, momentum, out=b_c)
                    if dampening != 0:
                        xp.multiply(d_c, 1 - dampening, out=u)
                        xp.add(b_c, u, out=b_c)
                    else:
                        xp.add(b_c, d_c, out=b_c)
                if nesterov:  # v = g + μ·b
                    xp.multiply(b_c, momentum, out=u)
                    xp.add(d_c, u, out=u)
                    xp.multiply(u, lr, out=u)
                else:
                    xp.multiply(b_c, lr, out=u)
                xp.subtract(a_c, u, out=a_c)  # θ ← θ − lr·v
            self._each_chunk((a, d, b), momentum_step, defer=d is p.grad._data)
            p._version += 1
