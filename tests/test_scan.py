"""The SCAN reader (Lake & Baroni 2018): line counts against the README, parsing errors,
vocabularies, the validation carve, encoding, batching and exact match."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from flowgrad.datasets import DatasetNotFoundError
from flowgrad.datasets.scan import (
    SCAN,
    SCAN_SPLITS,
    ScanFormatError,
    encode_pairs,
    exact_match,
    parse_scan_line,
    read_scan_file,
)
from flowgrad.datasets.text import UnknownTokenError, Vocabulary

# (train lines, test lines) from shared/data/scan/README.md
COUNTS = {"simple": (16728, 4182), "length": (16990, 3920), "addprim_jump": (14670, 7706),
          "addprim_turn_left": (21890, 1208)}
COMMANDS = ["after", "and", "around", "jump", "left", "look", "opposite", "right", "run",
            "thrice", "turn", "twice", "walk"]
ACTIONS = ["I_JUMP", "I_LOOK", "I_RUN", "I_TURN_LEFT", "I_TURN_RIGHT", "I_WALK"]


def _load(split, **kw):
    try:
        return SCAN(split, download=False, **kw)
    except DatasetNotFoundError:
        pytest.skip("SCAN files not available (see shared/data/scan)")


@pytest.fixture(scope="module")
def data():
    return {split: _load(split) for split in SCAN_SPLITS}


@pytest.mark.parametrize("split", list(SCAN_SPLITS))
def test_counts_and_vocabularies(data, split):
    d = data[split]
    n_train, n_test = COUNTS[split]
    assert len(d.train) + len(d.valid) == n_train and len(d.test) == n_test
    repeated = {"addprim_jump": 1467, "addprim_turn_left": 2189}.get(split, 0)
    assert len(d.valid) == round(0.1 * (n_train - repeated))
    assert d.src_vocab.itos == ["<pad>", "<bos>", "<eos>"] + COMMANDS  # 13 words + 3 specials
    assert d.tgt_vocab.itos == ["<pad>", "<bos>", "<eos>"] + ACTIONS   # 6 actions + 3 specials
    # every test token is in the training vocabulary, even on the add-primitive splits
    test_tokens = {t for c, a in d.test for t in c + a}
    assert test_tokens <= set(d.src_vocab.itos) | set(d.tgt_vocab.itos)


def test_add_primitive_splits(data):
    """The primitive appears in training only in isolation; every test command uses it."""
    for split, word in [("addprim_jump", "jump"), ("addprim_turn_left", "turn left")]:
        d = data[split]
        train = [" ".join(c) for c, _ in d.train + d.valid]
        with_word = [c for c in train if word in c]
        assert set(with_word) == {word}
        assert all(word in " ".join(c) for c, _ in d.test)
    jump = data["addprim_jump"]
    assert (["jump"], ["I_JUMP"]) in jump.train + jump.valid


def test_length_split_lengths(data):
    d = data["length"]
    assert max(len(a) for _, a in d.train + d.valid) <= 22
    assert min(len(a) for _, a in d.test) >= 24


@pytest.mark.parametrize("split", list(SCAN_SPLITS))
def test_splits_disjoint(data, split):
    d = data[split]
    parts = (d.train, d.valid, d.test)
    key = [{(" ".join(c), " ".join(a)) for c, a in part} for part in parts]
    assert len(key[1]) == len(d.valid) and len(key[2]) == len(d.test)
    # within training only the add-primitive splits' repeated primitive line is duplicated
    counts = Counter((" ".join(c), " ".join(a)) for c, a in d.train)
    repeated = {k for k, n in counts.items() if n > 1}
    assert repeated == {"addprim_jump": {("jump", "I_JUMP")},
                        "addprim_turn_left": {("turn left", "I_TURN_LEFT")}}.get(split, set())
    assert not key[0] & key[1] and not key[0] & key[2] and not key[1] & key[2]


def test_validation_carve_deterministic_and_seeded(data):
    a, b = data["simple"], _load("simple")
    assert a.valid == b.valid and a.train == b.train
    c = _load("simple", seed=1)
    assert c.valid != a.valid and len(c.valid) == len(a.valid)
    none = _load("simple", valid_fraction=0.0)
    assert none.valid == [] and len(none.train) == COUNTS["simple"][0]
    # the carve keeps file order; train + valid interleave back into the file
    full = read_scan_file(a.root / a.files[0])
    assert sorted(full.index(p) for p in a.valid[:50]) == [full.index(p) for p in a.valid[:50]]
    with pytest.raises(ValueError, match="valid_fraction"):
        SCAN("simple", valid_fraction=1.0)
    with pytest.raises(ValueError, match="unknown split"):
        SCAN("add_prim")


def test_parse_errors(tmp_path):
    assert parse_scan_line("IN: jump twice OUT: I_JUMP I_JUMP\n") == (
        ["jump", "twice"], ["I_JUMP", "I_JUMP"])
    path = tmp_path / "bad.txt"
    path.write_text("IN: walk OUT: I_WALK\n\nIN: run left OUTPUT: I_RUN\n")
    with pytest.raises(ScanFormatError, match=r"bad\.txt, line 3.*'IN: run left OUTPUT: I_RUN'"):
        read_scan_file(path)
    for bad in ["OUT: I_WALK", "IN: OUT: I_WALK", "IN: walk OUT:", "walk OUT: I_WALK",
                "IN: walk OUT: I_WALK OUT: I_RUN"]:
        with pytest.raises(ScanFormatError, match="cannot parse"):
            parse_scan_line(bad)
    ok = tmp_path / "ok.txt"
    ok.write_text("IN: walk OUT: I_WALK\n\nIN: run OUT: I_RUN\n")
    assert read_scan_file(ok) == [(["walk"], ["I_WALK"]), (["run"], ["I_RUN"])]


def test_unknown_test_token_raises():
    vocab = Vocabulary.build(["walk"], specials=["<pad>", "<bos>", "<eos>"])
    acts = Vocabulary.build(["I_WALK"], specials=["<pad>", "<bos>", "<eos>"])
    with pytest.raises(UnknownTokenError, match="'jump' is not in the vocabulary"):
        encode_pairs([(["jump"], ["I_WALK"])], vocab, acts)


def test_encode(data):
    d = data["simple"]
    pairs = [(["jump", "twice"], ["I_JUMP", "I_JUMP"]), (["walk"], ["I_WALK"])]
    b = encode_pairs(pairs, d.src_vocab, d.tgt_vocab)
    j, w, tw = (d.src_vocab[t] for t in ("jump", "walk", "twice"))
    ij, iw = d.tgt_vocab["I_JUMP"], d.tgt_vocab["I_WALK"]
    np.testing.assert_array_equal(b.src, [[j, tw], [w, 0]])
    np.testing.assert_array_equal(b.src_lengths, [2, 1])
    np.testing.assert_array_equal(b.tgt_in, [[1, ij, ij], [1, iw, 0]])
    np.testing.assert_array_equal(b.tgt_out, [[ij, ij, 2], [iw, 2, 0]])
    np.testing.assert_array_equal(b.tgt_lengths, [3, 2])
    assert all(a.dtype == np.int64 for a in b)
    whole = d.encode("test")
    assert whole.src.shape == (4182, 9) and whole.tgt_out.shape == (4182, 49)
    assert (whole.tgt_out == 2).sum() == 4182
    assert d.targets("test")[0] == d.tgt_vocab.encode(d.test[0][1]).tolist()


@pytest.mark.parametrize("bucket", [False, True])
def test_batches(data, bucket):
    d = data["length"]
    batches = list(d.batches("valid", 64, seed=3, bucket=bucket))
    again = list(d.batches("valid", 64, seed=3, bucket=bucket))
    other = list(d.batches("valid", 64, seed=4, bucket=bucket))
    assert all(np.array_equal(x.src, y.src) for x, y in zip(batches, again))
    assert not np.array_equal(batches[0].src, other[0].src)
    assert sum(len(b.src) for b in batches) == len(d.valid)
    assert all(len(b.src) == 64 for b in batches[:-1] if not bucket)
    seen = sorted(tuple(row[:n]) for b in batches for row, n in zip(b.src, b.src_lengths))
    assert seen == sorted(tuple(d.src_vocab.encode(c)) for c, _ in d.valid)
    for b in batches:  # padded only to the batch's longest sequence
        assert b.tgt_out.shape[1] == b.tgt_lengths.max() and b.src.shape[1] == b.src_lengths.max()
    padding = sum(b.tgt_out.size - b.tgt_lengths.sum() for b in batches)
    if bucket:
        plain = sum(b.tgt_out.size - b.tgt_lengths.sum()
                    for b in d.batches("valid", 64, seed=3))
        assert padding < plain / 3
    ordered = next(d.batches("test", 5, shuffle=False))
    np.testing.assert_array_equal(ordered.src, d.encode("test").src[:5, :ordered.src.shape[1]])
    dropped = list(d.batches("valid", 64, drop_last=True))
    assert all(len(b.src) == 64 for b in dropped)


def test_exact_match():
    assert exact_match([[3, 4], [5]], [[3, 4], [5]]) == 1.0
    assert exact_match([[3, 4], [5, 5]], [[3, 4], [5]]) == 0.5
    assert exact_match([np.array([3]), ["a"]], [[3], ["b"]]) == 0.5
    with pytest.raises(ValueError, match="2 predictions for 1 targets"):
        exact_match([[1], [2]], [[1]])
    with pytest.raises(ValueError, match="no sequences"):
        exact_match([], [])


def test_recipe_learning_rate_schedules():
    from flowgrad.recipes.scan import learning_rate

    assert learning_rate(1e-3, 5, 100, 0, "constant") == 1e-3
    assert learning_rate(1e-3, 5, 100, 10, "constant") == pytest.approx(5e-4)  # warm-up
    assert learning_rate(1e-3, 10, 110, 10, "cosine") == pytest.approx(1e-3)
    assert learning_rate(1e-3, 60, 110, 10, "cosine") == pytest.approx(5e-4)
    assert learning_rate(1e-3, 110, 110, 10, "cosine") == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        learning_rate(1e-3, 1, 10, 0, "step")


def test_recipe_cells_of_several_budgets_share_a_directory():
    from flowgrad.recipes.scan import _summarise, cell_name

    default = {"steps": 3000, "batch_size": 32, "schedule": "constant"}
    assert cell_name("rnn", "simple", 0, default) == "rnn_simple_seed0"
    longer = {"steps": 8000, "batch_size": 32, "schedule": "cosine"}
    assert cell_name("rnn", "simple", 0, longer) == "rnn_simple_seed0_8000x32_cosine"

    def cell(steps, schedule, valid, test):
        return {"model": "attention", "split": "simple", "seed": 0, "steps": steps,
                "batch_size": 32, "schedule": schedule, "valid_exact_match": valid,
                "test_exact_match": test, "train_seconds": 1.0, "test_seconds": 1.0,
                "best_step": steps, "errors": [],
                "setup": {"steps": steps, "batch_size": 32, "schedule": schedule}}

    cells = [cell(3000, "constant", 0.9, 0.9), cell(8000, "constant", 0.98, 0.995),
             cell(8000, "cosine", 0.99, 0.97)]
    st = _summarise(cells, "flowgrad train scan", False)["stats"]["attention"]["simple"]
    # the largest budget heads the row; between schedules of that size, validation decides
    assert st["steps"] == [8000] and st["schedules"] == ["cosine"] and st["mean"] == 97.0
    assert [(o["steps"], o["schedules"]) for o in st["others"]] == [([8000], ["constant"]),
                                                                    ([3000], ["constant"])]
    collapsed = dict(cell(3000, "constant", 0.0, 0.0), model="syntactic", end_slot_share=1.0,
                     curve=[{"step": 3000, "train_loss": 1.86, "valid_exact_match": 0.0}],
                     stopped_at=None)
    stopped = dict(cell(8000, "constant", 1.0, 1.0), model="syntactic", end_slot_share=0.0,
                   stopped_at=2000, split="addprim_jump")
    summary = _summarise(cells + [collapsed, stopped], "flowgrad train scan", False)
    assert summary["collapsed"] == ["syntactic, simple (random 80/20), 3,000x32, seed 0 (share "
                                    "1.00; validation exact match 0.0%, last training loss "
                                    "1.86)"]
    assert summary["stopped"] == ["syntactic, add-primitive: jump, seed 0: update 2,000"]


def test_recipe_teacher_forcing_cells_are_their_own_budget():
    from flowgrad.recipes.scan import _cell_commands, _summarise, cell_name, run, train_cell

    half = {"steps": 8000, "batch_size": 32, "schedule": "cosine", "teacher_forcing": 0.5}
    assert cell_name("attention", "simple", 0, half) == "attention_simple_seed0_8000x32_cosine_tf0.5"

    def cell(forcing, valid, test):
        setup = {"steps": 8000, "batch_size": 32, "schedule": "cosine"}
        if forcing != 1.0:
            setup["teacher_forcing"] = forcing
        return {"model": "attention", "split": "simple", "seed": 0, "steps": 8000,
                "batch_size": 32, "schedule": "cosine", "valid_exact_match": valid,
                "test_exact_match": test, "train_seconds": 1.0, "test_seconds": 1.0,
                "best_step": 8000, "errors": [], "setup": setup}

    cells = [cell(1.0, 0.99, 0.5), cell(0.5, 0.995, 0.9)]
    st = _summarise(cells, "flowgrad train scan", False)["stats"]["attention"]["simple"]
    # same size: validation picks the head, and each budget keeps its feeding
    assert st["teacher_forcing"] == 0.5 and st["mean"] == 90.0
    assert st["others"][0]["teacher_forcing"] == 1.0
    commands = _cell_commands(cells, False)
    assert sum("teacher_forcing=0.5" in c for c in commands) == 1
    with pytest.raises(ValueError, match="teacher_forcing=1.5"):
        run(teacher_forcing=1.5, train=False, progress=False)
    with pytest.raises(ValueError, match="needs a recurrent decoder"):
        train_cell("transformer", "simple", 0, 1, 2, 1, 0.1, True, False, teacher_forcing=0.5)


def test_recipe_paper_protocol_heads_its_row():
    from flowgrad.recipes.scan import PAPER_PROTOCOL, _protocol_words, _summarise

    def cell(steps, batch, forcing, valid, test):
        setup = {"steps": steps, "batch_size": batch, "schedule": "constant",
                 "teacher_forcing": forcing}
        return {"model": "attention", "split": "addprim_turn_left", "seed": 0, "steps": steps,
                "batch_size": batch, "schedule": "constant", "valid_exact_match": valid,
                "test_exact_match": test, "train_seconds": 1.0, "test_seconds": 1.0,
                "best_step": steps, "errors": [], "setup": setup}

    assert PAPER_PROTOCOL["attention"] == (100_000, 1, "constant", 0.5)
    # 100,000 single commands are fewer examples than 8,000 batches of 32, yet they head the row
    cells = [cell(8000, 32, 0.5, 0.999, 0.7), cell(100_000, 1, 0.5, 0.99, 0.9)]
    st = _summarise(cells, "flowgrad train scan", False)["stats"]["attention"]
    head = st["addprim_turn_left"]
    assert head["paper_protocol"] and head["batch_size"] == 1 and head["mean"] == 90.0
    assert not head["others"][0]["paper_protocol"]
    assert "100,000 updates of 1 command" in _protocol_words()


def test_recipe_cell_resumes_from_its_last_evaluation(tmp_path, monkeypatch, data):
    import flowgrad as fg
    import flowgrad.train as train_module
    from flowgrad.recipes.scan import _resume_paths, train_cell

    args = ("attention", "simple", 0, 6, 8, 2, 0.1, True, False)
    whole = train_cell(*args, out=tmp_path / "whole", name="cell")

    real_save = train_module.save_checkpoint

    class Stop(Exception):
        pass

    def save_then_stop(path, *a, extra=None, **k):
        real_save(path, *a, extra=extra, **k)
        if extra["step"] == 4:
            raise Stop

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        train_cell(*args, out=tmp_path / "cut", name="cell")
    resume, best = _resume_paths(tmp_path / "cut", "cell")
    assert resume.exists() and best.exists()
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    resumed = train_cell(*args, out=tmp_path / "cut", name="cell")
    # the same batches, dropout masks and evaluations as the run that was never stopped
    assert resumed["curve"] == whole["curve"]
    assert resumed["test_exact_match"] == whole["test_exact_match"]
    assert resumed["best_step"] == whole["best_step"]
    state = fg.load(resume)
    state["extra"]["key"]["steps"] = 7
    fg.save(state, resume)
    with pytest.raises(ValueError, match="other settings"):
        train_cell(*args, out=tmp_path / "cut", name="cell")


def test_recipe_stops_at_perfect_validation_with_the_whole_budgets_result(monkeypatch, data):
    import flowgrad.recipes.scan as scan_recipe

    real_accuracy = scan_recipe.accuracy

    def scripted(scores):
        seen = {}

        def accuracy(model, encoded, targets):
            acc, predictions = real_accuracy(model, encoded, targets)
            seen.setdefault("valid", id(targets))
            if id(targets) == seen["valid"]:  # validation: the scripted scores, in order
                return scores.pop(0), predictions
            return acc, predictions
        return accuracy

    args = ("attention", "simple", 0, 6, 8, 2, 0.1, True, False)
    monkeypatch.setattr(scan_recipe, "accuracy", scripted([0.5, 1.0, 1.0]))
    whole = scan_recipe.train_cell(*args)
    monkeypatch.setattr(scan_recipe, "accuracy", scripted([0.5, 1.0]))
    stopped = scan_recipe.train_cell(*args, stop_at_perfect=True)
    assert whole["stopped_at"] is None and stopped["stopped_at"] == 4
    assert stopped["best_step"] == whole["best_step"] == 4
    assert stopped["test_exact_match"] == whole["test_exact_match"]
    assert stopped["curve"] == whole["curve"][:2]


def test_recipe_measures_attention_collapsed_onto_the_end_slot(data):
    import flowgrad as fg
    from flowgrad.models.syntactic_attention import SyntacticAttentionSeq2Seq
    from flowgrad.recipes.scan import end_slot_share

    scan = data["addprim_jump"]
    fg.manual_seed(0)
    model = SyntacticAttentionSeq2Seq.from_paper(len(scan.src_vocab), len(scan.tgt_vocab))
    assert end_slot_share(model, scan.valid, scan, limit=50) < 0.05  # spread at the start
    # a collapsed run: every output step puts all of its attention on the end slot
    def on_end(keys, mask, query):
        last = mask.numpy().sum(1) - 1
        return fg.tensor(np.eye(mask.shape[1], dtype=np.float32)[last])

    model._attend = on_end
    assert end_slot_share(model, scan.valid, scan, limit=50) == 1.0


def test_recipe_reads_how_syntactic_attention_answers_the_primitive(data):
    import flowgrad as fg
    from flowgrad.models.syntactic_attention import SyntacticAttentionSeq2Seq
    from flowgrad.recipes.scan import _primitive_words, primitive_reading

    scan = data["addprim_jump"]
    fg.manual_seed(0)
    model = SyntacticAttentionSeq2Seq.from_paper(len(scan.src_vocab), len(scan.tgt_vocab))
    with fg.no_grad():  # make the word's semantic embedding mean I_JUMP through the output layer
        jump = scan.src_vocab.encode(["jump"])[0]
        model.out.weight.zero_()
        model.out.bias.zero_()
        model.out.weight[scan.tgt_vocab.encode(["I_JUMP"])[0], 0] = 1.0
        model.semantic_embedding.weight[jump, 0] = 50.0
    r = primitive_reading(model, scan)
    assert r["semantic_reads_as"] == "I_JUMP" and r["semantic_p_action"] > 0.99
    assert set(r["attention"]) == {"start", "word", "end"}
    assert sum(r["attention"].values()) == pytest.approx(1.0)
    words = _primitive_words([{"seed": 3, "budget": (3000, 32, "constant", 1.0),
                               "test_exact_match": 0.5, **r}])
    assert "seed 3 (3000 updates of 32; test 50.0%)" in words and "reads as I_JUMP" in words
