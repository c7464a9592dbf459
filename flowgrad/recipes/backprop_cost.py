"""Why backprop is powerful (lecture slide of that name): with n parameters the loss costs O(n),
the gradient by backprop O(n) too, and the gradient by finite differences, one more pair of loss
evaluations per parameter, O(n²). Measured on MLPs 64-w-w-10 of growing width w (n from a few
thousand to about a million parameters), float64, one BLAS thread: the time of one forward pass,
of one full gradient by backprop and of one full gradient by central finite differences, and the
log-log slopes of each against n."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..debug.cost import gradient_cost
from ..models import MLP
from .common import Timer, command_line, resolve_out, write_results

DEFAULTS = {"sizes": (32, 64, 128, 256, 512, 1024), "batch_size": 1024, "input_size": 64,
            "classes": 10, "fd_time_budget": 1.0, "seed": 0}
PUBLISHED = {"backprop_slope": 1.0, "finite_differences_slope": 2.0}


def run(sizes=DEFAULTS["sizes"], batch_size=1024, input_size=64, classes=10,
        fd_time_budget=1.0, seed=0, out=None, quick=False, progress=True,
        write: bool | None = None) -> dict:
    """Time forward, backprop and finite-difference gradients of MLPs of widths ``sizes``."""
    command = command_line("backprop_cost", run, locals())
    out = resolve_out("backprop_cost", out)
    if quick:
        sizes, batch_size, fd_time_budget = (4, 8, 16, 32), 32, 0.2
    write = True if write is None else write  # quick runs write to their own directory too
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, input_size)).astype(np.float32)
    y = rng.integers(0, classes, batch_size).astype(np.int64)

    def make(width):
        return MLP(sizes=(input_size, width, width, classes))

    with Timer() as t:
        cost = gradient_cost(make, sizes, (x, y), eps=1e-6, dtype=np.float64,
                             fd_max_params=None if quick else 2000,
                             fd_time_budget=fd_time_budget, repeats=3 if quick else 7,
                             min_time=0.01 if quick else 0.1, seed=seed)
    if progress:
        print(cost.to_markdown())
    s = cost.slopes
    summary = {"title": "Why backprop is powerful: cost of the gradient, backprop vs finite "
                        "differences",
               "forward_slope": s["forward"], "backprop_slope": s["backprop"],
               "finite_differences_slope": s["finite_differences"],
               "rows": cost.rows, "sizes": list(sizes), "batch_size": batch_size,
               "published": {**PUBLISHED, "source": "lecture slide 'Why backprop is powerful': "
                             "O(n) by backprop, O(n^2) by finite differences"},
               "command": command,
               "seed": seed, "seconds": t.seconds}
    if write:
        fig = cost.plot(Path(out) / "backprop_cost.png")
        rows = [("log-log slope, forward pass (the loss)", f"{s['forward']:.2f}", "1 (O(n))"),
                ("log-log slope, gradient by backprop", f"{s['backprop']:.2f}", "1 (O(n))"),
                ("log-log slope, gradient by finite differences",
                 f"{s['finite_differences']:.2f}", "2 (O(n²))")]
        for r in cost.rows:
            fd = f"{r['finite_differences']:.3g} s" + (
                f" (from {r['fd_sample']} of {r['n_params']:,} parameters)"
                if r["extrapolated"] else "")
            rows.append((f"w = {r['size']}, n = {r['n_params']:,}: forward / backprop / FD",
                         f"{r['forward'] * 1e3:.3g} ms / {r['backprop'] * 1e3:.3g} ms / {fd}; "
                         f"FD = {r['finite_differences'] / r['backprop']:,.0f}× backprop; "
                         f"FD vs backprop rel. diff {r['fd_rel_error']:.1e}", "—"))
        write_results("backprop_cost", out, summary, rows, figures=(fig,), notes=(
            f"MLP {input_size}-w-w-{classes} (ReLU), cross-entropy on a fixed batch of "
            f"{batch_size} random inputs, float64, one BLAS thread; each time is the best of "
            f"{3 if quick else 7} rounds of at least {0.01 if quick else 0.1} s (other jobs "
            "may have shared the machine). The finite-difference "
            "gradient is (L(θ+εe_i) − L(θ−εe_i))/2ε for every "
            "parameter i, ε = 1e-6: two forward passes per parameter. Where that would take "
            "hours it is timed on a random sample of parameters (about 1 s of pairs) and "
            "scaled by n/sample (each pair is the same work); each row also gives the relative "
            "difference between those finite-difference entries and backprop's. "
            + (f"The forward slope ({s['forward']:.2f}) is below 1 because large matrix "
               "products run at a higher FLOP rate than small ones and a fixed per-operation "
               "overhead weighs on the small nets; " if s["forward"] < 1 else "")
            + f"the finite-difference slope is {s['finite_differences'] - s['forward']:.2f} "
            "more than the forward slope (the slide: n times the cost of the loss, one more)."))
    return summary
