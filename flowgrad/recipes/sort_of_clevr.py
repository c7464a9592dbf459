"""Sort-of-CLEVR with a transformer, with and without a shared global workspace (Goyal et al.
2021, "Coordination Among Neural Modules Through a Shared Global Workspace", arXiv 2103.01197,
the relational-reasoning experiment; Sort-of-CLEVR after Santoro et al. 2017, arXiv 1706.01427;
lecture: the System-2 slide "Modules + Global Workspace").

The data come from ``flowgrad.datasets.sort_of_clevr`` (the official
``sort_of_clevr/sort_of_clevr_generator.py`` of anirudh9119/shared_workspace): 75 x 75 images of
6 coloured squares and disks, 10 questions of each kind per image (non-relational, binary
relational and ternary relational, as the official ``main.py`` trains and tests), 10 answer
classes. The model follows the official ``sort_of_clevr/model.py`` (class
``Transformer``): the image is cut into 15 x 15 patches (main.py line 75; 25 positions), each
flattened (pixels, then channels) and embedded by one linear map; the 18-d question vector is
embedded by another linear map into **one extra token** (model.py lines 297-302: the question
token is concatenated in front of the patches, not added to every position); a learned CLS
token goes in front of both (lines 306-307); fixed sinusoidal positions are added to all 27
tokens (``transformers.py`` line 148); pre-norm encoder layers (``encoder_normalize_before``,
transformers.py line 15) whose parameters are shared across depth (``share_vanilla_parameters``
True in every command of the official README); the CLS token's final state is classified
(model.py line 312). Three variants differ in one line:

- TR: the plain transformer;
- TR+HSW: after every layer, the 27 tokens write into a ``SharedWorkspace`` of 8 memory slots
  by a top-k competition (k = 5 tokens per slot, the official README's Sort-of-CLEVR command
  ``run_transformer.sh 256 4 True True 5 True 8 1 False``) and read the broadcast back; the
  memory passes from layer to layer;
- TR+SSW: the same with a soft workspace (every token writes).

As in ``workspace_triangles``, the workspace follows each full encoder layer; in the official
code it replaces the layer's pairwise self-attention (``transformer_utilities/
multihead_attention.py``, the ``shared_memory_attention`` branch of ``forward``), so the
official TR+HSW has no token-to-token attention at all.

Small-compute version: 4 shared layers of width 64 (4 heads, feed-forward 128, no dropout)
instead of width 256 (feed-forward 512, dropout 0.1); Adam at 1e-3 instead of 1e-4; 3 epochs
over 3,000 training images instead of 100 epochs over 9,800. Every minibatch mixes relational
and non-relational questions (the official loop takes one optimiser step on a batch of each kind
in turn, main.py lines 140-154).

Budget: the default (3,000 training images, 300 more from the generator's training stream held
out for validation, 1,000 test images, 10 questions of each kind per image, so 90,000 training
questions; 3 epochs of 1,407 minibatches of 64 = 4,221 steps per model; 3 seeds) costs, measured
in CPU time with 1 BLAS thread, 0.12 s per step for TR and 0.21 s for TR+HSW and TR+SSW (the
workspace after each of the 4 layers): about 38 min of training per seed for the three models,
plus validation (every 375 steps) and test, about 2 h in all on an otherwise idle core (on an
idle core of an Intel Xeon, TR took 0.063 s per step). Longer TR runs did not leave the
question-type prior either: 8 epochs (11,256 steps; ``--set models=tr --set seeds=1 --set
epochs=8``) reached 49.4 % / 48.4 % on the non-relational / relational test questions, and
9,000 training images for 3 epochs (12,657 steps; ``--set n_train=9000``) 50.2 % / 48.3 %, and
8 epochs at lr 3e-4 and at the official 1e-4 50.2 % / 48.8 % and 49.4 % / 48.3 %, so at these
budgets the notes measure the answer priors, not the workspace; they say, per question
type, how far each model got above the prior. ``--quick`` (one seed, 200
training images, 150 steps of 32 at lr 2e-3, one layer of width 32) shows only that the three
models learn the answer prior of each question type (the training loss falls to less than half
its start), not the workspace's effect.
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from ..datasets.modular_tasks import (
    SORT_OF_CLEVR_QUESTION_TYPES,
    describe_sort_of_clevr_question,
    sort_of_clevr,
    sort_of_clevr_answer_words,
    sort_of_clevr_rows,
)
from ..modular.workspace import SharedWorkspace
from ..nn.layers.positional import sinusoidal_table
from ..nn.module import Module
from ..plotting import new_figure, save_figure
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results
from .modular_common import EpochBatches, mean_std, parameter_count, seed_stream, train

NAME = "sort_of_clevr"
DEFAULTS = {"seeds": 3, "epochs": 3, "batch_size": 64, "lr": 1e-3, "clip": 1.0,
            "n_train": 3000, "n_valid": 300, "n_test": 1000, "questions_per_kind": 10,
            "patch": 15, "layers": 4, "width": 64, "heads": 4, "ffn": 128, "slots": 8,
            "topk": 5, "share_layers": True, "eval_every": 375, "threads": 1}
QUICK = {"seeds": 1, "steps": 150, "batch_size": 32, "lr": 2e-3, "n_train": 200, "n_valid": 50,
         "n_test": 100, "layers": 1, "width": 32, "ffn": 64, "eval_every": 50}
MODELS = ("tr", "tr_hsw", "tr_ssw")
KINDS = ("norel", "binary", "ternary")  # the question kinds official main.py trains on
LABELS = {"tr": "TR (transformer)", "tr_hsw": "TR+HSW (top-k workspace)",
          "tr_ssw": "TR+SSW (soft workspace)"}
SOURCE = ("Goyal et al. 2021 (arXiv 2103.01197), the Sort-of-CLEVR experiment: the "
          "transformer with the shared workspace (TR+HSW, top-k 5, 8 slots) is compared with "
          "the plain transformer on relational and non-relational questions. The paper's "
          "Sort-of-CLEVR figure could not be read for this recipe (only the paper's opening "
          "pages were available), so neither its numbers nor its wording are quoted here; the "
          "direction tested, the workspace variants above TR, is the paper's general claim for "
          "its transformer experiments")


class QuestionPatchTransformer(Module):
    """[CLS, question token, patch tokens] + fixed positions -> encoder layers (each optionally
    followed by a shared workspace whose memory passes from layer to layer) -> linear classifier
    of the CLS token (the official Sort-of-CLEVR ``Transformer`` of model.py).

    forward(images (B, 3, H, W), questions (B, 18)) -> logits (B, classes).
    """

    def __init__(self, image_size: int = 75, patch: int = 15, width: int = 64, layers: int = 4,
                 heads: int = 4, ffn: int = 128, classes: int = 10, share_layers: bool = True,
                 question_size: int = 18, channels: int = 3,
                 workspace: SharedWorkspace | None = None) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"QuestionPatchTransformer: image_size={image_size} is not "
                             f"divisible by patch={patch}")
        if layers < 1:
            raise ValueError(f"QuestionPatchTransformer: layers={layers} must be >= 1")
        self.patch, self.channels, self.depth = patch, channels, layers
        self.image_size, self.question_size = image_size, question_size
        self.positions = (image_size // patch) ** 2
        self.embed = fg.nn.Linear(patch * patch * channels, width)
        self.question = fg.nn.Linear(question_size, width)
        self.cls = fg.nn.Parameter(fg.randn(1, 1, width))
        self.register_buffer("position", fg.from_numpy(
            sinusoidal_table(self.positions + 2, width)[None].astype(np.float32)))
        self.layers = fg.nn.ModuleList([
            fg.nn.TransformerEncoderLayer(width, heads, ffn, dropout=0.0, batch_first=True,
                                          norm_first=True)
            for _ in range(1 if share_layers else layers)])
        self.workspace = workspace
        self.head = fg.nn.Linear(width, classes)

    @property
    def tokens(self) -> int:
        """Positions the encoder sees: CLS, the question and the patches."""
        return self.positions + 2

    def patches(self, images):
        """(B, C, H, W) -> (B, positions, patch * patch * C), row-major patches, each flattened
        pixel by pixel with the channels innermost (the official ``rearrange``)."""
        b, c, h, w = images.shape
        p = self.patch
        x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, self.positions, p * p * c)

    def forward(self, images, questions):
        expected = (self.channels, self.image_size, self.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"QuestionPatchTransformer: images of shape {tuple(images.shape)}, "
                             f"expected (batch, {', '.join(map(str, expected))})")
        if tuple(questions.shape) != (images.shape[0], self.question_size):
            raise ValueError(f"QuestionPatchTransformer: questions of shape "
                             f"{tuple(questions.shape)}, expected (batch, {self.question_size}) "
                             f"with batch = {images.shape[0]} images")
        b = images.shape[0]
        x = fg.cat([self.cls.expand(b, 1, self.cls.shape[-1]),
                    self.question(questions).unsqueeze(1),
                    self.embed(self.patches(images))], dim=1) + self.position  # (B, T, d)
        memory = None
        for i in range(self.depth):
            x = self.layers[i % len(self.layers)](x)
            if self.workspace is not None:
                x, memory = self.workspace(x, memory)
        return self.head(x[:, 0])


def build(kind: str, cfg: dict, seed: int) -> QuestionPatchTransformer:
    if kind not in MODELS:
        raise ValueError(f"{NAME}: unknown model {kind!r}; expected one of {MODELS}")
    fg.manual_seed(seed)
    workspace = None
    if kind != "tr":
        workspace = SharedWorkspace(cfg["width"], num_slots=cfg["slots"],
                                    num_heads=cfg["heads"],
                                    topk=cfg["topk"] if kind == "tr_hsw" else None)
    return QuestionPatchTransformer(75, cfg["patch"], cfg["width"], cfg["layers"], cfg["heads"],
                                    cfg["ffn"], share_layers=cfg["share_layers"],
                                    workspace=workspace)


class QuestionSet:
    """The (image, question) pairs of a generated set, one row each, with the images kept once.
    """

    def __init__(self, data, images: slice | None = None) -> None:
        keep = slice(None) if images is None else images
        self.images = data.images[keep]
        part = data._replace(images=self.images,
                             questions={k: v[keep] for k, v in data.questions.items()},
                             answers={k: v[keep] for k, v in data.answers.items()})
        self.image_index, self.questions, self.answers, kind = sort_of_clevr_rows(part)
        self.kind, self.relational = kind, kind > 0
        self.types = (3 * kind + self.questions[:, 15:18].argmax(-1)).astype(np.int64)  # TYPES

    def __len__(self) -> int:
        return len(self.answers)

    def inputs(self, rows):
        return (fg.from_numpy(self.images[self.image_index[rows]]),
                fg.from_numpy(self.questions[rows]))


TYPES = sum((SORT_OF_CLEVR_QUESTION_TYPES[k] for k in KINDS), ())  # type 3 * kind + subtype


@fg.no_grad()
def predict(model, data: QuestionSet, batch_size: int = 500) -> np.ndarray:
    """The predicted answer of every question of ``data``, in eval mode."""
    was_training = model.training
    model.eval()
    out = [model(*data.inputs(np.arange(s, min(s + batch_size, len(data))))).numpy().argmax(-1)
           for s in range(0, len(data), batch_size)]
    model.train(was_training)
    return np.concatenate(out)


def accuracies(predicted: np.ndarray, data: QuestionSet) -> dict:
    """Accuracy on all questions, the non-relational and relational ones, each kind and each
    type of question."""
    right = predicted == data.answers
    out = {"all": float(right.mean()), "norel": float(right[~data.relational].mean()),
           "rel": float(right[data.relational].mean())}
    out.update({kind: float(right[data.kind == i].mean()) for i, kind in enumerate(KINDS)})
    out.update({name: float(right[data.types == t].mean()) for t, name in enumerate(TYPES)})
    return out


def type_prior(train: QuestionSet, data: QuestionSet) -> np.ndarray:
    """The best guess from the question's type alone: for every question of ``data``, the
    answer its type gets most often in ``train`` (what a model that ignores the image learns
    first)."""
    guess = np.zeros(len(TYPES), dtype=np.int64)
    for t in np.unique(train.types):
        guess[t] = np.bincount(train.answers[train.types == t], minlength=10).argmax()
    return guess[data.types]


def _one_seed(seed, cfg, progress) -> dict:
    data_seeds = seed_stream(seed, 2)
    n_train = cfg["n_train"]
    pool = sort_of_clevr(n_train + cfg["n_valid"], cfg["questions_per_kind"], KINDS,
                         seed=int(data_seeds[0]))
    train_set = QuestionSet(pool, slice(0, n_train))
    valid_set = QuestionSet(pool, slice(n_train, None))
    test_data = sort_of_clevr(cfg["n_test"], cfg["questions_per_kind"], KINDS,
                              seed=int(data_seeds[1]))
    test_set = QuestionSet(test_data)
    batch = EpochBatches(np.arange(len(train_set)), train_set.answers, cfg["batch_size"], seed)
    steps = batch.steps(cfg["epochs"], cfg["steps"])

    def validate(model):
        acc = accuracies(predict(model, valid_set), valid_set)
        return {"score": 1.0 - acc["all"], "norel": acc["norel"], "rel": acc["rel"]}

    def loss(model, rows, y):
        return fg.nn.functional.cross_entropy(model(*train_set.inputs(rows.numpy())), y)

    out, examples = {}, _example_rows(test_set)
    for kind in cfg["models"]:
        model = build(kind, cfg, seed)
        run = train(model, batch, loss, validate, steps, cfg["lr"], cfg["clip"],
                    cfg["eval_every"], progress, desc=f"{kind} seed {seed}")
        predicted = predict(model, test_set)  # the test set, once, with the kept checkpoint
        losses = np.asarray(run["train_loss"])
        window = max(1, min(20, len(losses) // 5))
        out[kind] = {"params": parameter_count(model), "test": accuracies(predicted, test_set),
                     "valid": {k: run["best"][k] for k in ("norel", "rel")},
                     "valid_accuracy": 1.0 - run["best"]["score"],
                     "best_step": run["best_step"], "curve": run["curve"],
                     "seconds": run["seconds"], "steps": steps,
                     "seconds_per_step": run["seconds"] / steps,
                     "initial_train_loss": float(losses[:window].mean()),
                     "final_train_loss": float(losses[-window:].mean()),
                     "examples": [int(predicted[r]) for r in examples]}
    if seed == 0:
        out["examples"] = [{"image": int(test_set.image_index[r]),
                            "question": describe_sort_of_clevr_question(test_set.questions[r]),
                            "answer": sort_of_clevr_answer_words(test_set.answers[r]),
                            "relational": bool(test_set.relational[r])} for r in examples]
        out["example_images"] = test_data.images[
            sorted({int(test_set.image_index[r]) for r in examples})]
    out["prior"] = accuracies(type_prior(train_set, test_set), test_set)
    out["n_questions"] = {"train": len(train_set), "valid": len(valid_set),
                          "test": len(test_set), "test_rel": int(test_set.relational.sum())}
    return out


def _example_rows(data: QuestionSet, n: int = 6) -> list:
    """One question of each type, each on a different image, for the examples figure."""
    rows = []
    for t in range(len(TYPES)):
        candidates = np.nonzero(data.types == t)[0]
        used = {int(data.image_index[r]) for r in rows}
        fresh = [int(r) for r in candidates if int(data.image_index[r]) not in used]
        if fresh:
            rows.append(fresh[0])
    return rows[:n]


def run(seeds=3, epochs=3, batch_size=64, lr=1e-3, clip=1.0, n_train=3000, n_valid=300,
        n_test=1000, questions_per_kind=10, patch=15, layers=4, width=64, heads=4, ffn=128,
        slots=8, topk=5, share_layers=True, models=("tr", "tr_hsw", "tr_ssw"),
        eval_every=375, steps=None, threads=1, out=None, quick=False, progress=True,
        write: bool = True) -> dict:
    """Train the three transformers for each seed on the same minibatches of (image, question)
    pairs; keep the checkpoint of highest validation accuracy (all questions); evaluate the test
    questions once. ``steps`` (optional) replaces ``epochs`` by a number of minibatches."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        seeds, steps, batch_size, lr = (QUICK[k] for k in ("seeds", "steps", "batch_size", "lr"))
        n_train, n_valid, n_test = QUICK["n_train"], QUICK["n_valid"], QUICK["n_test"]
        layers, width, ffn, eval_every = (QUICK[k] for k in ("layers", "width", "ffn",
                                                             "eval_every"))
    models = tuple(models)
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        raise ValueError(f"{NAME}: models must be among {MODELS}, got {models}")
    tokens = (75 // patch) ** 2 + 2 if 75 % patch == 0 else None
    if tokens is None:
        raise ValueError(f"{NAME}: patch={patch} must divide the image size 75")
    if topk is not None and topk > tokens:
        raise ValueError(f"{NAME}: topk={topk} is larger than the number of tokens {tokens} "
                         f"(CLS, the question and {tokens - 2} patches of {patch} x {patch})")
    cfg = {"epochs": epochs, "steps": steps, "batch_size": batch_size, "lr": lr, "clip": clip,
           "n_train": n_train, "n_valid": n_valid, "n_test": n_test,
           "questions_per_kind": questions_per_kind, "patch": patch, "layers": layers,
           "width": width, "heads": heads, "ffn": ffn, "slots": slots, "topk": topk,
           "share_layers": bool(share_layers), "models": models, "eval_every": eval_every}
    with _limit_threads(threads), Timer() as timer:
        per_seed = [_one_seed(s, cfg, progress) for s in range(seeds)]
    first = per_seed[0]
    summary = {"title": "Sort-of-CLEVR: a transformer with and without a shared workspace",
               **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
               "steps": first[models[0]]["steps"], "seeds": seeds, "tokens": tokens,
               "n_questions": first["n_questions"],
               "params": {k: first[k]["params"] for k in models},
               "prior": {k: float(np.mean([p["prior"][k] for p in per_seed]))
                         for k in first["prior"]},
               "examples": [{**e, "predicted": {
                   k: sort_of_clevr_answer_words(first[k]["examples"][i]) for k in models}}
                            for i, e in enumerate(first["examples"])],
               "source": SOURCE, "threads": threads, "command": command,
               "seed": list(range(seeds)), "seconds": timer.seconds}
    prior = summary["prior"]
    n_rel = first["n_questions"]["test_rel"]
    n_norel = first["n_questions"]["test"] - n_rel
    for kind in models:
        runs = [p[kind] for p in per_seed]
        entry = {key: [r[key] for r in runs] for key in
                 ("valid_accuracy", "best_step", "seconds", "seconds_per_step",
                  "initial_train_loss", "final_train_loss", "curve")}
        entry.update({f"test_{k}": [r["test"][k] for r in runs] for k in runs[0]["test"]})
        entry.update({f"valid_{k}": [r["valid"][k] for r in runs] for k in ("norel", "rel")})
        summary[kind] = entry
        for split in ("test", "valid"):
            for k in ("norel", "rel"):
                summary[f"{kind}_{split}_{k}_mean"] = float(np.mean(entry[f"{split}_{k}"]))
        summary[f"{kind}_seconds_per_step"] = float(np.mean(entry["seconds_per_step"]))
        summary[f"{kind}_above_prior_points"] = {
            k: 100 * (summary[f"{kind}_test_{k}_mean"] - prior[k]) for k in ("norel", "rel")}
        summary[f"{kind}_beyond_prior"] = {  # more than two standard errors above the prior
            k: bool(v > 100 * 2 * np.sqrt(0.25 / {"norel": n_norel, "rel": n_rel}[k] / seeds))
            for k, v in summary[f"{kind}_above_prior_points"].items()}
    if "tr" in models and len(models) > 1:
        summary["gain_points"] = {k: {q: 100 * (summary[f"{k}_test_{q}_mean"]
                                                - summary[f"tr_test_{q}_mean"])
                                      for q in ("norel", "rel")} for k in models if k != "tr"}
        summary["claim_held"] = all(g["rel"] > 0 for g in summary["gain_points"].values())
        # two standard errors of a difference of two accuracies (worst case p = 1/2)
        summary["noise_points"] = float(100 * 2 * np.sqrt(2 * 0.25 / n_rel / seeds))
    if write:
        figures = (_plot_curves(summary, out),
                   _plot_examples(summary, first["example_images"], out))
        with _limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=figures)
    return summary


def _fmt(values) -> str:
    return mean_std(values, 1, scale=100, unit=" %")


def _rows(s) -> list:
    models = s["models"]
    rows = [("parameters: " + " / ".join(LABELS[k] for k in models),
             " / ".join(f"{s['params'][k]:,}" for k in models), "—"),
            ("best guess from the question type alone (its most frequent training answer): "
             "non-relational / relational",
             f"{100 * s['prior']['norel']:.1f} % / {100 * s['prior']['rel']:.1f} %", "—")]
    for kind in models:
        published = "the baseline" if kind == "tr" else "above TR (direction only)"
        rows.append((f"{LABELS[kind]}: test accuracy, non-relational questions",
                     _fmt(s[kind]["test_norel"]), published))
        rows.append((f"{LABELS[kind]}: test accuracy, relational questions",
                     _fmt(s[kind]["test_rel"]), published))
    if "claim_held" in s:
        rows.append(("claim: every workspace variant above TR on relational questions (mean "
                     "test accuracy)", "held" if s["claim_held"] else "not held",
                     "held (direction only)"))
    rows.append(("seconds per training step: " + " / ".join(models),
                 " / ".join(f"{s[f'{k}_seconds_per_step']:.3f}" for k in models), "—"))
    return rows


def _notes(s) -> str:
    nq = s["n_questions"]
    q = s["questions_per_kind"]
    lines = [
        f"Data: Sort-of-CLEVR, 75 x 75 images of 6 objects (a square or a disk of each colour), "
        f"{q} non-relational, {q} binary relational and {q} ternary relational questions per "
        f"image, 10 answer classes; {s['n_train']:,} training images ({nq['train']:,} questions), "
        f"{s['n_valid']:,} more images of the same generator stream held out for validation "
        f"({nq['valid']:,} questions), {s['n_test']:,} test images of their own seed "
        f"({nq['test']:,} questions). The best guess from the question's type alone (the "
        f"answer each type gets most often in training, the prior a model learns first) scores "
        f"{100 * s['prior']['norel']:.1f} % on the non-relational test questions and "
        f"{100 * s['prior']['rel']:.1f} % on the relational ones: accuracy above these needs "
        "the image.",
        f"Models: {s['tokens']} tokens (a CLS token, the question embedded as one token, "
        f"{s['tokens'] - 2} patches of {s['patch']} x {s['patch']} x 3) with fixed sinusoidal "
        f"positions; {s['layers']} pre-norm encoder layer(s) of width {s['width']} ({s['heads']} "
        f"heads, feed-forward {s['ffn']}, no dropout"
        + (", one set of parameters for every layer" if s["share_layers"] else "")
        + f"); the CLS token's final state classified. The workspace has {s['slots']} slots of "
        f"size {s['width']}; in TR+HSW only the top {s['topk']} tokens (by write attention) may "
        "write into each slot, in TR+SSW all may. It follows every layer and its memory passes "
        "from layer to layer (the official code replaces the self-attention by the workspace "
        "instead).",
        f"Budget (every model, every seed): {s['steps']} steps of Adam (lr {s['lr']:g}, gradient "
        f"norm clipped at {s['clip']:g}) on shuffled minibatches of {s['batch_size']} "
        f"(image, question) pairs mixing the three kinds (the same for every model), "
        f"{s['seeds']} seed(s). Wall time {s['seconds']:.0f} s with "
        f"{s['threads'] or 'default'} BLAS thread(s). The official runs train width 256 for "
        "100 epochs over 9,800 images.",
        f"Protocol: validation accuracy (all questions) every {s['eval_every']} steps, the "
        "checkpoint of highest validation accuracy kept, the test questions evaluated once per "
        "seed after training.",
        f"Published: {SOURCE}.", "", "Outcome:"]
    one_se = 100 * 2 * np.sqrt(0.25 / nq["test_rel"] / s["seeds"])
    for kind in s["models"]:
        e = s[kind]
        lines.append(f"- {LABELS[kind]}: mean test accuracy "
                     f"{100 * s[f'{kind}_test_norel_mean']:.1f} % non-relational, "
                     f"{100 * s[f'{kind}_test_rel_mean']:.1f} % relational; by type "
                     + ", ".join(f"{t} {100 * np.mean(e[f'test_{t}']):.0f} % (prior "
                                 f"{100 * s['prior'][t]:.0f} %)" for t in TYPES)
                     + f"; {s[f'{kind}_above_prior_points']['norel']:+.1f} / "
                     f"{s[f'{kind}_above_prior_points']['rel']:+.1f} points against the "
                     "question-type prior (non-relational / relational; two standard errors of "
                     f"a relational accuracy: {one_se:.1f} points); training loss "
                     f"{np.mean(e['initial_train_loss']):.2f} at the start, "
                     f"{np.mean(e['final_train_loss']):.2f} at the end.")
    if "claim_held" in s:
        gains = ", ".join(f"{LABELS[k]} {g['rel']:+.1f} points" for k, g in
                          s["gain_points"].items())
        clear = all(g["rel"] > s["noise_points"] for g in s["gain_points"].values())
        lines.append(f"- The claim (every workspace variant above the plain transformer on "
                     f"relational questions) {'held' if s['claim_held'] else 'did not hold'}: "
                     f"{gains} against TR; two standard errors of such a difference on "
                     f"{nq['test_rel']:,} relational test questions x {s['seeds']} seed(s) "
                     f"are {s['noise_points']:.1f} points, so the gains are "
                     f"{'all beyond' if clear else 'not all beyond'} sampling noise."
                     + ("" if any(s[f"{k}_beyond_prior"]["rel"] for k in s["models"]) else
                        " No model is clearly above the question-type prior on relational "
                        "questions, so any difference measures how well each learned the "
                        "answer priors, not relational reasoning."))
    return "\n\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:])


COLORS = {"tr": "tab:gray", "tr_hsw": "tab:blue", "tr_ssw": "tab:green"}


def _plot_curves(s, out):
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "norel", "non-relational"),
                           (axes[1], "rel", "relational")):
        for kind in s["models"]:
            for i, curve in enumerate(s[kind]["curve"]):
                ax.plot([c["step"] for c in curve], [100 * c[key] for c in curve],
                        "-" if i == 0 else ":", color=COLORS[kind],
                        label=LABELS[kind] if i == 0 else None)
        ax.axhline(100 * s["prior"][key], color="gray", ls="--", lw=1,
                   label="best guess from the question type alone")
        ax.set(xlabel="training step", ylabel="validation accuracy (%)",
               title=f"{title} questions (validation)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_curves.png", dpi=110)


def _plot_examples(s, images, out):
    examples = s["examples"]
    index = {img: i for i, img in enumerate(sorted({e["image"] for e in examples}))}
    fig, axes = new_figure(1, len(examples), figsize=(2.6 * len(examples), 4.4),
                           squeeze=False, layout="constrained")
    for ax, e in zip(axes[0], examples):
        ax.imshow(images[index[e["image"]]].transpose(1, 2, 0), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        guesses = "\n".join(f"{k}: {v}" for k, v in e["predicted"].items())
        ax.set_title(_wrap(e["question"]), fontsize=7)
        ax.set_xlabel(f"answer: {e['answer']}\n{guesses}", fontsize=7)
    fig.suptitle("Test questions (seed 0), the true answer and each model's answer", fontsize=9)
    return save_figure(fig, f"{out}/{NAME}_examples.png", dpi=110)


def _wrap(text: str, width: int = 28) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])
