"""The composed tent map: a function a deep narrow ReLU network computes with 2 units per layer
while a network with one hidden layer needs exponentially many (lecture slide "Exponential
advantage of depth"; Montúfar, Pascanu, Cho & Bengio 2014, section 3; Telgarsky 2016).

tent(x) = 2x on [0, ½], 2(1 − x) on [½, 1] = 2 relu(x) − 4 relu(x − ½) on [0, 1];
f_L = tent ∘ ... ∘ tent (L times) has 2^{L−1} teeth, 2^L linear pieces on [0, 1]. A network
with one hidden layer of n ReLUs is linear on at most n + 1 pieces of a line, so it needs at
least 2^L − 1 units to compute f_L; the deep construction below uses 2L.
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from ..nn.containers import Sequential
from ..nn.layers.activation import ReLU
from ..nn.layers.linear import Linear

__all__ = ["fit_units_to_error", "folding_network", "mlp", "tent", "tent_map", "tent_network",
           "train_regressor"]


def tent(x):
    """The tent map on [0, 1]: 2x for x ≤ ½, 2(1 − x) above."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x <= 0.5, 2 * x, 2 * (1 - x))


def tent_map(x, depth: int):
    """f_L(x) = tent applied ``depth`` times (2^{depth−1} teeth on [0, 1])."""
    if depth < 1:
        raise ValueError(f"tent_map: depth must be at least 1, got {depth}")
    y = np.asarray(x, dtype=np.float64)
    for _ in range(depth):
        y = tent(y)
    return y


def _set(linear: Linear, weight, bias) -> Linear:
    dtype = linear.weight.dtype
    linear.weight.data = fg.tensor(np.asarray(weight, dtype=np.float64), dtype=dtype)
    linear.bias.data = fg.tensor(np.asarray(bias, dtype=np.float64), dtype=dtype)
    return linear


def _zigzag_coefficients(n: int) -> np.ndarray:
    """a with Σ_k a_k relu(x − k/n) = the zigzag that maps each [k/n, (k+1)/n] onto [0, 1]."""
    return np.array([n] + [2 * n * (-1) ** k for k in range(1, n)], dtype=np.float64)


def folding_network(widths, dtype=None) -> Sequential:
    """A one-input ReLU network with hidden widths n_1, ..., n_L reaching the lower bound of
    Montúfar et al. (2014) for n0 = 1: every hidden layer but the last folds [0, 1] onto itself
    n_i times (a zigzag of n_i units with breakpoints at k/n_i), and the last one cuts each fold
    into n_L + 1 pieces (breakpoints at k/(n_L + 1)): Π_{i<L} n_i · (n_L + 1) linear regions
    on [0, 1]. The output unit sums the last layer's units with alternating signs."""
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"folding_network: widths must be positive, got {widths}")
    layers, fan_in, fold = [], 1, np.ones(1)
    for i, n in enumerate(widths):
        last = i == len(widths) - 1
        thresholds = (np.arange(1, n + 1) / (n + 1)) if last else np.arange(n) / n
        linear = Linear(fan_in, n, dtype=dtype)
        layers += [_set(linear, np.tile(fold, (n, 1)), -thresholds), ReLU()]
        fold, fan_in = _zigzag_coefficients(n), n
    signs = np.array([(-1.0) ** k for k in range(widths[-1])])
    layers.append(_set(Linear(fan_in, 1, dtype=dtype), signs[None, :], [0.0]))
    return Sequential(*layers)


def tent_network(depth: int, dtype=None) -> Sequential:
    """The exact deep ReLU network of f_L: ``depth`` hidden layers of 2 units,
    h = (relu(y), relu(y − ½)) and tent(y) = 2 h_1 − 4 h_2 folded into the next layer."""
    if depth < 1:
        raise ValueError(f"tent_network: depth must be at least 1, got {depth}")
    layers, fan_in, fold = [], 1, np.ones(1)
    for _ in range(depth):
        layers += [_set(Linear(fan_in, 2, dtype=dtype), np.tile(fold, (2, 1)), [0.0, -0.5]),
                   ReLU()]
        fold, fan_in = np.array([2.0, -4.0]), 2
    layers.append(_set(Linear(2, 1, dtype=dtype), fold[None, :], [0.0]))
    return Sequential(*layers)


def mlp(widths, dtype=None) -> Sequential:
    """A one-input, one-output ReLU MLP with hidden widths ``widths`` (default init)."""
    layers, fan_in = [], 1
    for n in widths:
        layers += [Linear(fan_in, int(n), dtype=dtype), ReLU()]
        fan_in = int(n)
    layers.append(Linear(fan_in, 1, dtype=dtype))
    return Sequential(*layers)


def _mse(model, x, y) -> float:
    with fg.no_grad():
        d = model(fg.tensor(x[:, None], dtype=fg.float32)).numpy()[:, 0] - y
    return float(np.mean(d * d))


def train_regressor(model, x_train, y_train, x_valid, y_valid, steps: int = 3000,
                    lr: float = 1e-2, eval_every: int = 100) -> dict:
    """Full-batch Adam on the mean squared error (cosine-decayed learning rate); the weights of
    lowest validation error are kept."""
    opt = fg.optim.Adam(model.parameters(), lr=lr)
    sched = fg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    xt = fg.tensor(x_train[:, None], dtype=fg.float32)
    yt = fg.tensor(y_train[:, None], dtype=fg.float32)
    best = (_mse(model, x_valid, y_valid), 0, {k: v.detach().numpy().copy()
                                               for k, v in model.state_dict().items()})
    for step in range(1, steps + 1):
        loss = fg.nn.functional.mse_loss(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % eval_every == 0 or step == steps:
            v = _mse(model, x_valid, y_valid)
            if v < best[0]:
                best = (v, step, {k: t.detach().numpy().copy()
                                  for k, t in model.state_dict().items()})
    model.load_state_dict(best[2])
    return {"valid_mse": best[0], "best_step": best[1]}


def fit_units_to_error(depth: int, architectures, target_mse: float, seeds: int = 3,
                       n_train: int = 512, n_valid: int = 128, n_test: int = 4097,
                       steps: int = 3000, lr: float = 1e-2, seed: int = 0) -> dict:
    """The fewest units with which a trained network reaches ``target_mse`` on f_depth.

    ``architectures`` is a list of hidden-width lists in increasing number of units (e.g.
    [[2], [4], ...] for one hidden layer, [[w] * depth, ...] for deep nets). Each is trained
    from ``seeds`` random initialisations on n_train uniform points of [0, 1] (n_valid more,
    carved from the same draw, pick the best seed); the chosen net's test error on a uniform
    grid of n_test points is measured once. Stops at the first architecture that reaches the
    target on the test grid. The networks are fed 2x − 1."""
    rng = np.random.default_rng([seed, depth])
    x = rng.uniform(0, 1, n_train + n_valid)
    x_valid, x_train = x[:n_valid], x[n_valid:]
    x_test = np.linspace(0, 1, n_test)
    y_train, y_valid, y_test = (tent_map(v, depth) for v in (x_train, x_valid, x_test))
    # the networks see the input standardised to [-1, 1] (where the default initialisation
    # puts the units' breakpoints), the targets are f_L of the original x
    x_train, x_valid, x_test = (2 * v - 1 for v in (x_train, x_valid, x_test))
    rows, reached = [], None
    for widths in architectures:
        trials = []
        for s in range(seeds):
            fg.manual_seed(int(np.random.default_rng([seed, depth, len(widths), sum(widths),
                                                      s]).integers(2**31)))
            model = mlp(widths)
            info = train_regressor(model, x_train, y_train, x_valid, y_valid, steps, lr)
            trials.append((info["valid_mse"], s, model))
        valid, chosen, model = min(trials, key=lambda r: r[0])
        test = _mse(model, x_test, y_test)
        rows.append({"widths": list(widths), "units": int(sum(widths)), "valid_mse": valid,
                     "valid_mse_per_seed": [r[0] for r in trials], "test_mse": test,
                     "chosen_seed": chosen})
        if test <= target_mse:
            reached = rows[-1]
            break
    return {"depth": depth, "target_mse": target_mse, "rows": rows,
            "units": reached["units"] if reached else None,
            "tried_up_to": rows[-1]["units"] if rows else 0}
