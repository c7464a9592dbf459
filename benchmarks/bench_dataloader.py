"""DataLoader worker processes, flowgrad against PyTorch: one pass over a map-style dataset
whose samples cost CPU time in Python/NumPy (an augmentation-like transform), with
``num_workers`` 0 and 2, in each framework.

    python benchmarks/bench_dataloader.py              # 2000 samples, batch 32
    python benchmarks/bench_dataloader.py --samples 500

What it prints: seconds per pass (best of 5, the configurations interleaved) for each framework
and worker count, the speed-up that workers give within each framework, and flowgrad/PyTorch
throughput ratios. BLAS and PyTorch are held to one thread so that the workers, not a thread
pool, do the parallel work.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def _transform(i: int) -> np.ndarray:
    """A deterministic 28x28 image and an augmentation-like amount of work on it."""
    rng = np.random.default_rng(i)
    image = rng.random((28, 28), dtype=np.float32)
    for _ in range(20):
        image = np.roll(image, 1, axis=0) * 0.9 + np.flip(image, axis=1) * 0.1
        image = (image - image.mean()) / (image.std() + 1e-6)
    return image


class _FlowgradImages:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return _transform(i), i % 10


def _best_passes(loaders: dict, repeats: int) -> dict:
    """Best seconds per pass of each loader, the passes interleaved (one of each per round) so
    that a slow spell of a shared machine does not fall on one configuration only."""
    best = dict.fromkeys(loaders, float("inf"))
    for _ in range(repeats):
        for key, loader in loaders.items():
            start = time.perf_counter()
            for _batch in loader:
                pass
            best[key] = min(best[key], time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    from flowgrad.utils.data import DataLoader, Dataset

    class FlowgradImages(_FlowgradImages, Dataset):
        pass

    loaders = {("flowgrad", workers): DataLoader(FlowgradImages(args.samples),
                                                 batch_size=args.batch_size, num_workers=workers)
               for workers in (0, 2)}
    try:
        import torch
        from torch.utils.data import DataLoader as TorchLoader
        from torch.utils.data import Dataset as TorchDataset
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(1)

        class TorchImages(_FlowgradImages, TorchDataset):
            pass

        for workers in (0, 2):
            loaders["torch", workers] = TorchLoader(TorchImages(args.samples),
                                                    batch_size=args.batch_size,
                                                    num_workers=workers)
    results = _best_passes(loaders, args.repeats)

    print(f"{args.samples} samples, batch {args.batch_size}, {os.cpu_count()} CPUs, best of "
          f"{args.repeats} passes")
    for (framework, workers), seconds in results.items():
        print(f"  {framework:8s} num_workers={workers}: {seconds:.3f} s/pass "
              f"({args.samples / seconds:,.0f} samples/s)")
    for framework in ("flowgrad", "torch"):
        if (framework, 0) in results:
            speedup = results[framework, 0] / results[framework, 2]
            print(f"  {framework}: 2 workers are {speedup:.2f}x the speed of 0")
    if torch is not None:
        for workers in (0, 2):
            print(f"  flowgrad/PyTorch throughput, num_workers={workers}: "
                  f"{results['torch', workers] / results['flowgrad', workers]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
