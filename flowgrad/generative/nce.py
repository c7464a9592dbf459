"""Noise-contrastive estimation (lecture slide "Classifiers for modeling distributions";
Gutmann & Hyvärinen, AISTATS 2010 and JMLR 13:307-361, 2012).

An unnormalised model ln p_m(u; θ) = ln p_m⁰(u; α) + c, with the log-normaliser c an ordinary
parameter, is fitted by logistic regression between the T_d data samples x_t and T_n = ν T_d
samples y_t of a known noise density p_n. JMLR 2012, section 2.1:

    J_T(θ) = (1/T_d) { Σ_t ln h(x_t; θ) + Σ_t ln [1 − h(y_t; θ)] },
    h(u; θ) = r_ν(G(u; θ)),  r_ν(u) = 1 / (1 + ν exp(−u)),  G(u; θ) = ln p_m(u; θ) − ln p_n(u),

so h = σ(ln p_m(u) − ln ν p_n(u)): the log-odds of "data" is G − ln ν. (With ν = 1 this is twice
the AISTATS 2010 objective, which averages over the 2T samples.) The loss minimised here is
−J_T, written with binary cross-entropy on those log-odds, stable for any value.
"""

from __future__ import annotations

import math

import numpy as np

import flowgrad as fg
import flowgrad.nn as nn
import flowgrad.nn.functional as F
from flowgrad.errors import ShapeError

LOG_2PI = math.log(2.0 * math.pi)


def _as_tensor(x, dtype=None):
    if isinstance(x, fg.Tensor):
        return x if dtype is None or x.dtype == dtype else x.to(dtype)
    return fg.from_numpy(np.asarray(x)) if dtype is None else fg.tensor(np.asarray(x),
                                                                         dtype=dtype)


def _numpy(x) -> np.ndarray:
    return x.detach().numpy() if isinstance(x, fg.Tensor) else np.asarray(x)


def _check_log_values(op: str, name: str, values, n: int):
    if tuple(values.shape) != (n,):
        raise ShapeError(f"{op}: {name} has shape {tuple(values.shape)}; expected ({n},), one "
                         "log-density per sample")


def nce_loss_from_log_probs(log_pm_data, log_pn_data, log_pm_noise, log_pn_noise):
    """−J_T from the four vectors of log-densities (model and noise, at the T_d data samples
    and at the T_n noise samples); ν = T_n / T_d. Gradients flow through the model's values;
    the noise's are constants."""
    op = "nce_loss"
    t_d, t_n = int(log_pm_data.shape[0]), int(log_pm_noise.shape[0])
    if t_d == 0 or t_n == 0:
        raise ValueError(f"{op}: needs at least one data and one noise sample, got T_d={t_d}, "
                         f"T_n={t_n}")
    _check_log_values(op, "log p_m(data)", log_pm_data, t_d)
    _check_log_values(op, "log p_n(data)", log_pn_data, t_d)
    _check_log_values(op, "log p_m(noise)", log_pm_noise, t_n)
    _check_log_values(op, "log p_n(noise)", log_pn_noise, t_n)
    dtype = log_pm_data.dtype
    log_nu = math.log(t_n / t_d)
    g_data = log_pm_data - _as_tensor(_numpy(log_pn_data), dtype) - log_nu
    g_noise = log_pm_noise - _as_tensor(_numpy(log_pn_noise), dtype) - log_nu
    data_term = F.binary_cross_entropy_with_logits(g_data, fg.ones_like(g_data), reduction="sum")
    noise_term = F.binary_cross_entropy_with_logits(g_noise, fg.zeros_like(g_noise),
                                                    reduction="sum")
    return (data_term + noise_term) / t_d


def nce_loss(model_log_prob, noise_log_prob, data, noise):
    """The NCE loss −J_T (Gutmann & Hyvärinen 2012, section 2.1), ν = len(noise) / len(data).

    Args:
        model_log_prob: callable, samples (n, d) → ln p_m (n,) (normaliser included), a Tensor.
        noise_log_prob: callable, samples → ln p_n (n,) (Tensor or array; no gradient).
        data: (T_d, d) samples of the data; noise: (T_n, d) samples of p_n.
    """
    data, noise = _as_tensor(data), _as_tensor(noise)
    if data.ndim < 1 or noise.ndim < 1 or tuple(data.shape[1:]) != tuple(noise.shape[1:]):
        raise ShapeError(f"nce_loss: data {tuple(data.shape)} and noise {tuple(noise.shape)} "
                         "must be (T_d, *event) and (T_n, *event) with the same event shape")
    if noise.dtype != data.dtype:
        noise = noise.to(data.dtype)
    return nce_loss_from_log_probs(model_log_prob(data), noise_log_prob(data),
                                   model_log_prob(noise), noise_log_prob(noise))


# --- models ---------------------------------------------------------------------------------

class NCEDensity(nn.Module):
    """ln p_m(x) = log_model(x) + c: an unnormalised log-density module and a learned scalar
    log-normaliser c, θ = (α, c) (Gutmann & Hyvärinen 2012, section 2.1)."""

    def __init__(self, log_model: nn.Module, c: float = 0.0, dtype=None) -> None:
        super().__init__()
        self.log_model = log_model
        if dtype is None:
            params = list(log_model.parameters())
            dtype = params[0].dtype if params else fg.float64
        self.c = nn.Parameter(fg.tensor(float(c), dtype=dtype))

    def log_prob(self, x):
        return self.log_model(_as_tensor(x, self.c.dtype)) + self.c

    def forward(self, x):
        return self.log_prob(x)


class UnnormalizedGaussian(nn.Module):
    """ln p_m⁰(x) = −½ (x − μ)ᵀ Λ (x − μ), the precision Λ = L Lᵀ (L lower triangular, or
    Λ = diag(exp(s)) with ``precision="diagonal"``); no normaliser (an unnormalised Gaussian
    with c learned, as in the simulations with artificial data of JMLR 2012, section 4)."""

    def __init__(self, dim: int, precision: str = "full", dtype=fg.float64) -> None:
        super().__init__()
        if precision not in ("full", "diagonal"):
            raise ValueError(f"UnnormalizedGaussian: precision must be 'full' or 'diagonal', "
                             f"got {precision!r}")
        self.dim, self.kind = int(dim), precision
        self.mean = nn.Parameter(fg.zeros(dim, dtype=dtype))
        if precision == "full":
            self.factor = nn.Parameter(fg.eye(dim, dtype=dtype))
            self.register_buffer("mask", fg.tensor(np.tril(np.ones((dim, dim))), dtype=dtype))
        else:
            self.log_precision = nn.Parameter(fg.zeros(dim, dtype=dtype))

    def forward(self, x):
        if x.ndim != 2 or int(x.shape[1]) != self.dim:
            raise ShapeError(f"UnnormalizedGaussian: input of shape {tuple(x.shape)}; expected "
                             f"(n, {self.dim})")
        z = x - self.mean
        if self.kind == "diagonal":
            return -0.5 * (z * z * self.log_precision.exp()).sum(dim=1)
        u = z @ (self.factor * self.mask)  # ‖Lᵀ z‖² = zᵀ L Lᵀ z
        return -0.5 * (u * u).sum(dim=1)

    def precision(self) -> np.ndarray:
        if self.kind == "diagonal":
            return np.diag(np.exp(_numpy(self.log_precision).astype(np.float64)))
        lower = _numpy(self.factor).astype(np.float64) * np.tril(np.ones((self.dim,) * 2))
        return lower @ lower.T


class MLPLogDensity(nn.Module):
    """ln p_m⁰(x) = f(x) − ½ exp(a) ‖x‖²: a tanh MLP f (bounded, so any shape can be learned)
    under a Gaussian envelope of learned width, which keeps exp(ln p_m⁰) integrable."""

    def __init__(self, in_features: int, hidden=(64, 64), dtype=fg.float64) -> None:
        super().__init__()
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h, dtype=dtype), nn.Tanh()]
            width = h
        layers.append(nn.Linear(width, 1, dtype=dtype))
        self.net = nn.Sequential(*layers)
        self.log_curvature = nn.Parameter(fg.tensor(-1.0, dtype=dtype))
        self.in_features = int(in_features)

    def forward(self, x):
        if x.ndim != 2 or int(x.shape[1]) != self.in_features:
            raise ShapeError(f"MLPLogDensity: input of shape {tuple(x.shape)}; expected "
                             f"(n, {self.in_features})")
        return self.net(x).squeeze(1) - 0.5 * self.log_curvature.exp() * (x * x).sum(dim=1)


# --- noise ----------------------------------------------------------------------------------

class GaussianNoise:
    """A Gaussian noise density N(mean, covariance) with ``sample(n, rng)`` and ``log_prob(x)``
    (NumPy float64); ``GaussianNoise.fit(data, diagonal=False, scale=1.0)`` takes the data's
    mean and covariance (or its variances), the standard deviations multiplied by ``scale``."""

    def __init__(self, mean, covariance) -> None:
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        cov = np.asarray(covariance, dtype=np.float64)
        d = self.mean.size
        if cov.shape != (d, d):
            raise ShapeError(f"GaussianNoise: covariance of shape {cov.shape} for a mean of "
                             f"{d} dimensions; expected ({d}, {d})")
        try:
            self._chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError("GaussianNoise: the covariance is not positive definite") from None
        self.covariance = cov
        self._log_det = 2.0 * np.log(np.diag(self._chol)).sum()

    @classmethod
    def fit(cls, data, diagonal: bool = False, scale: float = 1.0) -> GaussianNoise:
        x = _numpy(data).astype(np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ShapeError(f"GaussianNoise.fit: data of shape {x.shape}; expected (n, d) "
                             "with n ≥ 2")
        if scale <= 0:
            raise ValueError(f"GaussianNoise.fit: scale must be > 0, got {scale}")
        cov = np.cov(x, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1])
        if diagonal:
            cov = np.diag(np.diag(cov))
        return cls(x.mean(0), cov * scale ** 2)

    @property
    def dim(self) -> int:
        return self.mean.size

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.mean + rng.standard_normal((int(n), self.dim)) @ self._chol.T

    def log_prob(self, x) -> np.ndarray:
        x = _numpy(x).astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ShapeError(f"GaussianNoise.log_prob: input of shape {x.shape}; expected "
                             f"(n, {self.dim})")
        z = np.linalg.solve(self._chol, (x - self.mean).T)
        return -0.5 * ((z * z).sum(0) + self._log_det + self.dim * LOG_2PI)


# --- fitting and references -----------------------------------------------------------------

def gaussian_log_normalizer(precision) -> float:
    """−ln Z of exp(−½ (x − μ)ᵀ Λ (x − μ)): ½ ln det Λ − (d/2) ln 2π."""
    lam = np.asarray(precision, dtype=np.float64)
    return 0.5 * np.linalg.slogdet(lam)[1] - 0.5 * lam.shape[0] * LOG_2PI


def gaussian_mle(data) -> dict:
    """Maximum likelihood for a Gaussian (the normalised model): the sample mean, the inverse
    of the (biased) sample covariance, and c = −ln Z at that precision."""
    x = _numpy(data).astype(np.float64)
    cov = np.cov(x, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1])
    precision = np.linalg.inv(cov)
    return {"mean": x.mean(0), "precision": precision,
            "c": gaussian_log_normalizer(precision)}


def fit_nce_lbfgs(density: NCEDensity, noise, data, nu: float, rng: np.random.Generator,
                  max_iter: int = 500, tolerance_grad: float = 1e-9) -> dict:
    """Maximise J_T with one fixed noise sample of ν·T_d points (as the papers do), full batch,
    by L-BFGS with a strong-Wolfe line search. Returns the final loss and the iteration count."""
    if nu <= 0:
        raise ValueError(f"fit_nce_lbfgs: ν must be > 0, got {nu}")
    dtype = density.c.dtype
    x = _as_tensor(_numpy(data).astype(np.float64), dtype)
    y_np = noise.sample(max(1, round(nu * int(x.shape[0]))), rng)
    y = _as_tensor(y_np, dtype)
    log_pn_x, log_pn_y = noise.log_prob(x), noise.log_prob(y_np)
    opt = fg.optim.LBFGS(density.parameters(), lr=1.0, max_iter=max_iter,
                         tolerance_grad=tolerance_grad, tolerance_change=1e-12,
                         line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nce_loss_from_log_probs(density.log_prob(x), log_pn_x, density.log_prob(y),
                                       log_pn_y)
        loss.backward()
        return loss

    opt.step(closure)
    with fg.no_grad():
        final = nce_loss_from_log_probs(density.log_prob(x), log_pn_x, density.log_prob(y),
                                        log_pn_y).item()
    state = opt.state[next(iter(density.parameters()))]
    return {"loss": final, "iterations": int(state.get("n_iter", 0)), "nu": nu,
            "noise_samples": int(y.shape[0])}
