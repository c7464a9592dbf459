"""Optimizer: the base of every update rule (lecture: "Iterative training by SGD",
θ ← θ + αΔ), with PyTorch's param groups, per-parameter state and ``state_dict`` format.

Updates run on the raw arrays (``p._data``, NumPy or CuPy) with in-place ufuncs (``out=``), never
through the flow graph, and keep each parameter's dtype (a float32 model stays float32: scalars
are Python floats, which NumPy and CuPy cast to the array's dtype).
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from itertools import chain
from typing import Any

import numpy as np

from .. import backend, intraop
from ..autograd import grad_mode
from ..errors import DTypeError
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a hyper-parameter that has no default and must be given per group."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _wrap(array) -> Tensor:
    """A flowgrad leaf over ``array`` (no copy, no graph)."""
    return Tensor._wrap(array, None, False)


def _full_like(a, value=0):
    """A new array of ``a``'s shape, dtype and device, filled with ``value``."""
    if type(a) is np.ndarray:
        return np.full_like(a, value)
    xp = backend.get_array_module(a)
    with a.device:
        return xp.full_like(a, value)


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("cupy")


# A large NumPy update runs chunk by chunk over all the arrays it touches (parameter, gradient,
# state), with cache-sized scratch: the temporaries then never travel to memory, and each array is
# read and written once per step instead of once per elementwise operation (measured on 1 M
# float32: SGD 0.48 ms against 0.74 ms for whole-array passes; momentum and Adam more so).
UPDATE_CHUNK = 1 << 17


def in_chunks(arrays, scratch):
    """Flat chunks of the equally-sized NumPy ``arrays`` (C-contiguous), each with the first
    elements of the ``scratch`` work arrays: tuples (chunk of each array..., scratch...)."""
    flats = [a.reshape(-1) for a in arrays]
    n = flats[0].size
    for i in range(0, n, UPDATE_CHUNK):
        j = min(n, i + UPDATE_CHUNK)
        yield (*(f[i:j] for f in flats), *(t[:j - i] for t in scratch))


def implementation_options(who: str, **switches) -> dict:
    """torch's implementation switches (``foreach``, ``fused``, ``capturable``,
    ``differentiable``), accepted so that torch code runs unchanged and kept in the param
    groups as torch keeps them. ``foreach`` and ``fused`` choose torch's kernels and
    ``capturable`` allows CUDA-graph capture: none changes the update here (one NumPy/CuPy
    implementation). ``differentiable=True`` (gradients through the step) is refused: flowgrad
    computes first-order gradients only."""
    if switches.get("differentiable"):
        raise ValueError(f"{who}: differentiable=True (back-propagating through the optimizer "
                         "step) is not supported: flowgrad computes first-order gradients only")
    return switches


def zero_grads(params, set_to_none: bool = True) -> None:
    """The one ``zero_grad`` (``Optimizer.zero_grad`` and ``Module.zero_grad``): each gradient
    to None, or, with ``set_to_none=False``, detached from any graph and zeroed in place with
    its version counter bumped (PyTorch: ``grad.detach_(); grad.zero_()``, ``_version`` + 1)."""
    for p in params:
        g = p.grad
        if g is not None:
            if set_to_none:
                p.grad = None
            else:
                g._ctx = None
                g._requires_grad = False
                g._data.fill(0)
                g._version += 1


class Optimizer:
    """Base class: holds ``param_groups`` (a list of dicts of parameters and options) and
    ``state`` (a dict per parameter, keyed by the parameter tensor).

    Subclasses implement ``_step_group(group)``; ``step(closure)`` runs it for every group with
    graph recording off. Parameters whose ``.grad`` is None are skipped.

    Example:
        >>> opt = fg.optim.SGD([w, b], lr=0.1)
        >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or dicts, but got "
                f"a single Tensor of shape {tuple(params.shape)}; pass [tensor] or "
                "model.parameters()")
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._scratch_buffers: dict = {}
        self._opt_called = False
        groups = list(params)
        if len(groups) == 0:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list; pass the "
                             "tensors to optimize (e.g. list(model.parameters()))")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # --- parameter groups ------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (missing ones take the defaults)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}.add_param_group: param_group must be a dict, got "
                            f"{type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(f"{name}: parameters must be in an ordered collection (list, tuple), "
                            "not a set: the order of a set changes between runs")
        else:
            params = list(params)
        tensors, names = [], []
        for p in params:
            if isinstance(p, tuple):  # named_parameters()
                names.append(p[0])
                tensors.append(p[1])
            else:
                tensors.append(p)
        if names:
            if len(names) != len(tensors):
                raise ValueError(f"{name}: all parameters should be given with names or all "
                                 "without; some names are missing")
            param_group["param_names"] = names
        param_group["params"] = tensors
        for p in tensors:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but one of the params is a "
                                f"{type(p).__name__}")
            if not p.is_leaf and not p.retains_grad:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (shape "
                                 f"{tuple(p.shape)}); optimize the leaf it was computed from, "
                                 "or .detach().requires_grad_() it")
            if p.dtype.kind != "f":
                raise DTypeError(f"{name}: can only optimize real floating-point tensors, got "
                                 f"{p.dtype} (shape {tuple(p.shape)}); convert with .float()")
        for key, default in self.defaults.items():
            if default is required and key not in param_group:
                raise ValueError(f"{name}: parameter group didn't specify a value of required "
                                 f"optimization parameter {key}")
            param_group.setdefault(key, default)
        if len(tensors) != len({id(p) for p in tensors}):
            warnings.warn(f"{name}: a parameter group contains the same parameter twice; it "
                          "will be updated twice per step", stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for g in self.param_groups:
            if ("param_names" in g) != ("param_names" in param_group):
                raise ValueError(f"{name}: all param groups should be with names or all "
                                 "without")
        if any(id(p) in seen for p in tensors):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # --- gradients and steps -----------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (default, frees memory) or to zeros."""
        zero_grads(chain.from_iterable(g["params"] for g in self.param_groups), set_to_none)

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()`` if given
        (re-evaluates the loss with recording on, as L-BFGS-style callers expect)."""
        loss = None
        if closure is not None:
            with grad_mode.enable_grad():
                loss = closure()
        mode = grad_mode._state
        prev = mode.enabled
        mode.enabled = False
        try:
            for group in self.param_groups:
                self._deferred = []
                try:
                    self._step_group(group)
                    tasks = self._deferred
                finally:
                    self._deferred = None
                self._run_deferred(tasks)
        finally:
            mode.enabled = prev
        self._opt_called = True
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__}: an Optimizer subclass must implement "
                                  "_step_group(group) or override step(closure)")

    @staticmethod
    def _with_grads(group):
        """(parameter, its array, its gradient's array, array module) for each parameter of
        ``group`` that has a gradient; the others are skipped, as in PyTorch."""
        for p in group["params"]:
            if p.grad is not None:
                a = p._data
                yield p, a, p.grad._data, (np if type(a) is np.ndarray
                                           else backend.get_array_module(a))

    def _direction(self, a, d, xp, weight_decay: float, maximize: bool):
        """The gradient the update follows: g + wd·θ (L2 weight decay), negated when
        maximizing; in a scratch buffer, so ``.grad`` is never changed."""
        if weight_decay != 0:
            t = self._scratch(a, 0)
            xp.multiply(a, weight_decay, out=t)
            (xp.subtract if maximize else xp.add)(t, d, out=t)
            return t
        if maximize:
            t = self._scratch(a, 0)
            xp.negative(d, out=t)
            return t
        return d

    def _prepared(self, group, state_arrays: tuple = ()):
        """The per-parameter preamble of the adaptive optimizers: (parameter, its array, the
        direction, the array module, its state) for each parameter with a gradient, with the
        ``state_arrays`` created (zeros) on first use, ``step`` counted, weight decay applied
        (an L2 term in the gradient, or, with ``decoupled_weight_decay``, θ ← θ(1 − lr·wd)
        before the step, as AdamW) and the gradient negated to maximize. The parameter's
        version is bumped after the caller's update."""
        for p, a, d, xp in self._with_grads(group):
            st = self.state[p]
            if not st:
                st["step"] = 0.0
                for name in state_arrays:
                    st[name] = _wrap(_full_like(a))
            st["step"] += 1.0
            wd = group["weight_decay"]
            if wd != 0 and group.get("decoupled_weight_decay", False):
                xp.multiply(a, 1 - group["lr"] * wd, out=a)
                wd = 0
            yield p, a, self._direction(a, d, xp, wd, group["maximize"]), xp, st
            p._version += 1

    def _chunks(self, arrays, n_scratch: int = 1):
        """The update's view of ``arrays`` (the parameter's array and those of the same shape
        it reads and writes) plus ``n_scratch`` work arrays: on NumPy, for large contiguous
        arrays, flat chunks that stay in cache with small reused scratch (``in_chunks``);
        otherwise the whole arrays once, with whole-size scratch (slots 1, 2, ...)."""
        a = arrays[0]
        if (type(a) is not np.ndarray or a.size <= 2 * UPDATE_CHUNK
                or not all(x.flags.c_contiguous for x in arrays)):
            yield (*arrays, *(self._scratch(a, 1 + k) for k in range(n_scratch)))
            return
        small = [self._scratch_buffers.get(("chunk", k, a.dtype)) for k in range(n_scratch)]
        for k, buf in enumerate(small):
            if buf is None or buf.size < UPDATE_CHUNK:
                small[k] = self._scratch_buffers[("chunk", k, a.dtype)] = np.empty(
                    UPDATE_CHUNK, a.dtype)
        yield from in_chunks(arrays, small)

    def _each_chunk(self, arrays, update, n_scratch: int = 1, defer: bool = False) -> None:
        """``update(chunk of each array..., scratch...)`` over ``_chunks(arrays)``; on NumPy
        the chunks of a large parameter are shared out among the intra-op threads, each
        with scratch of its own (the update is element-wise, so any split gives the same
        result). ``defer``: the arrays are no scratch of this step's, so the update of a
        parameter too small to split may wait until the group's end, when the small
        parameters' updates are shared out among the threads (``_run_deferred``)."""
        a = arrays[0]
        if (defer and getattr(self, "_deferred", None) is not None
                and type(a) is np.ndarray and a.size < intraop.MIN_ELEMENTS
                and intraop.get_num_threads() > 1
                and all(x.flags.c_contiguous for x in arrays)):
            self._deferred.append((arrays, update, n_scratch))
            return
        if (type(a) is not np.ndarray or a.size < intraop.MIN_ELEMENTS
                or intraop.get_num_threads() < 2
                or not all(x.flags.c_contiguous for x in arrays)):
            for chunk in self._chunks(arrays, n_scratch):
                update(*chunk)
            return
        flats = [x.reshape(-1) for x in arrays]
        n = a.size
        pieces = [(i, min(n, i + UPDATE_CHUNK)) for i in range(0, n, UPDATE_CHUNK)]
        ranges = intraop.spans(len(pieces), n)
        slots = {lo: s for s, (lo, _) in enumerate(ranges)}

        def block(lo, hi):
            scratch = []
            for k in range(n_scratch):
                key = ("chunk", k, a.dtype, slots[lo])
                buf = self._scratch_buffers.get(key)
                if buf is None or buf.size < UPDATE_CHUNK:
                    buf = self._scratch_buffers[key] = np.empty(UPDATE_CHUNK, a.dtype)
                scratch.append(buf)
            for i, j in pieces[lo:hi]:
                update(*(f[i:j] for f in flats), *(t[:j - i] for t in scratch))
        intraop.run(block, ranges)

    def _run_deferred(self, tasks: list) -> None:
        """The deferred updates of one group's small parameters (each one whole, with scratch
        of its shape): in the order given on one thread when they are few numbers in all,
        else in bins of about equal size, one per intra-op thread, each with its scratch."""
        if not tasks:
            return
        total = sum(arrays[0].size for arrays, _, _ in tasks)
        n_bins = len(intraop.spans(len(tasks), total))
        bins: list[list] = [[] for _ in range(n_bins)]
        loads = [0] * n_bins
        for task in sorted(tasks, key=lambda t: -t[0][0].size) if n_bins > 1 else tasks:
            i = loads.index(min(loads))
            bins[i].append(task)
            loads[i] += task[0][0].size

        def run_bin(i, _):
            largest = max(arrays[0].size for arrays, _, _ in bins[i])
            for arrays, update, n_scratch in bins[i]:
                a = arrays[0]
                scratch = []
                for k in range(n_scratch):
                    key = ("deferred", i, k, a.dtype)
                    buf = self._scratch_buffers.get(key)
                    if buf is None or buf.size < a.size:
                        buf = self._scratch_buffers[key] = np.empty(largest, a.dtype)
                    scratch.append(buf[:a.size].reshape(a.shape))
                update(*arrays, *scratch)
        intraop.run(run_bin, [(i, i + 1) for i in range(n_bins)])

    def _scratch(self, like, slot: int = 0):
        """A reusable work array of ``like``'s shape, dtype and device (not part of the state):
        one flat buffer per (slot, dtype, device), grown as needed, so a step allocates
        nothing after the first."""
        key = (slot, like.dtype, type(like))
        if type(like) is not np.ndarray:
            key += (like.device.id,)
        buf = self._scratch_buffers.get(key)
        n = like.size
        if buf is None or buf.size < n:
            if type(like) is np.ndarray:
                buf = np.empty(n, like.dtype)
            else:
                xp = backend.get_array_module(like)
                with like.device:
                    buf = xp.empty(n, like.dtype)
            self._scratch_buffers[key] = buf
        return buf[:n].reshape(like.shape)

    # --- state_dict -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """PyTorch's format: ``{'state': {index: {...}}, 'param_groups': [{..., 'params':
        [indices]}]}``; parameters are numbered in group order. State tensors are the live ones
        (not copies, as in torch); ``step`` (and NAdam's ``mu_product``) is a float32 0-d
        Tensor, as in torch."""
        mapping: dict[int, int] = {}
        start = 0

        def pack(group):
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        groups = [pack(g) for g in self.param_groups]
        state = {}
        for k, v in self.state.items():
            key = mapping[id(k)] if isinstance(k, Tensor) else k
            if isinstance(v, dict):
                v = {name: (_wrap(np.array(val, dtype=np.float32))
                            if name in _SCALAR_STATE and isinstance(val, (int, float)) else val)
                     for name, val in v.items()}
            state[key] = v
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` (flowgrad's or torch's, with tensors as flowgrad Tensors or
        NumPy arrays): state is deep-copied and cast to each parameter's dtype and device, so
        training resumes bit-identically."""
        name = type(self).__name__
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError(f"{name}.load_state_dict: the saved state has {len(saved_groups)} "
                             f"parameter groups, this optimizer has {len(groups)}")
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {i} has "
                                 f"{len(g['params'])} parameters here but {len(s['params'])} in "
                                 "the saved state")
        id_map = dict(zip(chain.from_iterable(s["params"] for s in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k not in id_map and isinstance(k, str) and k.isdigit():
                k = int(k)  # keys that went through JSON / npz names
            if k in id_map:
                p = id_map[k]
                state[p] = {key: _cast(p, key, val) for key, val in v.items()}
            else:
                state[k] = copy.deepcopy(v)
        new_groups = []
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            new_groups.append(s)
        self.state = state
        self.param_groups = new_groups

    # --- misc ------------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_scratch_buffers", {})
        self.__dict__.setdefault("_opt_called", False)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


# per-parameter scalars kept as Python floats and saved as float32 0-d tensors, as torch does
_SCALAR_STATE = ("step", "mu_product")


def _cast(param: Tensor, key, value):
    """A deep copy of one saved state value, on ``param``'s device and (floating) dtype."""
    if key in _SCALAR_STATE:
        if isinstance(value, Tensor):
            value = value._data
        return float(backend.to_numpy(value)) if _is_array(value) else value
    if isinstance(value, Tensor) or _is_array(value) or type(value).__module__ == "torch":
        raw = value._data if isinstance(value, Tensor) else value
        if type(raw).__module__ == "torch":  # a torch tensor read straight from torch.load
            raw = raw.detach().cpu().numpy()
        arr = backend.to_device(raw, param.device)
        dtype = param.dtype if arr.dtype.kind == "f" and param.dtype.kind == "f" else arr.dtype
        return _wrap(arr.astype(dtype, copy=True))
    if isinstance(value, dict):
        return {k: _cast(param, k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(param, None, v) for v in value)
    return copy.deepcopy(value)
