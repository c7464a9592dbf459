"""What a gradient costs (lecture: "Why backprop is powerful": with n parameters the loss costs
O(n), backprop's gradient O(n) too, but the "dumb alternative" by finite differences needs one
more loss evaluation per parameter, O(n²)).

``gradient_cost(make_model, sizes, batch)`` times, for each model size, one forward pass, the
full gradient by backprop (forward + backward) and the full gradient by central finite
differences (one forward pair per parameter), then fits log-log slopes of time against the
number of parameters n: about 1 for the forward pass and backprop, about 2 for finite
differences. Where n forward pairs would take too long, the pairs are timed on a random sample
of ``fd_max_params`` parameters and scaled by n / sample (every pair does the same work), and the
row says so; the sampled finite-difference gradient is also compared with backprop's.

``single_blas_thread()`` is the context the timings run in: one BLAS thread, so that small
matrix products are neither slowed by thread hand-offs nor by other jobs on the machine.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..autograd.gradcheck import central_difference
from ..tensor import Tensor

__all__ = ["gradient_cost", "GradientCost", "loglog_slope", "single_blas_thread"]


@contextlib.contextmanager
def single_blas_thread():
    """Limit BLAS to one thread inside the block (needs threadpoolctl; otherwise a no-op)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def loglog_slope(n, t) -> float:
    """Least-squares slope of log t against log n (the exponent p of t ∝ n^p)."""
    n, t = np.asarray(n, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if n.size < 2:
        raise ValueError("loglog_slope: need at least two sizes")
    return float(np.polyfit(np.log(n), np.log(t), 1)[0])


def _best_time(fn, repeats: int, min_time: float) -> float:
    """Smallest mean time per call over ``repeats`` rounds of at least ``min_time`` seconds."""
    fn()  # warm up
    best = np.inf
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return float(best)


@dataclass
class GradientCost:
    """The table of ``gradient_cost``: one row per size (``size``, ``n_params``, seconds for
    ``forward``, ``backprop`` and ``finite_differences``, whether the last was ``extrapolated``
    from a sample and its ``fd_rel_error`` against backprop on that sample), and the log-log
    ``slopes`` of each time against n."""
    rows: list
    slopes: dict
    eps: float
    batch_size: int
    notes: list = field(default_factory=list)

    def column(self, key: str) -> np.ndarray:
        return np.array([r[key] for r in self.rows], dtype=np.float64)

    @property
    def work_slopes(self) -> dict:
        """The log-log slopes of the counted work against n, free of timing noise: each row's
        ``passes`` (passes over the network per gradient: 1 forward; for backprop the
        counted forward passes of one gradient, each with its backward pass, 2 in all; for
        finite differences the counted loss evaluations, 2 per parameter)
        times n (a pass over a dense net touches every parameter once: O(n) multiply-adds).
        About 1 for the forward pass and backprop, 2 for finite differences."""
        ns = [r["n_params"] for r in self.rows]
        return {key: loglog_slope(ns, [r["passes"][key] * r["n_params"] for r in self.rows])
                for key in ("forward", "backprop", "finite_differences")}

    def to_markdown(self) -> str:
        lines = ["| size | parameters n | forward | backprop gradient | finite-difference "
                 "gradient | FD / backprop |", "|---|---|---|---|---|---|"]
        for r in self.rows:
            fd = f"{r['finite_differences']:.3g} s" + (" (extrapolated)" if r["extrapolated"]
                                                        else "")
            lines.append(f"| {r['size']} | {r['n_params']:,} | {r['forward'] * 1e3:.3g} ms | "
                         f"{r['backprop'] * 1e3:.3g} ms | {fd} | "
                         f"{r['finite_differences'] / r['backprop']:,.0f}× |")
        s = self.slopes
        lines += ["", f"Log-log slopes (time ∝ n^p): forward p = {s['forward']:.2f}, backprop "
                  f"p = {s['backprop']:.2f}, finite differences p = "
                  f"{s['finite_differences']:.2f}."]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"rows": self.rows, "slopes": self.slopes, "eps": self.eps,
                "batch_size": self.batch_size}

    def plot(self, path) -> str:
        """Log-log figure of the three times against n, with the fitted slopes."""
        from ..plotting import new_figure, save_figure

        n = self.column("n_params")
        fig, ax = new_figure(figsize=(6, 4.5))
        styles = {"forward": ("forward pass (the loss)", "C2", "s"),
                  "backprop": ("gradient by backprop", "C0", "o"),
                  "finite_differences": ("gradient by finite differences", "C3", "^")}
        for key, (label, color, marker) in styles.items():
            t = self.column(key)
            fit = np.exp(np.polyval(np.polyfit(np.log(n), np.log(t), 1), np.log(n)))
            ax.loglog(n, t, marker, color=color, label=f"{label}: slope {self.slopes[key]:.2f}")
            ax.loglog(n, fit, "-", color=color, alpha=0.6)
        ext = [r["extrapolated"] for r in self.rows]
        if any(ext):
            ax.loglog(n[ext], self.column("finite_differences")[ext], "^", mfc="none",
                      color="k", ms=11, label="FD extrapolated from a sample of parameters")
        ax.set(xlabel="number of parameters n", ylabel="seconds per full gradient",
               title="Why backprop is powerful: O(n) vs O(n²)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        return str(save_figure(fig, path, dpi=120, tight=True))


def _batch_for(batch, size):
    b = batch(size) if callable(batch) else batch
    x, y = b
    return tuple(a if isinstance(a, Tensor) else Tensor._wrap(np.asarray(a), None, False)
                 for a in (x, y))


def gradient_cost(make_model, sizes, batch, loss_fn=None, eps: float = 1e-3,
                  fd_max_params: int | None = 2000, fd_time_budget: float | None = 1.0,
                  repeats: int = 3, min_time: float = 0.05, seed: int = 0,
                  single_thread: bool = True, dtype=None) -> GradientCost:
    """Time the full gradient by backprop and by finite differences as the model grows.

    Args:
        make_model: ``make_model(size)`` returns a Module (e.g. an MLP of width ``size``).
        sizes: the sizes to try, smallest first.
        batch: ``(x, y)`` (arrays or Tensors) or ``batch(size) -> (x, y)``.
        loss_fn: ``loss_fn(output, target)``; default cross-entropy.
        eps: the finite-difference step (central differences, (L(θ+εe_i) − L(θ−εe_i)) / 2ε).
        fd_max_params: above this many parameters, time the forward pairs of a random sample of
            that many and scale by n/sample (``None``: always all n).
        fd_time_budget: also shrink the sample so that the pairs take about this many seconds
            (at least 20 pairs; ``None``: no time limit).
        repeats, min_time: each timing is the best of ``repeats`` rounds of >= ``min_time`` s.
        single_thread: time with one BLAS thread (see ``single_blas_thread``).
        dtype: cast the model and floating inputs (``np.float64`` makes the finite differences
            accurate enough for ``fd_rel_error`` to check them; float32 loses digits).

    Returns a ``GradientCost`` (``.rows``, ``.slopes``, ``.to_markdown()``, ``.plot(path)``).

    Example:
        >>> cost = gradient_cost(lambda w: MLP(sizes=(64, w, 10)), [16, 32, 64, 128], (x, y))
        >>> cost.slopes   # {'forward': ~1, 'backprop': ~1, 'finite_differences': ~2}
    """
    import flowgrad as fg

    from ..autograd import grad

    if loss_fn is None:
        loss_fn = fg.nn.functional.cross_entropy
    sizes = list(sizes)
    rows = []
    ctx = single_blas_thread() if single_thread else contextlib.nullcontext()
    with ctx:
        for size in sizes:
            fg.manual_seed(seed)
            model = make_model(size)
            if dtype is not None:
                model.double() if np.dtype(dtype) == np.float64 else model.float()
            params = [p for p in model.parameters() if p.requires_grad]
            n = sum(int(np.prod(p.shape)) for p in params)
            x, y = _batch_for(batch, size)
            if dtype is not None and x.dtype.kind == "f":
                x = x.to(np.dtype(dtype))

            def forward(model=model, x=x, y=y):
                with fg.no_grad():
                    return loss_fn(model(x), y).item()

            def backprop(model=model, x=x, y=y, params=params):
                return grad(loss_fn(model(x), y), params, allow_unused=True,
                            materialize_grads=True)

            t_forward = _best_time(forward, repeats, min_time)
            t_backprop = _best_time(backprop, repeats, min_time)
            # finite differences: one forward pair per parameter (entry), each entry perturbed
            # where it lives (central_difference), so any memory layout is fine
            arrays = [p._data for p in params]
            owner = np.concatenate([np.full(a.size, i) for i, a in enumerate(arrays)])
            offset = np.concatenate([np.arange(a.size) for a in arrays])
            rng = np.random.default_rng(seed)
            m = n if fd_max_params is None else min(n, int(fd_max_params))
            if fd_time_budget is not None:
                m = min(m, max(20, int(fd_time_budget / (2 * t_forward))))
            pick = np.arange(n) if m == n else np.sort(rng.choice(n, size=m, replace=False))
            fd = np.empty(m)
            evaluations = [0]

            def counted(forward=forward, evaluations=evaluations):
                evaluations[0] += 1
                return forward()

            start = time.perf_counter()
            for j, i in enumerate(pick):
                fd[j] = central_difference(counted, arrays, eps,
                                           entry=(int(owner[i]), int(offset[i])))
            t_fd = (time.perf_counter() - start) * n / m
            for p in params:
                p._version += 1
            calls = [0]  # forward passes of one backprop gradient, counted on the model
            hook = model.register_forward_pre_hook(
                lambda *_, calls=calls: calls.__setitem__(0, calls[0] + 1))
            try:
                g = np.concatenate([backend.to_numpy(a._data).reshape(-1).astype(np.float64)
                                    for a in backprop()])[pick]
            finally:
                hook.remove()
            rel = float(np.linalg.norm(fd - g) / max(np.linalg.norm(g), 1e-30))
            rows.append({"size": size, "n_params": n, "forward": t_forward,
                         "backprop": t_backprop, "finite_differences": t_fd,
                         "extrapolated": m < n, "fd_sample": m, "fd_rel_error": rel,
                         "fd_evaluations": evaluations[0],
                         "passes": {"forward": 1, "backprop": 2 * calls[0],
                                    "finite_differences": evaluations[0] * n / m}})
    ns = [r["n_params"] for r in rows]
    slopes = {key: loglog_slope(ns, [r[key] for r in rows])
              for key in ("forward", "backprop", "finite_differences")}
    x0, _ = _batch_for(batch, sizes[0])
    return GradientCost(rows, slopes, eps, int(x0.shape[0]))
