"""fg.nn.MultiheadAttention, the Transformer layers and models, F.multi_head_attention_forward and
the positional encodings against torch.nn: weights moved through state_dict both ways, then
outputs and the gradients of every input and parameter in float64 and float32, for every mask
kind and flag; finite differences; dropout's statistics; errors; a model that learns."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.autograd.gradcheck import gradcheck
from flowgrad.errors import DTypeError, ShapeError

torch = pytest.importorskip("torch")

TOL = {"float32": dict(atol=2e-5, rtol=2e-4), "float64": dict(atol=1e-10, rtol=1e-8)}
E, H, L, S, N = 8, 2, 3, 4, 2  # width, heads, target and source lengths, batch


def _libs(dtype):
    return (torch, getattr(torch, dtype)), (fg, getattr(fg, dtype))


def _pair(name, dtype, *args, **kwargs):
    """The same module in torch and flowgrad, torch's weights loaded into flowgrad."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's nested-tensor notes
        tm = getattr(torch.nn, name)(*args, **kwargs).to(getattr(torch, dtype))
    fm = getattr(fg.nn, name)(*args, **kwargs, dtype=getattr(fg, dtype))
    assert [(k, tuple(p.shape)) for k, p in tm.named_parameters()] == \
        [(k, tuple(p.shape)) for k, p in fm.named_parameters()]
    assert list(tm.state_dict()) == list(fm.state_dict())
    result = fm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys
    return tm, fm


def _mask(lib, m):
    return None if m is None else lib.tensor(m)


def _run(lib, module, arrays, same=(), masks=None, seed=1, **kwargs):
    """Call ``module`` on tensors made from ``arrays`` (``same`` lists (i, j): argument i is the
    very tensor j), sum every output against fixed random weights, backward; returns the
    outputs and the gradients of the inputs and of every parameter."""
    inputs = []
    for i, a in enumerate(arrays):
        alias = dict(same).get(i)
        inputs.append(inputs[alias] if alias is not None else lib.tensor(a, requires_grad=True))
    masks = {k: _mask(lib, v) for k, v in (masks or {}).items()}
    out = module(*inputs, **masks, **kwargs)
    outs = [o for o in (out if isinstance(out, tuple) else (out,)) if o is not None]
    rng = np.random.default_rng(seed)
    total = None
    for o in outs:
        w = rng.standard_normal(tuple(o.shape)).astype(str(arrays[0].dtype))
        term = (o * lib.tensor(w)).sum()
        total = term if total is None else total + term
    total.backward()
    grads = [t.grad for i, t in enumerate(inputs) if i not in dict(same)]
    grads += [p.grad for _, p in module.named_parameters()]
    return ([o.detach().numpy() for o in outs],
            [None if g is None else g.detach().numpy() for g in grads])


def _compare(a, b, dtype, nan=False):
    (oa, ga), (ob, gb) = a, b
    assert len(oa) == len(ob) and len(ga) == len(gb)
    for u, v in zip(oa, ob):
        assert u.shape == v.shape and u.dtype == v.dtype
        assert nan or np.isfinite(u).all()
        np.testing.assert_allclose(v, u, **TOL[dtype])
    for k, (u, v) in enumerate(zip(ga, gb)):
        assert (u is None) == (v is None), f"gradient {k}"
        if u is not None:
            np.testing.assert_allclose(v, u, **TOL[dtype], err_msg=f"gradient {k}")


def _both(name, dtype, args, kwargs, arrays, same=(), masks=None, nan=False, **call):
    tm, fm = _pair(name, dtype, *args, **kwargs)
    _compare(_run(torch, tm, arrays, same, masks, **call),
             _run(fg, fm, arrays, same, masks, **call), dtype, nan)
    return tm, fm


def _qkv(dtype, batch_first=False, batched=True, kdim=E, vdim=E, seed=0):
    rng = np.random.default_rng(seed)

    def shape(n, e):
        if not batched:
            return (n, e)
        return (N, n, e) if batch_first else (n, N, e)
    return [rng.standard_normal(shape(n, e)).astype(dtype)
            for n, e in ((L, E), (S, kdim), (S, vdim))]


# ------------------------------------------------------------------ MultiheadAttention

MHA_CASES = {  # constructor kwargs, call kwargs
    "plain": ({}, {}),
    "no_bias": ({"bias": False}, {}),
    "bias_kv": ({"add_bias_kv": True}, {}),
    "zero_attn": ({"add_zero_attn": True}, {}),
    "bias_kv_zero_attn": ({"add_bias_kv": True, "add_zero_attn": True}, {}),
    "kdim_vdim": ({"kdim": 5, "vdim": 3}, {}),
    "batch_first": ({"batch_first": True}, {}),
    "per_head_weights": ({}, {"average_attn_weights": False}),
    "no_weights": ({}, {"need_weights": False}),
    "no_weights_bias_kv": ({"add_bias_kv": True, "add_zero_attn": True},
                           {"need_weights": False}),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(MHA_CASES))
@pytest.mark.parametrize("attention", ["cross", "self", "kv_same"])
def test_mha_matches_torch(case, attention, dtype):
    kwargs, call = MHA_CASES[case]
    if attention != "cross" and "kdim" in kwargs:
        pytest.skip("kdim/vdim differ from embed_dim: keys and values are other tensors")
    arrays = _qkv(dtype, kwargs.get("batch_first", False), kdim=kwargs.get("kdim", E),
                  vdim=kwargs.get("vdim", E))
    same = {"cross": (), "self": ((1, 0), (2, 0)), "kv_same": ((2, 1),)}[attention]
    if attention == "self":
        arrays[1] = arrays[2] = arrays[0]
    _both("MultiheadAttention", dtype, (E, H), kwargs, arrays, same, **call)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("kwargs", [{}, {"add_bias_kv": True, "add_zero_attn": True},
                                    {"kdim": 5, "vdim": 3}])
def test_mha_unbatched(kwargs, need_weights, dtype):
    arrays = _qkv(dtype, batched=False, kdim=kwargs.get("kdim", E), vdim=kwargs.get("vdim", E))
    rng = np.random.default_rng(3)
    masks = {"attn_mask": rng.standard_normal((H, L, S)).astype(dtype),
             "key_padding_mask": np.array([0.0, -np.inf, 0.0, 0.0], dtype=dtype)}
    _both("MultiheadAttention", dtype, (E, H), kwargs, arrays, masks=masks,
          need_weights=need_weights)


def _attn_masks(kind, dtype, rng, extra_heads=True):
    """Masks of one kind: 'bool2d', 'float2d', 'bool3d', 'float3d', 'kpm_bool', 'kpm_float'
    or a '+'-joined pair; no row is fully masked."""
    masks = {}
    for part in kind.split("+"):
        if part.startswith("kpm"):
            kpm = np.zeros((N, S), dtype=bool)
            kpm[0, 1] = kpm[1, 3] = kpm[1, 0] = True
            masks["key_padding_mask"] = kpm if part == "kpm_bool" else \
                np.where(kpm, -np.inf, rng.uniform(-1, 1, (N, S))).astype(dtype)
        else:
            shape = (L, S) if part.endswith("2d") else (N * H, L, S)
            keep = rng.random(shape) < 0.6
            keep[..., 2] = True  # column 2 is never padded above
            if part.startswith("bool"):
                masks["attn_mask"] = ~keep
            else:
                masks["attn_mask"] = np.where(keep, rng.standard_normal(shape),
                                              -np.inf).astype(dtype)
    return masks


MASKS = ["bool2d", "float2d", "bool3d", "float3d", "kpm_bool", "kpm_float",
         "bool2d+kpm_bool", "float3d+kpm_float", "float2d+kpm_float", "bool3d+kpm_bool"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("kind", MASKS)
def test_mha_masks(kind, need_weights, dtype):
    masks = _attn_masks(kind, dtype, np.random.default_rng(5))
    _both("MultiheadAttention", dtype, (E, H), {}, _qkv(dtype), masks=masks,
          need_weights=need_weights)


@pytest.mark.parametrize("kwargs", [{"add_bias_kv": True}, {"add_zero_attn": True},
                                    {"batch_first": True, "add_bias_kv": True}])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_masks_with_extra_keys(kwargs, need_weights):
    masks = _attn_masks("float3d+kpm_bool", "float64", np.random.default_rng(6))
    masks["attn_mask"] = masks["attn_mask"] == -np.inf
    _both("MultiheadAttention", "float64", (E, H), kwargs,
          _qkv("float64", kwargs.get("batch_first", False)), masks=masks,
          need_weights=need_weights)


def test_mha_mixed_mask_dtypes_warn_like_torch():
    masks = _attn_masks("float2d+kpm_bool", "float64", np.random.default_rng(7))
    with pytest.warns(UserWarning, match="mismatched key_padding_mask and attn_mask"):
        _both("MultiheadAttention", "float64", (E, H), {}, _qkv("float64"), masks=masks)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_kpm", [False, True])
def test_mha_is_causal_hint(with_kpm, need_weights, dtype):
    arrays = _qkv(dtype)
    arrays[1], arrays[2] = arrays[1][:L], arrays[2][:L]
    masks = {"attn_mask": np.triu(np.ones((L, L), dtype=bool), 1)}
    if with_kpm:
        masks["key_padding_mask"] = np.array([[False, True, False], [False, False, True]])
    _both("MultiheadAttention", dtype, (E, H), {}, arrays, masks=masks, is_causal=True,
          need_weights=need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_fully_masked_rows_as_torch(need_weights):
    """A query row with every key masked: NaN with need_weights (softmax over -inf alone), and
    with need_weights=False the zeros of scaled_dot_product_attention, then out_proj's bias;
    gradients as torch's (NaN where torch's are)."""
    kpm = np.zeros((N, S), dtype=bool)
    kpm[0] = True
    tm, fm = _both("MultiheadAttention", "float64", (E, H), {}, _qkv("float64"),
                   masks={"key_padding_mask": kpm}, nan=need_weights,
                   need_weights=need_weights)
    out = fm(*(fg.tensor(a) for a in _qkv("float64")), key_padding_mask=fg.tensor(kpm),
             need_weights=need_weights)[0].detach().numpy()
    assert np.isnan(out[:, 0]).all() == need_weights and np.isfinite(out[:, 1]).all()


def test_mha_parameters_and_init_as_torch():
    fg.manual_seed(0)
    m = fg.nn.MultiheadAttention(64, 4, add_bias_kv=True, kdim=32, vdim=16)
    assert [(k, tuple(p.shape)) for k, p in m.named_parameters()] == [
        ("q_proj_weight", (64, 64)), ("k_proj_weight", (64, 32)), ("v_proj_weight", (64, 16)),
        ("in_proj_bias", (192,)), ("bias_k", (1, 1, 64)), ("bias_v", (1, 1, 64)),
        ("out_proj.weight", (64, 64)), ("out_proj.bias", (64,))]
    assert m.in_proj_weight is None and m.head_dim == 16 and not m._qkv_same_embed_dim
    bound = np.sqrt(6 / (64 + 32))  # xavier_uniform_ on (64, 32)
    w = m.k_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert not m.in_proj_bias.detach().numpy().any()
    assert not m.out_proj.bias.detach().numpy().any()
    m = fg.nn.MultiheadAttention(64, 4, bias=False)
    assert [k for k, _ in m.named_parameters()] == ["in_proj_weight", "out_proj.weight"]
    assert m.bias_k is None and m.out_proj.bias is None


@pytest.mark.parametrize("kwargs", [{}, {"kdim": 5, "vdim": 3, "add_bias_kv": True}])
def test_mha_state_dict_flowgrad_to_torch(kwargs):
    fg.manual_seed(1)
    fm = fg.nn.MultiheadAttention(E, H, **kwargs, dtype=fg.float64)
    tm = torch.nn.MultiheadAttention(E, H, **kwargs).double()
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                        for k, v in fm.state_dict().items()})
    arrays = _qkv("float64", kdim=kwargs.get("kdim", E), vdim=kwargs.get("vdim", E))
    _compare(_run(torch, tm, arrays), _run(fg, fm, arrays), "float64")


@pytest.mark.parametrize("static", [False, True])
def test_functional_multi_head_attention_forward(static):
    rng = np.random.default_rng(8)
    arrays = _qkv("float64")
    weights = {"in_proj_weight": rng.standard_normal((3 * E, E)),
               "in_proj_bias": rng.standard_normal(3 * E),
               "out_proj_weight": rng.standard_normal((E, E)),
               "out_proj_bias": rng.standard_normal(E)}
    statics = {"static_k": rng.standard_normal((N * H, S, E // H)),
               "static_v": rng.standard_normal((N * H, S, E // H))} if static else {}
    mask = rng.standard_normal((L, S))
    results = []
    for lib in (torch, fg):
        q, k, v = (lib.tensor(a, requires_grad=True) for a in arrays)
        w = {name: lib.tensor(a, requires_grad=True) for name, a in weights.items()}
        st = {name: lib.tensor(a, requires_grad=True) for name, a in statics.items()}
        out, attn = lib.nn.functional.multi_head_attention_forward(
            q, k, v, E, H, w["in_proj_weight"], w["in_proj_bias"], None, None, False, 0.0,
            w["out_proj_weight"], w["out_proj_bias"], attn_mask=lib.tensor(mask), **st)
        (out.sum() + (attn * attn).sum()).backward()
        tensors = [q, k, v, *w.values(), *st.values()]
        results.append(([out.detach().numpy(), attn.detach().numpy()],
                        [None if t.grad is None else t.grad.numpy() for t in tensors]))
    _compare(results[0], results[1], "float64")


def test_mha_gradcheck():
    """Backprop against central differences through every input and weight of a tiny
    multi-head attention with a float mask, a padding mask, bias_kv and a zero key."""
    rng = np.random.default_rng(9)
    e, h = 4, 2

    def t(*shape):
        return fg.tensor(rng.standard_normal(shape), requires_grad=True)
    q, k, v = t(2, 2, e), t(3, 2, e), t(3, 2, e)
    w_in, b_in, w_out, b_out, bk, bv = t(3 * e, e), t(3 * e), t(e, e), t(e), t(1, 1, e), \
        t(1, 1, e)
    mask = fg.tensor(rng.standard_normal((2, 3)))
    kpm = fg.tensor(np.array([[0.0, -np.inf, 0.0], [0.0, 0.0, 0.0]]))

    def f(q, k, v, w_in, b_in, w_out, b_out, bk, bv):
        return fg.nn.functional.multi_head_attention_forward(
            q, k, v, e, h, w_in, b_in, bk, bv, True, 0.0, w_out, b_out, attn_mask=mask,
            key_padding_mask=kpm, average_attn_weights=False)
    assert gradcheck(f, (q, k, v, w_in, b_in, w_out, b_out, bk, bv))


def test_mha_dropout_statistics():
    """Training-mode dropout on the attention weights: about p of the per-head weights are
    zero and the rest are scaled by 1/(1-p) (the returned weights are the dropped ones, as in
    PyTorch); eval mode and p=0 are deterministic."""
    fg.manual_seed(0)
    p, s = 0.3, 64
    m = fg.nn.MultiheadAttention(8, 2, dropout=p)
    x = fg.randn(s, 4, 8)
    _, w = m(x, x, x, average_attn_weights=False)
    w = w.detach().numpy()
    assert abs((w == 0).mean() - p) < 0.02
    assert abs(w.sum(-1).mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    with fg.no_grad():
        out1, out2 = m(x, x, x)[0].numpy(), m(x, x, x)[0].numpy()
        assert not np.allclose(out1, out2)
        m.eval()
        out1, w1 = m(x, x, x, average_attn_weights=False)
        np.testing.assert_allclose(w1.numpy().sum(-1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(out1.numpy(), m(x, x, x)[0].numpy())


def _error(fn_torch, fn_fg):
    """Both raise; flowgrad's error is an instance of torch's exception class."""
    with pytest.raises(Exception) as ref:
        fn_torch()
    with pytest.raises(type(ref.value)) as got:
        fn_fg()
    return str(ref.value), str(got.value)


def test_mha_errors_like_torch():
    _, msg = _error(lambda: torch.nn.MultiheadAttention(10, 3),
                    lambda: fg.nn.MultiheadAttention(10, 3))
    assert "divisible" in msg and "10" in msg and "3" in msg
    _, msg = _error(lambda: torch.nn.MultiheadAttention(0, 3),
                    lambda: fg.nn.MultiheadAttention(0, 3))
    assert "greater than 0" in msg
    tm, fm = _pair("MultiheadAttention", "float64", E, H)
    q, k, v = _qkv("float64")

    def both(**kw):
        bad = {"q": q, "k": k, "v": v, **kw}
        masks = {n: bad.pop(n) for n in ("attn_mask", "key_padding_mask") if n in bad}
        extra = {n: bad.pop(n) for n in list(bad) if n not in "qkv"}
        return _error(lambda: tm(*(torch.tensor(bad[n]) for n in "qkv"),
                                 **{n: torch.tensor(m) for n, m in masks.items()}, **extra),
                      lambda: fm(*(fg.tensor(bad[n]) for n in "qkv"),
                                 **{n: fg.tensor(m) for n, m in masks.items()}, **extra))
    cases = [
        (dict(q=q[None]), ["4-D"]),
        (dict(k=k[0]), ["3-D", "2-D"]),
        (dict(key_padding_mask=np.zeros((N, S, 1), bool)), ["key_padding_mask", "3-D"]),
        (dict(key_padding_mask=np.zeros((N, S + 1), bool)), ["key_padding_mask", str(S)]),
        (dict(attn_mask=np.zeros((L, S + 1), bool)), ["(3, 5)", "(3, 4)"]),
        (dict(attn_mask=np.zeros((H, L, S), bool)), ["(2, 3, 4)", "(4, 3, 4)"]),
        (dict(attn_mask=np.zeros((1, 1, L, S), bool)), ["attn_mask", "4-D"]),
        (dict(attn_mask=np.zeros((L, S), np.int64)), ["bool and floating", "attn_mask"]),
        (dict(key_padding_mask=np.zeros((N, S), np.int64)), ["key_padding_mask"]),
        (dict(q=q[..., :4]), ["embedding dimension of 8", "4"]),
        (dict(v=v[:3]), ["key shape", "value shape"]),
        (dict(is_causal=True), ["is_causal", "attn_mask"]),
    ]
    for kw, words in cases:
        _, msg = both(**kw)
        for word in words:
            assert word in msg, (kw.keys(), msg)
    assert issubclass(fg.nn.functional.attention.MultiheadAttentionShapeError, ShapeError)
    assert issubclass(fg.nn.functional.attention.MultiheadAttentionDTypeError, DTypeError)


# ------------------------------------------------------------------ Transformer layers

D, NH, FF = 8, 2, 16
LAYER_CASES = {
    "post_norm": {},
    "pre_norm": {"norm_first": True},
    "gelu": {"activation": "gelu"},
    "gelu_pre_norm_batch_first": {"activation": "gelu", "norm_first": True,
                                  "batch_first": True},
    "no_bias_eps": {"bias": False, "layer_norm_eps": 1e-3},
}


def _seq(dtype, n, batch_first=False, batched=True, seed=0):
    rng = np.random.default_rng(seed)
    shape = ((N, n, D) if batch_first else (n, N, D)) if batched else (n, D)
    return rng.standard_normal(shape).astype(dtype)


def _causal(n):
    return np.triu(np.full((n, n), -np.inf), 1)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("masks", ["none", "causal", "causal_hint", "kpm"])
@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_encoder_layer(case, masks, dtype):
    kwargs = {"dropout": 0.0, **LAYER_CASES[case]}
    bf = kwargs.get("batch_first", False)
    src = _seq(dtype, S, bf)
    mask = {"none": {}, "causal": {"src_mask": _causal(S).astype(dtype)},
            "causal_hint": {"src_mask": _causal(S).astype(dtype)},
            "kpm": {"src_key_padding_mask": np.array([[False] * 3 + [True], [False] * 4])}}
    call = {"is_causal": True} if masks == "causal_hint" else {}
    _both("TransformerEncoderLayer", dtype, (D, NH, FF), kwargs, [src], masks=mask[masks],
          **call)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("masks", ["none", "causal", "all"])
@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_decoder_layer(case, masks, dtype):
    kwargs = {"dropout": 0.0, **LAYER_CASES[case]}
    bf = kwargs.get("batch_first", False)
    tgt, memory = _seq(dtype, L, bf), _seq(dtype, S, bf, seed=1)
    mask = {"none": {}, "causal": {"tgt_mask": _causal(L).astype(dtype)},
            "all": {"tgt_mask": np.triu(np.ones((L, L), bool), 1),
                    "memory_mask": np.random.default_rng(2).standard_normal((L, S)).astype(dtype),
                    "tgt_key_padding_mask": np.array([[False, False, True], [False] * 3]),
                    "memory_key_padding_mask": np.array([[0.0] * 4, [-np.inf] + [0.0] * 3],
                                                        dtype=dtype)}}
    call = {"tgt_is_causal": True} if masks == "causal" else {}
    _both("TransformerDecoderLayer", dtype, (D, NH, FF), kwargs, [tgt, memory],
          masks=mask[masks], **call)


def test_layers_unbatched_and_callable_activation():
    src = _seq("float64", S, batched=False)
    tm, fm = _pair("TransformerEncoderLayer", "float64", D, NH, FF, dropout=0.0)
    tm.activation, fm.activation = torch.nn.functional.silu, fg.nn.functional.silu
    _compare(_run(torch, tm, [src], masks={"src_mask": _causal(S)}),
             _run(fg, fm, [src], masks={"src_mask": _causal(S)}), "float64")
    tm, fm = _pair("TransformerDecoderLayer", "float64", D, NH, FF, dropout=0.0,
                   activation="gelu")
    arrays = [_seq("float64", L, batched=False), src]
    _compare(_run(torch, tm, arrays), _run(fg, fm, arrays), "float64")
    layer = fg.nn.TransformerEncoderLayer(D, NH, activation=fg.nn.GELU())
    assert layer.activation_relu_or_gelu == 2
    assert fg.nn.TransformerEncoderLayer(D, NH).activation_relu_or_gelu == 1
    with pytest.raises(RuntimeError, match="relu/gelu"):
        fg.nn.TransformerEncoderLayer(D, NH, activation="tanh")


def _stacks(dtype, norm_first, batch_first):
    """TransformerEncoder and TransformerDecoder of 2 layers with a final norm, twins."""
    pairs = []
    for lib in (torch, fg):
        kw = {"dropout": 0.0, "norm_first": norm_first, "batch_first": batch_first}
        enc = lib.nn.TransformerEncoder(lib.nn.TransformerEncoderLayer(D, NH, FF, **kw), 2,
                                        norm=lib.nn.LayerNorm(D), enable_nested_tensor=False)
        dec = lib.nn.TransformerDecoder(lib.nn.TransformerDecoderLayer(D, NH, FF, **kw), 2,
                                        norm=lib.nn.LayerNorm(D))
        pairs.append((enc, dec))
    (te, td), (fe, fd) = pairs
    for t, f in ((te, fe), (td, fd)):
        t.to(getattr(torch, dtype))
        f.to(getattr(fg, dtype))
        assert list(t.state_dict()) == list(f.state_dict())
        f.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    return te, td, fe, fd


@pytest.mark.parametrize("norm_first,batch_first,dtype", [(False, False, "float64"),
                                                         (True, True, "float32")])
def test_encoder_decoder_stacks(norm_first, batch_first, dtype):
    te, td, fe, fd = _stacks(dtype, norm_first, batch_first)
    assert "layers.1.self_attn.in_proj_weight" in fe.state_dict()
    assert fe.layers[0].self_attn.in_proj_weight is not fe.layers[1].self_attn.in_proj_weight
    src, tgt = _seq(dtype, S, batch_first), _seq(dtype, L, batch_first, seed=1)
    enc_masks = {"mask": _causal(S).astype(dtype),
                 "src_key_padding_mask": np.array([[0.0] * 4, [0.0] * 3 + [-np.inf]],
                                                  dtype=dtype)}
    _compare(_run(torch, te, [src], masks=enc_masks), _run(fg, fe, [src], masks=enc_masks),
             dtype)
    dec_masks = {"tgt_mask": _causal(L).astype(dtype),
                 "memory_key_padding_mask": np.array([[False] * 4, [True] + [False] * 3])}
    _compare(_run(torch, td, [tgt, src], masks=dec_masks),
             _run(fg, fd, [tgt, src], masks=dec_masks), dtype)


def test_causal_mask_detection_as_torch():
    from torch.nn.modules.transformer import _detect_is_causal_mask as torch_detect

    from flowgrad.nn.layers.transformer import _detect_is_causal_mask as fg_detect
    masks = [_causal(4), _causal(4).astype(np.float32), np.triu(np.ones((4, 4), bool), 1),
             np.tril(np.ones((4, 4), bool), -1), np.zeros((4, 4)), _causal(3)]
    for m in masks:
        for hint in (None, True, False):
            for size in (None, 4):
                assert fg_detect(fg.tensor(m), hint, size) == \
                    torch_detect(torch.tensor(m), hint, size)
    assert fg_detect(None, None, 4) is False and fg_detect(None, True, 4) is True


def test_square_subsequent_mask_as_torch():
    for kwargs in ({}, {"dtype": "float64"}):
        t = torch.nn.Transformer.generate_square_subsequent_mask(
            5, **{k: getattr(torch, v) for k, v in kwargs.items()})
        f = fg.nn.Transformer.generate_square_subsequent_mask(
            5, **{k: getattr(fg, v) for k, v in kwargs.items()})
        assert str(f.dtype) == str(t.dtype).replace("torch.", "")
        np.testing.assert_array_equal(f.numpy(), t.numpy())
    assert fg.nn.Transformer(D, NH, 1, 1, FF).generate_square_subsequent_mask(2).shape == (2, 2)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kwargs", [{}, {"batch_first": True, "norm_first": True,
                                         "activation": "gelu"}])
def test_full_transformer(kwargs, dtype):
    kw = {"d_model": D, "nhead": NH, "num_encoder_layers": 2, "num_decoder_layers": 2,
          "dim_feedforward": FF, "dropout": 0.1, **kwargs}
    tm, fm = _pair("Transformer", dtype, **kw)
    tm.eval()
    fm.eval()  # dropout off
    assert "encoder.norm.weight" in fm.state_dict() and "decoder.layers.1.norm3.bias" in \
        fm.state_dict()
    bf = kwargs.get("batch_first", False)
    arrays = [_seq(dtype, S, bf), _seq(dtype, L, bf, seed=1)]
    masks = {"tgt_mask": fg.nn.Transformer.generate_square_subsequent_mask(L).numpy()
             .astype(dtype),
             "src_key_padding_mask": np.array([[False] * 4, [False] * 2 + [True] * 2]),
             "memory_key_padding_mask": np.array([[False] * 4, [False] * 2 + [True] * 2])}
    _compare(_run(torch, tm, arrays, masks=masks), _run(fg, fm, arrays, masks=masks), dtype)


def test_transformer_init_state_dict_both_ways_and_errors():
    fg.manual_seed(0)
    fm = fg.nn.Transformer(D, NH, 1, 1, FF, dropout=0.0, dtype=fg.float64)
    w = fm.encoder.layers[0].linear1.weight.detach().numpy()
    bound = np.sqrt(6 / (D + FF))  # every 2-D parameter re-initialised by xavier_uniform_
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's nested-tensor note
        tm = torch.nn.Transformer(D, NH, 1, 1, FF, dropout=0.0).double()
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                        for k, v in fm.state_dict().items()})
    arrays = [_seq("float64", S), _seq("float64", L, seed=1)]
    _compare(_run(torch, tm, arrays), _run(fg, fm, arrays), "float64")
    for src, tgt in ((arrays[0][:, :1], arrays[1]), (arrays[0][..., :4], arrays[1][..., :4])):
        _error(lambda: tm(torch.tensor(src), torch.tensor(tgt)),
               lambda: fm(fg.tensor(src), fg.tensor(tgt)))


def test_encoder_eval_agrees_with_torch_fast_path_on_real_tokens():
    """In eval mode under no_grad PyTorch takes its fused, nested-tensor path, which returns
    zeros at padded positions; flowgrad returns the general path's values there (as PyTorch
    does with grad enabled) and agrees everywhere else."""
    te, _, fe, _ = _stacks("float32", False, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        te = torch.nn.TransformerEncoder(te.layers[0], 2, norm=te.norm)  # nested tensors on
    fe = fg.nn.TransformerEncoder(fe.layers[0], 2, norm=fe.norm)
    fe.load_state_dict({k: v.numpy() for k, v in te.state_dict().items()})
    te.eval()
    fe.eval()
    src = _seq("float32", S, batch_first=True)
    kpm = np.array([[False] * 4, [False, False, True, True]])
    with torch.no_grad(), fg.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: nested tensors are a prototype
        fast = te(torch.tensor(src), src_key_padding_mask=torch.tensor(kpm)).numpy()
        ours = fe(fg.tensor(src), src_key_padding_mask=fg.tensor(kpm)).numpy()
    assert not fast[1, 2:].any() and ours[1, 2:].any()
    np.testing.assert_allclose(ours[~kpm], fast[~kpm], **TOL["float32"])


def test_transformer_unbatched():
    tm, fm = _pair("Transformer", "float64", D, NH, 1, 1, FF, dropout=0.0)
    arrays = [_seq("float64", S, batched=False), _seq("float64", L, batched=False, seed=1)]
    masks = {"tgt_mask": _causal(L)}
    _compare(_run(torch, tm, arrays, masks=masks), _run(fg, fm, arrays, masks=masks), "float64")


def test_encoder_layer_dropout_train_and_eval():
    fg.manual_seed(0)
    layer = fg.nn.TransformerEncoderLayer(D, NH, FF, dropout=0.5)
    x = fg.randn(S, N, D)
    with fg.no_grad():
        assert not np.allclose(layer(x).numpy(), layer(x).numpy())
        layer.eval()
        np.testing.assert_array_equal(layer(x).numpy(), layer(x).numpy())


# ------------------------------------------------------------------ positional encodings

def test_sinusoidal_positional_encoding_matches_pytorch_example():
    """The table of PyTorch's word_language_model example (float32 arithmetic in torch);
    batch_first, unbatched, dropout; no state in state_dict."""
    import math
    d, max_len = 6, 20
    pe = torch.zeros(max_len, d)
    position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2).float() * (-math.log(10000.0) / d))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    m = fg.nn.SinusoidalPositionalEncoding(d, dropout=0.0, max_len=max_len)
    x = np.random.default_rng(0).standard_normal((7, 3, d)).astype(np.float32)
    np.testing.assert_allclose(m(fg.tensor(x)).numpy(), x + pe[:7, None].numpy(), atol=1e-5)
    assert list(m.state_dict()) == [] and m.pe.dtype == fg.float32
    mb = fg.nn.SinusoidalPositionalEncoding(d, dropout=0.0, max_len=max_len, batch_first=True)
    np.testing.assert_allclose(mb(fg.tensor(x.transpose(1, 0, 2))).numpy(),
                               (x + pe[:7, None].numpy()).transpose(1, 0, 2), atol=1e-5)
    np.testing.assert_allclose(m(fg.tensor(x[:, 0])).numpy(), x[:, 0] + pe[:7].numpy(),
                               atol=1e-5)
    odd = fg.nn.SinusoidalPositionalEncoding(5, dropout=0.0, max_len=4)
    assert odd.pe.shape == (4, 5)
    fg.manual_seed(0)
    drop = fg.nn.SinusoidalPositionalEncoding(d, dropout=0.5, max_len=max_len)
    assert 0.3 < (drop(fg.zeros(20, 8, d) - drop.pe[:20].unsqueeze(1) + 1).numpy() == 0).mean() \
        < 0.7
    with pytest.raises(ShapeError, match="longer than max_len"):
        m(fg.zeros(21, 1, d))
    with pytest.raises(ShapeError, match="d_model=6"):
        m(fg.zeros(3, 1, 4))


def test_learned_positional_encoding():
    fg.manual_seed(0)
    m = fg.nn.LearnedPositionalEncoding(4, dropout=0.0, max_len=10, batch_first=True)
    assert list(m.state_dict()) == ["weight"]
    assert 0.01 < m.weight.detach().numpy().std() < 0.03
    x = fg.zeros(2, 3, 4, requires_grad=True)
    m(x).sum().backward()
    g = m.weight.grad.numpy()
    np.testing.assert_array_equal(g[:3], 2.0)  # each position used once per batch row
    assert not g[3:].any()
    np.testing.assert_array_equal(x.grad.numpy(), 1.0)


# ------------------------------------------------------------------ a model that learns

def test_tiny_transformer_learns_to_copy_the_first_token():
    """Embedding + sinusoidal positions + one encoder layer + a linear read-out: every position
    must output the sequence's first token, which only attention can bring there."""
    fg.manual_seed(0)
    rng = np.random.default_rng(0)
    vocab, length, d = 6, 5, 16
    tokens = fg.tensor(rng.integers(0, vocab, (32, length)))
    target = tokens[:, :1].expand(32, length).reshape(-1)
    model = fg.nn.Sequential(
        fg.nn.Embedding(vocab, d),
        fg.nn.SinusoidalPositionalEncoding(d, dropout=0.0, batch_first=True),
        fg.nn.TransformerEncoder(fg.nn.TransformerEncoderLayer(d, 2, 32, dropout=0.0,
                                                               batch_first=True), 1),
        fg.nn.Linear(d, vocab))
    opt = fg.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        loss = fg.nn.functional.cross_entropy(model(tokens).reshape(-1, vocab), target)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
