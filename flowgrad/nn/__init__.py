"""Neural-network building blocks with PyTorch's ``torch.nn`` surface: Module and Parameter,
containers, layers, ``functional`` (stateless ops), ``init`` and ``utils``.

Example:
    >>> import flowgrad as fg
    >>> from flowgrad import nn
    >>> net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    >>> [k for k in net.state_dict()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
"""

from . import functional, init, parallel, utils
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .layers import *  # noqa: F403
from .layers import __all__ as _layers
from .module import Module, RemovableHandle
from .parameter import Parameter

__all__ = (["Module", "Parameter", "RemovableHandle", "Sequential", "ModuleList", "ModuleDict",
            "ParameterList", "ParameterDict", "functional", "init", "parallel", "utils"]
           + list(_layers))
