"""flowgrad.nn.functional (everything but the losses, which are in specs/loss.py): each entry
runs the same lambda with m=flowgrad and m=torch."""

import numpy as np

from flowgrad.ops.activation import Elu, Gelu, LeakyRelu, Relu, Sigmoid, Silu, Softplus, Tanh
from flowgrad.ops.attention import Attention
from flowgrad.ops.indexing import Embedding, IndexSelect
from flowgrad.ops.linalg import Bilinear, Linear, MatMul
from flowgrad.ops.normalization import BatchNorm, LayerNorm
from flowgrad.ops.reduction import LogSoftmax, Norm2, Softmax
from flowgrad.ops.shape import Pad

from opspec import OpSpec


def F(m):
    return m.nn.functional


def _away(rng, shape, kinks=(0.0,), gap=1e-2, low=-2.0, high=2.0):
    """Uniform values kept at least ``gap`` from every kink (finite differences need it)."""
    x = rng.uniform(low, high, size=shape)
    for k in kinks:
        near = np.abs(x - k) < gap
        x = np.where(near, k + np.sign(x - k + 1e-12) * (gap + np.abs(x - k)), x)
    return x


def _ints(*arrays):
    return lambda rng: tuple(np.asarray(a, dtype=np.int64) for a in arrays)


def _tokens(high, shape):
    return lambda rng: (rng.integers(0, high, size=shape),)


_CAUSAL_DEAD = np.array([[True, False, True, False, False],
                         [False, False, False, False, False],
                         [True, True, False, False, True]])
_KEEP = np.array([[True, False, True, True, False],
                  [True, True, False, False, True],
                  [False, False, True, True, True]])
_FLOAT_MASK = np.array([[0.0, -1.0, 0.5, -np.inf, 0.0],
                        [-np.inf, -np.inf, -np.inf, -np.inf, -np.inf],
                        [1.0, 0.0, -0.5, 0.0, -np.inf]])

SPECS = [
    # --- non-linearities --------------------------------------------------------------------
    OpSpec("F.relu", lambda m, x: F(m).relu(x), avoid_kinks=1e-2, covers=(Relu,)),
    OpSpec("F.relu6", lambda m, x: F(m).relu6(x * 4),
           make=lambda rng: [_away(rng, (3, 4), (0.0, 1.5))]),
    OpSpec("F.leaky_relu", lambda m, x: F(m).leaky_relu(x), avoid_kinks=1e-2,
           covers=(LeakyRelu,)),
    OpSpec("F.leaky_relu_slope", lambda m, x: F(m).leaky_relu(x, 0.2), avoid_kinks=1e-2),
    OpSpec("F.elu", lambda m, x: F(m).elu(x), avoid_kinks=1e-2, covers=(Elu,)),
    OpSpec("F.elu_alpha", lambda m, x: F(m).elu(x, alpha=0.5), avoid_kinks=1e-2),
    OpSpec("F.selu", lambda m, x: F(m).selu(x), avoid_kinks=1e-2),
    OpSpec("F.celu", lambda m, x: F(m).celu(x, alpha=2.0), avoid_kinks=1e-2),
    OpSpec("F.gelu", lambda m, x: F(m).gelu(x), covers=(Gelu,)),
    OpSpec("F.gelu_tanh", lambda m, x: F(m).gelu(x, approximate="tanh")),
    OpSpec("F.silu", lambda m, x: F(m).silu(x), covers=(Silu,)),
    OpSpec("F.mish", lambda m, x: F(m).mish(x)),
    OpSpec("F.softplus", lambda m, x: F(m).softplus(x), covers=(Softplus,)),
    OpSpec("F.softplus_beta_threshold", lambda m, x: F(m).softplus(x, beta=2.0, threshold=1.0),
           make=lambda rng: [_away(rng, (3, 4), (0.5,))]),
    OpSpec("F.sigmoid", lambda m, x: F(m).sigmoid(x), covers=(Sigmoid,)),
    OpSpec("F.tanh", lambda m, x: F(m).tanh(x), covers=(Tanh,)),
    OpSpec("F.logsigmoid", lambda m, x: F(m).logsigmoid(x * 10)),
    OpSpec("F.hardtanh", lambda m, x: F(m).hardtanh(x),
           make=lambda rng: [_away(rng, (3, 4), (-1.0, 1.0))]),
    OpSpec("F.hardtanh_range", lambda m, x: F(m).hardtanh(x, -0.5, 1.5),
           make=lambda rng: [_away(rng, (3, 4), (-0.5, 1.5))]),
    OpSpec("F.hardsigmoid", lambda m, x: F(m).hardsigmoid(x * 3),
           make=lambda rng: [_away(rng, (3, 4), (-1.0, 1.0))]),
    OpSpec("F.hardswish", lambda m, x: F(m).hardswish(x * 3),
           make=lambda rng: [_away(rng, (3, 4), (-1.0, 1.0))]),
    OpSpec("F.softsign", lambda m, x: F(m).softsign(x), avoid_kinks=1e-2),
    OpSpec("F.tanhshrink", lambda m, x: F(m).tanhshrink(x)),
    OpSpec("F.softshrink", lambda m, x: F(m).softshrink(x, 0.5),
           make=lambda rng: [_away(rng, (3, 4), (-0.5, 0.5))]),
    OpSpec("F.hardshrink", lambda m, x: F(m).hardshrink(x, 0.5),
           make=lambda rng: [_away(rng, (3, 4), (-0.5, 0.5))]),
    OpSpec("F.threshold", lambda m, x: F(m).threshold(x, 0.3, -1.0),
           make=lambda rng: [_away(rng, (3, 4), (0.3,))]),
    OpSpec("F.prelu_channels", lambda m, x, w: F(m).prelu(x, w), shapes=((2, 3, 4), (3,)),
           avoid_kinks=1e-2),
    OpSpec("F.prelu_shared", lambda m, x, w: F(m).prelu(x, w), shapes=((3, 4), (1,)),
           avoid_kinks=1e-2),
    OpSpec("F.glu", lambda m, x: F(m).glu(x), shapes=((3, 6),)),
    OpSpec("F.glu_dim0", lambda m, x: F(m).glu(x, dim=0), shapes=((4, 3),)),
    OpSpec("F.softmax", lambda m, x: F(m).softmax(x, dim=1), covers=(Softmax,)),
    OpSpec("F.softmax_dim0_3d", lambda m, x: F(m).softmax(x, dim=0), shapes=((3, 2, 4),)),
    OpSpec("F.softmax_neg_dim", lambda m, x: F(m).softmax(x, dim=-1), shapes=((2, 3, 4),)),
    OpSpec("F.softmax_dtype", lambda m, x: F(m).softmax(x, dim=1, dtype=m.float64),
           dtypes=("float32",)),
    OpSpec("F.softmin", lambda m, x: F(m).softmin(x, dim=1)),
    OpSpec("F.log_softmax", lambda m, x: F(m).log_softmax(x, dim=1), covers=(LogSoftmax,)),
    OpSpec("F.log_softmax_3d", lambda m, x: F(m).log_softmax(x, dim=-2), shapes=((2, 3, 4),)),
    OpSpec("F.log_softmax_dtype", lambda m, x: F(m).log_softmax(x, 0, dtype=m.float64),
           dtypes=("float32",)),
    OpSpec("F.log_softmax_big", lambda m, x: F(m).log_softmax(x * 1e4, dim=1), tol32=(1e-2, 1e-4),
           fd=False),
    # --- dropout in its deterministic corners (statistics: test_functional_behaviour.py) ----
    OpSpec("F.dropout_eval", lambda m, x: F(m).dropout(x, 0.5, training=False)),
    OpSpec("F.dropout_p0", lambda m, x: F(m).dropout(x, 0.0)),
    OpSpec("F.dropout2d_eval", lambda m, x: F(m).dropout2d(x, 0.3, training=False),
           shapes=((2, 3, 2, 2),)),
    # --- linear maps and lookups -------------------------------------------------------------
    OpSpec("F.linear", lambda m, x, w, b: F(m).linear(x, w, b), shapes=((5, 4), (3, 4), (3,)),
           covers=(Linear,)),
    OpSpec("F.linear_nobias_3d", lambda m, x, w: F(m).linear(x, w), shapes=((2, 5, 4), (3, 4))),
    OpSpec("F.linear_1d", lambda m, x, w, b: F(m).linear(x, w, b), shapes=((4,), (3, 4), (3,))),
    OpSpec("F.bilinear", lambda m, x1, x2, w, b: F(m).bilinear(x1, x2, w, b),
           shapes=((4, 3), (4, 2), (5, 3, 2), (5,)), covers=(Bilinear,)),
    OpSpec("F.bilinear_nobias_3d", lambda m, x1, x2, w: F(m).bilinear(x1, x2, w),
           shapes=((2, 3, 3), (2, 3, 2), (4, 3, 2))),
    OpSpec("F.embedding", lambda m, w, i: F(m).embedding(i, w), shapes=((6, 4),),
           consts=_ints([[0, 2, 5], [2, 2, 1]]), covers=(Embedding,)),
    OpSpec("F.embedding_padding", lambda m, w, i: F(m).embedding(i, w, padding_idx=2),
           shapes=((6, 4),), consts=_ints([[0, 2, 5], [2, 3, 1]]), fd=False),  # grad is not d/dw
    OpSpec("F.embedding_padding_neg", lambda m, w, i: F(m).embedding(i, w, padding_idx=-1),
           shapes=((6, 4),), consts=_ints([4, 5, 5, 0]), fd=False),
    OpSpec("F.embedding_scale_grad_by_freq",
           lambda m, w, i: F(m).embedding(i, w, scale_grad_by_freq=True), shapes=((6, 4),),
           consts=_ints([[0, 2, 5], [2, 2, 0]]), fd=False),
    OpSpec("F.embedding_max_norm", lambda m, w, i: F(m).embedding(i, w, max_norm=1.0),
           shapes=((6, 4),), consts=_ints([[0, 2, 5], [2, 2, 1]]), fd=False),
    OpSpec("F.one_hot", lambda m, i: F(m).one_hot(i, 5), shapes=(), grad=False,
           consts=_ints([[0, 4, 2], [1, 1, 3]])),
    OpSpec("F.one_hot_infer", lambda m, i: F(m).one_hot(i), shapes=(), grad=False,
           consts=_ints([0, 3, 2])),
    # --- normalisation -----------------------------------------------------------------------
    OpSpec("F.layer_norm", lambda m, x, w, b: F(m).layer_norm(x, (4,), w, b),
           shapes=((3, 5, 4), (4,), (4,)), tol32=(1e-4, 1e-4), covers=(LayerNorm,)),
    OpSpec("F.layer_norm_weight_only", lambda m, x, w: F(m).layer_norm(x, (6,), w),
           shapes=((4, 6), (6,)), tol32=(1e-4, 1e-4)),
    OpSpec("F.layer_norm_bias_only", lambda m, x, b: F(m).layer_norm(x, (6,), None, b),
           shapes=((2, 2, 6), (6,)), tol32=(1e-4, 1e-4)),
    OpSpec("F.layer_norm_list_shape", lambda m, x: F(m).layer_norm(x, [4]), shapes=((5, 4),),
           tol32=(1e-4, 1e-4)),
    OpSpec("F.layer_norm_2dims", lambda m, x, w, b: F(m).layer_norm(x, [3, 4], w, b, eps=1e-3),
           shapes=((2, 3, 4), (3, 4), (3, 4)), tol32=(1e-4, 1e-4)),
    OpSpec("F.rms_norm", lambda m, x, w: F(m).rms_norm(x, [4], w), shapes=((3, 5, 4), (4,)),
           tol32=(1e-4, 1e-4)),
    OpSpec("F.rms_norm_eps", lambda m, x: F(m).rms_norm(x, (2, 4), eps=1e-4),
           shapes=((3, 2, 4),), tol32=(1e-4, 1e-4)),
    OpSpec("F.batch_norm_train",
           lambda m, x, w, b, rm, rv: F(m).batch_norm(x, rm, rv, w, b, training=True),
           shapes=((4, 3, 2, 2), (3,), (3,)), consts=lambda rng: (np.zeros(3), np.ones(3)),
           tol32=(1e-4, 1e-4), covers=(BatchNorm,)),
    OpSpec("F.batch_norm_train_weight_only",
           lambda m, x, w: F(m).batch_norm(x, None, None, w, None, training=True),
           shapes=((5, 2, 3), (2,)), tol32=(1e-4, 1e-4)),
    OpSpec("F.batch_norm_train_2d_noaffine",
           lambda m, x: F(m).batch_norm(x, None, None, training=True, eps=1e-3),
           shapes=((6, 4),), tol32=(1e-4, 1e-4)),
    OpSpec("F.batch_norm_train_3d_momentum",
           lambda m, x, w, b, rm, rv: F(m).batch_norm(x, rm, rv, w, b, True, 0.3),
           shapes=((3, 2, 5), (2,), (2,)),
           consts=lambda rng: (rng.uniform(-1, 1, 2), rng.uniform(0.5, 2, 2)),
           tol32=(1e-4, 1e-4)),
    OpSpec("F.batch_norm_eval",
           lambda m, x, w, b, rm, rv: F(m).batch_norm(x, rm, rv, w, b, training=False),
           shapes=((4, 3, 2, 2), (3,), (3,)),
           consts=lambda rng: (rng.uniform(-1, 1, 3), rng.uniform(0.5, 2, 3))),
    OpSpec("F.batch_norm_eval_noaffine",
           lambda m, x, rm, rv: F(m).batch_norm(x, rm, rv), shapes=((5, 3),),
           consts=lambda rng: (rng.uniform(-1, 1, 3), rng.uniform(0.5, 2, 3))),
    OpSpec("F.instance_norm", lambda m, x, w, b: F(m).instance_norm(x, weight=w, bias=b),
           shapes=((2, 3, 4, 2), (3,), (3,)), tol32=(1e-4, 1e-4)),
    OpSpec("F.instance_norm_running",
           lambda m, x, rm, rv: F(m).instance_norm(x, rm, rv), shapes=((2, 3, 5),),
           consts=lambda rng: (np.zeros(3), np.ones(3)), tol32=(1e-4, 1e-4)),
    OpSpec("F.group_norm", lambda m, x, w, b: F(m).group_norm(x, 2, w, b),
           shapes=((2, 4, 3, 2), (4,), (4,)), tol32=(1e-4, 1e-4)),
    OpSpec("F.group_norm_noaffine_3d", lambda m, x: F(m).group_norm(x, 3, eps=1e-3),
           shapes=((2, 6, 4),), tol32=(1e-4, 1e-4)),
    OpSpec("F.group_norm_one_group", lambda m, x: F(m).group_norm(x, 1), shapes=((3, 4, 5),),
           tol32=(1e-4, 1e-4)),
    OpSpec("F.normalize", lambda m, x: F(m).normalize(x), covers=(Norm2,)),
    OpSpec("F.normalize_p1_dim0", lambda m, x: F(m).normalize(x, p=1, dim=0), avoid_kinks=1e-2),
    OpSpec("F.normalize_p3_last", lambda m, x: F(m).normalize(x, 3.0, -1), shapes=((2, 3, 4),),
           avoid_kinks=1e-2),
    OpSpec("F.cosine_similarity", lambda m, a, b: F(m).cosine_similarity(a, b),
           shapes=((4, 5), (4, 5))),
    OpSpec("F.cosine_similarity_dim_broadcast",
           lambda m, a, b: F(m).cosine_similarity(a, b, dim=-1, eps=1e-6),
           shapes=((3, 2, 4), (2, 4))),
    OpSpec("F.pairwise_distance", lambda m, a, b: F(m).pairwise_distance(a, b),
           shapes=((4, 5), (4, 5))),
    OpSpec("F.pairwise_distance_p1_keepdim",
           lambda m, a, b: F(m).pairwise_distance(a, b, p=1.0, keepdim=True),
           shapes=((4, 5), (4, 5)), avoid_kinks=1e-2, fd=False),
    # --- padding -----------------------------------------------------------------------------
    OpSpec("F.pad_constant", lambda m, x: F(m).pad(x, (1, 2)), covers=(Pad,)),
    OpSpec("F.pad_constant_value_2d", lambda m, x: F(m).pad(x, (1, 0, 2, 1), value=-3.0),
           shapes=((2, 3, 4),)),
    OpSpec("F.pad_constant_crop", lambda m, x: F(m).pad(x, (-1, 2, 1, -1)), shapes=((3, 4),)),
    OpSpec("F.pad_constant_all_dims", lambda m, x: F(m).pad(x, (1, 1, 0, 1, 2, 0)),
           shapes=((2, 3, 2),)),
    OpSpec("F.pad_reflect_1d", lambda m, x: F(m).pad(x, (2, 3), mode="reflect"),
           shapes=((2, 3, 5),), covers=(IndexSelect,)),
    OpSpec("F.pad_reflect_2d", lambda m, x: F(m).pad(x, (1, 2, 2, 1), mode="reflect"),
           shapes=((1, 2, 4, 3),)),
    OpSpec("F.pad_replicate_1d", lambda m, x: F(m).pad(x, (3, 1), mode="replicate"),
           shapes=((2, 3, 4),)),
    OpSpec("F.pad_replicate_2d", lambda m, x: F(m).pad(x, (2, 1, 1, 3), mode="replicate"),
           shapes=((2, 2, 3, 3),)),
    OpSpec("F.pad_replicate_3d", lambda m, x: F(m).pad(x, (1, 1, 1, 0, 0, 2), mode="replicate"),
           shapes=((1, 2, 3, 3, 3),)),
    OpSpec("F.pad_circular_1d", lambda m, x: F(m).pad(x, (2, 4), mode="circular"),
           shapes=((2, 3, 4),)),
    OpSpec("F.pad_circular_2d", lambda m, x: F(m).pad(x, (1, 2, 3, 0), mode="circular"),
           shapes=((1, 2, 3, 4),)),
    OpSpec("F.pad_reflect_unbatched", lambda m, x: F(m).pad(x, (1, 1), mode="reflect"),
           shapes=((3, 4),)),
    # --- attention ---------------------------------------------------------------------------
    OpSpec("F.sdpa", lambda m, q, k, v: F(m).scaled_dot_product_attention(q, k, v),
           shapes=((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)), covers=(Attention,)),
    OpSpec("F.sdpa_3d_scale", lambda m, q, k, v: F(m).scaled_dot_product_attention(
        q, k, v, scale=0.3), shapes=((2, 3, 4), (2, 5, 4), (2, 5, 3))),
    OpSpec("F.sdpa_causal", lambda m, q, k, v: F(m).scaled_dot_product_attention(
        q, k, v, is_causal=True), shapes=((2, 2, 4, 3), (2, 2, 4, 3), (2, 2, 4, 3))),
    OpSpec("F.sdpa_causal_rect", lambda m, q, k, v: F(m).scaled_dot_product_attention(
        q, k, v, is_causal=True), shapes=((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4))),
    OpSpec("F.sdpa_bool_mask", lambda m, q, k, v, mask: F(m).scaled_dot_product_attention(
        q, k, v, attn_mask=mask), shapes=((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)),
        consts=lambda rng: (_KEEP,)),
    OpSpec("F.sdpa_bool_mask_dead_row", lambda m, q, k, v, mask:
           F(m).scaled_dot_product_attention(q, k, v, attn_mask=~mask),
           shapes=((2, 3, 4), (2, 5, 4), (2, 5, 4)), consts=lambda rng: (_CAUSAL_DEAD,)),
    OpSpec("F.sdpa_bool_mask_batched", lambda m, q, k, v, mask:
           F(m).scaled_dot_product_attention(q, k, v, attn_mask=mask),
           shapes=((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)),
           consts=lambda rng: (np.stack([_KEEP, _KEEP[::-1]])[:, None],)),
    OpSpec("F.sdpa_float_mask", lambda m, q, k, v, mask: F(m).scaled_dot_product_attention(
        q, k, v, attn_mask=mask), shapes=((2, 3, 4), (2, 5, 4), (2, 5, 4)),
        consts=lambda rng: (_FLOAT_MASK,)),
    # a float mask that needs a gradient takes the recorded composition of matmuls and softmax
    OpSpec("F.sdpa_float_mask_grad", lambda m, q, k, v, mask: F(m).scaled_dot_product_attention(
        q, k, v, attn_mask=mask), shapes=((2, 3, 4), (2, 5, 4), (2, 5, 4), (3, 5)),
        covers=(MatMul,)),
    OpSpec("F.sdpa_gqa", lambda m, q, k, v: F(m).scaled_dot_product_attention(
        q, k, v, enable_gqa=True), shapes=((1, 4, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4))),
]
