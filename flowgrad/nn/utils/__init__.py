"""Utilities over parameters and gradients (PyTorch's ``torch.nn.utils``)."""

from . import rnn  # noqa: F401 - the submodule fg.nn.utils.rnn
from .clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
           "parameters_to_vector", "vector_to_parameters"]
