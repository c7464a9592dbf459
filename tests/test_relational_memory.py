"""The relational memory core (flowgrad.modular.RelationalMemory, Santoro et al. 2018, as Sonnet's
``RelationalMemory``): a PyTorch transcription of Sonnet's step on the same weights gives the
same outputs and gradients over several steps, finite differences agree, the initial memory is
the padded or truncated identity, bad shapes raise, and the core learns to recall."""

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.modular import RelationalMemory


def _torch_step(torch, sd, x, memory, cfg):
    """Sonnet's RelationalMemory._build in PyTorch, reading flowgrad's state_dict ``sd``."""
    F = torch.nn.functional
    h, k, v, blocks = cfg["num_heads"], cfg["key_size"], cfg["head_size"], cfg["num_blocks"]

    def lin(name, t):
        return F.linear(t, sd[f"{name}.weight"], sd[f"{name}.bias"])

    def ln(name, t):
        return F.layer_norm(t, t.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], 1e-5)

    def mlp(t):
        names = sorted({n.split(".")[1] for n in sd if n.startswith("mlp.")}, key=int)
        for i, n in enumerate(names):
            t = lin(f"mlp.{n}", t)
            if i < len(names) - 1:
                t = torch.relu(t)
        return t

    projected = lin("input_projection", x).unsqueeze(1)
    rows = torch.cat([memory, projected], 1)
    b, n, _ = rows.shape
    for i in range(blocks):
        qkv = ln(f"qkv_norm.{i}", lin(f"qkv.{i}", rows))
        qkv = qkv.reshape(b, n, h, 2 * k + v).permute(0, 2, 1, 3)
        q, key, val = torch.split(qkv, [k, k, v], -1)
        w = torch.softmax((q * k ** -0.5) @ key.transpose(-1, -2), -1)
        att = (w @ val).permute(0, 2, 1, 3).reshape(b, n, h * v)
        rows = ln(f"attention_norm.{i}", rows + att)
        rows = ln(f"mlp_norm.{i}", mlp(rows) + rows)
    rows = rows[:, :-1]
    if cfg["gate_style"] is not None:
        gates = lin("gate_memory", torch.tanh(memory)) + lin("gate_input", projected)
        i_gate, f_gate = torch.chunk(gates, 2, -1)
        rows = (torch.sigmoid(i_gate + cfg["input_bias"]) * torch.tanh(rows)
                + torch.sigmoid(f_gate + cfg["forget_bias"]) * memory)
    return rows.reshape(b, -1), rows


CONFIGS = {
    "unit": dict(num_heads=2, head_size=3, key_size=4, num_blocks=2, gate_style="unit",
                 attention_mlp_layers=2),
    "memory": dict(num_heads=1, head_size=5, key_size=None, num_blocks=1, gate_style="memory",
                   attention_mlp_layers=3),
    "none": dict(num_heads=3, head_size=2, key_size=None, num_blocks=1, gate_style=None,
                 attention_mlp_layers=1),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_a_torch_transcription_of_sonnet_over_steps(torch, name, dtype):
    cfg = dict(CONFIGS[name], forget_bias=1.0, input_bias=0.0)
    rmc = RelationalMemory(5, 3, **{k: cfg[k] for k in CONFIGS[name]}).to(getattr(fg, dtype))
    cfg["key_size"] = cfg["key_size"] or cfg["head_size"]
    tdt = getattr(torch, dtype)
    sd = {k: torch.tensor(v.numpy(), dtype=tdt, requires_grad=True)
          for k, v in rmc.state_dict().items()}
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4, 2, 5))
    weights = rng.standard_normal((4, 2, rmc.output_size))
    m0 = rng.standard_normal((2, 3, rmc.mem_size)) * 0.5
    fx = [fg.tensor(x, dtype=getattr(fg, dtype), requires_grad=True) for x in xs]
    fm = fg.tensor(m0, dtype=getattr(fg, dtype), requires_grad=True)
    tx = [torch.tensor(x, dtype=tdt, requires_grad=True) for x in xs]
    tm = torch.tensor(m0, dtype=tdt, requires_grad=True)
    f_loss, t_loss, f_mem, t_mem = 0, 0, fm, tm
    for step in range(4):
        f_out, f_mem = rmc(fx[step], f_mem)
        t_out, t_mem = _torch_step(torch, sd, tx[step], t_mem, cfg)
        f_loss = f_loss + (f_out * fg.tensor(weights[step], dtype=f_out.dtype)).sum()
        t_loss = t_loss + (t_out * torch.tensor(weights[step], dtype=tdt)).sum()
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == "float64" else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(f_mem.detach().numpy(), t_mem.detach().numpy(), **tol)
    f_loss.backward()
    t_loss.backward()
    for f, t in zip([*fx, fm], [*tx, tm]):
        np.testing.assert_allclose(f.grad.numpy(), t.grad.numpy(), **tol)
    for key, p in rmc.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), sd[key].grad.numpy(), **tol, err_msg=key)


def test_finite_differences_every_input_and_parameter():
    rmc = RelationalMemory(3, 2, head_size=2, num_heads=2, num_blocks=2).double()
    x = fg.randn(2, 3, dtype=fg.float64, requires_grad=True)
    m = fg.randn(2, 2, 4, dtype=fg.float64, requires_grad=True)
    fg.autograd.gradcheck(lambda x, m, *p: rmc(x, m)[1], [x, m, *rmc.parameters()])


def test_initial_memory_is_the_padded_or_truncated_identity():
    wide = RelationalMemory(4, mem_slots=3, head_size=5).initial_state(2).numpy()
    assert wide.shape == (2, 3, 5)
    np.testing.assert_array_equal(wide[1], np.eye(3, 5))
    narrow = RelationalMemory(4, mem_slots=6, head_size=2, num_heads=2).initial_state(1).numpy()
    np.testing.assert_array_equal(narrow[0], np.eye(6)[:, :4])
    assert RelationalMemory(4, 6, 2).double().initial_state(1).dtype == fg.float64


def test_gate_biases_and_parameter_layout():
    rmc = RelationalMemory(4, 2, head_size=4, gate_style="memory", forget_bias=5.0)
    assert tuple(rmc.gate_memory.weight.shape) == (2, 4)  # one input and one forget gate a slot
    with fg.no_grad():
        for p in rmc.parameters():
            p.zero_()
    m = fg.randn(3, 2, 4)
    _, new = rmc(fg.randn(3, 4), m)
    # zero weights: the attended rows are 0 -> tanh 0; the forget gate is sigmoid(5)
    np.testing.assert_allclose(new.detach().numpy(), 1 / (1 + np.exp(-5.0)) * m.numpy(),
                               rtol=1e-6)
    assert "gate_input.weight" not in RelationalMemory(4, 2, 4, gate_style=None).state_dict()


def test_bad_input_names_the_shapes():
    rmc = RelationalMemory(4, 2, head_size=3)
    with pytest.raises(ValueError, match=r"input of shape \(5, 3\), expected \(batch, 4\)"):
        rmc(fg.randn(5, 3), rmc.initial_state(5))
    with pytest.raises(ValueError, match=r"memory of shape \(5, 3, 3\), expected \(5, 2, 3\)"):
        rmc(fg.randn(5, 4), fg.zeros(5, 3, 3))
    with pytest.raises(ValueError, match="gate_style must be one of"):
        RelationalMemory(4, 2, 3, gate_style="slot")
    with pytest.raises(ValueError, match="mem_slots must be an integer >= 1, got 0"):
        RelationalMemory(4, 0, 3)


def test_learns_to_recall_the_first_symbol():
    """Five steps of one-hot symbols; after the last, classify the first one (chance 1/4)."""
    rng = np.random.default_rng(0)
    rmc = RelationalMemory(4, mem_slots=2, head_size=8, num_heads=2)
    head = fg.nn.Linear(rmc.output_size, 4)
    params = [*rmc.parameters(), *head.parameters()]
    opt = fg.optim.Adam(params, lr=3e-3)

    def batch(n):
        symbols = rng.integers(0, 4, size=(n, 5))
        return np.eye(4, dtype=np.float32)[symbols], symbols[:, 0]

    def logits(x):
        memory = rmc.initial_state(len(x))
        for t in range(x.shape[1]):
            out, memory = rmc(fg.from_numpy(x[:, t]), memory)
        return head(out)

    for _ in range(300):
        x, y = batch(32)
        loss = fg.nn.functional.cross_entropy(logits(x), fg.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = batch(500)
    with fg.no_grad():
        accuracy = (logits(x).numpy().argmax(-1) == y).mean()
    assert accuracy > 0.9, accuracy
