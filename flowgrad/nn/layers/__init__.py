"""Layers with PyTorch's names, constructor arguments, parameter layouts and default
initialisation, one file per family."""

from .activation import *  # noqa: F403
from .activation import __all__ as _activation
from .adaptive import AdaptiveLogSoftmaxWithLoss
from .additive_attention import AdditiveAttention, DotProductAttention
from .attention import *  # noqa: F403
from .attention import __all__ as _attention
from .conv import *  # noqa: F403
from .conv import __all__ as _conv
from .dropout import *  # noqa: F403
from .dropout import __all__ as _dropout
from .embedding import *  # noqa: F403
from .embedding import __all__ as _embedding
from .linear import *  # noqa: F403
from .linear import __all__ as _linear
from .loss import *  # noqa: F403
from .loss import __all__ as _loss
from .maxout import Maxout
from .normalization import *  # noqa: F403
from .normalization import __all__ as _normalization
from .padding import *  # noqa: F403
from .padding import __all__ as _padding
from .pooling import *  # noqa: F403
from .pooling import __all__ as _pooling
from .positional import *  # noqa: F403
from .positional import __all__ as _positional
from .recurrent import *  # noqa: F403
from .recurrent import __all__ as _recurrent
from .resampling import *  # noqa: F403
from .resampling import __all__ as _resampling
from .sampled import *  # noqa: F403
from .sampled import __all__ as _sampled
from .shape import *  # noqa: F403
from .shape import __all__ as _shape
from .transformer import *  # noqa: F403
from .transformer import __all__ as _transformer

__all__ = (_activation + _conv + _dropout + _embedding + _linear + _loss + _normalization
           + _padding + _pooling + _resampling + _shape + _recurrent)
__all__ += _sampled
__all__ += _attention
__all__ += _transformer
__all__ += _positional
__all__ += ["AdditiveAttention", "DotProductAttention"]
__all__ += ["Maxout"]
__all__ += ["AdaptiveLogSoftmaxWithLoss"]
