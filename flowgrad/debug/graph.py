"""Look at the recorded flow graph (lectures: "Flow Graph", "Debugging").

The graph that backprop walks is the one the forward pass recorded: every tensor made by an op
keeps ``_ctx`` (its node: ``_ctx.fn`` the op, ``_ctx.parents`` the inputs). Drawing it shows what
backprop will do: a layer missing from the graph of the loss gets no gradient (a ``.detach()``,
``.data`` or NumPy round trip cut it off), a shape that broadcasts where it should not, a
subgraph that is computed twice.

* ``to_dot(t, show_shapes=True, params=None)``: Graphviz DOT text; ops are boxes labelled with
  the op and its output shape, leaves are ellipses labelled with their shape and, when
  ``params`` (``dict(model.named_parameters())``) is given, the parameter's name.
* ``draw_graph(t, path, params=None)``: always writes ``<path>.dot``; ``.svg``/``.png`` are
  rendered by the ``dot`` program (or the ``graphviz`` Python package) when installed, else a
  text rendering is written beside it with a note.
* ``print_graph(t, params=None)`` / ``format_graph``: the graph as indented text.
* ``unreached_parameters(t, params)``: the parameters that are not in the graph of ``t``.

Traversals are iterative: a graph thousands of ops deep (BPTT) is fine. The graph of a tensor
on which ``backward()`` already ran (without ``retain_graph=True``) has been freed; its nodes
are then shown as "freed".
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["to_dot", "draw_graph", "print_graph", "format_graph", "graph_nodes", "GraphDrawing",
           "unreached_parameters"]


def _tensor_type():
    from ..tensor import Tensor

    return Tensor


def _param_names(params) -> dict:
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):  # a Module
        params = dict(params.named_parameters())
    return {id(p): name for name, p in dict(params).items()}


def _parents(t) -> list:
    """The tensor inputs of the node that made ``t`` (empty for a leaf or a freed node)."""
    Tensor = _tensor_type()
    ctx = t._ctx
    if ctx is None or getattr(ctx, "parents", None) is None:
        return []
    return [p for p in ctx.parents if isinstance(p, Tensor)]


def graph_nodes(tensor) -> list:
    """Every tensor of the graph of ``tensor``, outputs before inputs (a reverse topological
    order: each tensor comes after all the tensors computed from it), by iterative DFS."""
    order, seen = [], {id(tensor)}
    stack = [(tensor, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        stack.append((t, True))
        for p in _parents(t):
            if id(p) not in seen:
                seen.add(id(p))
                stack.append((p, False))
    order.reverse()  # post-order reversed: consumers before producers
    return order


def unreached_parameters(tensor, params) -> list[str]:
    """Names of the parameters (``dict(model.named_parameters())`` or the model) that are not in
    the graph of ``tensor``: backprop from it cannot give them a gradient (a detached layer)."""
    if hasattr(params, "named_parameters"):
        params = dict(params.named_parameters())
    reached = {id(t) for t in graph_nodes(tensor)}
    return [name for name, p in dict(params).items() if id(p) not in reached]


def _shape_text(t) -> str:
    return str(tuple(int(s) for s in t.shape)) if t.shape else "scalar"


def _label(t, names: dict, show_shapes: bool) -> tuple[str, str]:
    """(label, kind) with kind one of op / param / input (a leaf that requires grad) / constant
    (a leaf that does not: data, targets, masks) / freed."""
    shape = _shape_text(t) if show_shapes else ""
    ctx = t._ctx
    if ctx is not None:
        op = ctx.fn.__name__
        kind = "freed" if getattr(ctx, "parents", None) is None else "op"
        text = op + (" [freed by backward]" if kind == "freed" else "")
        return (f"{text}\n{shape}" if shape else text), kind
    if id(t) in names:
        return (f"{names[id(t)]}\n{shape}" if shape else names[id(t)]), "param"
    if t._requires_grad:
        return (f"leaf (requires grad)\n{shape}" if shape else "leaf"), "input"
    return (f"input (no grad)\n{shape}" if shape else "input (no grad)"), "constant"


_STYLE = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"',
    "freed": 'shape=box, style="rounded,dashed"',
    "param": 'shape=ellipse, style=filled, fillcolor="#d9f2d9"',
    "input": 'shape=ellipse, style=filled, fillcolor="#fff2cc"',
    "constant": 'shape=ellipse, style=filled, fillcolor="#eeeeee"',
}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(tensor, show_shapes: bool = True, params=None, name: str = "flowgraph") -> str:
    """DOT text of the flow graph that produced ``tensor`` (lecture: "Flow Graph").

    Args:
        tensor: the output (usually the loss).
        show_shapes: put each tensor's shape in its label.
        params: ``dict(model.named_parameters())`` (or the model) to name parameter leaves.

    Example:
        >>> print(to_dot(loss, params=dict(model.named_parameters())))
    """
    names = _param_names(params)
    nodes = graph_nodes(tensor)
    index = {id(t): i for i, t in enumerate(nodes)}
    lines = [f"digraph {name} {{", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    for i, t in enumerate(nodes):
        label, kind = _label(t, names, show_shapes)
        extra = ", penwidth=2" if t is tensor else ""
        lines.append(f"  n{i} [label={_quote(label)}, {_STYLE[kind]}{extra}];")
    for t in nodes:
        for p in _parents(t):
            lines.append(f"  n{index[id(p)]} -> n{index[id(t)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_MAX_INDENT = 30  # deeper levels print their depth instead of more spaces (BPTT graphs)


def format_graph(tensor, show_shapes: bool = True, params=None) -> str:
    """The flow graph of ``tensor`` as indented text, output first, each node's inputs below it
    one level deeper; a subgraph reached twice is printed once and then referred to by its
    number (iterative, so any depth is fine)."""
    names = _param_names(params)
    numbers: dict = {}
    out = []
    stack = [(tensor, 0)]
    while stack:
        t, depth = stack.pop()
        label, kind = _label(t, names, show_shapes)
        label = label.replace("\n", " ")
        pad = "  " * depth if depth <= _MAX_INDENT else "  " * _MAX_INDENT + f"[depth {depth}] "
        if id(t) in numbers:
            out.append(f"{pad}#{numbers[id(t)]} {label.split(' ')[0]} (see above)")
            continue
        numbers[id(t)] = len(numbers) + 1
        tag = {"param": "param ", "input": "", "constant": "", "op": "", "freed": ""}[kind]
        out.append(f"{pad}#{numbers[id(t)]} {tag}{label}")
        for p in reversed(_parents(t)):
            stack.append((p, depth + 1))
    return "\n".join(out) + "\n"


def print_graph(tensor, show_shapes: bool = True, params=None, file=None) -> str:
    """Print the flow graph of ``tensor`` as indented text (see ``format_graph``); returns it."""
    text = format_graph(tensor, show_shapes, params)
    print(text, end="", file=file)
    return text


class GraphDrawing:
    """What ``draw_graph`` wrote: ``dot`` (always), ``image`` (or None), ``text`` (the indented
    fallback, or None) and a ``note`` saying how the image was made or why it was not."""

    def __init__(self, dot: Path, image: Path | None, text: Path | None, note: str) -> None:
        self.dot, self.image, self.text, self.note = dot, image, text, note

    def __repr__(self) -> str:
        image = None if self.image is None else str(self.image)
        return f"GraphDrawing(dot={str(self.dot)!r}, image={image!r}, note={self.note!r})"


def draw_graph(tensor, path, show_shapes: bool = True, params=None) -> GraphDrawing:
    """Write the flow graph of ``tensor``: ``<path>.dot`` always, and the image ``path`` when its
    suffix is ``.svg``/``.png``/``.pdf`` and Graphviz is available (the ``dot`` program, or the
    ``graphviz`` Python package); otherwise a text rendering ``<path>.txt`` with a note.

    Example:
        >>> draw_graph(loss, "results/graph.svg", params=model)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").lower()
    dot_text = to_dot(tensor, show_shapes, params)
    dot_path = path if fmt == "dot" else path.with_suffix(".dot")
    dot_path.write_text(dot_text)
    if fmt == "dot":
        return GraphDrawing(dot_path, None, None, "wrote DOT text only (asked for .dot)")
    if fmt not in ("svg", "png", "pdf"):
        fmt, path = "svg", path.with_suffix(".svg")
    binary = shutil.which("dot")
    error = ""
    if binary is not None:
        try:
            subprocess.run([binary, f"-T{fmt}", str(dot_path), "-o", str(path)], check=True,
                           capture_output=True, timeout=120)
            return GraphDrawing(dot_path, path, None, f"rendered by {binary}")
        except (subprocess.SubprocessError, OSError) as e:
            error = f"dot failed: {e}"
    try:
        import graphviz  # type: ignore[import-not-found]

        graphviz.Source(dot_text).render(outfile=str(path), format=fmt, cleanup=True)
        return GraphDrawing(dot_path, path, None, "rendered by the graphviz Python package")
    except ImportError:
        error = error or "Graphviz is not installed (no `dot` program, no `graphviz` package)"
    except Exception as e:  # the package is there but its `dot` backend is not
        error = f"graphviz could not render: {e}"
    text_path = path.with_suffix(".txt")
    text_path.write_text(format_graph(tensor, show_shapes, params))
    note = (f"{error}; wrote {dot_path.name} (render it with `dot -T{fmt} {dot_path.name}` or "
            f"an online viewer) and the text rendering {text_path.name}")
    return GraphDrawing(dot_path, None, text_path, note)
