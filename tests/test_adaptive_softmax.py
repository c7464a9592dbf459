"""nn.AdaptiveLogSoftmaxWithLoss (Grave et al. 2017) against torch.nn.AdaptiveLogSoftmaxWithLoss:
outputs, loss and every gradient in float64 and float32, log_prob, predict, state_dict both
ways, PyTorch's errors, finite differences, and a fit of a known distribution."""

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad import nn
from flowgrad.autograd.gradcheck import gradcheck

torch.set_num_threads(1)
IN, CLASSES, CUTOFFS = 8, 20, [4, 10, 15]
TOL = {np.float64: 1e-12, np.float32: 2e-5}


def _pair(dtype=np.float64, cutoffs=CUTOFFS, div_value=2.0, head_bias=True, seed=0):
    torch.manual_seed(seed)
    tm = torch.nn.AdaptiveLogSoftmaxWithLoss(IN, CLASSES, cutoffs, div_value=div_value,
                                             head_bias=head_bias)
    tm = tm.to(torch.float64 if dtype == np.float64 else torch.float32)
    fm = nn.AdaptiveLogSoftmaxWithLoss(IN, CLASSES, cutoffs, div_value=div_value,
                                       head_bias=head_bias,
                                       dtype=fg.float64 if dtype == np.float64 else fg.float32)
    fm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, fm


def _close(a, b, dtype):
    scale = max(1.0, float(np.abs(a).max()))
    assert np.abs(np.asarray(a) - np.asarray(b)).max() <= TOL[dtype] * scale


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("head_bias", [False, True])
def test_forward_and_every_gradient_match_pytorch(dtype, head_bias):
    tm, fm = _pair(dtype, head_bias=head_bias)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, IN)).astype(dtype)
    t = np.array([0, 3, 4, 9, 10, 14, 15, 19, 2, 5, 16, 1])  # every cluster hit
    tx, fx = torch.tensor(x, requires_grad=True), fg.tensor(x, requires_grad=True)
    to, fo = tm(tx, torch.tensor(t)), fm(fx, fg.tensor(t))
    _close(to.output.detach().numpy(), fo.output.detach().numpy(), dtype)
    _close(to.loss.item(), fo.loss.item(), dtype)
    assert fo.output.dtype == fo.loss.dtype == fx.dtype and fo.output.shape == (12,)
    to.loss.backward()
    fo.loss.backward()
    _close(tx.grad.numpy(), fx.grad.numpy(), dtype)
    fparams = dict(fm.named_parameters())
    assert set(fparams) == {n for n, _ in tm.named_parameters()}
    for name, p in tm.named_parameters():
        _close(p.grad.numpy(), fparams[name].grad.numpy(), dtype)


def test_cluster_without_targets_gets_no_gradient_as_in_pytorch():
    tm, fm = _pair()
    x = np.random.default_rng(2).standard_normal((5, IN))
    t = np.array([0, 1, 11, 12, 3])  # nothing in clusters 0 (4..9) and 2 (15..19)
    tm(torch.tensor(x), torch.tensor(t)).loss.backward()
    fm(fg.tensor(x), fg.tensor(t)).loss.backward()
    fparams = dict(fm.named_parameters())
    for name, p in tm.named_parameters():
        assert (p.grad is None) == (fparams[name].grad is None), name
        if p.grad is not None:
            _close(p.grad.numpy(), fparams[name].grad.numpy(), np.float64)
    assert fparams["tail.0.0.weight"].grad is None and fparams["tail.1.0.weight"].grad is not None


def test_unbatched_input_and_target():
    tm, fm = _pair()
    x = np.random.default_rng(3).standard_normal(IN)
    for target in (2, 7, 18):
        to, fo = tm(torch.tensor(x), torch.tensor(target)), fm(fg.tensor(x), fg.tensor(target))
        assert fo.output.shape == () and fo.loss.shape == ()
        _close(to.output.item(), fo.output.item(), np.float64)
        _close(to.loss.item(), fo.loss.item(), np.float64)


def test_log_prob_is_a_distribution_matching_pytorch_and_forward():
    tm, fm = _pair()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, IN))
    t = rng.integers(0, CLASSES, 6)
    lp = fm.log_prob(fg.tensor(x)).detach().numpy()
    _close(tm.log_prob(torch.tensor(x)).detach().numpy(), lp, np.float64)
    assert lp.shape == (6, CLASSES)
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(lp[np.arange(6), t],
                               fm(fg.tensor(x), fg.tensor(t)).output.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("rare_rows", ["none", "some", "all"])
def test_predict_matches_pytorch(rare_rows):
    tm, fm = _pair()
    with torch.no_grad():  # push the head towards its cluster entries on chosen rows
        tm.head.bias[4:] = {"none": -20.0, "some": 0.0, "all": 20.0}[rare_rows]
    fm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((16, IN)) * 3
    expected = tm.predict(torch.tensor(x)).numpy()
    if rare_rows == "some":
        assert 0 < (expected >= 4).sum() < 16
    np.testing.assert_array_equal(fm.predict(fg.tensor(x)).numpy(), expected)


def test_state_dict_round_trips_both_ways():
    tm, fm = _pair(head_bias=False)
    assert {k: tuple(v.shape) for k, v in fm.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    fresh = torch.nn.AdaptiveLogSoftmaxWithLoss(IN, CLASSES, CUTOFFS, div_value=2.0).double()
    fresh.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in fm.state_dict().items()})
    x = torch.randn(3, IN, dtype=torch.float64)
    np.testing.assert_array_equal(fresh.log_prob(x).detach().numpy(),
                                  tm.log_prob(x).detach().numpy())
    assert fm.shortlist_size == tm.shortlist_size and fm.head_size == tm.head_size
    assert fm.cutoffs == tm.cutoffs and fm.n_clusters == tm.n_clusters


def test_gradients_against_finite_differences():
    fm = nn.AdaptiveLogSoftmaxWithLoss(IN, CLASSES, CUTOFFS, div_value=2.0, head_bias=True,
                                       dtype=fg.float64)
    rng = np.random.default_rng(6)
    x = fg.tensor(rng.standard_normal((7, IN)), requires_grad=True)
    t = fg.tensor(np.array([0, 5, 12, 17, 3, 9, 19]))
    params = [x] + list(fm.parameters())
    assert gradcheck(lambda *_: fm(x, t).loss, params)


@pytest.mark.parametrize("cutoffs", [[], [5, 3], [0, 5], [5, 20], [5, 5], [2.5]])
def test_bad_cutoffs_raise_pytorchs_error(cutoffs):
    with pytest.raises(ValueError) as theirs:
        torch.nn.AdaptiveLogSoftmaxWithLoss(IN, CLASSES, cutoffs)
    with pytest.raises(ValueError) as ours:
        nn.AdaptiveLogSoftmaxWithLoss(IN, CLASSES, cutoffs)
    assert str(ours.value) == str(theirs.value)


def test_bad_inputs_raise_clear_errors():
    _, fm = _pair()
    x = fg.tensor(np.zeros((4, IN)))
    with pytest.raises(RuntimeError, match=r"same size in the batch dimension.*\(4, 8\).*\(3,\)"):
        fm(x, fg.tensor(np.array([1, 2, 3])))
    with pytest.raises(RuntimeError, match="0D target tensor expects 1D input"):
        fm(x, fg.tensor(1))
    with pytest.raises(RuntimeError, match="multi-target not supported"):
        fm(x, fg.tensor(np.zeros((4, 2), np.int64)))
    with pytest.raises(RuntimeError, match=r"should be in \[0, 19\], but values in range "
                                           r"\[-1, 20\] were found"):
        fm(x, fg.tensor(np.array([-1, 0, 1, 20])))
    with pytest.raises(RuntimeError, match="integer target"):
        fm(x, fg.tensor(np.array([1.0, 2.0, 3.0, 4.0])))
    with pytest.raises(IndexError, match=r"log_prob.*\(batch, 8\).*\(8,\)"):
        fm.log_prob(fg.tensor(np.zeros(IN)))


def test_learns_a_known_distribution():
    """From a constant input, the adaptive softmax trained by its loss converges to the
    empirical class frequencies, rare clusters included (the model is exactly normalised)."""
    rng = np.random.default_rng(7)
    probs = 1.0 / np.arange(1, CLASSES + 1)  # Zipf
    probs /= probs.sum()
    targets = rng.choice(CLASSES, size=4000, p=probs)
    freq = np.bincount(targets, minlength=CLASSES) / targets.size
    fg.manual_seed(0)
    model = nn.AdaptiveLogSoftmaxWithLoss(IN, CLASSES, CUTOFFS, div_value=2.0, head_bias=True,
                                          dtype=fg.float64)
    x = fg.tensor(np.ones((targets.size, IN)))
    opt = fg.optim.Adam(model.parameters(), lr=0.05)
    t = fg.tensor(targets)
    for _ in range(300):
        opt.zero_grad()
        loss = model(x, t).loss
        loss.backward()
        opt.step()
    entropy = -(freq[freq > 0] * np.log(freq[freq > 0])).sum()
    assert loss.item() < entropy + 0.01
    learned = np.exp(model.log_prob(x[:1]).detach().numpy()[0])
    np.testing.assert_allclose(learned, freq, atol=0.01)
