"""Discrete Bayesian networks: conditional probability tables over a DAG, ancestral sampling,
log-likelihood, the soft intervention of SDI (Ke et al. 2019, arXiv 1910.01075: the intervened
node's CPT rows are redrawn as softmax(U(-2.5, 2.5)), as in the official code's
``CategoricalWorldInterventionCPT``), and the BIF benchmarks of its Table 1 (Asia, Sachs) read
with pgmpy's ``BIFReader``.

CPT layout: ``cpts[j]`` has shape ``(*[card of p for p in parents(adj, j)], card_j)``; its last
axis sums to 1 for every parent configuration. Parents are in increasing node order.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import itertools
import math
import re
from pathlib import Path

import numpy as np

from ..errors import ShapeError, ValueRangeError
from .graphs import adjacency_to_edges, check_dag, parents, topological_order

__all__ = ["BIFError", "BIF_CHECKSUMS", "BIF_NETWORKS", "BayesianNetwork", "load_bif", "read_bif"]

SUM_TOLERANCE = 1e-3  # a CPT row may deviate this much from 1 (the files round to 4-10 digits)

# SHA-256 of the gzipped files in shared/data/bnlearn_bif (from its README).
BIF_CHECKSUMS = {
    "alarm.bif.gz": "f5860caa7137b5817e0c4f169cce0f1451ce6c246b96f5ce4fb4a8167993be29",
    "asia.bif.gz": "7d5e7b8549834824c1b05f367eb7860fa3fca3adaf3649f0c7be6035af197197",
    "child.bif.gz": "2bc3236dcbdbf9c9f1bbdeb060aa93c0bdee389d23a549b7248b9d89ed8a980c",
    "insurance.bif.gz": "92bcecd1b85387726af564bf1b50cd400ddbbea1b017303cc54d4654e50a8971",
    "sachs.bif.gz": "ed1830fbde101ed50cce3c7a3c8cbf1d2f5225531cf35ff09fb3cec0af101bce",
}
BIF_NETWORKS = ("asia", "sachs", "alarm", "child", "insurance")


class BIFError(ValueError):
    """A BIF file that does not parse or whose tables are not distributions; the message names
    the file, the line and (for a table) the node and parent configuration."""

    def __init__(self, message: str, source: str = "<text>", line: int | None = None):
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.source, self.line = source, line


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class BayesianNetwork:
    """A discrete Bayesian network: a DAG ``adjacency`` (``adj[i, j] = 1`` for i -> j) and one
    CPT per node in the layout of the module docstring.

    Args:
        adjacency: (M, M) 0/1 matrix of a DAG.
        cpts: M arrays, ``cpts[j]`` of shape (*parent cardinalities, card_j), rows summing to 1.
        names: node names (default ``X0``, ``X1``, ...).
        states: per node, its state names (default ``"0"``, ``"1"``, ...).
        name: the network's name.
    """

    def __init__(self, adjacency, cpts, names=None, states=None, name: str | None = None):
        m = np.asarray(adjacency).shape[0] if np.ndim(adjacency) == 2 else -1
        self.names = [str(n) for n in names] if names is not None else [f"X{k}" for k in
                                                                          range(max(m, 0))]
        adj = check_dag(adjacency, self.names if len(self.names) == m else None,
                        "BayesianNetwork adjacency")
        m = adj.shape[0]
        if len(self.names) != m or len(set(self.names)) != m:
            raise ValueError(f"BayesianNetwork: need {m} distinct node names, got {self.names}")
        if len(cpts) != m:
            raise ShapeError(f"BayesianNetwork: {len(cpts)} CPTs for {m} nodes")
        self.adjacency = adj
        self.name = name
        self.cpts = [np.array(c, dtype=np.float64) for c in cpts]
        self._parents = [parents(adj, j) for j in range(m)]
        self.cardinalities = np.array([c.shape[-1] if c.ndim else 0 for c in self.cpts],
                                      dtype=np.int64)
        self.states = ([[str(s) for s in st] for st in states] if states is not None
                       else [[str(s) for s in range(k)] for k in self.cardinalities])
        if len(self.states) != m:
            raise ShapeError(f"BayesianNetwork: {len(self.states)} lists of state names for "
                             f"{m} nodes")
        self._order = topological_order(adj)
        for j in range(m):
            self._check_cpt(j)

    # ----------------------------------------------------------------- structure
    @property
    def num_nodes(self) -> int:
        return len(self.names)

    @property
    def edges(self) -> list[tuple[int, int]]:
        return adjacency_to_edges(self.adjacency)

    @property
    def num_parameters(self) -> int:
        """Free parameters: sum over nodes of (card - 1) x (product of parent cards)."""
        return int(sum((c.shape[-1] - 1) * (c.size // c.shape[-1]) for c in self.cpts))

    def parents(self, node) -> list[int]:
        """The parents of ``node`` (index or name), in increasing order: the CPT's axes."""
        return list(self._parents[self.index(node)])

    def index(self, node) -> int:
        """The index of ``node`` (an index or a name); ValueError naming it and listing the
        nodes when there is no such node."""
        if isinstance(node, (int, np.integer)) and not isinstance(node, bool):
            if 0 <= node < self.num_nodes:
                return int(node)
            raise ValueError(f"no node {int(node)}: the network has {self.num_nodes} nodes "
                             f"(0..{self.num_nodes - 1}: {', '.join(self.names)})")
        if isinstance(node, str) and node in self.names:
            return self.names.index(node)
        raise ValueError(f"no node named {node!r}; the nodes are: {', '.join(self.names)}")

    def _config_text(self, j: int, idx: tuple) -> str:
        return ", ".join(f"{self.names[p]}={self.states[p][v]}"
                         for p, v in zip(self._parents[j], idx)) or "no parents"

    def _check_cpt(self, j: int) -> None:
        cpt, name = self.cpts[j], self.names[j]
        expected = tuple(int(self.cardinalities[p]) for p in self._parents[j])
        if cpt.ndim != len(expected) + 1 or cpt.shape[:-1] != expected:
            raise ShapeError(f"BayesianNetwork: CPT of node {name!r} has shape {cpt.shape}; "
                             f"expected {expected + ('card',)} (parents "
                             f"{[self.names[p] for p in self._parents[j]]}, then the node)")
        if len(self.states[j]) != cpt.shape[-1]:
            raise ShapeError(f"BayesianNetwork: node {name!r} has {len(self.states[j])} state "
                             f"names but its CPT has {cpt.shape[-1]} categories")
        if not np.all(np.isfinite(cpt)) or np.any(cpt < 0):
            raise ValueError(f"BayesianNetwork: CPT of node {name!r} has negative or non-finite "
                             f"entries")
        sums = cpt.sum(axis=-1)
        bad = np.argwhere(np.abs(sums - 1.0) > SUM_TOLERANCE)
        if len(bad):
            idx = tuple(int(v) for v in bad[0])
            raise ValueError(f"BayesianNetwork: CPT of node {name!r} does not sum to 1 for "
                             f"parent configuration ({self._config_text(j, idx)}): the row sums "
                             f"to {sums[idx]:.6g}")
        if np.abs(sums - 1.0).max(initial=0.0) > 1e-12:
            self.cpts[j] = cpt / sums[..., None]

    # ----------------------------------------------------------------- distributions
    def sample(self, n: int, rng=None) -> np.ndarray:
        """``n`` ancestral samples, an (n, M) int64 array of category indices."""
        rng = np.random.default_rng(rng)
        x = np.zeros((int(n), self.num_nodes), dtype=np.int64)
        for j in self._order:
            probs = self.cpts[j][tuple(x[:, p] for p in self._parents[j])]
            probs = np.broadcast_to(probs, (int(n), probs.shape[-1]))
            u = rng.random((int(n), 1))
            draw = (u >= np.cumsum(probs, axis=-1)).sum(axis=-1)
            x[:, j] = np.minimum(draw, probs.shape[-1] - 1)
        return x

    def _check_data(self, x, what: str) -> np.ndarray:
        arr = np.asarray(x)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.num_nodes:
            raise ShapeError(f"{what}: data must have shape (n, {self.num_nodes}) for nodes "
                             f"{', '.join(self.names)}, got {np.shape(x)}")
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise ValueRangeError(f"{what}: categories must be integers, got non-integer "
                                      f"values")
        elif arr.dtype.kind not in "iub":
            raise ValueRangeError(f"{what}: categories must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        for j, card in enumerate(self.cardinalities):
            bad = np.nonzero((arr[:, j] < 0) | (arr[:, j] >= card))[0]
            if len(bad):
                raise ValueRangeError(f"{what}: node {self.names[j]!r} (column {j}) has {card} "
                                      f"categories (0..{card - 1}) but row {bad[0]} holds "
                                      f"{arr[bad[0], j]}")
        return arr

    def log_prob(self, x) -> np.ndarray:
        """Natural-log probability of each row of ``x`` ((n, M) category indices): the sum of
        log CPT entries (−inf where a table entry is 0)."""
        arr = self._check_data(x, "BayesianNetwork.log_prob")
        total = np.zeros(arr.shape[0])
        with np.errstate(divide="ignore"):
            for j in range(self.num_nodes):
                idx = tuple(arr[:, p] for p in self._parents[j]) + (arr[:, j],)
                total += np.log(self.cpts[j][idx])
        return total

    def intervene(self, node, rng=None) -> BayesianNetwork:
        """A copy whose CPT for ``node`` (index or name) is redrawn row by row as
        softmax(U(−2.5, 2.5)): SDI's soft intervention on BIF graphs. Other nodes unchanged."""
        j = self.index(node)
        rng = np.random.default_rng(rng)
        cpts = [c.copy() for c in self.cpts]
        cpts[j] = _softmax(rng.uniform(-2.5, 2.5, size=cpts[j].shape))
        return BayesianNetwork(self.adjacency, cpts, self.names, self.states, self.name)

    @classmethod
    def from_adjacency(cls, adjacency, cardinalities, rng=None, alpha: float = 1.0,
                       names=None, name: str | None = None) -> BayesianNetwork:
        """Random CPTs over a DAG: every row ~ Dirichlet(alpha, ..., alpha). ``cardinalities``
        is an int or one int per node."""
        adj = check_dag(adjacency, names, "BayesianNetwork.from_adjacency")
        m = adj.shape[0]
        cards = np.broadcast_to(np.asarray(cardinalities, dtype=np.int64), (m,))
        if np.any(cards < 1):
            raise ValueError(f"from_adjacency: cardinalities must be >= 1, got {cards.tolist()}")
        rng = np.random.default_rng(rng)
        cpts = []
        for j in range(m):
            shape = tuple(int(cards[p]) for p in parents(adj, j))
            rows = rng.dirichlet(np.full(int(cards[j]), float(alpha)), size=shape or None)
            cpts.append(np.asarray(rows).reshape(shape + (int(cards[j]),)))
        return cls(adj, cpts, names=names, name=name)

    def to_pgmpy(self):
        """The same network as a pgmpy ``DiscreteBayesianNetwork`` (pgmpy imported here)."""
        from pgmpy.factors.discrete import TabularCPD
        from pgmpy.models import DiscreteBayesianNetwork

        model = DiscreteBayesianNetwork([(self.names[i], self.names[j]) for i, j in self.edges])
        model.add_nodes_from(self.names)
        for j, cpt in enumerate(self.cpts):
            pa = self._parents[j]
            values = np.moveaxis(cpt, -1, 0).reshape(cpt.shape[-1], -1)
            model.add_cpds(TabularCPD(
                self.names[j], int(cpt.shape[-1]), values,
                evidence=[self.names[p] for p in pa] or None,
                evidence_card=[int(self.cardinalities[p]) for p in pa] or None,
                state_names={self.names[k]: self.states[k] for k in [j, *pa]}))
        return model

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        return (f"BayesianNetwork({label}{self.num_nodes} nodes, {len(self.edges)} arcs, "
                f"{self.num_parameters} free parameters)")


# --------------------------------------------------------------------- BIF reading
_TOKEN = re.compile(r"[{}\[\]();,|]|[^\s{}\[\]();,|]+")


class _Tokens:
    """BIF tokens with their line numbers, for error messages."""

    def __init__(self, text: str, source: str):
        # Blank out comments, keeping newlines so that line numbers stay right.
        def blank(m):
            return re.sub(r"[^\n]", " ", m.group(0))
        text = re.sub(r"/\*.*?\*/|//[^\n]*", blank, text, flags=re.S)
        starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.items = [(m.group(0), bisect.bisect_right(starts, m.start()))
                      for m in _TOKEN.finditer(text)]
        self.pos, self.source = 0, source

    def error(self, message: str, line: int | None = None) -> BIFError:
        return BIFError(message, self.source, self.line() if line is None else line)

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def line(self) -> int | None:
        return self.items[min(self.pos, len(self.items) - 1)][1] if self.items else None

    def take(self, expected: str | None = None, what: str = "") -> str:
        if self.pos >= len(self.items):
            raise self.error("unexpected end of file; expected "
                             + (repr(expected) if expected else what))
        tok = self.items[self.pos][0]
        if expected is not None and tok != expected:
            raise self.error(f"expected {expected!r}{' ' + what if what else ''}, got {tok!r}")
        if expected is None and tok in "{}[]();,|":
            raise self.error(f"expected {what}, got {tok!r}")
        self.pos += 1
        return tok

    def skip_to(self, stop: str) -> None:
        """Advance past the next ``stop`` outside nested braces."""
        depth = 0
        while self.pos < len(self.items):
            tok = self.items[self.pos][0]
            self.pos += 1
            if tok == "{":
                depth += 1
            elif tok == "}" and depth:
                depth -= 1
            elif tok == stop and depth == 0:
                return
        raise self.error(f"unexpected end of file; expected {stop!r}")

    def list_until(self, stop: str, what: str) -> list[str]:
        out = [self.take(what=what)]
        while self.peek() == ",":
            self.take(",")
            out.append(self.take(what=what))
        self.take(stop, f"after the {what}s")
        return out


def _numbers(tokens: _Tokens, what: str) -> list[float]:
    line = tokens.line()
    words = tokens.list_until(";", "probability value")
    try:
        return [float(w) for w in words]
    except ValueError:
        bad = next(w for w in words if not re.fullmatch(r"[-+0-9.eE]+|nan|inf", w))
        raise tokens.error(f"{what}: {bad!r} is not a number", line) from None


def _check_sums(name, pa, kind, config, values, variables, source, line) -> None:
    """BIFError naming the node and parent configuration of a row that does not sum to 1
    (a ``table`` lists the node's states slowest, as pgmpy reads it)."""
    if kind == "row":
        configs, sums = [tuple(config)], [sum(values)]
    elif kind == "default":
        configs, sums = [("any other",)], [sum(values)]
    else:
        card = len(variables[name][0])
        sums = np.asarray(values).reshape(card, -1).sum(axis=0).tolist()
        configs = list(itertools.product(*(variables[p][0] for p in pa)))
    for config, total in zip(configs, sums):
        if abs(total - 1.0) > SUM_TOLERANCE:
            text = (", ".join(f"{p}={s}" for p, s in zip(pa, config)) if kind != "default"
                    else "default row") or "no parents"
            raise BIFError(f"the CPT of node {name!r} does not sum to 1 for parent configuration "
                           f"({text}): it sums to {total:.6g}", source, line)


def _scan_bif(text: str, source: str) -> dict:
    """Check a BIF file's structure and content, raising BIFError with the file line; returns
    variables (name -> (states, line)), tables (name -> (parents, line, row lines)) in file
    order."""
    tok = _Tokens(text, source)
    variables: dict[str, tuple[list[str], int]] = {}
    tables: dict[str, tuple[list[str], int, dict]] = {}
    blocks: list[tuple[str, list[str], int, list]] = []
    while tok.peek() is not None:
        line, kw = tok.line(), tok.take(what="a block keyword")
        if kw == "network":
            tok.take(what="the network name")
            tok.take("{", "after the network name")
            tok.skip_to("}")
        elif kw == "variable":
            name = tok.take(what="a variable name")
            if name in variables:
                raise tok.error(f"variable {name!r} is declared twice", line)
            tok.take("{", f"after 'variable {name}'")
            states = None
            while tok.peek() != "}":
                if tok.peek() is None:
                    raise tok.error(f"unexpected end of file in variable {name!r} (opened at "
                                    f"line {line})")
                item = tok.take(what="'type' or 'property'")
                if item == "type":
                    tok.take("discrete", f"in variable {name!r} (only discrete variables)")
                    tok.take("[")
                    count = tok.take(what="the number of states")
                    if not count.isdigit():
                        raise tok.error(f"variable {name!r}: the number of states must be an "
                                        f"integer, got {count!r}")
                    tok.take("]")
                    tok.take("{", "before the state names")
                    states = tok.list_until("}", "state name")
                    tok.take(";", f"after the states of {name!r}")
                    if len(states) != int(count):
                        raise tok.error(f"variable {name!r} declares {count} states but lists "
                                        f"{len(states)}: {', '.join(states)}", line)
                elif item == "property":
                    tok.skip_to(";")
                else:
                    raise tok.error(f"in variable {name!r}: expected 'type' or 'property', got "
                                    f"{item!r}")
            tok.take("}")
            if states is None:
                raise tok.error(f"variable {name!r} has no 'type discrete [k] {{...}};' line",
                                line)
            variables[name] = (states, line)
        elif kw == "probability":
            tok.take("(", "after 'probability'")
            name = tok.take(what="a variable name")
            pa: list[str] = []
            if tok.peek() == "|":
                tok.take("|")
                pa = tok.list_until(")", "parent name")
            else:
                tok.take(")", f"after 'probability ( {name}'")
            tok.take("{", f"after 'probability ( {name} ... )'")
            entries = []
            while tok.peek() != "}":
                if tok.peek() is None:
                    raise tok.error(f"unexpected end of file in the table of {name!r} (opened "
                                    f"at line {line})")
                eline = tok.line()
                head = tok.take() if tok.peek() != "(" else tok.take("(")
                if head in ("table", "default"):
                    entries.append((head, None, eline, _numbers(tok, f"table of {name!r}")))
                elif head == "(":
                    config = tok.list_until(")", "parent state")
                    entries.append(("row", config, eline, _numbers(tok, f"table of {name!r}")))
                elif head == "property":
                    tok.skip_to(";")
                else:
                    raise tok.error(f"in the table of {name!r}: expected 'table', 'default', "
                                    f"'(' or 'property', got {head!r}")
            tok.take("}")
            if name in tables:
                raise tok.error(f"variable {name!r} has two probability blocks", line)
            tables[name] = (pa, line, {})
            blocks.append((name, pa, line, entries))
        else:
            raise tok.error(f"expected 'network', 'variable' or 'probability', got {kw!r}",
                            line)
    if not variables:
        raise BIFError("no 'variable' blocks: this is not a BIF network", source)
    for name, pa, line, entries in blocks:
        for v in [name, *pa]:
            if v not in variables:
                raise BIFError(f"probability block names undeclared variable {v!r}", source,
                               line)
        card = len(variables[name][0])
        rows = tables[name][2]
        n_configs = math.prod(len(variables[p][0]) for p in pa)
        has_default = False
        for kind, config, eline, values in entries:
            expected = card * (n_configs if kind == "table" else 1)
            if len(values) != expected:
                raise BIFError(f"the table of {name!r} needs {expected} probabilities here, got "
                               f"{len(values)}", source, eline)
            _check_sums(name, pa, kind, config, values, variables, source, eline)
            if kind == "default":
                has_default = True
            elif kind == "row":
                if len(config) != len(pa):
                    raise BIFError(f"the table of {name!r} has parents ({', '.join(pa)}) but "
                                   f"this row names {len(config)} states", source, eline)
                for p, s in zip(pa, config):
                    if s not in variables[p][0]:
                        raise BIFError(f"in the table of {name!r}: {s!r} is not a state of "
                                       f"{p!r} (states: {', '.join(variables[p][0])})", source,
                                       eline)
                rows[tuple(config)] = eline
            elif kind == "table" and not pa:
                rows[()] = eline
        if not has_default and not any(k == "table" for k, *_ in entries):
            missing = n_configs - len(rows)
            if missing:
                combos = itertools.product(*(variables[p][0] for p in pa))
                first = next(c for c in combos if c not in rows)
                raise BIFError(f"the table of {name!r} lacks {missing} parent configuration(s), "
                               f"e.g. ({', '.join(f'{p}={s}' for p, s in zip(pa, first))})",
                               source, line)
    for name, (_, line) in variables.items():
        if name not in tables:
            raise BIFError(f"variable {name!r} has no probability block", source, line)
    return {"variables": variables, "tables": tables}


def _read_text(path_or_text) -> tuple[str, str]:
    """(text, source label) from a path (plain or gzip) or the BIF text itself."""
    if isinstance(path_or_text, bytes):
        data, source = path_or_text, "<bytes>"
    elif isinstance(path_or_text, Path) or ("{" not in path_or_text
                                              and "\n" not in path_or_text):
        path = Path(path_or_text)
        if not path.is_file():
            raise FileNotFoundError(f"read_bif: no file {str(path)!r}")
        data, source = path.read_bytes(), str(path)
    else:
        return path_or_text, "<BIF text>"
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise BIFError(f"not a valid gzip file ({e})", source) from None
    try:
        return data.decode("utf-8"), source
    except UnicodeDecodeError as e:
        raise BIFError(f"not UTF-8 text ({e})", source) from None


_PARSED: dict[str, tuple] = {}


def _file_order_topological(names: list[str], parent_names: dict) -> list[str]:
    """SDI's node order: repeated passes over the file order, taking each node whose parents
    are all placed (``BifGraph._toposort`` in the official code)."""
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(names):
        before = len(order)
        for v in names:
            if v not in placed and set(parent_names[v]) <= placed:
                order.append(v)
                placed.add(v)
        if len(order) == before:
            break
    return order


def read_bif(path_or_text, name: str | None = None) -> BayesianNetwork:
    """A BayesianNetwork from a BIF file (path, plain or .gz) or BIF text, parsed by pgmpy's
    ``BIFReader`` after a structural check that reports errors with their line. Nodes are put
    in topological order as SDI's loader does (file order where the graph allows). Raises
    BIFError for a file that does not parse (file and line) or a table row that does not sum
    to 1 (node and parent configuration)."""
    text, source = _read_text(path_or_text)
    key = hashlib.sha256(text.encode()).hexdigest()
    if key not in _PARSED:
        _PARSED[key] = _parse_bif(text, source)
    names, states, adj, cpts = _PARSED[key]
    if name is None and source not in ("<BIF text>", "<bytes>"):
        name = Path(source).name.split(".")[0]
    return BayesianNetwork(adj, [c.copy() for c in cpts], names, states, name)


def _parse_bif(text: str, source: str) -> tuple:
    scan = _scan_bif(text, source)
    variables, tables = scan["variables"], scan["tables"]
    file_names = list(variables)
    parent_names = {v: tables[v][0] for v in file_names}
    file_adj = np.zeros((len(file_names), len(file_names)), dtype=np.int64)
    for j, v in enumerate(file_names):
        for p in parent_names[v]:
            file_adj[file_names.index(p), j] = 1
    try:
        check_dag(file_adj, file_names, f"{source}: the network")
    except ValueError as e:
        raise BIFError(str(e).split(": ", 1)[-1], source) from None
    names = _file_order_topological(file_names, parent_names)
    index = {v: k for k, v in enumerate(names)}

    from pgmpy.readwrite import BIFReader  # slow import (seconds): only when reading

    try:
        model = BIFReader(string=text).get_model()
    except Exception as e:  # pgmpy's parser errors are bare AttributeError/KeyError
        raise BIFError(f"pgmpy's BIFReader failed: {type(e).__name__}: {e}", source) from None
    adj = np.zeros((len(names), len(names)), dtype=np.int64)
    states, cpts = [], []
    for v in names:
        for p in parent_names[v]:
            adj[index[p], index[v]] = 1
    for v in names:
        own_states = variables[v][0]
        cpd = model.get_cpds(v)
        values = np.asarray(cpd.values, dtype=np.float64)
        axes_vars = list(cpd.variables)
        # Reorder each axis's states to the file's order, by name.
        for ax, var in enumerate(axes_vars):
            got = [str(s) for s in cpd.state_names[var]]
            want = variables[var][0]
            if got != want:
                values = np.take(values, [got.index(s) for s in want], axis=ax)
        pa = sorted(parent_names[v], key=index.__getitem__)
        perm = [axes_vars.index(p) for p in pa] + [0]
        cpt = np.transpose(values, perm)
        sums = cpt.sum(axis=-1)
        bad = np.argwhere(np.abs(sums - 1.0) > SUM_TOLERANCE)
        if len(bad):
            idx = tuple(int(i) for i in bad[0])
            config = tuple(variables[p][0][i] for p, i in zip(pa, idx))
            file_config = tuple(dict(zip(pa, config))[p] for p in parent_names[v])
            rows = tables[v][2]
            line = rows.get(file_config, tables[v][1])
            text_config = ", ".join(f"{p}={s}" for p, s in zip(pa, config)) or "no parents"
            raise BIFError(f"the CPT of node {v!r} does not sum to 1 for parent configuration "
                           f"({text_config}): it sums to {sums[idx]:.6g}", source, line)
        states.append(list(own_states))
        cpts.append(cpt / sums[..., None])
    return names, states, adj, cpts


def load_bif(name: str, root=None) -> BayesianNetwork:
    """One of the bnlearn benchmark networks (asia, sachs, alarm, child, insurance) from
    ``bnlearn_bif/<name>.bif.gz``, found like every flowgrad dataset (``root``,
    ``$FLOWGRAD_DATA``, ``../shared/data``; checksums verified)."""
    from ..datasets.files import locate

    file = f"{name}.bif.gz"
    if name not in BIF_NETWORKS:
        raise ValueError(f"load_bif: unknown network {name!r}; available: "
                         f"{', '.join(BIF_NETWORKS)} (or read_bif(path) for any BIF file)")
    folder = locate("bnlearn_bif", [file], root=root, download=False,
                    checksums={file: BIF_CHECKSUMS[file]})
    return read_bif(folder / file, name=name)
