"""Indexing: slicing, integer-array and mask indexing, gather/scatter, index_select and
embedding lookup. Backward of a lookup is a scatter-add, so repeated indices accumulate."""

from __future__ import annotations

from .. import backend
from ..autograd.op import Op
from ..autograd.scattered import ScatteredSum, memory_layout

_csr = []  # scipy.sparse.csr_matrix once looked up (None without SciPy), imported on first use


def _csr_matrix():
    if not _csr:
        try:
            from scipy.sparse import csr_matrix
        except ImportError:  # SciPy is optional
            csr_matrix = None
        _csr.append(csr_matrix)
    return _csr[0]


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    for i in items:
        if not (i is None or i is Ellipsis or isinstance(i, (int, slice))):
            return False
    return True


class GetItem(Op):
    """x[index] for every NumPy/PyTorch index: ints, slices with steps, None, ..., integer arrays
    and boolean masks."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype = x.shape, x.dtype
        ctx.basic = basic = _is_basic(index)
        if basic:  # ints, slices, None, ...: no arrays
            ctx.index = index
            # the layout only matters to a gradient, so it is read only when one is recorded
            ctx.layout = memory_layout(x) if ctx.needs_input_grad[0] else None
        else:  # index arrays live in saved, freed after backward like every saved array
            ctx.save_for_backward(index)
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        if ctx.basic:  # kept as a slice: several slices of one input sum into one array
            return ScatteredSum(ctx.shape, ctx.index, grad, ctx.layout)
        gx = ctx.xp.zeros(ctx.shape, dtype=grad.dtype)
        backend.scatter_add(ctx.xp, gx, ctx.saved[0], grad)
        return gx


def _full_index(xp, index, dim):
    """The tuple of index arrays that addresses ``index``'s entries along ``dim`` (gather's
    addressing made explicit for NumPy's advanced indexing)."""
    n = index.ndim
    grids = [xp.arange(s).reshape((1,) * i + (s,) + (1,) * (n - i - 1))
             for i, s in enumerate(index.shape)]  # np.indices(sparse=True), which CuPy lacks
    grids[dim] = index
    return tuple(grids)


class Gather(Op):
    """out[i][j] = x[i][index[i][j]] along ``dim`` (torch.gather; index may be smaller than x
    in the other dims)."""

    @staticmethod
    def forward(ctx, x, dim, index):
        xp = ctx.xp
        ctx.shape, ctx.dim = x.shape, dim
        full = _full_index(xp, index, dim)
        ctx.save_for_backward(*full)
        return x[full]

    @staticmethod
    def backward(ctx, grad):
        gx = ctx.xp.zeros(ctx.shape, dtype=grad.dtype)
        backend.scatter_add(ctx.xp, gx, ctx.saved, grad)
        return gx, None, None


class Scatter(Op):
    """out = x with out[..index..] = src along ``dim`` (torch.scatter); src may be a scalar."""

    @staticmethod
    def forward(ctx, x, dim, index, src):
        xp = ctx.xp
        full = _full_index(xp, index, dim)
        ctx.save_for_backward(*full)
        ctx.src_shape = getattr(src, "shape", ())
        out = x.copy()
        out[full] = src[tuple(slice(0, s) for s in index.shape)] if ctx.src_shape else src
        return out

    @staticmethod
    def backward(ctx, grad):
        full = ctx.saved
        gx = grad.copy()
        gx[full] = 0
        needs = ctx.needs_input_grad
        gsrc = None
        if needs[3]:
            gsrc = _pad_to(ctx.xp, grad[full], ctx.src_shape)
        return gx, None, None, gsrc


class ScatterAdd(Op):
    """out = x with src added at index along ``dim`` (torch.scatter_add); repeats accumulate."""

    @staticmethod
    def forward(ctx, x, dim, index, src):
        xp = ctx.xp
        full = _full_index(xp, index, dim)
        ctx.save_for_backward(*full)
        ctx.src_shape = src.shape
        out = x.copy()
        backend.scatter_add(xp, out, full, src[tuple(slice(0, s) for s in index.shape)])
        return out

    @staticmethod
    def backward(ctx, grad):
        gsrc = _pad_to(ctx.xp, grad[ctx.saved], ctx.src_shape) if ctx.needs_input_grad[3] else None
        return grad, None, None, gsrc


def _pad_to(xp, g, shape):
    if g.shape == tuple(shape):
        return g
    out = xp.zeros(shape, dtype=g.dtype)
    out[tuple(slice(0, s) for s in g.shape)] = g
    return out


class IndexSelect(Op):
    """x.index_select(dim, index): whole slices picked by a 1-D index (repeats allowed)."""

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.shape, ctx.dim = x.shape, dim
        ctx.save_for_backward(index)
        return ctx.xp.take(x, index, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        moved = xp.moveaxis(grad, ctx.dim, 0)
        rows = index_add_rows(xp, ctx.shape[ctx.dim], ctx.saved[0].reshape(-1),
                              moved.reshape(moved.shape[0], -1))
        rows = rows.reshape((ctx.shape[ctx.dim],) + moved.shape[1:])
        return xp.moveaxis(rows, 0, ctx.dim), None, None


class Embedding(Op):
    """weight[index] for an integer tensor of any shape (lecture: "Neural Language Model" —
    the shared word-feature matrix C); rows of ``padding_idx`` get no gradient."""

    @staticmethod
    def forward(ctx, index, weight, padding_idx):
        ctx.num, ctx.padding_idx = weight.shape[0], padding_idx
        ctx.save_for_backward(index)
        return weight[index]

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        dim = grad.shape[-1]
        gw = index_add_rows(xp, ctx.num, ctx.saved[0].reshape(-1), grad.reshape(-1, dim))
        if ctx.padding_idx is not None:
            gw[ctx.padding_idx] = 0
        return None, gw, None


def index_add_rows(xp, n_rows: int, index, values):
    """Sum the rows of ``values`` (N, D) into an (n_rows, D) array by ``index`` (N,).

    On NumPy with SciPy, one sparse-times-dense product (about 15 times faster than the sort
    and reduceat below for a batch of token embeddings); otherwise a sort and one reduceat
    instead of np.add.at, which is an order of magnitude slower.
    """
    csr = _csr_matrix() if xp is backend.np else None
    if csr is not None and index.size and values.ndim == 2 and values.dtype.kind == "f":
        # one sparse product: a (n_rows, N) matrix of ones at (index[i], i) times values
        n = index.size
        ones = xp.ones(n, dtype=values.dtype)
        picks = csr((ones, (index, xp.arange(n))), shape=(n_rows, n))
        return xp.ascontiguousarray(picks @ values, dtype=values.dtype)
    out = xp.zeros((n_rows,) + values.shape[1:], dtype=values.dtype)
    if index.size == 0:
        return out
    if xp is not backend.np:
        backend.scatter_add(xp, out, index, values)
        return out
    order = xp.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = xp.flatnonzero(xp.concatenate(([True], sorted_index[1:] != sorted_index[:-1])))
    out[sorted_index[starts]] = xp.add.reduceat(values[order], starts, axis=0)
    return out
