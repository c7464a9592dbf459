"""NCE and sampled softmax (flowgrad.nn.functional.sampled): against PyTorch re-implementations
of the same formulas with the same samples (PyTorch has neither built in), against finite
differences, exact evaluation with the full softmax, and an NPLM trained by NCE on a synthetic
bigram language against one trained with the full softmax."""

import math

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad import backend, nn
from flowgrad.autograd.gradcheck import gradcheck
from flowgrad.models.nplm import NPLM, context_windows, ngram_dataset, perplexity
from flowgrad.nn import functional as F
from flowgrad.utils.data import DataLoader

V, D, B, K = 23, 5, 6, 7
torch.set_num_threads(1)  # as tests/conftest.py: no idle PyTorch threads competing with NumPy


def _problem(seed=0, shared=True, dtype=np.float64):
    rng = np.random.default_rng(seed)
    h, w, b = (rng.standard_normal(s).astype(dtype) for s in ((B, D), (V, D), (V,)))
    target = rng.integers(0, V, B)
    q = rng.random(V) + 0.1
    samples = rng.integers(0, V, K) if shared else rng.integers(0, V, (B, K))
    if shared:
        samples[:2] = target[:2]  # accidental hits
    else:
        samples[0, 0], samples[3, 2] = target[0], target[3]
    return h, w, b, target, q, samples


def _torch_scores(h, w, b, target, samples):
    s_t = (h * w[target]).sum(-1)
    s_n = h @ w[samples].T if samples.ndim == 1 else torch.einsum("bd,bkd->bk", h, w[samples])
    if b is not None:
        s_t, s_n = s_t + b[target], s_n + b[samples]
    return s_t, s_n


def _torch_hits(target, samples):
    return target[:, None] == (samples if samples.ndim == 2 else samples[None, :])


def torch_nce(h, w, b, target, q, samples, log_z=0.0, remove_hits=False):
    """Mnih & Teh (2012) eq. 7 with Δ(w) = s(w) - log Z - log(k q(w))."""
    k = samples.shape[-1]
    logq = torch.log(q / q.sum())
    s_t, s_n = _torch_scores(h, w, b, target, samples)
    d_t = s_t - log_z - (logq[target] + math.log(k))
    d_n = s_n - log_z - (logq[samples] + math.log(k))
    noise = torch.nn.functional.logsigmoid(-d_n)
    if remove_hits:
        noise = noise.masked_fill(_torch_hits(target, samples), 0.0)
    return (-torch.nn.functional.logsigmoid(d_t) - noise.sum(-1)).mean()


def torch_sampled_softmax(h, w, b, target, q, samples, remove_hits=True):
    """TensorFlow's sampled_softmax_loss: logits minus log expected count, target in column 0."""
    k = samples.shape[-1]
    logq = torch.log(q / q.sum())
    s_t, s_n = _torch_scores(h, w, b, target, samples)
    l_t = s_t - (logq[target] + math.log(k))
    l_n = s_n - (logq[samples] + math.log(k))
    if remove_hits:
        l_n = l_n.masked_fill(_torch_hits(target, samples), float("-inf"))
    logits = torch.cat([l_t[:, None], l_n], 1)
    return torch.nn.functional.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long))


def _compare(fg_fn, torch_fn, shared, dtype, bias=True, **kw):
    h, w, b, target, q, samples = _problem(1, shared, dtype)
    fh, fw, fb = (fg.tensor(a, requires_grad=True) for a in (h, w, b))
    th, tw, tb = (torch.tensor(a, requires_grad=True) for a in (h, w, b))
    loss = fg_fn(fh, fw, fb if bias else None, fg.tensor(target), K, fg.tensor(q),
                 samples=fg.tensor(samples), **kw)
    tloss = torch_fn(th, tw, tb if bias else None, torch.tensor(target), torch.tensor(q),
                     torch.tensor(samples), **{k.replace("remove_accidental_hits",
                                                         "remove_hits"): v
                                               for k, v in kw.items()})
    loss.backward()
    tloss.backward()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert loss.dtype == (fg.float32 if dtype == np.float32 else fg.float64)
    np.testing.assert_allclose(loss.item(), tloss.item(), **tol)
    pairs = [(fh, th), (fw, tw)] + ([(fb, tb)] if bias else [])
    for f, t in pairs:
        np.testing.assert_allclose(f.grad.numpy(), t.grad.numpy(), **tol)
    return fw.grad.numpy(), samples, target


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("hits", [False, True])
def test_nce_matches_pytorch(dtype, shared, hits):
    gw, samples, target = _compare(F.nce_loss, torch_nce, shared, dtype,
                                   remove_accidental_hits=hits)
    untouched = np.setdiff1d(np.arange(V), np.concatenate([samples.ravel(), target]))
    assert len(untouched) and not gw[untouched].any()  # only gathered rows get a gradient


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("hits", [False, True])
def test_sampled_softmax_matches_pytorch(dtype, shared, hits):
    gw, samples, target = _compare(F.sampled_softmax_loss, torch_sampled_softmax, shared, dtype,
                                   remove_accidental_hits=hits)
    untouched = np.setdiff1d(np.arange(V), np.concatenate([samples.ravel(), target]))
    assert not gw[untouched].any()


def test_without_bias_and_with_a_learnable_log_z():
    _compare(F.nce_loss, torch_nce, True, np.float64, bias=False)
    _compare(F.sampled_softmax_loss, torch_sampled_softmax, False, np.float64, bias=False)
    h, w, b, target, q, samples = _problem(2)
    log_z = fg.tensor(0.7, dtype=fg.float64, requires_grad=True)
    tz = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    loss = F.nce_loss(fg.tensor(h), fg.tensor(w), fg.tensor(b), fg.tensor(target), K,
                      fg.tensor(q), samples=fg.tensor(samples), log_z=log_z)
    tloss = torch_nce(*(torch.tensor(a) for a in (h, w, b, target)), torch.tensor(q),
                      torch.tensor(samples), log_z=tz)
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    np.testing.assert_allclose(log_z.grad.item(), tz.grad.item(), rtol=1e-10)


@pytest.mark.parametrize("fn", [F.nce_loss, F.sampled_softmax_loss])
@pytest.mark.parametrize("shared", [True, False])
def test_gradcheck_with_fixed_samples(fn, shared):
    h, w, b, target, q, samples = _problem(3, shared)
    inputs = [fg.tensor(a, requires_grad=True) for a in (h, w, b)]
    log_z = fg.tensor(0.3, dtype=fg.float64, requires_grad=True)
    extra = {"log_z": log_z} if fn is F.nce_loss else {}

    def f(hh, ww, bb, *z):
        kw = {"log_z": z[0]} if z else {}
        return fn(hh, ww, bb, fg.tensor(target), K, fg.tensor(q), samples=fg.tensor(samples),
                  reduction="none", **kw)

    assert gradcheck(f, inputs + ([log_z] if extra else []), eps=1e-6, atol=1e-7)


def test_sampled_softmax_over_every_word_is_the_full_softmax():
    """With all |V| words as samples, uniform q and hits removed, the sampled softmax is exact."""
    h, w, b, target, _, _ = _problem(4)
    args = [fg.tensor(a) for a in (h, w, b)]
    loss = F.sampled_softmax_loss(*args, fg.tensor(target), V, fg.ones(V),
                                  samples=fg.arange(V))
    full = F.cross_entropy(F.linear(*args), fg.tensor(target))
    np.testing.assert_allclose(loss.item(), full.item(), rtol=1e-12)
    kept = F.sampled_softmax_loss(*args, fg.tensor(target), V, fg.ones(V),
                                  samples=fg.arange(V), remove_accidental_hits=False)
    assert kept.item() > loss.item()  # the target then competes with itself


def test_sampling_is_seeded_and_follows_the_noise():
    q = F.unigram_noise(np.array([1.0, 0.0, 3.0, 6.0]))
    np.testing.assert_allclose(q.numpy(), [0.1, 0.0, 0.3, 0.6], rtol=1e-6)
    smooth = F.unigram_noise(np.array([1.0, 16.0]), power=0.75)
    np.testing.assert_allclose(smooth.numpy(), np.array([1, 8]) / 9, rtol=1e-6)
    draws = F.sample_noise(q, 20000, generator=0).numpy()
    freq = np.bincount(draws, minlength=4) / 20000
    np.testing.assert_allclose(freq, [0.1, 0.0, 0.3, 0.6], atol=0.015)
    assert (F.sample_noise(q, 50, generator=7).numpy()
            == F.sample_noise(q, 50, generator=7).numpy()).all()
    assert F.sample_noise(q, 5, generator=1, batch_size=3).shape == (3, 5)
    h, w, b, target, qq, _ = _problem(5)
    args = [fg.tensor(a) for a in (h, w, b, target)]
    one = F.nce_loss(*args, K, fg.tensor(qq), generator=fg.Generator().manual_seed(3)).item()
    same = F.nce_loss(*args, K, fg.tensor(qq), generator=fg.Generator().manual_seed(3)).item()
    other = F.nce_loss(*args, K, fg.tensor(qq), generator=fg.Generator().manual_seed(4)).item()
    assert one == same and one != other


def test_errors_name_the_problem():
    h, w, b, target, q, samples = _problem(6)
    with pytest.raises(Exception, match="input .* and weight"):
        F.nce_loss(fg.tensor(h[:, :3]), fg.tensor(w), fg.tensor(b), fg.tensor(target), K,
                   fg.tensor(q))
    with pytest.raises(Exception, match="noise must be a distribution over the 23"):
        F.sampled_softmax_loss(fg.tensor(h), fg.tensor(w), fg.tensor(b), fg.tensor(target), K,
                               fg.tensor(q[:5]))
    with pytest.raises(Exception, match=r"expected \(7,\) or \(6, 7\)"):
        F.nce_loss(fg.tensor(h), fg.tensor(w), fg.tensor(b), fg.tensor(target), K,
                   fg.tensor(q), samples=fg.tensor(samples[:3]))
    with pytest.raises(ValueError, match="reduction"):
        F.nce_loss(fg.tensor(h), fg.tensor(w), fg.tensor(b), fg.tensor(target), K,
                   fg.tensor(q), reduction="avg")


@pytest.mark.parametrize("chunk", [1, 4, 100])
def test_full_log_prob_in_chunks(chunk):
    h, w, b, target, _, _ = _problem(7)
    args = [fg.tensor(a) for a in (h, w, b)]
    expected = F.log_softmax(F.linear(*args), dim=-1).numpy()
    got = F.full_log_prob(*args, fg.tensor(target), chunk_size=chunk)
    np.testing.assert_allclose(got.numpy(), expected[np.arange(B), target], rtol=1e-12)
    np.testing.assert_allclose(F.full_log_prob(*args, chunk_size=chunk).numpy(), expected,
                               rtol=1e-12)
    assert not got.requires_grad


def test_layers():
    h, w, b, target, q, samples = _problem(8, dtype=np.float32)
    counts = np.arange(1, V + 1)
    nce = nn.NCELoss(counts, K, learn_log_z=True, generator=0)
    assert [n for n, _ in nce.named_parameters()] == ["log_z"]
    assert set(nce.state_dict()) == {"log_z", "noise"}
    fh = fg.tensor(h, requires_grad=True)
    loss = nce(fh, fg.tensor(w), fg.tensor(b), fg.tensor(target))
    loss.backward()
    assert nce.log_z.grad is not None and fh.grad is not None
    fixed = nn.NCELoss(F.unigram_noise(counts), K, generator=0)
    assert list(fixed.parameters()) == []
    expected = F.nce_loss(fg.tensor(h), fg.tensor(w), fg.tensor(b), fg.tensor(target), K,
                          F.unigram_noise(counts), generator=0)
    assert fixed(fg.tensor(h), fg.tensor(w), fg.tensor(b), fg.tensor(target)).item() == \
        pytest.approx(expected.item())
    ss = nn.SampledSoftmaxLoss(F.unigram_noise(counts), K, generator=1, reduction="none")
    assert tuple(ss(fg.tensor(h), fg.tensor(w), fg.tensor(b), fg.tensor(target)).shape) == (B,)
    assert "num_sampled=7" in repr(ss)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("fn", [F.nce_loss, F.sampled_softmax_loss])
@pytest.mark.parametrize("shared", [True, False])
def test_on_gpu_matches_cpu(fn, shared):
    h, w, b, target, q, samples = _problem(9, shared)
    results = []
    for device in ("cpu", "cuda"):
        args = [fg.tensor(a, device=device, requires_grad=True) for a in (h, w, b)]
        loss = fn(*args, fg.tensor(target, device=device), K, fg.tensor(q, device=device),
                  samples=fg.tensor(samples, device=device))
        loss.backward()
        drawn = fn(*args, fg.tensor(target, device=device), K, fg.tensor(q, device=device),
                   generator=5)
        exact = F.full_log_prob(*args, fg.tensor(target, device=device), chunk_size=4)
        assert loss.device.startswith(device) and args[1].grad.device.startswith(device)
        results.append([loss.item(), drawn.item(), exact.cpu().numpy()]
                       + [a.grad.cpu().numpy() for a in args])
    for a, b_ in zip(*results):
        np.testing.assert_allclose(a, b_, rtol=1e-9, atol=1e-12)


# --- behaviour: NCE and the full softmax on a synthetic language -----------------------------

def _bigram_language(vocab=200, successors=4, length=30000, seed=0):
    """A random sparse bigram process: each word has `successors` possible next words with
    Dirichlet(1) probabilities. Returns the streams and the process's entropy rate."""
    rng = np.random.default_rng(seed)
    trans = np.zeros((vocab, vocab))
    for w in range(vocab):
        trans[w, rng.choice(vocab, successors, replace=False)] = rng.dirichlet(np.ones(successors))
    pi = np.full(vocab, 1.0 / vocab)
    for _ in range(1000):
        pi = pi @ trans
    logs = np.log(np.where(trans > 0, trans, 1.0))
    entropy = -(pi[:, None] * trans * logs).sum()
    cdf = np.cumsum(trans, 1)

    def stream(n, seed):
        u, out, w = np.random.default_rng(seed).random(n), np.empty(n, np.int64), 0
        for t in range(n):
            w = out[t] = min(np.searchsorted(cdf[w], u[t], side="right"), vocab - 1)
        return out

    return stream(length, seed + 1), stream(5000, seed + 2), entropy


def _train_lm(train, objective, noise, epochs=5, k=25):
    fg.manual_seed(0)
    model = NPLM(vocab_size=200, context=2, embedding_dim=64, hidden=0)
    model.init_unigram_bias(np.bincount(train, minlength=200))
    opt = fg.optim.Adam(model.parameters(), lr=2e-2)
    loader = DataLoader(ngram_dataset(train, 2), batch_size=128, shuffle=True,
                        generator=fg.Generator().manual_seed(0))
    total = epochs * len(loader)
    sched = fg.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.02, 1 - s / total))
    gen = fg.Generator().manual_seed(0)
    for _ in range(epochs):
        for ctx, target in loader:
            if objective == "full":
                loss = F.cross_entropy(model(ctx), target)
            else:
                fn = F.nce_loss if objective == "nce" else F.sampled_softmax_loss
                loss = fn(model.features(ctx), model.output.weight, model.output.bias, target,
                          k, noise, generator=gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model


def test_nce_trained_nplm_approaches_the_full_softmax_and_the_true_entropy():
    """Measured (seed 0, exact test perplexities): the process's exp(H) = 3.06; full softmax
    3.20; NCE (k = 25, unigram noise, log Z = 0) 3.31, 3.5% above the full softmax; sampled
    softmax (k = 25) 3.40. The NCE model comes out self-normalised: log Z(context) = 0.06 on
    average (std 0.21), where the full-softmax model's is 5.1. About 6 s with one BLAS thread."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    train, test, entropy = _bigram_language()
    noise = F.unigram_noise(np.bincount(train, minlength=200))
    true_ppl = math.exp(entropy)
    with threadpoolctl.threadpool_limits(1):  # small GEMMs: threads only contend on 2 cores
        full = perplexity(_train_lm(train, "full", noise), test)
        nce_model = _train_lm(train, "nce", noise)
        nce = perplexity(nce_model, test)
        sampled = perplexity(_train_lm(train, "sampled", noise), test)
    assert abs(true_ppl - 3.06) < 0.01
    assert full < 1.08 * true_ppl, (full, true_ppl)
    assert nce < 1.05 * full and nce < 1.12 * true_ppl, (nce, full, true_ppl)
    assert sampled < 1.08 * full, (sampled, full)
    ctx, target = context_windows(test, 2)
    with fg.no_grad():
        feats = nce_model.features(fg.tensor(ctx.copy()))
        logp = F.full_log_prob(feats, nce_model.output.weight, nce_model.output.bias,
                               fg.tensor(target.copy()), chunk_size=1000)
        log_z = F.linear(feats, nce_model.output.weight, nce_model.output.bias).logsumexp(-1)
    assert math.exp(-logp.mean().item()) == pytest.approx(nce, rel=1e-5)
    assert abs(log_z.mean().item()) < 0.3
