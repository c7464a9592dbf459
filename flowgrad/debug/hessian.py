"""Probing the curvature of the loss (lecture: "Not so terrible local minima": in high dimension
saddle points, not local minima, dominate; Dauphin et al. 2014, "Identifying and attacking the
saddle point problem in high-dimensional non-convex optimization").

flowgrad computes first-order gradients only (DESIGN.md), so the Hessian is reached through
finite differences of gradients: the Hessian-vector product

    H v ≈ ||v|| (∇L(θ + h u) − ∇L(θ − h u)) / 2h,    u = v / ||v||,

costs two backward passes and has error O(h²) (plus round-off ~ ε_machine |∇L| / h). On top of
it:

- ``hessian_vector_product(loss_fn, params, v)`` — the product itself;
- ``hessian_dense(loss_fn, params)`` — the whole n×n matrix from n products (small nets);
- ``hessian_eigs(model, loss_fn, batch, k)`` — the k largest and/or smallest eigenvalues by
  Lanczos (``scipy.sparse.linalg.eigsh`` on a ``LinearOperator``), never forming H;
- ``spectrum_fraction_below(...)`` — stochastic Lanczos quadrature estimate of the fraction of
  eigenvalues below a threshold, for nets too big for the dense matrix;
- ``critical_point_report(model, loss_fn, batch)`` — loss, gradient norm, extreme eigenvalues
  and the *index* (fraction of negative eigenvalues: 0 at a minimum, > 0 at a saddle).

By default the probes run on a float64 copy of the model (the model itself is not touched), so
the finite differences are accurate to about 1e-8 relative.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..autograd.gradcheck import central_difference
from ..tensor import Tensor

__all__ = ["hessian_vector_product", "hessian_dense", "hessian_eigs", "HessianEigs",
           "spectrum_fraction_below", "critical_point_report", "CriticalPointReport",
           "flat_grad", "num_params"]


# --- parameters as one flat vector -----------------------------------------------------------

def _param_list(params) -> list[Tensor]:
    if isinstance(params, Tensor):
        params = [params]
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("hessian: no parameter requires grad (pass model.parameters() or a "
                         "list of tensors with requires_grad=True)")
    return params


def num_params(params) -> int:
    """Total number of entries of the parameters that require grad."""
    return sum(int(np.prod(p.shape)) for p in _param_list(params))


def _split(flat: np.ndarray, params: list[Tensor]) -> list[np.ndarray]:
    out, s = [], 0
    for p in params:
        n = int(np.prod(p.shape))
        out.append(flat[s:s + n].reshape(p.shape))
        s += n
    return out


def _flatten(arrays) -> np.ndarray:
    return np.concatenate([np.asarray(backend.to_numpy(a), dtype=np.float64).reshape(-1)
                           for a in arrays])


def _default_eps(params: list[Tensor]) -> float:
    """About the cube root of the machine epsilon (the best step for central differences)."""
    return 1e-5 if all(p.dtype == np.float64 for p in params) else 3e-3


def flat_grad(loss_fn, params) -> tuple[float, np.ndarray]:
    """(loss, gradient as one float64 vector) of the closure ``loss_fn()`` wrt ``params``.
    Parameters the loss does not use get a zero gradient."""
    from ..autograd import grad

    params = _param_list(params)
    loss = loss_fn()
    grads = grad(loss, params, allow_unused=True, materialize_grads=True)
    return float(loss.item()), _flatten([g._data for g in grads])


def hessian_vector_product(loss_fn, params, v, eps: float | None = None):
    """H v by central differences of gradients, H the Hessian of ``loss_fn()`` wrt ``params``.

    Args:
        loss_fn: a closure returning the scalar loss (a Tensor) at the current parameters.
        params: the tensors to differentiate (e.g. ``list(model.parameters())``).
        v: one flat vector of length n = total number of parameter entries, or a list of
            arrays/Tensors shaped like ``params``; returned in the same form (float64).
        eps: the step h along v/||v|| (default 1e-5 in float64, 3e-3 in float32).

    The parameters are moved in place to θ ± h u and restored bit for bit afterwards.

    Example:
        >>> hv = hessian_vector_product(lambda: F.mse_loss(model(x), y),
        ...                             list(model.parameters()), np.ones(n))
    """
    params = _param_list(params)
    as_list = isinstance(v, (list, tuple))
    flat = _flatten([getattr(a, "_data", a) for a in v]) if as_list else \
        np.asarray(v, dtype=np.float64).reshape(-1)
    n = num_params(params)
    if flat.size != n:
        raise ValueError(f"hessian_vector_product: v has {flat.size} entries but the parameters "
                         f"have {n}")
    norm = float(np.linalg.norm(flat))
    if norm == 0.0:
        out = np.zeros(n)
        return _split(out, params) if as_list else out
    h = _default_eps(params) if eps is None else float(eps)
    u = _split(flat / norm, params)

    def bump():
        for p in params:
            p._version += 1

    out = central_difference(lambda: flat_grad(loss_fn, params)[1], [p._data for p in params],
                             h, direction=u, on_change=bump) * norm
    return _split(out, params) if as_list else out


def hessian_dense(loss_fn, params, eps: float | None = None, symmetrize: bool = True
                  ) -> np.ndarray:
    """The n×n Hessian from n Hessian-vector products on the basis vectors (2n backward passes);
    for small nets and tests. Symmetrized ((H + Hᵀ)/2) unless ``symmetrize=False``."""
    params = _param_list(params)
    n = num_params(params)
    H = np.empty((n, n))
    e = np.zeros(n)
    for i in range(n):
        e[i] = 1.0
        H[:, i] = hessian_vector_product(loss_fn, params, e, eps)
        e[i] = 0.0
    return (H + H.T) / 2.0 if symmetrize else H


# --- a model, a loss and a batch ---------------------------------------------------------------

def _as_array(a):
    return a._data if isinstance(a, Tensor) else np.asarray(a)


def _probe(model, loss_fn, batch, dtype):
    """A closure over a (float64) copy of ``model`` in eval mode on a fixed batch."""
    x, y = batch
    x, y = _as_array(x), _as_array(y)
    model = copy.deepcopy(model)  # the model itself is never moved nor switched to eval
    if dtype is not None:
        model.double() if np.dtype(dtype) == np.float64 else model.float()
        if x.dtype.kind == "f":
            x = x.astype(dtype)
        if y.dtype.kind == "f":
            y = y.astype(dtype)
    model.eval()
    xt, yt = Tensor._wrap(x, None, False), Tensor._wrap(y, None, False)
    params = _param_list(list(model.parameters()))

    def closure():
        return loss_fn(model(xt), yt)

    return closure, params


@dataclass
class HessianEigs:
    """Extreme eigenvalues of the Hessian: ``top`` (largest first), ``bottom`` (smallest
    first); ``vectors`` maps "top"/"bottom" to (n, k) eigenvectors when asked for."""
    top: np.ndarray
    bottom: np.ndarray
    n_params: int
    matvecs: int
    method: str
    vectors: dict = field(default_factory=dict, repr=False)

    @property
    def max(self) -> float:
        return float(self.top[0]) if self.top.size else float(self.bottom[-1])

    @property
    def min(self) -> float:
        return float(self.bottom[0]) if self.bottom.size else float(self.top[-1])


def _lanczos_operator(closure, params, eps, counter):
    from scipy.sparse.linalg import LinearOperator

    n = num_params(params)

    def matvec(v):
        counter[0] += 1
        return hessian_vector_product(closure, params, np.asarray(v).reshape(-1), eps)

    return LinearOperator((n, n), matvec=matvec, dtype=np.float64)


def hessian_eigs(model, loss_fn, batch, k: int = 6, which: str = "both",
                 dtype=np.float64, eps: float | None = None, tol: float = 1e-6,
                 maxiter: int | None = None, method: str = "auto", dense_limit: int = 400,
                 return_vectors: bool = False, seed: int = 0) -> HessianEigs:
    """The ``k`` largest (``which="top"``), smallest (``"bottom"``) or both extremes of the
    spectrum of the Hessian of ``loss_fn(model(x), y)`` on ``batch = (x, y)``.

    ``method="lanczos"`` runs ``scipy.sparse.linalg.eigsh`` (implicitly restarted Lanczos,
    ARPACK) on a LinearOperator whose matvec is ``hessian_vector_product``: a few dozen to a few
    hundred products, never the n×n matrix. ``"dense"`` builds the matrix (n products) and calls
    ``numpy.linalg.eigh``; ``"auto"`` picks dense for n <= ``dense_limit``. The model is probed
    in eval mode on a copy cast to ``dtype`` (``dtype=None``: kept in the model's dtype).

    Example:
        >>> e = hessian_eigs(model, F.cross_entropy, (x, y), k=5)
        >>> e.top, e.bottom   # λ_max ... and λ_min ...; e.min < 0 means a saddle direction
    """
    if which not in ("top", "bottom", "both"):
        raise ValueError(f"hessian_eigs: which must be 'top', 'bottom' or 'both', got {which!r}")
    if method not in ("auto", "lanczos", "dense"):
        raise ValueError(f"hessian_eigs: method must be 'auto', 'lanczos' or 'dense', got "
                         f"{method!r}")
    closure, params = _probe(model, loss_fn, batch, dtype)
    n = num_params(params)
    if k < 1:
        raise ValueError(f"hessian_eigs: k must be >= 1, got {k}")
    if method == "auto":
        method = "dense" if n <= dense_limit or k >= n - 1 else "lanczos"
    if method == "lanczos" and k >= n - 1:
        raise ValueError(f"hessian_eigs: Lanczos needs k < n - 1 (k={k}, n={n}); use "
                         "method='dense'")
    want = ("top", "bottom") if which == "both" else (which,)
    vectors: dict = {}
    if method == "dense":
        H = hessian_dense(closure, params, eps)
        w, V = np.linalg.eigh(H)
        k = min(k, n)
        top = w[::-1][:k] if "top" in want else np.empty(0)
        bottom = w[:k] if "bottom" in want else np.empty(0)
        if return_vectors:
            if "top" in want:
                vectors["top"] = V[:, ::-1][:, :k]
            if "bottom" in want:
                vectors["bottom"] = V[:, :k]
        return HessianEigs(top, bottom, n, n, "dense", vectors)
    from scipy.sparse.linalg import eigsh

    counter = [0]
    op = _lanczos_operator(closure, params, eps, counter)
    v0 = np.random.default_rng(seed).standard_normal(n)
    top, bottom = np.empty(0), np.empty(0)
    for side in want:
        w, V = eigsh(op, k=k, which="LA" if side == "top" else "SA", v0=v0, tol=tol,
                     maxiter=maxiter)
        order = np.argsort(w)[::-1] if side == "top" else np.argsort(w)
        w, V = w[order], V[:, order]
        if side == "top":
            top = w
        else:
            bottom = w
        if return_vectors:
            vectors[side] = V
    return HessianEigs(top, bottom, n, counter[0], "lanczos", vectors)


def spectrum_fraction_below(model, loss_fn, batch, threshold: float = 0.0, probes: int = 8,
                            steps: int = 60, dtype=np.float64, eps: float | None = None,
                            seed: int = 0) -> float:
    """Stochastic Lanczos quadrature (Golub & Meurant; Ghorbani et al. 2019): an estimate of the
    fraction of Hessian eigenvalues below ``threshold`` from ``probes`` Rademacher vectors and
    ``steps`` Lanczos steps each (with full reorthogonalisation), ``probes·steps`` products."""
    closure, params = _probe(model, loss_fn, batch, dtype)
    n = num_params(params)
    steps = min(steps, n)
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(probes):
        q = rng.choice((-1.0, 1.0), size=n) / math.sqrt(n)
        Q = np.zeros((steps, n))
        alpha, beta = np.zeros(steps), np.zeros(steps)
        m = steps
        for j in range(steps):
            Q[j] = q
            w = hessian_vector_product(closure, params, q, eps)
            alpha[j] = q @ w
            w = w - Q[:j + 1].T @ (Q[:j + 1] @ w)  # full reorthogonalisation (twice)
            w = w - Q[:j + 1].T @ (Q[:j + 1] @ w)
            b = float(np.linalg.norm(w))
            if j + 1 < steps:
                if b < 1e-10:
                    m = j + 1
                    break
                beta[j] = b
                q = w / b
        T = np.diag(alpha[:m]) + np.diag(beta[:m - 1], 1) + np.diag(beta[:m - 1], -1)
        nodes, vecs = np.linalg.eigh(T)
        total += float(np.sum(vecs[0] ** 2 * (nodes < threshold)))
    return total / probes


# --- critical points -------------------------------------------------------------------------

@dataclass
class CriticalPointReport:
    """Where the training stands in the landscape: the loss, ||∇L||, the extreme eigenvalues of
    the Hessian and the index α = fraction of eigenvalues < −tol (Dauphin et al. 2014: α = 0 at a
    minimum, α > 0 at a saddle). ``exact`` says whether the index comes from the whole spectrum
    (dense Hessian) or from a stochastic Lanczos quadrature estimate."""
    loss: float
    grad_norm: float
    n_params: int
    top: np.ndarray
    bottom: np.ndarray
    index: float
    n_negative: float
    tol: float
    exact: bool
    eigenvalues: np.ndarray | None = field(default=None, repr=False)

    @property
    def is_saddle(self) -> bool:
        return self.index > 0

    def as_dict(self) -> dict:
        return {"loss": self.loss, "grad_norm": self.grad_norm, "n_params": self.n_params,
                "lambda_max": float(self.top[0]), "lambda_min": float(self.bottom[0]),
                "top": [float(v) for v in self.top], "bottom": [float(v) for v in self.bottom],
                "index": self.index, "n_negative": self.n_negative, "tol": self.tol,
                "exact": self.exact}


def critical_point_report(model, loss_fn, batch, k: int = 5, rtol: float = 1e-4,
                          dense_limit: int = 3000, dtype=np.float64, eps: float | None = None,
                          probes: int = 8, steps: int = 60, seed: int = 0
                          ) -> CriticalPointReport:
    """Loss, gradient norm, ``k`` extreme eigenvalues at each end and the index of the Hessian
    of ``loss_fn(model(x), y)`` on ``batch``.

    An eigenvalue counts as negative when it is below −tol, tol = ``rtol``·max|λ| (the sign of
    an eigenvalue within round-off of 0 means nothing). With n <= ``dense_limit`` parameters the
    whole spectrum is computed (n Hessian-vector products) and the index is exact; above it the
    extremes come from Lanczos and the index from ``spectrum_fraction_below``.

    Example:
        >>> r = critical_point_report(model, F.cross_entropy, (x, y))
        >>> r.index, r.bottom[0], r.grad_norm
    """
    closure, params = _probe(model, loss_fn, batch, dtype)
    n = num_params(params)
    loss, g = flat_grad(closure, params)
    gnorm = float(np.linalg.norm(g))
    if n <= dense_limit:
        w = np.linalg.eigvalsh(hessian_dense(closure, params, eps))
        tol = rtol * float(np.max(np.abs(w)))
        neg = int(np.sum(w < -tol))
        k = min(k, n)
        return CriticalPointReport(loss, gnorm, n, w[::-1][:k], w[:k], neg / n, float(neg), tol,
                                   True, w)
    e = hessian_eigs(model, loss_fn, batch, k=k, which="both", dtype=dtype, eps=eps,
                     method="lanczos", seed=seed)
    tol = rtol * max(abs(e.max), abs(e.min))
    frac = spectrum_fraction_below(model, loss_fn, batch, -tol, probes=probes, steps=steps,
                                   dtype=dtype, eps=eps, seed=seed)
    return CriticalPointReport(loss, gnorm, n, e.top, e.bottom, frac, frac * n, tol, False)
