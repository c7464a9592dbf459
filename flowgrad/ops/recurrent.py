"""Fused recurrent layers (lecture: "Recurrent Neural Networks" and "Back-Prop in Recurrent
Nets"): one node per layer and direction runs every time step of an Elman RNN, an LSTM
(Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000) or a GRU (Cho et al.
2014), and its backward is back-propagation through time over the saved gate values.

The input projections of all time steps are one GEMM; each step does one GEMM for the recurrent
part and a handful of whole-block array calls (sigmoid computed as 0.5 tanh(x / 2) + 0.5, which
lets the four LSTM gates, or GRU's r and z, go through one ``tanh``). Gate orders and weight
layouts are PyTorch's: LSTM (i, f, g, o), GRU (r, z, n) with n = tanh(W_in x + b_in + r * (W_hn
h + b_hn)).

Sequences are given in packed layout: ``x`` is (N, input_size) with the rows of time step t at
``offsets[t]:offsets[t] + batch_sizes[t]``, batch sizes non-increasing (the longest sequences
first), as in PyTorch's PackedSequence; ``batch_sizes=None`` means every step has the full batch
(N = T * B). Each op returns one array: the outputs of every step (N, H), then the final hidden
state (B, H) and, for the LSTM, the final cell state (B, H).
"""

from __future__ import annotations

import numpy as np

from ..autograd.lowrank import outer_grad
from ..autograd.op import Op
from ..dtypes import FLOATING_SAME


class _Plan:
    """The time steps of one direction: sizes, row offsets, processing order, and where each
    row's previous state and final state live."""

    __slots__ = ("n", "b", "sizes", "offs", "order", "uniform", "reverse", "_prev", "_last")

    def __init__(self, n: int, b: int, batch_sizes, reverse: bool) -> None:
        self.n, self.b, self.reverse = n, b, reverse
        self.uniform = batch_sizes is None
        if self.uniform:
            steps = n // b if b else 0
            self.sizes = (b,) * steps
            self.offs = tuple(range(0, n, b)) if b else ()
        else:
            self.sizes = tuple(int(s) for s in batch_sizes)
            self.offs = tuple(np.concatenate(([0], np.cumsum(self.sizes)[:-1])).tolist())
        steps = len(self.sizes)
        self.order = range(steps - 1, -1, -1) if reverse else range(steps)
        self._prev = self._last = None

    def prev_rows(self, xp, seq, init, t: int, tp):
        """The previous states of step t's rows: ``init`` at a sequence's first step, else the
        rows of step ``tp`` (the step processed before t) in ``seq``."""
        bs = self.sizes[t]
        if tp is None:
            return init[:bs]
        o, sp = self.offs[tp], self.sizes[tp]
        if sp >= bs:
            return seq[o:o + bs]
        return xp.concatenate((seq[o:o + sp], init[sp:bs]))

    def gather_prev(self, xp, seq, init):
        """(N, H): for every row, the state it started from (``prev_rows`` for all steps)."""
        b = self.b
        if self.uniform:
            if self.reverse:
                return xp.concatenate((seq[b:], init))
            return xp.concatenate((init, seq[:self.n - b]))
        if self._prev is None:
            idx = np.empty(self.n, dtype=np.int64)
            tp = None
            for t in self.order:
                bs, o = self.sizes[t], self.offs[t]
                rows = np.arange(bs)
                if tp is None:
                    idx[o:o + bs] = rows
                else:
                    sp = self.sizes[tp]
                    idx[o:o + bs] = np.where(rows < sp, b + self.offs[tp] + rows, rows)
                tp = t
            self._prev = idx
        return xp.concatenate((init, seq))[xp.asarray(self._prev)]

    def last(self, xp, seq):
        """(B, H): each sequence's state after its last step."""
        b = self.b
        if self.reverse or not self.sizes:
            return seq[:b]
        if self.uniform:
            return seq[self.n - b:]
        if self._last is None:
            sizes = np.asarray(self.sizes)
            lengths = (sizes[None, :] > np.arange(b)[:, None]).sum(axis=1)
            self._last = np.asarray(self.offs)[lengths - 1] + np.arange(b)
        return seq[xp.asarray(self._last)]


def _affine_sigmoid(xp, dtype, sizes_kinds):
    """Per-column (pre-scale, post-scale, shift) so that tanh(pre * x) * post + shift is the
    sigmoid for 's' blocks and tanh for 't' blocks."""
    pre, post, shift = [], [], []
    for size, kind in sizes_kinds:
        s = kind == "s"
        pre.append(np.full(size, 0.5 if s else 1.0))
        post.append(np.full(size, 0.5 if s else 1.0))
        shift.append(np.full(size, 0.5 if s else 0.0))
    return tuple(xp.asarray(np.concatenate(a), dtype=dtype) for a in (pre, post, shift))


def _fold_scale(n: int, hidden: int) -> bool:
    """Whether to fold the gates' sigmoid pre-scale into (contiguous copies of) the weights,
    once per call, rather than scale the (N, G*H) gate rows step by step: folding pays for
    itself over long sequences (N >= H rows) and costs more than it saves for a single step
    of a cell (a decoder loop calls the op once per step)."""
    return n >= hidden


def _bias_sum(b_ih, b_hh):
    if b_ih is None:
        return b_hh
    if b_hh is None:
        return b_ih
    return b_ih + b_hh


def _input_grads(needs, k, dG, x, w_ih, hprev, b_ih, b_hh, dG_hh=None):
    """Gradients of x, W_ih, W_hh and the biases (W_ih at argument ``k``) from the
    pre-activation gradients of all steps: three GEMMs and a column sum, once per layer. The
    weights' GEMMs of a call with few rows (a cell's single step) are left to the engine as
    factors (``outer_grad``), which it multiplies once over all the steps that share them."""
    dG_hh = dG if dG_hh is None else dG_hh
    gx = dG @ w_ih if needs[0] else None
    gw_ih = outer_grad(dG, x) if needs[k] else None
    gw_hh = outer_grad(dG_hh, hprev) if needs[k + 1] else None
    gb_ih = dG.sum(axis=0) if b_ih is not None and needs[k + 2] else None
    gb_hh = dG_hh.sum(axis=0) if b_hh is not None and needs[k + 3] else None
    return gx, gw_ih, gw_hh, gb_ih, gb_hh


class LSTMLayer(Op):
    """All time steps of one LSTM layer in one direction.

    forward(x (N, In), h0 (B, H), c0 (B, H), w_ih (4H, In), w_hh (4H, H), b_ih, b_hh (4H,) or
    None, batch_sizes, reverse) -> (N + 2B, H): outputs, h_n, c_n.
    """

    dtype_rule = FLOATING_SAME
    operand_names = ("input", "h0", "c0", "weight_ih", "weight_hh", "bias_ih", "bias_hh")

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse):
        xp = ctx.xp
        n = x.shape[0]
        b, hs = h0.shape
        plan = _Plan(n, b, batch_sizes, reverse)
        pre, post, shift = _affine_sigmoid(xp, x.dtype, ((2 * hs, "s"), (hs, "t"), (hs, "s")))
        fold = _fold_scale(n, hs)
        G = x @ (w_ih * pre[:, None]).T if fold else x @ w_ih.T  # gate pre-activations (N, 4H)
        bias = _bias_sum(b_ih, b_hh)
        if bias is not None:
            G += bias * pre if fold else bias
        whT = xp.ascontiguousarray((w_hh * pre[:, None]).T) if fold else w_hh.T
        out = xp.empty((n + 2 * b, hs), dtype=x.dtype)
        C = xp.empty((n, hs), dtype=x.dtype)
        TC = xp.empty((n, hs), dtype=x.dtype)
        tmp = xp.empty((b, hs), dtype=x.dtype)
        tanh, multiply, matmul = xp.tanh, xp.multiply, xp.matmul
        sizes, offs = plan.sizes, plan.offs
        tp = None
        for t in plan.order:
            bs, o = sizes[t], offs[t]
            e = o + bs
            hp = plan.prev_rows(xp, out, h0, t, tp)
            cp = plan.prev_rows(xp, C, c0, t, tp)
            g = G[o:e]
            g += matmul(hp, whT)
            if not fold:
                g *= pre
            tanh(g, out=g)
            g *= post
            g += shift
            c, tm = C[o:e], tmp[:bs]
            multiply(g[:, hs:2 * hs], cp, out=c)
            multiply(g[:, :hs], g[:, 2 * hs:3 * hs], out=tm)
            c += tm
            tc = TC[o:e]
            tanh(c, out=tc)
            multiply(g[:, 3 * hs:], tc, out=out[o:e])
            tp = t
        out[n:n + b] = plan.last(xp, out[:n])
        out[n + b:] = plan.last(xp, C)
        ctx.plan = plan
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, G, C, TC, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, G, C, TC, out = ctx.saved
        xp, plan = ctx.xp, ctx.plan
        n = x.shape[0]
        b, hs = h0.shape
        hprev = plan.gather_prev(xp, out[:n], h0)
        cprev = plan.gather_prev(xp, C, c0)
        i, f, gg, o_ = G[:, :hs], G[:, hs:2 * hs], G[:, 2 * hs:3 * hs], G[:, 3 * hs:]
        # d(gate pre-activation) = dc * P (gates i, f, g) and dh * Q (gate o), all steps at once
        P = xp.empty((n, 3, hs), dtype=x.dtype)
        xp.multiply(gg, i * (1 - i), out=P[:, 0])
        xp.multiply(cprev, f * (1 - f), out=P[:, 1])
        xp.multiply(i, 1 - gg * gg, out=P[:, 2])
        Q = TC * (o_ * (1 - o_))
        O1 = o_ * (1 - TC * TC)  # dc_t / dh_t
        dG3 = xp.empty((n, 4, hs), dtype=x.dtype)
        dG = dG3.reshape(n, 4 * hs)
        dout = grad[:n]
        dh_c = grad[n:n + b].copy()
        dc_c = grad[n + b:].copy()
        dh = xp.empty((b, hs), dtype=x.dtype)
        dc = xp.empty((b, hs), dtype=x.dtype)
        add, multiply, matmul = xp.add, xp.multiply, xp.matmul
        sizes, offs = plan.sizes, plan.offs
        for t in reversed(plan.order):
            bs, o = sizes[t], offs[t]
            e = o + bs
            dht, dct = dh[:bs], dc[:bs]
            add(dout[o:e], dh_c[:bs], out=dht)
            multiply(dht, O1[o:e], out=dct)
            dct += dc_c[:bs]
            multiply(dct[:, None, :], P[o:e], out=dG3[o:e, :3])
            multiply(dht, Q[o:e], out=dG3[o:e, 3])
            multiply(dct, f[o:e], out=dc_c[:bs])
            matmul(dG[o:e], w_hh, out=dh_c[:bs])
        gx, gw_ih, gw_hh, gb_ih, gb_hh = _input_grads(ctx.needs_input_grad, 3, dG, x, w_ih,
                                                      hprev, b_ih, b_hh)
        return gx, dh_c, dc_c, gw_ih, gw_hh, gb_ih, gb_hh, None, None


class GRULayer(Op):
    """All time steps of one GRU layer in one direction.

    forward(x (N, In), h0 (B, H), w_ih (3H, In), w_hh (3H, H), b_ih, b_hh (3H,) or None,
    batch_sizes, reverse) -> (N + B, H): outputs, h_n.
    """

    dtype_rule = FLOATING_SAME
    operand_names = ("input", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh")

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse):
        xp = ctx.xp
        n = x.shape[0]
        b, hs = h0.shape
        plan = _Plan(n, b, batch_sizes, reverse)
        pre, _, _ = _affine_sigmoid(xp, x.dtype, ((2 * hs, "s"), (hs, "t")))
        fold = _fold_scale(n, hs)
        if fold:
            GI = x @ (w_ih * pre[:, None]).T
            if b_ih is not None:
                GI += b_ih * pre
        else:
            GI = x @ w_ih.T
            if b_ih is not None:
                GI += b_ih
            GI *= pre
        whT = xp.ascontiguousarray((w_hh * pre[:, None]).T) if fold else w_hh.T
        bh = None if b_hh is None else b_hh * pre
        GH = xp.empty((n, 3 * hs), dtype=x.dtype)  # W_hh h + b_hh (r, z columns halved)
        RZ = xp.empty((n, 2 * hs), dtype=x.dtype)
        NN = xp.empty((n, hs), dtype=x.dtype)
        out = xp.empty((n + b, hs), dtype=x.dtype)
        tanh, multiply, matmul = xp.tanh, xp.multiply, xp.matmul
        sizes, offs = plan.sizes, plan.offs
        tp = None
        for t in plan.order:
            bs, o = sizes[t], offs[t]
            e = o + bs
            hp = plan.prev_rows(xp, out, h0, t, tp)
            gh = GH[o:e]
            matmul(hp, whT, out=gh)
            if not fold:
                gh *= pre
            if bh is not None:
                gh += bh
            rz = RZ[o:e]
            xp.add(GI[o:e, :2 * hs], gh[:, :2 * hs], out=rz)
            tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            nt = NN[o:e]
            multiply(rz[:, :hs], gh[:, 2 * hs:], out=nt)
            nt += GI[o:e, 2 * hs:]
            tanh(nt, out=nt)
            ht = out[o:e]
            xp.subtract(hp, nt, out=ht)
            ht *= rz[:, hs:]
            ht += nt
            tp = t
        out[n:] = plan.last(xp, out[:n])
        ctx.plan = plan
        ctx.save_for_backward(x, h0, w_ih, w_hh, b_ih, b_hh, GH, RZ, NN, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, h0, w_ih, w_hh, b_ih, b_hh, GH, RZ, NN, out = ctx.saved
        xp, plan = ctx.xp, ctx.plan
        n = x.shape[0]
        b, hs = h0.shape
        hprev = plan.gather_prev(xp, out[:n], h0)
        r, z = RZ[:, :hs], RZ[:, hs:]
        A = (1 - z) * (1 - NN * NN)          # d pre_n / dh
        B1 = (hprev - NN) * (z * (1 - z))    # d pre_z / dh
        Rd = GH[:, 2 * hs:] * (r * (1 - r))  # d pre_r / d pre_n
        dGI3 = xp.empty((n, 3, hs), dtype=x.dtype)
        dGH3 = xp.empty((n, 3, hs), dtype=x.dtype)
        dGH = dGH3.reshape(n, 3 * hs)
        dout = grad[:n]
        dh_c = grad[n:].copy()
        dh = xp.empty((b, hs), dtype=x.dtype)
        tmp = xp.empty((b, hs), dtype=x.dtype)
        multiply, matmul = xp.multiply, xp.matmul
        sizes, offs = plan.sizes, plan.offs
        for t in reversed(plan.order):
            bs, o = sizes[t], offs[t]
            e = o + bs
            dht = dh[:bs]
            xp.add(dout[o:e], dh_c[:bs], out=dht)
            dn = dGI3[o:e, 2]
            multiply(dht, A[o:e], out=dn)
            multiply(dn, Rd[o:e], out=dGI3[o:e, 0])
            multiply(dht, B1[o:e], out=dGI3[o:e, 1])
            dGH3[o:e, :2] = dGI3[o:e, :2]
            multiply(dn, r[o:e], out=dGH3[o:e, 2])
            matmul(dGH[o:e], w_hh, out=dh_c[:bs])
            multiply(dht, z[o:e], out=tmp[:bs])
            dh_c[:bs] += tmp[:bs]
        dGI = dGI3.reshape(n, 3 * hs)
        gx, gw_ih, gw_hh, gb_ih, gb_hh = _input_grads(ctx.needs_input_grad, 2, dGI, x, w_ih,
                                                      hprev, b_ih, b_hh, dGH)
        return gx, dh_c, gw_ih, gw_hh, gb_ih, gb_hh, None, None


class RNNLayer(Op):
    """All time steps of one Elman RNN layer in one direction, h_t = act(W_ih x_t + b_ih +
    W_hh h_(t-1) + b_hh) with act tanh or relu.

    forward(x (N, In), h0 (B, H), w_ih (H, In), w_hh (H, H), b_ih, b_hh (H,) or None,
    batch_sizes, reverse, nonlinearity) -> (N + B, H): outputs, h_n.
    """

    dtype_rule = FLOATING_SAME
    operand_names = ("input", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh")

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse, nonlinearity):
        xp = ctx.xp
        n = x.shape[0]
        b, hs = h0.shape
        plan = _Plan(n, b, batch_sizes, reverse)
        XP = x @ w_ih.T
        bias = _bias_sum(b_ih, b_hh)
        if bias is not None:
            XP += bias
        whT = xp.ascontiguousarray(w_hh.T)
        out = xp.empty((n + b, hs), dtype=x.dtype)
        relu = nonlinearity == "relu"
        matmul = xp.matmul
        sizes, offs = plan.sizes, plan.offs
        tp = None
        for t in plan.order:
            o = offs[t]
            e = o + sizes[t]
            hp = plan.prev_rows(xp, out, h0, t, tp)
            ht = out[o:e]
            matmul(hp, whT, out=ht)
            ht += XP[o:e]
            if relu:
                xp.maximum(ht, 0, out=ht)
            else:
                xp.tanh(ht, out=ht)
            tp = t
        out[n:] = plan.last(xp, out[:n])
        ctx.plan, ctx.relu = plan, relu
        ctx.save_for_backward(x, h0, w_ih, w_hh, b_ih, b_hh, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, h0, w_ih, w_hh, b_ih, b_hh, out = ctx.saved
        xp, plan = ctx.xp, ctx.plan
        n = x.shape[0]
        b, hs = h0.shape
        hs_all = out[:n]
        D = (hs_all > 0).astype(x.dtype) if ctx.relu else 1 - hs_all * hs_all
        dG = xp.empty((n, hs), dtype=x.dtype)
        dout = grad[:n]
        dh_c = grad[n:].copy()
        dh = xp.empty((b, hs), dtype=x.dtype)
        sizes, offs = plan.sizes, plan.offs
        for t in reversed(plan.order):
            bs, o = sizes[t], offs[t]
            e = o + bs
            dht = dh[:bs]
            xp.add(dout[o:e], dh_c[:bs], out=dht)
            xp.multiply(dht, D[o:e], out=dG[o:e])
            xp.matmul(dG[o:e], w_hh, out=dh_c[:bs])
        hprev = plan.gather_prev(xp, hs_all, h0)
        gx, gw_ih, gw_hh, gb_ih, gb_hh = _input_grads(ctx.needs_input_grad, 2, dG, x, w_ih,
                                                      hprev, b_ih, b_hh)
        return gx, dh_c, gw_ih, gw_hh, gb_ih, gb_hh, None, None, None
