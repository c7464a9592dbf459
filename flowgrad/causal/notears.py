"""NOTEARS, linear (Zheng, Aragam, Ravikumar & Xing, "DAGs with NO TEARS: Continuous
Optimization for Structure Learning", NeurIPS 2018), on the flowgrad engine.

Structure learning as a smooth constrained problem (the paper's equation (8)):

    min_W  F(W) = loss(W; X) + lambda1 ||W||_1     subject to    h(W) = tr(e^{W∘W}) - d = 0,

where h(W) = 0 exactly when W is the weighted adjacency matrix of a DAG (Theorem 1: the trace
of the matrix exponential counts weighted closed walks). The equality constraint is handled by
the augmented Lagrangian of Algorithm 1,

    L(W, alpha) = F(W) + (rho / 2) h(W)^2 + alpha h(W),

minimised over W by L-BFGS-B for fixed (rho, alpha); rho grows tenfold until h has fallen to a
quarter of its previous value, then the dual step alpha <- alpha + rho h. The L1 term is made
smooth as the authors' code does: W = W+ - W- with W+, W- >= 0 (box bounds of L-BFGS-B, the
diagonal held at 0), so ||W||_1 = sum(W+ + W-). Finally entries with |W_ij| < w_threshold are
set to 0. The value and gradient of the objective come from flowgrad's autograd; h(W) is one op
(``TraceExpm``) whose backward is (e^{W∘W})^T ∘ 2W.

Convention: the returned W[i, j] != 0 means the edge i -> j (X_j = sum_i W_ij X_i + noise).
"""

from __future__ import annotations

import numpy as np

from ..autograd.op import Op
from ..dtypes import FLOATING
from ..utils.threads import limit_threads as _blas_threads

LOSS_TYPES = ("l2", "logistic", "poisson")


class TraceExpm(Op):
    """h(W) = tr(exp(W ∘ W)) - d for a square W (Zheng et al. 2018, eq. (6)); the gradient is
    exp(W ∘ W)^T ∘ 2W. The matrix exponential is SciPy's (Pade approximation with scaling and
    squaring), computed on the CPU. Where the computed value is within rounding of 0 and the
    support of W is acyclic, h is returned as exactly 0 (its true value: W∘W is nilpotent)."""

    dtype_rule = FLOATING

    @staticmethod
    def forward(ctx, w):
        from scipy.linalg import expm

        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            from ..errors import ShapeError

            raise ShapeError(f"notears acyclicity h(W): W must be a square matrix (d, d), "
                             f"got shape {tuple(w.shape)}")
        host = w if isinstance(w, np.ndarray) else w.get()  # CuPy -> NumPy for SciPy
        e = expm(host * host)
        ctx.save_for_backward(ctx.xp.asarray(e), w)
        h = np.trace(e) - w.shape[0]
        # an acyclic support makes W∘W nilpotent, so h is exactly 0 (the Pade approximation
        # leaves rounding of order eps); the support is only examined when h is that small
        if abs(h) < np.sqrt(np.finfo(e.dtype).eps) * w.shape[0] and _acyclic_support(host != 0):
            h = 0.0
        return ctx.xp.asarray(h, dtype=w.dtype)

    @staticmethod
    def backward(ctx, grad):
        e, w = ctx.saved_tensors
        return (grad * (e.T * (2.0 * w))).astype(w.dtype, copy=False)


def _acyclic_support(edges: np.ndarray) -> bool:
    """Whether the directed graph with boolean adjacency ``edges`` has no cycle (Kahn: peel
    off nodes without incoming edges until none is left)."""
    alive = np.ones(edges.shape[0], dtype=bool)
    indegree = edges.sum(axis=0)
    while alive.any():
        sources = alive & (indegree == 0)
        if not sources.any():
            return False
        alive &= ~sources
        indegree = indegree - edges[sources].sum(axis=0)
    return True


def acyclicity(w):
    """h(W) = tr(e^{W∘W}) - d as a flowgrad Tensor (differentiable): 0 exactly for the weighted
    adjacency of a DAG, > 0 as soon as W has a cycle."""
    return TraceExpm.apply(w)


def _loss(x, w, loss_type: str):
    """The paper's scores (section 4 and the authors' code), averaged over the n samples:
    least squares 1/(2n) ||X - XW||^2, logistic 1/n sum(log(1 + e^{XW}) - X ∘ XW) (binary
    X), Poisson 1/n sum(e^{XW} - X ∘ XW) (counts)."""
    from .. import nn

    n = x.shape[0]
    m = x @ w
    if loss_type == "l2":
        return ((x - m) ** 2).sum() * (0.5 / n)
    if loss_type == "logistic":
        return nn.functional.binary_cross_entropy_with_logits(m, x, reduction="sum") * (1.0 / n)
    return (m.exp() - x * m).sum() * (1.0 / n)


def _l2_loss_gram(gram, w):
    """The least-squares loss 1/(2n) ||X - XW||^2 from the Gram matrix G = X^T X / n:
    1/2 tr((I - W)^T G (I - W)), the same value at a cost independent of n."""
    r = w.new_tensor(np.eye(w.shape[0], dtype=np.float64)) - w
    return ((gram @ r) * r).sum() * 0.5


def _check_data(x, loss_type: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"notears_linear: X must be a (n, d) sample matrix with n >= 2, "
                         f"got shape {x.shape}")
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"notears_linear: unknown loss_type {loss_type!r}; expected one of "
                         f"{LOSS_TYPES}")
    if not np.isfinite(x).all():
        raise ValueError("notears_linear: X has NaN or infinite values")
    if loss_type == "logistic" and not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("notears_linear: loss_type='logistic' needs binary data (0/1)")
    if loss_type == "poisson" and (x < 0).any():
        raise ValueError("notears_linear: loss_type='poisson' needs non-negative counts")
    return x


def notears_linear(X, lambda1: float = 0.1, loss_type: str = "l2", w_threshold: float = 0.3,
                   max_iter: int = 100, h_tol: float = 1e-8, rho_max: float = 1e16,
                   return_info: bool = False, threads: int | None = 1):
    """Learn a linear SEM's weighted DAG from samples ``X`` (n, d) with NOTEARS (Algorithm 1 of
    Zheng et al. 2018; defaults of the authors' code: lambda1 0.1, w_threshold 0.3, h_tol 1e-8,
    rho_max 1e16, 100 dual steps). For the least-squares loss the columns are centred first.

    Returns W (d, d) with W[i, j] the weight of i -> j (0 where no edge); with
    ``return_info`` also a dict: h of the unthresholded solution, final rho and alpha, dual
    steps, L-BFGS-B function evaluations, and whether the thresholded W is acyclic.
    ``threads`` caps the BLAS threads while it runs (the d x d products and exponentials gain
    nothing from more, and lose much on a busy machine); None leaves the setting alone.
    """
    with _blas_threads(threads):
        return _notears_linear(X, lambda1, loss_type, w_threshold, max_iter, h_tol, rho_max,
                               return_info)


def _notears_linear(X, lambda1, loss_type, w_threshold, max_iter, h_tol, rho_max, return_info):
    from scipy.optimize import minimize

    from .. import no_grad
    from ..tensor import Tensor

    x = _check_data(X, loss_type)
    n, d = x.shape
    if loss_type == "l2":
        x = x - x.mean(axis=0, keepdims=True)
    xt = Tensor._wrap(x, None, False)
    # least squares through the Gram matrix: the same objective, each evaluation O(d^3)
    gram = Tensor._wrap(x.T @ x / n, None, False) if loss_type == "l2" else None
    dd = d * d
    rho, alpha, h = 1.0, 0.0, np.inf
    evaluations = 0

    def weights(wt):
        return (wt[:dd] - wt[dd:]).reshape(d, d)

    def objective(flat):
        nonlocal evaluations
        evaluations += 1
        wt = Tensor._wrap(np.array(flat, dtype=np.float64), None, True)
        w = weights(wt)
        hw = acyclicity(w)
        fit = _l2_loss_gram(gram, w) if gram is not None else _loss(xt, w, loss_type)
        obj = (fit + hw * hw * (0.5 * rho) + hw * alpha
               + wt.sum() * lambda1)
        obj.backward()
        return float(obj.item()), np.asarray(wt.grad.numpy(), dtype=np.float64)

    def h_of(flat):
        with no_grad():
            return float(acyclicity(weights(Tensor._wrap(flat, None, False))).item())

    # W+ and W- are non-negative; the diagonal (self-loops) is held at 0
    diagonal = np.eye(d, dtype=bool).ravel()
    bounds = [(0.0, 0.0) if diagonal[k % dd] else (0.0, None) for k in range(2 * dd)]
    w_est = np.zeros(2 * dd)
    steps = 0
    for _ in range(max_iter):
        steps += 1
        w_new, h_new = w_est, h
        while rho < rho_max:
            solution = minimize(objective, w_est, method="L-BFGS-B", jac=True, bounds=bounds)
            w_new = solution.x
            h_new = h_of(w_new)
            if h_new > 0.25 * h:
                rho *= 10.0
            else:
                break
        w_est, h = w_new, h_new
        alpha += rho * h
        if h <= h_tol or rho >= rho_max:
            break
    w = w_est[:dd].reshape(d, d) - w_est[dd:].reshape(d, d)
    w[np.abs(w) < w_threshold] = 0.0
    if not return_info:
        return w
    with no_grad():
        acyclic = float(acyclicity(Tensor._wrap(w, None, False)).item()) <= 1e-8
    return w, {"h": h, "rho": rho, "alpha": alpha, "dual_steps": steps,
               "evaluations": evaluations, "acyclic": acyclic}
