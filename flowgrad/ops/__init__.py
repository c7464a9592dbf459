"""The op library: one Op subclass per primitive, forward and backward on raw arrays.

Importing this package imports every op module, so ``Op`` subclasses found under
``flowgrad.ops`` are the complete list of primitives (the test suite's coverage check uses it).
"""

from . import activation, elementwise, indexing, linalg, reduction, resample, shape  # noqa: F401


def all_ops() -> list:
    """Every primitive Op class defined under flowgrad.ops."""
    import importlib
    import pkgutil

    from ..autograd.op import Op

    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Op) and obj is not Op \
                    and obj.__module__ == module.__name__:
                found.append(obj)
    return found
