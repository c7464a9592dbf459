"""Losses of flowgrad.nn.functional and the fused Functions of flowgrad.ops.loss, against
torch.nn.functional with the same lambda (m=flowgrad or m=torch)."""

import numpy as np

import flowgrad as fg
from flowgrad.ops.loss import BCEWithLogits, BinaryCrossEntropy, CrossEntropy, MSELoss, NLLLoss

from opspec import OpSpec


def F(m):
    return m.nn.functional


def _ints(*arrays):
    return lambda rng: tuple(np.asarray(a, dtype=np.int64) for a in arrays)


def _targets(high, shape, ignore=()):
    """Random class indices with some positions set to ignore_index (-100 unless given)."""
    def make(rng):
        t = rng.integers(0, high, size=shape)
        for pos, value in ignore:
            t[pos] = value
        return (t,)
    return make


def _probs(rng, shape, axis=1):
    e = rng.uniform(0.1, 1.0, size=shape)
    return e / e.sum(axis=axis, keepdims=True)


def _log_probs(rng, shape):
    x = rng.uniform(-2, 2, size=shape)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _bce_logits_formula(m, x, y, w, pw):
    """PyTorch's own formula; torch computes no gradient for weight and pos_weight through its
    fused kernel, so the fused flowgrad op is checked against torch autograd of this."""
    if m is fg:
        return F(m).binary_cross_entropy_with_logits(x, y, w, pos_weight=pw)
    return (((1 - y) * x - (1 + (pw - 1) * y) * F(m).logsigmoid(x)) * w).mean()


def _bce_formula(m, x, y, w):
    """Torch computes no gradient for binary_cross_entropy's weight: compare with autograd of
    its formula."""
    if m is fg:
        return F(m).binary_cross_entropy(x, y, w)
    return (-(y * x.log() + (1 - y) * (1 - x).log()) * w).mean()


_CLASS_W = lambda rng: rng.uniform(0.2, 2.0, size=5)  # noqa: E731

SPECS = [
    # --- cross_entropy (fused) ----------------------------------------------------------------
    OpSpec("loss.cross_entropy", lambda m, x, t: F(m).cross_entropy(x, t), shapes=((4, 5),),
           consts=_targets(5, (4,)), covers=(CrossEntropy,)),
    OpSpec("loss.cross_entropy_sum", lambda m, x, t: F(m).cross_entropy(x, t, reduction="sum"),
           shapes=((4, 5),), consts=_targets(5, (4,))),
    OpSpec("loss.cross_entropy_none", lambda m, x, t: F(m).cross_entropy(x, t, reduction="none"),
           shapes=((6, 5),), consts=_targets(5, (6,))),
    OpSpec("loss.cross_entropy_ignore", lambda m, x, t: F(m).cross_entropy(x, t),
           shapes=((6, 5),), consts=_targets(5, (6,), ignore=[(1, -100), (4, -100)])),
    OpSpec("loss.cross_entropy_ignore_custom",
           lambda m, x, t: F(m).cross_entropy(x, t, ignore_index=2, reduction="none"),
           shapes=((6, 5),), consts=_ints([2, 0, 2, 4, 1, 3])),
    OpSpec("loss.cross_entropy_weight",
           lambda m, x, t, w: F(m).cross_entropy(x, t, weight=w), shapes=((6, 5),),
           consts=lambda rng: (rng.integers(0, 5, 6), _CLASS_W(rng))),
    OpSpec("loss.cross_entropy_weight_ignore_none",
           lambda m, x, t, w: F(m).cross_entropy(x, t, w, reduction="none"), shapes=((6, 5),),
           consts=lambda rng: (np.array([0, -100, 3, 4, -100, 1]), _CLASS_W(rng))),
    OpSpec("loss.cross_entropy_smoothing",
           lambda m, x, t: F(m).cross_entropy(x, t, label_smoothing=0.2), shapes=((6, 5),),
           consts=_targets(5, (6,))),
    OpSpec("loss.cross_entropy_smoothing_weight_ignore",
           lambda m, x, t, w: F(m).cross_entropy(x, t, w, label_smoothing=0.1),
           shapes=((6, 5),),
           consts=lambda rng: (np.array([0, -100, 3, 4, 2, 1]), _CLASS_W(rng))),
    OpSpec("loss.cross_entropy_smoothing_weight_sum",
           lambda m, x, t, w: F(m).cross_entropy(x, t, w, reduction="sum", label_smoothing=0.3),
           shapes=((6, 5),),
           consts=lambda rng: (np.array([0, -100, 3, 4, 2, 1]), _CLASS_W(rng))),
    OpSpec("loss.cross_entropy_smoothing_none_ignore",
           lambda m, x, t: F(m).cross_entropy(x, t, reduction="none", label_smoothing=0.25),
           shapes=((6, 5),), consts=_ints([0, -100, 3, 4, 2, 1])),
    OpSpec("loss.cross_entropy_extra_dims",
           lambda m, x, t: F(m).cross_entropy(x, t), shapes=((2, 5, 3, 2),),
           consts=_targets(5, (2, 3, 2), ignore=[((0, 1, 1), -100)])),
    OpSpec("loss.cross_entropy_extra_dims_none_weight_smoothing",
           lambda m, x, t, w: F(m).cross_entropy(x, t, w, reduction="none", label_smoothing=0.1),
           shapes=((3, 5, 4),),
           consts=lambda rng: (rng.integers(0, 5, (3, 4)), _CLASS_W(rng))),
    OpSpec("loss.cross_entropy_unbatched", lambda m, x, t: F(m).cross_entropy(x, t),
           shapes=((5,),), consts=lambda rng: (np.array(3),)),
    OpSpec("loss.cross_entropy_large_logits", lambda m, x, t: F(m).cross_entropy(x * 1e3, t),
           shapes=((4, 5),), consts=_targets(5, (4,)), fd=False, tol32=(1e-3, 1e-4)),
    OpSpec("loss.cross_entropy_legacy_size_average",
           lambda m, x, t: F(m).cross_entropy(x, t, size_average=False), shapes=((4, 5),),
           consts=_targets(5, (4,))),
    # probability targets: composed from log_softmax (the gradient reaches the target too)
    OpSpec("loss.cross_entropy_probs", lambda m, x, p: F(m).cross_entropy(x, p),
           make=lambda rng: [rng.uniform(-2, 2, (4, 5)), _probs(rng, (4, 5))]),
    OpSpec("loss.cross_entropy_probs_weight_smoothing_none",
           lambda m, x, p, w: F(m).cross_entropy(x, p, w, reduction="none", label_smoothing=0.2),
           make=lambda rng: [rng.uniform(-2, 2, (4, 5)), _probs(rng, (4, 5))],
           consts=lambda rng: (_CLASS_W(rng),)),
    OpSpec("loss.cross_entropy_probs_extra_dims_sum",
           lambda m, x, p, w: F(m).cross_entropy(x, p, w, reduction="sum"),
           make=lambda rng: [rng.uniform(-2, 2, (2, 5, 3)), _probs(rng, (2, 5, 3))],
           consts=lambda rng: (_CLASS_W(rng),)),
    OpSpec("loss.cross_entropy_probs_mean_extra_dims",
           lambda m, x, p: F(m).cross_entropy(x, p, label_smoothing=0.1),
           make=lambda rng: [rng.uniform(-2, 2, (2, 5, 3)), _probs(rng, (2, 5, 3))]),
    # --- nll_loss (fused) ----------------------------------------------------------------------
    OpSpec("loss.nll_loss", lambda m, x, t: F(m).nll_loss(F(m).log_softmax(x, 1), t),
           shapes=((4, 5),), consts=_targets(5, (4,)), covers=(NLLLoss,)),
    OpSpec("loss.nll_loss_raw", lambda m, x, t: F(m).nll_loss(x, t), shapes=((4, 5),),
           consts=_targets(5, (4,))),
    OpSpec("loss.nll_loss_weight_ignore",
           lambda m, x, t, w: F(m).nll_loss(x, t, w, ignore_index=1), shapes=((6, 5),),
           consts=lambda rng: (np.array([1, 0, 3, 1, 4, 2]), _CLASS_W(rng))),
    OpSpec("loss.nll_loss_none", lambda m, x, t: F(m).nll_loss(x, t, reduction="none"),
           shapes=((6, 5),), consts=_ints([1, -100, 3, 1, 4, 2])),
    OpSpec("loss.nll_loss_sum_extra_dims",
           lambda m, x, t, w: F(m).nll_loss(x, t, w, reduction="sum"), shapes=((2, 5, 2, 3),),
           consts=lambda rng: (rng.integers(0, 5, (2, 2, 3)), _CLASS_W(rng))),
    OpSpec("loss.nll_loss_extra_dims_none", lambda m, x, t: F(m).nll_loss(x, t, reduction="none"),
           shapes=((2, 5, 4),), consts=_targets(5, (2, 4), ignore=[((1, 2), -100)])),
    OpSpec("loss.nll_loss_unbatched", lambda m, x, t: F(m).nll_loss(x, t),
           shapes=((5,),), consts=lambda rng: (np.array(1),)),
    # --- binary cross-entropy (fused) ------------------------------------------------------
    OpSpec("loss.bce", lambda m, x, y: F(m).binary_cross_entropy(x, y),
           make=lambda rng: [rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4))],
           covers=(BinaryCrossEntropy,)),
    OpSpec("loss.bce_weight_sum",
           lambda m, x, y, w: F(m).binary_cross_entropy(x, y, w, reduction="sum"),
           make=lambda rng: [rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4))],
           consts=lambda rng: (rng.uniform(0.5, 2, (3, 4)),)),
    OpSpec("loss.bce_weight_broadcast_none",
           lambda m, x, y, w: F(m).binary_cross_entropy(x, y, w, reduction="none"),
           make=lambda rng: [rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4))],
           consts=lambda rng: (rng.uniform(0.5, 2, (4,)),)),
    OpSpec("loss.bce_weight_grad", _bce_formula,
           make=lambda rng: [rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4)),
                             rng.uniform(0.5, 2, (3, 4))]),
    OpSpec("loss.bce_with_logits",
           lambda m, x, y: F(m).binary_cross_entropy_with_logits(x, y),
           make=lambda rng: [rng.uniform(-3, 3, (3, 4)), rng.uniform(0, 1, (3, 4))],
           covers=(BCEWithLogits,)),
    OpSpec("loss.bce_with_logits_pos_weight",
           lambda m, x, y, pw: F(m).binary_cross_entropy_with_logits(x, y, pos_weight=pw),
           make=lambda rng: [rng.uniform(-3, 3, (3, 4)), rng.uniform(0, 1, (3, 4))],
           consts=lambda rng: (rng.uniform(0.5, 3, (4,)),)),
    OpSpec("loss.bce_with_logits_weight_pos_weight_none",
           lambda m, x, y, w, pw: F(m).binary_cross_entropy_with_logits(
               x, y, w, reduction="none", pos_weight=pw),
           make=lambda rng: [rng.uniform(-3, 3, (2, 3, 4)), rng.uniform(0, 1, (2, 3, 4))],
           consts=lambda rng: (rng.uniform(0.5, 2, (3, 1)), rng.uniform(0.5, 3, (4,)))),
    OpSpec("loss.bce_with_logits_sum",
           lambda m, x, y, w: F(m).binary_cross_entropy_with_logits(x, y, w, reduction="sum"),
           make=lambda rng: [rng.uniform(-3, 3, (3, 4)), rng.uniform(0, 1, (3, 4))],
           consts=lambda rng: (rng.uniform(0.5, 2, (3, 4)),)),
    OpSpec("loss.bce_with_logits_large", lambda m, x, y: F(m).binary_cross_entropy_with_logits(
        x * 100, y), make=lambda rng: [rng.uniform(-3, 3, (3, 4)), rng.uniform(0, 1, (3, 4))],
        fd=False, tol32=(1e-4, 1e-4)),
    OpSpec("loss.bce_with_logits_weight_grads", _bce_logits_formula,
           make=lambda rng: [rng.uniform(-3, 3, (3, 4)), rng.uniform(0, 1, (3, 4)),
                             rng.uniform(0.5, 2, (3, 4)), rng.uniform(0.5, 3, (4,))]),
    # --- regression losses (composed) ------------------------------------------------------
    OpSpec("loss.mse", lambda m, x, y: F(m).mse_loss(x, y), shapes=((3, 4), (3, 4)),
           covers=(MSELoss,)),
    OpSpec("loss.mse_sum", lambda m, x, y: F(m).mse_loss(x, y, reduction="sum"),
           shapes=((3, 4), (3, 4)), covers=(MSELoss,)),
    OpSpec("loss.mse_none", lambda m, x, y: F(m).mse_loss(x, y, reduction="none"),
           shapes=((3, 4), (3, 4)), covers=(MSELoss,)),
    OpSpec("loss.mse_target_no_grad", lambda m, x, y: F(m).mse_loss(x, y), grad_inputs=(0,),
           shapes=((5, 1), (5, 1)), covers=(MSELoss,)),
    OpSpec("loss.mse_weight", lambda m, x, y, w: F(m).mse_loss(x, y, weight=w),
           shapes=((3, 4), (3, 4)), consts=lambda rng: (rng.uniform(0, 2, (3, 4)),)),
    OpSpec("loss.l1", lambda m, x, y: F(m).l1_loss(x, y), shapes=((3, 4), (3, 4))),
    OpSpec("loss.l1_none_weight", lambda m, x, y, w: F(m).l1_loss(x, y, reduction="none",
                                                                  weight=w),
           shapes=((3, 4), (3, 4)), consts=lambda rng: (rng.uniform(0, 2, (3, 4)),)),
    OpSpec("loss.l1_weight_mean", lambda m, x, y, w: F(m).l1_loss(x, y, weight=w),
           shapes=((3, 4), (3, 4)), consts=lambda rng: (rng.uniform(0, 2, (3, 4)),)),
    OpSpec("loss.smooth_l1", lambda m, x, y: F(m).smooth_l1_loss(x, y), shapes=((3, 4), (3, 4))),
    OpSpec("loss.smooth_l1_beta_sum",
           lambda m, x, y: F(m).smooth_l1_loss(x, y, reduction="sum", beta=0.5),
           shapes=((3, 4), (3, 4))),
    OpSpec("loss.smooth_l1_beta0", lambda m, x, y: F(m).smooth_l1_loss(x, y, beta=0.0),
           shapes=((3, 4), (3, 4))),
    OpSpec("loss.huber", lambda m, x, y: F(m).huber_loss(x, y), shapes=((3, 4), (3, 4))),
    OpSpec("loss.huber_delta_none",
           lambda m, x, y: F(m).huber_loss(x, y, reduction="none", delta=0.7),
           shapes=((3, 4), (3, 4))),
    OpSpec("loss.huber_weight", lambda m, x, y, w: F(m).huber_loss(x, y, delta=0.5, weight=w),
           shapes=((3, 4), (3, 4)), consts=lambda rng: (rng.uniform(0, 2, (3, 4)),)),
    OpSpec("loss.gaussian_nll", lambda m, x, y, v: F(m).gaussian_nll_loss(x, y, v),
           make=lambda rng: [rng.uniform(-2, 2, (4, 3)), rng.uniform(-2, 2, (4, 3)),
                             rng.uniform(0.2, 2, (4, 3))]),
    OpSpec("loss.gaussian_nll_full_sum",
           lambda m, x, y, v: F(m).gaussian_nll_loss(x, y, v, full=True, reduction="sum"),
           make=lambda rng: [rng.uniform(-2, 2, (4, 3)), rng.uniform(-2, 2, (4, 3)),
                             rng.uniform(0.2, 2, (4, 3))]),
    OpSpec("loss.gaussian_nll_shared_var_none",
           lambda m, x, y, v: F(m).gaussian_nll_loss(x, y, v, reduction="none"),
           make=lambda rng: [rng.uniform(-2, 2, (4, 3)), rng.uniform(-2, 2, (4, 3)),
                             rng.uniform(0.2, 2, (4,))]),
    OpSpec("loss.gaussian_nll_size1_var",
           lambda m, x, y, v: F(m).gaussian_nll_loss(x, y, v),
           make=lambda rng: [rng.uniform(-2, 2, (4, 3)), rng.uniform(-2, 2, (4, 3)),
                             rng.uniform(0.2, 2, (4, 1))]),
    OpSpec("loss.gaussian_nll_float_var",
           lambda m, x, y: F(m).gaussian_nll_loss(x, y, 0.5), shapes=((4, 3), (4, 3))),
    OpSpec("loss.gaussian_nll_clamped_var",
           lambda m, x, y, v: F(m).gaussian_nll_loss(x, y, v, eps=0.3),
           make=lambda rng: [rng.uniform(-2, 2, (4, 3)), rng.uniform(-2, 2, (4, 3)),
                             np.where(rng.uniform(0, 1, (4, 3)) < 0.3, 0.1, 1.0)
                             + rng.uniform(0, 0.1, (4, 3))], fd=False),  # straight-through
    OpSpec("loss.kl_div_batchmean",
           lambda m, x, y: F(m).kl_div(x, y, reduction="batchmean"),
           make=lambda rng: [_log_probs(rng, (4, 5)), _probs(rng, (4, 5), axis=-1)]),
    OpSpec("loss.kl_div_sum", lambda m, x, y: F(m).kl_div(x, y, reduction="sum"),
           make=lambda rng: [_log_probs(rng, (4, 5)), _probs(rng, (4, 5), axis=-1)]),
    OpSpec("loss.kl_div_none_log_target",
           lambda m, x, y: F(m).kl_div(x, y, reduction="none", log_target=True),
           make=lambda rng: [_log_probs(rng, (4, 5)), _log_probs(rng, (4, 5))]),
    OpSpec("loss.kl_div_batchmean_log_target",
           lambda m, x, y: F(m).kl_div(x, y, reduction="batchmean", log_target=True),
           make=lambda rng: [_log_probs(rng, (4, 5)), _log_probs(rng, (4, 5))]),
    OpSpec("loss.kl_div_zero_target",
           lambda m, x, y: F(m).kl_div(x, y, reduction="batchmean"), grad_inputs=(0,),
           make=lambda rng: [_log_probs(rng, (3, 4)),
                             np.array([[0.5, 0.5, 0, 0], [1, 0, 0, 0], [0.25] * 4])]),
    OpSpec("loss.poisson_nll", lambda m, x, y: F(m).poisson_nll_loss(x, y),
           make=lambda rng: [rng.uniform(-2, 2, (3, 4)), rng.uniform(0, 3, (3, 4))]),
    OpSpec("loss.poisson_nll_rate_full_none",
           lambda m, x, y: F(m).poisson_nll_loss(x, y, log_input=False, full=True,
                                                 reduction="none"),
           make=lambda rng: [rng.uniform(0.2, 3, (3, 4)), rng.uniform(1.5, 4, (3, 4))]),
    # --- margin and embedding losses (lecture: "Maps between representations") -------------
    OpSpec("loss.margin_ranking", lambda m, a, b, y: F(m).margin_ranking_loss(a, b, y, 0.2),
           shapes=((6,), (6,)), consts=lambda rng: (np.array([1.0, -1, 1, 1, -1, -1]),)),
    OpSpec("loss.hinge_embedding", lambda m, x, y: F(m).hinge_embedding_loss(x, y),
           shapes=((3, 4),), avoid_kinks=1e-2,
           consts=lambda rng: (np.where(rng.uniform(size=(3, 4)) < 0.5, -1.0, 1.0),)),
    OpSpec("loss.soft_margin", lambda m, x, y: F(m).soft_margin_loss(x, y), shapes=((3, 4),),
           consts=lambda rng: (np.where(rng.uniform(size=(3, 4)) < 0.5, -1.0, 1.0),)),
    OpSpec("loss.multilabel_soft_margin",
           lambda m, x, y, w: F(m).multilabel_soft_margin_loss(x, y, w), shapes=((3, 4),),
           consts=lambda rng: (rng.integers(0, 2, (3, 4)).astype(float),
                               rng.uniform(0.5, 2, (4,)))),
    OpSpec("loss.cosine_embedding",
           lambda m, a, b, y: F(m).cosine_embedding_loss(a, b, y, margin=-0.5),
           shapes=((4, 5), (4, 5)), consts=lambda rng: (np.array([1.0, -1.0, -1.0, 1.0]),)),
    OpSpec("loss.cosine_embedding_none",
           lambda m, a, b, y: F(m).cosine_embedding_loss(a, b, y, reduction="none"),
           shapes=((4, 5), (4, 5)), consts=lambda rng: (np.array([1.0, -1.0, 1.0, 1.0]),)),
    OpSpec("loss.triplet_margin", lambda m, a, p, n: F(m).triplet_margin_loss(a, p, n, 2.0),
           shapes=((4, 5), (4, 5), (4, 5))),
    OpSpec("loss.triplet_margin_swap_p1",
           lambda m, a, p, n: F(m).triplet_margin_loss(a, p, n, margin=3.0, p=1, swap=True,
                                                       reduction="none"),
           shapes=((4, 5), (4, 5), (4, 5)), fd=False),
]
