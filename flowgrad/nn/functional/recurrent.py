"""Recurrent steps over Tensors (lecture: "Recurrent Neural Networks"): one fused node per layer
and direction (flowgrad.ops.recurrent), and the single-step cells with the signatures of
PyTorch's ``torch.lstm_cell``, ``torch.gru_cell``, ``torch.rnn_tanh_cell`` and
``torch.rnn_relu_cell``.

The cells are the layer ops run for one time step, so a loop written with them gets the same
gate arithmetic (and the same backward) as the layers.
"""

from __future__ import annotations

from ... import dtypes
from ...errors import ShapeError
from ...ops import recurrent as R

__all__ = ["recurrent_layer", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell"]

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def check_dtype(op: str, input, weight, what: str = "input") -> None:
    """The DTypeError of nn.Linear for an input (or state) whose dtype differs from the
    weights'."""
    if input.dtype != weight.dtype:
        raise dtypes.mixed_dtypes(op, input.dtype, weight.dtype, (what, "weight"))


def recurrent_layer(mode: str, x, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_sizes=None,
                    reverse: bool = False):
    """All steps of one layer in one direction over packed rows ``x`` (N, input_size).

    Args: mode 'LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU'; h0, c0 (B, H) (c0 only for the LSTM);
    batch_sizes a tuple of ints (rows per time step, non-increasing) or None for T steps of
    the full batch. Returns (outputs (N, H), h_n (B, H), c_n (B, H) or None).
    """
    n = x.shape[0]
    b = h0.shape[0]
    if mode == "LSTM":
        out = R.LSTMLayer.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse)
        return out[:n], out[n:n + b], out[n + b:]
    if mode == "GRU":
        out = R.GRULayer.apply(x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse)
    else:
        act = "relu" if mode == "RNN_RELU" else "tanh"
        out = R.RNNLayer.apply(x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse, act)
    return out[:n], out[n:], None


def _check_cell(op: str, input, hx, w_ih, w_hh, which: int = 0) -> None:
    hidden = w_hh.shape[1]
    if input.ndim != 2:
        raise ShapeError(f"{op}: expected a 2-D input (batch, input_size), got shape "
                         f"{tuple(input.shape)}")
    if input.shape[1] != w_ih.shape[1]:
        raise ShapeError(f"input has inconsistent input_size: got {input.shape[1]} expected "
                         f"{w_ih.shape[1]} ({op}: input shape {tuple(input.shape)}, weight_ih "
                         f"shape {tuple(w_ih.shape)})")
    if hx.ndim != 2 or hx.shape[0] != input.shape[0]:
        raise ShapeError(f"Input batch size {input.shape[0]} doesn't match hidden{which} batch "
                         f"size {hx.shape[0] if hx.ndim else 0} ({op}: input shape "
                         f"{tuple(input.shape)}, hidden{which} shape {tuple(hx.shape)}, expected "
                         f"({input.shape[0]}, {hidden}))")
    if hx.shape[1] != hidden:
        raise ShapeError(f"hidden{which} has inconsistent hidden_size: got {hx.shape[1]}, "
                         f"expected {hidden} ({op}: hidden{which} shape {tuple(hx.shape)}, "
                         f"expected ({input.shape[0]}, {hidden}))")
    check_dtype(op, input, w_ih)
    check_dtype(op, hx, w_ih, f"hidden{which}")


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step: input (B, In), hx = (h, c) each (B, H) -> (h', c')."""
    h, c = hx
    _check_cell("lstm_cell", input, h, w_ih, w_hh, 0)
    _check_cell("lstm_cell", input, c, w_ih, w_hh, 1)
    b = input.shape[0]
    out = R.LSTMLayer.apply(input, h, c, w_ih, w_hh, b_ih, b_hh, None, False)
    return out[:b], out[2 * b:]


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step: input (B, In), hx (B, H) -> h'."""
    _check_cell("gru_cell", input, hx, w_ih, w_hh)
    return R.GRULayer.apply(input, hx, w_ih, w_hh, b_ih, b_hh, None, False)[:input.shape[0]]


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One Elman step h' = tanh(W_ih x + b_ih + W_hh h + b_hh): input (B, In), hx (B, H)."""
    _check_cell("rnn_tanh_cell", input, hx, w_ih, w_hh)
    out = R.RNNLayer.apply(input, hx, w_ih, w_hh, b_ih, b_hh, None, False, "tanh")
    return out[:input.shape[0]]


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One Elman step h' = relu(W_ih x + b_ih + W_hh h + b_hh): input (B, In), hx (B, H)."""
    _check_cell("rnn_relu_cell", input, hx, w_ih, w_hh)
    out = R.RNNLayer.apply(input, hx, w_ih, w_hh, b_ih, b_hh, None, False, "relu")
    return out[:input.shape[0]]
