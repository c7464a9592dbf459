"""Behaviour of flowgrad.nn.functional that the op table cannot show: dropout statistics and
seeding, batch-norm running statistics, stability at huge logits, and error messages."""

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad.errors import DTypeError, ShapeError


def _np(t):
    return t.detach().numpy()


# --- dropout -------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_drops_a_fraction_p_and_scales_the_rest(p):
    x = fg.ones(200, 500)
    y = _np(F.dropout(x, p))
    dropped = (y == 0).mean()
    n = y.size
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)  # five standard errors
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)
    assert abs(y.mean() - 1) < 0.02  # inverted dropout keeps the expectation
    assert y.dtype == np.float32


def test_dropout_gradient_is_the_mask():
    x = fg.randn(50, 40, requires_grad=True)
    y = F.dropout(x, 0.3)
    y.sum().backward()
    kept = _np(y) != 0
    np.testing.assert_allclose(_np(x.grad), np.where(kept, 1 / 0.7, 0.0), rtol=1e-6)


def test_dropout_eval_mode_and_p0_are_the_identity():
    x = fg.randn(4, 5)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert F.dropout2d(fg.randn(2, 3, 4, 4), 0.5, training=False).shape == (2, 3, 4, 4)


def test_dropout_p1_gives_zeros_and_zero_gradient():
    x = fg.randn(3, 4, requires_grad=True)
    y = F.dropout(x, 1.0)
    assert np.all(_np(y) == 0) and np.all(np.isfinite(_np(y)))
    y.sum().backward()
    assert np.all(_np(x.grad) == 0)


def test_dropout_is_deterministic_under_manual_seed():
    x = fg.ones(10, 10)
    fg.manual_seed(123)
    a = _np(F.dropout(x, 0.5))
    b = _np(F.dropout(x, 0.5))
    fg.manual_seed(123)
    a2 = _np(F.dropout(x, 0.5))
    b2 = _np(F.dropout(x, 0.5))
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    assert not np.array_equal(a, b)  # successive calls draw fresh masks
    fg.manual_seed(124)
    assert not np.array_equal(a, _np(F.dropout(x, 0.5)))


def test_dropout2d_drops_whole_channels():
    x = fg.ones(8, 16, 5, 5)
    y = _np(F.dropout2d(x, 0.5))
    per_channel = y.reshape(8, 16, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert 0 < (per_channel == 0).all(-1).mean() < 1


def test_dropout1d_unbatched_and_dropout3d_shapes():
    y = _np(F.dropout1d(fg.ones(16, 7), 0.5))  # (C, L)
    assert np.all((y == 0).all(-1) | (y == 2).all(-1))
    y = _np(F.dropout3d(fg.ones(2, 6, 2, 2, 2), 0.5)).reshape(2, 6, -1)
    assert np.all((y == 0).all(-1) | (y == 2).all(-1))


def test_sdpa_dropout_is_seeded_and_changes_the_output():
    q = fg.randn(2, 2, 4, 8)
    fg.manual_seed(0)
    a = _np(F.scaled_dot_product_attention(q, q, q, dropout_p=0.5))
    fg.manual_seed(0)
    b = _np(F.scaled_dot_product_attention(q, q, q, dropout_p=0.5))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, _np(F.scaled_dot_product_attention(q, q, q)))


@pytest.mark.parametrize("mask", [None, "causal", "bool", "float"])
def test_sdpa_one_node_with_dropout_equals_the_recorded_composition(mask):
    """The one-node attention draws its dropout mask as F.dropout does on the attention
    weights, so with one seed it gives the composition's output and every input's gradient."""
    rng = np.random.default_rng(3)
    q, k, v = (fg.tensor(rng.standard_normal(s), requires_grad=True)
               for s in ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 2)))
    keep = rng.random((4, 6)) > 0.3
    keep[1] = False  # a row that may attend nowhere
    kwargs = {None: {}, "causal": {"is_causal": True}, "bool": {"attn_mask": fg.tensor(keep)},
              "float": {"attn_mask": fg.tensor(np.where(keep, rng.standard_normal((4, 6)),
                                                        -np.inf))}}[mask]
    upstream = rng.standard_normal((2, 3, 4, 2))

    def composed():
        scores = q @ k.transpose(-2, -1) / np.sqrt(5)
        allowed = (np.tril(np.ones((4, 6), bool)) if mask == "causal" else keep if mask
                   else np.ones((4, 6), bool))
        if mask == "float":
            scores = scores + kwargs["attn_mask"].masked_fill(fg.tensor(~allowed), 0.0)
        dead = ~allowed.any(-1, keepdims=True)
        scores = scores.masked_fill(fg.tensor(~(allowed | dead)), float("-inf"))
        weights = scores.softmax(-1).masked_fill(fg.tensor(dead), 0.0)
        return F.dropout(weights, 0.4) @ v

    results = []
    for fn in (lambda: F.scaled_dot_product_attention(q, k, v, dropout_p=0.4, **kwargs),
               composed):
        fg.manual_seed(11)
        out = fn()
        grads = fg.autograd.grad((out * fg.tensor(upstream)).sum(), (q, k, v))
        results.append([_np(out)] + [_np(g) for g in grads])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.all(results[0][0][:, :, 1] == 0) if mask == "bool" else True


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_bad_probability(p):
    with pytest.raises(ValueError, match=r"dropout: dropout probability has to be between 0 "
                                         r"and 1, but got"):
        F.dropout(fg.ones(3), p)


# --- batch norm running statistics ---------------------------------------------------------------

@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (4, 3, 2, 2)])
def test_batch_norm_running_stats_match_torch(torch, shape):
    rng = np.random.default_rng(0)
    rm, rv = fg.zeros(3), fg.ones(3)
    trm, trv = torch.zeros(3), torch.ones(3)
    w = rng.uniform(0.5, 1.5, 3).astype(np.float32)
    b = rng.uniform(-1, 1, 3).astype(np.float32)
    for step in range(3):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(np.float32)
        out = F.batch_norm(fg.tensor(x), rm, rv, fg.tensor(w), fg.tensor(b), training=True,
                           momentum=0.2)
        tout = torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, torch.tensor(w),
                                              torch.tensor(b), training=True, momentum=0.2)
        np.testing.assert_allclose(_np(out), tout.numpy(), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(_np(rm), trm.numpy(), atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(_np(rv), trv.numpy(), atol=1e-6, rtol=1e-5)
    x = rng.standard_normal(shape).astype(np.float32)
    out = F.batch_norm(fg.tensor(x), rm, rv, fg.tensor(w), fg.tensor(b), training=False)
    tout = torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, torch.tensor(w),
                                          torch.tensor(b), training=False)
    np.testing.assert_allclose(_np(out), tout.numpy(), atol=1e-5, rtol=1e-4)


def test_batch_norm_updates_running_stats_outside_the_graph():
    x = fg.randn(6, 3, requires_grad=True)
    rm, rv = fg.zeros(3), fg.ones(3)
    out = F.batch_norm(x, rm, rv, training=True)
    assert not rm.requires_grad and not rv.requires_grad
    assert rm._version > 0 and rv._version > 0  # updated in place
    out.sum().backward()  # the in-place update did not touch the graph
    assert x.grad is not None


def test_batch_norm_eval_leaves_running_stats_alone():
    rm, rv = fg.tensor([0.5, -1.0]), fg.tensor([2.0, 0.5])
    F.batch_norm(fg.randn(4, 2), rm, rv, training=False)
    np.testing.assert_array_equal(_np(rm), [0.5, -1.0])
    np.testing.assert_array_equal(_np(rv), [2.0, 0.5])


def test_instance_norm_running_stats_match_torch(torch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 6)).astype(np.float32) * 2 + 1
    rm, rv = fg.zeros(2), fg.ones(2)
    trm, trv = torch.zeros(2), torch.ones(2)
    F.instance_norm(fg.tensor(x), rm, rv, momentum=0.3)
    torch.nn.functional.instance_norm(torch.tensor(x), trm, trv, momentum=0.3)
    np.testing.assert_allclose(_np(rm), trm.numpy(), atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(_np(rv), trv.numpy(), atol=1e-6, rtol=1e-5)


def test_embedding_max_norm_renormalises_the_weight_like_torch(torch):
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((6, 4)) * 2).astype(np.float32)
    idx = np.array([[0, 2], [2, 5]])
    fw, tw = fg.tensor(w.copy()), torch.tensor(w.copy())
    F.embedding(fg.tensor(idx), fw, max_norm=1.5)
    torch.nn.functional.embedding(torch.tensor(idx), tw, max_norm=1.5)
    np.testing.assert_allclose(_np(fw), tw.numpy(), rtol=1e-5)


# --- stability at huge logits --------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_softmax_family_is_finite_at_huge_logits(torch, scale):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 6)) * scale).astype(np.float32)
    w = rng.standard_normal((4, 6)).astype(np.float32)
    for name in ("softmax", "log_softmax"):
        a = fg.tensor(x, requires_grad=True)
        out = getattr(F, name)(a, dim=1)
        (out * fg.tensor(w)).sum().backward()
        ta = torch.tensor(x, requires_grad=True)
        tout = getattr(torch.nn.functional, name)(ta, dim=1)
        (tout * torch.tensor(w)).sum().backward()
        assert np.all(np.isfinite(_np(out))) and np.all(np.isfinite(_np(a.grad)))
        np.testing.assert_allclose(_np(out), tout.detach().numpy(), rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(_np(a.grad), ta.grad.numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("scale", [1e4, -1e4])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_is_finite_at_huge_logits(torch, scale, smoothing):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((5, 7)) * scale).astype(np.float32)
    t = rng.integers(0, 7, 5)
    a = fg.tensor(x, requires_grad=True)
    loss = F.cross_entropy(a, fg.tensor(t), label_smoothing=smoothing)
    loss.backward()
    ta = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(ta, torch.tensor(t), label_smoothing=smoothing)
    tl.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(_np(a.grad)))
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-5)
    np.testing.assert_allclose(_np(a.grad), ta.grad.numpy(), atol=1e-6)


def test_bce_with_logits_is_finite_at_huge_logits(torch):
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=np.float32)
    y = np.array([1.0, 0.0, 0.5, 1.0, 0.0], dtype=np.float32)
    pw = np.array([2.0], dtype=np.float32)
    a = fg.tensor(x, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(a, fg.tensor(y), pos_weight=fg.tensor(pw))
    loss.backward()
    ta = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.binary_cross_entropy_with_logits(ta, torch.tensor(y),
                                                              pos_weight=torch.tensor(pw))
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-6)
    np.testing.assert_allclose(_np(a.grad), ta.grad.numpy(), rtol=1e-6)


def test_binary_cross_entropy_at_exact_zero_and_one_matches_torch(torch):
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.3], dtype=np.float32)  # a saturated sigmoid gives these
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.6], dtype=np.float32)
    a = fg.tensor(x, requires_grad=True)
    loss = F.binary_cross_entropy(a, fg.tensor(y))
    loss.backward()
    ta = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.binary_cross_entropy(ta, torch.tensor(y))
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-6)  # the -100 clamp
    assert np.all(np.isfinite(_np(a.grad)))
    np.testing.assert_allclose(_np(a.grad), ta.grad.numpy(), rtol=1e-5)


def test_cross_entropy_with_every_target_ignored_is_nan_like_torch():
    loss = F.cross_entropy(fg.randn(3, 4), fg.tensor([-100, -100, -100]))
    assert np.isnan(loss.item())


def test_sdpa_rows_with_nothing_to_attend_to_give_zeros_and_finite_grads(torch):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 3, 4)).astype(np.float32)
    mask = np.array([[True, False], [False, False], [True, True]])
    a = fg.tensor(q, requires_grad=True)
    kv = fg.tensor(q[:, :2], requires_grad=True)
    out = F.scaled_dot_product_attention(a, kv, kv, attn_mask=fg.tensor(mask))
    out.sum().backward()
    assert np.all(_np(out)[:, 1] == 0)
    assert np.all(np.isfinite(_np(a.grad))) and np.all(np.isfinite(_np(kv.grad)))
    tout = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(q[:, :2]), torch.tensor(q[:, :2]),
        attn_mask=torch.tensor(mask))
    np.testing.assert_allclose(_np(out), tout.numpy(), atol=1e-6)


def test_softmax_without_dim_warns_and_picks_torchs_dim(torch):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match="implicit dimension"):
        out = F.softmax(fg.tensor(x))
    with pytest.warns(UserWarning):
        tout = torch.nn.functional.softmax(torch.tensor(x))
    np.testing.assert_allclose(_np(out), tout.numpy(), rtol=1e-6)


def test_bce_with_logits_weight_and_pos_weight_gradients_by_finite_differences():
    rng = np.random.default_rng(0)
    xs = [rng.uniform(-3, 3, (3, 4)), rng.uniform(0, 1, (3, 4)), rng.uniform(0.5, 2, (3, 1)),
          rng.uniform(0.5, 3, (4,))]
    ts = [fg.tensor(a, requires_grad=True) for a in xs]
    fg.autograd.gradcheck(lambda x, y, w, pw: F.binary_cross_entropy_with_logits(
        x, y, w, reduction="none", pos_weight=pw), ts)


# --- error messages -------------------------------------------------------------------------------

def test_cross_entropy_out_of_range_target_names_index_and_classes():
    with pytest.raises(IndexError, match=r"cross_entropy: target 7 is out of bounds for 5 "
                                         r"classes"):
        F.cross_entropy(fg.randn(3, 5), fg.tensor([0, 7, 1]))
    with pytest.raises(IndexError, match=r"cross_entropy: target -1 is out of bounds"):
        F.cross_entropy(fg.randn(3, 5), fg.tensor([0, -1, 1]))
    with pytest.raises(IndexError, match=r"nll_loss: target 5 is out of bounds for 5 classes"):
        F.nll_loss(fg.randn(2, 5), fg.tensor([5, 0]))


def test_cross_entropy_wrong_target_dtype_says_what_is_expected():
    with pytest.raises(DTypeError, match=r"cross_entropy: a floating target is read as class "
                                         r"probabilities .* \(3, 5\), got \(3,\); for class "
                                         r"indices pass an integer tensor"):
        F.cross_entropy(fg.randn(3, 5), fg.tensor([1.0, 2.0, 0.0]))
    with pytest.raises(DTypeError, match=r"nll_loss: target must be an integer tensor of class "
                                         r"indices \(int64\), got bool"):
        F.nll_loss(fg.randn(3, 5), fg.tensor([True, False, True]))


def test_cross_entropy_target_shape_and_options():
    with pytest.raises(ShapeError, match=r"cross_entropy: target of shape \(4,\) does not fit "
                                         r"input of shape \(3, 5\): expected target of shape "
                                         r"\(3,\)"):
        F.cross_entropy(fg.randn(3, 5), fg.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(fg.randn(3, 5), fg.tensor([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"reduction must be one of 'none', 'mean', 'sum', "
                                         r"got 'avg'"):
        F.cross_entropy(fg.randn(3, 5), fg.tensor([0, 1, 2]), reduction="avg")
    with pytest.raises(ShapeError, match=r"weight must hold one entry per class, shape \(5,\)"):
        F.cross_entropy(fg.randn(3, 5), fg.tensor([0, 1, 2]), weight=fg.ones(4))
    with pytest.raises(ValueError, match="class weight is not computed"):
        F.cross_entropy(fg.randn(3, 5), fg.tensor([0, 1, 2]),
                        weight=fg.ones(5, requires_grad=True))
    with pytest.raises(ValueError, match="ignore_index is not supported for class-probability"):
        F.cross_entropy(fg.randn(3, 5), fg.randn(3, 5).softmax(1), ignore_index=1)


def test_elementwise_loss_shapes():
    with pytest.raises(ShapeError, match=r"mse_loss: input \(3, 4\) and target \(3, 5\) must "
                                         r"have the same shape"):
        F.mse_loss(fg.randn(3, 4), fg.randn(3, 5))
    with pytest.warns(UserWarning, match=r"l1_loss: target size \(4,\) differs from input size "
                                         r"\(3, 4\)"):
        F.l1_loss(fg.randn(3, 4), fg.randn(4))
    with pytest.raises(ShapeError, match=r"mse_loss: weight of shape \(4,\) must have the "
                                         r"input's shape \(3, 4\)"):
        F.mse_loss(fg.randn(3, 4), fg.randn(3, 4), weight=fg.ones(4))
    with pytest.raises(ShapeError, match=r"binary_cross_entropy_with_logits: target of shape "
                                         r"\(3, 1\) must have the input's shape \(3,\)"):
        F.binary_cross_entropy_with_logits(fg.randn(3), fg.rand(3, 1))
    with pytest.raises(DTypeError, match=r"binary_cross_entropy: target must be a floating "
                                         r"tensor"):
        F.binary_cross_entropy(fg.rand(3), fg.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: all elements of input should "
                                         r"be between 0 and 1 .*binary_cross_entropy_with_logits"):
        F.binary_cross_entropy(fg.tensor([0.5, 1.5]), fg.tensor([0.0, 1.0]))
    with pytest.raises(ShapeError, match=r"gaussian_nll_loss: var of shape \(2,\) does not fit"):
        F.gaussian_nll_loss(fg.randn(4, 3), fg.randn(4, 3), fg.ones(2))
    with pytest.raises(ValueError, match=r"gaussian_nll_loss: var has negative entries"):
        F.gaussian_nll_loss(fg.randn(4, 3), fg.randn(4, 3), -fg.ones(4, 3))
    with pytest.raises(ValueError, match=r"smooth_l1_loss: beta must be non-negative"):
        F.smooth_l1_loss(fg.randn(3), fg.randn(3), beta=-1.0)


def test_layer_errors():
    with pytest.raises(ShapeError, match=r"layer_norm: normalized_shape \(4,\) must match the "
                                         r"last dimensions of the input, got input of shape "
                                         r"\(2, 3\)"):
        F.layer_norm(fg.randn(2, 3), (4,))
    with pytest.raises(ShapeError, match=r"group_norm: the 6 channels of input \(2, 6, 3\) "
                                         r"must be divisible by num_groups=4"):
        F.group_norm(fg.randn(2, 6, 3), 4)
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per channel "
                                         r"when training, got input of shape \(1, 3\)"):
        F.batch_norm(fg.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="batch_norm: running_mean and running_var are "
                                         "required when training=False"):
        F.batch_norm(fg.randn(4, 3), None, None)
    with pytest.raises(ShapeError, match=r"batch_norm: weight of shape \(4,\) does not fit the "
                                         r"3 channels"):
        F.batch_norm(fg.randn(4, 3), None, None, fg.ones(4), training=True)
    with pytest.raises(ShapeError, match=r"linear: input has 5 features"):
        F.linear(fg.randn(2, 5), fg.randn(3, 4))
    with pytest.raises(ShapeError, match=r"bilinear: inputs \(2, 3\) and \(2, 4\) do not fit "
                                         r"weight \(5, 3, 2\)"):
        F.bilinear(fg.randn(2, 3), fg.randn(2, 4), fg.randn(5, 3, 2))


def test_lookup_errors():
    with pytest.raises(DTypeError, match=r"embedding: input must be an integer tensor of "
                                         r"indices, got float32"):
        F.embedding(fg.tensor([0.0, 1.0]), fg.randn(4, 3))
    with pytest.raises(IndexError, match=r"embedding: index 4 is out of range for 4 embeddings"):
        F.embedding(fg.tensor([0, 4]), fg.randn(4, 3))
    with pytest.raises(DTypeError, match=r"one_hot: expected an integer tensor"):
        F.one_hot(fg.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"one_hot: class value 5 is out of range for "
                                         r"num_classes=3"):
        F.one_hot(fg.tensor([0, 5]), 3)


def test_pad_and_attention_errors():
    with pytest.raises(ShapeError, match=r"pad: reflect padding \(3, 0\) of dimension 1 does "
                                         r"not fit its size 3"):
        F.pad(fg.randn(2, 3), (3, 0), mode="reflect")
    with pytest.raises(ShapeError, match=r"pad: padding \(1, 2, 3\) must have an even length"):
        F.pad(fg.randn(2, 3), (1, 2, 3))
    with pytest.raises(ValueError, match=r"pad: mode 'reflect' takes no value argument"):
        F.pad(fg.randn(2, 3), (1, 1), mode="reflect", value=1.0)
    with pytest.raises(ValueError, match=r"pad: mode must be 'constant', 'reflect', "
                                         r"'replicate' or 'circular', got 'wrap'"):
        F.pad(fg.randn(2, 3), (1, 1), mode="wrap")
    q = fg.randn(2, 3, 4)
    with pytest.raises(ValueError, match="pass attn_mask or is_causal=True, not both"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=fg.ones(3, 3).bool(), is_causal=True)
    with pytest.raises(ShapeError, match=r"scaled_dot_product_attention: query \(2, 3, 4\), "
                                         r"key \(2, 3, 5\)"):
        F.scaled_dot_product_attention(q, fg.randn(2, 3, 5), q)
    with pytest.raises(ShapeError, match=r"glu: halving dimension -1 needs an even size"):
        F.glu(fg.randn(2, 3))
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh'"):
        F.gelu(fg.randn(2), approximate="erf")
