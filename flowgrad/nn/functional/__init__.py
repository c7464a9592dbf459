"""Stateless neural-network functions with PyTorch's names, signatures and semantics
(``torch.nn.functional``), taking and returning flowgrad Tensors. One module per family, in the
same groups as the op library (``flowgrad.ops``): activation, dropout, linear, normalization,
distance, padding, attention, loss, conv (convolution and pooling), resampling.

Most are compositions of Tensor ops, so their gradients come from the op library; the losses
that need it for stability or speed call the fused ops of ``flowgrad.ops.loss``.

Example:
    >>> import flowgrad.nn.functional as F
    >>> logits = fg.randn(4, 10, requires_grad=True)
    >>> F.cross_entropy(logits, fg.tensor([1, 0, 9, 3])).backward()
"""

from __future__ import annotations

from .activation import (
    celu,
    elu,
    gelu,
    glu,
    hardshrink,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    log_softmax,
    logsigmoid,
    mish,
    prelu,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softmax,
    softmin,
    softplus,
    softshrink,
    softsign,
    tanh,
    tanhshrink,
    threshold,
)
from .attention import (
    multi_head_attention_forward,
    scaled_dot_product_attention,
)
from .conv import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    conv_transpose1d,
    conv_transpose2d,
    max_pool1d,
    max_pool2d,
)
from .distance import (
    cosine_similarity,
    pairwise_distance,
)
from .dropout import (
    dropout,
    dropout1d,
    dropout2d,
    dropout3d,
)
from .linear import (
    bilinear,
    embedding,
    linear,
    one_hot,
)
from .loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_embedding_loss,
    cross_entropy,
    gaussian_nll_loss,
    hinge_embedding_loss,
    huber_loss,
    kl_div,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    multilabel_soft_margin_loss,
    nll_loss,
    poisson_nll_loss,
    smooth_l1_loss,
    soft_margin_loss,
    triplet_margin_loss,
)
from .normalization import (
    batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    normalize,
    rms_norm,
)
from .padding import (
    pad,
)
from .resampling import (
    interpolate,
    pixel_shuffle,
    pixel_unshuffle,
    upsample,
    upsample_bilinear,
    upsample_nearest,
)
from .sampled import full_log_prob, nce_loss, sample_noise, sampled_softmax_loss, unigram_noise

__all__ = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "avg_pool1d", "avg_pool2d", "batch_norm",
           "bilinear", "binary_cross_entropy", "binary_cross_entropy_with_logits", "celu", "conv1d",
           "conv2d", "conv_transpose1d", "conv_transpose2d", "cosine_embedding_loss",
           "cosine_similarity", "cross_entropy", "dropout", "dropout1d", "dropout2d", "dropout3d",
           "elu", "embedding", "gaussian_nll_loss", "gelu", "glu", "group_norm", "hardshrink",
           "hardsigmoid", "hardswish", "hardtanh", "hinge_embedding_loss", "huber_loss",
           "instance_norm", "interpolate", "kl_div", "l1_loss", "layer_norm", "leaky_relu",
           "linear", "log_softmax", "logsigmoid", "margin_ranking_loss", "max_pool1d", "max_pool2d",
           "mish", "mse_loss", "multilabel_soft_margin_loss", "nll_loss", "normalize", "one_hot",
           "pad", "pairwise_distance", "pixel_shuffle", "pixel_unshuffle", "poisson_nll_loss",
           "prelu", "relu", "relu6", "rms_norm", "scaled_dot_product_attention", "selu", "sigmoid",
           "silu", "smooth_l1_loss", "soft_margin_loss", "softmax", "softmin", "softplus",
           "softshrink", "softsign", "tanh", "tanhshrink", "threshold", "triplet_margin_loss",
           "upsample", "upsample_bilinear", "upsample_nearest"]
__all__ += ["full_log_prob", "nce_loss", "sample_noise", "sampled_softmax_loss", "unigram_noise"]
__all__ += ["multi_head_attention_forward"]
