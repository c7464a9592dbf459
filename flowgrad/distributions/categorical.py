"""Categorical(probs=None, logits=None): one of K categories per batch entry."""

from __future__ import annotations

from .. import creation
from ..autograd import no_grad
from ..nn import functional as F
from ..tensor import Tensor
from ..tensor_functions import broadcast_tensors
from . import constraints
from .distribution import Distribution, _full_like
from .utils import finfo, lazy_property, probs_to_logits

__all__ = ["Categorical"]


class Categorical(Distribution):
    """Categories 0..K-1 along the last dim of ``probs`` (normalised to sum to one) or of
    ``logits`` (unnormalised log-probabilities); batch_shape is the shape without that dim."""

    arg_constraints = {"probs": constraints.simplex,
                       "logits": constraints.independent(constraints.real, 1)}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            if not isinstance(probs, Tensor) or probs.dim() < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            if not isinstance(logits, Tensor) or logits.dim() < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.shape[-1]
        batch_shape = tuple(self._param.shape[:-1]) if self._param.dim() > 1 else ()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Categorical, _instance)
        batch_shape = tuple(batch_shape)
        param_shape = batch_shape + (self._num_events,)
        if "probs" in self.__dict__:
            new.probs = self.probs.expand(*param_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = self.logits.expand(*param_shape)
            new._param = new.logits
        new._num_events = self._num_events
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self):
        return F.softmax(self.logits, dim=-1)

    @property
    def param_shape(self) -> tuple:
        return tuple(self._param.shape)

    @property
    def mean(self):
        return _full_like(self.probs.sum(-1), float("nan"))

    @property
    def mode(self):
        return self.probs.argmax(-1)

    @property
    def variance(self):
        return _full_like(self.probs.sum(-1), float("nan"))

    def sample(self, sample_shape=()):
        """Inverse-CDF sampling: count the cumulative probabilities at or below one uniform
        draw per entry (categories of probability zero are never chosen)."""
        shape = self._extended_shape(sample_shape)
        with no_grad():
            probs = self.probs.expand(*shape, self._num_events)
            cdf = probs.cumsum(-1)
            cdf = cdf / cdf.narrow(-1, self._num_events - 1, 1)
            u = creation.rand(shape, dtype=probs.dtype, device=probs.device)
            index = (cdf <= u.unsqueeze(-1)).long().sum(-1)
            return index.clamp(max=self._num_events - 1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = broadcast_tensors(value, self.logits)
        value = value.narrow(-1, 0, 1)
        return log_pmf.gather(-1, value).squeeze(-1)

    def entropy(self):
        logits = self.logits.clamp(min=float(finfo(self.logits.dtype).min))
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True):
        values = creation.arange(self._num_events, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand(self._num_events, *self._batch_shape)
        return values
