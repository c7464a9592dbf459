"""The ``flowgrad`` command.

    flowgrad train <recipe> [--epochs N --steps N --lr LR --batch-size B --seed S --seeds K
                             --out DIR --quick]
    flowgrad train --list
    python -m flowgrad [options]  # = flowgrad train digits_mlp [options] (no download)
"""

from __future__ import annotations

import argparse
import inspect
import sys

from . import recipes


def _train(args) -> int:
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
    summary = module.run(out=args.out, quick=args.quick, **options)
    shown = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and k != "seed"}
    print(f"{args.recipe}: " + ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()))
    if not args.quick:
        print(f"results written to {args.out}/{args.recipe}.md")
    return 0


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
    train.add_argument("--out", default="results", help="where results and figures go")
    train.add_argument("--quick", action="store_true", help="the short variant (a smoke run)")
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["train", "digits_mlp", *argv]  # python -m flowgrad [options]: the default
    return _train(parser.parse_args(argv))
