"""The report every check returns: a table (``columns``, ``rows``) with a one-sentence
``verdict`` a person can act on; ``str(report)`` is the table as markdown."""

from __future__ import annotations

import math


class TableReport:
    """A table with a verdict; ``ok`` is True when the check found nothing wrong."""

    title = "report"
    columns: tuple = ()
    show_title = True  # print the title above the table
    digits = 3         # significant digits of float cells

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.verdict = ""
        self.ok = True

    def _cell(self, v) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.{self.digits}g}"
        return str(v)

    def to_markdown(self) -> str:
        lines = [self.title, ""] if self.show_title else []
        lines += ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(self._cell(v) for v in row) + " |" for row in self.rows]
        if self.verdict:
            lines += ["", f"Verdict: {self.verdict}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.verdict}>"

    def as_dict(self) -> dict:
        return {"title": self.title, "ok": self.ok, "verdict": self.verdict,
                "columns": list(self.columns), "rows": [list(r) for r in self.rows]}
