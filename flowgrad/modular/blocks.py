"""Block-diagonal recurrent cells: K independent LSTM or GRU cells ("modules") advanced together.

Recurrent Independent Mechanisms (Goyal et al. 2019, arXiv 1909.10893, section 2) split the
hidden state into K blocks, each with its own recurrent parameters. The official code
(anirudh9119/RIMs, ``event_based/BlockLSTM.py``) keeps one ``nn.LSTMCell`` over the whole state
and zeroes its off-block-diagonal weights; here the blocks are stored directly, one weight per
module, and every module is advanced by one batched matrix product over the module axis (no
Python loop over modules):

    weight_ih (K, in, G*U), weight_hh (K, U, G*U), bias_ih, bias_hh (K, G*U)

with G = 4 (LSTM gates i, f, g, o) or 3 (GRU gates r, z, n), in PyTorch's order, so that module
k is exactly ``nn.LSTMCell`` / ``nn.GRUCell`` with ``weight_ih = weight_ih[k].T`` (and
``weight_hh[k].T``, ``bias_ih[k]``, ``bias_hh[k]``). Each cell step is one fused node whose
backward is written out over the saved gate values.
"""

from __future__ import annotations

import math

from .. import creation
from ..autograd.lowrank import outer_grad
from ..autograd.op import Op
from ..dtypes import FLOATING_SAME
from ..errors import ShapeError
from ..nn import init
from ..nn.module import Module
from ..nn.parameter import Parameter

__all__ = ["BlockLSTMCell", "BlockGRUCell"]


def _sigmoid(xp, a):
    """Logistic sigmoid as 0.5 tanh(a / 2) + 0.5 (no overflow, one transcendental call)."""
    return xp.tanh(a * a.dtype.type(0.5)) * a.dtype.type(0.5) + a.dtype.type(0.5)


def _gates(xp, x, h, w_ih, w_hh, b_ih, b_hh):
    """Module-major pre-activations: x (B, K, in), h (B, K, U) -> (x_t, h_t, W x + b, W h + b)
    with x_t (K, B, in), h_t (K, B, U) and the two (K, B, G*U) products."""
    xt = x.transpose(1, 0, 2)
    ht = h.transpose(1, 0, 2)
    gx = xp.matmul(xt, w_ih)
    gh = xp.matmul(ht, w_hh)
    if b_ih is not None:
        gx += b_ih[:, None, :]
    if b_hh is not None:
        gh += b_hh[:, None, :]
    return xt, ht, gx, gh


def _param_grads(xp, needs, xt, ht, dgx, dgh, w_ih, w_hh, b_ih, b_hh):
    """Gradients of x, h (through W_hh only), W_ih, W_hh, b_ih, b_hh from the module-major
    pre-activation gradients dgx, dgh (K, B, G*U); inputs of the (B, K, .) layout."""
    gx = xp.matmul(dgx, w_ih.transpose(0, 2, 1)).transpose(1, 0, 2) if needs[0] else None
    gh = xp.matmul(dgh, w_hh.transpose(0, 2, 1)).transpose(1, 0, 2)
    gw_ih = outer_grad(xt, dgx) if needs[3] else None
    gw_hh = outer_grad(ht, dgh) if needs[4] else None
    gb_ih = dgx.sum(axis=1) if b_ih is not None and needs[5] else None
    gb_hh = dgh.sum(axis=1) if b_hh is not None and needs[6] else None
    return gx, gh, gw_ih, gw_hh, gb_ih, gb_hh


class BlockLSTMStep(Op):
    """One step of K LSTM cells. forward(x (B, K, in), h (B, K, U), c (B, K, U), w_ih, w_hh,
    b_ih, b_hh) -> (2, B, K, U): the new h and c (Hochreiter & Schmidhuber 1997, forget gate of
    Gers et al. 2000; c' = f c + i g, h' = o tanh(c'))."""

    dtype_rule = FLOATING_SAME

    @staticmethod
    def forward(ctx, x, h, c, w_ih, w_hh, b_ih, b_hh):
        xp = ctx.xp
        xt, ht, gx, gh = _gates(xp, x, h, w_ih, w_hh, b_ih, b_hh)
        gx += gh
        u = h.shape[2]
        # one tanh for the four gates: sigmoid(a) = 0.5 tanh(a / 2) + 0.5 on i, f, o
        half = gx.dtype.type(0.5)
        gx[..., :2 * u] *= half
        gx[..., 3 * u:] *= half
        act = xp.tanh(gx, out=gx)
        for part in (act[..., :2 * u], act[..., 3 * u:]):
            part *= half
            part += half
        i, f, g, o = act[..., :u], act[..., u:2 * u], act[..., 2 * u:3 * u], act[..., 3 * u:]
        ct = c.transpose(1, 0, 2)
        c_new = f * ct + i * g
        tc = xp.tanh(c_new)
        out = xp.empty((2,) + h.shape, dtype=h.dtype)
        out[0] = (o * tc).transpose(1, 0, 2)
        out[1] = c_new.transpose(1, 0, 2)
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(xt, ht, ct, act, tc, w_ih, w_hh, b_ih, b_hh)
        return out

    @staticmethod
    def backward(ctx, grad):
        xt, ht, ct, act, tc, w_ih, w_hh, b_ih, b_hh = ctx.saved_tensors
        u = ht.shape[2]
        dh = grad[0].transpose(1, 0, 2)
        dc = grad[1].transpose(1, 0, 2)
        i, f, g, o = act[..., :u], act[..., u:2 * u], act[..., 2 * u:3 * u], act[..., 3 * u:]
        dc = dc + dh * o * (1 - tc * tc)
        d = ctx.xp.empty_like(act)
        d[..., :u] = dc * g * i * (1 - i)
        d[..., u:2 * u] = dc * ct * f * (1 - f)
        d[..., 2 * u:3 * u] = dc * i * (1 - g * g)
        d[..., 3 * u:] = dh * tc * o * (1 - o)
        gx, gh, gw_ih, gw_hh, gb_ih, gb_hh = _param_grads(
            ctx.xp, ctx.needs_input_grad, xt, ht, d, d, w_ih, w_hh, b_ih, b_hh)
        gc = (dc * f).transpose(1, 0, 2)
        return gx, gh, gc, gw_ih, gw_hh, gb_ih, gb_hh


class BlockGRUStep(Op):
    """One step of K GRU cells (Cho et al. 2014) with PyTorch's formulation:
    r = σ(W_ir x + b_ir + W_hr h + b_hr), z likewise, n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
    h' = (1 − z) n + z h. forward(x (B, K, in), h (B, K, U), w_ih, w_hh, b_ih, b_hh) -> (B, K, U).
    """

    dtype_rule = FLOATING_SAME

    @staticmethod
    def forward(ctx, x, h, w_ih, w_hh, b_ih, b_hh):
        xp = ctx.xp
        xt, ht, gx, gh = _gates(xp, x, h, w_ih, w_hh, b_ih, b_hh)
        u = h.shape[2]
        rz = _sigmoid(xp, gx[..., :2 * u] + gh[..., :2 * u])
        r, z = rz[..., :u], rz[..., u:]
        n = xp.tanh(gx[..., 2 * u:] + r * gh[..., 2 * u:])
        h_new = n + z * (ht - n)
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(xt, ht, rz, n, gh[..., 2 * u:], w_ih, w_hh, b_ih, b_hh)
        return h_new.transpose(1, 0, 2)

    @staticmethod
    def backward(ctx, grad):
        xt, ht, rz, n, ghn, w_ih, w_hh, b_ih, b_hh = ctx.saved_tensors
        u = ht.shape[2]
        r, z = rz[..., :u], rz[..., u:]
        dh = grad.transpose(1, 0, 2)
        dn = dh * (1 - z) * (1 - n * n)
        dgx = ctx.xp.empty(rz.shape[:2] + (3 * u,), dtype=rz.dtype)
        dgx[..., :u] = dn * ghn * r * (1 - r)
        dgx[..., u:2 * u] = dh * (ht - n) * z * (1 - z)
        dgx[..., 2 * u:] = dn
        dgh = dgx.copy()
        dgh[..., 2 * u:] = dn * r
        needs = ctx.needs_input_grad
        # the op's arguments are (x, h, w_ih, w_hh, b_ih, b_hh): shift to _param_grads' layout
        gx, gh, gw_ih, gw_hh, gb_ih, gb_hh = _param_grads(
            ctx.xp, (needs[0], needs[1], False) + needs[2:], xt, ht, dgx, dgh, w_ih, w_hh,
            b_ih, b_hh)
        gh = gh + (dh * z).transpose(1, 0, 2)
        return gx, gh, gw_ih, gw_hh, gb_ih, gb_hh


class _BlockCell(Module):
    """Shared constructor, parameters and checks of the block cells."""

    gates = 0
    kind = ""

    def __init__(self, input_size_per_unit: int, unit_size: int, num_units: int,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        for name, value in (("input_size_per_unit", input_size_per_unit),
                            ("unit_size", unit_size), ("num_units", num_units)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive int, "
                                 f"got {value!r}")
        self.input_size_per_unit = input_size_per_unit
        self.unit_size = unit_size
        self.num_units = num_units
        width = self.gates * unit_size
        self.weight_ih = Parameter(creation.empty((num_units, input_size_per_unit, width),
                                                  dtype=dtype, device=device))
        self.weight_hh = Parameter(creation.empty((num_units, unit_size, width), dtype=dtype,
                                                  device=device))
        if bias:
            self.bias_ih = Parameter(creation.empty((num_units, width), dtype=dtype,
                                                    device=device))
            self.bias_hh = Parameter(creation.empty((num_units, width), dtype=dtype,
                                                    device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias U(-1/sqrt(unit_size), 1/sqrt(unit_size)): each module starts
        as PyTorch initialises an LSTMCell/GRUCell of hidden size unit_size."""
        bound = 1.0 / math.sqrt(self.unit_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size_per_unit}, {self.unit_size}, num_units={self.num_units}"
        if self.bias_ih is None:
            s += ", bias=False"
        return s

    def _check(self, x, state) -> None:
        name = type(self).__name__
        k, n_in, u = self.num_units, self.input_size_per_unit, self.unit_size
        if x.ndim != 3 or x.shape[1] != k or x.shape[2] != n_in:
            raise ShapeError(f"{name}: input of shape {tuple(x.shape)}, expected (batch, "
                             f"num_units={k}, input_size_per_unit={n_in})")
        expected = (x.shape[0], k, u)
        for s in state:
            if tuple(s.shape) != expected:
                raise ShapeError(f"{name}: state of shape {tuple(s.shape)}, expected "
                                 f"(batch, num_units, unit_size) = {expected}")

    def _zeros(self, x):
        return creation.zeros((x.shape[0], self.num_units, self.unit_size), dtype=x.dtype,
                              device=x.device)


class BlockLSTMCell(_BlockCell):
    """K independent LSTM cells as one block-diagonal cell (RIMs' ``BlockLSTM``).

    forward(x (B, K, in), state=(h, c) each (B, K, U) or None for zeros) -> (h', c').
    Module k equals ``nn.LSTMCell(in, U)`` with weight_ih = weight_ih[k].T, weight_hh =
    weight_hh[k].T, bias_ih = bias_ih[k], bias_hh = bias_hh[k].
    """

    gates = 4

    def forward(self, x, state=None):
        if state is None:
            state = (self._zeros(x), self._zeros(x))
        h, c = state
        self._check(x, (h, c))
        p = self._parameters
        out = BlockLSTMStep.apply(x, h, c, p["weight_ih"], p["weight_hh"], p["bias_ih"],
                                  p["bias_hh"])
        return out[0], out[1]


class BlockGRUCell(_BlockCell):
    """K independent GRU cells as one block-diagonal cell (RIMs' ``BlockGRU``).

    forward(x (B, K, in), state=h (B, K, U) or None for zeros) -> h'. Module k equals
    ``nn.GRUCell(in, U)`` with the slices of the parameters transposed as for BlockLSTMCell.
    """

    gates = 3

    def forward(self, x, state=None):
        h = self._zeros(x) if state is None else state
        self._check(x, (h,))
        p = self._parameters
        return BlockGRUStep.apply(x, h, p["weight_ih"], p["weight_hh"], p["bias_ih"],
                                  p["bias_hh"])
