"""flowgrad.debug's core (lecture: "Debugging"): each tool says "fine" on healthy models and
names the problem on planted bugs."""

import random

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad import nn
from flowgrad.autograd import op as _op
from flowgrad.debug.anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled
from flowgrad.debug.gradcheck import check_model_grads
from flowgrad.debug.graph import (
    draw_graph,
    format_graph,
    graph_nodes,
    print_graph,
    to_dot,
    unreached_parameters,
)
from flowgrad.debug.overfit import overfit_small
from flowgrad.debug.reproducibility import check_determinism, seed_everything
from flowgrad.models import ConvNet1d, ResidualMLP
from flowgrad.utils.data import DataLoader, Dataset, Generator, TensorDataset


@pytest.fixture(scope="module")
def data():
    """A small learnable 10-class problem shaped like MNIST-1D (40 features): class templates
    plus noise (no dataset generation, so the file stays fast)."""
    rng = np.random.default_rng(0)
    templates = rng.standard_normal((10, 40)).astype(np.float32)
    y = rng.integers(0, 10, 400).astype(np.int64)
    x = templates[y] + 0.5 * rng.standard_normal((400, 40)).astype(np.float32)
    return x, y


# --- planted bugs -------------------------------------------------------------------------------

class TanhWrongBackward(fg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.tanh()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y)  # should be 1 - y**2


class TanhNet(nn.Module):
    def __init__(self, wrong=False):
        super().__init__()
        self.wrong = wrong
        self.fc1, self.fc2, self.out = nn.Linear(40, 16), nn.Linear(16, 16), nn.Linear(16, 10)

    def forward(self, x):
        h = self.fc2(self.fc1(x).relu())
        h = TanhWrongBackward.apply(h) if self.wrong else h.tanh()
        return self.out(h)


class DetachedMLP(ResidualMLP):
    def forward(self, x):
        h = self.linear1(x).relu().detach()
        h = h + self.linear2(h).relu()
        return self.linear3(h)


class MisalignedPairs(Dataset):
    """x[i] with a random label at every read (two independent shuffles)."""

    def __init__(self, x, y):
        self.x, self.y, self.rng = x, y, np.random.default_rng(1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[self.rng.integers(len(self.y))]

    def __getitems__(self, idx):
        return list(zip(self.x[idx], self.y[self.rng.permutation(len(self.y))[:len(idx)]]))


class UnseededInit(ResidualMLP):
    def __init__(self):
        super().__init__()
        w = self.linear1.weight
        w._data[...] = np.random.default_rng().uniform(-0.1, 0.1, w.shape).astype(w.dtype)


def _dropout_mlp():
    return nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10))


# --- reproducibility ----------------------------------------------------------------------------

def test_seed_everything_seeds_every_stream():
    def draw():
        return fg.randn(3).numpy().copy(), np.random.rand(2), random.random()

    seed_everything(7)
    a = draw()
    seed_everything(7)
    b = draw()
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert fg.backend.initial_seed() == 7


def _loader(data, generator=None):
    x, y = data
    ds = TensorDataset(fg.from_numpy(x[:128]), fg.from_numpy(y[:128]))
    return lambda: DataLoader(ds, batch_size=32, shuffle=True,
                              generator=generator() if generator else None)


def _adam(p):
    return fg.optim.Adam(p, lr=1e-2)


def test_determinism_healthy_with_dropout_and_shuffling(data):
    r = check_determinism(_dropout_mlp, _loader(data), F.cross_entropy, _adam, steps=3)
    assert r.identical and r.ok and r.first_difference is None
    assert r.verdict.startswith("fine: bit-identical")
    assert "| 3 | parameter after step |" in str(r)


def test_determinism_names_unseeded_initialisation(data):
    r = check_determinism(UnseededInit, _loader(data), F.cross_entropy, _adam, steps=2)
    assert not r.identical
    assert r.first_difference["what"] == "initial parameter"
    assert r.first_difference["name"] == "linear1.weight"
    assert r.first_difference["max_abs_diff"] > 0
    assert "linear1.weight" in r.verdict and "initialisation" in r.verdict


def test_determinism_names_unseeded_shuffling(data):
    def os_generator():
        return Generator().manual_seed(int(np.random.SeedSequence().entropy % (1 << 63)))

    r = check_determinism(ResidualMLP, _loader(data, os_generator), F.cross_entropy, _adam, 2)
    assert r.first_difference["what"] == "batch" and r.first_difference["step"] == 1
    assert "data order" in r.verdict


# --- gradient check -----------------------------------------------------------------------------

@pytest.mark.parametrize("make", [ResidualMLP, lambda: ConvNet1d(channels=6), _dropout_mlp,
                                  TanhNet], ids=["mlp", "cnn", "dropout", "tanh"])
def test_model_gradcheck_fine_on_healthy_models(data, make):
    x, y = data
    fg.manual_seed(0)
    model = make()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    r = check_model_grads(model, x[:8], y[:8], F.cross_entropy, n_entries=5)
    assert r.ok, str(r)
    assert r.verdict.startswith("fine")
    assert len(r.rows) == len(list(model.parameters()))  # every parameter is checked
    after = model.state_dict()
    assert all(after[k].dtype == np.float32 and np.array_equal(after[k].numpy(), v)
               for k, v in before.items())  # the model itself is untouched


def test_model_gradcheck_names_a_wrong_custom_backward(data):
    x, y = data
    fg.manual_seed(0)
    r = check_model_grads(TanhNet(wrong=True), x[:8], y[:8], F.cross_entropy, n_entries=5)
    assert not r.ok
    assert set(r.bad) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    assert r.verdict.startswith("WRONG") and "fc2.weight" in r.verdict
    assert "these pass: out.weight, out.bias" in r.verdict
    assert "WRONG" in str(r)


def test_model_gradcheck_names_a_detached_layer(data):
    x, y = data
    fg.manual_seed(0)
    r = check_model_grads(DetachedMLP(), x[:8], y[:8], F.cross_entropy, n_entries=3)
    assert set(r.bad) == {"linear1.weight", "linear1.bias"}
    assert "no gradient" in r.verdict


def test_model_gradcheck_with_loss_inside_the_model(data):
    class WithLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(40, 10)

        def forward(self, x, y):
            out = self.fc(x)
            return out, F.cross_entropy(out, y)

    x, y = data
    assert check_model_grads(WithLoss(), x[:4], y[:4], None, n_entries=3).ok


# --- overfit a small set ------------------------------------------------------------------------

def test_overfit_healthy_model_is_fine(data, tmp_path):
    fg.manual_seed(0)
    r = overfit_small(ResidualMLP(), data, n=32, max_steps=100, plot=tmp_path / "of.png")
    assert r.ok and r.reached and r.final_error == 0.0
    assert r.verdict.startswith("fine: reached 0 training error on 32 examples")
    assert r.steps < 100 and len(r.losses) == r.steps
    assert (tmp_path / "of.png").stat().st_size > 1000
    assert abs(r.chance_loss - np.log(10)) < 1e-9


def test_overfit_flags_labels_shuffled_against_inputs(data):
    x, y = data
    fg.manual_seed(0)
    r = overfit_small(ResidualMLP(), MisalignedPairs(x, y), n=32, max_steps=50)
    assert not r.ok and not r.reached
    assert "labels shuffled against inputs" in r.verdict
    assert "chance level" in r.verdict and r.control is not None
    assert not r.no_gradient  # gradients flowed: it is the data


def test_overfit_names_a_detached_layer(data):
    fg.manual_seed(0)
    r = overfit_small(DetachedMLP(), data, n=32, max_steps=100)
    assert not r.ok
    assert r.no_gradient == ["linear1.weight", "linear1.bias"]
    assert "linear1.weight, linear1.bias" in r.verdict and "detach" in r.verdict


def test_overfit_flags_a_zero_learning_rate(data):
    fg.manual_seed(0)
    r = overfit_small(ResidualMLP(), data, n=32, lr=0.0, max_steps=20)
    assert not r.ok and len(r.unchanged) == 6
    assert "no parameter changed" in r.verdict and "learning rate is zero" in r.verdict


def test_overfit_accepts_an_optimizer_and_regression():
    fg.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32))
    model = nn.Linear(3, 1)
    r = overfit_small(model, (x, y), loss_fn=F.mse_loss, max_steps=400,
                      optimizer=fg.optim.Adam(model.parameters(), lr=0.1))
    assert r.reached and r.ok and r.chance_loss is None, r.verdict


# --- anomaly mode -------------------------------------------------------------------------------

class LogLayer(nn.Module):
    def forward(self, x):
        return x.log()


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), LogLayer())

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("with_model", [True, False], ids=["hooks", "stack"])
def test_anomaly_names_forward_op_and_module(with_model):
    fg.manual_seed(0)
    model = Wrapper()
    with pytest.raises(AnomalyError) as info:
        with detect_anomaly(model if with_model else None):
            model(fg.randn(5, 4)).sum().backward()
    e = info.value
    assert (e.op, e.pass_, e.kind) == ("Log", "forward", "nan")
    assert e.module == "net.3" and e.module_class == "LogLayer"
    assert e.shapes["output"] == (5, 3)
    msg = str(e)
    assert "net.3 (LogLayer) in Wrapper" in msg and "this op created the value" in msg
    assert "test_debug_core.py" in e.where
    assert not is_anomaly_enabled() and _op._anomaly_mode is False
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())


def test_anomaly_names_backward_op_and_module():
    class Root(nn.Module):
        def forward(self, x):
            return (x * 0).sqrt()

    model = nn.Sequential(nn.Linear(4, 4), Root())
    with pytest.raises(AnomalyError) as info:
        with detect_anomaly(model):
            model(fg.randn(2, 4)).sum().backward()
    e = info.value
    assert (e.op, e.pass_, e.kind) == ("Sqrt", "backward", "inf")
    assert e.module == "1" and e.module_class == "Root"
    assert e.shapes["grad_input"] == (2, 4)
    assert "gradient of sqrt at 0" in str(e)


def test_anomaly_points_at_bad_input_data():
    model = nn.Sequential(nn.Linear(3, 2))
    x = fg.tensor([[1.0, float("nan"), 0.0]])
    with pytest.raises(AnomalyError) as info:
        with detect_anomaly(model):
            model(x)
    assert info.value.op == "Linear" and info.value.module == "0"
    assert "input 0 (a leaf tensor (input data?)) already held nan" in str(info.value)


def test_anomaly_healthy_step_and_deliberate_inf_pass():
    fg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 3))
    with detect_anomaly(model):
        loss = F.cross_entropy(model(fg.randn(4, 6)), fg.tensor([0, 1, 2, 0]))
        loss.backward()
        s = fg.randn(3, 3, requires_grad=True)
        mask = fg.tensor(np.triu(np.ones((3, 3), bool), 1))
        s.masked_fill(mask, float("-inf")).softmax(-1).sum().backward()  # an attention mask
    assert np.isfinite(s.grad.numpy()).all()
    assert not is_anomaly_enabled()
    # off: NaNs flow without a check
    with np.errstate(invalid="ignore"):
        assert np.isnan(fg.tensor([-1.0]).log().item())


def test_anomaly_as_decorator_and_nesting():
    @detect_anomaly()
    def bad():
        return fg.tensor([0.0]).log() * fg.tensor([0.0])

    with pytest.raises(AnomalyError):
        bad()
    with detect_anomaly():
        with detect_anomaly(check_forward=False):
            fg.tensor([0.0]).log()  # forward checks off in the inner block
        assert is_anomaly_enabled()
        with pytest.raises(AnomalyError):
            fg.tensor([0.0]).log()
    assert not is_anomaly_enabled()


# --- the flow graph -----------------------------------------------------------------------------

def _mlp_loss():
    fg.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    loss = F.cross_entropy(m(fg.randn(5, 4)), fg.tensor([0, 1, 2, 0, 1]))
    return m, loss


def test_to_dot_labels_ops_shapes_and_parameters():
    m, loss = _mlp_loss()
    dot = to_dot(loss, params=dict(m.named_parameters()))
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    for text in ("CrossEntropy", "Linear\\n(5, 3)", "Relu\\n(5, 8)", "0.weight\\n(8, 4)",
                 "2.bias\\n(3,)", "input (no grad)\\n(5, 4)"):
        assert text in dot, text
    assert dot.count("->") == 9 and dot.count("[label=") == 10
    assert "(5, 3)" not in to_dot(loss, show_shapes=False)


def test_print_graph_and_unreached_parameters(capsys):
    m, loss = _mlp_loss()
    text = print_graph(loss, params=m)
    assert capsys.readouterr().out == text
    assert text.splitlines()[0] == "#1 CrossEntropy scalar"
    assert "      #6 param 0.weight (8, 4)" in text
    assert unreached_parameters(loss, m) == []
    fg.manual_seed(0)
    bad = DetachedMLP()
    bad_loss = F.cross_entropy(bad(fg.randn(2, 40)), fg.tensor([1, 2]))
    assert unreached_parameters(bad_loss, bad) == ["linear1.weight", "linear1.bias"]


def test_graph_shared_nodes_deep_graphs_and_freed_graphs():
    x = fg.randn(3, requires_grad=True)
    h = x.tanh()
    y = (h * h + h).sum()  # h is used three times: printed once
    text = format_graph(y)
    assert text.count("Tanh") == 3 and text.count("(see above)") == 2
    t = x
    for _ in range(20000):  # deeper than Python's recursion limit
        t = t * 1.0001
    out = t.sum()
    assert len(graph_nodes(out)) == 20002  # 20,000 Mul, the Sum and the leaf x
    assert to_dot(out).count("->") == 20001
    out.backward()
    assert "freed by backward" in format_graph(out)


def test_draw_graph_writes_dot_and_image_or_text(tmp_path):
    m, loss = _mlp_loss()
    d = draw_graph(loss, tmp_path / "g.svg", params=m)
    assert d.dot.exists() and d.dot.read_text().startswith("digraph")
    if d.image is not None:
        assert d.image.exists() and d.image.stat().st_size > 0
    else:
        assert d.text.exists() and "CrossEntropy" in d.text.read_text()
        assert "not installed" in d.note or "could not" in d.note or "failed" in d.note
    assert draw_graph(loss, tmp_path / "only.dot").image is None


# --- the recipe ---------------------------------------------------------------------------------

def test_debug_checks_recipe_quick_catches_every_bug(tmp_path):
    from flowgrad.recipes import debug_checks

    s = debug_checks.run(out=str(tmp_path), quick=True, progress=False)
    assert s["healthy_all_fine"] and s["bugs_caught"] == s["planted_bugs"] == 9, s["checks"]
    md = (tmp_path / "debug_checks.md").read_text()
    assert "| check | healthy model | planted bug | verdict | caught |" in md
    assert (tmp_path / "debug_checks.json").exists()
    assert (tmp_path / "debug_checks_overfit.png").exists()
    assert (tmp_path / "debug_checks_graph.dot").exists()
