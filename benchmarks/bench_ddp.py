"""Data parallelism on this machine: ``mpirun -n 2`` with one thread per rank against one process
with two threads, on the MLP and CNN training steps of ``bench_train.py`` (as nn modules, so
that DistributedDataParallel wraps them), plus the all-reduce's cost and a projection toward a
cluster by the ring all-reduce cost model.

    python benchmarks/bench_ddp.py            # writes benchmarks/ddp_scaling.md and .json
    python benchmarks/bench_ddp.py --quick    # shorter timings (a smoke run)

Configurations, each in its own processes, alternating over rounds (the best round counts):
  1x2        one process, 2 BLAS threads, the global batch B
  2x1        mpirun -n 2, 1 thread per rank, B/2 per rank, DDP (the same optimisation as 1x2)
  2x1 local  the same, inside no_sync(): the step without communication
  1x1 / 2x1 weak   1 thread per rank with B per rank (weak scaling: 1 and 2 ranks)
Samples/s = global batch x steps/s, where a step of the slowest rank sets the pace.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

import harness  # noqa: E402

WORKLOADS = {"mlp": ("MLP 784-1024-1024-10 ReLU, SGD, global batch 128", 128),
             "cnn": ("CNN conv3x3 32 > pool > conv3x3 64 > pool > fc 128 > fc 10, SGD, "
                     "global batch 64", 64)}


# --- worker (one rank) ----------------------------------------------------------------------------

def build(name: str, batch: int):
    import flowgrad as fg
    from flowgrad import nn

    fg.manual_seed(0)
    rng = np.random.default_rng(0)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                              nn.Linear(1024, 10))
        x = rng.standard_normal((batch, 784)).astype(np.float32)
    else:
        model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
                              nn.Linear(128, 10))
        x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    return model, fg.from_numpy(x), fg.from_numpy(y)


def worker(name: str, batch: int, threads: int, sync: bool, seconds: float) -> dict | None:
    from threadpoolctl import threadpool_limits

    import flowgrad as fg
    import flowgrad.distributed as dist
    from flowgrad import nn

    threadpool_limits(threads)
    ranks = 1
    if dist.launched_by_mpi():
        dist.init_process_group("mpi")
        ranks = dist.get_world_size()
    model, x, y = build(name, batch)
    if ranks > 1:
        model = nn.parallel.DistributedDataParallel(model)
    opt = fg.optim.SGD(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    def timed(n: int) -> float:
        if ranks > 1:
            dist.barrier()
        t0 = time.perf_counter()
        if sync or ranks == 1:
            for _ in range(n):
                step()
        else:
            with model.no_sync():
                for _ in range(n):
                    step()
        dt = np.array([time.perf_counter() - t0])
        if ranks > 1:  # the slowest rank sets the pace
            from mpi4py import MPI

            dist.GroupMember.WORLD.comm.Allreduce(MPI.IN_PLACE, dt, op=MPI.MAX)
        return float(dt[0])

    timed(3)  # warm-up
    n = max(3, int(seconds / 3 / (timed(3) / 3)))
    best = min(timed(n) for _ in range(3))
    out = None
    if ranks == 1 or dist.get_rank() == 0:
        grads = sum(p.numel() for p in model.parameters()) * 4
        out = {"sec_per_step": best / n, "steps": n, "ranks": ranks, "threads": threads,
               "batch_per_rank": batch, "grad_bytes": grads,
               "threadpools": _pools()}
    if ranks > 1:
        dist.destroy_process_group()
    return out


def _pools() -> list:
    from threadpoolctl import threadpool_info

    return [f"{p['internal_api']} {p.get('version')} ({p['num_threads']} threads)"
            for p in threadpool_info()]


def allreduce_worker(seconds: float) -> dict | None:
    """Best time of MPI_Allreduce (sum, float32, in place) over message sizes, on every rank."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rows = []
    for k in range(8, 25, 2):  # 256 floats (1 KiB) .. 16 Mi floats (64 MiB)
        buf = np.ones(1 << k, np.float32)
        comm.Allreduce(MPI.IN_PLACE, buf)
        n = max(3, min(2000, int(seconds / 8 / max(1e-6, _time_allreduce(comm, buf, 2) / 2))))
        best = min(_time_allreduce(comm, buf, n) for _ in range(3)) / n
        rows.append({"bytes": buf.nbytes, "sec": best})
    return {"ranks": comm.Get_size(), "rows": rows} if comm.Get_rank() == 0 else None


def _time_allreduce(comm, buf, n: int) -> float:
    from mpi4py import MPI

    comm.Barrier()
    t0 = time.perf_counter()
    for _ in range(n):
        comm.Allreduce(MPI.IN_PLACE, buf)
    dt = np.array([time.perf_counter() - t0])
    comm.Allreduce(MPI.IN_PLACE, dt, op=MPI.MAX)
    return float(dt[0])


# --- parent ------------------------------------------------------------------------------

def _mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else "mpiexec"


def launch(args: list, ranks: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "PYTHONPATH": str(harness.ROOT)}
    cmd = [sys.executable, __file__, "--worker", *args]
    if ranks > 1:
        cmd = [_mpiexec(), "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


CONFIGS = {  # name: (ranks, threads, per-rank batch as a fraction of B, sync)
    "1x2": (1, 2, 1.0, True),
    "2x1": (2, 1, 0.5, True),
    "2x1 local": (2, 1, 0.5, False),
    "1x1 weak": (1, 1, 1.0, True),
    "2x1 weak": (2, 1, 1.0, True),
}


def ring_fit(rows: list, ranks: int) -> tuple[float, float]:
    """alpha (s) and beta (bytes/s) of T = 2(p-1) alpha + 2(p-1)/p S / beta, least squares over
    the measured sizes (p = ranks)."""
    p = ranks
    s = np.array([r["bytes"] for r in rows], float)
    t = np.array([r["sec"] for r in rows])
    a = np.stack([np.full_like(s, 2 * (p - 1)), 2 * (p - 1) / p * s], 1)
    w = 1.0 / t  # relative errors: the small messages (alpha) count as much as the large (beta)
    (alpha, inv_beta), *_ = np.linalg.lstsq(a * w[:, None], t * w, rcond=None)
    return max(float(alpha), 0.0), 1.0 / float(inv_beta)


def ring_time(p: int, size: float, alpha: float, beta: float) -> float:
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * size / beta


def report(results: dict, allreduce: dict, quick: bool) -> str:
    alpha, beta = ring_fit(allreduce["rows"], allreduce["ranks"])
    lines = ["# Data-parallel training over MPI on this machine", "",
             f"Written by `python benchmarks/bench_ddp.py{' --quick' if quick else ''}` on "
             f"{time.strftime('%Y-%m-%d')}.", "",
             f"CPU: {harness.cpu_model()}", "",
             f"MPI: {_mpi_version()}; mpi4py, NumPy {np.__version__}", "",
             "Samples/s count the global batch; the slowest rank sets each step's time. "
             "Best of the rounds.", ""]
    first = next(iter(results.values()))
    lines += [f"Thread pools of a worker, {k}: " + "; ".join(first[k]["threadpools"])
              for k in ("1x2", "2x1") if k in first] + [""]
    for name, (title, _) in WORKLOADS.items():
        r = results[name]
        sps = {k: r[k]["batch_per_rank"] * r[k]["ranks"] / r[k]["sec_per_step"] for k in r}
        ratio = sps["2x1"] / sps["1x2"]
        overhead = r["2x1"]["sec_per_step"] - r["2x1 local"]["sec_per_step"]
        weak = sps["2x1 weak"] / (2 * sps["1x1 weak"])
        grad_mb = r["2x1"]["grad_bytes"] / 2 ** 20
        lines += [f"## {name}: {title}", "",
                  "| configuration | ranks x threads | batch per rank | ms/step | samples/s |",
                  "|---|---|---|---|---|"]
        for k, v in r.items():
            lines.append(f"| {k} | {v['ranks']} x {v['threads']} | {v['batch_per_rank']} | "
                         f"{1e3 * v['sec_per_step']:.2f} | {sps[k]:.0f} |")
        goal = "" if name != "cnn" else (f" (goal >= 0.9: {'met' if ratio >= 0.9 else 'not met'})")
        lines += ["", f"- 2 ranks x 1 thread / 1 rank x 2 threads: **{ratio:.3f}**{goal}",
                  f"- all-reduce overhead per step (2x1 minus 2x1 inside no_sync): "
                  f"{1e3 * overhead:.2f} ms for {grad_mb:.2f} MiB of gradients "
                  f"({100 * overhead / r['2x1']['sec_per_step']:.1f}% of the step); the "
                  f"all-reduce alone of that size would take "
                  f"{1e3 * ring_time(2, r['2x1']['grad_bytes'], alpha, beta):.2f} ms",
                  f"- weak scaling (B per rank, 1 thread each): efficiency on 2 ranks "
                  f"{weak:.3f} (1 rank: 1 by definition)", ""]
    lines += ["## All-reduce (MPI_Allreduce, sum, float32, in place, 2 ranks)", "",
              "| bytes | us | algorithm bandwidth GB/s |", "|---|---|---|"]
    for row in allreduce["rows"]:
        lines.append(f"| {row['bytes']:,} | {1e6 * row['sec']:.1f} | "
                     f"{row['bytes'] / row['sec'] / 1e9:.2f} |")
    lines += ["", f"Ring cost model fitted to these points: T(p, S) = 2(p-1) alpha + "
              f"2(p-1)/p S / beta with alpha = {1e6 * alpha:.2f} us, beta = {beta / 1e9:.2f} GB/s "
              "(shared memory, one machine).", "",
              "## Projected step time toward a cluster (weak scaling, per-rank work of 2x1 weak)",
              "", "| workload | ranks | compute ms | ring all-reduce ms | step ms, no overlap | "
              "step ms, full overlap | efficiency, no overlap | efficiency, full overlap |",
              "|---|---|---|---|---|---|---|---|"]
    for name in WORKLOADS:
        r = results[name]
        compute = r["1x1 weak"]["sec_per_step"]
        size = r["1x1 weak"]["grad_bytes"]
        for p in (8, 64, 512):
            comm = ring_time(p, size, alpha, beta)
            lines.append(f"| {name} | {p} | {1e3 * compute:.2f} | {1e3 * comm:.2f} | "
                         f"{1e3 * (compute + comm):.2f} | {1e3 * max(compute, comm):.2f} | "
                         f"{compute / (compute + comm):.3f} | "
                         f"{compute / max(compute, comm):.3f} |")
    lines += ["", "The projection keeps this machine's shared-memory alpha and beta; "
              "docs/distributed.md says where the model stops holding.", ""]
    return "\n".join(lines)


def _mpi_version() -> str:
    env = {**os.environ, "PYTHONPATH": str(harness.ROOT)}
    out = subprocess.run([sys.executable, "-c", "from mpi4py import MPI; "
                          "print(MPI.Get_library_version().splitlines()[0])"],
                         capture_output=True, text=True, env=env)
    return " ".join(out.stdout.split())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs="*")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--out", default=str(_HERE / "ddp_scaling"))
    parser.add_argument("--render", action="store_true",
                        help="rewrite <out>.md from <out>.json without measuring again")
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(Path(args.out + ".json").read_text())
        Path(args.out + ".md").write_text(report(saved["results"], saved["allreduce"],
                                                 saved.get("quick", False)))
        return 0
    if args.worker is not None:
        kind, *rest = args.worker
        if kind == "allreduce":
            result = allreduce_worker(float(rest[0]))
        else:
            name, batch, threads, sync, seconds = rest
            result = worker(name, int(batch), int(threads), sync == "1", float(seconds))
        if result is not None:
            print(json.dumps(result), flush=True)
        return 0
    seconds = 1.5 if args.quick else args.seconds
    rounds = 1 if args.quick else args.rounds
    results: dict = {name: {} for name in WORKLOADS}
    for rnd in range(rounds):
        order = list(CONFIGS) if rnd % 2 == 0 else list(reversed(CONFIGS))
        for name, (_, batch) in WORKLOADS.items():
            for cfg in order:
                ranks, threads, frac, sync = CONFIGS[cfg]
                r = launch(["train", name, str(int(batch * frac)), str(threads),
                            "1" if sync else "0", str(seconds)], ranks, threads)
                old = results[name].get(cfg)
                if old is None or r["sec_per_step"] < old["sec_per_step"]:
                    results[name][cfg] = r
                print(f"round {rnd + 1} {name} {cfg}: {1e3 * r['sec_per_step']:.2f} ms/step",
                      flush=True)
    allreduce = launch(["allreduce", str(seconds)], 2, 1)
    text = report({k: dict(sorted(v.items(), key=lambda kv: list(CONFIGS).index(kv[0])))
                   for k, v in results.items()}, allreduce, args.quick)
    Path(args.out + ".md").write_text(text)
    Path(args.out + ".json").write_text(json.dumps({"results": results, "allreduce": allreduce,
                                                    "quick": args.quick}, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
