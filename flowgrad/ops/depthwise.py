"""Depthwise convolution (groups == in channels == out channels, stride 1) without im2col: each
channel is its own plane, so the convolution is kh*kw multiply-adds of whole shifted planes by
one weight per plane (Howard et al. 2017, "MobileNets", the depthwise half of a separable conv).

Each padded plane is one flat row of Hp*Wp values; output row r, column s sits at flat position
q = r*Wp + s, and the kernel offset (i, j) reads position q + i*dh*Wp + j*dw. So every tap is a
contiguous slice of the flat rows, and the outputs come out on an Ho x Wp grid whose columns past
Wo are discarded. Planes go in blocks whose kh*kw shifted rows (the taps) are copied into cache
and contracted with the plane's weights by one batched matmul; the im2col path would copy
kh*kw times the whole input to memory first.
"""

from __future__ import annotations

from .. import backend

_BLOCK_BYTES = 1 << 20  # a block of planes: its taps take about 1 MiB


def applies(x_shape, w_shape, groups: int, stride) -> bool:
    """Whether the flat-plane path computes this conv: one input and one output channel per
    group, stride 1."""
    C, O = x_shape[1], w_shape[0]
    return groups == C == O and groups > 1 and tuple(stride) == (1, 1)


def _flat_planes(xp, x, top: int, left: int, Hp: int, Wp: int, slack: int):
    """(N, C, H, W) -> (N*C, Hp*Wp + slack): each plane zero-padded and flattened."""
    N, C, H, W = x.shape
    flat = xp.zeros((N * C, Hp * Wp + slack), dtype=x.dtype)
    flat[:, :Hp * Wp].reshape(N * C, Hp, Wp)[:, top:top + H, left:left + W] = x.reshape(
        N * C, H, W)
    return flat


def _blocks(planes: int, taps_bytes: int):
    """Blocks of planes whose taps matrix (kh*kw rows of L per plane) stays near cache size."""
    step = max(1, _BLOCK_BYTES // max(1, taps_bytes))
    for s in range(0, planes, step):
        yield s, min(planes, s + step)


def _taps_view(xp, flat, kh: int, kw: int, dh: int, dw: int, Wp: int, L: int):
    """All planes' taps as one strided view (P, kh, kw, L): row (i, j) of plane p is its flat
    row from offset i*dh*Wp + j*dw on. A block's slice of it is copied into cache."""
    P, item = flat.shape[0], flat.dtype.itemsize
    return backend.as_strided(xp, flat, (P, kh, kw, L),
                              (flat.strides[0], dh * Wp * item, dw * item, item))


def _copy_taps(xp, view, s: int, e: int):
    return xp.ascontiguousarray(view[s:e]).reshape(e - s, -1, view.shape[-1])


def _geometry(x_shape, w_shape, pads, dilation):
    (pt, pb), (pl, pr) = pads
    dh, dw = dilation
    H, W = x_shape[2:]
    kh, kw = w_shape[2:]
    Hp, Wp = H + pt + pb, W + pl + pr
    Ho, Wo = Hp - dh * (kh - 1), Wp - dw * (kw - 1)
    return kh, kw, dh, dw, Hp, Wp, Ho, Wo


def forward(xp, x, w, b, pads, dilation):
    """Depthwise conv of x (N, C, H, W) with w (C, 1, kh, kw) and bias (C,) or None, padding
    ((top, bottom), (left, right)), stride 1. Returns the output (N, C, Ho, Wo) and the flat
    padded input that backward reuses. Per block of planes: copy the taps, one batched
    matmul (1 x kh*kw) @ (kh*kw x L) per plane."""
    N, C, H, W = x.shape
    kh, kw, dh, dw, Hp, Wp, Ho, Wo = _geometry(x.shape, w.shape, pads, dilation)
    flat = _flat_planes(xp, x, pads[0][0], pads[1][0], Hp, Wp, dw * (kw - 1))
    L, K = Ho * Wp, kh * kw
    # one weight row (and bias) per plane: plane p = n*C + c takes channel c's
    wrow = xp.broadcast_to(w.reshape(1, C, 1, K), (N, C, 1, K)).reshape(N * C, 1, K)
    out = xp.empty((N * C, 1, L), dtype=x.dtype)
    view = _taps_view(xp, flat, kh, kw, dh, dw, Wp, L)
    for s, e in _blocks(N * C, K * L * x.dtype.itemsize):
        xp.matmul(wrow[s:e], _copy_taps(xp, view, s, e), out=out[s:e])
    y = out.reshape(N, C, Ho, Wp)[:, :, :, :Wo]
    if b is None:
        return xp.ascontiguousarray(y), flat
    return xp.add(y, b.reshape(1, C, 1, 1)), flat


def backward(xp, grad, flat, w, x_shape, pads, dilation, need_x: bool, need_w: bool):
    """Input and weight gradients of :func:`forward` (None where not needed). The weight
    gradient is, per block, one batched matmul of the gradient rows with the taps; the input
    gradient is the forward pass itself on the gradient, with the kernel flipped and the
    padding mirrored (dilation*(k-1) - padding on each side; where that is negative the extra
    rows or columns are cut off afterwards)."""
    N, C, H, W = x_shape
    kh, kw, dh, dw, Hp, Wp, Ho, Wo = _geometry(x_shape, w.shape, pads, dilation)
    gx = gw = None
    if need_w:
        L, K = Ho * Wp, kh * kw
        g = xp.zeros((N * C, 1, L), dtype=grad.dtype)      # the grid's extra columns stay 0
        g.reshape(N * C, Ho, Wp)[:, :, :Wo] = grad.reshape(N * C, Ho, Wo)
        gw = xp.empty((N * C, 1, K), dtype=grad.dtype)
        view = _taps_view(xp, flat, kh, kw, dh, dw, Wp, L)
        for s, e in _blocks(N * C, K * L * grad.dtype.itemsize):
            xp.matmul(g[s:e], _copy_taps(xp, view, s, e).transpose(0, 2, 1), out=gw[s:e])
        gw = gw.reshape(N, C, kh, kw).sum(axis=0).reshape(C, 1, kh, kw)
    if need_x:
        (pt, pb), (pl, pr) = pads
        mirrored = [dh * (kh - 1) - pt, dh * (kh - 1) - pb, dw * (kw - 1) - pl, dw * (kw - 1) - pr]
        full, _ = forward(xp, grad, w[:, :, ::-1, ::-1], None,
                          ((max(mirrored[0], 0), max(mirrored[1], 0)),
                           (max(mirrored[2], 0), max(mirrored[3], 0))), dilation)
        top, left = max(-mirrored[0], 0), max(-mirrored[2], 0)
        gx = full
        if full.shape[2:] != (H, W):
            gx = xp.ascontiguousarray(full[:, :, top:top + H, left:left + W])
    return gx, gw
