"""The benchmarks' common harness: each library in its own process, alternating, with the machine
described beside every table.

A benchmark script defines workloads as ``build(lib) -> step`` (``lib`` is ``"flowgrad"`` or
``"pytorch"``; ``step()`` runs one training step and returns its loss) and calls :func:`main`.
For every workload and round the parent starts one worker process per library, alternating
which goes first; a worker imports only its own library (PyTorch's OpenMP pool and NumPy's
OpenBLAS pool never share a process: on 2 cores, one's spinning threads slow the other), limits
it to ``THREADS`` threads, checks the first two losses, measures the step's peak memory, times the
step and prints one JSON line. The parent compares the losses, takes each library's best rate
over the rounds and prints the ratios.

Memory is the peak resident set size (``VmHWM`` after resetting it through
``/proc/self/clear_refs``) above the resident size once the model, data and optimizer are built:
what the training steps themselves add (activations, gradients, workspaces, optimizer state).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import time

THREADS = 2
NOISY_CORES = 0.25  # other processes' load (cores) above which a timing is flagged
SETTLE_S = 0.3      # idle pause before timing (spinning BLAS/OpenMP threads go to sleep)
LIBS = ("flowgrad", "pytorch")
# the spin of OpenBLAS's idle threads (2**16 cycles) that flowgrad sets when it is imported
# before NumPy (flowgrad/__init__.py); the workers import NumPy first, so it is set here
OPENBLAS_THREAD_TIMEOUT = "16"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --- threads and machine -------------------------------------------------------------------------

def limit_threads(lib: str) -> dict:
    """Limit the worker's library to THREADS threads; return the thread pools it now has."""
    from threadpoolctl import threadpool_info, threadpool_limits

    if lib == "pytorch":
        import torch

        torch.set_num_threads(THREADS)
    else:
        import flowgrad

        flowgrad.set_num_threads(THREADS)
    threadpool_limits(limits=THREADS)
    pools = [f"{p['internal_api']} {p.get('version')} ({p['user_api']}, {p['num_threads']} "
             f"threads)" for p in threadpool_info()]
    if lib == "pytorch":
        import torch

        pools.insert(0, f"torch intra-op threads {torch.get_num_threads()}")
    else:
        import flowgrad

        pools.insert(0, f"flowgrad intra-op threads {flowgrad.get_num_threads()}, "
                        f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}")
    return {"threads": pools}


def cpu_model() -> str:
    """CPU model with family/model numbers and SIMD flags (VMs often hide the name)."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return platform.processor() or "unknown"
    fields: dict = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
            if f in fields.get("flags", "").split()]
    logical = sum(1 for line in lines if line.startswith("processor"))
    return (f"{fields.get('model name', 'unknown')} (family {fields.get('cpu family', '?')} "
            f"model {fields.get('model', '?')}; {' '.join(simd) or 'no AVX2'}); "
            f"{logical} logical CPUs")


def _library_info(lib: str) -> str:
    """One line naming the library's version and BLAS (run in the worker)."""
    if lib == "pytorch":
        import torch

        cfg = torch.__config__.show()
        blas = [s.strip() for s in cfg.replace("\n", ",").split(",") if "BLAS_INFO" in s]
        cap = [s.strip() for s in cfg.splitlines() if "CPU capability" in s]
        return f"torch {torch.__version__}: {', '.join(blas + cap)}"
    import numpy as np

    import flowgrad as fg

    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{deps.get('name')} {deps.get('version')}"
    except Exception:  # older NumPy: show_config only prints
        blas = "?"
    return f"flowgrad {fg.__version__} on numpy {np.__version__} (BLAS {blas})"


def describe_machine(infos: dict) -> list[str]:
    """The lines printed above every table: CPU, Python, each library's BLAS and threads."""
    lines = [f"CPU: {cpu_model()}; {platform.machine()}, Python {platform.python_version()}"]
    for lib, info in infos.items():
        lines.append(f"{lib}: {info['library']}")
        lines.append(f"  threads: {'; '.join(info['threads'])}")
    return lines


# --- timing and memory (in the worker) -----------------------------------------------------------

def _run(step, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - t0


def _cpu_busy_s() -> float | None:
    """CPU seconds spent busy on the whole machine so far (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _HZ


def _timed_repeat(step, n: int) -> tuple[float, float]:
    """Seconds per step over ``n`` steps, and how many cores other processes kept busy."""
    gc.collect()
    busy0, own0 = _cpu_busy_s(), time.process_time()
    dt = _run(step, n)
    busy1, own1 = _cpu_busy_s(), time.process_time()
    other = 0.0
    if busy0 is not None and busy1 is not None:
        other = max(0.0, (busy1 - busy0) - (own1 - own0)) / dt
    return dt / n, other


def measure(step, seconds: float, warmup: float, repeats: int) -> dict:
    """Best seconds per step over ``repeats`` repeats of about ``seconds / repeats`` each, after
    ``warmup`` seconds of untimed steps; up to ``repeats`` more while other processes load the
    machine."""
    time.sleep(SETTLE_S)
    n = getattr(step, "steps_per_repeat", None)  # long steps (a whole epoch): no calibration
    if n is None:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < warmup:
            _run(step, 2)
        n = 1
        while True:
            dt = _run(step, n)
            if dt >= 0.05 or n >= 1 << 20:
                break
            n *= 4
        n = max(2, int(seconds / repeats / (min(dt, _run(step, n)) / n)))
    best, best_other, done = float("inf"), 0.0, 0
    while done < repeats or (done < 2 * repeats and best_other > NOISY_CORES):
        sec, other = _timed_repeat(step, n)
        done += 1
        if sec < best:
            best, best_other = sec, other
    return {"sec": best, "steps": n, "repeats": done, "other_cores": best_other}


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> int | None:
    """Reset the peak RSS to the current one; return the current RSS in KiB (None if the
    kernel does not allow it)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _status_kib("VmRSS")


def peak_rss_kib() -> int | None:
    return _status_kib("VmHWM")


def _loss(value) -> float:
    return float(value.item() if hasattr(value, "item") else value)


def worker(workloads: dict, lib: str, name: str, seconds: float, warmup: float,
           repeats: int, memory_steps: int = 3) -> dict:
    """Build one workload in one library, check its losses, measure memory and time it."""
    info = limit_threads(lib)
    info["library"] = _library_info(lib)
    gc.collect()
    base = reset_peak_rss()
    step = workloads[name](lib)
    built = _status_kib("VmRSS")
    base = reset_peak_rss() if base is not None else None
    check = getattr(step, "check", step)  # a long step may offer a one-batch check step
    losses = [_loss(check()) for _ in range(2)]  # initial weights; after one update
    for _ in range(max(0, memory_steps - 2)):
        check()
    peak = peak_rss_kib()
    result = {"lib": lib, "workload": name, "losses": losses, **info,
              "rss_built_kib": built,
              "step_peak_kib": None if base is None or peak is None else peak - base}
    result.update(measure(step, seconds, warmup, repeats))
    result["loss_after"] = _loss(step())
    for label, fn in getattr(step, "extras", {}).items():  # parts timed alone, same way
        result[f"{label}_sec"] = measure(fn, seconds / 2, warmup / 2, repeats)["sec"]
    ceiling = getattr(step, "gemms_only", None)  # the same step's GEMMs alone, if it says
    if ceiling is not None:
        result["gemm_sec"] = measure(ceiling, seconds / 2, warmup / 2, repeats)["sec"]
    return result


def worker_main(workloads: dict, argv: list[str]) -> int:
    """``--worker LIB --workload NAME --seconds S --warmup W --repeats R``: print the result."""
    args = dict(zip(argv[0::2], argv[1::2]))
    result = worker(workloads, args["--worker"], args["--workload"], float(args["--seconds"]),
                    float(args["--warmup"]), int(args["--repeats"]))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# --- the parent: alternate the libraries ----------------------------------------------------------

def run_worker(script: str, lib: str, name: str, seconds: float, warmup: float,
               repeats: int, extra: list[str] = ()) -> dict | None:
    cmd = [sys.executable, script, "--worker", lib, "--workload", name, "--seconds",
           str(seconds), "--warmup", str(warmup), "--repeats", str(repeats), *extra]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_THREAD_TIMEOUT)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    print(f"  {lib} worker failed (exit {proc.returncode}): {' | '.join(tail)}")
    return None


def compare(script: str, name: str, rounds: int, seconds: float, warmup: float,
            repeats: int, libs=LIBS) -> dict:
    """Run ``rounds`` rounds of one worker per library, alternating the order; each library's
    best rate counts, and every round's ratio is kept."""
    runs: dict = {lib: [] for lib in libs}
    for r in range(rounds):
        order = libs if r % 2 == 0 else tuple(reversed(libs))
        for lib in order:
            res = run_worker(script, lib, name, seconds, warmup, repeats)
            if res is not None:
                runs[lib].append(res)
    out = {"name": name, "runs": runs}
    best = {lib: min(rs, key=lambda x: x["sec"]) for lib, rs in runs.items() if rs}
    out["best"] = best
    if len(best) == 2:
        fg_r, pt_r = runs["flowgrad"], runs["pytorch"]
        out["ratio"] = best["pytorch"]["sec"] / best["flowgrad"]["sec"]
        out["round_ratios"] = [p["sec"] / f["sec"] for f, p in zip(fg_r, pt_r)]
        la, lb = best["flowgrad"]["losses"], best["pytorch"]["losses"]
        out["loss_diff"] = max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(la, lb))
        mf, mp = best["flowgrad"]["step_peak_kib"], best["pytorch"]["step_peak_kib"]
        out["memory_ratio"] = mf / mp if mf and mp else None
        out["noisy"] = any(b["other_cores"] > NOISY_CORES for b in best.values())
    return out


def profile(step, label: str, seconds: float = 2.0, top: int = 25) -> None:
    """cProfile ``step`` (flowgrad's, in this process) for about ``seconds`` and print the
    ``top`` functions by own time per step. OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when NumPy
    loads it, which the script has done already: without it in the environment the script is
    run again with it, so that the profile sees the spin the workers have."""
    import cProfile
    import pstats

    if "OPENBLAS_THREAD_TIMEOUT" not in os.environ:
        env = {**os.environ, "OPENBLAS_THREAD_TIMEOUT": OPENBLAS_THREAD_TIMEOUT}
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    limit_threads("flowgrad")
    sec = measure(step, 1.0, 0.3, 3)["sec"]
    steps = max(10, int(seconds / sec))
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    print(f"[{label}] cProfile of {steps} flowgrad steps: {fmt_time(sec)}/step unprofiled, "
          f"{fmt_time(total / steps)}/step profiled")
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    print(f"  {'calls/step':>10s} {'tottime/step':>13s} {'%':>5s}  function")
    for (filename, line, func), (_cc, nc, tt, _ct, _callers) in rows:
        where = os.path.relpath(filename, ROOT) if filename.startswith(ROOT) \
            else os.path.basename(filename)
        print(f"  {nc / steps:10.1f} {tt / steps * 1e6:11.1f}µs {100 * tt / total:5.1f}  "
              f"{where}:{line}({func})")


def fmt_time(sec: float) -> str:
    return f"{sec * 1e3:.2f} ms" if sec >= 1e-3 else f"{sec * 1e6:.1f} µs"


def report(result: dict, batch: int, target: float | None) -> None:
    """Print one workload's lines: each library's best, the ratio, memory, losses."""
    best = result["best"]
    for lib, b in best.items():
        noise = (f"; NOISY: other processes used {b['other_cores']:.2f} cores"
                 if b["other_cores"] > NOISY_CORES else "")
        mem = b["step_peak_kib"]
        mem_s = f"; step peak RSS +{mem / 1024:.1f} MiB" if mem is not None else ""
        print(f"  {lib:8s}: {1 / b['sec']:10.1f} steps/s {batch / b['sec']:10.0f} samples/s "
              f"({fmt_time(b['sec'])}/step, best of {len(result['runs'][lib])} processes x "
              f"{b['repeats']} x {b['steps']} steps){mem_s}{noise}")
    if "ratio" in result:
        rr = ", ".join(f"{r:.3f}" for r in result["round_ratios"])
        verdict = "" if target is None else (
            f"; target >= {target}x: {'met' if result['ratio'] >= target else 'BELOW'}")
        print(f"  ratio flowgrad/pytorch {result['ratio']:.3f}x (rounds: {rr}){verdict}")
        if result["memory_ratio"] is not None:
            print(f"  step peak memory flowgrad/pytorch {result['memory_ratio']:.2f}x")
        ok = "OK" if result["loss_diff"] <= 1e-4 else "MISMATCH"
        print(f"  losses of steps 1-2 agree to {result['loss_diff']:.1e} (relative) {ok}")
    for lib, b in best.items():
        for key, value in b.items():
            if key.endswith("_sec") and key != "gemm_sec":
                label = key[:-4].replace("_", " ")
                print(f"  {lib:8s}: {label}: {fmt_time(value)} = {100 * value / b['sec']:.2f}% "
                      "of its step")
    gemm = best.get("flowgrad", {}).get("gemm_sec")
    if gemm:
        share = gemm / best["flowgrad"]["sec"]
        result["gemm_bound_share"] = share
        print(f"  GEMM-bound ceiling (the step's GEMMs alone, NumPy): {1 / gemm:.1f} steps/s; "
              f"flowgrad reaches {100 * share:.0f}% of it")


def main(script: str, workloads: dict, specs: dict, argv=None, doc: str = "") -> int:
    """Command line of a benchmark script. ``specs[name] = (description, batch, target)``."""
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        return worker_main(workloads, argv)
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short timings, 2 rounds")
    parser.add_argument("--only", metavar="NAMES",
                        help=f"comma-separated workloads ({','.join(workloads)})")
    parser.add_argument("--rounds", type=int, default=None,
                        help="processes per library, alternating (default 3, --quick 2)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="timed seconds per process (default 2, --quick 0.6)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per process")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    names = list(workloads) if not args.only else [s.strip() for s in args.only.split(",")]
    unknown = [s for s in names if s not in workloads]
    if unknown:
        parser.error(f"unknown workload {unknown[0]!r}; choose from {', '.join(workloads)}")
    rounds = args.rounds or (2 if args.quick else 3)
    seconds = args.seconds or (0.6 if args.quick else 2.0)
    warmup = 0.2 if args.quick else 0.5
    results, header_done = [], False
    for name in names:
        desc, batch, target = specs[name]
        res = compare(script, name, rounds, seconds, warmup, args.repeats)
        if not header_done and all(res["best"].get(lib) for lib in LIBS):
            print("\n".join(describe_machine(res["best"])))
            header_done = True
        print(f"\n[{name}] {desc}")
        report(res, batch, target)
        res.update(batch=batch, target=target, desc=desc)
        results.append(res)
    print(f"\nSummary (flowgrad/PyTorch, best rate of each over {rounds} processes, "
          f"{THREADS} threads each):")
    for r in results:
        if "ratio" not in r:
            continue
        tgt = "" if r["target"] is None else f"  target >= {r['target']}x"
        mem = "" if r["memory_ratio"] is None else f"  memory {r['memory_ratio']:.2f}x"
        noisy = "  (noisy: rerun)" if r["noisy"] else ""
        print(f"  {r['name']:12s} {r['ratio']:6.3f}x{tgt}{mem}{noisy}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": describe_machine(results[0]["best"]) if results else [],
                       "results": results}, f, indent=1)
    return 0
