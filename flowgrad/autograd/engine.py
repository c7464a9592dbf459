"""Back-propagation in a general flow graph (lecture: "Back-Prop in General Flow Graph").

Visit nodes in reverse topological order, computing the gradient wrt each node from the
gradients wrt its successors: dz/dx = sum_i dz/dy_i dy_i/dx. Both passes are iterative, so an
RNN unrolled over 10,000 steps or a 100,000-op chain needs no recursion.
"""

from __future__ import annotations

import weakref

from .. import backend
from ..errors import GraphError
from . import op
from .broadcast import sum_to
from .lowrank import OuterSum
from .op import _FREED
from .scattered import ScatteredSum


def _consumer_counts(roots) -> dict:
    """Pass 1: for every tensor reachable from ``roots`` that requires grad, how many recorded
    consumers inside this graph use it (its successors' count)."""
    counts: dict = {}
    stack = list(roots)
    rebased = op._epoch  # nonzero once an in-place op was recorded in some graph
    while stack:
        ctx = stack.pop()._ctx
        if ctx is None or ctx.parents is None:  # a leaf, or a node freed by a past backward
            continue
        if rebased and ctx.epoch != rebased:
            _resolve_rebased(ctx)
        needs = ctx.needs_input_grad
        for i, p in enumerate(ctx.parents):
            if needs[i]:
                k = id(p)
                if k in counts:
                    counts[k] += 1
                else:
                    counts[k] = 1
                    stack.append(p)
    return counts


def _resolve_rebased(ctx) -> None:
    """Point the node recorded at ``ctx.epoch`` to the identity each input had then: an input
    modified in place later (Tensor._record_inplace) now stands for the in-place op's result, and
    its earlier identity lives on in the snapshot the in-place node took (PyTorch's rebase of a
    tensor's history). An input the node saved keeps pointing to the tensor, so that the version
    check raises as in PyTorch."""
    e = ctx.epoch
    versions = ctx.versions if ctx.saved else None
    parents = list(ctx.parents)
    changed = False
    for i, p in enumerate(parents):
        if not ctx.needs_input_grad[i] or (versions is not None and versions[i] is not None):
            continue
        cur = p
        while True:
            c = cur._ctx
            info = None if c is None else c.__dict__.get("rebase")
            if info is None or info[0] < e:
                break
            cur = info[1]
        if cur is not p:
            parents[i] = cur
            changed = True
    if changed:
        ctx.parents = tuple(parents)


# --- hooks around accumulation and the end of a backward pass ----------------------------------
# id(leaf) -> (weak reference to the leaf, {handle id: hook}); hooks registered with
# Tensor.register_post_accumulate_grad_hook, run once the leaf's .grad holds this pass's sum.
_post_accumulate_hooks: dict = {}
_final_callbacks: list = []  # one list per backward pass in progress (innermost last)


def post_accumulate_hooks(tensor) -> dict:
    """The {handle id: hook} dict of leaf ``tensor`` (created on first use, dropped with it)."""
    key = id(tensor)
    entry = _post_accumulate_hooks.get(key)
    if entry is None or entry[0]() is not tensor:
        ref = weakref.ref(tensor, lambda _r, k=key: _post_accumulate_hooks.pop(k, None))
        entry = _post_accumulate_hooks[key] = (ref, {})
    return entry[1]


def run_post_accumulate_hooks(t) -> None:
    """Call ``hook(t)`` for each post-accumulate-grad hook of leaf ``t``."""
    entry = _post_accumulate_hooks.get(id(t))
    if entry is not None and entry[0]() is t:
        for hook in list(entry[1].values()):
            hook(t)


def queue_callback(callback) -> None:
    """Run ``callback()`` once the backward pass in progress has finished (PyTorch's
    ``Variable._execution_engine.queue_callback``); DistributedDataParallel waits for its last
    gradient all-reduce there."""
    if not _final_callbacks:
        raise RuntimeError("queue_callback: final callbacks can only be installed during the "
                           "backward pass (from a gradient hook)")
    _final_callbacks[-1].append(callback)


def run_backward(roots, seeds, retain_graph: bool = False, capture: dict | None = None) -> None:
    """Propagate ``seeds`` (arrays, one per root) back through the recorded graph.

    Leaves accumulate into ``.grad``; with ``capture`` (id(tensor) -> None) the summed gradients
    of those tensors are stored in ``capture`` instead and no ``.grad`` is touched. Callbacks
    queued during the pass (``queue_callback``) run at its end, in order.
    """
    callbacks: list = []
    _final_callbacks.append(callbacks)
    try:
        _propagate(roots, seeds, retain_graph, capture)
    finally:
        _final_callbacks.pop()
    for callback in callbacks:
        callback()


def _propagate(roots, seeds, retain_graph: bool, capture: dict | None) -> None:
    counts = _consumer_counts(roots)  # pass 1: how many successors each node has in this graph
    grads = _seed(roots, seeds)  # id(tensor) -> dz/dtensor, summed over the paths seen so far
    handed = set(map(id, seeds))  # arrays already owned elsewhere: a leaf must copy them
    ready = _ready_roots(roots, counts)
    # Pass 2: a node is ready once all its successors have sent their gradient (reverse
    # topological order, Kahn's algorithm); its gradient is then complete.
    while ready:
        t = ready.pop()
        g = _complete_gradient(t, grads, capture)
        ctx = t._ctx
        if ctx is None:  # a leaf: the flow stops here
            if capture is None and g is not None:
                _accumulate(t, g, handed)
                if _post_accumulate_hooks:
                    run_post_accumulate_hooks(t)
            continue
        if g is not None and t._retains_grad and capture is None:
            _accumulate(t, g, handed)
        input_grads = () if g is None else _call_backward(ctx, g)
        _send_to_inputs(ctx, input_grads, grads, counts, ready)
        if not retain_graph:
            _free(ctx)


def _seed(roots, seeds) -> dict:
    grads: dict = {}
    for r, s in zip(roots, seeds):
        k = id(r)
        grads[k] = grads[k] + s if k in grads else s
    return grads


def _ready_roots(roots, counts: dict) -> list:
    """The roots no other root depends on; each is pushed once, even if given twice."""
    ready = []
    for r in roots:
        if counts.get(id(r), 0) == 0:
            ready.append(r)
            counts[id(r)] = -1
    return ready


def _complete_gradient(t, grads: dict, capture: dict | None):
    """dz/dt, now that every successor has contributed: run t's hooks, and capture it if asked."""
    g = grads.pop(id(t), None)
    if type(g) in _DEFERRED:  # a weight's terms kept as factors, or slices: one array, now
        g = g.materialize()
    if g is not None and t._hooks is not None:
        g = _run_hooks(t, g)
    if capture is not None and id(t) in capture:
        capture[id(t)] = g
    return g


def _send_to_inputs(ctx, input_grads: tuple, grads: dict, counts: dict, ready: list) -> None:
    """Sum each input's gradient into what its other successors sent (the multiple-paths chain
    rule), undoing broadcasting on the edge; an input whose successors are all done is ready."""
    needs = ctx.needs_input_grad
    for i, p in enumerate(ctx.parents):
        if not needs[i]:
            continue
        k = id(p)
        gp = input_grads[i] if i < len(input_grads) else None
        if gp is not None:
            if gp.shape != p._data.shape or gp.dtype != p._data.dtype:
                if type(gp) in _DEFERRED:
                    gp = gp.materialize()
                if gp.shape != p._data.shape:
                    gp = sum_to(gp, p._data.shape, ctx.fn.__name__)
                if gp.dtype != p._data.dtype:
                    gp = gp.astype(p._data.dtype)
            old = grads.get(k)
            grads[k] = gp if old is None else _merge(ctx.xp, old, gp)
        c = counts[k] - 1
        counts[k] = c
        if c == 0:
            ready.append(p)


# gradients kept in a form other than an array until complete (see lowrank and scattered)
_DEFERRED = (OuterSum, ScatteredSum)


def _merge(xp, old, new):
    """old + new for two gradients of one tensor, either of them possibly deferred."""
    if type(old) is ScatteredSum:
        old, new = new, old
    if type(new) is ScatteredSum:  # dense, outer or scattered old: the slices go onto it
        if type(old) is OuterSum:
            old = old.materialize()
        return new.add(old)
    if type(new) is OuterSum:
        return new.add(old)
    if type(old) is OuterSum:
        return old.add(new)
    return backend.binary(xp, xp.add, old, new)


def _free(ctx) -> None:
    """Free the node: its saved arrays, and the edges that keep its inputs alive."""
    ctx.saved = _FREED
    ctx.parents = None


def _call_backward(ctx, g) -> tuple:
    saved = ctx.saved
    if saved is _FREED or ctx.parents is None:
        raise GraphError(
            f"{ctx.fn.__name__}: trying to backward through the graph a second time, but its saved "
            "values were freed by the first backward(); pass retain_graph=True to the first "
            "backward() if you need to backward twice")
    if saved:
        _check_versions(ctx)
    out = ctx.fn.backward(ctx, g)
    if type(out) is not tuple:
        out = (out,)
    if len(out) > len(ctx.parents):
        raise GraphError(f"{ctx.fn.__name__}.backward returned {len(out)} gradients for "
                         f"{len(ctx.parents)} inputs")
    if op._anomaly_mode:  # flowgrad.debug.detect_anomaly: check every node's gradients
        out = tuple(o.materialize() if type(o) in _DEFERRED else o for o in out)
        op._anomaly_checker.backward(ctx, g, out)
    return out


def _check_versions(ctx) -> None:
    for i, (p, v) in enumerate(zip(ctx.parents, ctx.versions)):
        if v is not None and p._version != v:
            raise GraphError(
                f"{ctx.fn.__name__} saved its input {i} (shape {tuple(p.shape)}) for backward, but "
                f"it was modified in place afterwards (version {v} -> {p._version}); clone it "
                "before modifying it, or modify it after backward()")
    if ctx.out_ref is not None:
        ref, v = ctx.out_ref
        out = ref()
        if out is not None and out._version != v:
            raise GraphError(
                f"{ctx.fn.__name__} saved its output (shape {tuple(out.shape)}) for backward, but "
                f"it was modified in place afterwards (version {v} -> {out._version})")


def _accumulate(t, g, handed: set | None = None) -> None:
    """Add ``g`` into ``t.grad``. A new ``.grad`` takes ``g`` itself only when no one else can
    see it (a fresh array not handed to another tensor in this pass); else a copy, so that an
    in-place change of one ``.grad`` (zero_, clipping) never shows up in another."""
    Tensor = op.Tensor
    if t.grad is None:
        flags = g.flags
        if handed is None or id(g) in handed or not flags.owndata \
                or not getattr(flags, "writeable", True):
            g = g.copy()
        if handed is not None:
            handed.add(id(g))
        t.grad = Tensor._wrap(g, None, False)
    else:
        t.grad._data = t.grad._data + g


def _run_hooks(t, g):
    Tensor = op.Tensor
    for hook in t._hooks.values():
        new = hook(Tensor._wrap(g, None, False))
        if new is not None:
            g = new._data if isinstance(new, Tensor) else new
    return g
