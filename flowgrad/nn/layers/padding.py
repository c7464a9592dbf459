"""Padding layers: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and CircularPad in 1, 2
and 3 dimensions, PyTorch's modules over ``F.pad`` (an int pads every side; a tuple is
(left, right[, top, bottom[, front, back]]), last dimension first)."""

from __future__ import annotations

from .. import functional as F
from ..module import Module
from ._util import ntuple

__all__ = [f"{kind}Pad{n}d" for kind in ("Zero", "Constant", "Reflection", "Replication",
                                          "Circular") for n in (1, 2, 3)]


class _PadNd(Module):
    mode = "constant"
    dims = 1

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = ntuple(padding, 2 * self.dims)

    def forward(self, input):
        return F.pad(input, self.padding, mode=self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, mode="constant", value=self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


def _layer(kind: str, base: type, n: int, mode: str, what: str) -> type:
    doc = (f"Pad the last {n} dimension{'s' if n > 1 else ''} {what} (``F.pad(x, padding, "
           f"mode={mode!r})``).")
    return type(f"{kind}Pad{n}d", (base,), {"__doc__": doc, "dims": n, "mode": mode,
                                            "__module__": __name__})


_KINDS = {"Zero": (_ZeroPadNd, "constant", "with zeros"),
          "Constant": (_ConstantPadNd, "constant", "with a constant ``value``"),
          "Reflection": (_PadNd, "reflect", "with the reflection of the input at its edge"),
          "Replication": (_PadNd, "replicate", "by repeating the edge values"),
          "Circular": (_PadNd, "circular", "by wrapping around (periodic boundary)")}

for _kind, (_base, _mode, _what) in _KINDS.items():
    for _n in (1, 2, 3):
        globals()[f"{_kind}Pad{_n}d"] = _layer(_kind, _base, _n, _mode, _what)
