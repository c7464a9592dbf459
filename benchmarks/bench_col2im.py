"""Where the time of flowgrad's col2im goes: the per-kernel-offset GEMMs or the scatter-adds.

``flowgrad.ops.conv._col2im_last`` computes a transposed convolution's forward pass (and a
convolution's input gradient) as one GEMM per kernel offset, each added into the strided slice
of the output that offset meets. For the calls of the DCGAN step of ``bench_dcgan.py`` (batch
64, 5x5 kernels, stride 2; ``_col2im_last`` or ``_col2im_first`` as the layout rule picks) this
times, with 1 and with 2 BLAS threads:

- ``col2im``: the whole call;
- ``gemms``: its GEMMs alone (same operands, results discarded): one per kernel offset, or one
  for all offsets where they have few output columns (``ONE_GEMM_COLUMNS``);
- ``scatter``: its kh*kw slice-adds alone, from products computed beforehand.

    python benchmarks/bench_col2im.py [--json FILE]

flowgrad only (a breakdown, not a comparison): PyTorch is not imported.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import harness  # noqa: E402

from flowgrad.ops.conv import (  # noqa: E402
    ONE_GEMM_COLUMNS,
    _col2im_first,
    _col2im_last,
    _win,
)

BATCH, KERNEL, STRIDE = 64, 5, 2
# (label, col2im layout, input positions H = W, A (channels read), B (channels written), calls
# per DCGAN step), as counted in a step of bench_dcgan.py
CALLS = (("128 -> 64 channels, 7x7 -> 14x14: generator transposed conv 1 (forward), "
          "discriminator conv 2 (input gradient, 3 times)", "last", 7, 128, 64, 4),
         ("64 -> 1 channel, 14x14 -> 28x28: generator transposed conv 2 (forward), "
          "discriminator conv 1 (input gradient)", "first", 14, 64, 1, 2))


def _steps(layout: str, side: int, a: int, b: int) -> dict:
    """The col2im call of this geometry, its GEMMs alone and its slice-adds alone."""
    rng = np.random.default_rng(0)
    k, s, n = KERNEL, STRIDE, BATCH
    canvas_side = (side - 1) * s + k + 1
    one_gemm = k * k * b <= ONE_GEMM_COLUMNS
    if layout == "last":  # g (1, N*H*W, A), w_k (k*k, 1, A, B), canvas (1, N, Hp, Wp, B)
        g = rng.standard_normal((1, n * side * side, a)).astype(np.float32)
        w_k = rng.standard_normal((k * k, 1, a, b)).astype(np.float32)
        canvas = np.zeros((1, n, canvas_side, canvas_side, b), np.float32)
        w_all = np.ascontiguousarray(w_k.transpose(1, 2, 0, 3).reshape(a, k * k * b))
        products = [(g[0] @ w_k[i, 0]).reshape(1, n, side, side, b) for i in range(k * k)]
        target, lead = canvas, 2  # (G, N, rows, cols, B)

        def col2im():
            canvas[...] = 0
            _col2im_last(g, w_k, canvas, k, k, s, s, 1, 1, side, side)

        def gemms():
            if one_gemm:
                return g[0] @ w_all
            for i in range(k * k):
                g[0] @ w_k[i, 0]
    else:  # w_k (k*k, 1, B, A), g (N, 1, A, H*W), canvas (N, B, Hp, Wp)
        g = rng.standard_normal((n, 1, a, side * side)).astype(np.float32)
        w_k = rng.standard_normal((k * k, 1, b, a)).astype(np.float32)
        canvas = np.zeros((n, b, canvas_side, canvas_side), np.float32)
        w_all = np.ascontiguousarray(w_k.transpose(1, 0, 2, 3).reshape(1, k * k * b, a))
        products = [(w_k[i] @ g).reshape(n, 1, b, side, side) for i in range(k * k)]
        target, lead = canvas.reshape(n, 1, b, canvas_side, canvas_side), 3

        def col2im():
            canvas[...] = 0
            _col2im_first(w_k, g, canvas, k, k, s, s, 1, 1, side, side)

        def gemms():
            if one_gemm:
                return w_all @ g
            for i in range(k * k):
                w_k[i] @ g

    def scatter():
        canvas[...] = 0
        for i in range(k):
            for j in range(k):
                where = (_win(i, 1, s, side), _win(j, 1, s, side))
                target[(slice(None),) * lead + where] += products[i * k + j]

    return {"col2im": col2im, "gemms": gemms, "scatter": scatter}


def main(argv: list[str]) -> int:
    from threadpoolctl import threadpool_info, threadpool_limits

    out = argv[argv.index("--json") + 1] if "--json" in argv else None
    rows = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            pools = [f"{p['internal_api']} {p['num_threads']} threads" for p in threadpool_info()]
            for label, layout, side, a, b, calls in CALLS:
                steps = _steps(layout, side, a, b)
                ms = {name: 1e3 * harness.measure(step, 1.0, 0.2, 5)["sec"]
                      for name, step in steps.items()}
                rows.append({"threads": threads, "call": label, "layout": layout,
                             "calls_per_step": calls, **ms, "pools": pools})
    print(f"CPU: {harness.cpu_model()}")
    print(f"flowgrad: {harness._library_info('flowgrad')}")
    print("Times per call.")
    print("| threads | geometry | layout | calls per step | col2im | its GEMMs alone | "
          "its scatter-adds alone |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['threads']} | {r['call']} | channels-{r['layout']} | "
              f"{r['calls_per_step']} | {r['col2im']:.2f} ms | {r['gemms']:.2f} ms | "
              f"{r['scatter']:.2f} ms |")
    for threads in (1, 2):
        total = {k: sum(r["calls_per_step"] * r[k] for r in rows if r["threads"] == threads)
                 for k in ("col2im", "gemms", "scatter")}
        calls = sum(c[-1] for c in CALLS)
        print(f"{threads} thread(s), the {calls} calls of a step: col2im "
              f"{total['col2im']:.1f} ms, GEMMs {total['gemms']:.1f} ms, scatter-adds "
              f"{total['scatter']:.1f} ms")
    if out:
        with open(out, "w") as f:
            json.dump({"cpu": harness.cpu_model(), "library": harness._library_info("flowgrad"),
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
