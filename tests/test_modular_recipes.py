"""The modular-mechanism recipes' shared parts (flowgrad/recipes/modular_common.py): the
sequence model over each core, the parameter-matched LSTM, the training loop's checkpoint
choice; and the measures and verdicts the recipes compute from numbers."""

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.recipes import rims_copying, scoff_adding
from flowgrad.recipes.modular_common import (
    SequenceNet,
    matched_lstm_hidden,
    official_attention,
    parameter_count,
    predict,
    train,
)

RIM_OPTIONS = {"num_units": 3, "k_active": 2, **official_attention(12, 3)}
SCOFF_OPTIONS = {"num_object_files": 3, "num_schemata": 2, "k_active": 2,
                 **official_attention(12, 3)}


@pytest.mark.parametrize("core, options", [("lstm", {}), ("rim", RIM_OPTIONS),
                                           ("scoff", SCOFF_OPTIONS)])
def test_sequence_net_shapes_for_every_core(core, options):
    fg.manual_seed(0)
    tokens = SequenceNet(core, 5, 12, 7, vocab=4, **options)
    y = tokens(fg.from_numpy(np.array([[0, 1, 2, 3, 1], [3, 3, 0, 0, 2]], dtype=np.int64)))
    assert tuple(y.shape) == (2, 5, 7)
    features = SequenceNet(core, 3, 12, 1, last_only=True, **options)
    z = features(fg.from_numpy(np.zeros((4, 6, 3), dtype=np.float32)))
    assert tuple(z.shape) == (4, 1)
    if core == "lstm":
        assert features.masks is None
    else:  # (T, B, K) active modules, exactly k_active per step
        assert features.masks.shape == (6, 4, 3)
        assert (features.masks.sum(-1) == 2).all()


def test_sequence_net_rejects_unknown_core_and_lstm_options():
    with pytest.raises(ValueError, match="core='gru'"):
        SequenceNet("gru", 3, 12, 1)
    with pytest.raises(ValueError, match="num_units"):
        SequenceNet("lstm", 3, 12, 1, num_units=3)


@pytest.mark.parametrize("vocab, input_size, output", [(10, 120, 20), (None, 2, 1)])
def test_matched_lstm_is_within_five_percent_of_the_rims(vocab, input_size, output):
    options = {"num_units": 6, "k_active": 4, **official_attention(120, 6)}
    rims = SequenceNet("rim", input_size, 120, output, vocab=vocab, **options)
    target = parameter_count(rims)
    h = matched_lstm_hidden(target, input_size, output, vocab=vocab)
    lstm = SequenceNet("lstm", input_size, h, output, vocab=vocab)
    assert abs(parameter_count(lstm) - target) <= 0.05 * target


def test_training_loop_keeps_the_best_validation_state():
    """Validation scores scripted as 5, 3, 1, 4, 2 (steps 0, 2, 4, 6, 8): the weights put back
    are those the model had at step 4, the lowest score; ties would keep the earlier step."""
    fg.manual_seed(0)
    model = fg.nn.Linear(3, 1)
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True).astype(np.float32)
    scores, seen = iter([5.0, 3.0, 1.0, 4.0, 2.0]), []

    def validate(m):
        seen.append({k: v.numpy().copy() for k, v in m.state_dict().items()})
        return {"score": next(scores)}

    result = train(model, lambda step: (x, y),
                   lambda m, xb, yb: fg.nn.functional.mse_loss(m(xb), yb), validate,
                   steps=8, lr=0.05, eval_every=2, progress=False)
    assert result["best_step"] == 4 and result["best"] == {"score": 1.0}
    assert [c["step"] for c in result["curve"]] == [0, 2, 4, 6, 8]
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), seen[2][k])
    assert not np.array_equal(seen[2]["weight"], seen[4]["weight"])  # it did train on
    assert len(result["train_loss"]) == 8 and result["train_loss"][-1] < result["train_loss"][0]


def test_predict_batches_agree_with_one_pass():
    fg.manual_seed(0)
    model = SequenceNet("lstm", 4, 8, 3, vocab=5)
    x = np.random.default_rng(1).integers(0, 5, size=(7, 6))
    with fg.no_grad():
        whole = model(fg.from_numpy(x)).numpy()
    np.testing.assert_allclose(predict(model, x, batch_size=3), whole, rtol=1e-6, atol=1e-6)


def test_copying_measures_split_blanks_from_digits():
    y = np.array([[0, 0, 0, 3, 5], [0, 0, 0, 1, 1]])
    logits = np.full((2, 5, 20), -30.0)
    np.put_along_axis(logits, y[..., None], 30.0, -1)
    perfect = rims_copying.measure(logits, y, seq_len=2)
    assert perfect["ce"] < 1e-6 and perfect["digit_accuracy"] == 1.0 and perfect["perfect"] == 1
    logits[:, -2:] = 0.0  # uniform over 20 classes on the digits only
    m = rims_copying.measure(logits, y, seq_len=2)
    assert m["ce_digits"] == pytest.approx(np.log(20), rel=1e-6)
    assert m["ce"] == pytest.approx(np.log(20) * 2 / 5, rel=1e-6)


def test_adding_verdicts_are_computed_from_the_means():
    ks = [2, 3, 4, 5, 8, 9, 10]
    lstm = dict(zip(ks, [0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.2]))
    rims = dict(zip(ks, [0.01, 0.01, 0.01, 0.02, 0.05, 0.10, 0.30]))
    scoff = dict(zip(ks, [0.01, 0.01, 0.01, 0.02, 0.04, 0.20, 0.20]))
    s = {"test_ks": ks, "models": ["lstm", "rims", "scoff"]}
    for name, table in (("lstm", lstm), ("rims", rims), ("scoff", scoff)):
        s[name] = {"test_mean": {str(k): v for k, v in table.items()}}
    v = scoff_adding._verdicts(s)
    assert v["lstm_grows"] and v["lstm_ratio_10_2"] == pytest.approx(12.0) and v["lstm_claim"]
    assert v["modular_beat_lstm"] and v["scoff_le_rims_count"] == 2 and v["scoff_claim"]
    s["lstm"]["test_mean"]["9"] = 0.7  # no longer increasing
    assert scoff_adding._verdicts(s)["lstm_claim"] is False
