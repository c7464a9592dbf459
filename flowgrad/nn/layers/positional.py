"""Position encodings added to token embeddings so that attention, which is blind to order,
can use it: SinusoidalPositionalEncoding (Vaswani et al. 2017, §3.5) and
LearnedPositionalEncoding (Gehring et al. 2017; GPT, Radford et al. 2018).

flowgrad extensions: torch.nn has neither (PyTorch's examples define the sinusoidal one inline,
as ``PositionalEncoding``, with the same arithmetic).
"""

from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from ...errors import ShapeError
from ...tensor import tensor
from ..init import normal_
from ..module import Module
from ._util import empty_param
from .dropout import Dropout

__all__ = ["SinusoidalPositionalEncoding", "LearnedPositionalEncoding"]


def sinusoidal_table(max_len: int, d_model: int) -> np.ndarray:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(same), in float64,
    shape (max_len, d_model); an odd d_model drops the last cosine column."""
    position = np.arange(max_len, dtype=np.float64)[:, None]
    div_term = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
    table = np.zeros((max_len, d_model))
    table[:, 0::2] = np.sin(position * div_term)
    table[:, 1::2] = np.cos(position * div_term[: d_model // 2])
    return table


class _PositionalEncoding(Module):
    def __init__(self, d_model: int, max_len: int, dropout: float, batch_first: bool) -> None:
        super().__init__()
        if d_model <= 0 or max_len <= 0:
            raise ValueError(f"{type(self).__name__}: d_model and max_len must be positive, got "
                             f"d_model={d_model} and max_len={max_len}")
        self.d_model = d_model
        self.max_len = max_len
        self.batch_first = batch_first
        self.dropout = Dropout(dropout)

    def _table(self):
        raise NotImplementedError

    def forward(self, x):
        """x (L, N, E), (N, L, E) with batch_first, or unbatched (L, E) -> same shape."""
        if x.ndim not in (2, 3) or x.shape[-1] != self.d_model:
            raise ShapeError(f"{type(self).__name__}(d_model={self.d_model}): expected input "
                             f"(L, N, {self.d_model}), (N, L, {self.d_model}) with batch_first or "
                             f"(L, {self.d_model}), got {tuple(x.shape)}")
        seq_dim = 1 if self.batch_first and x.ndim == 3 else 0
        length = x.shape[seq_dim]
        if length > self.max_len:
            raise ShapeError(f"{type(self).__name__}: sequence of length {length} (input "
                             f"{tuple(x.shape)}) is longer than max_len={self.max_len}")
        table = self._table()[:length]  # (L, E)
        if x.ndim == 3 and seq_dim == 0:
            table = table.unsqueeze(1)  # (L, 1, E) broadcast over the batch
        return self.dropout(x + table)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, max_len={self.max_len}, "
                f"batch_first={self.batch_first}")


class SinusoidalPositionalEncoding(_PositionalEncoding):
    """x + PE[:L], then dropout (Vaswani et al. 2017, §3.5: sines and cosines of geometrically
    spaced wavelengths, so PE(pos + k) is a linear function of PE(pos)). A flowgrad extension.

    Args: d_model, dropout=0.1, max_len=5000, batch_first=False. The table is a
    non-persistent buffer ``pe`` (max_len, d_model) in the default dtype or ``dtype``: it is
    recomputed, never saved in ``state_dict``.
    """

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000,
                 batch_first: bool = False, device=None, dtype=None) -> None:
        super().__init__(d_model, max_len, dropout, batch_first)
        dtype = dtype if dtype is not None else dtypes.get_default_dtype()
        table = tensor(sinusoidal_table(max_len, d_model), dtype=dtype, device=device)
        self.register_buffer("pe", table, persistent=False)

    def _table(self):
        return self.pe


class LearnedPositionalEncoding(_PositionalEncoding):
    """x + W[:L], then dropout, with a learned table ``weight`` (max_len, d_model) started
    N(0, 0.02²) as in GPT-2 and nanoGPT (Gehring et al. 2017; Radford et al. 2018). A flowgrad
    extension.

    Args: d_model, dropout=0.1, max_len=512, batch_first=False.
    """

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 512,
                 batch_first: bool = False, device=None, dtype=None) -> None:
        super().__init__(d_model, max_len, dropout, batch_first)
        self.weight = empty_param(max_len, d_model, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        normal_(self.weight, 0.0, 0.02)

    def _table(self):
        return self.weight
