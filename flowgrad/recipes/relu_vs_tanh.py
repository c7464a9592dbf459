"""Deep sparse rectifier networks (Glorot, Bordes & Bengio 2011; lecture: "Non-Linearities":
"much easier to train a deep multilayer network with rectifiers (ReLU) than with sigmoid or
tanh"). Same architecture (5 hidden layers), data, optimizer, steps and learning-rate search
for the three non-linearities, under two initialisation schemes: PyTorch's layer default
(U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the "standard" initialisation of Glorot & Bengio 2010) and
Glorot & Bengio's normalized uniform scaled by each non-linearity's gain, with zero biases.
Several seeds each, so that the comparison carries a significance test."""

from __future__ import annotations

import numpy as np

import flowgrad as fg
import flowgrad.nn.functional as F

from ..models import MLP
from ..plotting import new_figure, save_figure
from ..utils.data import DataLoader, TensorDataset
from .common import Timer, command_line, evaluate, mnist_arrays, resolve_out, write_results

DEFAULTS = {"epochs": 5, "lr": None, "batch_size": 64, "seed": 0, "seeds": 5, "depth": 5,
            "width": 256, "train_size": 20000}
ACTIVATIONS = ("relu", "tanh", "sigmoid")
INITS = ("default", "glorot_gain")  # PyTorch's layer default | Glorot uniform with the gain
LR_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)  # the same search for every non-linearity


def _initialise(model, act, init):
    if init == "glorot_gain":
        gain = fg.nn.init.calculate_gain(act)
        for layer in model.modules():
            if isinstance(layer, fg.nn.Linear):
                fg.nn.init.xavier_uniform_(layer.weight, gain=gain)
                fg.nn.init.zeros_(layer.bias)


def _train_one(act, init, lr, data, epochs, batch_size, seed, depth, width):
    """Train one deep MLP; returns per-step losses, per-epoch validation errors, the model."""
    (xtr, ytr), (xva, yva) = data
    fg.manual_seed(seed)
    model = MLP(sizes=(784,) + (width,) * depth + (10,), activation=act)
    _initialise(model, act, init)
    optimizer = fg.optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(fg.from_numpy(xtr), fg.from_numpy(ytr)),
                        batch_size=batch_size, shuffle=True)
    losses, valid_errors = [], []
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item() if np.isfinite(loss.item()) else np.log(10.0))
        valid_errors.append(evaluate(model, xva, yva)["error"])
    return losses, valid_errors, model


def run(epochs=5, lr=None, batch_size=64, seed=0, seeds=5, depth=5, width=256,
        train_size=20000, out=None, quick=False, progress=True,
        write: bool = True) -> dict:
    """For each initialisation scheme and non-linearity: pick the learning rate of the grid
    with the lowest validation error at ``seed``, then train ``seeds`` networks at that rate
    (seeds seed, seed+1, ...; the grid run is the first) and report test error and training
    loss as mean and spread; Welch's t-test compares ReLU with tanh."""
    command = command_line("relu_vs_tanh", run, locals())
    out = resolve_out("relu_vs_tanh", out)
    from tqdm.auto import tqdm

    (xtr, ytr), (xte, yte) = mnist_arrays("mnist", flatten=True)
    grid = LR_GRID if lr is None else (lr,)
    if quick:
        epochs, train_size, xte, yte, grid, seeds = 2, 2000, xte[:1000], yte[:1000], \
            (lr or 0.1,), 1
    data = ((xtr[:train_size], ytr[:train_size]), (xtr[-10000:], ytr[-10000:]))  # valid: last 10k
    inits = INITS if not quick else INITS[1:]
    total = len(inits) * len(ACTIVATIONS) * (len(grid) + seeds - 1)
    bar = tqdm(total=total, desc="relu_vs_tanh runs", disable=not progress or quick)
    results, grid_table = {}, []
    train = dict(data=data, epochs=epochs, batch_size=batch_size, depth=depth, width=width)
    with Timer() as t:
        for init in inits:
            for act in ACTIVATIONS:
                best = None
                for rate in grid:
                    run_ = _train_one(act, init, rate, seed=seed, **train)
                    bar.update()
                    grid_table.append((init, act, rate, run_[1][-1]))
                    if best is None or run_[1][-1] < best[0][1][-1]:
                        best = (run_, rate)
                runs = [best[0]]
                for k in range(1, seeds):
                    runs.append(_train_one(act, init, best[1], seed=seed + k, **train))
                    bar.update()
                results[init, act] = _summarise(runs, best[1], xte, yte, len(xtr[:train_size]),
                                                batch_size)
    bar.close()
    summary = {"title": f"Deep MLP ({depth} hidden layers of {width}): ReLU vs tanh vs sigmoid",
               **{f"{i}_{a}_{m}": r[m] for (i, a), r in results.items()
                  for m in ("test_error", "test_error_std", "train_loss", "epoch1_train_loss",
                            "lr")},
               "per_seed_test_error": {f"{i}_{a}": r["test_errors"]
                                       for (i, a), r in results.items()},
               "grid": [{"init": i, "activation": a, "lr": r, "valid_error": e}
                        for i, a, r, e in grid_table],
               "published": {"claim": "rectifiers make deep nets much easier to train than "
                                      "tanh and sigmoid (Glorot, Bordes & Bengio 2011)"},
               "epochs": epochs, "train_size": train_size, "seeds": seeds,
               "command": command,
               "seed": seed, "seconds": t.seconds}
    summary.update(_compare(results, inits))
    # the short keys the quick test and README read: the glorot_gain scheme
    for a in ACTIVATIONS:
        summary[f"{a}_test_error"] = results[inits[-1], a]["test_error"]
        summary[f"{a}_final_train_loss"] = results[inits[-1], a]["train_loss"]
    if write:
        fig = _plot(results, inits, out)
        write_results("relu_vs_tanh", out, summary, _rows(results, inits, summary, grid_table),
                      figures=(fig,), notes=_notes(grid, epochs, train_size, seeds)
                      + _verdict(results, inits, summary))
    return summary


def _summarise(runs, rate, xte, yte, n, batch_size):
    """Mean and spread over seeds of one (init, activation) cell, and its mean curves."""
    steps_per_epoch = -(-n // batch_size)
    tests = [evaluate(model, xte, yte)["error"] for _, _, model in runs]
    finals = [float(np.mean(losses[-50:])) for losses, _, _ in runs]
    firsts = [float(np.mean(losses[max(0, steps_per_epoch - 50):steps_per_epoch]))
              for losses, _, _ in runs]
    return {"lr": rate, "test_errors": tests, "train_losses": finals,
            "test_error": float(np.mean(tests)),
            "test_error_std": float(np.std(tests, ddof=1)) if len(tests) > 1 else 0.0,
            "train_loss": float(np.mean(finals)), "epoch1_train_loss": float(np.mean(firsts)),
            "loss_curve": np.mean([losses for losses, _, _ in runs], axis=0),
            "valid_curve": np.mean([valid for _, valid, _ in runs], axis=0),
            "steps_per_epoch": steps_per_epoch}


def _compare(results, inits):
    """Welch's t-test, ReLU vs tanh, on test error and final training loss, per init."""
    from scipy import stats

    out = {}
    for init in inits:
        relu, tanh = results[init, "relu"], results[init, "tanh"]
        for metric, key in (("test_error", "test_errors"), ("train_loss", "train_losses")):
            a, b = np.asarray(relu[key]), np.asarray(tanh[key])
            p = stats.ttest_ind(a, b, equal_var=False).pvalue if len(a) > 1 else float("nan")
            out[f"{init}_relu_vs_tanh_{metric}_p"] = float(p)
    return out


def _rows(results, inits, summary, grid_table):
    names = {"default": "PyTorch default init", "glorot_gain": "Glorot uniform × gain"}
    rows = []
    for init in inits:
        for a in ACTIVATIONS:
            r = results[init, a]
            rows.append((f"{names[init]}, {a} (lr {r['lr']}): test error, mean ± std",
                         f"{r['test_error']:.2%} ± {r['test_error_std']:.2%}", "—"))
            rows.append((f"{names[init]}, {a}: train loss after 1 epoch / at the end",
                         f"{r['epoch1_train_loss']:.3f} / {r['train_loss']:.3f}", "—"))
        order = " < ".join(sorted(ACTIVATIONS, key=lambda a: results[init, a]["test_error"]))
        rows.append((f"{names[init]}: ranking by mean test error", order,
                     "relu < tanh < sigmoid"))
        rows.append((f"{names[init]}: ReLU vs tanh, Welch's t-test (test error / train loss)",
                     f"{_p(summary[f'{init}_relu_vs_tanh_test_error_p'])} / "
                     f"{_p(summary[f'{init}_relu_vs_tanh_train_loss_p'])}", "—"))
    rows += [(f"grid: {names[i]}, {a}, lr {r}", f"valid error {e:.2%}", "—")
             for i, a, r, e in grid_table]
    return rows


def _p(p):
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _verdict(results, inits, summary):
    """The claim checked against the numbers: per scheme, who trains further and who
    generalises better, with the p-values; a difference with p >= 0.05 is called a tie."""
    lines = ["", "", "Outcome, ReLU against tanh (p from Welch's t-test over seeds):"]
    for init in inits:
        relu, tanh = results[init, "relu"], results[init, "tanh"]
        parts = []
        for label, key, fmt in (("final training loss", "train_loss", ".3f"),
                                ("test error", "test_error", ".2%")):
            p = summary[f"{init}_relu_vs_tanh_{key}_p"]
            lower = "ReLU" if relu[key] < tanh[key] else "tanh"
            parts.append(f"{label}: {lower} lower (ReLU {relu[key]:{fmt}}, tanh "
                         f"{tanh[key]:{fmt}}, {_p(p)}{'' if p < 0.05 else ', not significant'})")
        first = "ReLU" if relu["epoch1_train_loss"] < tanh["epoch1_train_loss"] else "tanh"
        parts.append(f"after one epoch {first} is ahead")
        sigmoid = results[init, "sigmoid"]["train_loss"]
        parts.append(f"sigmoid {'does not train' if sigmoid > 2.0 else 'trains'} "
                     f"(final loss {sigmoid:.3f}; chance is 2.303)")
        lines.append(f"- {init} init: " + "; ".join(parts) + ".")
    return "\n".join(lines)


def _notes(grid, epochs, train_size, seeds):
    return ("Each non-linearity gets the same budget under each initialisation scheme: SGD at "
            f"each learning rate of the grid {list(grid)} for {epochs} epochs on {train_size} "
            "MNIST training images; the rate with the lowest error on 10,000 held-out training "
            f"images is kept and trained from {seeds} seeds, whose test errors and training "
            "losses are reported as mean ± standard deviation. Curves: the seed mean of the "
            "kept runs (left: training loss, right: validation error), one row per scheme. "
            "A kept rate one grid step below a diverging one (see the grid) puts runs near the "
            "edge of stability, where float rounding (the BLAS thread count, for instance) "
            "changes individual runs; the seed spread is the measure of that.")


def _plot(results, inits, out):
    fig, axes = new_figure(len(inits), 2, figsize=(10, 4 * len(inits)), squeeze=False)
    for (a, b), init in zip(axes, inits):
        for act in ACTIVATIONS:
            r = results[init, act]
            smooth = np.convolve(r["loss_curve"], np.ones(50) / 50, mode="valid")
            a.plot(np.arange(len(smooth)) / r["steps_per_epoch"], smooth, label=act)
            b.plot(np.arange(1, len(r["valid_curve"]) + 1), r["valid_curve"], marker="o",
                   label=act)
        a.set(xlabel="epoch", ylabel="train loss (50-step mean)", yscale="log",
              title=f"training loss, {init} init")
        b.set(xlabel="epoch", ylabel="validation error", yscale="log",
              title=f"validation error, {init} init")
        a.legend()
        b.legend()
    fig.tight_layout()
    path = f"{out}/relu_vs_tanh.png"
    save_figure(fig, path, dpi=120)
    return path
