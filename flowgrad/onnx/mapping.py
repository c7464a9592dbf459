"""One ONNX emitter per flowgrad op: ``EMITTERS[OpClass](g, args, out)`` writes the ONNX nodes
of one traced node through the builder ``g`` (flowgrad.onnx.export._Graph) and names its last
output ``g.out``. Ops without an entry raise, naming the op."""

from __future__ import annotations

import math

import numpy as np

from ..ops import activation as A
from ..ops import attention as ATT
from ..ops import conv as C
from ..ops import elementwise as E
from ..ops import indexing as IDX
from ..ops import linalg as L
from ..ops import normalization as NORM
from ..ops import recurrent as RNN
from ..ops import reduction as R
from ..ops import shape as S
from ..ops.conv import pads, pair


def _binary(op_type):
    def emit(g, args, out):
        g.node(op_type, [g.value(args[0], out.dtype), g.value(args[1], out.dtype)], out=True)
    return emit


def _unary(op_type):
    def emit(g, args, out):  # noqa: ARG001 - one signature for every emitter
        g.node(op_type, [g.value(args[0])], out=True)
    return emit


def _pow(g, args, out):
    g.node("Pow", [g.value(args[0], out.dtype), g.value(args[1], out.dtype)], out=True)


def _rsqrt(g, args, out):  # noqa: ARG001
    g.node("Reciprocal", [g.node("Sqrt", [g.value(args[0])])], out=True)


def _leaky_relu(g, args, out):  # noqa: ARG001
    g.node("LeakyRelu", [g.value(args[0])], out=True, alpha=float(args[1]))


def _elu(g, args, out):
    x, alpha, scale = args
    if scale == 1:
        g.node("Elu", [g.value(x)], out=True, alpha=float(alpha))
    else:
        e = g.node("Elu", [g.value(x)], alpha=float(alpha))
        g.node("Mul", [e, g.const(np.asarray(scale, out.dtype))], out=True)


def _silu(g, args, out):  # noqa: ARG001
    x = g.value(args[0])
    g.node("Mul", [x, g.node("Sigmoid", [x])], out=True)


def _gelu(g, args, out):
    x, approximate = g.value(args[0]), args[1]
    dt = out.dtype
    if approximate == "none" and g.opset >= 20:
        g.node("Gelu", [x], out=True)
        return
    half = g.const(np.asarray(0.5, dt))
    one = g.const(np.asarray(1.0, dt))
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [x3, g.const(np.asarray(0.044715, dt))])])
        t = g.node("Tanh", [g.node("Mul", [inner, g.const(np.asarray(math.sqrt(2 / math.pi),
                                                                        dt))])])
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        t = g.node("Erf", [g.node("Mul", [x, g.const(np.asarray(1 / math.sqrt(2), dt))])])
    g.node("Mul", [g.node("Mul", [x, half]), g.node("Add", [t, one])], out=True)


def _axis_op(op_type):
    def emit(g, args, out):  # noqa: ARG001
        g.node(op_type, [g.value(args[0])], out=True, axis=int(args[1]))
    return emit


def _attention(g, args, out):
    """The one-node attention as MatMul, Mul, Add, Where, Softmax and MatMul; the masks become
    constants of the traced shape, and dropout is absent (the model is exported in eval mode)."""
    q, k, v, scale, keep, bias, dead, drop = args
    if drop is not None:
        raise NotImplementedError("onnx.export: attention with dropout while training; call "
                                  "model.eval() before exporting")
    rank = len(g.shape(k))
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    kt = g.node("Transpose", [g.value(k)], perm=perm)
    scores = g.node("Mul", [g.node("MatMul", [g.value(q), kt]),
                            g.const(np.asarray(scale, out.dtype))])
    if bias is not None:
        scores = g.node("Add", [scores, g.value(bias, out.dtype)])
    if keep is not None:
        scores = g.node("Where", [g.const(np.asarray(keep)), scores,
                                  g.const(np.asarray(-np.inf, out.dtype))])
    weights = g.node("Softmax", [scores], axis=-1)
    if dead is not None:
        weights = g.node("Where", [g.const(np.asarray(dead)),
                                   g.const(np.asarray(0, out.dtype)), weights])
    g.node("MatMul", [weights, g.value(v)], out=True)


def _layer_norm(g, args, out):
    """LayerNormalization from opset 17; below it, the same from means, a square root and the
    affine terms (ReduceMean takes its axes as an attribute there)."""
    x, weight, bias, k, eps = args
    axes = list(range(-k, 0))
    if g.opset >= 17:
        scale = (g.value(weight) if weight is not None
                 else g.const(np.ones(g.shape(x)[-k:], out.dtype)))
        inputs = [g.value(x), scale] + ([g.value(bias)] if bias is not None else [])
        g.node("LayerNormalization", inputs, out=True, axis=-k, epsilon=float(eps))
        return
    xv = g.value(x)
    centred = g.node("Sub", [xv, g.node("ReduceMean", [xv], axes=axes, keepdims=1)])
    var = g.node("ReduceMean", [g.node("Mul", [centred, centred])], axes=axes, keepdims=1)
    std = g.node("Sqrt", [g.node("Add", [var, g.const(np.asarray(eps, out.dtype))])])
    terms = [("Mul", weight), ("Add", bias)]
    last = max([i for i, (_, t) in enumerate(terms) if t is not None], default=-1)
    y = g.node("Div", [centred, std], out=last < 0)
    for i, (op_type, t) in enumerate(terms):
        if t is not None:
            y = g.node(op_type, [y, g.value(t)], out=i == last)


def _reduce(op_type):
    def emit(g, args, out):  # noqa: ARG001
        x, dims, keepdim = args[0], args[1], args[2]
        inputs = [g.value(x)]
        axes = None if dims is None else [int(d) for d in
                                         ((dims,) if isinstance(dims, int) else dims)]
        # ReduceSum takes axes as an input from opset 13, the others from opset 18
        as_input = op_type == "ReduceSum" or g.opset >= 18
        attrs = {"keepdims": int(bool(keepdim))}
        if axes is not None:
            if as_input:
                inputs.append(g.const(np.asarray(axes, np.int64)))
            else:
                attrs["axes"] = axes
        g.node(op_type, inputs, out=True, **attrs)
    return emit


def _amax(g, args, out):
    if len(args) > 3 and args[3]:
        return _reduce("ReduceMin")(g, args, out)
    return _reduce("ReduceMax")(g, args, out)


def _reshape(g, args, out):
    x = args[0]
    in_shape, out_shape = tuple(g.shape(x)), tuple(out.shape)
    target = list(out_shape)
    # dims kept from the front of the input are copied (0), so that a symbolic batch dim
    # stays symbolic: (N, C, H, W) -> (N, C*H*W) becomes Reshape(x, [0, C*H*W])
    for i, (a, b) in enumerate(zip(in_shape, out_shape)):
        if a != b:
            break
        target[i] = 0
    g.node("Reshape", [g.value(x), g.const(np.asarray(target, np.int64))], out=True)


def _permute(g, args, out):  # noqa: ARG001
    g.node("Transpose", [g.value(args[0])], out=True, perm=[int(d) for d in args[1]])


def _expand(g, args, out):
    in_shape = tuple(g.shape(args[0]))
    target = list(out.shape)
    lead = len(target) - len(in_shape)
    for i, s in enumerate(in_shape):  # dims the input has already broadcast as themselves
        if s == target[lead + i]:
            target[lead + i] = 1
    g.node("Expand", [g.value(args[0]), g.const(np.asarray(target, np.int64))], out=True)


def _cat(g, args, out):  # noqa: ARG001
    dim, xs = args[0], args[1:]
    kept = [x for x in xs if not (len(g.shape(x)) == 1 and g.shape(x)[0] == 0)]
    g.node("Concat", [g.value(x) for x in kept], out=True, axis=int(dim))


def _stack(g, args, out):
    dim, xs = int(args[0]), args[1:]
    dim = dim + len(out.shape) if dim < 0 else dim
    axis = g.const(np.asarray([dim], np.int64))
    g.node("Concat", [g.node("Unsqueeze", [g.value(x), axis]) for x in xs], out=True, axis=dim)


def _linear(g, args, out):  # noqa: ARG001
    x, w, b = args
    if len(g.shape(x)) == 2:
        inputs = [g.value(x), g.value(w)] + ([g.value(b)] if b is not None else [])
        g.node("Gemm", inputs, out=True, transB=1)
        return
    y = g.node("MatMul", [g.value(x), g.node("Transpose", [g.value(w)], perm=[1, 0])])
    if b is None:
        g.node("Identity", [y], out=True)
    else:
        g.node("Add", [y, g.value(b)], out=True)


def _conv2d(g, args, out):  # noqa: ARG001
    x, w, b = args[:3]
    stride, padding, dilation, groups = (list(args[3:]) + [1, 0, 1, 1][len(args) - 3:])[:4]
    (pt, pb), (pl, pr) = pads(padding, "conv2d")
    kh, kw = g.shape(w)[2:]
    inputs = [g.value(x), g.value(w)] + ([g.value(b)] if b is not None else [])
    g.node("Conv", inputs, out=True, kernel_shape=[int(kh), int(kw)],
           strides=list(pair(stride, "stride", "conv2d")), pads=[pt, pl, pb, pr],
           dilations=list(pair(dilation, "dilation", "conv2d")), group=int(groups))


def _pool_attrs(op, kernel_size, stride, padding, ceil_mode):
    k = pair(kernel_size, "kernel_size", op)
    s = k if stride is None else pair(stride, "stride", op)
    p = pair(padding, "padding", op)
    return {"kernel_shape": list(k), "strides": list(s), "pads": [p[0], p[1], p[0], p[1]],
            "ceil_mode": int(bool(ceil_mode))}


def _max_pool2d(g, args, out):  # noqa: ARG001
    x, kernel_size, stride, padding, dilation, ceil_mode = (list(args) + [None, 0, 1, False])[:6]
    attrs = _pool_attrs("max_pool2d", kernel_size, stride, padding, ceil_mode)
    attrs["dilations"] = list(pair(dilation, "dilation", "max_pool2d"))
    g.node("MaxPool", [g.value(x)], out=True, **attrs)


def _avg_pool2d(g, args, out):  # noqa: ARG001
    x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override = \
        (list(args) + [None, 0, False, True, None])[:7]
    if divisor_override is not None:
        raise NotImplementedError("onnx.export: avg_pool2d with divisor_override has no ONNX "
                                  "mapping")
    attrs = _pool_attrs("avg_pool2d", kernel_size, stride, padding, ceil_mode)
    if ceil_mode and any(attrs["pads"]) and count_include_pad:
        raise NotImplementedError("onnx.export: avg_pool2d with ceil_mode, padding and "
                                  "count_include_pad divides differently in ONNX")
    attrs["count_include_pad"] = int(bool(count_include_pad))
    g.node("AveragePool", [g.value(x)], out=True, **attrs)


def _embedding(g, args, out):  # noqa: ARG001
    index, weight = args[0], args[1]
    g.node("Gather", [g.value(weight), g.value(index)], out=True, axis=0)


def _pad(g, args, out):
    x, widths, value = args
    before = [int(b) for b, _ in widths]
    after = [int(a) for _, a in widths]
    g.node("Pad", [g.value(x), g.const(np.asarray(before + after, np.int64)),
                   g.const(np.asarray(value, out.dtype))], out=True, mode="constant")


def _cast(g, args, out):
    from onnx import helper

    g.node("Cast", [g.value(args[0])], out=True, to=helper.np_dtype_to_tensor_dtype(out.dtype))


def _where(g, args, out):
    """where(condition, x, y); a condition not computed from the inputs (a causal mask)
    becomes a constant of the traced shape."""
    g.node("Where", [g.value(args[0]), g.value(args[1], out.dtype), g.value(args[2], out.dtype)],
           out=True)


def _clamp(g, args, out):
    x, lo, hi = args[0], args[1], args[2]
    inputs = [g.value(x),
              "" if lo is None else g.const(np.asarray(lo, out.dtype)),
              "" if hi is None else g.const(np.asarray(hi, out.dtype))]
    while inputs[-1] == "":
        inputs.pop()
    g.node("Clip", inputs, out=True)


def _getitem(g, args, out):  # noqa: ARG001
    """Basic indexing with slices (steps too), ints and None over the leading dims."""
    x, index = args
    index = index if isinstance(index, tuple) else (index,)
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    dim = out_dim = 0
    for ix in index:
        if ix is None:
            unsqueeze.append(out_dim)
            out_dim += 1
        elif isinstance(ix, slice):
            if ix != slice(None):
                size = g.shape(x)[dim]
                s, e, st = ix.indices(size)
                starts.append(s)
                ends.append(e if e >= 0 else -(2 ** 63))
                axes.append(dim)
                steps.append(st)
            dim += 1
            out_dim += 1
        elif isinstance(ix, (int, np.integer)):
            size = g.shape(x)[dim]
            i = int(ix) + (size if ix < 0 else 0)
            starts.append(i)
            ends.append(i + 1)
            axes.append(dim)
            steps.append(1)
            squeeze.append(dim)
            dim += 1
        else:
            raise NotImplementedError(
                f"onnx.export: no ONNX mapping for op 'GetItem' with index {ix!r} "
                "(only slices, ints and None)")
    v = g.value(x)
    if axes:
        v = g.node("Slice", [v] + [g.const(np.asarray(a, np.int64))
                                   for a in (starts, ends, axes, steps)])
    if squeeze:
        v = g.node("Squeeze", [v, g.const(np.asarray(squeeze, np.int64))])
    if unsqueeze:
        v = g.node("Unsqueeze", [v, g.const(np.asarray(unsqueeze, np.int64))])
    g.node("Identity", [v], out=True)


# PyTorch's gate blocks, in ONNX's order: LSTM (i, f, g, o) -> (i, o, f, c); GRU (r, z, n) ->
# (z, r, h), with linear_before_reset=1 for PyTorch's n = tanh(W_in x + b_in + r (W_hn h + b_hn)).
_GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}


def _gate_rows(g, a, kind: str, hidden: int) -> str:
    """A weight (gates*H, k) or bias (gates*H,) of a PyTorch recurrent layer, its gate blocks
    gathered into ONNX's order (the parameter stays one initializer under its own name), with
    ONNX's leading direction axis."""
    rows = np.concatenate([np.arange(k * hidden, (k + 1) * hidden)
                           for k in _GATE_ORDER[kind]]).astype(np.int64)
    v = g.node("Gather", [g.value(a), g.const(rows)], axis=0)
    return g.node("Unsqueeze", [v, g.const(np.asarray([0], np.int64))])


def _recurrent(kind: str):
    """One direction of one layer (flowgrad.ops.recurrent) as ONNX's LSTM / GRU / RNN node; the
    op's single output (the steps' outputs, then h_n and, for the LSTM, c_n, stacked on axis 0)
    is rebuilt with Reshape and Concat."""
    def emit(g, args, out):
        if kind == "LSTM":
            x, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse = args
            attrs = {}
        else:
            x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse = args[:8]
            c0 = None
            attrs = ({"linear_before_reset": 1} if kind == "GRU"
                     else {"activations": ["Relu" if args[8] == "relu" else "Tanh"]})
        if batch_sizes is not None:
            raise NotImplementedError(
                f"onnx.export: no ONNX mapping for op '{kind}Layer' on a PackedSequence; "
                "export the model on a padded batch")
        batch, hidden = g.shape(h0)
        gates = len(_GATE_ORDER[kind])
        seq = g.node("Reshape", [g.value(x), g.const(
            np.asarray([-1, batch, g.shape(x)[1]], np.int64))])
        biases = [_gate_rows(g, b, kind, hidden) if b is not None
                  else g.const(np.zeros((1, gates * hidden), out.dtype)) for b in (b_ih, b_hh)]
        first = g.const(np.asarray([0], np.int64))
        inputs = [seq, _gate_rows(g, w_ih, kind, hidden), _gate_rows(g, w_hh, kind, hidden),
                  g.node("Concat", biases, axis=1), "",
                  g.node("Unsqueeze", [g.value(h0), first])]
        if c0 is not None:
            inputs.append(g.node("Unsqueeze", [g.value(c0), first]))
        names = [g.fresh(f"{kind}_{part}") for part in ("Y", "Y_h", "Y_c")[:3 if c0 is not None
                                                                              else 2]]
        g.nodes.append(g.helper.make_node(
            kind, inputs, names, name=g.fresh(kind) + "_node", hidden_size=int(hidden),
            direction="reverse" if reverse else "forward", **attrs))
        rows = g.const(np.asarray([-1, hidden], np.int64))
        g.node("Concat", [g.node("Reshape", [n, rows]) for n in names], out=True, axis=0)
    return emit


EMITTERS = {
    E.Add: _binary("Add"), E.Sub: _binary("Sub"), E.Mul: _binary("Mul"), E.Div: _binary("Div"),
    E.Maximum: _binary("Max"), E.Minimum: _binary("Min"), E.Pow: _pow,
    E.Neg: _unary("Neg"), E.Exp: _unary("Exp"), E.Log: _unary("Log"), E.Sqrt: _unary("Sqrt"),
    E.Rsqrt: _rsqrt, E.Reciprocal: _unary("Reciprocal"), E.Abs: _unary("Abs"),
    E.Sin: _unary("Sin"), E.Cos: _unary("Cos"), E.Erf: _unary("Erf"), E.Sign: _unary("Sign"),
    E.Clone: _unary("Identity"), E.Cast: _cast, E.Clamp: _clamp, E.Where: _where,
    A.Relu: _unary("Relu"), A.Sigmoid: _unary("Sigmoid"), A.Tanh: _unary("Tanh"),
    A.LeakyRelu: _leaky_relu, A.Elu: _elu, A.Silu: _silu, A.Gelu: _gelu,
    R.Softmax: _axis_op("Softmax"), R.LogSoftmax: _axis_op("LogSoftmax"),
    NORM.LayerNorm: _layer_norm, ATT.Attention: _attention,
    R.Sum: _reduce("ReduceSum"), R.Mean: _reduce("ReduceMean"), R.AMax: _amax,
    S.Reshape: _reshape, S.Permute: _permute, S.Expand: _expand, S.Cat: _cat, S.Stack: _stack,
    S.Pad: _pad,
    L.Linear: _linear, L.MatMul: _binary("MatMul"),
    C.Conv2d: _conv2d, C.MaxPool2d: _max_pool2d, C.AvgPool2d: _avg_pool2d,
    IDX.Embedding: _embedding, IDX.GetItem: _getitem,
    RNN.LSTMLayer: _recurrent("LSTM"), RNN.GRULayer: _recurrent("GRU"),
    RNN.RNNLayer: _recurrent("RNN"),
}
