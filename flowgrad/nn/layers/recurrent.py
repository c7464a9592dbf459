"""Recurrent layers with PyTorch's constructor arguments, parameter names, shapes, default
initialisation and forward signatures: RNN, LSTM, GRU and the cells RNNCell, LSTMCell, GRUCell
(lecture: "Recurrent Neural Networks", "Long-Term Dependencies"; LSTM: Hochreiter &
Schmidhuber 1997, Gers et al. 2000; GRU: Cho et al. 2014).

Each layer and direction is one fused node (flowgrad.ops.recurrent) whose backward is
back-propagation through time; the carried state can be cut with ``h.detach()`` for truncated
BPTT. Inputs may be padded (L, N, H_in) / (N, L, H_in), unbatched (L, H_in), or a
PackedSequence (the output is then one too).
"""

from __future__ import annotations

import math
import numbers
import warnings

from ... import creation
from ...errors import ShapeError
from ...tensor_functions import cat, stack
from .. import init
from ..functional.dropout import dropout as _dropout
from ..functional.recurrent import (
    GATES,
    check_dtype,
    gru_cell,
    lstm_cell,
    recurrent_layer,
    rnn_relu_cell,
    rnn_tanh_cell,
)
from ..module import Module
from ..utils.rnn import PackedSequence, _ints
from ._util import empty_param

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


class RNNBase(Module):
    """Stack of recurrent layers (``mode`` 'LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU'); the base
    of RNN, LSTM and GRU. Parameters ``weight_ih_l{k}`` (G*H, H_in or D*H), ``weight_hh_l{k}``
    (G*H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,), with suffix ``_reverse`` for the
    backward direction, all U(-1/sqrt(H), 1/sqrt(H)) as in PyTorch."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        if mode not in GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) \
                or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=2)
        for name, value in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size:
            if mode != "LSTM":
                raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
            if proj_size >= hidden_size:
                raise ValueError("proj_size has to be smaller than hidden_size")
            raise NotImplementedError(f"LSTM: proj_size={proj_size} (LSTM with projections, "
                                      "Sak et al. 2014) is not supported by flowgrad; use "
                                      "proj_size=0, or an nn.Linear on the outputs")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        gate_size = GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = "_reverse" if direction == 1 else ""
                names = [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
                shapes = [(gate_size, layer_input), (gate_size, hidden_size)]
                if bias:
                    names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
                    shapes += [(gate_size,), (gate_size,)]
                for name, shape in zip(names, shapes):
                    self.register_parameter(name, empty_param(*shape, device=device, dtype=dtype))
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """Accepted for PyTorch compatibility (cuDNN's flat weight buffer); does nothing."""

    @property
    def all_weights(self) -> list:
        """Per layer and direction, [weight_ih, weight_hh(, bias_ih, bias_hh)]."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, name) for name in self._flat_weights_names]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # --- forward ---------------------------------------------------------------------------------

    def _name(self) -> str:
        return type(self).__name__

    def _check_input(self, input, packed: bool) -> None:
        expected = 2 if packed else 3
        if input.ndim != expected:
            raise ShapeError(f"input must have {expected} dimensions, got {input.ndim} "
                             f"({self._name()}: input shape {tuple(input.shape)})")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {input.shape[-1]} ({self._name()}: input "
                             f"shape {tuple(input.shape)})")
        check_dtype(self._name().lower(), input, self.weight_ih_l0)

    def _check_hidden(self, hx, expected: tuple, label: str = "hidden") -> None:
        if tuple(hx.shape) != expected:
            raise ShapeError(f"Expected {label} size {expected}, got {list(hx.shape)}")
        check_dtype(self._name().lower(), hx, self.weight_ih_l0, "hidden state")

    def _run(self, x, batch_sizes, batch: int, hx, cx):
        """All layers over packed rows x (N, H_in). Returns (rows (N, D*H), h_n, c_n)."""
        directions = 2 if self.bidirectional else 1
        p = self._parameters
        if hx is None:
            zeros = creation.zeros((batch, self.hidden_size), dtype=x.dtype, device=x.device)
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(directions):
                k = layer * directions + direction
                suffix = "_reverse" if direction else ""
                w = [p.get(f"{kind}_l{layer}{suffix}") for kind in
                     ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                h0 = zeros if hx is None else hx[k]
                c0 = None if self.mode != "LSTM" else (zeros if cx is None else cx[k])
                out, h_n, c_n = recurrent_layer(self.mode, x, h0, c0, *w, batch_sizes,
                                                direction == 1)
                outs.append(out)
                hs.append(h_n)
                cs.append(c_n)
            x = outs[0] if directions == 1 else cat(outs, dim=1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = _dropout(x, self.dropout, True)
        h_n = stack(hs)
        c_n = stack(cs) if self.mode == "LSTM" else None
        return x, h_n, c_n

    def _split_hx(self, hx):
        if self.mode == "LSTM":
            if hx is None:
                return None, None
            return hx[0], hx[1]
        return hx, None

    def forward(self, input, hx=None):
        name = self._name()
        lstm = self.mode == "LSTM"
        directions = 2 if self.bidirectional else 1
        layers = self.num_layers * directions
        h, c = self._split_hx(hx)
        if isinstance(input, PackedSequence):
            data, batch_sizes = input.data, input.batch_sizes
            self._check_input(data, True)
            sizes = tuple(_ints(batch_sizes).tolist())
            batch = sizes[0]
            if h is not None and input.sorted_indices is not None:
                h = h.index_select(1, input.sorted_indices)
                c = c.index_select(1, input.sorted_indices) if c is not None else None
            self._check_states(h, c, (layers, batch, self.hidden_size))
            rows, h_n, c_n = self._run(data, sizes, batch, h, c)
            if input.unsorted_indices is not None:
                h_n = h_n.index_select(1, input.unsorted_indices)
                c_n = c_n.index_select(1, input.unsorted_indices) if lstm else None
            output = PackedSequence(rows, batch_sizes, input.sorted_indices,
                                    input.unsorted_indices)
            return output, ((h_n, c_n) if lstm else h_n)
        if input.ndim not in (2, 3):
            what = "tensor " if self.mode.startswith("RNN") else ""
            raise ShapeError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D "
                             f"{what}instead (input shape {tuple(input.shape)})")
        batched = input.ndim == 3
        if not batched:
            input = input.unsqueeze(1)
            if h is not None:
                if h.ndim != 2 or (lstm and c.ndim != 2):
                    raise ShapeError(self._rank_message("unbatched 2-D", 2, h, c))
                h = h.unsqueeze(1)
                c = c.unsqueeze(1) if lstm else None
        else:
            if h is not None and (h.ndim != 3 or (lstm and c.ndim != 3)):
                raise ShapeError(self._rank_message("batched 3-D", 3, h, c))
            if self.batch_first:
                input = input.transpose(0, 1)
        self._check_input(input, False)
        steps, batch = input.shape[0], input.shape[1]
        self._check_states(h, c, (layers, batch, self.hidden_size))
        x = input.reshape(steps * batch, self.input_size)
        rows, h_n, c_n = self._run(x, None, batch, h, c)
        output = rows.reshape(steps, batch, rows.shape[1])
        if not batched:
            output = output.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, ((h_n, c_n) if lstm else h_n)

    def _rank_message(self, kind: str, rank: int, h, c) -> str:
        if self.mode == "LSTM":
            return (f"For {kind} input, hx and cx should also be {rank}-D but got ({h.ndim}-D, "
                    f"{c.ndim}-D) tensors")
        return f"For {kind} input, hx should also be {rank}-D but got {h.ndim}-D tensor"

    def _check_states(self, h, c, expected: tuple) -> None:
        if h is None:
            return
        if self.mode == "LSTM":
            self._check_hidden(h, expected, "hidden[0]")
            self._check_hidden(c, expected, "hidden[1]")
        else:
            self._check_hidden(h, expected)


class RNN(RNNBase):
    """Elman RNN, h_t = act(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh), act tanh or relu.

    Args: input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False (proj_size must stay 0, as in
    PyTorch). forward(input, h_0=None) ->
    (output, h_n) with output (L, N, D*H) and h_n (D*num_layers, N, H).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        self.nonlinearity = nonlinearity
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device=device, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory (gates i, f, g, o): c_t = f c_(t-1) + i g, h_t = o tanh(c_t).

    Args: input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0 (projections not supported). forward(input, (h_0, c_0)=None)
    -> (output, (h_n, c_n)).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit (gates r, z, n): n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
    h_t = (1 - z) n + z h_(t-1).

    Args as LSTM's (proj_size must stay 0, as in PyTorch). forward(input, h_0=None) ->
    (output, h_n).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device=device, dtype=dtype)


class RNNCellBase(Module):
    """One recurrent step with parameters weight_ih (G*H, input_size), weight_hh (G*H, H),
    bias_ih, bias_hh (G*H,), all U(-1/sqrt(H), 1/sqrt(H)) as in PyTorch."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gate = num_chunks * hidden_size
        self.weight_ih = empty_param(gate, input_size, device=device, dtype=dtype)
        self.weight_hh = empty_param(gate, hidden_size, device=device, dtype=dtype)
        if bias:
            self.bias_ih = empty_param(gate, device=device, dtype=dtype)
            self.bias_hh = empty_param(gate, device=device, dtype=dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s

    def _batched(self, input, states: tuple, labels: tuple) -> bool:
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ShapeError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead "
                             f"(input shape {tuple(input.shape)})")
        for s, label in zip(states, labels):
            if s is not None and s.ndim not in (1, 2):
                raise ShapeError(f"{name}: Expected {label} to be 1D or 2D, got {s.ndim}D "
                                 f"instead ({label} shape {tuple(s.shape)})")
            if s is not None and s.ndim != input.ndim:
                raise ShapeError(f"{name}: {label} of shape {tuple(s.shape)} does not fit input "
                                 f"of shape {tuple(input.shape)}: expected "
                                 f"{self._state_shape(input)}")
        return input.ndim == 2

    def _state_shape(self, input) -> tuple:
        if input.ndim == 2:
            return (input.shape[0], self.hidden_size)
        return (self.hidden_size,)

    def _zeros(self, input):
        return creation.zeros((input.shape[0], self.hidden_size), dtype=input.dtype,
                              device=input.device)

    def _params(self) -> tuple:
        p = self._parameters
        return p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"]


class RNNCell(RNNCellBase):
    """One Elman step h' = act(W_ih x + b_ih + W_hh h + b_hh), act 'tanh' or 'relu'.

    forward(input (N, H_in) or (H_in,), hx (N, H) or (H,) = zeros) -> h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        batched = self._batched(input, (hx,), ("hidden",))
        if not batched:
            input = input.unsqueeze(0)
            hx = hx.unsqueeze(0) if hx is not None else None
        if hx is None:
            hx = self._zeros(input)
        fn = rnn_tanh_cell if self.nonlinearity == "tanh" else rnn_relu_cell
        h = fn(input, hx, *self._params())
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o).

    forward(input (N, H_in) or (H_in,), (h, c) = zeros) -> (h', c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        h, c = (None, None) if hx is None else hx
        batched = self._batched(input, (h, c), ("hx[0]", "hx[1]"))
        if not batched:
            input = input.unsqueeze(0)
            if hx is not None:
                h, c = h.unsqueeze(0), c.unsqueeze(0)
        if hx is None:
            h = c = self._zeros(input)
        h, c = lstm_cell(input, (h, c), *self._params())
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n).

    forward(input (N, H_in) or (H_in,), hx (N, H) or (H,) = zeros) -> h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        batched = self._batched(input, (hx,), ("hidden",))
        if not batched:
            input = input.unsqueeze(0)
            hx = hx.unsqueeze(0) if hx is not None else None
        if hx is None:
            hx = self._zeros(input)
        h = gru_cell(input, hx, *self._params())
        return h if batched else h.squeeze(0)
