"""``export``: trace one forward pass of the flow graph and write it as an ONNX model.

Tracing uses the per-op hook that Op.apply already calls for flowgrad.debug.detect_anomaly
(``op._anomaly_checker.forward(cls, ctx, args, out)``): while exporting, a tracer stands in for
the checker (and forwards to it when anomaly mode was on), so every op is recorded whether or
not its inputs require grad, and Op.apply costs nothing more when not exporting. Arrays are
matched by identity: an array made by a traced op is that node's output; one that is an input's,
a parameter's or a buffer's is the graph input or the initializer of that state_dict name; any
other is a constant (folded into the graph as an initializer).
"""

from __future__ import annotations

import io
import os

import numpy as np

from ..autograd import op as _op
from .mapping import EMITTERS

DEFAULT_OPSET = 17
MIN_OPSET = 13


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("flowgrad.onnx.export needs the 'onnx' package: "
                          "pip install 'flowgrad[onnx]' (or pip install onnx)") from e
    return onnx, helper, numpy_helper


class _Tracer:
    """Stands in for the anomaly checker: records (op class, args, output array) per op."""

    def __init__(self, prev):
        self.prev = prev
        self.records: list = []

    def forward(self, cls, ctx, args, out):
        if self.prev is not None:
            self.prev.forward(cls, ctx, args, out)
        for a in args:  # an op that hands back its input is no node
            if getattr(a, "_data", a) is out:
                return
        self.records.append((cls, args, out))

    def backward(self, ctx, grad, out):
        if self.prev is not None:
            self.prev.backward(ctx, grad, out)


def _raw(a):
    from ..tensor import Tensor

    return a._data if isinstance(a, Tensor) else a


def _is_array(a) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype") and not isinstance(a, np.generic)


def _host(a) -> np.ndarray:
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


class _Graph:
    """What an emitter (flowgrad.onnx.mapping) writes through."""

    def __init__(self, helper, numpy_helper, opset, names):
        self.helper, self.numpy_helper, self.opset = helper, numpy_helper, opset
        self.names = names              # id(array) -> value name
        self.keep: list = []            # arrays named here stay alive (ids are not reused)
        self.nodes: list = []
        self.initializers: dict = {}    # name -> TensorProto
        self.out = None                 # the name the current op's last node writes
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"/{stem}_{self._count}"

    def const(self, value, stem: str = "const") -> str:
        name = self.fresh(stem)
        self.initializers[name] = self.numpy_helper.from_array(np.ascontiguousarray(value), name)
        return name

    def initializer(self, array, name: str) -> str:
        self.initializers[name] = self.numpy_helper.from_array(
            np.ascontiguousarray(_host(array)), name)
        self.names[id(array)] = name
        self.keep.append(array)
        return name

    def value(self, a, dtype=None) -> str:
        """The value name of an operand: a traced output, graph input, parameter, buffer, or a
        constant (Python scalars take ``dtype``, the op's output dtype)."""
        a = _raw(a)
        if _is_array(a):
            name = self.names.get(id(a))
            if name is None:
                name = self.initializer(a, self.fresh("const"))
            return name
        return self.const(np.asarray(a, dtype=dtype))

    @staticmethod
    def shape(a) -> tuple:
        a = _raw(a)
        return tuple(a.shape) if _is_array(a) else ()

    def node(self, op_type: str, inputs: list, out: bool = False, **attrs) -> str:
        name = self.out if out else self.fresh(op_type)
        self.nodes.append(self.helper.make_node(op_type, inputs, [name],
                                                name=self.fresh(op_type) + "_node", **attrs))
        return name


def _dims(name: str, shape: tuple, dynamic_axes) -> list:
    dims = list(shape)
    axes = (dynamic_axes or {}).get(name)
    if axes is None:
        return dims
    if isinstance(axes, dict):
        for k, v in axes.items():
            dims[int(k)] = str(v)
    else:
        for k in axes:
            dims[int(k)] = f"{name}_dynamic_axes_{int(k) + 1}"
    return dims


def _flat_outputs(result) -> list:
    from ..tensor import Tensor

    if isinstance(result, Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        out = []
        for r in result:
            out += _flat_outputs(r)
        return out
    if isinstance(result, dict):
        return _flat_outputs(list(result.values()))
    raise TypeError(f"onnx.export: the model returned {type(result).__name__}; expected a "
                    "Tensor or a tuple/list/dict of Tensors")


def export(model, args, f, input_names=None, output_names=None, dynamic_axes=None,
           opset_version=None, verbose=False):
    """Export ``model`` (an nn.Module or a callable over Tensors) to ONNX, as torch.onnx.export.

    Args:
        args: a Tensor (or array) or a tuple of them, the inputs of one forward pass.
        f: a path or a binary file object.
        input_names / output_names: names of the graph's inputs / outputs (default
            ``input_0``..., ``output_0``...).
        dynamic_axes: {name: [dims]} or {name: {dim: "symbol"}}: dims left symbolic.
        opset_version: the ONNX opset (default 17; at least 13).
    The model runs once in eval mode (its training flags are restored afterwards); parameters
    and buffers become initializers named by their state_dict keys. Ops without an ONNX
    mapping raise NotImplementedError naming the op (see SUPPORTED_OPS).
    """
    onnx, helper, numpy_helper = _onnx()
    from .. import no_grad
    from ..tensor import Tensor

    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    if opset < MIN_OPSET:
        raise ValueError(f"onnx.export: opset_version must be at least {MIN_OPSET}, got {opset}")
    inputs = list(args) if isinstance(args, (tuple, list)) else [args]
    inputs = [a if isinstance(a, Tensor) else Tensor(a) for a in inputs]
    input_names = list(input_names or [])
    input_names += [f"input_{i}" for i in range(len(input_names), len(inputs))]
    if len(input_names) != len(inputs):
        raise ValueError(f"onnx.export: {len(input_names)} input_names for {len(inputs)} inputs")

    modes = None
    if hasattr(model, "modules") and hasattr(model, "eval"):
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
    tracer = _Tracer(_op._anomaly_checker if _op._anomaly_mode else None)
    prev = (_op._anomaly_mode, _op._anomaly_checker)
    _op._anomaly_checker, _op._anomaly_mode = tracer, True
    try:
        with no_grad():
            result = model(*inputs)
    finally:
        _op._anomaly_mode, _op._anomaly_checker = prev
        if modes is not None:
            for m, mode in modes:
                m.training = mode
    outputs = _flat_outputs(result)
    output_names = list(output_names or [])
    output_names += [f"output_{i}" for i in range(len(output_names), len(outputs))]
    if len(output_names) != len(outputs):
        raise ValueError(f"onnx.export: {len(output_names)} output_names for {len(outputs)} "
                         "outputs")

    g = _Graph(helper, numpy_helper, opset, {})
    g.keep += [t._data for t in inputs]
    for t, name in zip(inputs, input_names):
        g.names[id(t._data)] = name
    produced = {id(out): i for i, (_, _, out) in enumerate(tracer.records)}

    # keep the nodes the outputs depend on, in the order they ran (a topological order)
    needed = set()
    stack = [produced[id(t._data)] for t in outputs if id(t._data) in produced]
    while stack:
        i = stack.pop()
        if i in needed:
            continue
        needed.add(i)
        for a in tracer.records[i][1]:
            j = produced.get(id(_raw(a)))
            if j is not None and j not in needed:
                stack.append(j)

    # parameters and buffers under their state_dict names (only those the graph reads)
    named = {}
    if hasattr(model, "named_parameters"):
        for name, p in model.named_parameters():
            named.setdefault(id(p._data), (name, p._data))
        for name, b in model.named_buffers():
            named.setdefault(id(b._data), (name, b._data))

    out_name = {}
    for t, name in zip(outputs, output_names):
        out_name.setdefault(id(t._data), name)
    for i in sorted(needed):
        cls, op_args, out = tracer.records[i]
        emit = EMITTERS.get(cls)
        if emit is None:
            raise NotImplementedError(
                f"onnx.export: no ONNX mapping for op '{cls.__name__}' "
                f"({cls.__module__}.{cls.__qualname__})")
        for a in op_args:
            a = _raw(a)
            if _is_array(a) and id(a) not in g.names and id(a) in named:
                g.initializer(named[id(a)][1], named[id(a)][0])
        g.out = out_name.get(id(out)) or g.fresh(cls.__name__)
        emit(g, op_args, out)
        g.names[id(out)] = g.out
        g.keep.append(out)

    graph_outputs = []
    for t, name in zip(outputs, output_names):
        src = g.value(t)
        if src != name:  # an output that is an input, a parameter, or a repeated output
            g.nodes.append(helper.make_node("Identity", [src], [name], name=f"/{name}_identity"))
        graph_outputs.append(helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(t._data.dtype),
            _dims(name, t._data.shape, dynamic_axes)))
    graph_inputs = [helper.make_tensor_value_info(
        name, helper.np_dtype_to_tensor_dtype(t._data.dtype),
        _dims(name, t._data.shape, dynamic_axes)) for t, name in zip(inputs, input_names)]
    unknown = set(dynamic_axes or {}) - set(input_names) - set(output_names)
    if unknown:
        raise ValueError(f"onnx.export: dynamic_axes names {sorted(unknown)} are neither "
                         f"input_names {input_names} nor output_names {output_names}")

    graph = helper.make_graph(g.nodes, type(model).__name__, graph_inputs, graph_outputs,
                              list(g.initializers.values()))
    proto = helper.make_model(graph, producer_name="flowgrad",
                              opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = min(proto.ir_version, _max_ir(onnx, opset))
    onnx.checker.check_model(proto)
    if verbose:
        print(helper.printable_graph(proto.graph))
    data = proto.SerializeToString()
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            fh.write(data)
    elif isinstance(f, io.IOBase) or hasattr(f, "write"):
        f.write(data)
    else:
        raise TypeError(f"onnx.export: f must be a path or a binary file object, got "
                        f"{type(f).__name__}")
    return proto


def _max_ir(onnx, opset: int) -> int:
    """The IR version an opset came with, so that older runtimes load the file."""
    for row in onnx.helper.VERSION_TABLE:  # (release, ir, ai.onnx opset, ...), oldest first
        if row[2] >= opset:
            return row[1]
    return onnx.IR_VERSION


SUPPORTED_OPS = tuple(sorted(cls.__name__ for cls in EMITTERS))
