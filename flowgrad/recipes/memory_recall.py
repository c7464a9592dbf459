"""Memory-extended networks (lecture: "Memory-Extended Networks"): a Neural Turing Machine
against an LSTM of about the same number of parameters (Graves, Wayne & Danihelka, "Neural
Turing Machines", 2014, arXiv 1410.5401, sections 4.1 and 4.3).

Both models are trained with the same budget (the same minibatches of generated sequences,
the same number of steps, Adam, the same learning-rate grid) on the copy task (or on
associative recall, ``task="recall"``), with lengths drawn from a training range; the
validation-from-train protocol chooses each model's learning rate and checkpoint on a fixed,
seeded validation set from the training range; separate test sets, at the training lengths and
at longer ones, are evaluated once, at the end. Measures: bit errors per sequence (output
thresholded at 1/2) and the fraction of sequences reproduced without error, against length.
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from ..datasets.algorithmic import associative_recall, copy_task
from ..models.memory import NTM, LSTMBaseline, NTMConfig, bit_errors, masked_bce, parameter_count
from ..plotting import new_figure, save_figure
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results

NAME = "memory_recall"
DEFAULTS = {"steps": 3000, "lr_grid": (0.01, 0.003), "batch_size": 32, "seed": 0,
            "task": "copy", "bits": 8, "train_lengths": (1, 10),
            "test_lengths": (5, 10, 20, 30, 40), "controller": 32, "memory_slots": 48,
            "memory_width": 8, "eval_every": 250, "n_valid": 500, "n_test": 200, "threads": 1}
MODELS = ("ntm", "lstm")
LABELS = {"ntm": "NTM (LSTM controller + memory)", "lstm": "LSTM"}
ITEM_LEN = 3  # associative recall: vectors per item (Graves et al. use 3)
PUBLISHED = {
    "copy": "NTM learns much faster than LSTM and to a lower cost, and keeps copying sequences "
            "longer than those it was trained on (up to 120 after training on 1-20), while "
            "LSTM degrades quickly beyond the training lengths (Graves et al. 2014, section "
            "4.1, Figures 3-5)",
    "recall": "NTM learns associative recall much faster than LSTM (near zero cost after about "
              "30,000 episodes, where LSTM does not get there after 1,000,000) and generalises "
              "to more items than trained on (Graves et al. 2014, section 4.3, Figures "
              "10-11)"}
SIZE = {"copy": "length", "recall": "items"}


def make_task(task: str, n: int, lo: int, hi: int, bits: int, seed: int):
    """``n`` examples of the copy task (lengths lo..hi) or associative recall (lo..hi items)."""
    if task == "copy":
        return copy_task(n, lo, hi, bits=bits, seed=seed)
    if task == "recall":
        return associative_recall(n, lo, hi, bits=bits, item_len=ITEM_LEN, seed=seed)
    raise ValueError(f"memory_recall: unknown task {task!r}; expected 'copy' or 'recall'")


def matched_lstm_hidden(target: int, input_size: int, output_size: int) -> int:
    """The LSTM hidden size whose LSTM + linear output has the parameter count nearest
    ``target``: 4h(in + h + 2) + h*out + out."""
    sizes = np.arange(1, 2048)
    counts = 4 * sizes * (input_size + sizes + 2) + sizes * output_size + output_size
    return int(sizes[np.argmin(np.abs(counts - target))])


@fg.no_grad()
def evaluate(model, data, batch_size: int = 250) -> dict:
    """Bit errors per example, masked BCE (nats per target bit), on a BitTask."""
    errors, loss, bits = [], 0.0, 0.0
    for s in range(0, len(data.lengths), batch_size):
        x = fg.from_numpy(data.inputs[s:s + batch_size])
        y, m = data.targets[s:s + batch_size], data.mask[s:s + batch_size]
        logits = model(x)
        count = float(m.sum() * y.shape[-1])
        loss += masked_bce(logits, fg.from_numpy(y), fg.from_numpy(m)).item() * count
        bits += count
        errors.append(bit_errors(logits.numpy(), y, m))
    errors = np.concatenate(errors)
    return {"bit_errors": float(errors.mean()), "bit_error_rate": float(errors.sum() / bits),
            "perfect": float((errors == 0).mean()), "bce": loss / bits}


def _build(kind: str, sizes: dict, seed: int):
    fg.manual_seed(seed)
    if kind == "ntm":
        return NTM(NTMConfig(sizes["input"], sizes["output"], controller_size=sizes["controller"],
                             memory_slots=sizes["slots"], memory_width=sizes["width"]))
    return LSTMBaseline(sizes["input"], sizes["output"], sizes["lstm_hidden"])


def _train(kind, lr, sizes, config, batch_seeds, valid, progress) -> dict:
    """One training run: Adam at ``lr``, gradient norm clipped at 10; the validation set is
    measured every ``eval_every`` steps and at the last; the weights of lowest validation bit
    errors are kept (ties: lowest validation cross-entropy)."""
    model = _build(kind, sizes, config["seed"])
    optimizer = fg.optim.Adam(model.parameters(), lr=lr)
    lo, hi = config["train_lengths"]
    curve, losses, best = [], [], ((float("inf"), float("inf")), None, None)

    def check(step):
        nonlocal best
        result = evaluate(model, valid)
        curve.append((step, result["bit_errors"], result["bce"]))
        score = (result["bit_errors"], result["bce"])
        if score < best[0]:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best = (score, step, state)
        if progress:
            print(f"  {kind} lr={lr:g} step {step}: validation bit errors per sequence "
                  f"{result['bit_errors']:.3f}", flush=True)

    with Timer() as t:
        check(0)
        for step, batch_seed in enumerate(batch_seeds, start=1):
            d = make_task(config["task"], config["batch_size"], lo, hi, config["bits"],
                          int(batch_seed))
            loss = masked_bce(model(fg.from_numpy(d.inputs)), fg.from_numpy(d.targets),
                              fg.from_numpy(d.mask))
            optimizer.zero_grad()
            loss.backward()
            fg.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            losses.append(loss.item())
            if step % config["eval_every"] == 0 or step == len(batch_seeds):
                check(step)
    model.load_state_dict(best[2])
    return {"model": model, "lr": lr, "valid_bit_errors": best[0][0], "valid_bce": best[0][1],
            "best_step": best[1],
            "curve": curve, "train_loss": losses, "seconds": t.seconds}


def run(steps=3000, lr_grid=(0.01, 0.003), batch_size=32, seed=0, task="copy", bits=8,
        train_lengths=(1, 10), test_lengths=(5, 10, 20, 30, 40), controller=32,
        memory_slots=48, memory_width=8, eval_every=250, n_valid=500, n_test=200, threads=1,
        out=None, quick=False, progress=True, write: bool = True) -> dict:
    """Train the NTM and a parameter-matched LSTM with the same budget for each learning rate
    of ``lr_grid``; keep each model's learning rate and checkpoint of lowest validation bit
    errors; evaluate the test sets (training range, then each of ``test_lengths``) once."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        steps, lr_grid, bits, train_lengths, test_lengths = 300, (0.01,), 4, (1, 4), (4, 8)
        memory_slots, eval_every, n_valid, n_test = 12, 100, 100, 100
    lr_grid = tuple(lr_grid) if isinstance(lr_grid, (tuple, list)) else (lr_grid,)
    lo, hi = (int(v) for v in train_lengths)
    channels = bits + (1 if task == "copy" else 2)
    sizes = {"input": channels, "output": bits, "controller": controller, "slots": memory_slots,
             "width": memory_width}
    ntm_params = parameter_count(_build("ntm", sizes, seed))
    sizes["lstm_hidden"] = matched_lstm_hidden(ntm_params, channels, bits)
    config = {"seed": seed, "task": task, "bits": bits, "batch_size": batch_size,
              "train_lengths": (lo, hi), "eval_every": eval_every}
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=steps + 2 + len(test_lengths))
    batch_seeds, valid_seed, test_seeds = seeds[:steps], seeds[steps], seeds[steps + 1:]
    valid = make_task(task, n_valid, lo, hi, bits, int(valid_seed))
    runs = {kind: [] for kind in MODELS}
    with _limit_threads(threads), Timer() as t:
        for kind in MODELS:
            for lr in lr_grid:
                runs[kind].append(_train(kind, lr, sizes, config, batch_seeds, valid, progress))
        chosen = {kind: min(runs[kind], key=lambda r: (r["valid_bit_errors"], r["valid_bce"]))
                  for kind in MODELS}
        tests = {"train range": make_task(task, n_test, lo, hi, bits, int(test_seeds[0]))}
        for length, s in zip(test_lengths, test_seeds[1:]):
            tests[str(length)] = make_task(task, n_test, length, length, bits, int(s))
        results = {kind: {name: evaluate(chosen[kind]["model"], data)
                          for name, data in tests.items()} for kind in MODELS}
    chance = 0.5 * bits * float(valid.mask.sum()) / n_valid
    summary = {"title": f"Neural Turing Machine vs LSTM on the {_task_name(task)} task",
               "task": task, "bits": bits, "train_lengths": [lo, hi],
               "test_lengths": list(test_lengths), "steps": steps, "batch_size": batch_size,
               "lr_grid": list(lr_grid), "eval_every": eval_every, "n_valid": n_valid,
               "n_test": n_test, "controller": controller, "memory_slots": memory_slots,
               "memory_width": memory_width, "lstm_hidden": sizes["lstm_hidden"],
               "params": {"ntm": ntm_params,
                          "lstm": parameter_count(chosen["lstm"]["model"])},
               "chance_valid_bit_errors": chance, "published": PUBLISHED[task],
               "threads": threads, "command": command, "seed": seed, "seconds": t.seconds}
    for kind in MODELS:
        c = chosen[kind]
        summary[kind] = {
            "lr": c["lr"], "best_step": c["best_step"], "valid_bit_errors": c["valid_bit_errors"],
            "valid_bce": c["valid_bce"],
            "test": results[kind], "curve": c["curve"],
            "final_train_loss": float(np.mean(c["train_loss"][-50:])),
            "seconds": float(sum(r["seconds"] for r in runs[kind])),
            "grid": [{"lr": r["lr"], "valid_bit_errors": r["valid_bit_errors"],
                      "valid_bce": r["valid_bce"],
                      "best_step": r["best_step"], "seconds": r["seconds"]} for r in runs[kind]]}
        summary[f"{kind}_valid_bit_errors"] = c["valid_bit_errors"]
        for name, r in results[kind].items():
            key = "train_range" if name == "train range" else f"{SIZE[task]}_{name}"
            summary[f"{kind}_test_bit_errors_{key}"] = r["bit_errors"]
    if write:
        figures = (_plot_curves(runs, chosen, summary, out),
                   _plot_lengths(summary, out),
                   _plot_weights(chosen["ntm"]["model"], task, bits, max(test_lengths),
                                 int(test_seeds[-1]), out))
        with _limit_threads(threads):  # the machine line reports the threads trained with
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=figures)
    return summary


def _task_name(task: str) -> str:
    return {"copy": "copy", "recall": "associative recall"}[task]


def _rows(s) -> list:
    size = SIZE[s["task"]]
    lo, hi = s["train_lengths"]
    rows = [("parameters: NTM / LSTM", f"{s['params']['ntm']:,} / {s['params']['lstm']:,} "
             f"(LSTM hidden size {s['lstm_hidden']})", "—"),
            ("chance (every bit wrong with probability 1/2): validation bit errors per sequence",
             f"{s['chance_valid_bit_errors']:.2f}", "—")]
    for kind in MODELS:
        r = s[kind]
        rows.append((f"{LABELS[kind]}: validation bit errors per sequence (lr {r['lr']:g}, "
                     f"kept step {r['best_step']} of {s['steps']})",
                     f"{r['valid_bit_errors']:.3f}", "—"))
    for name in s["ntm"]["test"]:
        label = (f"{size} {lo}-{hi} (training range)" if name == "train range"
                 else f"{size} {name}" + (" (longer than trained on)" if int(name) > hi
                                          else ""))
        a, b = s["ntm"]["test"][name], s["lstm"]["test"][name]
        rows.append((f"test, {label}: bit errors per sequence, NTM / LSTM",
                     f"{a['bit_errors']:.2f} / {b['bit_errors']:.2f} (bit error rate "
                     f"{a['bit_error_rate']:.2%} / {b['bit_error_rate']:.2%}; sequences "
                     f"without error {a['perfect']:.0%} / {b['perfect']:.0%})",
                     "NTM lower, above all beyond the training lengths"))
    rows += [(f"{LABELS[kind]}: training time ({len(s['lr_grid'])} learning rate(s))",
              f"{s[kind]['seconds']:.0f} s", "—") for kind in MODELS]
    return rows


def _notes(s) -> str:
    lo, hi = s["train_lengths"]
    size = SIZE[s["task"]]
    ratio = s["ntm"]["seconds"] / max(s["lstm"]["seconds"], 1e-9)
    if s["task"] == "copy":
        data = (f"Copy task (Graves et al. 2014, section 4.1): {s['bits']}-bit random vectors, "
                f"a delimiter step on an extra channel, then blank steps during which the "
                f"sequence is to be reproduced; training lengths uniform in {lo}-{hi}.")
    else:
        data = (f"Associative recall (Graves et al. 2014, section 4.3): items of {ITEM_LEN} "
                f"{s['bits']}-bit vectors, each after an item delimiter, then a query item "
                "between two query delimiters; the target is the item that followed the query; "
                f"training lists of {lo}-{hi} items.")
    lines = [
        data,
        f"Models: the NTM has an LSTM controller of {s['controller']} units, a "
        f"{s['memory_slots']} x {s['memory_width']} memory, one read head and one write head "
        "(content addressing, interpolation, shifts -1..1, sharpening; erase and add), the "
        "output linear in the controller state and the read vector; the LSTM baseline is one "
        f"LSTM layer of {s['lstm_hidden']} units and a linear output, the hidden size whose "
        "parameter count is nearest the NTM's. Outputs are logits of each target bit, trained "
        "with binary cross-entropy over the target steps.",
        f"Budget (both models): {s['steps']} steps of Adam on minibatches of "
        f"{s['batch_size']} generated sequences (the same sequences for every run), gradient "
        f"norm clipped at 10, for each learning rate of {s['lr_grid']}. The budget is equal "
        "in steps and sequences seen (Graves et al. plot cost against sequences seen), not in "
        f"time: the NTM's training took {ratio:.0f} times as long as the LSTM's here "
        f"(BLAS threads: {s['threads'] or 'default'}).",
        f"Protocol: a fixed validation set of {s['n_valid']} sequences from the training range "
        f"(its own seed) is measured every {s['eval_every']} steps; each model keeps the "
        "learning rate and the checkpoint of lowest validation bit errors per sequence. The "
        f"test sets ({s['n_test']} sequences each, own seeds: one from the training range and "
        f"one at each {size} of {s['test_lengths']}) are evaluated once, after all choices. "
        "Sequences are generated, so a short test sequence can coincide with a training one; "
        "the longer ones were never trained on. Checkpoints tied on bit errors are told apart "
        "by validation cross-entropy. One seed: no significance is claimed. The third figure "
        f"shows the kept NTM's write and read weightings on one sequence of "
        f"{size} {max(s['test_lengths'])}.",
        f"Published (qualitative): {s['published']}.",
        "", "Outcome:"]
    for name in s["ntm"]["test"]:
        if name == "train range" or int(name) <= hi:
            continue
        a, b = s["ntm"]["test"][name]["bit_errors"], s["lstm"]["test"][name]["bit_errors"]
        verdict = "fewer" if a < b else "not fewer"
        lines.append(f"- {size} {name}: the NTM makes {verdict} bit errors per sequence than "
                     f"the LSTM ({a:.2f} against {b:.2f}).")
    a, b = s["ntm"]["valid_bit_errors"], s["lstm"]["valid_bit_errors"]
    lines.append(f"- Training range (validation): {a:.3f} against {b:.3f} bit errors per "
                 f"sequence; chance is {s['chance_valid_bit_errors']:.2f}.")
    return "\n\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:])


def _plot_curves(runs, chosen, s, out):
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    colors = {"ntm": "tab:blue", "lstm": "tab:orange"}
    for kind in MODELS:
        for r in runs[kind]:
            steps, errors, _ = zip(*r["curve"])
            main = r is chosen[kind]
            axes[0].plot(steps, errors, "-" if main else ":", color=colors[kind],
                         label=f"{LABELS[kind]}, lr {r['lr']:g}" + (" (kept)" if main else ""))
        loss = np.asarray(chosen[kind]["train_loss"])
        window = max(1, len(loss) // 50)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        axes[1].plot(np.arange(window, len(loss) + 1), smooth, color=colors[kind],
                     label=f"{LABELS[kind]}, lr {chosen[kind]['lr']:g}")
    axes[0].axhline(s["chance_valid_bit_errors"], color="gray", ls="--", lw=1, label="chance")
    axes[0].set(xlabel="training step", ylabel="bit errors per sequence",
                title="validation (training range)", yscale="symlog")
    axes[1].set(xlabel="training step", ylabel="BCE per target bit (nats)",
                title=f"training loss (moving average of {max(1, s['steps'] // 50)} steps)",
                yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_curves.png", dpi=110)


def _plot_lengths(s, out):
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    size = SIZE[s["task"]]
    names = [n for n in s["ntm"]["test"] if n != "train range"]
    xs = [int(n) for n in names]
    for kind, color in (("ntm", "tab:blue"), ("lstm", "tab:orange")):
        test = s[kind]["test"]
        axes[0].plot(xs, [test[n]["bit_error_rate"] for n in names], "o-", color=color,
                     label=LABELS[kind])
        axes[1].plot(xs, [test[n]["perfect"] for n in names], "o-", color=color,
                     label=LABELS[kind])
    for ax in axes:
        ax.axvspan(s["train_lengths"][0], s["train_lengths"][1], color="gray", alpha=0.15,
                   label="training range")
        ax.set(xlabel=f"sequence {size}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].axhline(0.5, color="gray", ls="--", lw=1)
    axes[0].set(ylabel="bit error rate (test)", title="bit errors against length")
    axes[1].set(ylabel="sequences without error (test)", title="exact reproductions",
                ylim=(-0.02, 1.02))
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_lengths.png", dpi=110)


@fg.no_grad()
def _plot_weights(model, task, bits, length, seed, out):
    """The NTM's write and read weightings over time on one test sequence of ``length``."""
    data = make_task(task, 1, length, length, bits, seed)
    _, weights = model(fg.from_numpy(data.inputs), return_weights=True)
    w = weights.numpy()[0]  # (T, heads, N)
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    for ax, head, title in ((axes[0], -1, "write weighting"), (axes[1], 0, "read weighting")):
        ax.imshow(w[:, head].T, aspect="auto", cmap="gray_r", origin="lower",
                  interpolation="nearest")
        ax.set(xlabel="time step", ylabel="memory slot",
               title=f"NTM {title} ({SIZE[task]} {length})")
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_weights.png", dpi=110)
