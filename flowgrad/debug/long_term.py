"""Probes for long-term dependencies (lecture: "Storing Reliably -> Vanishing gradients",
"Vanishing or Exploding Gradients"; Bengio, Simard & Frasconi 1994; Hochreiter 1991).

The gradient reaching the state s_t from a loss at step T is carried by the Jacobian product

    ds_T/ds_t = (ds_T/ds_{T-1}) ... (ds_{t+1}/ds_t),

which shrinks exponentially in T - t when the one-step Jacobians are contractive (spectral
radius < 1, what robust latching needs) and may grow exponentially otherwise.

- ``step_jacobians(rnn, x)``: every one-step Jacobian ds_{t+1}/ds_t along the trajectory of one
  input sequence, exactly (backprop of the n unit vectors, all steps in one batched backward
  pass) or by central finite differences (for verification).
- ``jacobian_norms(rnn, x)``: ||ds_T/ds_t|| for every t < T (spectral norm by default, or
  Frobenius) and the spectral radius of each one-step Jacobian; ``plot_jacobian_norms`` draws
  log ||ds_T/ds_t|| against T - t, one curve per model.
- ``clipping_demo(x, y)``: a tanh RNN with large recurrent weights trained with and without
  ``clip_grad_norm_`` (Pascanu, Mikolov & Bengio 2013), gradient norm and loss per step;
  ``plot_clipping`` draws them.

The state s is what the recurrence carries: h for ``RNN``/``GRU`` (and their cells), (h, c)
concatenated for ``LSTM``/``LSTMCell`` (h first, then c; for several layers, layer by layer
within h and within c). ``state="h"`` reports the h-to-h block of the same Jacobians
(d h_T / d h_t with c_t held fixed; for RNN and GRU the two are the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import backend, creation
from ..autograd import grad as autograd_grad
from ..autograd.grad_mode import no_grad
from ..nn.layers.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell
from ..nn.module import Module
from ..tensor import Tensor

__all__ = ["step_jacobians", "jacobian_norms", "JacobianNorms", "plot_jacobian_norms",
           "SequenceClassifier", "set_spectral_radius", "clipping_demo", "ClippingReport",
           "plot_clipping"]


# --- the recurrence as a map on one flat state vector -------------------------------------------

class _Stepper:
    """One step s_{t+1} = F(s_t, x_t) of a recurrent module, on flat states (B, n)."""

    def __init__(self, rnn) -> None:
        if isinstance(rnn, RNNBase):
            if rnn.bidirectional:
                raise ValueError("jacobian probe: a bidirectional layer has no single forward "
                                 "recurrence; probe each direction as its own layer")
            self.layers, self.lstm = rnn.num_layers, rnn.mode == "LSTM"
        elif isinstance(rnn, (RNNCell, GRUCell, LSTMCell)):
            self.layers, self.lstm = 0, isinstance(rnn, LSTMCell)
        else:
            raise TypeError("jacobian probe: expected fg.nn.RNN, LSTM, GRU or RNNCell, "
                            f"LSTMCell, GRUCell, got {type(rnn).__name__}")
        self.rnn, self.hidden = rnn, rnn.hidden_size
        self.h_size = max(self.layers, 1) * self.hidden
        self.n = self.h_size * (2 if self.lstm else 1)

    def _parts(self, flat):
        """Flat (B, n) -> the module's state argument."""
        def shaped(block):
            if not self.layers:
                return block
            batch = block.shape[0]
            return block.reshape(batch, self.layers, self.hidden).transpose(0, 1)

        h = shaped(flat[:, :self.h_size])
        return (h, shaped(flat[:, self.h_size:])) if self.lstm else h

    def _flat(self, state):
        from ..tensor_functions import cat

        def flat(block):
            if not self.layers:
                return block
            return block.transpose(0, 1).reshape(block.shape[1], self.h_size)

        return cat([flat(state[0]), flat(state[1])], dim=1) if self.lstm else flat(state)

    def __call__(self, flat, x):
        """flat (B, n), x (B, input_size) -> flat (B, n)."""
        state = self._parts(flat)
        if self.layers:
            x = x.unsqueeze(1) if self.rnn.batch_first else x.unsqueeze(0)
            return self._flat(self.rnn(x, state)[1])
        return self._flat(self.rnn(x, state))

    def initial(self, hx, like):
        if hx is None:
            zeros = like.new_zeros((1, self.n))
            return zeros
        if isinstance(hx, tuple):  # (h, c): unbatched or batch of one
            hx = tuple(_as_tensor(a, like) for a in hx)
            hx = tuple(a.unsqueeze(-2) if a.ndim == (2 if self.layers else 1) else a for a in hx)
        else:
            hx = _as_tensor(hx, like)
            hx = hx.unsqueeze(-2) if hx.ndim == (2 if self.layers else 1) else hx
        return self._flat(hx)


def _as_tensor(a, like) -> Tensor:
    if isinstance(a, Tensor):
        return a.detach()
    return creation.tensor(np.asarray(a), dtype=like.dtype, device=like.device)


def _sequence(rnn, x, param) -> Tensor:
    """One input sequence as (T, input_size) on the module's dtype and device."""
    x = _as_tensor(x, param)
    if x.ndim == 3:
        batch_first = getattr(rnn, "batch_first", False)
        if x.shape[0 if batch_first else 1] != 1:
            raise ValueError(f"jacobian probe: one sequence expected; got input of shape "
                             f"{tuple(x.shape)} (batch_first={batch_first}); pass x[0] or a "
                             "(T, input_size) array")
        x = x[0] if batch_first else x[:, 0]
    if x.ndim != 2:
        raise ValueError("jacobian probe: expected one sequence of shape (T, input_size), got "
                         f"shape {tuple(x.shape)}")
    return x


def _host(t: Tensor) -> np.ndarray:
    return np.asarray(backend.to_numpy(t.detach()._data), dtype=np.float64)


def step_jacobians(rnn, x, hx=None, method: str = "autograd", eps: float | None = None):
    """The one-step Jacobians J_t = ds_{t+1}/ds_t along the trajectory of ``rnn`` on ``x``.

    Args:
        rnn: ``fg.nn.RNN``, ``LSTM`` or ``GRU`` (unidirectional, any ``num_layers``,
            ``batch_first`` either way) or ``RNNCell``, ``LSTMCell``, ``GRUCell``.
        x: one sequence, (T, input_size), or a batch of one in the module's layout.
        hx: the initial state as the module takes it (default zeros).
        method: ``"autograd"``: exact; the state is repeated n times (a batch of n) and one
            backward pass with the identity as output gradient gives row i of J_t in batch row
            i, for all T steps at once. ``"finite_differences"``: central differences
            (F(s + eps e_j) - F(s - eps e_j)) / 2 eps, column by column (verification).
        eps: the finite-difference step (default 1e-6 in float64, 1e-3 otherwise).

    Returns ``(jacobians, states)``: float64 arrays of shapes (T, n, n) and (T + 1, n), where
    ``states[t]`` is s_t (s_0 the initial state) and ``jacobians[t][i, j] = d s_{t+1, i} /
    d s_{t, j}``. The module's parameters and their ``.grad`` are left untouched; it runs in
    eval mode (dropout off) and is put back as it was.
    """
    if method not in ("autograd", "finite_differences"):
        raise ValueError(f"step_jacobians: method must be 'autograd' or 'finite_differences', "
                         f"got {method!r}")
    step = _Stepper(rnn)
    param = next(iter(rnn.parameters()))
    x = _sequence(rnn, x, param)
    T, n = x.shape[0], step.n
    was_training = rnn.training
    rnn.eval()
    try:
        with no_grad():
            states = [step.initial(hx, param)]
            for t in range(T):
                states.append(step(states[-1], x[t:t + 1]))
        from ..tensor_functions import cat

        s = cat(states[:-1], dim=0)                       # (T, n): s_0 .. s_{T-1}
        xs = x.unsqueeze(1).expand(T, n, x.shape[1]).reshape(T * n, x.shape[1])
        eye = creation.eye(n, dtype=param.dtype, device=param.device)
        rows = s.unsqueeze(1).expand(T, n, n).reshape(T * n, n)
        if method == "autograd":
            rows = rows.detach().requires_grad_(True)
            out = step(rows, xs)
            seed = eye.unsqueeze(0).expand(T, n, n).reshape(T * n, n)
            (g,) = autograd_grad([out], [rows], grad_outputs=[seed])
            jac = _host(g).reshape(T, n, n)
        else:
            if eps is None:
                eps = 1e-6 if param.dtype.itemsize == 8 else 1e-3
            shift = (eye * eps).unsqueeze(0).expand(T, n, n).reshape(T * n, n)
            with no_grad():
                plus, minus = step(rows + shift, xs), step(rows - shift, xs)
            diff = (_host(plus) - _host(minus)) / (2 * eps)
            jac = diff.reshape(T, n, n).transpose(0, 2, 1)  # column j <- row j of the batch
    finally:
        rnn.train(was_training)
    return jac, np.concatenate([_host(a) for a in states], axis=0)


# --- norms of the products ----------------------------------------------------------------------

@dataclass
class JacobianNorms:
    """||ds_T/ds_t|| along one trajectory and the spectral radius of each one-step Jacobian.

    ``distance[k] = T - t`` (1 .. T); ``log_norms[k] = ln ||ds_T/ds_{T-distance[k]}||`` (kept as
    logarithms, so a product of 1000 Jacobians neither overflows nor underflows);
    ``spectral_radius[t] = rho(ds_{t+1}/ds_t)`` and ``step_norms[t] = ||ds_{t+1}/ds_t||`` for
    t = 0 .. T-1; ``norm`` is ``"2"`` (spectral: the largest singular value) or ``"fro"``."""

    distance: np.ndarray
    log_norms: np.ndarray
    spectral_radius: np.ndarray
    step_norms: np.ndarray
    jacobians: np.ndarray
    states: np.ndarray
    norm: str
    state: str
    method: str
    products: np.ndarray | None = field(default=None, repr=False)

    @property
    def norms(self) -> np.ndarray:
        """||ds_T/ds_t|| itself (inf or 0 where it leaves float64's range)."""
        with np.errstate(over="ignore", under="ignore"):
            return np.exp(self.log_norms)

    def slope(self, start: int = 1) -> float:
        """Least-squares slope of ln ||ds_T/ds_t|| against T - t over distances >= ``start``:
        the mean log contraction per step (< 0: vanishing, > 0: exploding)."""
        keep = (self.distance >= start) & np.isfinite(self.log_norms)
        if keep.sum() < 2:
            return float("nan")
        return float(np.polyfit(self.distance[keep], self.log_norms[keep], 1)[0])

    def __str__(self) -> str:
        T = len(self.distance)
        picks = sorted({d for d in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, T) if d <= T})
        name = {"2": "spectral", "fro": "Frobenius"}[self.norm]
        lines = [f"Jacobian products ({name} norm, state {self.state}, {self.method}), T = {T}",
                 "  T-t   ||ds_T/ds_t||"]
        norms = self.norms
        lines += [f"  {d:>4}  {norms[d - 1]:.3e}" for d in picks]
        radius = self.spectral_radius
        lines.append(f"  one-step spectral radius: mean {radius.mean():.3f}, min "
                     f"{radius.min():.3f}, max {radius.max():.3f}; slope of ln-norm per step "
                     f"{self.slope():.3f}")
        return "\n".join(lines)


def _norm(a: np.ndarray, norm: str) -> float:
    return float(np.linalg.norm(a, 2 if norm == "2" else "fro"))


def jacobian_norms(rnn, x, hx=None, norm: str = "2", state: str = "full",
                   method: str = "autograd", eps: float | None = None,
                   keep_products: bool = False) -> JacobianNorms:
    """||ds_T/ds_t|| for every t < T along the trajectory of ``rnn`` on one sequence ``x``
    (T = its length), and the spectral radius of each one-step Jacobian ds_{t+1}/ds_t.

    Args:
        rnn, x, hx, method, eps: as :func:`step_jacobians`.
        norm: ``"2"`` (spectral norm, default: the norm of Hochreiter's bound) or ``"fro"``.
        state: ``"full"`` (h, or (h, c) concatenated for LSTM) or ``"h"`` (the h-to-h block
            of the same products and one-step Jacobians).
        keep_products: also keep the products themselves, ``products[k] = ds_T/ds_{T-k-1}``
            (float64, may overflow for exploding dynamics).

    The products are formed from s_T backwards, P_t = P_{t+1} J_t, renormalised at each step
    with the scale kept in log space.
    """
    if norm not in ("2", "fro"):
        raise ValueError(f"jacobian_norms: norm must be '2' or 'fro', got {norm!r}")
    if state not in ("full", "h"):
        raise ValueError(f"jacobian_norms: state must be 'full' or 'h', got {state!r}")
    jac, states = step_jacobians(rnn, x, hx, method=method, eps=eps)
    T, n = jac.shape[0], jac.shape[1]
    stepper = _Stepper(rnn)
    k = stepper.h_size if state == "h" else n
    P, log_scale = np.eye(n), 0.0
    log_norms, products = np.empty(T), []
    for t in range(T - 1, -1, -1):
        P = P @ jac[t]
        block = P[:k, :k]
        size = _norm(block, norm)
        log_norms[T - 1 - t] = math.log(size) + log_scale if size > 0 else -math.inf
        if keep_products:
            with np.errstate(over="ignore"):
                products.append(block * math.exp(min(log_scale, 700.0)))
        scale = np.linalg.norm(P)
        if scale > 0 and np.isfinite(scale):
            P, log_scale = P / scale, log_scale + math.log(scale)
    blocks = jac[:, :k, :k]
    radius = np.array([np.abs(np.linalg.eigvals(b)).max() for b in blocks])
    step_norms = np.array([_norm(b, norm) for b in blocks])
    what = "(h, c)" if stepper.lstm and state == "full" else "h"
    return JacobianNorms(np.arange(1, T + 1), log_norms, radius, step_norms, blocks, states,
                         norm, what, method, np.array(products) if keep_products else None)


def plot_jacobian_norms(reports: dict, path, title: str | None = None, radius: bool = True):
    """log10 ||ds_T/ds_t|| against T - t, one curve per model (``reports``: name ->
    :class:`JacobianNorms`); with ``radius``, a second panel with the spectral radius of each
    one-step Jacobian along the trajectory (the line rho = 1 marked). Returns the path."""
    from ..plotting import new_figure, save_figure

    fig, axes = new_figure(1, 2 if radius else 1, figsize=(11 if radius else 6, 4),
                           squeeze=False, layout="constrained")
    ax = axes[0, 0]
    for name, r in reports.items():
        ax.plot(r.distance, r.log_norms / math.log(10), label=f"{name} ({r.state})")
    first = next(iter(reports.values()), None)
    norm = {"2": "spectral", "fro": "Frobenius"}[first.norm] if first else ""
    ax.set(xlabel="T - t", ylabel=f"log10 ||ds_T / ds_t|| ({norm} norm)",
           title="Jacobian products (gradient reaching step t from step T)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if radius:
        ax = axes[0, 1]
        for name, r in reports.items():
            ax.plot(np.arange(len(r.spectral_radius)), r.spectral_radius, label=name)
        ax.axhline(1.0, color="gray", ls=":", lw=1)
        ax.set(xlabel="t", ylabel="spectral radius of ds_{t+1} / ds_t",
               title="one-step Jacobians along the trajectory")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=110)


# --- a sequence classifier, and gradient clipping -----------------------------------------------

class SequenceClassifier(Module):
    """Sequence to vector: a one-layer ``RNN`` (tanh), ``LSTM`` or ``GRU`` (batch first) read to
    its last step, then a linear layer. forward(x (B, T, F)) -> logits (B, num_classes); the
    recurrent layer is ``self.rnn``."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_classes: int = 2):
        super().__init__()
        kinds = {"rnn": RNN, "tanh": RNN, "lstm": LSTM, "gru": GRU}
        if cell.lower() not in kinds:
            raise ValueError(f"SequenceClassifier: cell must be 'rnn', 'lstm' or 'gru', got "
                             f"{cell!r}")
        from ..nn.layers.linear import Linear

        self.cell = cell.lower()
        self.rnn = kinds[self.cell](input_size, hidden_size, batch_first=True)
        self.head = Linear(hidden_size, num_classes)

    def forward(self, x):
        output, _ = self.rnn(x)
        return self.head(output[:, -1])


def set_spectral_radius(rnn, radius: float) -> None:
    """Rescale ``rnn.weight_hh_l0`` (an ``RNN``) in place so that its spectral radius is
    ``radius``."""
    w = rnn.weight_hh_l0
    current = float(np.abs(np.linalg.eigvals(_host(w))).max())
    with no_grad():
        w.mul_(radius / current)


@dataclass
class ClippingReport:
    """Per-step gradient norms (before clipping) and training losses, without and with
    ``clip_grad_norm_(max_norm)``, for the same initial weights and the same minibatches."""

    grad_norm: dict
    loss: dict
    max_norm: float
    lr: float
    radius: float

    def summary(self) -> dict:
        out = {}
        for key in self.loss:
            g, loss = np.asarray(self.grad_norm[key]), np.asarray(self.loss[key])
            finite = np.isfinite(loss)
            out[f"{key}_max_grad_norm"] = float(np.nanmax(g)) if np.isfinite(g).any() \
                else float("inf")
            out[f"{key}_median_grad_norm"] = float(np.nanmedian(g))
            out[f"{key}_nonfinite_steps"] = int((~finite).sum())
            tail = loss[-max(1, len(loss) // 10):]
            out[f"{key}_final_loss"] = float(np.mean(tail)) if np.isfinite(tail).all() \
                else float("nan")
            out[f"{key}_steps_above_10x_max_norm"] = int((g > 10 * self.max_norm).sum())
        return out

    def __str__(self) -> str:
        s = self.summary()
        return "\n".join(
            f"{key}: gradient norm median {s[f'{key}_median_grad_norm']:.3g}, max "
            f"{s[f'{key}_max_grad_norm']:.3g}; final loss {s[f'{key}_final_loss']:.4f}; "
            f"non-finite steps {s[f'{key}_nonfinite_steps']}" for key in self.loss)


def clipping_demo(x, y, hidden_size: int = 16, radius: float = 3.0, steps: int = 100,
                  lr: float = 0.5, max_norm: float = 1.0, batch_size: int = 32,
                  seed: int = 0) -> ClippingReport:
    """Train a tanh RNN classifier whose recurrent matrix is rescaled to spectral radius
    ``radius`` (large: exploding gradients) by plain SGD on (x (N, T, F), y (N,)), twice from
    the same initial weights over the same minibatches: without clipping and with
    ``fg.nn.utils.clip_grad_norm_(max_norm)``. Records, per step, the total gradient norm
    before clipping and the loss (Pascanu, Mikolov & Bengio 2013; lecture: "Vanishing or
    Exploding Gradients")."""
    import flowgrad as fg

    from ..nn.functional import cross_entropy
    from ..nn.utils import clip_grad_norm_, get_total_norm

    x, y = np.asarray(x), np.asarray(y)
    fg.manual_seed(seed)
    base = SequenceClassifier("rnn", x.shape[-1], hidden_size, int(y.max()) + 1)
    set_spectral_radius(base.rnn, radius)
    initial = {k: v.detach().clone() for k, v in base.state_dict().items()}
    order = np.random.default_rng(seed).integers(0, len(x), size=(steps, batch_size))
    norms, losses = {}, {}
    for key, clip in (("unclipped", False), ("clipped", True)):
        model = SequenceClassifier("rnn", x.shape[-1], hidden_size, int(y.max()) + 1)
        model.load_state_dict(initial)
        optimizer = fg.optim.SGD(model.parameters(), lr=lr)
        norms[key], losses[key] = [], []
        for idx in order:
            loss = cross_entropy(model(fg.from_numpy(x[idx])), fg.from_numpy(y[idx]))
            optimizer.zero_grad()
            loss.backward()
            params = [p for p in model.parameters() if p.grad is not None]
            total = (clip_grad_norm_(params, max_norm) if clip
                     else get_total_norm([p.grad for p in params]))
            norms[key].append(float(total))
            losses[key].append(loss.item())
            optimizer.step()
    return ClippingReport(norms, losses, max_norm, lr, radius)


def plot_clipping(report: ClippingReport, path, title: str | None = None):
    """Gradient norm (log scale, the clipping threshold marked) and loss per step, without and
    with clipping. Non-finite values are left out of the lines. Returns the path."""
    from ..plotting import new_figure, save_figure

    fig, (a, b) = new_figure(1, 2, figsize=(11, 4), layout="constrained")
    for key, color in (("unclipped", "tab:red"), ("clipped", "tab:blue")):
        g = np.asarray(report.grad_norm[key], dtype=float)
        loss = np.asarray(report.loss[key], dtype=float)
        steps = np.arange(1, len(g) + 1)
        a.plot(steps, np.where(np.isfinite(g), g, np.nan), color=color, lw=1, label=key)
        b.plot(steps, np.where(np.isfinite(loss), loss, np.nan), color=color, lw=1, label=key)
    a.axhline(report.max_norm, color="gray", ls=":", lw=1,
              label=f"max_norm = {report.max_norm:g}")
    a.set(yscale="log", xlabel="step", ylabel="gradient norm (before clipping)",
          title=f"tanh RNN, recurrent spectral radius {report.radius:g}, SGD lr {report.lr:g}")
    b.set(xlabel="step", ylabel="training loss (cross-entropy)", title="loss per step")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=110)
