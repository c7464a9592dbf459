"""Overfit a small training set (lecture: "Debugging" — "Train on a small dataset: verify can
reach 0 training error").

A model that cannot drive the training error on a few dozen examples to zero has a bug (or far
too little capacity), whatever its validation numbers say, and this takes seconds to find out.
``overfit_small(model, data, n=64)`` trains on the first ``n`` examples, full batch, until the
training error reaches ``target_error`` or ``max_steps`` runs out, and watches what usually goes
wrong:

* gradient flow: parameters whose gradient is None or zero at every step are named (a detached
  layer: ``.detach()``, ``.data``, a NumPy round trip or ``no_grad`` cut them from the loss);
* parameter change: if no parameter moved although gradients flowed, the learning rate is zero
  or the optimizer holds other parameters;
* the loss curve: NaN/inf (learning rate too high), a plateau at chance level ``log(C)`` — when
  it fails there, the same model is trained on the same inputs with the labels deliberately
  permuted (a control): if the real labels go no better than random ones, the labels carry no
  information about the inputs (shuffled against them, misaligned, or the wrong column).

A Dataset is read through its ``__getitem__`` at every step, as training would read it, so a
pipeline that pairs inputs with the wrong labels shows up; arrays ``(x, y)`` are read once.
The model is trained in place (pass a copy to keep it).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np

from .. import backend
from .report import TableReport as _TableReport

__all__ = ["overfit_small", "OverfitReport"]


def _np(a) -> np.ndarray:
    if not hasattr(a, "dtype") or hasattr(a, "_ctx"):
        a = getattr(a, "_data", a)
    return np.asarray(backend.to_numpy(a))


class _Source:
    """The n examples: fixed tensors from arrays, or read from a Dataset at every call."""

    def __init__(self, data, n: int) -> None:
        from .. import dtypes
        from ..tensor import Tensor, tensor

        def _as(v):  # floats in the default dtype, integer labels kept
            a = np.asarray(v)
            return tensor(a.astype(dtypes.get_default_dtype()) if a.dtype.kind == "f" else a)

        self.dataset = None
        if isinstance(data, (tuple, list)) and len(data) == 2:
            x, y = data
            x = x if isinstance(x, Tensor) else _as(x)
            y = y if isinstance(y, Tensor) else _as(y)
            n = min(n, len(x))
            self.fixed = (x[:n].detach(), y[:n].detach())
        elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
            self.dataset = data
            n = min(n, len(data))
            self.fixed = None
        else:
            raise TypeError(f"overfit_small: expected (x, y) arrays/tensors or a Dataset of "
                            f"(input, target) pairs, got {type(data).__name__}")
        self.n = n

    def batch(self):
        if self.dataset is None:
            return self.fixed
        from ..utils.data import default_collate

        idx = list(range(self.n))
        getitems = getattr(self.dataset, "__getitems__", None)
        items = getitems(idx) if getitems is not None else [self.dataset[i] for i in idx]
        x, y = default_collate(items)[:2]
        return x, y


def _make_optimizer(optimizer, params, lr):
    from .. import optim

    if optimizer is None:
        return optim.Adam(params, lr=lr)
    if isinstance(optimizer, optim.Optimizer):
        return optimizer
    return optimizer(params)  # a factory: params -> Optimizer


def _clone_optimizer(optimizer, params, lr):
    """A fresh optimizer of the same kind for the control run."""
    from .. import optim

    if optimizer is None or not isinstance(optimizer, optim.Optimizer):
        return _make_optimizer(optimizer, params, lr)
    defaults = dict(optimizer.defaults)
    defaults["lr"] = optimizer.param_groups[0].get("lr", defaults.get("lr"))
    return type(optimizer)(params, **defaults)


def _train(model, source, loss_fn, optimizer, max_steps, target_error, target_loss,
           permute=None, watch=True):
    """Train full batch; returns a dict of curves and the gradient-flow record."""
    from ..autograd.grad_mode import no_grad

    losses, errors = [], []
    grad_max = {n: 0.0 for n, _ in model.named_parameters()}
    grad_seen = {n: False for n in grad_max}
    params = list(model.named_parameters())
    classify = None
    reached, diverged_at = False, None
    for step in range(1, max_steps + 1):
        x, y = source.batch()
        if permute is not None:
            y = y[permute]
        model.train()
        optimizer.zero_grad()
        out = model(x)
        loss = loss_fn(out, y)
        value = float(_np(loss))
        losses.append(value)
        if not math.isfinite(value):
            diverged_at = step
            errors.append(float("nan"))
            break
        loss.backward()
        if watch:
            for name, p in params:
                if p.grad is not None:
                    grad_seen[name] = True
                    g = float(np.abs(_np(p.grad)).max(initial=0.0))
                    if g > grad_max[name]:
                        grad_max[name] = g
        optimizer.step()
        if classify is None:
            classify = (out.ndim == 2 and _np(y).dtype.kind in "iu")
        model.eval()
        with no_grad():
            if classify:
                pred = _np(model(x).argmax(-1))
                err = float((pred != _np(y)).mean())
            else:
                err = float(_np(loss_fn(model(x), y)))
        model.train()
        errors.append(err)
        if target_loss is None and not classify:
            target_loss = 1e-3 * losses[0]  # regression: a thousandth of the first loss
        if (classify and err <= target_error) or (not classify and err <= target_loss):
            reached = True
            break
    return {"losses": losses, "errors": errors, "reached": reached, "steps": len(losses),
            "diverged_at": diverged_at, "grad_max": grad_max, "grad_seen": grad_seen,
            "classify": bool(classify), "target_loss": target_loss}


class OverfitReport(_TableReport):
    """What ``overfit_small`` saw. Attributes: ``reached`` (target error reached), ``steps``,
    ``losses``/``errors`` (per step), ``no_gradient`` and ``unchanged`` (parameter names),
    ``chance_loss`` (log C), ``control`` (the permuted-label run, or None), ``ok``, ``verdict``,
    ``figure`` (the PNG, or None)."""

    title = "Overfit a small training set"
    columns = ("measure", "value")

    def as_dict(self) -> dict:
        return {**super().as_dict(), "reached": self.reached, "steps": self.steps,
                "final_loss": self.final_loss, "final_error": self.final_error,
                "losses": self.losses, "errors": self.errors, "no_gradient": self.no_gradient,
                "unchanged": self.unchanged, "chance_loss": self.chance_loss,
                "control": None if self.control is None else {
                    k: self.control[k] for k in ("steps", "final_loss", "final_error")},
                "figure": None if self.figure is None else str(self.figure)}

    def plot(self, path) -> Path:
        """Training loss and error against the step (and the control's, when it ran)."""
        from ..plotting import new_figure, save_figure

        fig, (a, b) = new_figure(1, 2, figsize=(9, 3.4))
        steps = np.arange(1, len(self.losses) + 1)
        a.plot(steps, self.losses, label="training loss")
        b.plot(steps[:len(self.errors)], self.errors, label="training error")
        if self.control is not None:
            cs = np.arange(1, len(self.control["losses"]) + 1)
            a.plot(cs, self.control["losses"], "--", label="control: labels permuted")
            b.plot(cs[:len(self.control["errors"])], self.control["errors"], "--",
                   label="control: labels permuted")
        if self.chance_loss is not None:
            a.axhline(self.chance_loss, color="gray", lw=0.8, ls=":", label="log C (chance)")
        positive = [v for v in self.losses if math.isfinite(v) and v > 0]
        if positive and max(positive) / max(min(positive), 1e-12) > 20:
            a.set_yscale("log")
        a.set(xlabel="step", ylabel="loss", title=f"overfit {self.n} examples")
        b.set(xlabel="step", ylabel="error" if self.classify else "loss (eval mode)")
        b.set_title(self.verdict.split(":")[0], fontsize=9)
        a.legend(fontsize=8)
        b.legend(fontsize=8)
        self.figure = save_figure(fig, path, dpi=110, tight=True)
        return self.figure


def overfit_small(model, data, n: int = 64, loss_fn=None, lr: float = 1e-2, optimizer=None,
                  max_steps: int = 300, target_error: float = 0.0,
                  target_loss: float | None = None, plot=None, control: bool | str = "auto",
                  seed: int = 0) -> OverfitReport:
    """Train ``model`` on ``n`` examples until the training error is ``target_error`` (lecture:
    "Debugging"); return a report whose verdict says "fine" or names the likely causes.

    Args:
        model: the ``nn.Module`` (trained in place).
        data: ``(x, y)`` arrays/tensors or a Dataset of ``(input, target)`` pairs; the first
            ``n`` examples are used (a Dataset is re-read at every step).
        loss_fn: ``(output, target) -> loss``; default cross-entropy.
        lr / optimizer: Adam(lr) by default; or an Optimizer over ``model``'s parameters, or a
            factory ``params -> Optimizer``.
        max_steps: the budget (full-batch steps).
        target_error: for classification (integer targets), the training error to reach; for
            other targets, ``target_loss`` (default 1e-3 of the first loss) is the goal.
        plot: a path: the loss/error curves as a PNG.
        control: on failure ("auto"), also train a copy of the initial model on permuted labels
            to tell "labels carry no information" from "too hard"; True always, False never.
        seed: the control's permutation.

    Example:
        >>> r = overfit_small(ResidualMLP(), (x_train, y_train), n=64)
        >>> r.verdict            # "fine: reached 0 training error on 64 examples in 51 steps"
    """
    from ..nn import functional as F

    loss_fn = F.cross_entropy if loss_fn is None else loss_fn
    source = _Source(data, n)
    initial_model = copy.deepcopy(model)
    before = {name: _np(p).copy() for name, p in model.named_parameters()}
    opt = _make_optimizer(optimizer, model.parameters(), lr)
    lr_now = opt.param_groups[0].get("lr") if getattr(opt, "param_groups", None) else lr
    run = _train(model, source, loss_fn, opt, max_steps, target_error, target_loss)
    target_loss = run["target_loss"]
    after = {name: _np(p) for name, p in model.named_parameters()}
    names = list(before)
    no_gradient = [k for k in names if not run["grad_seen"][k] or run["grad_max"][k] == 0.0]
    unchanged = [k for k in names if before[k].shape == after[k].shape
                 and np.array_equal(before[k], after[k])]

    report = OverfitReport()
    report.n, report.classify = source.n, run["classify"]
    report.reached, report.steps = run["reached"], run["steps"]
    report.losses, report.errors = run["losses"], run["errors"]
    report.final_loss = run["losses"][-1] if run["losses"] else float("nan")
    report.final_error = run["errors"][-1] if run["errors"] else float("nan")
    report.no_gradient, report.unchanged = no_gradient, unchanged
    report.lr = lr_now
    report.control, report.figure = None, None
    report.chance_loss = None
    x0, _ = source.batch()
    if run["classify"]:
        from ..autograd.grad_mode import no_grad

        with no_grad():
            classes = int(initial_model.eval()(x0).shape[-1])
        report.chance_loss = math.log(classes)

    # --- diagnosis -------------------------------------------------------------------------------
    problems = []
    if run["diverged_at"] is not None:
        problems.append(f"the loss became {report.final_loss} at step {run['diverged_at']}: the "
                        f"learning rate ({lr_now:g}) is too high, or the model makes NaNs "
                        "(find the op with fg.debug.detect_anomaly)")
    if no_gradient and len(no_gradient) < len(names):
        problems.append(f"{len(no_gradient)} of {len(names)} parameters never received a "
                        f"gradient: {', '.join(no_gradient)} — their layer is cut off from the "
                        "loss (a .detach(), .data, NumPy round trip or no_grad in forward), or "
                        "unused")
    elif no_gradient:
        problems.append("no parameter received a gradient: the loss does not depend on the "
                        "model's parameters (detached output, or no_grad around forward)")
    moved_with_grad = [k for k in names if k not in unchanged]
    if not moved_with_grad and len(no_gradient) < len(names) and run["diverged_at"] is None:
        problems.append(f"no parameter changed in {run['steps']} steps although gradients "
                        f"flowed: the learning rate is zero (lr={lr_now:g}), or the optimizer "
                        "holds other parameters than the model's (built before a copy or a "
                        ".to()), or step() does nothing")
    labels_suspect = None
    if not report.reached and run["diverged_at"] is None and moved_with_grad:
        tail = report.losses[len(report.losses) // 2:]
        plateau = (len(tail) >= 4 and max(tail) - min(tail)
                   <= 0.05 * max(abs(np.mean(tail)), 1e-12))
        near_chance = (report.chance_loss is not None
                       and np.mean(tail) >= 0.8 * report.chance_loss)
        run_control = control is True or (control == "auto" and run["classify"])
        if run_control:
            report.control = _control_run(initial_model, source, loss_fn, optimizer, opt, lr,
                                          run["steps"], target_error, target_loss, seed)
            c = report.control
            k = min(len(c["losses"]), len(report.losses))
            ours, theirs = np.mean(report.losses[k // 2:k]), np.mean(c["losses"][k // 2:k])
            labels_suspect = bool(ours >= theirs - 0.1 * max(theirs, 1e-12))
            report.control.update(final_loss=c["losses"][-1], final_error=c["errors"][-1])
        if labels_suspect or (labels_suspect is None and near_chance and plateau):
            where = (f"the loss stays near chance level log(C) = {report.chance_loss:.3f}"
                     if near_chance else "the loss goes down no faster than chance")
            compare = ("" if report.control is None else
                       f"; on the same inputs with labels deliberately permuted the loss is "
                       f"{theirs:.3f} vs {ours:.3f} with yours (second half of the run): the "
                       "labels carry no information about the inputs")
            problems.append(f"{where}{compare} — labels shuffled against inputs (x[i] and y[i] "
                            "no longer paired: separate shuffles, a sort on one side, the wrong "
                            "column), or inputs that carry no signal (constant, all zeros)")
        elif near_chance and plateau:
            problems.append(f"the loss plateaus near chance level log(C) = "
                            f"{report.chance_loss:.3f} although the labels are learnable (the "
                            "control with permuted labels does worse): a too small learning "
                            "rate, saturated units, or a bottleneck layer")
        elif not problems:
            first, last = report.losses[0], report.losses[-1]
            q = report.losses[-max(len(report.losses) // 4, 2):]
            still = (q[0] - q[-1]) > 0.05 * abs(q[0])
            problems.append(
                f"the training error is still {report.final_error:.3g} after {run['steps']} "
                f"steps (loss {first:.3f} -> {last:.3f}); "
                + ("the loss is still going down: more steps or a larger learning rate"
                   if still else "the loss has stalled: too little capacity, a learning "
                   "rate too high (loss oscillates) or too low, or a bug in the model"))

    report.ok = report.reached and not problems
    goal = (f"{target_error:g} training error" if run["classify"]
            else f"loss <= {target_loss:.3g}")
    if report.ok:
        report.verdict = (f"fine: reached {goal} on {source.n} examples in {report.steps} "
                          f"steps (loss {report.final_loss:.4f})")
    elif report.reached:
        report.verdict = (f"reached {goal} on {source.n} examples in {report.steps} steps, BUT "
                          + "; ".join(problems))
    else:
        report.verdict = (f"FAILED to reach {goal} on {source.n} examples in {report.steps} "
                          f"steps: " + "; ".join(problems))

    report.rows = [
        ("examples", source.n),
        ("steps taken", f"{report.steps} of {max_steps}"),
        ("target reached", "yes" if report.reached else "no"),
        ("first / final loss", f"{report.losses[0]:.4f} / {report.final_loss:.4f}"
         if report.losses else "-"),
        ("final training error", report.final_error),
        ("chance loss log(C)", "-" if report.chance_loss is None else
         f"{report.chance_loss:.4f}"),
        ("parameters without gradient", ", ".join(no_gradient) or "none"),
        ("parameters unchanged", ", ".join(unchanged) if len(unchanged) < len(names)
         else f"all {len(names)}"),
        ("learning rate", f"{lr_now:g}"),
    ]
    if report.control is not None:
        report.rows.append(("control (labels permuted): final loss / error",
                            f"{report.control['final_loss']:.4f} / "
                            f"{report.control['final_error']:.3g}"))
    if plot is not None:
        report.plot(plot)
    return report


def _control_run(initial_model, source, loss_fn, optimizer, opt, lr, steps, target_error,
                 target_loss, seed) -> dict:
    """The same initial model and optimizer on the same inputs with permuted labels."""
    m = copy.deepcopy(initial_model)
    perm = np.random.default_rng(seed).permutation(source.n)
    from ..tensor import tensor

    copt = _clone_optimizer(optimizer if optimizer is not None else None, m.parameters(),
                            opt.param_groups[0].get("lr", lr))
    run = _train(m, source, loss_fn, copt, steps, target_error, target_loss,
                 permute=tensor(perm.astype(np.int64)), watch=False)
    return run
