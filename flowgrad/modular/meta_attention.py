"""Fast and slow learning of modular networks: meta-learning with the parameters split into the
modules' dynamics and their attention (Madan, Ke, Goyal, Schölkopf and Bengio, "Fast and Slow
Learning of Recurrent Independent Mechanisms", ICLR 2021, arXiv 2105.08710: Meta-RIMs).

What the paper states (abstract and Figure 1 caption): the parameters of the dynamically
selected modules change quickly, in the inner loop, while the parameters of the two attention
mechanisms (input attention and communication attention) are slowly changing meta-parameters,
learned in the outer loop; the reverse assignment (attention fast, modules slow) "does not work
nearly as well". Both assignments are available here: ``fast="modules"`` (the paper's
Meta-RIMs, the default) and ``fast="attention"`` (the reverse: only the attention is adapted on
each support batch, the modules learn slowly across batches).

One :meth:`MetaAttentionLearner.step` (support, query):

1. inner loop: ``inner_steps`` updates of the FAST parameters only, on the support batch (plain
   SGD with ``inner_lr`` unless another optimizer is given); the slow parameters do not move;
2. outer loop: the loss on the query batch, at the adapted fast parameters, updates the SLOW
   parameters only (Adam with ``outer_lr`` unless another optimizer is given).

The outer gradient is first-order: it is the gradient with respect to the slow parameters at
the adapted fast parameters, without the terms that flow through the inner updates (flowgrad's
engine computes first derivatives only; the paper's exact meta-gradient, its inner optimizer,
its number of inner steps and whether the fast parameters are reset between episodes were not
found in its public text: unverified). Fast parameters persist across steps (they are not reset
to an initialisation), as in a two-timescale reading of the paper.

Which parameters are "attention": those of the submodules that are instances of
``InputAttention``, ``CommunicationAttention``, SCOFF's ``SchemaAttention`` and
``SharedWorkspace`` (or the classes given in ``attention_types``); every other parameter
(the recurrent modules, and any encoder or output layer) belongs to "modules".
"""

from __future__ import annotations

from collections.abc import Callable

from ..nn.module import Module
from ..optim import SGD, Adam

__all__ = ["attention_types", "split_parameters", "MetaAttentionLearner"]

GROUPS = ("modules", "attention")


def attention_types() -> tuple:
    """The module classes whose parameters count as attention parameters."""
    from .attention import CommunicationAttention, InputAttention
    from .scoff import SchemaAttention
    from .workspace import SharedWorkspace

    return (InputAttention, CommunicationAttention, SchemaAttention, SharedWorkspace)


def split_parameters(model: Module, types: tuple | None = None) -> tuple[dict, dict]:
    """(attention, modules): two dicts name -> Parameter, in ``named_parameters`` order. A
    parameter is an attention parameter when it belongs to a submodule that is an instance of
    one of ``types`` (default :func:`attention_types`)."""
    types = attention_types() if types is None else tuple(types)
    inside = set()
    for sub in model.modules():
        if isinstance(sub, types):
            inside.update(id(p) for p in sub.parameters())
    attention, modules = {}, {}
    for name, p in model.named_parameters():
        (attention if id(p) in inside else modules)[name] = p
    return attention, modules


class MetaAttentionLearner:
    """Inner loop on the fast parameters, outer loop on the slow ones (see the module
    docstring).

    Args:
        model: a Module holding attention submodules (RIMCell, SCOFFCell, ... inside).
        loss_fn: ``loss_fn(model, batch) -> scalar Tensor``.
        fast: 'modules' (Meta-RIMs: the modules adapt fast, the attention is the slow
            meta-parameter) or 'attention' (the reverse).
        inner_lr, inner_steps: the inner loop's SGD rate and number of updates per step.
        outer_lr: Adam's rate for the slow parameters.
        inner_optimizer, outer_optimizer: ``factory(params) -> Optimizer`` to replace plain
            SGD / Adam (each receives only its group's parameters).
        types: the attention classes (default :func:`attention_types`).
    """

    def __init__(self, model: Module, loss_fn: Callable, fast: str = "modules",
                 inner_lr: float = 0.01, inner_steps: int = 1, outer_lr: float = 1e-3,
                 inner_optimizer: Callable | None = None,
                 outer_optimizer: Callable | None = None, types: tuple | None = None) -> None:
        if fast not in GROUPS:
            raise ValueError(f"MetaAttentionLearner: fast must be one of {GROUPS}, got "
                             f"{fast!r}")
        if not isinstance(inner_steps, int) or isinstance(inner_steps, bool) \
                or inner_steps < 0:
            raise ValueError(f"MetaAttentionLearner: inner_steps must be an int >= 0, got "
                             f"{inner_steps!r}")
        types = attention_types() if types is None else tuple(types)
        attention, modules = split_parameters(model, types)
        if not attention:
            raise ValueError("MetaAttentionLearner: the model has no attention parameters "
                             f"(no submodule of the types {[t.__name__ for t in types]})")
        if not modules:
            raise ValueError("MetaAttentionLearner: the model has only attention parameters")
        self.model = model
        self.loss_fn = loss_fn
        self.fast = fast
        self.inner_steps = inner_steps
        self.fast_parameters = attention if fast == "attention" else modules
        self.slow_parameters = modules if fast == "attention" else attention
        fast_list = list(self.fast_parameters.values())
        slow_list = list(self.slow_parameters.values())
        self.inner_optimizer = (inner_optimizer(fast_list) if inner_optimizer is not None
                                else SGD(fast_list, lr=inner_lr))
        self.outer_optimizer = (outer_optimizer(slow_list) if outer_optimizer is not None
                                else Adam(slow_list, lr=outer_lr))

    def _gradients(self, batch):
        self.model.zero_grad()
        loss = self.loss_fn(self.model, batch)
        loss.backward()
        return float(loss.item())

    def adapt(self, support) -> list[float]:
        """The inner loop: ``inner_steps`` updates of the fast parameters on ``support``;
        returns the loss before each update. The slow parameters are not changed."""
        losses = []
        for _ in range(self.inner_steps):
            losses.append(self._gradients(support))
            self.inner_optimizer.step()
        self.model.zero_grad()
        return losses

    def outer_step(self, query) -> float:
        """The outer loop: one update of the slow parameters from the loss on ``query`` at
        the current (adapted) fast parameters (first-order); returns that loss."""
        loss = self._gradients(query)
        self.outer_optimizer.step()
        self.model.zero_grad()
        return loss

    def step(self, support, query=None) -> dict:
        """adapt(support) then outer_step(query) (query None: the support batch again).
        Returns {'inner': [losses before each inner update], 'outer': query loss}."""
        inner = self.adapt(support)
        outer = self.outer_step(support if query is None else query)
        return {"inner": inner, "outer": outer}
