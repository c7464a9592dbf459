"""The op table: every entry of every module here. Each module defines ``SPECS``."""

from __future__ import annotations

import importlib
import pkgutil


def all_specs() -> list:
    specs = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        specs.extend(getattr(module, "SPECS", []))
    names = [s.name for s in specs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"op table: duplicate spec names {sorted(dupes)}")
    return specs
