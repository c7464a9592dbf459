"""Variable-length sequences for the recurrent layers, as PyTorch's ``torch.nn.utils.rnn``:
PackedSequence, pad_sequence, pack_padded_sequence, pad_packed_sequence, pack_sequence,
unpack_sequence, unpad_sequence, invert_permutation.

A PackedSequence stores the time steps one after the other, each holding only the sequences
still running (longest first), so a recurrent layer never computes on padding. Packing and
unpacking are gathers (``index_select``) in the graph: gradients flow through both.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ... import creation
from ...errors import ShapeError, ValueRangeError
from ...tensor import Tensor
from ...tensor_functions import cat

__all__ = ["PackedSequence", "invert_permutation", "pad_sequence", "unpad_sequence",
           "pack_padded_sequence", "pad_packed_sequence", "pack_sequence", "unpack_sequence"]

_SORT_ERROR = ("`lengths` array must be sorted in decreasing order when `enforce_sorted` is "
               "True. You can pass `enforce_sorted=False` to pack_padded_sequence and/or "
               "pack_sequence to sidestep this requirement if you do not need ONNX "
               "exportability.")


def _index(a) -> Tensor:
    return Tensor._wrap(np.asarray(a, dtype=np.int64), None, False)


def _ints(values) -> np.ndarray:
    """A 1-D int64 NumPy array from a list, an array or a Tensor (on any device)."""
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.int64).reshape(-1)


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices",
                                                   "unsorted_indices"])):
    """Sequences packed time step by time step.

    Fields: ``data`` (sum of lengths, *) the steps' rows; ``batch_sizes`` (max length,) int64,
    the number of sequences at each step (non-increasing); ``sorted_indices`` the order of the
    original batch by decreasing length (None when it was sorted); ``unsorted_indices`` its
    inverse. Build one with pack_padded_sequence or pack_sequence, never directly.
    """

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            raise ValueError("PackedSequence: batch_sizes is required; build packed sequences "
                             "with pack_padded_sequence or pack_sequence")
        if not isinstance(batch_sizes, Tensor):
            batch_sizes = _index(batch_sizes)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _with_data(self, data) -> PackedSequence:
        if data is self.data:
            return self
        return type(self)(data, self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        """Data moved/converted as Tensor.to; the index fields stay as they are."""
        return self._with_data(self.data.to(*args, **kwargs))

    def cpu(self) -> PackedSequence:
        return self._with_data(self.data.cpu())

    def cuda(self, *args, **kwargs) -> PackedSequence:
        return self._with_data(self.data.cuda(*args, **kwargs))

    def double(self) -> PackedSequence:
        return self._with_data(self.data.double())

    def float(self) -> PackedSequence:
        return self._with_data(self.data.float())

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda


def invert_permutation(permutation):
    """The inverse of a permutation tensor (None stays None)."""
    if permutation is None:
        return None
    p = _ints(permutation)
    inv = np.empty_like(p)
    inv[p] = np.arange(p.size)
    return _index(inv)


def _batch_sizes(lengths: np.ndarray) -> np.ndarray:
    """Sequences still running at each step, for lengths sorted in decreasing order."""
    steps = np.arange(int(lengths[0]))
    return (lengths[None, :] > steps[:, None]).sum(axis=1).astype(np.int64)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) ((B, T, *) with batch_first) of sequences of the given
    lengths. With enforce_sorted, lengths must be in decreasing order; otherwise the batch is
    sorted here and the order kept in sorted_indices."""
    lengths = _ints(lengths)
    batch_dim = 0 if batch_first else 1
    if input.ndim < 2:
        raise ShapeError(f"pack_padded_sequence: expected an input of at least 2 dimensions "
                         f"(time and batch), got shape {tuple(input.shape)}")
    batch = input.shape[batch_dim]
    if lengths.size != batch:
        raise ShapeError(f"Expected `len(lengths)` to be equal to batch_size, but got "
                         f"{lengths.size} (batch_size={batch})")
    if lengths.size and lengths.min() <= 0:
        raise ValueRangeError("Length of all samples has to be greater than 0, but found an "
                              "element in 'lengths' that is <= 0")
    steps = input.shape[1 - batch_dim]
    if lengths.size and lengths.max() > steps:
        raise ShapeError(f"pack_padded_sequence: a length of {int(lengths.max())} exceeds the "
                         f"{steps} time steps of the input (shape {tuple(input.shape)})")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise RuntimeError(_SORT_ERROR)
        sorted_indices = None
    else:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        sorted_indices = _index(order)
        input = input.index_select(batch_dim, sorted_indices)
    if batch_first:
        input = input.transpose(0, 1)
    sizes = _batch_sizes(lengths)
    rows = np.concatenate([t * batch + np.arange(s) for t, s in enumerate(sizes)])
    flat = input.reshape((steps * batch,) + tuple(input.shape[2:]))
    data = flat.index_select(0, _index(rows))
    return PackedSequence(data, _index(sizes), sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):
    """Unpack to a padded batch (T, B, *) ((B, T, *) with batch_first) in the original batch
    order, and the lengths (B,) int64. total_length pads to that many steps."""
    data = sequence.data
    sizes = _ints(sequence.batch_sizes)
    steps, batch = sizes.size, int(sizes[0]) if sizes.size else 0
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max "
                             f"sequence length being {steps}")
        steps = total_length
    n = data.shape[0]
    # position of every (t, b) cell in [data; padding row]
    where = np.full((steps, batch), n, dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    for t, (o, s) in enumerate(zip(offsets, sizes)):
        where[t, :s] = np.arange(o, o + s)
    feature = tuple(data.shape[1:])
    pad = creation.full((1,) + feature, padding_value, dtype=data.dtype, device=data.device)
    padded = cat([data, pad]).index_select(0, _index(where.reshape(-1)))
    padded = padded.reshape((steps, batch) + feature)
    lengths = (sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1)
    if sequence.unsorted_indices is not None:
        unsorted = _ints(sequence.unsorted_indices)
        padded = padded.index_select(1, _index(unsorted))
        lengths = lengths[unsorted]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, _index(lengths)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences (L_i, *) into (max L, B, *) ((B, max L, *) with batch_first), padded
    with padding_value on the right (or on the left)."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got "
                         f"{padding_side}.")
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pad_sequence: received an empty list of sequences")
    feature = tuple(sequences[0].shape[1:])
    for i, s in enumerate(sequences):
        if s.ndim == 0 or tuple(s.shape[1:]) != feature:
            raise ShapeError(f"pad_sequence: sequence {i} has shape {tuple(s.shape)} but "
                             f"sequence 0 has {tuple(sequences[0].shape)}; all sizes after the "
                             "first (time) dimension must match")
    lengths = np.array([s.shape[0] for s in sequences], dtype=np.int64)
    steps, batch = int(lengths.max()), len(sequences)
    n = int(lengths.sum())
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    where = np.full((batch, steps), n, dtype=np.int64)
    for b, (o, length) in enumerate(zip(starts, lengths)):
        lo = 0 if padding_side == "right" else steps - length
        where[b, lo:lo + length] = np.arange(o, o + length)
    if not batch_first:
        where = where.T
    first = sequences[0]
    pad = creation.full((1,) + feature, padding_value, dtype=first.dtype, device=first.device)
    out = cat(sequences + [pad]).index_select(0, _index(where.reshape(-1)))
    return out.reshape(where.shape + feature)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """The sequences of a padded batch (T, B, *) ((B, T, *) with batch_first), cut to their
    lengths: the inverse of pad_sequence."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[i, :int(length)] for i, length in enumerate(_ints(lengths))]


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences (L_i, *); with enforce_sorted, in decreasing length."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths,
                                enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of sequences (L_i, *) of a PackedSequence, in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
