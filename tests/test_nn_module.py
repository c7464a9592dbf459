"""nn.Module against torch.nn.Module: the same nested model built in both gives the same names,
order and state_dict layout; state_dicts round-trip both ways; registration, containers, modes,
hooks, conversion, repr and loading errors behave as PyTorch's."""

from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import nn
from flowgrad.errors import DTypeError


def make_net(m):
    """One model, written once for ``m`` = torch or flowgrad: Sequential, ModuleList,
    ModuleDict, a tied weight, a module reachable twice, persistent and non-persistent buffers,
    a ParameterList and a ParameterDict."""
    tnn = m.nn

    class Block(tnn.Module):
        def __init__(self, d):
            super().__init__()
            self.fc = tnn.Linear(d, d)
            self.norm = tnn.LayerNorm(d)

        def forward(self, h):
            return h + self.norm(self.fc(h)).tanh()

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", m.ones(3) * 0.5)
            self.emb = tnn.Embedding(10, 4, padding_idx=0)
            self.trunk = tnn.Sequential(tnn.Linear(4, 8), tnn.BatchNorm1d(8), tnn.ReLU())
            self.blocks = tnn.ModuleList([Block(8) for _ in range(2)])
            self.heads = tnn.ModuleDict({"tok": tnn.Linear(4, 10, bias=False),
                                         "cls": tnn.Linear(8, 3)})
            self.heads["tok"].weight = self.emb.weight          # tied, as nanoGPT's lm_head
            self.again = self.blocks[0]                         # the same module twice
            self.register_buffer("cache", m.zeros(2), persistent=False)
            self.gates = tnn.ParameterList([tnn.Parameter(m.ones(8)), tnn.Parameter(m.zeros(3))])
            self.extra = tnn.ParameterDict(OrderedDict(b=tnn.Parameter(m.zeros(2)),
                                                       a=tnn.Parameter(m.ones(1))))

        def forward(self, idx):
            e = self.emb(idx).mean(dim=1)                       # (B, 4)
            h = self.trunk(e) * self.gates[0]                   # (B, 8)
            for block in self.blocks:
                h = block(h)
            logits = self.heads["cls"](self.again(h)) * self.scale + self.gates[1]
            return logits, self.heads["tok"](e) + self.extra["a"]

    return Net()


@pytest.fixture
def pair(torch):
    torch.manual_seed(0)
    t = make_net(torch)
    f = make_net(fg)
    f.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    return t, f


def _idx(seed=0):
    return np.random.default_rng(seed).integers(0, 10, (6, 5))


def _outputs(m, model, idx):
    return [o.detach().numpy() for o in model(m.tensor(idx))]


# --- names and order ----------------------------------------------------------------------------

def test_names_and_order_match_torch(pair):
    t, f = pair
    assert [k for k, _ in f.named_parameters()] == [k for k, _ in t.named_parameters()]
    assert [k for k, _ in f.named_parameters(remove_duplicate=False)] == \
        [k for k, _ in t.named_parameters(remove_duplicate=False)]
    assert [k for k, _ in f.named_parameters(prefix="net", recurse=False)] == \
        [k for k, _ in t.named_parameters(prefix="net", recurse=False)]
    assert [k for k, _ in f.named_buffers()] == [k for k, _ in t.named_buffers()]
    assert [(k, type(v).__name__) for k, v in f.named_modules()] == \
        [(k, type(v).__name__) for k, v in t.named_modules()]
    assert [k for k, _ in f.named_modules(remove_duplicate=False)] == \
        [k for k, _ in t.named_modules(remove_duplicate=False)]
    assert [k for k, _ in f.named_children()] == [k for k, _ in t.named_children()]
    assert len(list(f.children())) == len(list(t.children()))
    assert len(list(f.parameters())) == len(list(t.parameters()))
    assert len(list(f.modules())) == len(list(t.modules()))


def test_state_dict_layout_matches_torch(pair):
    t, f = pair
    ts, fs = t.state_dict(), f.state_dict()
    assert isinstance(fs, OrderedDict)
    assert list(fs) == list(ts)
    for k in ts:
        assert fs[k].shape == tuple(ts[k].shape), k
        assert str(fs[k].dtype) == str(ts[k].dtype).replace("torch.", ""), k
        assert type(fs[k]) is fg.Tensor and not fs[k].requires_grad, k
        np.testing.assert_array_equal(fs[k].numpy(), ts[k].numpy(), err_msg=k)
    assert "trunk.1.num_batches_tracked" in fs and "cache" not in fs
    # values share memory with the module, like torch's detach()
    assert fs["trunk.0.weight"]._data is f.trunk[0].weight._data
    kv = f.state_dict(keep_vars=True)
    assert kv["emb.weight"] is f.emb.weight and kv["heads.tok.weight"] is f.emb.weight
    assert list(f.state_dict(prefix="model.")) == list(t.state_dict(prefix="model."))


def test_tied_weight_is_one_parameter(pair):
    _, f = pair
    names = [k for k, _ in f.named_parameters()]
    assert "emb.weight" in names and "heads.tok.weight" not in names
    assert f.heads["tok"].weight is f.emb.weight
    assert sum(p is f.emb.weight for p in f.parameters()) == 1


# --- round trips ----------------------------------------------------------------------------------

def test_torch_to_flowgrad_outputs_equal(pair, torch):
    t, f = pair
    for mode in ("train", "eval"):
        getattr(t, mode)()
        getattr(f, mode)()
        for a, b in zip(_outputs(fg, f, _idx()), _outputs(torch, t, _idx())):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # train-mode calls updated both models' running statistics identically
    np.testing.assert_allclose(f.trunk[1].running_var.numpy(),
                               t.trunk[1].running_var.numpy(), rtol=1e-6)


def test_flowgrad_to_torch_outputs_equal(torch):
    fg.manual_seed(7)
    f = make_net(fg)
    with fg.no_grad():
        f.trunk[1].running_mean.copy_(fg.randn(8))      # non-trivial buffers travel too
        f.trunk[1].running_var.copy_(fg.rand(8) + 0.5)
    torch.manual_seed(1)
    t = make_net(torch)
    result = t.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                                for k, v in f.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys
    t.eval()
    f.eval()
    for a, b in zip(_outputs(fg, f, _idx(3)), _outputs(torch, t, _idx(3))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_load_torch_tensors_directly_and_float64(pair, torch):
    t, f = pair
    t = t.double()
    f.load_state_dict(t.state_dict())            # torch tensors: np.asarray takes them
    assert f.trunk[0].weight.dtype == np.float32  # copied into the existing float32 parameters
    np.testing.assert_allclose(f.trunk[0].weight.detach().numpy(),
                               t.trunk[0].weight.detach().numpy(), rtol=1e-6)


def test_load_state_dict_copies_in_place_and_assign_replaces(pair):
    _, f = pair
    w = f.trunk[0].weight
    sd = {k: v.numpy() * 0 + 1 for k, v in f.state_dict().items()}
    f.load_state_dict(sd)
    assert f.trunk[0].weight is w and np.all(w.detach().numpy() == 1)
    arr = np.full((8, 4), 3.0, dtype=np.float32)
    sd["trunk.0.weight"] = arr
    f.load_state_dict(sd, assign=True)
    new = f.trunk[0].weight
    assert new is not w and isinstance(new, nn.Parameter) and new.requires_grad
    assert new._data is arr


# --- strict / non-strict errors -------------------------------------------------------------------

def test_strict_errors_list_missing_unexpected_and_size_mismatch(pair, torch):
    t, f = pair
    sd = {k: v.numpy() for k, v in f.state_dict().items()}
    del sd["trunk.0.bias"]
    sd["trunk.9.weight"] = np.zeros(3)
    sd["blocks.0.fc.weight"] = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(RuntimeError) as e:
        f.load_state_dict(sd)
    msg = str(e.value)
    assert msg.startswith("Error(s) in loading state_dict for Net:")
    assert 'Missing key(s) in state_dict: "trunk.0.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "trunk.9.weight"' in msg
    assert ("size mismatch for blocks.0.fc.weight: copying a param with shape (3, 4) from "
            "checkpoint, the shape in current model is (8, 8).") in msg
    # torch reports the same three problems
    with pytest.raises(RuntimeError) as te:
        t.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()})
    for key in ("trunk.0.bias", "trunk.9.weight", "blocks.0.fc.weight"):
        assert key in str(te.value)


def test_non_strict_returns_keys_like_torch(pair, torch):
    t, f = pair
    sd = {k: v.numpy() for k, v in f.state_dict().items()}
    del sd["trunk.0.bias"], sd["trunk.1.num_batches_tracked"]
    sd["nope"] = np.zeros(1)
    sd["heads.cls.extra"] = np.zeros(1)
    got = f.load_state_dict(sd, strict=False)
    want = t.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()},
                             strict=False)
    assert got.missing_keys == want.missing_keys
    assert got.unexpected_keys == want.unexpected_keys
    assert got == (got.missing_keys, got.unexpected_keys)
    # a shape mismatch is an error even when not strict, as in torch
    sd["heads.cls.bias"] = np.zeros(5, dtype=np.float32)
    with pytest.raises(RuntimeError, match="size mismatch for heads.cls.bias"):
        f.load_state_dict(sd, strict=False)


def test_all_keys_matched_repr(pair):
    _, f = pair
    assert repr(f.load_state_dict(f.state_dict())) == "<All keys matched successfully>"


# --- buffers ----------------------------------------------------------------------------------------

def test_buffers_persistent_and_not(torch):
    for m in (torch, fg):
        mod = m.nn.Module()
        mod.register_buffer("a", m.ones(2))
        mod.register_buffer("b", m.zeros(3), persistent=False)
        mod.register_buffer("c", None)
        assert [k for k, _ in mod.named_buffers()] == ["a", "b"]
        assert list(mod.state_dict()) == ["a"]
        mod.b = m.ones(3)                      # assigning a tensor to a buffer name updates it
        assert "b" in dict(mod.named_buffers()) and list(mod.state_dict()) == ["a"]
        mod.register_buffer("b", m.ones(3))    # re-registering makes it persistent
        assert list(mod.state_dict()) == ["a", "b"]
        del mod.a
        assert [k for k, _ in mod.named_buffers()] == ["b"]
    mod = nn.Module()
    mod.register_buffer("x", fg.ones(1))
    with pytest.raises(TypeError, match="buffer 'x'"):
        mod.x = 3.0
    with pytest.raises(KeyError, match="attribute 'training' already exists"):
        mod.register_buffer("training", fg.ones(1))
    with pytest.raises(KeyError, match="contain"):
        mod.register_buffer("a.b", fg.ones(1))
    with pytest.raises(TypeError, match="Tensor or None required"):
        mod.register_buffer("y", np.ones(1))


# --- registration -------------------------------------------------------------------------------------

def test_registration_rules():
    m = nn.Module()
    m.w = nn.Parameter(fg.ones(2))
    assert "w" in m._parameters and "w" not in m.__dict__
    with pytest.raises(TypeError, match=r"cannot assign 'flowgrad.Tensor' as parameter 'w'"):
        m.w = fg.ones(2)
    m.w = None
    assert m.w is None and list(m.parameters()) == []
    m.sub = nn.Linear(2, 2)
    m.sub = nn.ReLU()                          # replacing a child is fine
    with pytest.raises(TypeError, match="child module 'sub'"):
        m.sub = 3
    m.sub = None
    assert list(m.named_children()) == []
    m.x = nn.Linear(1, 1)
    m.x = nn.Parameter(fg.zeros(1))            # a name moves from modules to parameters
    assert "x" not in m._modules and "x" in m._parameters
    m.layers = [nn.Linear(2, 2), nn.Linear(2, 2)]  # kept as is, not registered (as PyTorch)
    m.heads = {"a": nn.Linear(2, 2)}
    assert "layers" not in m._modules and "heads" not in m._modules
    assert len(m.layers) == 2 and list(m.heads) == ["a"]
    m._private = [nn.Linear(2, 2)]             # a private name may hide modules on purpose
    m.numbers = [1, 2]
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nothing'"):
        m.nothing
    del m.x
    assert "x" not in dir(m) and "sub" in dir(m)
    with pytest.raises(KeyError, match="already exists"):
        m.register_parameter("numbers", nn.Parameter(fg.ones(1)))
    with pytest.raises(TypeError, match="nn.Parameter or None required"):
        m.register_parameter("q", fg.ones(1))
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("z", 3)
    m.register_module("z", nn.Tanh())
    assert m.get_submodule("z") is m.z


def test_assign_before_init_fails():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)
            super().__init__()

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\) first"):
        Bad()


def test_forward_missing():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(1)


def test_dir_getters_and_apply(pair):
    _, f = pair
    d = dir(f)
    for name in ("emb", "trunk", "scale", "forward", "training"):
        assert name in d
    assert f.get_submodule("blocks.1.fc") is f.blocks[1].fc
    assert f.get_parameter("blocks.1.fc.weight") is f.blocks[1].fc.weight
    assert f.get_buffer("trunk.1.running_mean") is f.trunk[1].running_mean
    with pytest.raises(AttributeError, match="no attribute `nope`"):
        f.get_submodule("blocks.nope")
    seen = []
    f.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen[0] == "Embedding"   # children first, as torch
    with fg.no_grad():
        f.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert np.all(f.trunk[0].weight.detach().numpy() == 0)


# --- modes, grads, conversion ---------------------------------------------------------------------

def test_train_eval_propagate(pair):
    _, f = pair
    assert all(m.training for m in f.modules())
    assert f.eval() is f
    assert not any(m.training for m in f.modules())
    f.train()
    assert all(m.training for m in f.modules())
    f.blocks.train(False)
    assert not f.blocks[1].fc.training and f.trunk.training
    with pytest.raises(ValueError, match="boolean"):
        f.train("yes")


def test_zero_grad_and_requires_grad(pair):
    _, f = pair
    logits, tok = f(fg.tensor(_idx()))
    (logits.sum() + tok.sum()).backward()
    with_grad = [p for p in f.parameters() if p.grad is not None]
    assert len(with_grad) == len(list(f.parameters())) - 1   # extra["b"] is unused
    f.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in with_grad)
    f.zero_grad()
    assert all(p.grad is None for p in f.parameters())
    f.requires_grad_(False)
    assert not any(p.requires_grad for p in f.parameters())
    f.requires_grad_()
    assert all(p.requires_grad for p in f.parameters())


def test_to_float64_in_place(pair):
    _, f = pair
    params = list(f.parameters())
    logits, _ = f(fg.tensor(_idx()))
    logits.sum().backward()
    assert f.to(fg.float64) is f
    for p, q in zip(params, f.parameters()):
        assert p is q and isinstance(q, nn.Parameter) and q.is_leaf and q.requires_grad
        assert q.dtype == np.float64
        assert q.grad is None or q.grad.dtype == np.float64
    for k, b in f.named_buffers():
        want = np.int64 if k.endswith("num_batches_tracked") else np.float64
        assert b.dtype == want, k
    logits, _ = f(fg.tensor(_idx()))
    assert logits.dtype == np.float64
    assert f.float() is f and f.emb.weight.dtype == np.float32
    assert f.double().trunk[1].running_mean.dtype == np.float64
    assert f.to("cpu", dtype=fg.float32) is f and f.trunk[0].bias.dtype == np.float32
    f.to(fg.zeros(1, dtype=fg.float64))
    assert f.trunk[0].bias.dtype == np.float64
    assert f.cpu() is f
    with pytest.raises(DTypeError, match="floating point"):
        f.to(fg.int64)


def test_deepcopy_and_pickle_keep_ties(pair):
    _, f = pair
    g = copy.deepcopy(f)
    assert g.heads["tok"].weight is g.emb.weight and g.emb.weight is not f.emb.weight
    assert g.again is g.blocks[0]
    np.testing.assert_array_equal(g.emb.weight.detach().numpy(), f.emb.weight.detach().numpy())
    with fg.no_grad():
        g.emb.weight.fill_(0)
    assert f.emb.weight.detach().numpy().any()
    seq = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5, bias=False), nn.BatchNorm1d(5))
    seq[1].weight = seq[0].weight
    h = pickle.loads(pickle.dumps(seq))
    assert h[1].weight is h[0].weight and isinstance(h[0].weight, nn.Parameter)
    x = fg.tensor([[1, 2], [3, 4]])
    np.testing.assert_array_equal(h.eval()(x.flatten()).detach().numpy(),
                                  seq.eval()(x.flatten()).detach().numpy())


# --- hooks ----------------------------------------------------------------------------------------

def test_forward_hooks_like_torch(torch):
    for m in (torch, fg):
        layer = m.nn.Linear(3, 2)
        calls = []

        def pre(mod, args):
            calls.append(("pre", type(mod).__name__, len(args)))
            return (args[0] * 0,)

        def post(mod, args, out):
            calls.append(("post", tuple(out.shape)))
            return out + 1

        h1 = layer.register_forward_pre_hook(pre)
        h2 = layer.register_forward_hook(post)
        out = layer(m.ones(4, 3))
        np.testing.assert_allclose(out.detach().numpy(), layer.bias.detach().numpy() + 1 +
                                   np.zeros((4, 2)), rtol=1e-6)
        assert calls == [("pre", "Linear", 1), ("post", (4, 2))]
        h1.remove()
        h2.remove()
        calls.clear()
        layer(m.ones(1, 3))
        assert calls == []

        order = []
        layer.register_forward_hook(lambda *a: order.append("a"))
        layer.register_forward_hook(lambda *a: order.append("b"), prepend=True)
        layer.register_forward_hook(lambda mod, args, kwargs, out: order.append(sorted(kwargs)),
                                    with_kwargs=True)
        layer.register_forward_pre_hook(lambda mod, args, kwargs: (args, kwargs),
                                        with_kwargs=True)
        layer(m.ones(1, 3))
        assert order == ["b", "a", []]


def test_forward_hook_always_call_and_handle_context():
    layer = nn.Linear(3, 2)
    seen, pre = [], []
    layer.register_forward_hook(lambda mod, args, out: seen.append(out), always_call=True)
    with pytest.raises(Exception, match="Linear"):
        layer(fg.ones(2, 5))
    assert seen == [None]
    with layer.register_forward_pre_hook(lambda mod, args: pre.append(1)):
        layer(fg.ones(1, 3))
    layer(fg.ones(1, 3))
    assert pre == [1] and len(seen) == 3


def test_full_backward_hook_matches_torch(torch):
    grads = {}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal((4, 2))
    torch.manual_seed(0)
    tl = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh()).double()
    fl = nn.Sequential(nn.Linear(3, 2), nn.Tanh()).double()
    fl.load_state_dict({k: v.numpy() for k, v in tl.state_dict().items()})
    for name, model, m in (("torch", tl, torch), ("fg", fl, fg)):
        def hook(mod, gin, gout, name=name):
            grads[name] = ([g.detach().numpy().copy() for g in gin],
                           [g.detach().numpy().copy() for g in gout])
            return (gin[0] * 2,)

        model[0].register_full_backward_hook(hook)
        xt = m.tensor(x, requires_grad=True)
        (model(xt) * m.tensor(w)).sum().backward()
        grads[name + "_x"] = xt.grad.numpy()
    for a, b in zip(grads["fg"][0] + grads["fg"][1], grads["torch"][0] + grads["torch"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    np.testing.assert_allclose(grads["fg_x"], grads["torch_x"], rtol=1e-10)


def test_full_backward_hook_without_input_grad():
    layer = nn.Linear(3, 2)
    seen = []
    layer.register_full_backward_hook(lambda m, gin, gout: seen.append((gin, gout[0].shape)))
    layer(fg.ones(5, 3)).sum().backward()
    assert seen == [((None,), (5, 2))]


# --- repr -------------------------------------------------------------------------------------------

def test_repr_matches_torch(torch):
    def build(m):
        tnn = m.nn
        return tnn.Sequential(OrderedDict(
            conv=tnn.Conv2d(1, 4, 3, padding=1), bn=tnn.BatchNorm2d(4), act=tnn.ReLU(),
            pool=tnn.MaxPool2d(2), flat=tnn.Flatten(),
            mlp=tnn.ModuleList([tnn.Linear(16, 16) for _ in range(3)] + [tnn.Linear(16, 2)]),
            empty=tnn.ModuleList(), drop=tnn.Dropout(0.1),
            heads=tnn.ModuleDict({"a": tnn.Identity(), "b": tnn.Softmax(dim=1)})))

    assert repr(build(fg)) == repr(build(torch))


def test_parameter_repr_and_containers_repr(torch):
    p = nn.Parameter(fg.tensor([1.0, 2.0]))
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert repr(p) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))
    pl = nn.ParameterList([fg.zeros(2, 3), nn.Parameter(fg.ones(4))])
    assert repr(pl) == ("ParameterList(\n"
                        "    (0): Parameter containing: [flowgrad.float32 of size 2x3]\n"
                        "    (1): Parameter containing: [flowgrad.float32 of size 4]\n)")


def test_parameter_basics():
    p = nn.Parameter(fg.zeros(2, 3))
    assert p.requires_grad and p.is_leaf and isinstance(p, fg.Tensor)
    assert not nn.Parameter(fg.zeros(2), requires_grad=False).requires_grad
    arr = np.zeros(3)
    q = nn.Parameter(arr)
    assert q.dtype == np.float64 and q._data is arr            # shares memory, keeps dtype
    assert type(p * 2) is fg.Tensor and type(p.detach()) is fg.Tensor
    assert nn.Parameter().shape == (0,)


# --- containers -----------------------------------------------------------------------------------

def test_sequential_like_torch(torch):
    def ops(m):
        tnn = m.nn
        s = tnn.Sequential(tnn.Linear(2, 3), tnn.ReLU(), tnn.Linear(3, 4), tnn.Tanh())
        out = [len(s), type(s[-1]).__name__, type(s[1:3]).__name__, list(s[1:3]._modules),
               list(s[::2]._modules)]
        s.append(tnn.Sigmoid())
        s.insert(1, tnn.Identity())
        s.extend([tnn.ReLU()])
        out.append([type(x).__name__ for x in s])
        del s[2]
        out.append(list(s._modules))
        del s[1:3]
        out.append([(k, type(v).__name__) for k, v in s._modules.items()])
        s[0] = tnn.Linear(2, 3, bias=False)
        out.append([k for k, _ in s.named_parameters()])
        out.append(type(s.pop(0)).__name__)
        named = tnn.Sequential(OrderedDict([("fc", tnn.Linear(2, 2)), ("act", tnn.ReLU())]))
        out.append([k for k, _ in named.named_parameters()])
        out.append([k for k, _ in (named + tnn.Sequential(tnn.ReLU())).named_children()])
        return out

    assert ops(fg) == ops(torch)
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert s(fg.ones(4, 2)).shape == (4, 3)
    with pytest.raises(IndexError, match="out of range"):
        s[5]


def test_module_list_like_torch(torch):
    def ops(m):
        tnn = m.nn
        ml = tnn.ModuleList([tnn.Linear(1, 1), tnn.ReLU()])
        ml.append(tnn.Tanh())
        ml.extend([tnn.Sigmoid(), tnn.Identity()])
        ml.insert(1, tnn.ELU())
        ml += [tnn.GELU()]
        out = [len(ml), [type(x).__name__ for x in ml], type(ml[-2]).__name__,
               [type(x).__name__ for x in ml[1:4]], type(ml[1:4]).__name__]
        del ml[0]
        out.append([(k, type(v).__name__) for k, v in ml._modules.items()])
        ml[0] = tnn.Linear(2, 2)
        out.append([k for k, _ in ml.named_parameters()])
        out.append(type(ml.pop(1)).__name__)
        out.append(list(ml._modules))
        return out

    assert ops(fg) == ops(torch)


def test_module_dict_like_torch(torch):
    def ops(m):
        tnn = m.nn
        md = tnn.ModuleDict({"b": tnn.Linear(1, 1), "a": tnn.ReLU()})
        md["c"] = tnn.Tanh()
        md.update([("d", tnn.Identity())])
        md.update({"e": tnn.ELU()})
        out = [list(md), list(md.keys()), "a" in md, len(md),
               [type(v).__name__ for v in md.values()], [k for k, _ in md.items()]]
        out.append(type(md.pop("a")).__name__)
        del md["c"]
        out.append([k for k, _ in md.named_modules()])
        md.clear()
        out.append(len(md))
        return out

    assert ops(fg) == ops(torch)


def test_parameter_list_and_dict_like_torch(torch):
    def ops(m):
        tnn = m.nn
        pl = tnn.ParameterList([m.zeros(2), tnn.Parameter(m.ones(3))])
        pl.append(m.ones(1))
        pl.extend([m.zeros(4)])
        pd = tnn.ParameterDict({"z": m.zeros(1), "a": m.ones(2)})   # plain dict: sorted keys
        pd["m"] = tnn.Parameter(m.zeros(3))
        holder = tnn.Module()
        holder.pl = pl
        holder.pd = pd
        return [[k for k, _ in holder.named_parameters()], len(pl), len(pd), list(pd),
                [type(p).__name__ for p in pl], [tuple(p.shape) for p in pl[1:]],
                "a" in pd, [k for k, _ in pd.items()], tuple(pd.pop("z").shape),
                list(pd.keys()), tuple(pd.get("nope", m.zeros(5)).shape),
                tuple(pd.setdefault("n", m.ones(6)).shape), list(pd)]

    assert ops(fg) == ops(torch)
    with pytest.raises(RuntimeError, match="should not be called"):
        nn.ParameterList()(1)


# --- GPU ------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not fg.backend.cuda_available(), reason="needs CuPy and a CUDA device")
def test_module_on_gpu_round_trip():
    fg.manual_seed(0)
    f = make_net(fg).eval()
    idx = _idx()
    want = _outputs(fg, f, idx)
    params = list(f.parameters())
    assert f.cuda() is f
    assert all(p is q for p, q in zip(params, f.parameters()))
    assert all(t.device == "cuda" for t in list(f.parameters()) + list(f.buffers()))
    assert all(isinstance(p, nn.Parameter) and p.is_leaf for p in f.parameters())
    got = [o.detach().cpu().numpy() for o in f(fg.tensor(idx, device="cuda"))]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    sd = f.state_dict()
    assert all(v.device == "cuda" for v in sd.values())
    g = make_net(fg).eval()
    g.load_state_dict(sd)                                   # cuda checkpoint into a cpu model
    for a, b in zip(_outputs(fg, g, idx), want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    f.load_state_dict({k: v.numpy() for k, v in g.state_dict().items()})   # numpy into cuda
    assert f.emb.weight.device == "cuda"
    # a training step on the GPU: grads there, clipping there, running stats there
    f.train()
    logits, tok = f(fg.tensor(idx, device="cuda"))
    (logits.square().sum() + tok.sum()).backward()
    assert all(p.grad.device == "cuda" for p in f.parameters() if p.grad is not None)
    total = nn.utils.clip_grad_norm_(f.parameters(), 0.1)
    assert total.device == "cuda" and total.item() > 0.1
    assert nn.utils.get_total_norm([p.grad for p in f.parameters() if p.grad is not None]
                                   ).item() == pytest.approx(0.1, rel=1e-4)
    assert f.trunk[1].num_batches_tracked.item() == 1
    vec = nn.utils.parameters_to_vector(f.parameters())
    assert vec.device == "cuda"
    nn.utils.vector_to_parameters(vec.detach() * 0, f.parameters())
    assert not f.emb.weight.detach().cpu().numpy().any()
    f.cpu()
    assert all(t.device == "cpu" for t in list(f.parameters()) + list(f.buffers()))


@pytest.mark.gpu
@pytest.mark.skipif(not fg.backend.cuda_available(), reason="needs CuPy and a CUDA device")
def test_init_on_gpu():
    init = nn.init
    for fn in (lambda w: init.uniform_(w, -1, 1), init.normal_, init.xavier_uniform_,
               init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_,
               init.orthogonal_, lambda w: init.trunc_normal_(w, a=-1, b=1),
               lambda w: init.sparse_(w, 0.5), init.eye_, lambda w: init.constant_(w, 2.0)):
        w = nn.Parameter(fg.zeros(64, 32, device="cuda"))
        assert fn(w) is w and w.device == "cuda" and w.is_leaf
        assert np.isfinite(w.detach().cpu().numpy()).all()
    w = nn.Parameter(fg.zeros(32, 64, device="cuda", dtype=fg.float64))
    a = init.orthogonal_(w).detach().cpu().numpy()
    np.testing.assert_allclose(a @ a.T, np.eye(32), atol=1e-10)
    d = nn.Parameter(fg.zeros(4, 4, 3, 3, device="cuda"))
    assert init.dirac_(d).detach().cpu().numpy().sum() == 4


def test_stale_module_hook_handles_never_remove_newer_hooks():
    """Handles carry process-wide, never reused ids (PyTorch's RemovableHandle)."""
    lin = nn.Linear(2, 2)
    calls = []
    regs = {"pre": lambda tag: lin.register_forward_pre_hook(lambda m, a: calls.append(tag)),
            "fwd": lambda tag: lin.register_forward_hook(lambda m, a, o: calls.append(tag)),
            "bwd": lambda tag: lin.register_full_backward_hook(
                lambda m, gi, go: calls.append(tag))}
    for kind, reg in regs.items():
        a, b = reg(kind + "A"), reg(kind + "B")
        a.remove()
        b.remove()
        c = reg(kind + "C")
        a.remove(), b.remove()  # stale handles: C stays
        assert c.id > b.id > a.id
    lin(fg.ones(1, 2, requires_grad=True)).sum().backward()
    assert calls == ["preC", "fwdC", "bwdC"]
    x = fg.ones(2, requires_grad=True)
    h = x.register_hook(lambda g: None)
    assert h.id > c.id  # one counter for tensor and module hooks


def test_module_and_optimizer_zero_grad_bump_the_version_alike(torch):
    """zero_grad(set_to_none=False) zeroes in place and bumps ``grad._version`` (PyTorch)."""
    def run(lib):
        m = lib.nn.Linear(2, 2)
        m(lib.ones(1, 2)).sum().backward()
        g = m.weight.grad
        versions = [g._version]
        m.zero_grad(set_to_none=False)
        versions.append(g._version)
        lib.optim.SGD(m.parameters(), lr=0.1).zero_grad(set_to_none=False)
        versions.append(g._version)
        assert m.weight.grad is g and not g.requires_grad and float(g.abs().sum()) == 0
        m.zero_grad()
        assert m.weight.grad is None
        return [v - versions[0] for v in versions]

    assert run(fg) == run(torch) == [0, 1, 2]
