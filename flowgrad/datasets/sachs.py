"""The Sachs et al. (2005) protein-signalling flow-cytometry data (K. Sachs, O. Perez, D. Pe'er,
D. A. Lauffenburger, G. P. Nolan, "Causal protein-signaling networks derived from multiparameter
single-cell data", Science 308:523-529): 11 phosphoproteins and phospholipids measured in single
human CD4+ T cells under the 9 conditions of the paper's main result, the standard real-data
benchmark for causal-structure learning (SDI, Ke et al. 2019, Table 1 uses its discretized
Bayesian network).

Files: ``sachs/cyto_full_data.csv`` (7466 x 11, the conditions 1-9 concatenated in order, as
the CausalDiscoveryToolbox ships it) and ``sachs/cyto_full_target.csv`` (cdt's 18-edge ground
truth), found like every flowgrad dataset (``$FLOWGRAD_DATA``, ``../shared/data``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .files import locate

__all__ = ["CONDITIONS", "CONSENSUS_ARCS", "SACHS_CHECKSUMS", "SACHS_COLUMNS", "SACHS_NAMES",
           "SachsCondition", "SachsData", "discretize", "load_sachs"]

SACHS_CHECKSUMS = {  # from shared/data/sachs/README.md
    "cyto_full_data.csv": "fc331dcd0bc1d8765986b88cd1d23dd5a3f52e4ffc299fdf96de9d522ddf01aa",
    "cyto_full_target.csv": "398bc137b2669432ef12e0c57d3783fa876c1c7e2377577d3e75410f085485f6",
}
# Column names in the CSV and the node names of bnlearn's sachs.bif, position by position.
SACHS_COLUMNS = ("praf", "pmek", "plcg", "PIP2", "PIP3", "p44/42", "pakts473", "PKA", "PKC",
                 "P38", "pjnk")
SACHS_NAMES = ("Raf", "Mek", "Plcg", "PIP2", "PIP3", "Erk", "Akt", "PKA", "PKC", "P38", "Jnk")

# The 17 arcs of the consensus network in bnlearn's sachs.bif (parent, child).
CONSENSUS_ARCS = (("Erk", "Akt"), ("Mek", "Erk"), ("PIP3", "PIP2"), ("PKA", "Akt"),
                  ("PKA", "Erk"), ("PKA", "Jnk"), ("PKA", "Mek"), ("PKA", "P38"),
                  ("PKA", "Raf"), ("PKC", "Jnk"), ("PKC", "Mek"), ("PKC", "P38"),
                  ("PKC", "PKA"), ("PKC", "Raf"), ("Plcg", "PIP2"), ("Plcg", "PIP3"),
                  ("Raf", "Mek"))


@dataclass(frozen=True)
class SachsCondition:
    """One experimental condition: its number in Sachs et al., the original file, the reagents,
    the 0-based rows of ``cyto_full_data.csv`` and the intervened node(s)."""

    number: int
    file: str
    reagents: str
    start: int
    stop: int
    targets: tuple[str, ...]
    effect: str  # "general stimulation" (no target), "inhibition" or "activation"

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def rows(self) -> slice:
        return slice(self.start, self.stop)


# Conditions 1-9 of the paper's main result, sizes and rows from shared/data/sachs/README.md.
# Targets as in Sachs et al. 2005 (Fig. 1): anti-CD3/CD28 and ICAM-2 stimulate the cells in
# general and target no measured node; the small molecules inhibit or activate one. LY294002
# inhibits PI3K, which is not measured: its measured product PIP3 is the target used.
CONDITIONS = (
    SachsCondition(1, "1. cd3cd28.xls", "anti-CD3 + anti-CD28", 0, 853, (),
                   "general stimulation"),
    SachsCondition(2, "2. cd3cd28icam2.xls", "anti-CD3 + anti-CD28 + ICAM-2", 853, 1755, (),
                   "general stimulation"),
    SachsCondition(3, "3. cd3cd28+aktinhib.xls", "anti-CD3/CD28 + AKT inhibitor", 1755, 2666,
                   ("Akt",), "inhibition"),
    SachsCondition(4, "4. cd3cd28+g0076.xls", "anti-CD3/CD28 + G06976", 2666, 3389, ("PKC",),
                   "inhibition"),
    SachsCondition(5, "5. cd3cd28+psitect.xls", "anti-CD3/CD28 + psitectorigenin", 3389, 4199,
                   ("PIP2",), "inhibition"),
    SachsCondition(6, "6. cd3cd28+u0126.xls", "anti-CD3/CD28 + U0126", 4199, 4998, ("Mek",),
                   "inhibition"),
    SachsCondition(7, "7. cd3cd28+ly.xls", "anti-CD3/CD28 + LY294002", 4998, 5846, ("PIP3",),
                   "inhibition"),
    SachsCondition(8, "8. pma.xls", "PMA", 5846, 6759, ("PKC",), "activation"),
    SachsCondition(9, "9. b2camp.xls", "beta2cAMP", 6759, 7466, ("PKA",), "activation"),
)


def discretize(x, bins: int = 3, reference=None) -> np.ndarray:
    """Categories 0..bins-1 per column by the quantiles of ``reference`` (default: the
    853-sample observational set of the Sachs data), e.g. LOW/AVG/HIGH for ``bins=3``."""
    x = np.asarray(x, dtype=np.float64)
    if reference is None:
        reference = load_sachs().observational
    reference = np.asarray(reference, dtype=np.float64)
    if x.ndim != 2 or reference.ndim != 2 or x.shape[1] != reference.shape[1]:
        raise ValueError(f"discretize: x {x.shape} and reference {reference.shape} must be "
                         f"(n, d) arrays with the same d")
    if bins < 2:
        raise ValueError(f"discretize: bins must be >= 2, got {bins}")
    cuts = np.quantile(reference, np.arange(1, bins) / bins, axis=0)  # (bins-1, d)
    out = np.empty(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        out[:, j] = np.searchsorted(cuts[:, j], x[:, j], side="right")
    return out


@dataclass
class SachsData:
    """The data of conditions 1-9 with their labels and the two reference graphs.

    ``data`` (7466, 11) raw intensities, columns ``names``; ``condition`` (7466,) the condition
    number 1-9 of each row; ``consensus`` the 17-arc network of bnlearn's sachs.bif and
    ``cdt_adjacency`` cdt's 18-edge list, both (11, 11) with ``adj[i, j] = 1`` for i -> j."""

    data: np.ndarray
    condition: np.ndarray
    names: tuple[str, ...] = SACHS_NAMES
    columns: tuple[str, ...] = SACHS_COLUMNS
    conditions: tuple[SachsCondition, ...] = CONDITIONS
    consensus: np.ndarray = field(default=None)
    cdt_adjacency: np.ndarray = field(default=None)

    @property
    def observational(self) -> np.ndarray:
        """Condition 1 (anti-CD3/CD28 only): the 853-sample observational set."""
        return self.data[CONDITIONS[0].rows]

    def samples(self, number: int) -> np.ndarray:
        """The rows of condition ``number`` (1-9)."""
        if not 1 <= number <= len(CONDITIONS):
            raise ValueError(f"Sachs conditions are numbered 1..{len(CONDITIONS)}, got {number}")
        return self.data[CONDITIONS[number - 1].rows]

    def target_indices(self, number: int) -> list[int]:
        """The column indices of the nodes condition ``number`` intervenes on."""
        return [self.names.index(t) for t in CONDITIONS[number - 1].targets]

    def interventions(self) -> list[tuple[int, np.ndarray]]:
        """(target column, samples) for every condition with one target (3-9)."""
        return [(self.target_indices(c.number)[0], self.samples(c.number))
                for c in CONDITIONS if len(c.targets) == 1]

    def discretize(self, x=None, bins: int = 3) -> np.ndarray:
        """``x`` (default: all rows) in ``bins`` categories by observational quantiles."""
        return discretize(self.data if x is None else x, bins, reference=self.observational)


def _adjacency(arcs, names) -> np.ndarray:
    adj = np.zeros((len(names), len(names)), dtype=np.int64)
    for a, b in arcs:
        adj[names.index(a), names.index(b)] = 1
    return adj


@lru_cache(maxsize=4)
def _read(root: str | None):
    folder = locate("sachs", list(SACHS_CHECKSUMS), root=root, download=False,
                    checksums=SACHS_CHECKSUMS)
    with open(folder / "cyto_full_data.csv", newline="") as f:
        rows = list(csv.reader(f))
    if tuple(rows[0]) != SACHS_COLUMNS:
        raise ValueError(f"{folder / 'cyto_full_data.csv'}: expected columns {SACHS_COLUMNS}, "
                         f"got {tuple(rows[0])}")
    data = np.array(rows[1:], dtype=np.float64)
    with open(folder / "cyto_full_target.csv", newline="") as f:
        edges = list(csv.reader(f))[1:]
    rename = dict(zip(SACHS_COLUMNS, SACHS_NAMES))
    cdt = [(rename[a], rename[b]) for a, b in edges]
    return data, cdt


def load_sachs(root=None) -> SachsData:
    """The Sachs et al. 2005 data of conditions 1-9 (see ``CONDITIONS``), raw intensities."""
    data, cdt = _read(None if root is None else str(root))
    condition = np.zeros(len(data), dtype=np.int64)
    for c in CONDITIONS:
        condition[c.rows] = c.number
    if CONDITIONS[-1].stop != len(data):
        raise ValueError(f"Sachs data: expected {CONDITIONS[-1].stop} rows, got {len(data)}")
    return SachsData(data=data.copy(), condition=condition,
                     consensus=_adjacency(CONSENSUS_ARCS, SACHS_NAMES),
                     cdt_adjacency=_adjacency(cdt, SACHS_NAMES))
