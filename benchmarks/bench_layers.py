"""Layer-API training throughput: flowgrad's nn modules, optimizers and DataLoader against
PyTorch's, in one process, from the same initial weights.

Where ``bench_train.py`` times hand-written functional models with a plain SGD update, this
script times what a user writes: ``nn.Sequential`` of ``nn`` layers, ``nn.CrossEntropyLoss``,
``optim.SGD``/``optim.Adam`` with ``zero_grad(set_to_none=True)``, and (``mnist_epoch``) a full
epoch over MNIST through each framework's own ``DataLoader``. Timing, loss checks, the machine
description and the noise flags are ``bench_train``'s (imported, not copied); 2 threads each.

    python benchmarks/bench_layers.py                        # all workloads
    python benchmarks/bench_layers.py --quick                # shorter timings, one epoch each
    python benchmarks/bench_layers.py --only mlp_layers      # one workload (or a comma list)
    python benchmarks/bench_layers.py --repeats 5            # more timed repeats (best counts)

Workloads: ``mlp_layers`` (784-1024-1024-10 ReLU, batch 128, SGD momentum 0.9), ``cnn_layers``
(2 conv3x3 + max-pool, 2 linear, batch 64, SGD momentum 0.9), ``mnist_epoch`` (784-800-800-10
ReLU, Adam 1e-3, batch 128, one shuffled epoch over the 60,000 MNIST training images; seconds
per epoch, and flowgrad's DataLoader overhead as a share of its epoch).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# bench_train must load before NumPy (it sorts first): without threadpoolctl it sets the BLAS
# thread variables before NumPy loads OpenBLAS; it also puts the checkout on sys.path.
import bench_train  # noqa: E402
import numpy as np  # noqa: E402
from bench_train import (  # noqa: E402
    _HAVE_THREADPOOLCTL,
    NOISY_CORES,
    REPEATS,
    SETTLE_S,
    THREADS,
    Workload,
    _check_losses,
    _fmt_time,
    _timed_repeat,
    describe_machine,
    run_workload,
)

import flowgrad as fg  # noqa: E402
from flowgrad import nn  # noqa: E402

torch = bench_train.torch  # None when torch is not installed

LR = 0.01
MOMENTUM = 0.9
ADAM_LR = 1e-3
EPOCH_BATCH = 128
LOADER_TARGET = 5.0  # flowgrad's DataLoader overhead, % of its training epoch, to stay under
SEED = 0


# --- models: the same architecture in both frameworks -------------------------------------------

def _mlp(m, sizes):
    """nn.Sequential(Linear, ReLU, ..., Linear) in framework module ``m`` (``nn`` or torch.nn)."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(m.ReLU())
        layers.append(m.Linear(fan_in, fan_out))
    return m.Sequential(*layers)


def _cnn(m):
    return m.Sequential(
        m.Conv2d(1, 32, 3, padding=1), m.ReLU(), m.MaxPool2d(2),
        m.Conv2d(32, 64, 3, padding=1), m.ReLU(), m.MaxPool2d(2),
        m.Flatten(), m.Linear(64 * 7 * 7, 128), m.ReLU(), m.Linear(128, 10))


def _torch_initial_state(build) -> dict:
    """Build the PyTorch model (seeded) and return its initial weights as NumPy arrays
    (flowgrad's model's without torch: a flowgrad-only run)."""
    if torch is None:
        fg.manual_seed(SEED)
        return {k: v.numpy().copy() for k, v in build(nn).state_dict().items()}
    torch.manual_seed(SEED)
    return {k: v.detach().numpy().copy() for k, v in build(torch.nn).state_dict().items()}


def _fg_model(build, state: dict):
    model = build(nn)
    model.load_state_dict({k: v.copy() for k, v in state.items()})
    return model


def _torch_model(build, state: dict):
    model = build(torch.nn)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    return model


def _train_step(model, opt, loss_fn, x, t):
    """One training step as a user writes it, the same code for both frameworks."""
    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), t)
        loss.backward()
        opt.step()
        return loss

    return step


# --- mlp_layers and cnn_layers: bench_train's Workload and run_workload ------------------------
# bench_train's Workload passes (x, t, arrays) from make() to both builders; here ``arrays`` is
# the PyTorch model's initial state_dict as NumPy arrays, loaded into each framework's model.

def _layer_workload(name, desc, batch, target, build, in_shape):
    def make(rng):
        x = rng.standard_normal((batch, *in_shape)).astype(np.float32)
        t = rng.integers(0, 10, size=batch).astype(np.int64)
        return x, t, _torch_initial_state(build)

    def build_fg(_ops, _source, x, t, state):
        model = _fg_model(build, state)
        opt = fg.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        return _train_step(model, opt, nn.CrossEntropyLoss(), fg.tensor(x), fg.tensor(t))

    def build_torch(x, t, state):
        model = _torch_model(build, state)
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        return _train_step(model, opt, torch.nn.CrossEntropyLoss(), torch.from_numpy(x.copy()),
                           torch.from_numpy(t.copy()))

    return Workload(name, desc, batch, target, make, build_fg, build_torch,
                    uses=("model", "loss", "optimizer"))


_LAYER_SOURCE = {"model": "nn.Sequential of nn layers", "loss": "nn.CrossEntropyLoss",
                 "optimizer": f"fg.optim.SGD(lr={LR}, momentum={MOMENTUM})"}

LAYER_WORKLOADS = {
    "mlp_layers": _layer_workload(
        "mlp_layers", "nn.Sequential MLP 784-1024-1024-10 ReLU, batch 128, nn.CrossEntropyLoss, "
        f"SGD lr {LR} momentum {MOMENTUM}", 128, 1.0,
        lambda m: _mlp(m, [784, 1024, 1024, 10]), (784,)),
    "cnn_layers": _layer_workload(
        "cnn_layers", "nn.Sequential CNN 1x28x28: Conv2d 32 > ReLU > MaxPool2d > Conv2d 64 > "
        "ReLU > MaxPool2d > Flatten > Linear 3136-128 > ReLU > Linear 128-10, batch 64, "
        f"nn.CrossEntropyLoss, SGD lr {LR} momentum {MOMENTUM}", 64, 0.6, _cnn, (1, 28, 28)),
}
WORKLOAD_NAMES = [*LAYER_WORKLOADS, "mnist_epoch"]


# --- mnist_epoch ---------------------------------------------------------------------------------

def _load_mnist():
    """MNIST's training images as float32 (N, 784) in [0, 1] and int64 labels, or None."""
    try:
        ds = fg.datasets.MNIST(train=True, download=False)
    except (FileNotFoundError, OSError, ValueError):  # DatasetNotFoundError is a FileNotFoundError
        return None
    x = ds.data.numpy().reshape(len(ds), 28 * 28).astype(np.float32) / np.float32(255)
    return x, ds.targets.numpy().astype(np.int64)


def _epoch(loader, model, opt, loss_fn) -> tuple[int, float]:
    """One training epoch over ``loader``: the number of steps and the last loss."""
    n, loss = 0, None
    for xb, yb in loader:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        n += 1
    return n, float(loss.item())


def _iterate(loader) -> int:
    """One epoch of the DataLoader alone (shuffle, index, collate): the number of batches."""
    n = 0
    for _xb, _yb in loader:
        n += 1
    return n


def _time_epochs(run, repeats: int) -> tuple[float, int, float]:
    """Best seconds for ``run()`` (one epoch) over ``repeats`` runs, as bench_train.measure
    does for steps: a settle pause first, and up to ``repeats`` more runs while other processes
    loaded the machine during every one. Returns (seconds, runs, other cores in the best)."""
    time.sleep(SETTLE_S)
    best, best_other, done = float("inf"), 0.0, 0
    while done < repeats or (done < 2 * repeats and best_other > NOISY_CORES):
        sec, other = _timed_repeat(run, 1)
        done += 1
        if sec < best:
            best, best_other = sec, (other or 0.0)
    return best, done, best_other


def _noise(other: float) -> str:
    return f"; NOISY: other processes used {other:.2f} cores" if other > NOISY_CORES else ""


def _fixed_batches_step(model, opt, loss_fn, batches):
    """A step() over a fixed list of batches, one per call (for _check_losses)."""
    it = iter(batches)

    def step():
        xb, yb = next(it)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    return step


def run_mnist_epoch(repeats: int) -> dict | None:
    desc = (f"one epoch of MNIST train (60000 images, flattened float32 in [0, 1]), batch "
            f"{EPOCH_BATCH}, shuffled, each framework's DataLoader over a TensorDataset; "
            f"MLP 784-800-800-10 ReLU, nn.CrossEntropyLoss, Adam lr {ADAM_LR}")
    print(f"\n[mnist_epoch] {desc}")
    data = _load_mnist()
    if data is None:
        print("  skipped: MNIST not found")
        return None
    x, t = data
    print(f"  data: {x.shape[0]} images, {-(-x.shape[0] // EPOCH_BATCH)} batches per epoch")

    def build(m):
        return _mlp(m, [784, 800, 800, 10])

    state = _torch_initial_state(build)
    fg_x, fg_t = fg.tensor(x), fg.tensor(t)
    fg_ds = fg.utils.data.TensorDataset(fg_x, fg_t)

    def fg_parts():
        model = _fg_model(build, state)
        opt = fg.optim.Adam(model.parameters(), lr=ADAM_LR)
        loader = fg.utils.data.DataLoader(fg_ds, batch_size=EPOCH_BATCH, shuffle=True,
                                    generator=fg.utils.data.Generator().manual_seed(SEED))
        return model, opt, nn.CrossEntropyLoss(), loader

    # Loss check on the first two batches in dataset order (the shuffles differ between the
    # frameworks), from the initial weights; Adam's first update checks the optimizer.
    model, opt, loss_fn, _ = fg_parts()
    fg_check = _fixed_batches_step(model, opt, loss_fn, [
        (fg_x[i * EPOCH_BATCH:(i + 1) * EPOCH_BATCH], fg_t[i * EPOCH_BATCH:(i + 1) * EPOCH_BATCH])
        for i in (0, 1)])
    result = {"name": "mnist_epoch", "batch": EPOCH_BATCH}
    if torch is not None:
        th_x, th_t = torch.from_numpy(x), torch.from_numpy(t)
        th_ds = torch.utils.data.TensorDataset(th_x, th_t)

        def torch_parts():
            model = _torch_model(build, state)
            opt = torch.optim.Adam(model.parameters(), lr=ADAM_LR)
            loader = torch.utils.data.DataLoader(
                th_ds, batch_size=EPOCH_BATCH, shuffle=True,
                generator=torch.Generator().manual_seed(SEED))
            return model, opt, torch.nn.CrossEntropyLoss(), loader

        model, opt, loss_fn, _ = torch_parts()
        torch_check = _fixed_batches_step(model, opt, loss_fn, [
            (th_x[i * EPOCH_BATCH:(i + 1) * EPOCH_BATCH],
             th_t[i * EPOCH_BATCH:(i + 1) * EPOCH_BATCH]) for i in (0, 1)])
        result["loss_ok"] = _check_losses(fg_check, torch_check)

    frameworks = {"flowgrad": fg_parts}
    if torch is not None:
        frameworks["pytorch"] = torch_parts
    noisy = False
    for label, parts in frameworks.items():  # one after the other, as bench_train's measure
        model, opt, loss_fn, loader = parts()  # fresh from the initial weights
        warm = iter(loader)  # a few untimed steps: first-call allocations, thread start-up
        for _ in range(3):
            xb, yb = next(warm)
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            opt.step()
        del warm
        info = {}

        def run(model=model, opt=opt, loss_fn=loss_fn, loader=loader, info=info):
            info["steps"], info["loss"] = _epoch(loader, model, opt, loss_fn)

        sec, done, other = _time_epochs(run, repeats)
        noisy = noisy or other > NOISY_CORES
        result[f"{label}_s"] = sec
        result[label] = 1.0 / sec  # epochs/s, for the ratio
        print(f"  {label:8s}: {sec:7.2f} s/epoch  {x.shape[0] / sec:9.0f} samples/s  "
              f"({_fmt_time(sec / info['steps'])}/step, best of {done} epochs; loss now "
              f"{info['loss']:.4g}{_noise(other)})")
        # The DataLoader alone, the same epoch without the model (shuffle, index, collate).
        lsec, ldone, lother = _time_epochs(lambda loader=loader: _iterate(loader), repeats)
        noisy = noisy or lother > NOISY_CORES
        result[f"{label}_loader_s"] = lsec
        print(f"  {'':8s}  DataLoader alone: {_fmt_time(lsec)}/epoch = {100 * lsec / sec:.2f}% "
              f"of the training epoch (best of {ldone}{_noise(lother)})")
    result["noisy"] = noisy
    overhead = 100 * result["flowgrad_loader_s"] / result["flowgrad_s"]
    result["loader_pct"] = overhead
    verdict = "meets" if overhead < LOADER_TARGET else "above"
    print(f"  flowgrad DataLoader overhead: {overhead:.2f}% of its epoch "
          f"({verdict} target < {LOADER_TARGET:g}%)")
    if "pytorch" in result:
        result["ratio"] = result["flowgrad"] / result["pytorch"]
        print(f"  ratio flowgrad/pytorch (epoch throughput): {result['ratio']:.3f}x  "
              f"(flowgrad {result['flowgrad_s']:.2f} s, pytorch {result['pytorch_s']:.2f} s "
              f"per epoch)")
    return result


# --- main ----------------------------------------------------------------------------------------

def _summary(results: list[dict]) -> None:
    print(f"\nSummary (throughput ratio flowgrad/pytorch, {THREADS} threads each):")
    for r in results:
        loss = "" if r.get("loss_ok", True) else "  LOSS MISMATCH"
        loss += "  (noisy machine: rerun)" if r.get("noisy") else ""
        if r["name"] == "mnist_epoch":
            ok = r["loader_pct"] < LOADER_TARGET
            print(f"  {r['name']:11s} {r['ratio']:6.3f}x  flowgrad {r['flowgrad_s']:6.2f} s/epoch"
                  f"  pytorch {r['pytorch_s']:6.2f} s/epoch; flowgrad DataLoader "
                  f"{r['loader_pct']:.2f}% of its epoch (target < {LOADER_TARGET:g}%: "
                  f"{'ok' if ok else 'ABOVE TARGET'}){loss}")
            continue
        status = "ok" if r["ratio"] >= r["target"] else "BELOW TARGET"
        print(f"  {r['name']:11s} {r['ratio']:6.3f}x  (target >= {r['target']}x: {status})"
              f"  flowgrad {r['flowgrad']:9.1f} steps/s  pytorch {r['pytorch']:9.1f} "
              f"steps/s{loss}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer steps (about 0.5 s each) and one timed epoch")
    parser.add_argument("--only", metavar="NAME",
                        help=f"run only these workloads (comma-separated: "
                             f"{','.join(WORKLOAD_NAMES)})")
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds per framework per step workload (default 3, --quick 0.5)")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"timed repeats per framework; the best counts (default {REPEATS}; "
                             f"--quick: {REPEATS} for steps, 1 for epochs)")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.5 if args.quick else 3.0)
    warmup = 0.1 if args.quick else 0.3  # seconds of warm-up steps
    repeats = args.repeats if args.repeats is not None else REPEATS
    epoch_repeats = args.repeats if args.repeats is not None else (1 if args.quick else REPEATS)

    names = WORKLOAD_NAMES if not args.only else [s.strip() for s in args.only.split(",")]
    unknown = [s for s in names if s not in WORKLOAD_NAMES]
    if unknown:
        parser.error(f"unknown workload {unknown[0]!r}; choose from {', '.join(WORKLOAD_NAMES)}")

    if _HAVE_THREADPOOLCTL:
        from threadpoolctl import threadpool_limits

        _limits = threadpool_limits(limits=THREADS, user_api="blas")
    if torch is not None:
        torch.set_num_threads(THREADS)
    describe_machine()

    results = []
    for name in names:
        if name == "mnist_epoch":
            r = run_mnist_epoch(epoch_repeats)
        else:
            r = run_workload(LAYER_WORKLOADS[name], {}, _LAYER_SOURCE, seconds, warmup, repeats)
        if r is not None and "ratio" in r:
            results.append(r)
    if results:
        _summary(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
