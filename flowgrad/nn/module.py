"""Module: the base class of every layer and model, with PyTorch's registry semantics.

Parameters, buffers and sub-modules are found by assignment (``self.fc = nn.Linear(...)``), as
in ``torch.nn.Module.__setattr__``, so the names, their order and the ``state_dict`` keys are
those of ``torch.nn`` for the same model and weights move both ways
(design: anchors-and-style.md section 3.9, example E7).

Example:
    >>> class MLP(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.layers = nn.ModuleList([nn.Linear(2, 16), nn.Linear(16, 1)])
    ...     def forward(self, x):
    ...         return self.layers[1](self.layers[0](x).relu())
    >>> [name for name, _ in MLP().named_parameters()]
    ['layers.0.weight', 'layers.0.bias', 'layers.1.weight', 'layers.1.bias']
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator

import numpy as np

from .. import backend, dtypes
from ..autograd.grad_mode import no_grad
from ..autograd.op import Op
from ..errors import DTypeError
from ..tensor import Tensor, _HookHandle
from .parameter import Parameter

__all__ = ["Module", "RemovableHandle"]


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the keys it could not fill and the keys it ignored."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``remove()`` unregisters the hook.

    Ids come from the one process-wide counter that tensor hook handles use too (PyTorch's
    RemovableHandle): never reused, so a stale handle cannot remove a later hook."""

    def __init__(self, *hook_dicts, extra: tuple = ()) -> None:
        self.hook_dicts = hook_dicts
        self.extra = extra
        self.id = next(_HookHandle._next_id)

    def remove(self) -> None:
        for d in self.hook_dicts:
            d.pop(self.id, None)
        for ids in self.extra:
            ids.discard(self.id)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _addindent(s: str, spaces: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _typename(value) -> str:
    if isinstance(value, Tensor):
        return "flowgrad.Tensor"
    return type(value).__name__


class Module:
    """Base class for all neural-network modules (PyTorch's ``nn.Module``).

    Subclasses call ``super().__init__()`` first, assign Parameters, Modules and buffers as
    attributes, and define ``forward``; calling the module runs its hooks around ``forward``.
    """

    training: bool

    def __init__(self, *args, **kwargs) -> None:
        if args or kwargs:
            given = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
            raise TypeError(f"{type(self).__name__}.__init__: Module.__init__() takes no "
                            f"arguments, got {given}")
        setattr_ = object.__setattr__
        setattr_(self, "training", True)
        setattr_(self, "_parameters", {})
        setattr_(self, "_buffers", {})
        setattr_(self, "_non_persistent_buffers_set", set())
        setattr_(self, "_modules", {})
        setattr_(self, "_forward_pre_hooks", OrderedDict())
        setattr_(self, "_forward_pre_hooks_with_kwargs", set())
        setattr_(self, "_forward_hooks", OrderedDict())
        setattr_(self, "_forward_hooks_with_kwargs", set())
        setattr_(self, "_forward_hooks_always_called", set())
        setattr_(self, "_backward_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  '"forward" function')

    # --- calling --------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks or self._forward_hooks or self._backward_hooks:
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        for hook_id, hook in list(self._forward_pre_hooks.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"forward pre-hook {hook!r} with kwargs must return "
                                           f"None or a tuple (new_args, new_kwargs), got "
                                           f"{result!r}")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        bw_state = None
        if self._backward_hooks:
            args, bw_state = _BackwardHookState.wrap_inputs(self, args)
        try:
            result = self.forward(*args, **kwargs)
        except Exception:
            for hook_id, hook in list(self._forward_hooks.items()):
                if hook_id not in self._forward_hooks_always_called:
                    continue
                if hook_id in self._forward_hooks_with_kwargs:
                    hook(self, args, kwargs, None)
                else:
                    hook(self, args, None)
            raise
        for hook_id, hook in list(self._forward_hooks.items()):
            if hook_id in self._forward_hooks_with_kwargs:
                new = hook(self, args, kwargs, result)
            else:
                new = hook(self, args, result)
            if new is not None:
                result = new
        if bw_state is not None:
            bw_state.watch_output(result)
        return result

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before forward (``hook(module, args, kwargs)`` with
        ``with_kwargs``); a non-None return replaces the arguments."""
        handle = RemovableHandle(self._forward_pre_hooks,
                                 extra=(self._forward_pre_hooks_with_kwargs,))
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after forward; a non-None return replaces the
        output."""
        handle = RemovableHandle(self._forward_hooks, extra=(
            self._forward_hooks_with_kwargs, self._forward_hooks_always_called))
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        if always_call:
            self._forward_hooks_always_called.add(handle.id)
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False
                                    ) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` once the gradients wrt the module's
        tensor inputs are computed (tuples, None for inputs that do not require grad).

        A non-None return replaces ``grad_input``; flowgrad supports that for modules with one
        input that requires grad (every built-in layer). The module's output must be a Tensor.
        """
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    # --- registration ---------------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError(f"{type(self).__name__}: cannot assign parameter "
                                     f"'{name}' before Module.__init__() call; call "
                                     "super().__init__() first")
            _remove_from(name, d, self._buffers, self._modules)
            self._non_persistent_buffers_set.discard(name)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign '{_typename(value)}' as "
                                f"parameter '{name}' (nn.Parameter or None expected); wrap it "
                                f"as nn.Parameter(...)")
            self.register_parameter(name, value)
        else:
            modules = d.get("_modules")
            if isinstance(value, Module):
                if modules is None:
                    raise AttributeError(f"{type(self).__name__}: cannot assign module "
                                         f"'{name}' before Module.__init__() call; call "
                                         "super().__init__() first")
                _remove_from(name, d, self._parameters, self._buffers)
                self._non_persistent_buffers_set.discard(name)
                modules[name] = value
            elif modules is not None and name in modules:
                if value is not None:
                    raise TypeError(f"{type(self).__name__}: cannot assign "
                                    f"'{_typename(value)}' as child module '{name}' "
                                    "(nn.Module or None expected)")
                modules[name] = value
            else:
                buffers = d.get("_buffers")
                if buffers is not None and name in buffers:
                    if value is not None and not isinstance(value, Tensor):
                        raise TypeError(f"{type(self).__name__}: cannot assign "
                                        f"'{_typename(value)}' as buffer '{name}' "
                                        "(Tensor or None expected)")
                    buffers[name] = value
                else:
                    # a plain list/tuple/dict of Modules is kept as is, as in PyTorch: not
                    # registered (use nn.ModuleList / nn.ModuleDict for that)
                    object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        d = self.__dict__
        if "_parameters" in d:
            p = d["_parameters"]
            if name in p:
                return p[name]
        if "_buffers" in d:
            b = d["_buffers"]
            if name in b:
                return b[name]
        if "_modules" in d:
            m = d["_modules"]
            if name in m:
                return m[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        keys = (list(dir(type(self))) + list(self.__dict__) + list(self._parameters)
                + list(self._modules) + list(self._buffers))
        return sorted(k for k in keys if not k[0].isdigit())

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for attr in ("_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs",
                     "_forward_hooks_always_called", "_non_persistent_buffers_set"):
            self.__dict__.setdefault(attr, set())
        for attr in ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks"):
            self.__dict__.setdefault(attr, OrderedDict())

    def _check_name(self, kind: str, name, store: dict) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: {kind} name should be a string, got "
                            f"{type(name).__name__}")
        if "." in name:
            raise KeyError(f"{kind} name can't contain \".\", got {name!r}")
        if name == "":
            raise KeyError(f"{kind} name can't be empty string \"\"")
        if hasattr(self, name) and name not in store:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None: a declared slot, skipped by parameters/state_dict)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: cannot assign parameter before "
                                 "Module.__init__() call; call super().__init__() first")
        self._check_name("parameter", name, self._parameters)
        if param is None:
            self._parameters[name] = None
            return
        if not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}: cannot assign '{_typename(param)}' object "
                            f"to parameter '{name}' (nn.Parameter or None required); wrap it "
                            "as nn.Parameter(...)")
        if param._ctx is not None:
            raise ValueError(f"{type(self).__name__}: cannot assign non-leaf Tensor to "
                             f"parameter '{name}'; make it a leaf with "
                             "nn.Parameter(tensor.detach())")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None,
                        persistent: bool = True) -> None:
        """Add a tensor that is state but not a parameter (running statistics, masks); a
        non-persistent buffer is left out of ``state_dict``."""
        if "_buffers" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: cannot assign buffer before "
                                 "Module.__init__() call; call super().__init__() first")
        self._check_name("buffer", name, self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"{type(self).__name__}: cannot assign '{_typename(tensor)}' "
                            f"object to buffer '{name}' (Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module, reachable as an attribute named ``name``."""
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        self._check_name("module", name, self._modules)
        self._modules[name] = module

    register_module = add_module

    # --- lookup ---------------------------------------------------------------------------------
    def get_submodule(self, target: str) -> Module:
        """The sub-module at the dotted path ``target`` ('' is the module itself)."""
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if item not in mod._modules or mod._modules[item] is None:
                raise AttributeError(f"{mod._get_name()} has no attribute `{item}` (looking up "
                                     f"submodule '{target}')")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at the dotted path ``target`` (e.g. 'layers.0.weight')."""
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod._parameters:
            raise AttributeError(f"{mod._get_name()} has no parameter `{name}`")
        return mod._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at the dotted path ``target`` (e.g. 'bn.running_mean')."""
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod._buffers:
            raise AttributeError(f"{mod._get_name()} has no buffer `{name}`")
        return mod._buffers[name]

    # --- iteration (PyTorch's order: registration order, pre-order over modules) --------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """(name, module) for this module and every descendant, depth-first pre-order; a
        module reachable twice is yielded once unless ``remove_duplicate=False``."""
        if memo is None:
            memo = set()
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if remove_duplicate:
                if id(mod) in memo:
                    continue
                memo.add(id(mod))
            yield name, mod
            children = [(name + ("." if name else "") + k, m)
                        for k, m in mod._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        memo = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in memo:
                memo.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, get_members, prefix: str, recurse: bool, remove_duplicate: bool):
        memo = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for k, v in get_members(mod):
                if v is None or id(v) in memo:
                    continue
                if remove_duplicate:
                    memo.add(id(v))
                yield mod_prefix + ("." if mod_prefix else "") + k, v

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a tied parameter comes once, under its first name."""
        return self._named_members(lambda m: m._parameters.items(), prefix, recurse,
                                   remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members(lambda m: m._buffers.items(), prefix, recurse,
                                   remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # --- modes and in-place changes -------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode here and in every descendant (dropout, batch norm read it)."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: training mode is expected to be boolean, got {mode!r}")
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``train(False)``)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the parameters' gradients to None (or to zeros with ``set_to_none=False``,
        in place, bumping their version counters: the optimizer's ``zero_grad``)."""
        from ..optim.optimizer import zero_grads

        zero_grads(self.parameters(), set_to_none)

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every descendant (children first) and then on this module."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _apply(self, fn: Callable) -> Module:
        """Convert every parameter, its gradient and every buffer with ``fn(array)``.

        Parameters are changed in place (``param.data = ...``), so optimizers that hold them
        keep working; they stay Parameters and leaves.
        """
        for m in self.children():
            m._apply(fn)
        for p in self._parameters.values():
            if p is None:
                continue
            p._data = fn(p._data)
            if p.grad is not None:
                p.grad._data = fn(p.grad._data)
        for k, b in self._buffers.items():
            if b is not None:
                new = Tensor._wrap(fn(b._data), None, False)
                if b._requires_grad and new._data.dtype.kind == "f":
                    new._requires_grad = True
                self._buffers[k] = new
        return self

    def to(self, *args, **kwargs) -> Module:
        """to(device), to(dtype), to(device, dtype) or to(tensor), in place; returns self.

        A dtype applies to floating-point parameters and buffers only (integer buffers such as
        ``num_batches_tracked`` keep theirs), as in PyTorch.
        """
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str) or type(a).__name__ == "device":
                device = a
            elif a is not None:
                dtype = a
        if dtype is not None:
            dtype = dtypes.to_dtype(dtype)
            if dtype.kind not in "fc":
                raise DTypeError(f"{type(self).__name__}.to: nn.Module.to only accepts "
                                 f"floating point dtypes, but got desired dtype={dtype}")
        dev = None if device is None else backend.normalize_device(device)

        def convert(a):
            if dtype is not None and a.dtype.kind == "f" and a.dtype != dtype:
                a = a.astype(dtype)
            if dev is not None and backend.device_of(a) != dev:
                a = backend.to_device(a, dev)
            return a

        return self._apply(convert)

    def cuda(self, device: int | str | None = None) -> Module:
        if device is None:
            return self.to("cuda")
        return self.to(device if isinstance(device, str) else f"cuda:{device}")

    def cpu(self) -> Module:
        return self.to("cpu")

    def _cast(self, dtype) -> Module:
        return self._apply(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)

    def float(self) -> Module:
        return self._cast(dtypes.float32)

    def double(self) -> Module:
        return self._cast(dtypes.float64)

    def half(self) -> Module:
        return self._cast(dtypes.float16)

    def type(self, dst_type) -> Module:
        return self._apply(lambda a: a.astype(dtypes.to_dtype(dst_type)))

    # --- state_dict -----------------------------------------------------------------------------
    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """An OrderedDict of every parameter and persistent buffer by dotted name (keys and
        array layouts as ``torch.nn``'s), values detached Tensors sharing memory with the
        module (``keep_vars=True``: the Parameters themselves).

        Example:
            >>> torch_model.load_state_dict({k: torch.from_numpy(v.numpy())
            ...                              for k, v in model.state_dict().items()})
        """
        if args:  # PyTorch's deprecated positional form state_dict(destination, prefix, keep)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
        stack = [(prefix, self)]
        while stack:
            pre, mod = stack.pop()
            mod._save_to_state_dict(destination, pre, keep_vars)
            stack.extend(reversed([(pre + name + ".", m) for name, m in mod._modules.items()
                                   if m is not None]))
        return destination

    def _load_from_state_dict(self, state_dict: dict, prefix: str, missing: list,
                              unexpected: list, errors: list, assign: bool) -> None:
        persistent = {k: v for k, v in self._buffers.items()
                      if k not in self._non_persistent_buffers_set}
        local = {k: v for k, v in itertools.chain(self._parameters.items(), persistent.items())
                 if v is not None}
        for name, param in local.items():
            key = prefix + name
            if key not in state_dict:
                missing.append(key)
                continue
            value = _as_array(state_dict[key], key, errors)
            if value is None:
                continue
            if value.ndim == 1 and param.ndim == 0 and value.shape == (1,):
                value = value.reshape(())  # PyTorch's old 0-d layout
            if tuple(value.shape) != tuple(param.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{tuple(value.shape)} from checkpoint, the shape in current model "
                              f"is {tuple(param.shape)}.")
                continue
            if assign:
                self._assign(name, param, value)
            else:
                with no_grad():
                    param.copy_(value)
        for key in state_dict:
            if key.startswith(prefix):
                head = key[len(prefix):].split(".", 1)[0]
                if head not in self._modules and head not in local:
                    unexpected.append(key)

    def _assign(self, name: str, old: Tensor, value) -> None:
        if backend.get_array_module(value) is not old.xp:
            value = backend.to_device(value, old.device)
        if name in self._parameters:
            setattr(self, name, Parameter(Tensor._wrap(value, None, False),
                                          old.requires_grad))
        else:
            self._buffers[name] = Tensor._wrap(value, None, False)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy parameters and buffers from ``state_dict`` (Tensors, NumPy arrays, or anything
        ``np.asarray`` takes, e.g. a torch model's ``state_dict()``); returns
        ``(missing_keys, unexpected_keys)``.

        ``strict`` raises one RuntimeError listing missing keys, unexpected keys and shape
        mismatches; shape mismatches raise even when not strict. ``assign=True`` makes the
        checkpoint's arrays the new parameters instead of copying into the old ones.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict: expected a mapping of names to tensors, got "
                            f"{type(state_dict).__name__}")
        missing, unexpected, errors = [], [], []
        stack = [("", self, state_dict)]
        while stack:
            prefix, mod, sd = stack.pop()
            mod._load_from_state_dict(sd, prefix, missing, unexpected, errors, assign)
            children = []
            for name, child in mod._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    children.append((child_prefix, child,
                                     {k: v for k, v in sd.items() if k.startswith(child_prefix)}))
            stack.extend(reversed(children))
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        return _IncompatibleKeys(missing, unexpected)

    # --- printing -------------------------------------------------------------------------------
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The layer's own settings for ``repr`` (one line, like PyTorch's)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({key}): " + _addindent(repr(m), 2) for key, m in self._modules.items()]
        lines = extra_lines + child_lines
        s = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                s += extra_lines[0]
            else:
                s += "\n  " + "\n  ".join(lines) + "\n"
        return s + ")"


def _remove_from(name: str, *dicts) -> None:
    for d in dicts:
        if name in d:
            del d[name]


def _as_array(value, key: str, errors: list):
    """The array inside a checkpoint entry (Tensor, NumPy/CuPy array, or array-like)."""
    if isinstance(value, Tensor):
        return value._data
    if hasattr(value, "shape") and hasattr(value, "dtype") and \
            backend.get_array_module(value) is not np:
        return value  # a CuPy array
    try:
        return np.asarray(value)
    except Exception as e:
        errors.append(f'While copying the parameter named "{key}", expected a Tensor or an '
                      f"array from checkpoint but received {type(value).__name__} ({e})")
        return None


# --- full backward hooks -------------------------------------------------------------------------

class _GradTap(Op):
    """Identity whose backward hands the gradient to a callback (which may replace it)."""

    @staticmethod
    def forward(ctx, x, state, index):
        ctx.state, ctx.index = state, index
        return x

    @staticmethod
    def backward(ctx, grad):
        return ctx.state.input_grad(ctx.index, grad), None, None


class _BackwardHookState:
    """Gathers grad_output and grad_input of one module call, then runs its backward hooks."""

    def __init__(self, module: Module, n_inputs: int, needs: list) -> None:
        self.module = module
        self.grad_input = [None] * n_inputs
        self.pending = set(needs)
        self.grad_output = None

    @classmethod
    def wrap_inputs(cls, module: Module, args: tuple):
        needs = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        state = cls(module, len(args), needs)
        new = tuple(_GradTap.apply(a, state, i) if i in state.pending else a
                    for i, a in enumerate(args))
        return new, state

    def watch_output(self, out) -> None:
        if not isinstance(out, Tensor):
            raise TypeError(f"{self.module._get_name()}: full backward hooks need a module "
                            f"whose forward returns one Tensor, got {type(out).__name__}")
        if out.requires_grad:
            out.register_hook(self._output_grad)

    def _output_grad(self, grad: Tensor):
        self.grad_output = (grad,)
        if not self.pending:  # no input requires grad: hooks see grad_input of Nones
            self._run()
        return None

    def input_grad(self, index: int, grad):
        self.grad_input[index] = Tensor._wrap(grad, None, False)
        self.pending.discard(index)
        if self.pending:
            return grad
        new = self._run()
        if new is None:
            return grad
        got = [i for i, g in enumerate(self.grad_input) if g is not None]
        if len(got) != 1:
            raise RuntimeError(f"{self.module._get_name()}: a backward hook returned a new "
                               "grad_input; flowgrad supports that only for modules with one "
                               "input that requires grad")
        g = new[got[0]]
        return g._data if isinstance(g, Tensor) else g

    def _run(self):
        result = None
        grad_input = tuple(self.grad_input)
        for hook in list(self.module._backward_hooks.values()):
            out = hook(self.module, grad_input, self.grad_output)
            if out is not None:
                out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
                if len(out) != len(grad_input):
                    raise RuntimeError(f"{self.module._get_name()}: backward hook returned "
                                       f"{len(out)} gradients for {len(grad_input)} inputs")
                grad_input = result = out
        return result
