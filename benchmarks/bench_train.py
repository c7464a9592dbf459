"""Training-step throughput: flowgrad against PyTorch, in one process, on the same data.

Each workload runs the same training step (forward, loss, backward, SGD update) in both
frameworks from the same initial weights (NumPy arrays copied into both), on 2 threads each,
and reports steps/s, samples/s and the flowgrad/PyTorch throughput ratio.

    python benchmarks/bench_train.py                  # all workloads
    python benchmarks/bench_train.py --quick          # fewer steps (a smoke run)
    python benchmarks/bench_train.py --only tiny      # one workload (or a list: mlp,tiny)
    python benchmarks/bench_train.py --profile tiny   # cProfile flowgrad's steps, top 25

Workloads: ``mlp`` (784-1024-1024-10 ReLU, batch 128, cross-entropy), ``cnn`` (2 conv3x3 +
max-pool, 2 linear, batch 64, cross-entropy), ``tiny`` (2-16-16-1 tanh, batch 8, MSE).
flowgrad's models are written with explicit parameter tensors and ``flowgrad.nn.functional``.
Only this script imports torch, never the library.
"""

from __future__ import annotations

import importlib.util
import os
import sys

THREADS = 2
_HAVE_THREADPOOLCTL = importlib.util.find_spec("threadpoolctl") is not None
if not _HAVE_THREADPOOLCTL:  # must be set before NumPy loads OpenBLAS
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(THREADS)

import argparse  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from a checkout without installing flowgrad
    sys.path.insert(0, _ROOT)

import flowgrad as fg  # noqa: E402
import flowgrad.nn.functional as F  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # flowgrad-only run (profiling still works)
    torch = None
    TF = None

LR = 0.01
REPEATS = 3
NOISY_CORES = 0.25  # other processes' load (cores) above which a timing is flagged
SETTLE_S = 0.5  # idle pause before timing a framework (see measure)


def _fg_param(a: np.ndarray):
    return fg.tensor(a.copy(), requires_grad=True)


def _fg_sgd(params, lr=LR):
    """Plain SGD on the arrays, in place, then drop the gradients (as zero_grad(set_to_none))."""
    with fg.no_grad():
        for p in params:
            g = p.grad._data
            g *= -lr  # the gradient is dropped next: scale it in place, no temporary
            p._data += g
            p.grad = None


def _torch_param(a: np.ndarray):
    return torch.tensor(a.copy(), requires_grad=True)


# --- workloads -----------------------------------------------------------------------------------

def _uniform(rng, shape, fan_in):
    bound = 1.0 / np.sqrt(fan_in)  # PyTorch's default init range for Linear and Conv2d
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def _linear_params(rng, sizes):
    out = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        out.append(_uniform(rng, (fan_out, fan_in), fan_in))
        out.append(_uniform(rng, (fan_out,), fan_in))
    return out


@dataclass
class Workload:
    name: str
    desc: str
    batch: int
    target: float  # flowgrad/PyTorch throughput ratio to reach
    make: Callable  # rng -> (inputs, targets, [param arrays])
    build_fg: Callable  # (x, t, arrays) -> step() returning the loss tensor
    build_torch: Callable  # (x, t, arrays) -> step() returning the loss tensor


def _make_mlp(rng):
    x = rng.standard_normal((128, 784)).astype(np.float32)
    t = rng.integers(0, 10, size=128).astype(np.int64)
    return x, t, _linear_params(rng, [784, 1024, 1024, 10])


def _fg_mlp(x, t, arrays):
    linear, ce = F.linear, F.cross_entropy
    xt, tt = fg.tensor(x), fg.tensor(t)
    params = [_fg_param(a) for a in arrays]
    w1, b1, w2, b2, w3, b3 = params

    def step():
        h = linear(xt, w1, b1).relu()
        h = linear(h, w2, b2).relu()
        loss = ce(linear(h, w3, b3), tt)
        loss.backward()
        _fg_sgd(params)
        return loss

    return step


def _torch_mlp(x, t, arrays):
    xt, tt = torch.from_numpy(x.copy()), torch.from_numpy(t.copy())
    params = [_torch_param(a) for a in arrays]
    w1, b1, w2, b2, w3, b3 = params
    opt = torch.optim.SGD(params, lr=LR)

    def step():
        opt.zero_grad(set_to_none=True)
        h = TF.linear(xt, w1, b1).relu()
        h = TF.linear(h, w2, b2).relu()
        loss = TF.cross_entropy(TF.linear(h, w3, b3), tt)
        loss.backward()
        opt.step()
        return loss

    return step


def _make_cnn(rng):
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, size=64).astype(np.int64)
    params = [_uniform(rng, (32, 1, 3, 3), 9), _uniform(rng, (32,), 9),
              _uniform(rng, (64, 32, 3, 3), 32 * 9), _uniform(rng, (64,), 32 * 9)]
    params += _linear_params(rng, [64 * 7 * 7, 128, 10])
    return x, t, params


def _fg_cnn(x, t, arrays):
    linear, ce, conv2d, max_pool2d = F.linear, F.cross_entropy, F.conv2d, F.max_pool2d
    xt, tt = fg.tensor(x), fg.tensor(t)
    params = [_fg_param(a) for a in arrays]
    c1, cb1, c2, cb2, w1, b1, w2, b2 = params
    n = x.shape[0]

    def step():
        h = max_pool2d(conv2d(xt, c1, cb1, padding=1).relu(), 2)
        h = max_pool2d(conv2d(h, c2, cb2, padding=1).relu(), 2)
        h = linear(h.reshape(n, -1), w1, b1).relu()
        loss = ce(linear(h, w2, b2), tt)
        loss.backward()
        _fg_sgd(params)
        return loss

    return step


def _torch_cnn(x, t, arrays):
    xt, tt = torch.from_numpy(x.copy()), torch.from_numpy(t.copy())
    params = [_torch_param(a) for a in arrays]
    c1, cb1, c2, cb2, w1, b1, w2, b2 = params
    opt = torch.optim.SGD(params, lr=LR)
    n = x.shape[0]

    def step():
        opt.zero_grad(set_to_none=True)
        h = TF.max_pool2d(TF.conv2d(xt, c1, cb1, padding=1).relu(), 2)
        h = TF.max_pool2d(TF.conv2d(h, c2, cb2, padding=1).relu(), 2)
        h = TF.linear(h.reshape(n, -1), w1, b1).relu()
        loss = TF.cross_entropy(TF.linear(h, w2, b2), tt)
        loss.backward()
        opt.step()
        return loss

    return step


def _make_tiny(rng):
    x = rng.uniform(-1, 1, size=(8, 2)).astype(np.float32)
    t = (np.sin(3 * x[:, :1]) * np.cos(2 * x[:, 1:])).astype(np.float32)
    return x, t, _linear_params(rng, [2, 16, 16, 1])


def _fg_tiny(x, t, arrays):
    linear, mse = F.linear, F.mse_loss
    xt, tt = fg.tensor(x), fg.tensor(t)
    params = [_fg_param(a) for a in arrays]
    w1, b1, w2, b2, w3, b3 = params

    def step():
        h = linear(xt, w1, b1).tanh()
        h = linear(h, w2, b2).tanh()
        loss = mse(linear(h, w3, b3), tt)
        loss.backward()
        _fg_sgd(params)
        return loss

    return step


def _torch_tiny(x, t, arrays):
    xt, tt = torch.from_numpy(x.copy()), torch.from_numpy(t.copy())
    params = [_torch_param(a) for a in arrays]
    w1, b1, w2, b2, w3, b3 = params
    opt = torch.optim.SGD(params, lr=LR)

    def step():
        opt.zero_grad(set_to_none=True)
        h = TF.linear(xt, w1, b1).tanh()
        h = TF.linear(h, w2, b2).tanh()
        loss = TF.mse_loss(TF.linear(h, w3, b3), tt)
        loss.backward()
        opt.step()
        return loss

    return step


WORKLOADS = {
    "mlp": Workload("mlp", "MLP 784-1024-1024-10 ReLU, batch 128, cross-entropy, SGD lr 0.01",
                    128, 1.0, _make_mlp, _fg_mlp, _torch_mlp),
    "cnn": Workload("cnn", "CNN 1x28x28: conv3x3 32 > ReLU > maxpool2 > conv3x3 64 > ReLU > "
                    "maxpool2 > linear 3136-128 > ReLU > linear 128-10, batch 64, cross-entropy, "
                    "SGD lr 0.01", 64, 0.6, _make_cnn, _fg_cnn, _torch_cnn),
    "tiny": Workload("tiny", "tiny MLP 2-16-16-1 tanh, batch 8, MSE, SGD lr 0.01",
                     8, 0.6, _make_tiny, _fg_tiny, _torch_tiny),
}


# --- timing --------------------------------------------------------------------------------------

def _run(step, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - t0


def _calibrate(step, seconds: float, warmup: float) -> int:
    """Steps per repeat so that one repeat takes about ``seconds``, after ``warmup`` seconds
    of untimed steps."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < warmup:
        _run(step, 3)
    n = 1
    while True:  # grow until a run takes long enough to time reliably
        dt = _run(step, n)
        if dt >= 0.05 or n >= 1 << 20:
            break
        n *= 4
    dt = min(dt, _run(step, n), _run(step, n))  # a burst of load elsewhere inflates one run
    return max(3, int(seconds / (dt / n)))


def _cpu_busy_s() -> float | None:
    """CPU seconds spent busy on the whole machine so far (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / _HZ


_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _timed_repeat(step, n: int) -> tuple[float, float | None]:
    """Seconds per step over ``n`` steps, and how many cores other processes kept busy
    meanwhile (machine busy time minus this process's CPU time, per wall second)."""
    gc.collect()
    busy0, own0 = _cpu_busy_s(), time.process_time()
    dt = _run(step, n)
    busy1, own1 = _cpu_busy_s(), time.process_time()
    other = None
    if busy0 is not None and busy1 is not None:
        other = max(0.0, (busy1 - busy0) - (own1 - own0)) / dt
    return dt / n, other


def measure(step, seconds: float, warmup: float,
            repeats: int = REPEATS) -> tuple[int, int, float, float]:
    """Steps per repeat, repeats run, the best seconds per step over those repeats of about
    ``seconds`` / ``repeats`` each (after warm-up and calibration), and how many cores other
    processes used during that best repeat.

    When other processes loaded the machine during every repeat, up to ``repeats`` more are
    run, stopping at the first quiet one: PyTorch's 2 OpenMP threads in particular slow down
    many-fold when another process holds one of 2 cores.

    The other framework's worker threads may still be spinning after its last call (OpenBLAS
    busy-waits for a while after a GEMM, OpenMP after a parallel region); on a 2-core machine
    they would take a core from this one, so pause first until they sleep.
    """
    time.sleep(SETTLE_S)
    n = _calibrate(step, seconds / repeats, warmup)
    best, best_other, done = float("inf"), 0.0, 0
    while done < repeats or (done < 2 * repeats and best_other > NOISY_CORES):
        sec, other = _timed_repeat(step, n)
        done += 1
        if sec < best:
            best, best_other = sec, (other or 0.0)
    return n, done, best, best_other


def _loss(t) -> float:
    return float(t.item())


def _check_losses(fg_step, torch_step) -> bool:
    """Run two steps in each framework from the same weights: step 1's loss checks the
    forward, step 2's (after one update) the gradients and the SGD update."""
    ok = True
    for i in (1, 2):
        a, b = _loss(fg_step()), _loss(torch_step())
        diff = abs(a - b)
        good = diff <= 1e-4 * max(1.0, abs(b))
        ok = ok and good
        when = "initial weights" if i == 1 else "after 1 update"
        print(f"  loss step {i} ({when}): flowgrad {a:.7f}  pytorch {b:.7f}  "
              f"|diff| {diff:.1e}  {'OK' if good else 'MISMATCH'}")
    return ok


def run_workload(w: Workload, seconds: float, warmup: float, repeats: int) -> dict | None:
    print(f"\n[{w.name}] {w.desc}")
    x, t, arrays = w.make(np.random.default_rng(0))
    try:
        fg_step = w.build_fg(x, t, arrays)
        fg_step()  # one step to see that it builds; rebuilt below from the initial weights
        fg_step = w.build_fg(x, t, arrays)
    except Exception as e:  # report it and go on with the other workloads
        print(f"  skipped: flowgrad step failed: {type(e).__name__}: {e}")
        return None
    result = {"name": w.name, "batch": w.batch, "target": w.target}
    if torch is not None:
        torch_step = w.build_torch(x, t, arrays)
        result["loss_ok"] = _check_losses(fg_step, torch_step)
    steps = {"flowgrad": fg_step}
    if torch is not None:
        steps["pytorch"] = torch_step
    for label, step in steps.items():  # one after the other: see measure()
        n, done, sec, other = measure(step, seconds, warmup, repeats)
        sps = 1.0 / sec
        result[label] = sps
        result["noisy"] = result.get("noisy", False) or other > NOISY_CORES
        last = _loss(step())
        noise = f"; NOISY: other processes used {other:.2f} cores" if other > NOISY_CORES else ""
        print(f"  {label:8s}: {sps:10.1f} steps/s  {sps * w.batch:11.0f} samples/s  "
              f"({_fmt_time(sec)}/step, best of {done} x {n} steps; loss now {last:.4g}"
              f"{noise})")
    if "pytorch" in result:
        ratio = result["flowgrad"] / result["pytorch"]
        result["ratio"] = ratio
        verdict = "meets" if ratio >= w.target else "below"
        print(f"  ratio flowgrad/pytorch: {ratio:.3f}x  ({verdict} target >= {w.target}x)")
    return result


def _fmt_time(sec: float) -> str:
    return f"{sec * 1e3:.2f} ms" if sec >= 1e-3 else f"{sec * 1e6:.1f} µs"


# --- profile -------------------------------------------------------------------------------------

def profile_workload(w: Workload, seconds: float, warmup: float, top: int = 25):
    x, t, arrays = w.make(np.random.default_rng(0))
    step = w.build_fg(x, t, arrays)
    _, _, sec, _ = measure(step, min(seconds, 1.5), warmup)
    steps = max(10, int(seconds / sec))
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    print(f"\n[{w.name}] cProfile of {steps} flowgrad steps: {_fmt_time(sec)}/step unprofiled, "
          f"{_fmt_time(total / steps)}/step profiled (the profiler inflates per-call costs)")
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    print(f"  {'calls/step':>10s} {'tottime/step':>13s} {'%':>5s} {'cumtime/step':>13s} "
          f"{'per call':>9s}  function")
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in rows:
        where = _short_path(filename)
        loc = f"{where}:{line}({func})" if line else f"{func}"
        print(f"  {nc / steps:10.1f} {tt / steps * 1e6:11.1f}µs {100 * tt / total:5.1f} "
              f"{ct / steps * 1e6:11.1f}µs {tt / nc * 1e6:7.2f}µs  {loc}")


def _short_path(filename: str) -> str:
    if filename.startswith(_ROOT):
        return os.path.relpath(filename, _ROOT)
    if filename == "~":
        return ""
    parts = filename.split(os.sep)
    return os.sep.join(parts[-2:])


# --- machine -------------------------------------------------------------------------------------

def _cpu_description() -> tuple[str, int | None]:
    """CPU model (with family/model numbers and SIMD flags: VMs often hide the name) and the
    number of logical CPUs, from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return platform.processor() or "unknown", os.cpu_count()
    fields: dict = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    logical = sum(1 for line in lines if line.startswith("processor"))
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
            if f in fields.get("flags", "").split()]
    model = (f"{fields.get('model name', 'unknown')} (family {fields.get('cpu family', '?')} "
             f"model {fields.get('model', '?')}; {' '.join(simd) or 'no AVX2'})")
    return model, logical


def describe_machine() -> None:
    model, logical = _cpu_description()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"CPU: {model}; {logical} logical CPUs, {usable} usable by this process; "
          f"{platform.machine()}, Python {platform.python_version()}")
    blas = "?"
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{deps.get('name')} {deps.get('version')}"
    except Exception:  # older NumPy: show_config only prints
        pass
    print(f"numpy {np.__version__} (BLAS {blas}); flowgrad {fg.__version__}; "
          f"torch {torch.__version__ if torch else 'not installed'}")
    if torch is not None:
        cfg = torch.__config__.show()
        tblas = [s.strip() for s in cfg.replace("\n", ",").split(",") if "BLAS_INFO" in s]
        cap = [s.strip() for s in cfg.splitlines() if "CPU capability" in s]
        print(f"torch: {', '.join(tblas + cap)}; threads {torch.get_num_threads()}")
    if _HAVE_THREADPOOLCTL:
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            print(f"  threadpool: {lib['internal_api']} {lib.get('version')} "
                  f"({lib['user_api']}, {lib['num_threads']} threads, "
                  f"arch {lib.get('architecture', '-')}) {os.path.basename(lib['filepath'])}")
    else:
        print(f"  threadpoolctl not installed: OPENBLAS_NUM_THREADS={THREADS} set before import")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (about 0.5 s each)")
    parser.add_argument("--only", metavar="NAME",
                        help=f"run only these workloads (comma-separated: {','.join(WORKLOADS)})")
    parser.add_argument("--profile", metavar="NAME", choices=list(WORKLOADS),
                        help="cProfile flowgrad's steps of one workload; print the top 25")
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds per framework per workload (default 3, --quick 0.5)")
    parser.add_argument("--repeats", type=int, default=REPEATS,
                        help=f"timed repeats per framework; the best counts (default {REPEATS})")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.5 if args.quick else 3.0)
    warmup = 0.1 if args.quick else 0.3  # seconds of warm-up steps

    if _HAVE_THREADPOOLCTL:
        from threadpoolctl import threadpool_limits

        _limits = threadpool_limits(limits=THREADS, user_api="blas")
    if torch is not None:
        torch.set_num_threads(THREADS)
    describe_machine()

    if args.profile:
        profile_workload(WORKLOADS[args.profile], 2 * seconds / 3, warmup)
        return 0

    names = list(WORKLOADS) if not args.only else [s.strip() for s in args.only.split(",")]
    unknown = [s for s in names if s not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {unknown[0]!r}; choose from {', '.join(WORKLOADS)}")
    results = []
    for name in names:
        r = run_workload(WORKLOADS[name], seconds, warmup, args.repeats)
        if r is not None:
            results.append(r)

    if results and torch is not None:
        print(f"\nSummary (throughput ratio flowgrad/pytorch, {THREADS} threads each):")
        for r in results:
            status = "ok" if r["ratio"] >= r["target"] else "BELOW TARGET"
            loss = "" if r.get("loss_ok", True) else "  LOSS MISMATCH"
            loss += "  (noisy machine: rerun)" if r.get("noisy") else ""
            print(f"  {r['name']:5s} {r['ratio']:6.3f}x  (target >= {r['target']}x: {status})"
                  f"  flowgrad {r['flowgrad']:9.1f} steps/s  pytorch {r['pytorch']:9.1f} "
                  f"steps/s{loss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
