"""LeNet-5 as LeCun et al. (1998) define it: shapes, Table I, parameter counts, learning."""

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.models import LeNet5
from flowgrad.models.lenet import C3_TABLE, c3_connections


def test_shapes_at_each_layer():
    fg.manual_seed(0)
    feats = dict(LeNet5().features(fg.rand(3, 1, 28, 28)))
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "input": (3, 1, 32, 32), "c1": (3, 6, 28, 28), "s2": (3, 6, 14, 14),
        "c3": (3, 16, 10, 10), "s4": (3, 16, 5, 5), "c5": (3, 120, 1, 1), "f6": (3, 84),
        "output": (3, 10)}
    assert LeNet5()(fg.rand(2, 784)).shape == (2, 10)  # flat images
    assert LeNet5()(fg.rand(2, 1, 32, 32)).shape == (2, 10)  # already padded


def test_table_one_and_parameter_counts():
    table = c3_connections()
    assert table.sum() == 60 and table.sum(1).tolist() == [3] * 6 + [4] * 9 + [6]
    assert table[:, 0].nonzero()[0].tolist() == [0, 4, 5, 6, 9, 10, 11, 12, 14, 15]  # row 0
    assert C3_TABLE[12] == (0, 1, 3, 4) and C3_TABLE[15] == (0, 1, 2, 3, 4, 5)
    model = LeNet5()
    assert model.c3.num_trainable() == 1516  # the paper: 1,516 trainable parameters in C3
    counts = {name: sum(p.numel() for p in layer.parameters())
              for name, layer in [("c1", model.c1), ("s2", model.s2), ("s4", model.s4),
                                  ("c5", model.c5), ("f6", model.f6)]}
    assert counts == {"c1": 156, "s2": 12, "s4": 32, "c5": 48120, "f6": 10164}  # the paper's
    assert model.num_trainable() == 60_850  # the paper's 60,000-odd, with a linear output


def test_scaled_tanh_is_the_papers():
    from flowgrad.models.lenet import ScaledTanh

    y = ScaledTanh()(fg.tensor([-1.0, 0.0, 1.0])).numpy()
    assert np.allclose(y, [-1.0, 0.0, 1.0], atol=1e-4)  # f(±1) = ±1 by construction


def test_masked_weights_stay_zero_and_get_zero_gradient():
    fg.manual_seed(0)
    model = LeNet5()
    off = 1 - model.c3.mask.numpy()
    assert off.sum() == (16 * 6 - 60) * 25
    assert np.abs(model.c3.weight.detach().numpy() * off).max() == 0
    opt = fg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    x, y = fg.rand(8, 1, 28, 28), fg.randint(0, 10, (8,))
    for _ in range(3):
        loss = fg.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        assert np.abs(model.c3.weight.grad.numpy() * off).max() == 0
        assert np.abs(model.c3.weight.grad.numpy() * (1 - off)).max() > 0
        opt.step()
    assert np.abs(model.c3.weight.detach().numpy() * off).max() == 0


def test_overfits_a_tiny_set():
    fg.manual_seed(0)
    model = LeNet5()
    x = fg.rand(32, 1, 28, 28)
    y = fg.arange(32) % 10
    opt = fg.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = fg.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert (model(x).argmax(-1).numpy() == y.numpy()).all()


def test_state_dict_round_trip(tmp_path):
    fg.manual_seed(0)
    a, b = LeNet5(), LeNet5()
    x = fg.rand(4, 1, 28, 28)
    keys = set(a.state_dict())
    assert "c3.mask" not in keys and {"c3.weight", "s2.weight", "s2.bias"} <= keys
    fg.save(a.state_dict(), tmp_path / "lenet5.safetensors")
    b.load_state_dict(fg.load(tmp_path / "lenet5.safetensors"))
    assert np.array_equal(a(x).detach().numpy(), b(x).detach().numpy())


def test_paper_init_is_available_and_bad_init_is_an_error():
    fg.manual_seed(0)
    model = LeNet5(init="paper")
    w = model.c5.weight.detach().numpy()
    assert np.abs(w).max() <= 2.4 / 400 + 1e-7
    with pytest.raises(ValueError, match="init"):
        LeNet5(init="xavier")
