"""The op library: one Function subclass per primitive, forward and backward on raw arrays.

Importing this package imports every op module, so ``Function`` subclasses found under
``flowgrad.ops`` are the complete list of primitives (the test suite's coverage check uses it).
"""

from . import activation, elementwise, indexing, linalg, reduction, shape  # noqa: F401


def all_ops() -> list:
    """Every primitive Function class defined under flowgrad.ops."""
    import importlib
    import pkgutil

    from ..autograd.function import Function

    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Function) and obj is not Function \
                    and obj.__module__ == module.__name__:
                found.append(obj)
    return found
