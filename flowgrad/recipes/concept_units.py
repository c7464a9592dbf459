"""Hidden units discover concepts (lecture: "Hidden Units Can Discover Semantically Meaningful
Concepts"; Zhou, Khosla, Lapedriza, Oliva & Torralba 2015, "Object detectors emerge in deep
scene CNNs", ICLR), measured by network dissection (Bau, Zhou, Khosla, Oliva & Torralba 2017,
CVPR) on generated scenes whose objects are known pixel by pixel.

A small convnet is trained to classify the scene type (``flowgrad.datasets.scenes``: six types,
each a pair of object classes out of circle, square, triangle and bar, on textured backgrounds)
and never sees an object label or mask. Its best epoch is chosen on a validation split carved
from the training scenes; the test scenes are classified once. Then every unit of every conv
layer (after its ReLU) is dissected on a separate probe set of scenes
(``flowgrad.representations.dissection``): its activation maps thresholded at the unit's top
quantile (0.96 here, where each class covers about 4% of the pixels; Bau et al.'s 0.995 beside
it), upsampled bilinearly to the image, and their IoU with each object class's mask and with the
union of all objects; a unit is a detector of a class when that class is its best concept and
the IoU exceeds 0.04. The control is the same network with its
random initial weights (the same seed, before training). Per layer: the share of detector units,
trained against random, over ``seeds`` seeds, with a one-sided permutation test on the units'
detector indicators; the sensitivity of the shares to the IoU threshold; which classes the
detectors detect.
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from .. import nn
from ..datasets.scenes import SCENE_TYPES, scene_names, scenes
from ..plotting import new_figure, save_figure
from ..representations.dissection import (
    activation_maps,
    dissect,
    permutation_test,
    threshold_maps,
    upsample_maps,
)
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results

NAME = "concept_units"
ANY = "any object"
DEFAULTS = {"size": 32, "n_train": 3000, "n_valid": 600, "n_test": 1000, "n_probe": 500,
            "channels": (8, 16, 32, 32), "pool": "max", "batch_norm": True, "epochs": 10,
            "lr": 3e-3, "batch_size": 32, "quantile": 0.96, "bau_quantile": 0.995,
            "iou_threshold": 0.04, "sensitivity": (0.04, 0.08, 0.12, 0.16, 0.24), "seeds": 3,
            "seed": 0, "threads": 1}
PUBLISHED = ("Zhou et al. (2015): object detectors emerge in the conv layers of a network "
             "trained only on scene labels (Places), more of them in the deeper layers; Bau et "
             "al. (2017) count far fewer interpretable units in a network with random weights "
             "than in trained ones (direction; their units, data and 0.04 IoU threshold, not "
             "these)")


class SceneNet(nn.Module):
    """Each image minus its mean (the backgrounds' grey levels vary), times 4; then 3×3
    convolutions (padding 1), each followed by batch normalisation (``batch_norm``) and a ReLU,
    2×2 max-pooling after the first two; a global max- (``pool="max"``) or average-pooling over
    positions; a linear layer to the scene types. The ReLUs are modules (``relus``) so that
    hooks can read the maps."""

    def __init__(self, channels=(8, 16, 32, 32), classes: int = 6, pool: str = "max",
                 batch_norm: bool = True) -> None:
        super().__init__()
        if pool not in ("max", "avg"):
            raise ValueError(f"SceneNet: pool must be 'max' or 'avg', got {pool!r}")
        sizes = (1, *channels)
        self.convs = nn.ModuleList([nn.Conv2d(a, b, 3, padding=1)
                                    for a, b in zip(sizes, sizes[1:])])
        self.norms = nn.ModuleList([nn.BatchNorm2d(b) if batch_norm else nn.Identity()
                                    for b in channels])
        self.relus = nn.ModuleList([nn.ReLU() for _ in channels])
        self.fc = nn.Linear(channels[-1], classes)
        self.pool = pool

    def forward(self, x):
        x = (x - x.mean((2, 3), keepdim=True)) * 4.0
        for i, (conv, norm, relu) in enumerate(zip(self.convs, self.norms, self.relus)):
            x = relu(norm(conv(x)))
            if i < 2:
                x = fg.nn.functional.max_pool2d(x, 2)
        x = x.amax((2, 3)) if self.pool == "max" else x.mean((2, 3))
        return self.fc(x)

    def layers(self) -> dict:
        return {f"conv{i + 1}": relu for i, relu in enumerate(self.relus)}


@fg.no_grad()
def accuracy(model, images, labels, batch_size: int = 500) -> float:
    model.eval()
    pred = np.concatenate([model(fg.tensor(images[s:s + batch_size])).numpy().argmax(1)
                           for s in range(0, len(images), batch_size)])
    model.train()
    return float((pred == labels).mean())


def train(model, train_set, valid_set, epochs, lr, batch_size, seed, progress=True) -> dict:
    """Adam on shuffled minibatches; after each epoch the validation accuracy; the weights of
    the best epoch (ties: the earlier) are put back."""
    opt = fg.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    (x, y), (xv, yv) = train_set, valid_set
    best, state, curve, losses = -1.0, None, [], []
    for epoch in range(1, epochs + 1):
        perm, total = rng.permutation(len(x)), 0.0
        for s in range(0, len(x), batch_size):
            b = perm[s:s + batch_size]
            loss = fg.nn.functional.cross_entropy(model(fg.tensor(x[b])), fg.tensor(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        acc = accuracy(model, xv, yv)
        curve.append(acc)
        losses.append(total / len(x))
        if acc > best:
            best, best_epoch = acc, epoch
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if progress:
            print(f"concept_units: epoch {epoch}, train loss {losses[-1]:.3f}, valid accuracy "
                  f"{acc:.3f}", flush=True)
    model.load_state_dict(state)
    return {"valid_curve": curve, "train_loss": losses, "best_epoch": best_epoch,
            "valid_accuracy": best}


def concept_masks(probe):
    """The probe's concepts: each object class, and "any object" (the union of their masks),
    so that a unit responding to every object alike is not counted as a class detector."""
    masks = np.concatenate([probe.masks, probe.masks.any(1, keepdims=True)], axis=1)
    return masks, (*probe.objects, ANY)


def _dissect_all(model, probe, quantiles, iou_threshold):
    """The maps of every layer and, for each quantile, every layer dissected."""
    maps = activation_maps(model, model.layers(), probe.images)
    masks, concepts = concept_masks(probe)
    return maps, [{name: dissect(m, masks, concepts, q, iou_threshold, name)
                   for name, m in maps.items()} for q in quantiles]


def _layer_record(d, sensitivity) -> dict:
    """A unit is an object-class detector when its best concept is a class (not "any
    object") and that IoU exceeds the threshold."""
    is_class = np.array([d.concepts[i] != ANY for i in d.best_concept])

    def share(t=None):
        return float(np.mean(d.detectors(t) & is_class))

    return {"share": share(), "detectors": int(np.sum(d.detectors() & is_class)),
            "units": len(d.iou), "concepts": d.concept_counts(),
            "best_iou": d.best_iou.tolist(), "is_class": is_class.tolist(),
            "best_concept": [d.concepts[i] for i in d.best_concept],
            "sensitivity": {str(t): share(t) for t in sensitivity},
            "median_active_fraction": float(np.median(d.active_fraction))}


def run(size=32, n_train=3000, n_valid=600, n_test=1000, n_probe=500, channels=(8, 16, 32, 32),
        pool="max", batch_norm=True, epochs=10, lr=3e-3, batch_size=32, quantile=0.96,
        bau_quantile=0.995, iou_threshold=0.04, sensitivity=(0.04, 0.08, 0.12, 0.16, 0.24),
        seeds=3, seed=0,
        threads=1, out=None, quick=False, progress=True, write: bool = True) -> dict:
    """Train ``seeds`` scene classifiers, dissect them and their random initial weights."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        n_train, n_valid, n_test, n_probe, epochs, seeds = 1200, 300, 300, 200, 6, 1
    channels, sensitivity = tuple(int(c) for c in channels), tuple(float(t) for t in sensitivity)
    if iou_threshold not in sensitivity:
        sensitivity = tuple(sorted((*sensitivity, float(iou_threshold))))
    names = [f"conv{i + 1}" for i in range(len(channels))]
    with _limit_threads(threads), Timer() as t:
        ss = np.random.SeedSequence(seed)
        s_train, s_test, s_probe = (int(c.generate_state(1)[0]) for c in ss.spawn(3))
        data = scenes(n_train + n_valid, size=size, seed=s_train)
        test, probe = scenes(n_test, size=size, seed=s_test), scenes(n_probe, size=size,
                                                                      seed=s_probe)
        x, y = data.images, data.labels
        concept_area = dict(zip(probe.objects, probe.masks.mean(axis=(0, 2, 3)).tolist()))
        train_set, valid_set = (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])
        runs, examples = [], None
        for k in range(seeds):
            fg.manual_seed(seed + k)
            model = SceneNet(channels, len(SCENE_TYPES), pool, batch_norm)
            quantiles = (quantile, bau_quantile)
            _, (random_d, random_bau) = _dissect_all(model, probe, quantiles, iou_threshold)
            with Timer() as tt:
                history = train(model, train_set, valid_set, epochs, lr, batch_size, seed + k,
                                progress)
            test_accuracy = accuracy(model, test.images, test.labels)  # once
            maps, (trained_d, trained_bau) = _dissect_all(model, probe, quantiles,
                                                          iou_threshold)
            runs.append({"seed": seed + k, "test_accuracy": test_accuracy, **history,
                         "train_seconds": tt.seconds,
                         "trained": {n: _layer_record(trained_d[n], sensitivity) for n in names},
                         "random": {n: _layer_record(random_d[n], sensitivity) for n in names},
                         "trained_bau": {n: _layer_record(trained_bau[n], sensitivity)
                                         for n in names},
                         "random_bau": {n: _layer_record(random_bau[n], sensitivity)
                                        for n in names}})
            if k == 0:
                examples = _top_units(maps, trained_d, probe)
    summary = _summarise(runs, names, sensitivity, locals())
    summary["seconds"] = t.seconds
    if write:
        figures = (_plot_shares(summary, out), _plot_units(examples, probe, out))
        write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                      figures=figures)
    return summary


def _detects(record, thr) -> np.ndarray:
    return (np.array(record["best_iou"]) > thr) & np.array(record["is_class"])


def _layer_stats(runs, names, sensitivity, thr, seed, suffix=""):
    """Per layer and over all layers: the shares of detector units, trained and random, the
    concepts detected, the permutation tests (units pooled over seeds)."""
    layers = {}
    for n in names:
        tr = [r["trained" + suffix][n] for r in runs]
        ra = [r["random" + suffix][n] for r in runs]
        det_t = np.concatenate([_detects(x, thr) for x in tr])
        det_r = np.concatenate([_detects(x, thr) for x in ra])
        layers[n] = {
            "units": tr[0]["units"],
            "trained_share": [x["share"] for x in tr], "random_share": [x["share"] for x in ra],
            "trained_share_mean": float(np.mean([x["share"] for x in tr])),
            "random_share_mean": float(np.mean([x["share"] for x in ra])),
            "trained_concepts": {c: sum(x["concepts"][c] for x in tr) for c in tr[0]["concepts"]},
            "random_concepts": {c: sum(x["concepts"][c] for x in ra) for c in ra[0]["concepts"]},
            "trained_median_best_iou": float(np.median(np.concatenate(
                [x["best_iou"] for x in tr]))),
            "random_median_best_iou": float(np.median(np.concatenate(
                [x["best_iou"] for x in ra]))),
            "trained_max_best_iou": float(np.max([x["best_iou"] for x in tr])),
            "random_max_best_iou": float(np.max([x["best_iou"] for x in ra])),
            "trained_median_active_fraction": float(np.median(
                [x["median_active_fraction"] for x in tr])),
            "sensitivity": {t: {"trained": float(np.mean([x["sensitivity"][t] for x in tr])),
                                "random": float(np.mean([x["sensitivity"][t] for x in ra]))}
                            for t in map(str, sensitivity)},
            "permutation_test": permutation_test(det_t, det_r, seed=seed)}
    all_t = np.concatenate([_detects(r["trained" + suffix][n], thr) for r in runs
                            for n in names])
    all_r = np.concatenate([_detects(r["random" + suffix][n], thr) for r in runs
                            for n in names])
    return layers, {"trained_share": float(all_t.mean()), "random_share": float(all_r.mean()),
                    "test": permutation_test(all_t, all_r, seed=seed)}


def _summarise(runs, names, sensitivity, v) -> dict:
    thr = v["iou_threshold"]
    layers, pooled = _layer_stats(runs, names, sensitivity, thr, v["seed"])
    bau_layers, bau_pooled = _layer_stats(runs, names, sensitivity, thr, v["seed"], "_bau")
    overall = pooled["test"]
    accs = [r["test_accuracy"] for r in runs]
    deepest = names[-1]
    held = bool(overall["difference"] > 0 and overall["p_value"] < 0.05
                and layers[deepest]["trained_share_mean"] > layers[deepest]["random_share_mean"])
    return {"title": "Concept detectors in the hidden units of a scene classifier (network "
                     "dissection), against random weights",
            "size": v["size"], "n_train": v["n_train"], "n_valid": v["n_valid"],
            "n_test": v["n_test"], "n_probe": v["n_probe"], "channels": list(v["channels"]),
            "pool": v["pool"], "batch_norm": v["batch_norm"], "epochs": v["epochs"], "lr": v["lr"],
            "batch_size": v["batch_size"], "quantile": v["quantile"], "iou_threshold": thr,
            "sensitivity_thresholds": list(sensitivity), "seeds": v["seeds"],
            "bau_quantile": v["bau_quantile"], "bau_layers": bau_layers,
            "bau_trained_share_overall": bau_pooled["trained_share"],
            "bau_random_share_overall": bau_pooled["random_share"],
            "bau_overall_test": bau_pooled["test"],
            "scene_types": scene_names(), "layers": layers, "runs": runs,
            "concept_area": v["concept_area"],
            "test_accuracy": accs, "test_accuracy_mean": float(np.mean(accs)),
            "chance_accuracy": 1 / len(SCENE_TYPES),
            "trained_share_overall": pooled["trained_share"],
            "random_share_overall": pooled["random_share"], "overall_test": overall,
            "deepest_trained_share": layers[deepest]["trained_share_mean"],
            "deepest_random_share": layers[deepest]["random_share_mean"],
            "claim_held": held, "published": PUBLISHED, "threads": v["threads"],
            "command": v["command"], "seed": v["seed"]}


def _top_units(maps, dissections, probe, n_units: int = 4, n_images: int = 4) -> list:
    """The units of highest IoU with an object class (one per class first, any layer), each
    with the probe images where it responds most: image, thresholded upsampled map, the
    class's mask."""
    masks, _ = concept_masks(probe)
    cands = sorted(((d.best_iou[u], name, u) for name, d in dissections.items()
                    for u in range(len(d.iou)) if d.concepts[d.best_concept[u]] != ANY),
                   reverse=True)
    detectors = [x for x in cands if x[0] > dissections[x[1]].iou_threshold]
    cands = detectors or cands[:n_units]  # no detector at all: the best units anyway
    chosen, seen = [], set()
    for score, name, u in cands:  # one unit per concept, then the best of the rest
        c = dissections[name].best_concept[u]
        if c not in seen:
            chosen.append((score, name, u))
            seen.add(c)
    chosen += [x for x in cands if x not in chosen][:max(0, n_units - len(chosen))]
    out = []
    for score, name, u in chosen[:n_units]:
        d, m = dissections[name], maps[name][:, u:u + 1]
        c = int(d.best_concept[u])
        idx = np.argsort(-m.max(axis=(1, 2, 3)))[:n_images]
        up = upsample_maps(m[idx], probe.images.shape[2:])
        active = threshold_maps(up, d.thresholds[u:u + 1], [m.min()])[:, 0]
        out.append({"layer": name, "unit": u, "concept": d.concepts[c], "iou": float(score),
                    "images": idx, "active": active, "mask": masks[idx, c]})
    return out


def _rows(s) -> list:
    rows = [(f"scene classification: test accuracy, mean over {s['seeds']} seed(s) (chance "
             f"{s['chance_accuracy']:.3f})",
             f"{s['test_accuracy_mean']:.3f} (" + ", ".join(
                 f"{a:.3f}" for a in s["test_accuracy"]) + ")", "no published counterpart")]
    for n, L in s["layers"].items():
        p = L["permutation_test"]
        rows.append((f"{n} ({L['units']} units): share of object detectors (IoU > "
                     f"{s['iou_threshold']}), trained / random weights, per seed",
                     f"{L['trained_share_mean']:.3f} / {L['random_share_mean']:.3f} ("
                     + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(L["trained_share"],
                                                                   L["random_share"]))
                     + f"); permutation p = {p['p_value']:.4f}",
                     "trained above random, more in deeper layers (direction)"))
        rows.append((f"{n}: units by best concept above the IoU threshold, summed over the "
                     "seeds, trained / random (\"any object\" is not counted as a detector)",
                     ", ".join(f"{c} {L['trained_concepts'][c]}/{L['random_concepts'][c]}"
                               for c in L["trained_concepts"]), "—"))
    o = s["overall_test"]
    rows.append(("all layers: share of detector units, trained / random (pooled over seeds)",
                 f"{s['trained_share_overall']:.3f} / {s['random_share_overall']:.3f}; "
                 f"permutation p = {o['p_value']:.4f} ({o['n_a']} units each)",
                 PUBLISHED))
    b = s["bau_overall_test"]
    rows.append((f"at Bau et al.'s quantile {s['bau_quantile']}: share of detector units "
                 "by layer, trained / random; all layers",
                 ", ".join(f"{n} {L['trained_share_mean']:.2f}/{L['random_share_mean']:.2f}"
                           for n, L in s["bau_layers"].items())
                 + f"; all {s['bau_trained_share_overall']:.3f} / "
                 f"{s['bau_random_share_overall']:.3f}, p = {b['p_value']:.4f}", "—"))
    for t in map(str, s["sensitivity_thresholds"]):
        rows.append((f"sensitivity: share of detectors at IoU > {t}, trained / random, by layer",
                     ", ".join(f"{n} {L['sensitivity'][t]['trained']:.2f}/"
                               f"{L['sensitivity'][t]['random']:.2f}"
                               for n, L in s["layers"].items()), "—"))
    return rows


def _notes(s) -> str:
    names = list(s["layers"])
    t_shares = [s["layers"][n]["trained_share_mean"] for n in names]
    grows = all(a <= b for a, b in zip(t_shares, t_shares[1:]))
    sig = [n for n in names if s["layers"][n]["permutation_test"]["p_value"] < 0.05
           and s["layers"][n]["permutation_test"]["difference"] > 0]
    above = sum(s["layers"][n]["trained_share_mean"] > s["layers"][n]["random_share_mean"]
                for n in names)
    best_t = {n: max(((c, k) for c, k in s["layers"][n]["trained_concepts"].items()
                      if c != ANY), key=lambda kv: kv[1]) for n in names}
    lines = [
        f"Data (flowgrad.datasets.scenes): {s['size']}×{s['size']} grey images of six scene "
        f"types ({', '.join(s['scene_types'])}): each holds one or two instances of each class "
        "of its pair and no other object, at random sizes, rotations and non-overlapping "
        "positions, flat grey levels on a textured background (two random gratings plus "
        "noise). The scene label is the pair of classes present, so a classifier must find "
        "which objects co-occur, but it is trained on scene labels only. "
        f"{s['n_train']} training scenes, the next {s['n_valid']} of the same draw as "
        f"validation, {s['n_test']} test scenes and {s['n_probe']} probe scenes (with masks), "
        "each set from its own seed; the same data for every seed, the seeds varying the "
        "initial weights and the order of the minibatches.",
        "Network: each image minus its mean, times 4; four 3×3 conv layers of "
        f"{s['channels']} channels, each with "
        + ("batch normalisation and " if s["batch_norm"] else "") + "a ReLU, 2×2 "
        f"max-pooling after the first two, global {s['pool']}-pooling, a linear layer to the "
        "six types; "
        f"Adam (lr {s['lr']:g}), batch {s['batch_size']}, {s['epochs']} epochs, the epoch of "
        "best validation accuracy kept, the test scenes classified once.",
        f"Dissection (Bau et al. 2017, section 2.2): per unit, the {s['quantile']} quantile of "
        "its post-ReLU activations over every position of every probe scene (at the layer's "
        "resolution) is its threshold; its maps are upsampled bilinearly to the image, "
        "thresholded (>= the threshold, and above the unit's minimum, so that a dead unit is "
        "active nowhere), and compared by the IoU summed over the probe set with each "
        "class's mask and with the union of all objects' masks (\"any object\"); a unit is "
        "a detector of an object class when its best concept is that class and the IoU "
        f"exceeds {s['iou_threshold']} (Bau et al.'s value); a unit whose best concept is "
        "\"any object\" (it responds to objects of every class alike) is not counted. "
        f"The quantile here is {s['quantile']}, not "
        f"Bau et al.'s {s['bau_quantile']}: a unit active on a share a of the pixels reaches "
        "at most IoU a / m with a concept covering a share m, and each object class covers "
        "about 4% of the probe pixels (" + ", ".join(
            f"{c} {100 * f:.1f}%" for c, f in s["concept_area"].items()) + "), so a unit "
        f"thresholded at the {s['bau_quantile']} quantile (active on at most "
        f"{100 * (1 - s['bau_quantile']):.1f}% of the pixels, less after upsampling) can "
        "hardly pass 0.04 in the coarse layers whatever it detects; "
        f"{s['quantile']} lets a unit's active area match one class's. The results at "
        f"{s['bau_quantile']} are in the table. "
        "The random control dissects each seed's "
        "network at its initial weights, before training. Significance: a one-sided "
        "permutation test (10,000 shuffles) of trained > random on the units' detector "
        "indicators, pooled over seeds, per layer and for all layers together. "
        + ("The random network's batch normalisation keeps its initial statistics (mean 0, "
           "variance 1) in evaluation mode; the thresholds are per unit, so only the order of "
           "each unit's activations matters." if s["batch_norm"] else ""),
        f"Outcome: the scene classifier reaches {s['test_accuracy_mean']:.1%} test accuracy "
        f"(chance {s['chance_accuracy']:.1%}). Shares of detector units, trained against "
        "random: " + "; ".join(f"{n} {s['layers'][n]['trained_share_mean']:.2f} against "
                               f"{s['layers'][n]['random_share_mean']:.2f}" for n in names)
        + f". The trained share is above the random one in {above} of {len(names)} layers; "
        "the difference is significant (p < 0.05) in "
        + (", ".join(sig) if sig else "no layer") + "; all layers together "
        f"{s['trained_share_overall']:.2f} against {s['random_share_overall']:.2f} (p = "
        f"{s['overall_test']['p_value']:.4f}). The trained share "
        + ("never falls" if grows else "does not always grow") + " from one layer to the "
        "next. The most frequent detected class per layer (trained, summed over seeds): "
        + ", ".join(f"{n} {c} ({k})" if k else f"{n} none" for n, (c, k) in best_t.items())
        + "; units whose best "
        "concept is \"any object\" above the threshold, trained / random: "
        + ", ".join(f"{n} {s['layers'][n]['trained_concepts'][ANY]}/"
                    f"{s['layers'][n]['random_concepts'][ANY]}" for n in names) + ".",
        "Claim tested (Zhou et al. 2015): object detectors emerge in a network trained only "
        "on scene labels — here, more units of the trained network than of the same network "
        "with random weights are detectors of an object class, significantly over all layers, "
        f"and in the deepest layer (quantile {s['quantile']}, IoU > {s['iou_threshold']}): "
        + ("it held." if s["claim_held"] else "it did not hold.")
        + f" Published: {PUBLISHED}.",
        "Sensitivity to the IoU threshold: the table lists the shares at each threshold; the "
        "right panel of the first figure shows them against the threshold for every layer.",
    ]
    return "\n\n".join(lines)


def _plot_shares(s, out):
    names = list(s["layers"])
    fig, axes = new_figure(1, 2, figsize=(12, 4))
    ax = axes[0]
    xs = np.arange(len(names))
    for off, kind, color in ((-0.2, "trained", "C0"), (0.2, "random", "C7")):
        vals = [s["layers"][n][f"{kind}_share"] for n in names]
        ax.bar(xs + off, [np.mean(v) for v in vals], 0.4, color=color,
               label=f"{kind} weights")
        for i, v in enumerate(vals):
            ax.scatter([xs[i] + off] * len(v), v, color="k", s=8, zorder=3)
    ax.set(xticks=xs, ylabel=f"share of units with IoU > {s['iou_threshold']}",
           title="Object-detector units per layer (bars: mean, dots: seeds)", ylim=(0, 1.05))
    ax.set_xticklabels(names)
    ax.legend(fontsize=8)
    ts = [float(t) for t in s["sensitivity_thresholds"]]
    for i, n in enumerate(names):
        sens = s["layers"][n]["sensitivity"]
        axes[1].plot(ts, [sens[str(t)]["trained"] for t in ts], "o-", color=f"C{i}",
                     label=f"{n} trained")
        axes[1].plot(ts, [sens[str(t)]["random"] for t in ts], "x--", color=f"C{i}",
                     alpha=0.6, label=f"{n} random")
    axes[1].axvline(s["iou_threshold"], color="gray", ls=":")
    axes[1].set(xlabel="IoU threshold", ylabel="share of detector units", ylim=(0, 1.05),
                title="Sensitivity to the IoU threshold (mean over seeds)")
    axes[1].legend(fontsize=6, ncol=2)
    return save_figure(fig, f"{out}/{NAME}_shares.png", dpi=110, tight=True)


def _plot_units(examples, probe, out):
    rows, cols = len(examples), len(examples[0]["images"]) if examples else 1
    fig, axes = new_figure(max(rows, 1), cols, figsize=(2.2 * cols, 2.4 * max(rows, 1)),
                           squeeze=False)
    for r, ex in enumerate(examples):
        for j, i in enumerate(ex["images"]):
            ax = axes[r, j]
            rgb = np.repeat(probe.images[i, 0][..., None], 3, axis=2) * 0.6
            rgb[ex["mask"][j], 2] += 0.4            # the concept's mask in blue
            rgb[ex["active"][j], 0] += 0.4          # the unit's thresholded map in red
            ax.imshow(np.clip(rgb, 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_title(f"{ex['layer']} unit {ex['unit']}: {ex['concept']}, IoU "
                             f"{ex['iou']:.2f}", fontsize=7, loc="left")
    fig.suptitle("Top units (seed 0) on their strongest probe scenes: red = unit active "
                 "(thresholded), blue = concept mask, magenta = both", fontsize=8)
    return save_figure(fig, f"{out}/{NAME}_units.png", dpi=110, tight=True)
