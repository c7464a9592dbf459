"""L-BFGS (Liu & Nocedal 1989, "On the limited memory BFGS method for large scale
optimization"; Nocedal & Wright, *Numerical Optimization*, Algorithms 7.4 and 3.5-3.6), the
quasi-Newton method of torch.optim.LBFGS, with its optional strong-Wolfe line search.

All parameters are seen as one flat vector: the gradient is gathered into one array, the search
direction is one array, and a step adds ``t·d`` back into each parameter's slice. Scalars (step
length, curvature ``y·s``, ...) are NumPy scalars of the parameters' dtype, so float32 runs do
their scalar arithmetic in float32 exactly as torch does with its 0-d tensors (Python floats
stay Python floats on both sides: NumPy 2's weak scalars are torch's wrapped numbers).
"""

from __future__ import annotations

import numpy as np

from ..autograd import grad_mode
from ..tensor import Tensor
from .optimizer import Optimizer, _wrap

__all__ = ["LBFGS"]


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, clipped to
    ``bounds`` (default: the interval between x1 and x2); the midpoint of the bounds when the
    cubic has no real minimiser (minFunc's ``polyinterp`` for two points)."""
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    # Nocedal & Wright eq. 3.59, written from the point that lies further right
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = d1 ** 2 - g1 * g2
    if disc >= 0:
        d2 = np.sqrt(disc)
        if x1 <= x2:
            x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(x, lo), hi)
    return (lo + hi) / 2.0


def _strong_wolfe(evaluate, dot, absmax, t, d, f, g, gtd, c1=1e-4, c2=0.9,
                  tolerance_change=1e-9, max_ls=25):
    """A step length ``t`` along ``d`` satisfying the strong Wolfe conditions (sufficient
    decrease with ``c1``, curvature |φ'(t)| ≤ c2·|φ'(0)|): bracketing by cubic extrapolation,
    then zoom by cubic interpolation, at most ``max_ls`` evaluations (Nocedal & Wright,
    Algorithms 3.5 and 3.6, as minFunc and torch implement them). ``evaluate(t)`` returns the
    loss and flat gradient at x + t·d. Returns (loss, gradient, t, evaluations)."""
    d_norm = absmax(d)
    g = g.copy()
    f_new, g_new = evaluate(t)
    n_evals = 1
    gtd_new = dot(g_new, d)

    # bracketing phase: grow t until an interval is known to hold an acceptable point
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new.copy()], \
                [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            br, br_f, br_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new.copy()], \
                [gtd_prev, gtd_new]
            break
        # extrapolate, between 1.01·t and 10·t
        t_next = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                    bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new.copy(), gtd_new
        t = t_next
        f_new, g_new = evaluate(t)
        n_evals += 1
        gtd_new = dot(g_new, d)
        ls_iter += 1

    if ls_iter == max_ls:  # evaluations spent: the interval from 0 to the last t
        br, br_f, br_g = [0, t], [f, f_new], [g, g_new]

    # zoom phase: shrink the bracket [low, high] until a point satisfies both conditions
    insufficient = False
    low, high = (0, 1) if br_f[0] <= br_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(br[1] - br[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(br[0], br_f[0], br_gtd[0], br[1], br_f[1], br_gtd[1])
        # a trial point too close to an end of the bracket (twice, or outside it) is moved to
        # a tenth of the bracket's length from that end
        lo, hi = min(br), max(br)
        eps = 0.1 * (hi - lo)
        if min(hi - t, t - lo) < eps:
            if insufficient or t >= hi or t <= lo:
                t = hi - eps if abs(t - hi) < abs(t - lo) else lo + eps
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False

        f_new, g_new = evaluate(t)
        n_evals += 1
        gtd_new = dot(g_new, d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= br_f[low]:
            # no sufficient decrease, or above the low end: t becomes the high end
            br[high], br_f[high], br_g[high], br_gtd[high] = t, f_new, g_new.copy(), gtd_new
            low, high = (0, 1) if br_f[0] <= br_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (br[high] - br[low]) >= 0:
                br[high], br_f[high], br_g[high], br_gtd[high] = \
                    br[low], br_f[low], br_g[low], br_gtd[low]
            br[low], br_f[low], br_g[low], br_gtd[low] = t, f_new, g_new.copy(), gtd_new

    return br_f[low], br_g[low], br[low], n_evals


class LBFGS(Optimizer):
    """L-BFGS: a quasi-Newton step x ← x + t·d, with d = −H·g where H, the inverse-Hessian
    estimate, is built by the two-loop recursion from the last ``history_size`` pairs
    (s = step, y = change of gradient), scaled by H₀ = (y·s)/(y·y). ``step(closure)`` runs up to
    ``max_iter`` iterations (``max_eval`` loss evaluations, default ``max_iter·5//4``) and
    stops early when the largest gradient entry is ≤ ``tolerance_grad`` or the step, or the
    change of loss, is below ``tolerance_change``. The first iteration takes
    t = min(1, 1/‖g‖₁)·lr; later ones t = lr, or, with ``line_search_fn="strong_wolfe"``, a step
    satisfying the strong Wolfe conditions.

    Exactly torch.optim.LBFGS, step for step: one parameter group only, all parameters seen as
    one flat vector; the closure must zero the gradients, compute the loss, call ``backward``
    and return the loss, and is called several times per step (``step`` returns its first
    value). State (torch's keys, registered on the first parameter, so a run resumes from
    ``state_dict()``): ``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``,
    ``ro``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``. Memory: about
    ``2·history_size + 3`` copies of the parameters.

    Example:
        >>> opt = fg.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = F.mse_loss(model(x), y)
        ...     loss.backward()
        ...     return loss
        >>> opt.step(closure)
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None) -> None:
        if isinstance(lr, Tensor):
            if lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
            lr = lr.item()
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                    "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
                    "history_size": history_size, "line_search_fn": line_search_fn}
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

    # --- the parameters as one flat vector ------------------------------------------------------
    @property
    def _params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def _flat_grad(self, xp):
        """A new flat array of all gradients (zeros for a parameter without one)."""
        views = []
        for p in self._params:
            g = p.grad
            views.append(xp.zeros(p._data.size, p._data.dtype) if g is None
                         else g._data.reshape(-1))
        return xp.concatenate(views)

    def _add_grad(self, t, d) -> None:
        """Every parameter += t · its slice of ``d``, in place."""
        offset = 0
        for p in self._params:
            a = p._data
            n = a.size
            a += d[offset:offset + n].reshape(a.shape) * t
            p._version += 1
            offset += n

    def _set_params(self, arrays) -> None:
        for p, x in zip(self._params, arrays):
            p._data[...] = x
            p._version += 1

    # --- the step -----------------------------------------------------------------------------
    def step(self, closure=None):
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss ``closure()`` gave first
        (before any update). ``closure`` is required: it re-evaluates the model, calls
        ``backward`` and returns the loss."""
        if closure is None:
            raise TypeError("LBFGS.step() missing 1 required positional argument: 'closure' "
                            "(a function that zeroes the gradients, computes the loss, calls "
                            "loss.backward() and returns the loss; L-BFGS calls it several "
                            "times per step)")
        if len(self.param_groups) != 1:
            raise AssertionError(f"Expected exactly one param_group, but got "
                                 f"{len(self.param_groups)}: LBFGS doesn't support "
                                 "per-parameter options (parameter groups)")
        mode = grad_mode._state
        prev = mode.enabled
        mode.enabled = False
        try:
            return self._run(closure)
        finally:
            mode.enabled = prev
            self._opt_called = True

    def _run(self, closure):
        group = self.param_groups[0]
        lr = group["lr"]
        if isinstance(lr, Tensor):
            lr = lr.item()
        max_iter = group["max_iter"]
        max_eval = group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn = group["line_search_fn"]
        history_size = group["history_size"]

        first = self._params[0]
        xp = first.xp
        dtype = np.result_type(*(p._data.dtype for p in self._params))
        scalar = dtype.type

        if xp is np:
            def dot(a, b):
                return scalar(np.dot(a, b))

            def absmax(a):
                return scalar(np.abs(a).max())

            def abssum(a):
                return scalar(np.abs(a).sum())
        else:  # one device-to-host copy per scalar, as torch's `if` on a CUDA tensor
            def dot(a, b):
                return scalar(xp.dot(a, b).item())

            def absmax(a):
                return scalar(xp.abs(a).max().item())

            def abssum(a):
                return scalar(xp.abs(a).sum().item())

        def evaluate():
            with grad_mode.enable_grad():
                out = closure()
            return out, float(out)

        state = self.state[first]  # the state is global; torch keeps it on the first parameter
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss, loss = evaluate()
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad(xp)
        opt_cond = absmax(flat_grad) <= tolerance_grad
        if opt_cond:
            return orig_loss

        d = _unpack(state.get("d"), scalar)
        t = _unpack(state.get("t"), scalar)
        old_dirs = _unpack(state.get("old_dirs"), scalar)
        old_stps = _unpack(state.get("old_stps"), scalar)
        ro = _unpack(state.get("ro"), scalar)
        H_diag = _unpack(state.get("H_diag"), scalar)
        prev_flat_grad = _unpack(state.get("prev_flat_grad"), scalar)
        prev_loss = _unpack(state.get("prev_loss"), scalar)
        al = _unpack(state.get("al"), scalar)

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # --- the search direction --------------------------------------------------
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = dot(y, s)
                if ys > 1e-10:  # keep the pair only where the curvature is positive
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / dot(y, y)
                num_old = len(old_dirs)
                if al is None:
                    al = [None] * history_size
                # two-loop recursion: d = −H·g, H from the stored (s, y) pairs and H₀
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = dot(old_stps[i], q) * ro[i]
                    q += old_dirs[i] * (-al[i])
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = dot(old_dirs[i], r) * ro[i]
                    r += old_stps[i] * (al[i] - be_i)

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                prev_flat_grad[...] = flat_grad
            prev_loss = loss

            # --- the step length --------------------------------------------------------
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / abssum(flat_grad)) * lr
            else:
                t = lr
            gtd = dot(flat_grad, d)
            if gtd > -tolerance_change:  # not a descent direction (any more)
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                x_init = [p._data.copy() for p in self._params]

                def at(step, x_init=x_init, d=d):
                    self._add_grad(step, d)
                    _, value = evaluate()
                    grad = self._flat_grad(xp)
                    self._set_params(x_init)
                    return value, grad

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    at, dot, absmax, t, d, loss, flat_grad, gtd,
                    max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = absmax(flat_grad) <= tolerance_grad
            else:
                self._add_grad(t, d)
                if n_iter != max_iter:  # the last iteration's loss is not re-evaluated
                    _, loss = evaluate()
                    flat_grad = self._flat_grad(xp)
                    opt_cond = absmax(flat_grad) <= tolerance_grad
                    ls_func_evals = 1

            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # --- stopping rules ---------------------------------------------------------
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if absmax(d * t) <= tolerance_change:  # the step is negligible
                break
            if abs(loss - prev_loss) < tolerance_change:  # the loss no longer changes
                break
        state["d"] = _pack(d, xp)
        state["t"] = _pack(t, xp)
        state["old_dirs"] = _pack(old_dirs, xp)
        state["old_stps"] = _pack(old_stps, xp)
        state["ro"] = _pack(ro, xp)
        state["H_diag"] = _pack(H_diag, xp)
        state["prev_flat_grad"] = _pack(prev_flat_grad, xp)
        state["prev_loss"] = prev_loss
        if al is not None:
            state["al"] = _pack(al, xp)
        return orig_loss


def _pack(value, xp):
    """The state as torch keeps it: arrays and NumPy scalars as Tensors (0-d for scalars),
    lists element-wise; Python numbers and None as they are."""
    if isinstance(value, list):
        return [_pack(v, xp) for v in value]
    if isinstance(value, np.generic):
        return _wrap(xp.asarray(value))
    if value is not None and not isinstance(value, (int, float)):
        return _wrap(value)
    return value


def _unpack(value, scalar):
    """The inverse of ``_pack``: Tensors (or arrays) to arrays, 0-d ones to NumPy scalars of
    the parameters' dtype (the type ``scalar``)."""
    if isinstance(value, list):
        return [_unpack(v, scalar) for v in value]
    if isinstance(value, Tensor):
        value = value._data
    if hasattr(value, "ndim") and not isinstance(value, np.generic):
        return scalar(value.item()) if value.ndim == 0 else value
    if isinstance(value, np.generic):
        return scalar(value)
    return value
