"""The neural probabilistic language model (Bengio et al. 2003): the formula against a NumPy
and a PyTorch re-implementation, the parameter count, the paper's regulariser and schedule,
the n-gram window dataset, perplexity and the mixture with another model."""

import math

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.models import NPLM, NPLMConfig
from flowgrad.models.nplm import (
    InverseTimeDecay,
    context_windows,
    mix,
    mixture_perplexity,
    ngram_dataset,
    nplm_parameter_count,
    paper_lr_schedule,
    perplexity,
)
from flowgrad.nn import functional as F
from flowgrad.utils.data import DataLoader

torch.set_num_threads(1)  # as tests/conftest.py: no idle PyTorch threads competing with NumPy
CONFIGS = [dict(hidden=7, direct=True), dict(hidden=7, direct=False), dict(hidden=0, direct=True)]


def _numpy_forward(model, ctx):
    """y = b + W x + U tanh(d + H x), written from the paper with the model's weights."""
    sd = {k: v.numpy().astype(np.float64) for k, v in model.state_dict().items()}
    c = model.config
    x = sd["C.weight"][ctx].reshape(len(ctx), -1)
    y = sd["output.bias"] + 0.0
    if c.direct:
        y = y + x @ model.W.detach().numpy().T
    if c.hidden:
        a = np.tanh(sd["H.bias"] + x @ sd["H.weight"].T)
        y = y + a @ model.U.detach().numpy().T
    return y


@pytest.mark.parametrize("kw", CONFIGS)
def test_forward_is_the_papers_formula(kw):
    fg.manual_seed(0)
    model = NPLM(vocab_size=11, context=4, embedding_dim=3, **kw)
    ctx = np.random.default_rng(0).integers(0, 11, (5, 3))
    out = model(fg.tensor(ctx))
    assert tuple(out.shape) == (5, 11)
    np.testing.assert_allclose(out.detach().numpy(), _numpy_forward(model, ctx), rtol=1e-5, atol=1e-6)


def test_structure_of_the_options():
    full = NPLM(vocab_size=11, context=4, embedding_dim=3, hidden=7, direct=True)
    assert tuple(full.W.shape) == (11, 9) and tuple(full.U.shape) == (11, 7)
    no_direct = NPLM(vocab_size=11, context=4, embedding_dim=3, hidden=7, direct=False)
    assert no_direct.W is None and tuple(no_direct.output.weight.shape) == (11, 7)
    linear = NPLM(vocab_size=11, context=4, embedding_dim=3, hidden=0)
    assert linear.U is None and linear.H is None
    assert set(linear.state_dict()) == {"C.weight", "output.weight", "output.bias"}
    with pytest.raises(ValueError, match="no path"):
        NPLM(vocab_size=11, context=4, embedding_dim=3, hidden=0, direct=False)
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        full(fg.tensor([[1, 2]]))


@pytest.mark.parametrize("dtype", [fg.float32, fg.float64])
@pytest.mark.parametrize("kw", CONFIGS)
def test_loss_and_every_gradient_match_pytorch(kw, dtype):
    fg.manual_seed(1)
    model = NPLM(vocab_size=13, context=3, embedding_dim=4, **kw).to(dtype)
    tdt = torch.float32 if dtype == fg.float32 else torch.float64
    p = {k: torch.tensor(v.numpy(), dtype=tdt, requires_grad=True)
         for k, v in model.state_dict().items()}
    rng = np.random.default_rng(1)
    ctx, target = rng.integers(0, 13, (6, 2)), rng.integers(0, 13, 6)
    loss = F.cross_entropy(model(fg.tensor(ctx)), fg.tensor(target))
    loss.backward()
    x = p["C.weight"][torch.tensor(ctx)].flatten(1)
    feats = []
    if kw["direct"]:
        feats.append(x)
    if kw["hidden"]:
        feats.append(torch.tanh(x @ p["H.weight"].T + p["H.bias"]))
    y = torch.cat(feats, 1) @ p["output.weight"].T + p["output.bias"]
    tloss = torch.nn.functional.cross_entropy(y, torch.tensor(target))
    tloss.backward()
    tol = 1e-5 if dtype == fg.float32 else 1e-12
    assert abs(loss.item() - tloss.item()) < tol
    for name, param in model.named_parameters():
        np.testing.assert_allclose(param.grad.numpy(), p[name].grad.numpy(), rtol=tol * 10,
                                   atol=tol, err_msg=name)


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("n", [2, 5])
def test_parameter_count(kw, n):
    model = NPLM(vocab_size=17, context=n, embedding_dim=6, **kw)
    assert model.num_parameters() == nplm_parameter_count(17, n, 6, kw["hidden"], kw["direct"])


def test_parameter_count_is_the_papers_formula():
    v, n, m, h = 16383, 5, 60, 50  # Brown, MLP1
    assert nplm_parameter_count(v, n, m, h) == v * (1 + n * m + h) + h * (1 + (n - 1) * m)
    model = NPLM(vocab_size=300, context=5, embedding_dim=6, hidden=5)
    assert model.num_parameters() == 300 * (1 + 5 * 6 + 5) + 5 * (1 + 4 * 6)
    # without W the |V|(n-1)m direct-connection weights are absent
    assert nplm_parameter_count(300, 5, 6, 5, direct=False) == \
        300 * (1 + 5 * 6 + 5) + 5 * (1 + 4 * 6) - 300 * 4 * 6


def test_weight_decay_on_weights_and_c_not_on_biases():
    fg.manual_seed(2)
    model = NPLM(vocab_size=9, context=3, embedding_dim=2, hidden=3)
    groups = model.param_groups(0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in groups[0]["params"]) == \
        ["C.weight", "H.weight", "output.weight"]
    assert sorted(names[id(p)] for p in groups[1]["params"]) == ["H.bias", "output.bias"]
    before = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    opt = fg.optim.SGD(groups, lr=0.5)
    (model(fg.tensor([[1, 2]])).sum() * 0).backward()  # zero gradient: only the decay acts
    opt.step()
    for n, p in model.named_parameters():
        factor = 1.0 if n.endswith("bias") else 1 - 0.5 * 0.1
        np.testing.assert_allclose(p.detach().numpy(), before[n] * factor, rtol=1e-6)


def test_paper_lr_schedule():
    model = NPLM(vocab_size=9, context=3, embedding_dim=2, hidden=3)
    opt = fg.optim.SGD(model.param_groups(1e-4), lr=1e-3)
    sched = paper_lr_schedule(opt, r=0.5)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(lrs, [1e-3 / (1 + 0.5 * t) for t in range(4)])
    state = sched.state_dict()
    other = paper_lr_schedule(fg.optim.SGD(model.param_groups(1e-4), lr=1e-3), r=0.0)
    other.load_state_dict(state)
    assert other.lr_lambdas[1].r == 0.5 and InverseTimeDecay()(10) == 1 / (1 + 1e-7)


def test_context_windows_are_views_with_the_right_pairs():
    tokens = np.arange(10, 20)
    ctx, target = context_windows(tokens, 4)
    assert ctx.shape == (7, 3) and target.shape == (7,)
    assert np.shares_memory(ctx, tokens) and np.shares_memory(target, tokens)
    np.testing.assert_array_equal(ctx[2], [12, 13, 14])
    assert target[2] == 15
    with pytest.raises(ValueError, match="1-D integer"):
        context_windows(np.zeros((2, 3), dtype=np.int64), 2)
    with pytest.raises(ValueError, match="at least n tokens"):
        context_windows(np.arange(3), 4)


def test_ngram_dataset_with_dataloader():
    tokens = np.random.default_rng(0).integers(0, 50, 1000)
    ds = ngram_dataset(fg.tensor(tokens), 3)
    assert len(ds) == 998
    seen = 0
    for ctx, target in DataLoader(ds, batch_size=64, shuffle=True,
                                  generator=fg.Generator().manual_seed(0)):
        c, t = ctx.numpy(), target.numpy()
        assert c.shape[1] == 2 and c.dtype == np.int64
        # every pair is a real window: find it in the stream
        pos = [np.flatnonzero((tokens[:-2] == a) & (tokens[1:-1] == b) & (tokens[2:] == y))
               for (a, b), y in zip(c, t)]
        assert all(len(q) for q in pos)
        seen += len(t)
    assert seen == 998


def _train(model, tokens, steps, lr=0.05, batch_size=32):
    loader = DataLoader(ngram_dataset(tokens, model.config.context), batch_size=batch_size,
                        shuffle=True, generator=fg.Generator().manual_seed(0))
    opt = fg.optim.Adam(model.parameters(), lr=lr)
    done = 0
    while done < steps:
        for ctx, target in loader:
            loss = F.cross_entropy(model(ctx), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    return model


def test_overfits_a_memorisable_sequence():
    """A stream where the two previous words determine the next: perplexity drops to ~1."""
    fg.manual_seed(3)
    rng = np.random.default_rng(3)
    tokens = np.tile(rng.integers(0, 30, 40), 8)  # a 40-word phrase, repeated
    model = NPLM(vocab_size=30, context=4, embedding_dim=8, hidden=32)
    start = perplexity(model, tokens)
    _train(model, tokens, 400)
    end = perplexity(model, tokens)
    assert start > 20 and end < 1.1, (start, end)


def test_perplexity_is_exp_mean_nll_and_state_dict_round_trip(tmp_path):
    fg.manual_seed(4)
    tokens = np.random.default_rng(4).integers(0, 20, 300)
    model = NPLM(vocab_size=20, context=3, embedding_dim=4, hidden=5)
    ctx, target = context_windows(tokens, 3)
    with fg.no_grad():
        nll = F.cross_entropy(model(fg.tensor(ctx.copy())), fg.tensor(target.copy())).item()
    assert perplexity(model, tokens, batch_size=37) == pytest.approx(math.exp(nll), rel=1e-5)
    fg.save(model.state_dict(), tmp_path / "nplm.safetensors")
    other = NPLM(NPLMConfig(vocab_size=20, context=3, embedding_dim=4, hidden=5))
    assert perplexity(other, tokens) != perplexity(model, tokens)
    other.load_state_dict(fg.load(tmp_path / "nplm.safetensors"))
    np.testing.assert_array_equal(other(fg.tensor(ctx[:5].copy())).detach().numpy(),
                                  model(fg.tensor(ctx[:5].copy())).detach().numpy())


class _Unigram:
    """Any object with next_distribution(context) can be mixed in."""

    def __init__(self, probs):
        self.probs = probs
        self.calls = []

    def next_distribution(self, context):
        self.calls.append(context)
        return self.probs


def test_mix_and_mixture_perplexity():
    fg.manual_seed(5)
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, 12, 200)
    model = NPLM(vocab_size=12, context=3, embedding_dim=3, hidden=4)
    q = rng.dirichlet(np.ones(12))
    ctx, target = context_windows(tokens, 3)
    with fg.no_grad():
        p = F.softmax(model(fg.tensor(ctx.copy())), dim=-1).numpy().astype(np.float64)
    expected = math.exp(-np.mean(np.log(0.5 * p[np.arange(len(target)), target]
                                        + 0.5 * q[target])))
    other = _Unigram(q)
    assert mixture_perplexity(model, other, tokens, batch_size=50) == \
        pytest.approx(expected, rel=1e-5)
    assert other.calls[0] == tuple(int(w) for w in tokens[:2]) and len(other.calls) == 198
    assert mixture_perplexity(model, q, tokens) == pytest.approx(expected, rel=1e-5)
    rows = np.tile(q, (len(target), 1))
    assert mixture_perplexity(model, rows, tokens, batch_size=64) == \
        pytest.approx(expected, rel=1e-5)
    assert mixture_perplexity(model, q, tokens, weight=1.0) == \
        pytest.approx(perplexity(model, tokens), rel=1e-5)
    m = mix(model, other, ctx[:4], weight=0.25)
    np.testing.assert_allclose(m, 0.25 * p[:4] + 0.75 * q, rtol=1e-5)
    np.testing.assert_allclose(m.sum(1), 1.0, rtol=1e-5)


def test_mixture_with_an_ngram_model_scored_over_the_stream():
    """flowgrad.models.KneserNey is scored in one log_prob call; the per-position
    next_distribution path and weight 0 (the n-gram alone) give the same numbers."""
    from flowgrad.models import KneserNey

    rng = np.random.default_rng(6)
    train, test = rng.integers(0, 30, 3000), rng.integers(0, 30, 400)
    kn = KneserNey(3, vocab=30).fit(train)
    fg.manual_seed(6)
    model = NPLM(vocab_size=30, context=4, embedding_dim=4, hidden=5)
    fast = mixture_perplexity(model, kn, test)
    assert fast == pytest.approx(mixture_perplexity(model, _PerPosition().wrap(kn), test),
                                 rel=1e-9)
    assert mixture_perplexity(model, kn, test, weight=0.0) == \
        pytest.approx(kn.perplexity(test[3:], history=test[:3]), rel=1e-9)


class _PerPosition:
    """Hides log_prob, so that only next_distribution is used."""

    def wrap(self, inner):
        self.inner = inner
        return self

    def next_distribution(self, context):
        return self.inner.next_distribution(context)
