"""The slide "Debugging" as checks that catch planted bugs, on MNIST-1D (Greydanus 2020).

Each tool of ``flowgrad.debug``'s core is run on a healthy model and on the same model with a
bug planted in it, and the table says whether the tool's verdict caught the bug:

* reproducibility (``check_determinism``): two runs from one seed, bit for bit — planted: an
  initialisation from an unseeded generator; a DataLoader shuffled from the OS's entropy;
* gradient check (``check_model_grads``): backprop vs finite differences for every parameter —
  planted: a custom ``fg.autograd.Function`` (tanh) whose backward forgets a factor;
* overfit a small set (``overfit_small``): zero training error on a few dozen examples —
  planted: labels shuffled against the inputs in the data pipeline, a detached first layer, a
  learning rate of zero;
* anomaly mode (``detect_anomaly``): the first op making a NaN/inf — planted: unnormalised
  inputs (x1000) into a hand-written softmax (exp overflows), and a norm penalty on a
  zero-initialised bias (the backward of sqrt at 0 is infinite);
* the flow graph (``to_dot`` / ``draw_graph`` / ``unreached_parameters``) — planted: the
  detached layer, missing from the graph of the loss.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

import flowgrad as fg
import flowgrad.nn.functional as F

from .. import nn
from ..datasets import mnist1d as make_mnist1d
from ..debug.anomaly import AnomalyError, detect_anomaly
from ..debug.gradcheck import check_model_grads
from ..debug.graph import draw_graph, unreached_parameters
from ..debug.overfit import overfit_small
from ..debug.reproducibility import check_determinism
from ..models import ConvNet1d, ResidualMLP
from ..plotting import new_figure, save_figure
from ..utils.data import DataLoader, Dataset, Generator, TensorDataset
from .common import Timer, command_line, resolve_out, write_results

DEFAULTS = {"seed": 0, "n": 128, "max_steps": 300, "n_entries": 20, "steps": 5}


# --- planted bugs -------------------------------------------------------------------------------

class UnseededInit(ResidualMLP):
    """Bug: re-initialises its first layer from ``np.random.default_rng()`` (no seed)."""

    def __init__(self) -> None:
        super().__init__()
        w = self.linear1.weight
        w._data[...] = np.random.default_rng().uniform(-0.15, 0.15, w.shape).astype(w.dtype)


class TanhWrongBackward(fg.autograd.Function):
    """Bug: d tanh(x)/dx written as 1 - y instead of 1 - y**2."""

    @staticmethod
    def forward(ctx, x):
        y = x.tanh()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y)


class TanhMLP(nn.Module):
    """40-64-64-10 with a custom tanh in the middle (``wrong=True`` plants the bad backward)."""

    def __init__(self, wrong: bool = False) -> None:
        super().__init__()
        self.wrong = wrong
        self.fc1, self.fc2, self.out = nn.Linear(40, 64), nn.Linear(64, 64), nn.Linear(64, 10)

    def forward(self, x):
        h = self.fc1(x).relu()
        h = self.fc2(h)
        h = TanhWrongBackward.apply(h) if self.wrong else h.tanh()
        return self.out(h)


class DetachedMLP(ResidualMLP):
    """Bug: ``.detach()`` after the first layer (left over from a feature-extraction test)."""

    def forward(self, x):
        h = self.linear1(x).relu().detach()
        h = h + self.linear2(h).relu()
        return self.linear3(h)


class MisalignedPairs(Dataset):
    """Bug: inputs and labels read through two independent shuffles (two loaders zipped), so
    x[i] is paired with a random label at every pass."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int = 0) -> None:
        self.x, self.y, self.rng = x, y, np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[self.rng.integers(len(self.y))]

    def __getitems__(self, idx):
        labels = self.y[self.rng.permutation(len(self.y))[:len(idx)]]
        return list(zip(self.x[idx], labels))


class NaiveSoftmax(nn.Module):
    """exp(x) / sum exp(x) without subtracting the max (fine for small logits)."""

    def forward(self, x):
        e = x.exp()
        return e / e.sum(-1, keepdim=True)


def _softmax_net() -> nn.Module:
    return nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 10), NaiveSoftmax())


def _nll_of_probs(p, y):
    return F.nll_loss(p.log(), y)


# --- the checks ---------------------------------------------------------------------------------

def _check_reproducibility(x, y, steps, seed):
    ds = TensorDataset(fg.from_numpy(x[:512]), fg.from_numpy(y[:512]))

    def loader():
        return DataLoader(ds, batch_size=64, shuffle=True)

    def os_loader():
        g = Generator().manual_seed(int(np.random.SeedSequence().entropy % (1 << 63)))
        return DataLoader(ds, batch_size=64, shuffle=True, generator=g)

    def adam(p):
        return fg.optim.Adam(p, lr=1e-2)

    healthy = check_determinism(ResidualMLP, loader, F.cross_entropy, adam, steps, seed)
    init = check_determinism(UnseededInit, loader, F.cross_entropy, adam, steps, seed)
    order = check_determinism(ResidualMLP, os_loader, F.cross_entropy, adam, steps, seed)
    fd = init.first_difference or {}
    fo = order.first_difference or {}
    return [
        {"check": "reproducibility (check_determinism)", "healthy": healthy.verdict,
         "healthy_ok": healthy.identical, "bug": "first layer initialised from an unseeded "
         "np.random.default_rng()", "verdict": init.verdict,
         "caught": (not init.identical and fd.get("what") == "initial parameter"
                    and fd.get("name") == "linear1.weight")},
        {"check": "reproducibility (check_determinism)", "healthy": healthy.verdict,
         "healthy_ok": healthy.identical, "bug": "DataLoader shuffled by a Generator seeded "
         "from the OS", "verdict": order.verdict,
         "caught": not order.identical and fo.get("what") == "batch"},
    ], {"healthy": healthy.as_dict(), "unseeded_init": init.as_dict(),
        "unseeded_loader": order.as_dict()}


def _check_gradients(x, y, n_entries, seed):
    xb, yb = x[:16], y[:16]
    fg.manual_seed(seed)
    mlp = check_model_grads(ResidualMLP(), xb, yb, F.cross_entropy, n_entries, seed=seed)
    cnn = check_model_grads(ConvNet1d(), xb, yb, F.cross_entropy, n_entries, seed=seed)
    tanh_ok = check_model_grads(TanhMLP(), xb, yb, F.cross_entropy, n_entries, seed=seed)
    bad = check_model_grads(TanhMLP(wrong=True), xb, yb, F.cross_entropy, n_entries, seed=seed)
    healthy = (f"ResidualMLP: {mlp.verdict.split(' (')[0]}; ConvNet1d: "
               f"{cnn.verdict.split(' (')[0]}; TanhMLP: {tanh_ok.verdict.split(' (')[0]}")
    caught = set(bad.bad) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    passing = [name for name in bad.worst if name not in bad.bad]
    short = (f"WRONG gradients: {', '.join(bad.bad)} (relative errors up to "
             f"{max(bad.worst.values()):.2g}); these pass: {', '.join(passing)} — the wrong "
             "backward lies between them" if bad.bad else bad.verdict)
    return [{"check": "gradient check (check_model_grads)", "healthy": healthy,
             "healthy_ok": mlp.ok and cnn.ok and tanh_ok.ok,
             "bug": "custom autograd.Function tanh whose backward returns grad*(1-y)",
             "verdict": short, "caught": caught}], {
        "mlp": mlp.as_dict(), "cnn": cnn.as_dict(), "tanh_mlp": tanh_ok.as_dict(),
        "tanh_wrong_backward": bad.as_dict()}


def _check_overfit(x, y, n, max_steps, seed, out):
    fg.manual_seed(seed)
    healthy = overfit_small(ResidualMLP(), (x, y), n=n, max_steps=max_steps)
    fg.manual_seed(seed)
    shuffled = overfit_small(ResidualMLP(), MisalignedPairs(x, y, seed), n=n,
                             max_steps=max_steps)
    fg.manual_seed(seed)
    detached = overfit_small(DetachedMLP(), (x, y), n=n, max_steps=max_steps)
    fg.manual_seed(seed)
    frozen = overfit_small(ResidualMLP(), (x, y), n=n, lr=0.0, max_steps=max_steps)
    reports = {"healthy": healthy, "labels shuffled against inputs": shuffled,
               "detached first layer": detached, "learning rate 0": frozen}
    fig = _plot_overfit(reports, out / "debug_checks_overfit.png")
    rows = [
        {"bug": "labels shuffled against inputs in the data pipeline", "report": shuffled,
         "caught": not shuffled.ok and "labels shuffled against inputs" in shuffled.verdict},
        {"bug": "first layer's output .detach()-ed", "report": detached,
         "caught": not detached.ok and "linear1.weight, linear1.bias" in detached.verdict},
        {"bug": "learning rate 0", "report": frozen,
         "caught": not frozen.ok and "learning rate is zero" in frozen.verdict},
    ]
    return [{"check": "overfit a small set (overfit_small)", "healthy": healthy.verdict,
             "healthy_ok": healthy.ok, "bug": r["bug"], "verdict": r["report"].verdict,
             "caught": r["caught"]} for r in rows], {
        k: {kk: v for kk, v in r.as_dict().items() if kk not in ("rows", "columns")}
        for k, r in reports.items()}, fig


def _check_anomaly(x, y, seed):
    xb, yb = fg.from_numpy(x[:32]), fg.from_numpy(y[:32])

    def step(model, inputs, penalty=False):
        with detect_anomaly(model):
            loss = _nll_of_probs(model(inputs), yb)
            if penalty:
                bias = model[0].bias
                loss = loss + 1e-3 * (bias * bias).sum().sqrt()
            loss.backward()
        return loss

    fg.manual_seed(seed)
    model = _softmax_net()
    healthy_loss = step(model, xb)
    healthy = f"fine: a training step ran with no NaN/inf (loss {healthy_loss.item():.3f})"
    rows, details = [], {"healthy": healthy}
    fg.manual_seed(seed)
    try:
        step(_softmax_net(), xb * 1000.0)
        verdict, caught = "no anomaly raised", False
    except AnomalyError as e:
        verdict = str(e).splitlines()
        caught = e.op == "Exp" and e.pass_ == "forward" and e.module == "3"
        verdict = " / ".join(v.strip() for v in verdict[:3])
    rows.append({"check": "anomaly mode (detect_anomaly)", "healthy": healthy, "healthy_ok": True,
                 "bug": "unnormalised inputs (x1000) into a softmax without max-subtraction",
                 "verdict": verdict, "caught": caught})
    details["overflow"] = verdict
    fg.manual_seed(seed)
    model = _softmax_net()
    nn.init.zeros_(model[0].bias)
    try:
        step(model, xb, penalty=True)
        verdict, caught = "no anomaly raised", False
    except AnomalyError as e:
        caught = e.op == "Sqrt" and e.pass_ == "backward"
        verdict = " / ".join(v.strip() for v in str(e).splitlines()[:3])
    rows.append({"check": "anomaly mode (detect_anomaly)", "healthy": healthy, "healthy_ok": True,
                 "bug": "norm penalty sqrt(sum b^2) on a zero-initialised bias",
                 "verdict": verdict, "caught": caught})
    details["sqrt_at_zero"] = verdict
    return rows, details


def _check_graph(x, y, seed, out):
    xb, yb = fg.from_numpy(x[:8]), fg.from_numpy(y[:8])
    fg.manual_seed(seed)
    model = ResidualMLP()
    loss = F.cross_entropy(model(xb), yb)
    drawing = draw_graph(loss, out / "debug_checks_graph.svg", params=model)
    missing_healthy = unreached_parameters(loss, model)
    fg.manual_seed(seed)
    bad = DetachedMLP()
    bad_loss = F.cross_entropy(bad(xb), yb)
    draw_graph(bad_loss, out / "debug_checks_graph_detached.svg", params=bad)
    missing = unreached_parameters(bad_loss, bad)
    healthy = (f"fine: all {len(list(model.parameters()))} parameters are in the graph of the "
               f"loss ({drawing.dot.name})" if not missing_healthy
               else f"missing: {', '.join(missing_healthy)}")
    verdict = (f"parameters not in the graph of the loss: {', '.join(missing)}" if missing
               else "all parameters are in the graph")
    return [{"check": "flow graph (draw_graph, unreached_parameters)", "healthy": healthy,
             "healthy_ok": not missing_healthy, "bug": "first layer's output .detach()-ed",
             "verdict": verdict,
             "caught": missing == ["linear1.weight", "linear1.bias"]}], {
        "note": drawing.note, "dot": str(drawing.dot), "missing_detached": missing}


def _plot_overfit(reports: dict, path: Path) -> Path:
    fig, (a, b) = new_figure(1, 2, figsize=(10, 3.8))
    for name, r in reports.items():
        steps = np.arange(1, len(r.losses) + 1)
        a.plot(steps, r.losses, label=name)
        b.plot(steps[:len(r.errors)], r.errors, label=name)
    chance = next((r.chance_loss for r in reports.values() if r.chance_loss), None)
    if chance:
        a.axhline(chance, color="gray", ls=":", lw=0.8, label="log 10 (chance)")
    a.set(xlabel="step", ylabel="training loss", yscale="log",
          title=f"overfit {next(iter(reports.values())).n} MNIST-1D examples (Adam 1e-2)")
    b.set(xlabel="step", ylabel="training error", title="a healthy model reaches 0 fast")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=110)
    return path


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def run(out=None, quick=False, progress=True, seed=0, n=128, max_steps=300, n_entries=20,
        steps=5, **ignored) -> dict:
    """Every check on a healthy model and on planted bugs; writes results/debug_checks.md and
    .json and the figures. ``quick``: 1,500 generated examples, shorter budgets."""
    command = command_line("debug_checks", run, locals())
    out = resolve_out("debug_checks", out)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if quick:
        n, max_steps = min(n, 64), min(max_steps, 60)
        n_entries, steps = min(n_entries, 4), min(steps, 2)
    data = make_mnist1d(num_samples=1500 if quick else 5000, seed=42)
    x, y = np.asarray(data.x_train, np.float32), np.asarray(data.y_train, np.int64)
    rows, details, timings = [], {}, {}
    parts = (("reproducibility", lambda: _check_reproducibility(x, y, steps, seed)),
             ("gradcheck", lambda: _check_gradients(x, y, n_entries, seed)),
             ("overfit", lambda: _check_overfit(x, y, n, max_steps, seed, out)),
             ("anomaly", lambda: _check_anomaly(x, y, seed)),
             ("graph", lambda: _check_graph(x, y, seed, out)))
    figures = []
    with Timer() as total:
        for name, fn in parts:
            with Timer() as t:
                result = fn()
            timings[name] = t.seconds
            rows += result[0]
            details[name] = result[1]
            if len(result) > 2:
                figures.append(result[2])
            if progress:
                print(f"debug_checks: {name} done in {t.seconds:.1f} s", flush=True)
    caught = sum(r["caught"] for r in rows)
    healthy_fine = all(r["healthy_ok"] for r in rows)
    summary = {
        "title": "Debugging checks on MNIST-1D: healthy models and planted bugs",
        "planted_bugs": len(rows), "bugs_caught": caught,
        "healthy_all_fine": healthy_fine,
        "checks": [{k: v for k, v in r.items()} for r in rows],
        "seconds_per_check": timings,
        "published": {"source": "lecture: Debugging (reproducible experiments, finite-"
                      "difference gradient checks, 0 training error on a small set)",
                      "expected": "every healthy model fine, every planted bug caught"},
        "command": command,
        "seed": seed, "seconds": total.seconds}
    table = [("planted bugs caught", f"{caught} of {len(rows)}", f"{len(rows)} of {len(rows)}"),
             ("healthy models judged fine", "yes" if healthy_fine else "NO", "yes")]
    lines = ["| check | healthy model | planted bug | verdict | caught |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {_md_cell(r['check'])} | {_md_cell(r['healthy'])} | "
                     f"{_md_cell(r['bug'])} | {_md_cell(r['verdict'])} | "
                     f"{'yes' if r['caught'] else 'NO'} |")
    notes = ("## Checks (lecture: \"Debugging\")\n\n" + "\n".join(lines) + "\n\n"
             f"Data: MNIST-1D generated with seed 42 ({len(x)} training examples). Overfit: the "
             f"first {n} training examples, full batch, Adam 1e-2, at most {max_steps} steps; "
             f"gradient check: 16 examples, {n_entries} entries per parameter, float64, central "
             f"differences eps=1e-6; determinism: {steps} steps of Adam on batches of 64. "
             f"Graph: {details['graph']['note']}.")
    write_results("debug_checks", out, summary, table, notes=notes, figures=tuple(figures))
    (out / "debug_checks_details.json").write_text(
        json.dumps(details, indent=2, default=_jsonable) + "\n")
    return summary


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return str(v)
