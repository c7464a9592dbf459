"""Sort-of-CLEVR as rows of (image, question, answer) and in words
(flowgrad.datasets.modular_tasks; the generator itself is tested in test_modular_tasks), and the
recipe's question-and-patch transformers (flowgrad.recipes.sort_of_clevr)."""

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.datasets import modular_tasks as mt


def question(color, kind, subtype, second=None):
    q = np.zeros(18, dtype=np.float32)
    q[color] = q[12 + kind] = q[15 + subtype] = 1
    if second is not None:
        q[6 + second] = 1
    return q


def test_rows_follow_images_then_kinds():
    data = mt.sort_of_clevr(4, questions_per_kind=3, seed=1)
    image, questions, answers, kind = mt.sort_of_clevr_rows(data)
    assert image.shape == answers.shape == kind.shape == (4 * 3 * 3,)
    assert questions.shape == (36, 18) and questions.dtype == np.float32
    np.testing.assert_array_equal(image, np.repeat(np.arange(4), 9))
    np.testing.assert_array_equal(kind, np.tile(np.repeat([0, 1, 2], 3), 4))
    np.testing.assert_array_equal(questions[image == 2][3:6], data.questions["binary"][2])
    np.testing.assert_array_equal(answers[image == 3][6:], data.answers["ternary"][3])
    np.testing.assert_array_equal(questions[:, 12:15].argmax(-1), kind)
    only = mt.sort_of_clevr(2, questions_per_kind=2, kinds=("binary",), seed=0)
    np.testing.assert_array_equal(mt.sort_of_clevr_rows(only)[3], [1, 1, 1, 1])


def test_questions_and_answers_in_words():
    assert mt.describe_sort_of_clevr_question(question(0, 0, 0)) == (
        "What is the shape of the red object?")
    assert mt.describe_sort_of_clevr_question(question(1, 0, 1)) == (
        "Is the green object on the left?")
    assert mt.describe_sort_of_clevr_question(question(2, 1, 0)) == (
        "What is the shape of the object nearest to the blue object?")
    assert mt.describe_sort_of_clevr_question(question(4, 1, 2)) == (
        "How many other objects have the shape of the gray object?")
    assert mt.describe_sort_of_clevr_question(question(0, 2, 1, second=3)) == (
        "Does any other object lie within 12 pixels of the line through the red object and the "
        "orange object?")
    assert [mt.sort_of_clevr_question_type(question(0, k, s, second=1 if k == 2 else None))
            for k in range(3) for s in range(3)] == [
        t for k in ("norel", "binary", "ternary") for t in mt.SORT_OF_CLEVR_QUESTION_TYPES[k]]
    assert [mt.sort_of_clevr_answer_words(a) for a in (0, 1, 2, 3, 4, 9)] == [
        "yes", "no", "square", "circle", "0", "5"]
    data = mt.sort_of_clevr(3, questions_per_kind=4, seed=2)
    for k in data.questions:  # every generated question has words
        for q in data.questions[k].reshape(-1, 18):
            assert mt.describe_sort_of_clevr_question(q).endswith("?")


def test_bad_questions_and_answers_name_the_value():
    with pytest.raises(ValueError, match="not one-hot"):
        mt.describe_sort_of_clevr_question(np.zeros(18))
    with pytest.raises(ValueError, match=r"shape \(17,\)"):
        mt.describe_sort_of_clevr_question(np.zeros(17))
    with pytest.raises(ValueError, match="second colour"):
        mt.describe_sort_of_clevr_question(question(0, 2, 0))
    with pytest.raises(ValueError, match="only ternary"):
        mt.describe_sort_of_clevr_question(question(0, 1, 0, second=2))
    with pytest.raises(ValueError, match="got 10"):
        mt.sort_of_clevr_answer_words(10)


def test_type_prior_is_the_most_frequent_training_answer():
    from flowgrad.recipes import sort_of_clevr as recipe

    data = recipe.QuestionSet(mt.sort_of_clevr(60, questions_per_kind=10, seed=0))
    guess = recipe.type_prior(data, data)
    for t in range(len(recipe.TYPES)):
        rows = data.types == t
        counts = np.bincount(data.answers[rows], minlength=10)
        assert (guess[rows] == counts.argmax()).all()
        # no constant answer does better on its own training questions
        assert (guess[rows] == data.answers[rows]).mean() == counts.max() / rows.sum()
    acc = recipe.accuracies(guess, data)
    assert 0.45 < acc["norel"] < 0.65 and acc["all"] < 0.7
    assert set(acc) >= {"all", "norel", "rel", "binary", "ternary", *recipe.TYPES}
    np.testing.assert_allclose(acc["rel"], (acc["binary"] + acc["ternary"]) / 2)


@pytest.mark.parametrize("kind", ["tr", "tr_hsw", "tr_ssw"])
def test_recipe_models_output_shape_and_use_the_question(kind):
    from flowgrad.recipes import sort_of_clevr as recipe

    cfg = dict(recipe.DEFAULTS, layers=2, width=32, ffn=64)
    model = recipe.build(kind, cfg, seed=0)
    assert (model.workspace is None) == (kind == "tr")
    if kind == "tr_hsw":
        assert model.workspace.topk == 5 and model.workspace.num_slots == 8
    assert model.tokens == 27 and len(model.layers) == 1  # parameters shared across depth
    d = mt.sort_of_clevr(3, questions_per_kind=2, seed=0)
    images = fg.from_numpy(d.images)
    qs = fg.from_numpy(d.questions["norel"][:, 0])
    out = model(images, qs)
    assert tuple(out.shape) == (3, 10)
    other = fg.from_numpy(d.questions["ternary"][:, 0])  # another question on the same images
    assert not np.allclose(model(images, other).detach().numpy(), out.detach().numpy())
    out.sum().backward()
    assert np.abs(model.question.weight.grad.numpy()).sum() > 0
    assert np.abs(model.embed.weight.grad.numpy()).sum() > 0
    with pytest.raises(ValueError, match=r"questions of shape \(3, 17\)"):
        model(images, fg.zeros(3, 17))
    with pytest.raises(ValueError, match=r"images of shape \(3, 3, 60, 60\)"):
        model(fg.zeros(3, 3, 60, 60), qs)


def test_recipe_patches_follow_the_official_layout():
    from flowgrad.recipes import sort_of_clevr as recipe

    model = recipe.QuestionPatchTransformer(width=16, layers=1, heads=2, ffn=16)
    images = np.random.default_rng(0).random((2, 3, 75, 75)).astype(np.float32)
    p = model.patches(fg.from_numpy(images)).numpy()
    assert p.shape == (2, 25, 675)
    # patch (row 1, column 2), pixel (3, 4), channel 2: 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'
    assert p[1, 1 * 5 + 2, (3 * 15 + 4) * 3 + 2] == images[1, 2, 15 + 3, 30 + 4]
    positions = model.position.numpy()[0]
    np.testing.assert_allclose(positions[3, :2], [np.sin(3), np.cos(3)], rtol=1e-6)
