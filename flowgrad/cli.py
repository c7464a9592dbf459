"""The ``flowgrad`` command.

    flowgrad train <recipe> [--epochs N --steps N --lr LR --batch-size B --seed S --seeds K
                             --set KEY=VALUE ... --quick] [--out DIR | --publish]
    flowgrad train --list
    python -m flowgrad [options]  # = flowgrad train digits_mlp [options] (no download)

A run writes to its own directory, runs/<recipe>-<YYYYmmdd-HHMMSS>/ (git ignores runs/);
--out DIR chooses another; --publish replaces what results/ publishes. The .md it writes
records the command line that reproduces the run.

Under MPI (``mpirun -n 2 flowgrad train mnist_mlp``) the processes form a process group: the
recipes that train through flowgrad.recipes.common train data-parallel (each rank on its shard
of every minibatch), and only rank 0 prints and writes the run's files.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import inspect
import shutil
import sys
import tempfile
from pathlib import Path

from . import recipes
from .recipes.common import PUBLISHED, run_dir


def _value(text: str):
    """A --set value: a Python literal (1, 0.5, (256, 128), 'x') or else the string itself;
    a comma-separated list becomes a tuple, and a trailing comma makes a one-element tuple
    ("mlp," is ("mlp",), as "0," is (0,))."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if "," in text:
            return tuple(_value(t) for t in text.split(",") if t.strip())
        return text


def _as_default_kind(value, default):
    """A single --set value for an option whose default is a tuple becomes a one-element tuple
    (``--set models=tr`` is ("tr",), not the characters of "tr")."""
    if isinstance(default, (tuple, list)) and not isinstance(value, (tuple, list)):
        return (value,)
    return value


def _train(args, parser) -> int:
    if args.list or not args.recipe:
        for name, text in recipes.RECIPES.items():
            print(f"{name:15s} {text}")
        return 0
    module = recipes.get(args.recipe)
    accepted = inspect.signature(module.run).parameters
    options = {k: v for k, v in {"epochs": args.epochs, "lr": args.lr,
                                 "batch_size": args.batch_size, "seed": args.seed,
                                 "steps": args.steps, "seeds": args.seeds}.items()
               if v is not None and k in accepted}
    for item in args.set or ():
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in accepted or key in ("out", "quick", "progress"):
            parser.error(f"--set {item!r}: {args.recipe} takes "
                         + ", ".join(k for k in accepted if k not in ("out", "quick",
                                                                      "progress")))
        options[key] = _as_default_kind(_value(text), accepted[key].default)
    if args.publish and args.out is not None:
        parser.error("--publish writes to results/; --out chooses another directory: not both")
    if args.publish and args.quick:
        parser.error("--publish --quick would replace the published results with a smoke run")
    with _ranks(args.recipe, module) as main_rank:
        if main_rank:
            out = PUBLISHED if args.publish else args.out if args.out is not None else str(
                run_dir(args.recipe))
        else:  # the other ranks compute the same results; rank 0 alone writes them
            out = tempfile.mkdtemp(prefix=f"flowgrad-{args.recipe}-rank-")
        try:
            summary = module.run(out=out, quick=args.quick, **options)
        finally:
            if not main_rank:
                shutil.rmtree(out, ignore_errors=True)
    if not main_rank:
        return 0
    shown = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and k != "seed"}
    print(f"{args.recipe}: " + ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()))
    published = args.publish or Path(out).resolve() == Path(PUBLISHED).resolve()
    print(f"results written to {out}/" + ("" if published else
                                          " (published results in results/ untouched; "
                                          "--publish replaces them)"))
    return 0


@contextlib.contextmanager
def _ranks(name: str, module):
    """Under ``mpirun -n N`` (N >= 2): start the process group, yield whether this is rank 0,
    and leave the group at the end; in a single process, yield True."""
    from . import distributed

    if not distributed.launched_by_mpi():
        yield True
        return
    started = not distributed.is_initialized()
    if started:
        distributed.init_process_group(backend="mpi")
    main_rank = distributed.get_rank() == 0
    if main_rank and not getattr(module, "DATA_PARALLEL", False):
        print(f"{name}: this recipe does not split its work across ranks; each of the "
              f"{distributed.get_world_size()} ranks runs it whole", flush=True)
    try:
        yield main_rank
        distributed.barrier()
    finally:
        if started:
            distributed.destroy_process_group()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="flowgrad", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="run a recipe (flowgrad train --list)")
    train.add_argument("recipe", nargs="?", help="recipe name; --list shows them")
    train.add_argument("--list", action="store_true", help="list the recipes")
    train.add_argument("--epochs", type=int)
    train.add_argument("--steps", type=int, help="optimizer steps (step-based recipes)")
    train.add_argument("--lr", type=float)
    train.add_argument("--batch-size", type=int, dest="batch_size")
    train.add_argument("--seed", type=int)
    train.add_argument("--seeds", type=int, help="how many seeds (multi-seed recipes)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="any other argument of the recipe's run(), e.g. --set "
                            "lenet_epochs=10 (repeatable)")
    train.add_argument("--out", default=None,
                       help="where results and figures go (default: a new "
                            "runs/<recipe>-<YYYYmmdd-HHMMSS>/)")
    train.add_argument("--publish", action="store_true",
                       help=f"write into {PUBLISHED}/, replacing the published results")
    train.add_argument("--quick", action="store_true", help="the short variant (a smoke run)")
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["train", "digits_mlp", *argv]  # python -m flowgrad [options]: the default
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return _train(args, parser)
