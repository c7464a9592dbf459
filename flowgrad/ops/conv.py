"""Convolution and pooling on NCHW arrays (lecture: "Convolutional Nets"; LeCun et al. 1998,
"Gradient-based learning applied to document recognition").

A convolution is GEMMs over an im2col matrix: every output position's receptive field is one row
(or column), gathered by one copy of a sliding-window view. Backward's weight gradient is a GEMM
with the same matrix; its input gradient is a GEMM per kernel offset (or one for all offsets, when
they write few channels or when intra-op threads share the adds), each product added into the
strided slice of the input that the offset meets (col2im as kh*kw slice-adds, never
``np.add.at``). Large copies and adds go in blocks of images to the intra-op threads. Two
internal memory layouts share that arithmetic and are picked per call by size (see
``channels_last``): channels-last for many channels on small images, channels-first for few
channels, large images and 1x1 kernels. Pooling works on NCHW directly, as kh*kw strided
slices of the (padded) input, with arithmetic (no masked copies).

Weights keep PyTorch's layouts: conv (C_out, C_in/groups, kh, kw), transposed conv
(C_in, C_out/groups, kh, kw). Every op keeps its input dtype (float32 stays float32).
"""

from __future__ import annotations

import operator

import numpy as np

from .. import backend, intraop
from ..autograd.op import Op
from ..errors import DTypeError, ShapeError
from . import depthwise

# Arguments -------------------------------------------------------------------------------------

def pair(v, name: str, op: str) -> tuple:
    """(a, b) from an int or a 1- or 2-sequence of ints (PyTorch's _pair)."""
    try:
        if not isinstance(v, (tuple, list)):
            a = operator.index(v)
            return (a, a)
        t = tuple(operator.index(a) for a in v)
    except TypeError:
        raise ShapeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}") from None
    if len(t) == 1:
        return t * 2
    if len(t) != 2:
        raise ShapeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    return t


def pads(p, op: str) -> tuple:
    """((top, bottom), (left, right)) from an int, a pair (ph, pw), or a pair of pairs."""
    nested = isinstance(p, (tuple, list)) and len(p) == 2
    if nested and all(isinstance(a, (tuple, list)) for a in p):
        (t, b), (left, r) = pair(p[0], "padding", op), pair(p[1], "padding", op)
    else:
        ph, pw = pair(p, "padding", op)
        t = b = ph
        left = r = pw
    if min(t, b, left, r) < 0:
        raise ShapeError(f"{op}: padding must be non-negative, got {p!r}")
    return (t, b), (left, r)


def _positive(op: str, **kw) -> None:
    for name, v in kw.items():
        if min(v) < 1:
            raise ShapeError(f"{op}: {name} must be positive, got {v}")


# Layouts -----------------------------------------------------------------------------------------
#
# Two memory layouts, the same arithmetic:
#   channels-last  (G, N, H, W, Cg): cols (G, N*Ho*Wo, kh*kw*Cg), one big GEMM per group; wins
#                  when channels are many and images small (long rows, one efficient GEMM).
#   channels-first (N, G, Cg, H, W): cols (N, G, Cg*kh*kw, Ho*Wo), one GEMM per image and group
#                  that writes NCHW directly; wins when channels are few and images large.

LAYOUT = None  # None: choose per call; "nhwc" or "nchw" forces one (tests run both)


def channels_last(k: int, spatial: int, taps: int) -> bool:
    """Whether a conv runs channels-last: its im2col rows hold ``k`` = channels x taps entries,
    with ``spatial`` positions per image and ``taps`` = kh*kw kernel offsets. Channels-first
    wins for few channels (the GEMMs write NCHW, no transposes), large images, and 1x1
    kernels (no im2col at all); measured on 2-thread CPU workloads."""
    if LAYOUT is not None:
        return LAYOUT == "nhwc"
    return k >= 64 and spatial <= 1024 and taps > 1


def _win(i: int, d: int, s: int, n: int) -> slice:
    """Slice of the rows that kernel offset ``i`` (dilation d) meets at n outputs of stride s."""
    return slice(i * d, i * d + s * (n - 1) + 1, s)


def _window_view(xp, a, axes, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
                 Ho: int, Wo: int):
    """Sliding-window view of ``a`` over its two spatial ``axes``: (..., Ho, Wo, ..., kh, kw)."""
    v = backend.sliding_window_view(xp, a, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axes)
    idx = [slice(None)] * v.ndim
    idx[axes[0]] = slice(0, sh * (Ho - 1) + 1, sh)
    idx[axes[1]] = slice(0, sw * (Wo - 1) + 1, sw)
    idx[-2] = slice(None, None, dh)
    idx[-1] = slice(None, None, dw)
    return v[tuple(idx)]


def _pad_last(xp, x, groups: int, top: int, left: int, rows: int, cols: int):
    """(N, C, H, W) -> channels-last (G, N, rows, cols, C/G), x at (top, left), zeros around."""
    N, C, H, W = x.shape
    src = x.reshape(N, groups, C // groups, H, W).transpose(1, 0, 3, 4, 2)
    if rows == H and cols == W:
        return backend.copy_contiguous(xp, src, axis=1)
    out = xp.zeros((groups, N, rows, cols, C // groups), dtype=x.dtype)
    backend.copy_into(xp, out[:, :, top:top + H, left:left + W], src, axis=1)
    return out


def _pad_first(xp, x, top: int, left: int, rows: int, cols: int):
    """(N, C, H, W) -> (N, C, rows, cols), x at (top, left), zeros around (x itself if no pad)."""
    N, C, H, W = x.shape
    if rows == H and cols == W:
        return x
    out = xp.zeros((N, C, rows, cols), dtype=x.dtype)
    out[:, :, top:top + H, left:left + W] = x
    return out


def _from_last(xp, a, top: int, left: int, H: int, W: int, bias=None):
    """Channels-last (G, N, rows, cols, Cg) -> its (N, G*Cg, H, W) window at (top, left), as a
    new C-contiguous array, plus ``bias`` (G*Cg,) in the same pass."""
    G, N, _, _, Cg = a.shape
    out = xp.empty((N, G * Cg, H, W), dtype=a.dtype)
    src = a[:, :, top:top + H, left:left + W].transpose(1, 0, 4, 2, 3)
    dst = out.reshape(N, G, Cg, H, W)
    if bias is None:
        backend.copy_into(xp, dst, src)
    else:
        b = bias.reshape(1, G, Cg, 1, 1)
        intraop.for_rows(lambda lo, hi: xp.add(src[lo:hi], b, out=dst[lo:hi]), N, out.size,
                         xp is np)
    return out


def _from_first(xp, a, top: int, left: int, H: int, W: int):
    """(N, C, rows, cols) -> its (N, C, H, W) window at (top, left), C-contiguous."""
    if a.shape[2:] == (H, W):
        return a
    return xp.ascontiguousarray(a[:, :, top:top + H, left:left + W])


def _im2col_last(xp, a, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, Ho: int, Wo: int):
    """(G, N, Hp, Wp, Cg) -> (G, N*Ho*Wo, kh*kw*Cg): one receptive field per row, (i, j, c)
    order, copied once from a sliding-window view."""
    G, N = a.shape[:2]
    v = _window_view(xp, a, (2, 3), kh, kw, sh, sw, dh, dw, Ho, Wo)  # (G, N, Ho, Wo, Cg, kh, kw)
    return backend.copy_contiguous(xp, v.transpose(0, 1, 2, 3, 5, 6, 4), axis=1).reshape(
        G, N * Ho * Wo, -1)


def _im2col_first(xp, a, groups: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
                  Ho: int, Wo: int, out=None):
    """(N, C, Hp, Wp) -> (N, G, Cg*kh*kw, Ho*Wo): one receptive field per column, (c, i, j)
    order, copied once from a sliding-window view (into ``out`` when given)."""
    N, C, Hp, Wp = a.shape
    a = a.reshape(N, groups, C // groups, Hp, Wp)
    v = _window_view(xp, a, (3, 4), kh, kw, sh, sw, dh, dw, Ho, Wo)  # (N, G, Cg, Ho, Wo, kh, kw)
    v = v.transpose(0, 1, 2, 5, 6, 3, 4)
    if out is None:
        return xp.ascontiguousarray(v).reshape(N, groups, -1, Ho * Wo)
    out.reshape(v.shape)[...] = v
    return out


def _image_blocks(xp, n: int, numbers: int):
    """The blocks of images that the intra-op threads take in the channels-first path, each
    padding, copying and multiplying its own images with the BLAS held to one thread; None
    where the work is done at once (a GPU array, one thread, a small problem, or a BLAS that
    cannot be held to one thread: the threads' products would queue at it)."""
    if xp is not np:
        return None
    blocks = intraop.blas_spans(n, numbers)
    return blocks if len(blocks) > 1 else None


def _conv_first(xp, x, wk, bias, pads: tuple, geom: tuple):
    """Channels-first convolution of x (N, C, H, W): zero padding to (Hp, Wp) with x at
    (top, left), im2col, wk (G, Og, K) @ cols per image, plus ``bias`` (G*Og,) or None ->
    (out (N, G, Og, Ho*Wo) or None where wk is None, cols (N, G, K, Ho*Wo)). With several
    intra-op threads each pads, copies and multiplies a block of images (its copies still in
    cache for its GEMMs)."""
    top, left, Hp, Wp = pads
    G, kh, kw, sh, sw, dh, dw, Ho, Wo = geom
    N, C, H, W = x.shape
    K = C // G * kh * kw
    Og = 0 if wk is None else wk.shape[1]
    pointwise = (kh, kw, sh, sw, Hp, Wp) == (1, 1, 1, 1, H, W)  # cols is x itself, no copy
    blocks = None if pointwise else _image_blocks(xp, N, N * G * (Og + K) * Ho * Wo)
    if blocks is None:
        cols = _im2col_first(xp, _pad_first(xp, x, top, left, Hp, Wp), G, kh, kw, sh, sw, dh,
                             dw, Ho, Wo)
        if wk is None:
            return None, cols
        out = (wk[0] @ cols[:, 0] if G == 1 else wk @ cols).reshape(N, G, Og, Ho * Wo)
        if bias is not None:
            out += bias.reshape(G, Og, 1)
        return out, cols
    cols = np.empty((N, G, K, Ho * Wo), dtype=x.dtype)
    out = None if wk is None else np.empty((N, G, Og, Ho * Wo), dtype=x.dtype)

    def block(lo: int, hi: int) -> None:
        a = _pad_first(xp, x[lo:hi], top, left, Hp, Wp)
        _im2col_first(xp, a, G, kh, kw, sh, sw, dh, dw, Ho, Wo, out=cols[lo:hi])
        if wk is not None:
            np.matmul(wk, cols[lo:hi], out=out[lo:hi])
            if bias is not None:
                out[lo:hi] += bias.reshape(G, Og, 1)
    intraop.run_blas_single(block, blocks)
    return out, cols


# col2im with at most this many output columns (kernel offsets x channels written) makes one
# GEMM for all offsets: a GEMM per offset with a few columns runs at matrix-vector speed
ONE_GEMM_COLUMNS = 256
# with several intra-op threads, col2im's threads hold every offset's product for this many
# numbers at most in all (each a chunk of its images) while they add them into the canvas
SHARED_BLOCK = 1 << 22


def _col2im_last(g, w_k, canvas, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
                 Ho: int, Wo: int):
    """canvas (G, N, Hp, Wp, B) += col2im(g @ w_k): for each kernel offset k the product
    g (G, N*Ho*Wo, A) @ w_k[k] (G, A, B), added into the strided slice of the canvas that
    offset k meets: kh*kw slice-adds, the adjoint of _im2col_last.

    On one thread each offset's GEMM is added at once (still in cache); with few output
    columns (kh*kw*B <= ONE_GEMM_COLUMNS) one GEMM computes every offset's product. With
    several intra-op threads and a large product, each thread takes a block of images and, a
    chunk of them at a time, computes every offset's product with the BLAS held to one thread
    and adds it into its own images: the threads' GEMMs and adds run side by side instead of
    the adds waiting for a GEMM over all images. Where the BLAS cannot be held to one thread,
    one GEMM per chunk uses its threads and the intra-op threads share the adds."""
    G, N, _, _, B = canvas.shape
    taps = kh * kw
    wins = [(_win(i, dh, sh, Ho), _win(j, dw, sw, Wo)) for i in range(kh) for j in range(kw)]
    total = N * Ho * Wo * taps * B
    shared = (isinstance(canvas, np.ndarray) and intraop.get_num_threads() > 1
              and total >= intraop.MIN_ELEMENTS and N > 1)
    if not (shared or taps * B <= ONE_GEMM_COLUMNS):
        for k, (r, c) in enumerate(wins):
            p = (g[0] @ w_k[k, 0] if G == 1 else g @ w_k[k]).reshape(G, N, Ho, Wo, B)
            canvas[:, :, r, c] += p
        return
    w_all = w_k.transpose(1, 2, 0, 3).reshape(G, w_k.shape[2], taps * B)
    threads = intraop.get_num_threads()
    chunk = max(1, SHARED_BLOCK // (threads * Ho * Wo * taps * B)) if shared else N
    g4 = g.reshape(G, N, Ho * Wo, -1)

    def product(n0: int, n1: int):
        rows = g4[:, n0:n1].reshape(G, (n1 - n0) * Ho * Wo, -1)
        return (rows[0] @ w_all[0] if G == 1 else rows @ w_all).reshape(
            G, n1 - n0, Ho, Wo, taps, B)

    def add(dst, every) -> None:
        for k, (r, c) in enumerate(wins):
            dst[:, :, r, c] += every[:, :, :, :, k]

    if shared and intraop.blas_single_available():
        def block(lo: int, hi: int) -> None:
            for n0 in range(lo, hi, chunk):
                n1 = min(hi, n0 + chunk)
                add(canvas[:, n0:n1], product(n0, n1))
        intraop.run_blas_single(block, intraop.spans(N, total))
        return
    for n0 in range(0, N, chunk):
        n1 = min(N, n0 + chunk)
        every = product(n0, n1)
        intraop.for_rows(lambda lo, hi, n0=n0, every=every: add(
            canvas[:, n0 + lo:n0 + hi], every[:, lo:hi]), n1 - n0, every.size, shared)


def _col2im_first(w_k, g, canvas, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
                  Ho: int, Wo: int):
    """canvas (N, G*B, Hp, Wp) += col2im(w_k @ g): for each kernel offset k the per-image GEMMs
    w_k[k] (G, B, A) @ g (N, G, A, Ho*Wo), added into the strided slice offset k meets (the
    adjoint of _im2col_first); with few output channels one GEMM computes every offset's
    product, as in _col2im_last. With several intra-op threads each takes a block of
    images."""
    N, _, Hp, Wp = canvas.shape
    G, B = w_k.shape[1], w_k.shape[2]
    blocks = _image_blocks(backend.get_array_module(canvas), N,
                           N * G * B * kh * kw * Ho * Wo)
    if blocks is not None:  # each thread its own images
        intraop.run_blas_single(lambda lo, hi: _col2im_first(
            w_k, g[lo:hi], canvas[lo:hi], kh, kw, sh, sw, dh, dw, Ho, Wo), blocks)
        return
    c5 = canvas.reshape(N, G, B, Hp, Wp)
    every = None
    if kh * kw * B <= ONE_GEMM_COLUMNS:  # few output channels: one GEMM for every offset
        w_all = w_k.transpose(1, 0, 2, 3).reshape(G, kh * kw * B, w_k.shape[3])
        every = (w_all @ g).reshape(N, G, kh * kw, B, Ho, Wo)
    k = 0
    for i in range(kh):
        rows = _win(i, dh, sh, Ho)
        for j in range(kw):
            if every is not None:
                p = every[:, :, k]
            else:
                p = (w_k[k] @ g).reshape(N, G, B, Ho, Wo)
            c5[:, :, :, rows, _win(j, dw, sw, Wo)] += p
            k += 1


def _check_dtypes(op: str, x, w, b) -> None:
    if w.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
        bias = "" if b is None else f", bias {b.dtype}"
        raise DTypeError(f"{op}: input is {x.dtype} but weight is {w.dtype}{bias}; they must have "
                         "the same dtype (convert with .float() or .double())")


def _check_conv(op: str, x, w, b, groups: int, transposed: bool) -> None:
    """Shared checks of conv and transposed conv: ranks, channels, groups, bias."""
    if x.ndim != 4:
        raise ShapeError(f"{op}: expected a 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")
    if w.ndim != 4:
        layout = "(C_in, C_out/groups, kh, kw)" if transposed else "(C_out, C_in/groups, kh, kw)"
        raise ShapeError(f"{op}: expected a 4-D weight {layout}, got shape {tuple(w.shape)}")
    if groups < 1:
        raise ShapeError(f"{op}: groups must be positive, got {groups}")
    C = x.shape[1]
    in_dim = w.shape[0] if transposed else w.shape[1] * groups
    out_dim = w.shape[1] * groups if transposed else w.shape[0]
    if w.shape[0] % groups:
        raise ShapeError(f"{op}: weight {tuple(w.shape)} has {w.shape[0]} in dimension 0, "
                         f"which is not divisible by groups={groups}")
    if C != in_dim:
        raise ShapeError(f"{op}: input has {C} channels (shape {tuple(x.shape)}) but the weight "
                         f"{tuple(w.shape)} expects {in_dim} (groups={groups})")
    if b is not None and tuple(b.shape) != (out_dim,):
        raise ShapeError(f"{op}: bias has shape {tuple(b.shape)} but the weight "
                         f"{tuple(w.shape)} gives {out_dim} output channels")
    _check_dtypes(op, x, w, b)


# Convolution ------------------------------------------------------------------------------------

class Conv2d(Op):
    """Cross-correlation of x (N, C, H, W) with w (O, C/groups, kh, kw), plus bias b (O,) or None
    -> (N, O, Ho, Wo); zero padding int, (ph, pw) or ((top, bottom), (left, right)).

    im2col (one copy of a sliding-window view) and GEMMs; backward: weight grad by GEMM, input
    grad by one GEMM per kernel offset added into strided slices (col2im, kh*kw slice-adds).
    """

    @staticmethod
    def forward(ctx, x, w, b, stride=1, padding=0, dilation=1, groups=1):
        xp = ctx.xp
        sh, sw = pair(stride, "stride", "conv2d")
        dh, dw = pair(dilation, "dilation", "conv2d")
        (pt, pb), (pl, pr) = pads(padding, "conv2d")
        _positive("conv2d", stride=(sh, sw), dilation=(dh, dw))
        G = groups
        _check_conv("conv2d", x, w, b, G, False)
        N, C, H, W = x.shape
        O, Cg, kh, kw = w.shape
        Hp, Wp = H + pt + pb, W + pl + pr
        Ho = (Hp - dh * (kh - 1) - 1) // sh + 1
        Wo = (Wp - dw * (kw - 1) - 1) // sw + 1
        if Ho < 1 or Wo < 1:
            raise ShapeError(
                f"conv2d: the input {tuple(x.shape)} padded to {Hp}x{Wp} is smaller than the "
                f"kernel {kh}x{kw} (dilated to {dh * (kh - 1) + 1}x{dw * (kw - 1) + 1})")
        Og = O // G
        if depthwise.applies(x.shape, w.shape, G, (sh, sw)) and LAYOUT is None:
            out, flat = depthwise.forward(xp, x, w, b, ((pt, pb), (pl, pr)), (dh, dw))
            ctx.geom = ("depthwise", x.shape, ((pt, pb), (pl, pr)), (dh, dw))
            ctx.save_for_backward(flat if ctx.needs_input_grad[1] else None, w, x)
            return out
        last = channels_last(Cg * kh * kw, Ho * Wo, kh * kw)
        if last:
            a = _pad_last(xp, x, G, pt, pl, Hp, Wp)
            cols = _im2col_last(xp, a, kh, kw, sh, sw, dh, dw, Ho, Wo)    # (G, M, kh*kw*Cg)
            wk = w.reshape(G, Og, Cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(G, -1, Og)
            y = cols[0] @ wk[0] if G == 1 else cols @ wk                  # (G, M, Og)
            out = _from_last(xp, y.reshape(G, N, Ho, Wo, Og), 0, 0, Ho, Wo, b)
        else:
            out, cols = _conv_first(xp, x, w.reshape(G, Og, -1), b, (pt, pl, Hp, Wp),
                                    (G, kh, kw, sh, sw, dh, dw, Ho, Wo))
            out = out.reshape(N, O, Ho, Wo)
        ctx.geom = (last, N, C, H, W, G, Og, kh, kw, sh, sw, dh, dw, pt, pl, Hp, Wp, Ho, Wo)
        # x too: cols may be a view of it (1x1 kernels), so in-place changes must be caught
        ctx.save_for_backward(cols if ctx.needs_input_grad[1] else None, w, x)
        return out

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        cols, w, _ = ctx.saved
        needs = ctx.needs_input_grad
        if ctx.geom[0] == "depthwise":
            _, shape, pads_, dilation = ctx.geom
            gx, gw = depthwise.backward(xp, grad, cols, w, shape, pads_, dilation,
                                        needs[0], needs[1])
            return gx, gw, grad.sum(axis=(0, 2, 3)) if needs[2] else None, None, None, None, None
        last, N, C, H, W, G, Og, kh, kw, sh, sw, dh, dw, pt, pl, Hp, Wp, Ho, Wo = ctx.geom
        O, Cg = G * Og, C // G
        gx = gw = gb = None
        if last:
            g = backend.copy_contiguous(xp, grad.reshape(N, G, Og, Ho, Wo).transpose(
                1, 0, 3, 4, 2), axis=1)
            g = g.reshape(G, N * Ho * Wo, Og)
            if needs[0]:
                w_k = xp.ascontiguousarray(w.reshape(G, Og, Cg, kh * kw).transpose(3, 0, 1, 2))
                canvas = xp.zeros((G, N, Hp, Wp, Cg), dtype=grad.dtype)
                _col2im_last(g, w_k, canvas, kh, kw, sh, sw, dh, dw, Ho, Wo)
                gx = _from_last(xp, canvas, pt, pl, H, W)
            if needs[1]:
                gwk = cols.transpose(0, 2, 1) @ g                          # (G, kh*kw*Cg, Og)
                gw = xp.ascontiguousarray(gwk.reshape(G, kh, kw, Cg, Og).transpose(
                    0, 4, 3, 1, 2)).reshape(O, Cg, kh, kw)
        else:
            g = xp.ascontiguousarray(grad).reshape(N, G, Og, Ho * Wo)
            if needs[0] and (kh, kw, sh, sw, Hp, Wp) == (1, 1, 1, 1, H, W):
                gx = (w.reshape(G, Og, Cg).transpose(0, 2, 1) @ g).reshape(N, C, H, W)
            elif needs[0]:
                w_k = xp.ascontiguousarray(w.reshape(G, Og, Cg, kh * kw).transpose(3, 0, 2, 1))
                canvas = xp.zeros((N, C, Hp, Wp), dtype=grad.dtype)
                _col2im_first(w_k, g, canvas, kh, kw, sh, sw, dh, dw, Ho, Wo)
                gx = _from_first(xp, canvas, pt, pl, H, W)
            if needs[1]:
                gw = _weight_grad_first(xp, g, cols).reshape(O, Cg, kh, kw)
        if needs[2]:
            gb = grad.sum(axis=(0, 2, 3))
        return gx, gw, gb, None, None, None, None


def _weight_grad_first(xp, g, cols):
    """sum over images of g (N, G, A, P) @ cols (N, G, B, P)^T -> (G, A, B); with several
    intra-op threads each sums the products of a block of images, then the blocks are added."""
    N = g.shape[0]
    blocks = _image_blocks(xp, N, g.size + cols.size)
    if blocks is None:
        return (g @ cols.transpose(0, 1, 3, 2)).sum(axis=0)
    parts = intraop.run_blas_single(lambda lo, hi: (
        g[lo:hi] @ cols[lo:hi].transpose(0, 1, 3, 2)).sum(axis=0), blocks)
    return sum(parts[1:], parts[0])


def conv_transpose_size(n: int, k: int, s: int, p: int, op: int, d: int) -> int:
    """PyTorch's transposed-conv output size: (n - 1) s - 2 p + d (k - 1) + op + 1."""
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


class ConvTranspose2d(Op):
    """Transposed convolution (the adjoint of Conv2d wrt its input): x (N, C_in, H, W) with
    w (C_in, C_out/groups, kh, kw), bias (C_out,) or None -> (N, C_out, Ho, Wo) where
    Ho = (H - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1.

    Forward is Conv2d's input gradient (per-offset GEMMs and col2im); backward is Conv2d's
    forward (im2col and GEMMs).
    """

    @staticmethod
    def forward(ctx, x, w, b, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        xp = ctx.xp
        op = "conv_transpose2d"
        sh, sw = pair(stride, "stride", op)
        dh, dw = pair(dilation, "dilation", op)
        (pt, pb), (pl, pr) = pads(padding, op)
        oph, opw = pair(output_padding, "output_padding", op)
        _positive(op, stride=(sh, sw), dilation=(dh, dw))
        if not (0 <= oph < max(sh, dh) and 0 <= opw < max(sw, dw)):
            raise ShapeError(f"{op}: output_padding {(oph, opw)} must be smaller than either "
                             f"stride {(sh, sw)} or dilation {(dh, dw)}")
        G = groups
        _check_conv(op, x, w, b, G, True)
        N, C, H, W = x.shape
        _, Og, kh, kw = w.shape
        Cg = C // G
        Hf = (H - 1) * sh + dh * (kh - 1) + 1 + oph                       # the full canvas
        Wf = (W - 1) * sw + dw * (kw - 1) + 1 + opw
        Ho, Wo = Hf - pt - pb, Wf - pl - pr
        if Ho < 1 or Wo < 1:
            raise ShapeError(f"{op}: input {tuple(x.shape)} and weight {tuple(w.shape)} with "
                             f"padding {((pt, pb), (pl, pr))} give an empty output {Ho}x{Wo}")
        last = channels_last(Og * kh * kw, H * W, kh * kw)
        if last:
            a = _pad_last(xp, x, G, 0, 0, H, W).reshape(G, N * H * W, Cg)
            w_k = xp.ascontiguousarray(w.reshape(G, Cg, Og, kh * kw).transpose(3, 0, 1, 2))
            canvas = xp.zeros((G, N, Hf, Wf, Og), dtype=x.dtype)
            _col2im_last(a, w_k, canvas, kh, kw, sh, sw, dh, dw, H, W)
            out = _from_last(xp, canvas, pt, pl, Ho, Wo, b)
        else:
            a = xp.ascontiguousarray(x).reshape(N, G, Cg, H * W)
            w_k = xp.ascontiguousarray(w.reshape(G, Cg, Og, kh * kw).transpose(3, 0, 2, 1))
            canvas = xp.zeros((N, G * Og, Hf, Wf), dtype=x.dtype)
            _col2im_first(w_k, a, canvas, kh, kw, sh, sw, dh, dw, H, W)
            out = _from_first(xp, canvas, pt, pl, Ho, Wo)
            if b is not None:
                out += b.reshape(1, -1, 1, 1)
        ctx.geom = (last, N, C, H, W, G, Og, kh, kw, sh, sw, dh, dw, pt, pl, Hf, Wf, Ho, Wo)
        # x too: ``a`` may be a view of it, so in-place changes must be caught
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, w, x)
        return out

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        a, w, _ = ctx.saved
        last, N, C, H, W, G, Og, kh, kw, sh, sw, dh, dw, pt, pl, Hf, Wf, Ho, Wo = ctx.geom
        needs = ctx.needs_input_grad
        Cg = C // G
        gx = gw = gb = None
        if (needs[0] or needs[1]) and last:
            cols = _im2col_last(xp, _pad_last(xp, grad, G, pt, pl, Hf, Wf),
                                kh, kw, sh, sw, dh, dw, H, W)              # (G, N*H*W, k*Og)
            if needs[0]:
                wk = w.reshape(G, Cg, Og, kh, kw).transpose(0, 3, 4, 2, 1).reshape(G, -1, Cg)
                gxg = cols[0] @ wk[0] if G == 1 else cols @ wk             # (G, M, Cg)
                gx = _from_last(xp, gxg.reshape(G, N, H, W, Cg), 0, 0, H, W)
            if needs[1]:
                gwk = a.transpose(0, 2, 1) @ cols                          # (G, Cg, k*Og)
                gw = xp.ascontiguousarray(gwk.reshape(G, Cg, kh, kw, Og).transpose(
                    0, 1, 4, 2, 3)).reshape(C, Og, kh, kw)
        elif needs[0] or needs[1]:
            gx, cols = _conv_first(xp, grad, w.reshape(G, Cg, -1) if needs[0] else None, None,
                                   (pt, pl, Hf, Wf), (G, kh, kw, sh, sw, dh, dw, H, W))
            if needs[0]:
                gx = gx.reshape(N, C, H, W)
            if needs[1]:
                gw = _weight_grad_first(xp, a, cols).reshape(C, Og, kh, kw)
        if needs[2]:
            gb = grad.sum(axis=(0, 2, 3))
        return gx, gw, gb, None, None, None, None, None


# Pooling ------------------------------------------------------------------------------------------

def pool_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size; in ceil mode the last window must start inside the input
    or its left padding."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool_geom(op: str, x, kernel_size, stride, padding, dilation, ceil_mode):
    kh, kw = pair(kernel_size, "kernel_size", op)
    sh, sw = pair(kernel_size if stride is None or stride == () or stride == []
                  else stride, "stride", op)
    ph, pw = pair(padding, "padding", op)
    dh, dw = pair(dilation, "dilation", op)
    _positive(op, kernel_size=(kh, kw), stride=(sh, sw), dilation=(dh, dw))
    if x.ndim != 4:
        raise ShapeError(f"{op}: expected a 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")
    if ph < 0 or pw < 0 or ph > kh // 2 or pw > kw // 2:
        raise ShapeError(f"{op}: padding {(ph, pw)} must be between 0 and half the kernel size "
                         f"{(kh, kw)}")
    H, W = x.shape[2:]
    Ho = pool_size(H, kh, sh, ph, dh, ceil_mode)
    Wo = pool_size(W, kw, sw, pw, dw, ceil_mode)
    if Ho < 1 or Wo < 1:
        raise ShapeError(f"{op}: the input {tuple(x.shape)} with padding {(ph, pw)} is smaller "
                         f"than the kernel {(kh, kw)} (dilation {(dh, dw)}): output {Ho}x{Wo}")
    return kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo


def _padded(xp, x, ph: int, pw: int, rows: int, cols: int, fill):
    """x with ``fill`` around it: ph rows above, pw columns left, at least rows x cols in all."""
    N, C, H, W = x.shape
    rows, cols = max(rows, H + ph), max(cols, W + pw)
    if ph == 0 and pw == 0 and rows == H and cols == W:
        return x
    out = xp.full((N, C, rows, cols), fill, dtype=x.dtype)
    out[:, :, ph:ph + H, pw:pw + W] = x
    return out


def _windows(xpad, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, Ho: int, Wo: int):
    """The kh*kw strided (N, C, Ho, Wo) views of xpad that each kernel offset meets, in
    row-major kernel order."""
    return [xpad[:, :, _win(i, dh, sh, Ho), _win(j, dw, sw, Wo)]
            for i in range(kh) for j in range(kw)]


def _last_nan_wins(xp, views, arg) -> None:
    """Redo max-pool's argmax where windows hold NaN: PyTorch's CPU kernel takes an element when
    it is larger or NaN, so the last NaN of a window in row-major order wins (the values are
    already NaN there: maximum propagates it)."""
    best = views[0].copy()
    arg[...] = 0
    for k in range(1, len(views)):
        v = views[k]
        m = (v > best) | xp.isnan(v)
        best[m] = v[m]
        arg[m] = k


def _max_pool_2x2(xp, x):
    """Max-pool with 2x2 windows, stride 2, no padding, on x (N, C, 2Ho, 2Wo), separably: the
    max of each column pair, then of each row pair of those (contiguous rows). Returns the
    output and where the first maximum lies: ``later_col`` (N, C, 2Ho, Wo), whether the
    right-hand element of a row's pair is strictly larger, and ``later_row`` (N, C, Ho, Wo),
    whether the lower row's maximum is. Strict comparisons keep PyTorch's rule that the first
    maximum in row-major order wins; NaN is left to the general path."""
    N, C, H, W = x.shape
    pairs = x.reshape(N, C, H, W // 2, 2)
    left, right = pairs[..., 0], pairs[..., 1]
    later_col = right > left
    cols = xp.maximum(left, right).reshape(N, C, H // 2, 2, W // 2)
    top, bottom = cols[:, :, :, 0], cols[:, :, :, 1]
    later_row = bottom > top
    return xp.maximum(top, bottom), later_col, later_row


def _indices_2x2(xp, later_col, later_row, W: int):
    """PyTorch's flat H*W indices of each window's first maximum, from _max_pool_2x2's masks."""
    N, C, Ho, Wo = later_row.shape
    col = later_col.reshape(N, C, Ho, 2, Wo)
    c = xp.where(later_row, col[:, :, :, 1], col[:, :, :, 0]).astype(xp.int64)
    rows = 2 * xp.arange(Ho, dtype=xp.int64).reshape(Ho, 1) + later_row
    return rows * W + 2 * xp.arange(Wo, dtype=xp.int64) + c


def _max_pool_2x2_backward(xp, grad, later_col, later_row):
    """Each window's gradient to its first maximum: into the row, then into the column (masks
    multiply when every gradient is finite, else select)."""
    N, C, Ho, Wo = grad.shape
    put = xp.multiply if backend.all_finite(xp, grad) else (
        lambda g, m, out: backend.select(xp, m, g, out=out))
    by_row = xp.empty((N, C, Ho, 2, Wo), dtype=grad.dtype)
    put(grad, ~later_row, out=by_row[:, :, :, 0])
    put(grad, later_row, out=by_row[:, :, :, 1])
    by_row = by_row.reshape(N, C, 2 * Ho, Wo)
    gx = xp.empty((N, C, 2 * Ho, Wo, 2), dtype=grad.dtype)
    put(by_row, ~later_col, out=gx[..., 0])
    put(by_row, later_col, out=gx[..., 1])
    return gx.reshape(N, C, 2 * Ho, 2 * Wo)


class MaxPool2d(Op):
    """Max over kh x kw windows of x (N, C, H, W) -> (N, C, Ho, Wo), padding with -inf.

    The first maximum of each window in row-major order wins (as PyTorch) and takes the whole
    gradient. ``indices_out``: None, or a list that receives the int64 indices PyTorch's
    return_indices gives (flat position in H*W of each input plane).
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                indices_out=None):
        xp = ctx.xp
        kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = _pool_geom(
            "max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
        H, W = x.shape[2:]
        if (kh, kw, sh, sw, ph, pw, dh, dw) == (2, 2, 2, 2, 0, 0, 1, 1) and (H, W) == (2 * Ho,
                                                                                    2 * Wo):
            out, later_col, later_row = _max_pool_2x2(xp, x)
            if x.dtype.kind != "f" or not bool(xp.isnan(out).any()):
                if indices_out is not None:
                    indices_out.append(_indices_2x2(xp, later_col, later_row, W))
                ctx.geom = None
                ctx.save_for_backward(later_col, later_row)
                return out
        xpad = _padded(xp, x, ph, pw, (Ho - 1) * sh + dh * (kh - 1) + 1,
                       (Wo - 1) * sw + dw * (kw - 1) + 1, -xp.inf)
        views = _windows(xpad, kh, kw, sh, sw, dh, dw, Ho, Wo)
        out = views[0].copy()
        arg = xp.zeros(out.shape, dtype=xp.int8 if kh * kw < 128 else xp.int32)
        for k in range(1, kh * kw):  # arithmetic only: masked copies are much slower
            v = views[k]
            m = v > out
            xp.maximum(out, v, out=out)
            xp.maximum(arg, xp.multiply(m, k, dtype=arg.dtype), out=arg)  # k > any arg so far
        if x.dtype.kind == "f" and bool(xp.isnan(out).any()):
            _last_nan_wins(xp, views, arg)
        if indices_out is not None:
            r, c = xp.divmod(arg.astype(xp.int64), kw)
            rows0 = (xp.arange(Ho, dtype=xp.int64) * sh - ph).reshape(Ho, 1)
            cols0 = xp.arange(Wo, dtype=xp.int64) * sw - pw
            indices_out.append((rows0 + r * dh) * W + cols0 + c * dw)
        ctx.geom = (x.shape, xpad.shape, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
        ctx.save_for_backward(arg)
        return out

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        if ctx.geom is None:
            return _max_pool_2x2_backward(xp, grad, *ctx.saved)
        shape, pshape, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = ctx.geom
        (arg,) = ctx.saved
        gpad = xp.zeros(pshape, dtype=grad.dtype)
        overlap = sh < dh * (kh - 1) + 1 or sw < dw * (kw - 1) + 1
        for k, dst in enumerate(_windows(gpad, kh, kw, sh, sw, dh, dw, Ho, Wo)):
            if overlap:
                dst += backend.select(xp, arg == k, grad)
            else:  # disjoint windows: each input position is written once
                backend.select(xp, arg == k, grad, out=dst)
        H, W = shape[2:]
        if pshape == shape:
            return gpad
        return gpad[:, :, ph:ph + H, pw:pw + W]


class AvgPool2d(Op):
    """Mean over kh x kw windows of x (N, C, H, W) -> (N, C, Ho, Wo), with PyTorch's divisors:
    count_include_pad counts the zero padding (not the ceil-mode overhang); divisor_override
    replaces the count."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                count_include_pad=True, divisor_override=None):
        xp = ctx.xp
        kh, kw, sh, sw, ph, pw, _, _, Ho, Wo = _pool_geom(
            "avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
        if divisor_override is not None and divisor_override == 0:
            raise ShapeError("avg_pool2d: divisor_override must be non-zero")
        H, W = x.shape[2:]
        xpad = _padded(xp, x, ph, pw, (Ho - 1) * sh + kh, (Wo - 1) * sw + kw, 0)
        views = _windows(xpad, kh, kw, sh, sw, 1, 1, Ho, Wo)
        out = views[0].copy()
        for v in views[1:]:
            out += v
        if divisor_override is not None:
            scale = xp.asarray(1.0 / divisor_override, dtype=x.dtype)
        else:
            ch = _counts(H, kh, sh, ph, Ho, count_include_pad)
            cw = _counts(W, kw, sw, pw, Wo, count_include_pad)
            div = [[a * b for b in cw] for a in ch]
            scale = xp.asarray([[1.0 / max(d, 1) for d in row] for row in div], dtype=x.dtype)
        out *= scale
        ctx.geom = (x.shape, xpad.shape, kh, kw, sh, sw, ph, pw, Ho, Wo)
        ctx.save_for_backward(scale)
        return out

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        shape, pshape, kh, kw, sh, sw, ph, pw, Ho, Wo = ctx.geom
        (scale,) = ctx.saved
        g = grad * scale
        gpad = xp.zeros(pshape, dtype=grad.dtype)
        overlap = sh < kh or sw < kw
        for dst in _windows(gpad, kh, kw, sh, sw, 1, 1, Ho, Wo):
            if overlap:
                dst += g
            else:
                dst[...] = g
        H, W = shape[2:]
        if pshape == shape:
            return gpad
        return gpad[:, :, ph:ph + H, pw:pw + W]


def _counts(n: int, k: int, s: int, p: int, n_out: int, include_pad: bool) -> list:
    """Per-output window lengths along one dim, as PyTorch's avg_pool2d divides."""
    out = []
    for o in range(n_out):
        start = o * s - p
        end = min(start + k, n + p)
        if include_pad:
            out.append(end - start)
        else:
            out.append(min(end, n) - max(start, 0))
    return out
