"""Cost as the work grows: MLP training steps per second against batch size and against width,
flowgrad and PyTorch each in its own process (see ``harness.py``), with the GEMM-bound ceiling
(the same step's GEMMs alone in NumPy) drawn beside them.

    python benchmarks/bench_scaling.py            # writes benchmarks/scaling_mlp.png and .json
    python benchmarks/bench_scaling.py --quick    # fewer points, shorter timings

Batch sweep: MLP 784-1024-1024-10 at batch 1 to 512. Width sweep: MLP 784-w-w-10 at batch 128,
w from 64 to 4096. Where a curve runs flat against batch size the step is overhead-bound (a
fixed cost per op); where it follows the ceiling it is compute-bound (GEMMs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import bench_train  # noqa: E402
import harness  # noqa: E402

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
WIDTHS = (64, 128, 256, 512, 1024, 2048, 4096)


class Workloads(dict):
    """``batch-B`` and ``width-W`` MLP workloads, built on demand in the worker."""

    def __missing__(self, name: str):
        kind, _, value = name.partition("-")
        n = int(value)
        if kind == "batch":
            return lambda lib: bench_train.mlp(lib, batch=n)
        if kind == "width":
            return lambda lib: bench_train.mlp(lib, sizes=(784, n, n, 10))
        raise KeyError(name)


def sweep(points, rounds: int, seconds: float, repeats: int) -> list[dict]:
    script = os.path.abspath(__file__)
    rows = []
    for name in points:
        res = harness.compare(script, name, rounds, seconds, seconds / 4, repeats)
        best = res["best"]
        row = {"name": name, "ratio": res.get("ratio")}
        for lib, b in best.items():
            row[lib] = 1.0 / b["sec"]
            if "gemm_sec" in b:
                row["ceiling"] = 1.0 / b["gemm_sec"]
        rows.append(row)
        ratio = f"{row['ratio']:.3f}x" if row["ratio"] else "-"
        print(f"  {name:11s} flowgrad {row.get('flowgrad', 0):9.1f}  pytorch "
              f"{row.get('pytorch', 0):9.1f}  GEMM ceiling {row.get('ceiling', 0):9.1f} steps/s  "
              f"ratio {ratio}", flush=True)
    return rows, best


def plot(batch_rows, width_rows, path: str) -> None:
    from flowgrad.plotting import new_figure, save_figure

    fig, axes = new_figure(1, 2, figsize=(11, 4.2))
    panels = ((axes[0], batch_rows, "batch size (MLP 784-1024-1024-10)"),
              (axes[1], width_rows, "width w (MLP 784-w-w-10, batch 128)"))
    for ax, rows, label in panels:
        xs = [int(r["name"].split("-")[1]) for r in rows]
        for lib, style in (("flowgrad", "o-"), ("pytorch", "s-"), ("ceiling", "k--")):
            ys = [r.get(lib) for r in rows]
            if any(y is not None for y in ys):
                name = "GEMM-bound ceiling (NumPy GEMMs alone)" if lib == "ceiling" else lib
                ax.plot(xs, ys, style, label=name, markersize=4)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("training steps / s")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("against batch size")
    axes[1].set_title("against width")
    save_figure(fig, path, tight=True)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        return harness.worker_main(Workloads(), argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(_HERE, "scaling_mlp"),
                        help="path prefix of the .png and .json written")
    args = parser.parse_args(argv)
    seconds = 0.4 if args.quick else 1.0
    batches = BATCHES[::3] if args.quick else BATCHES
    widths = WIDTHS[::2] if args.quick else WIDTHS
    print("batch sweep:")
    batch_rows, best = sweep([f"batch-{b}" for b in batches], args.rounds, seconds, 3)
    print("width sweep:")
    width_rows, _ = sweep([f"width-{w}" for w in widths], args.rounds, seconds, 3)
    machine = harness.describe_machine(best)
    print("\n".join(machine))
    plot(batch_rows, width_rows, args.out + ".png")
    with open(args.out + ".json", "w") as f:
        json.dump({"machine": machine, "batch": batch_rows, "width": width_rows}, f, indent=1)
    print(f"wrote {args.out}.png and {args.out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
