"""Imports flow one way: no circle between guimo's modules, serving never reaches training code,
and no module takes another module's ``_private`` names.

The graph is read from the source (``ast``), so it holds every import a module can make:
module-level ones and those inside functions (guimo imports torch and heavy parts lazily, and a
lazy import is still a dependency). Imports under ``if TYPE_CHECKING:`` are left out: they never
run. A scenario is reached by name at run time (``guimo.scenarios.get``), which no import
statement shows; what serving calls on it is ``load_predictor``, so the imports inside each
scenario's ``load_predictor`` count as serving's.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import guimo

ROOT = Path(guimo.__file__).resolve().parent

# What serving must never import, directly or through anything it imports (the price table under
# guimo.scale, which billing reads, is data, not training).
TRAINING = ("guimo.train", "guimo.optimize", "guimo.pipeline.runner", "guimo.scale.sweep", "guimo.scale.execute")
# guimo.train.config is the TrainConfig dataclass that every scenario's config holds (a run's
# manifest is parsed with it); it imports nothing but dataclasses and typing.
ALLOWED_FOR_SERVING = ("guimo.train.config",)


@dataclass
class Edge:
    target: str  # module imported
    line: int
    names: tuple[str, ...] = ()  # names taken with `from target import ...`
    function: str | None = None  # the enclosing function, if the import is lazy


@dataclass
class Graph:
    files: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, list[Edge]] = field(default_factory=dict)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool):
    """(node, absolute module, enclosing function) for every runtime import in ``tree``."""

    def visit(node: ast.AST, function: str | None):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    yield from visit(sub, function)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield child, alias.name, function
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: resolve against this module's package
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                yield child, target, function
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            yield from visit(child, inner)

    yield from visit(tree, None)


def build_graph() -> Graph:
    g = Graph()
    for path in sorted(ROOT.rglob("*.py")):
        g.files[module_name(path)] = path
    for name, path in g.files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges = []
        for node, target, function in _imports(tree, name, path.name == "__init__.py"):
            if not (target == "guimo" or target.startswith("guimo.")):
                continue
            if isinstance(node, ast.ImportFrom):
                # `from guimo.x import y` runs guimo/x/__init__.py first, so it is always an edge to
                # guimo.x (a package's __init__ counts), and also to guimo.x.y where y is a module.
                names = []
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in g.files:
                        edges.append(Edge(sub, node.lineno, (), function))
                    else:
                        names.append(alias.name)
                edges.append(Edge(target, node.lineno, tuple(names), function))
            else:
                edges.append(Edge(target, node.lineno, (), function))
        g.edges[name] = [e for e in edges if e.target in g.files and e.target != name]
    return g


def cycles(g: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for e in g.edges[v]:
            w = e.target
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(_closed_path(g, set(comp)))

    for v in sorted(g.files):
        if v not in index:
            strong(v)
    return found


def _closed_path(g: Graph, comp: set[str]) -> list[str]:
    """One circle through the component, as 'module:line' hops, for the failure message."""
    start = min(comp)
    path, seen, v = [start], {start}, start
    while True:
        nxt = next(e for e in sorted(g.edges[v], key=lambda e: e.target) if e.target in comp)
        path[-1] = f"{v}:{nxt.line}"
        if nxt.target in seen:
            return path[path.index(next(p for p in path if p.split(":")[0] == nxt.target)):] + [nxt.target]
        path.append(nxt.target)
        seen.add(nxt.target)
        v = nxt.target


def serving_roots(g: Graph) -> dict[str, str]:
    """Modules serving starts from -> why: every guimo.serve module, and the imports inside each
    scenario's ``load_predictor`` (serving calls it on the scenario a run names)."""
    roots = {m: "under guimo/serve" for m in g.files if m == "guimo.serve" or m.startswith("guimo.serve.")}
    for name in g.files:
        if name.startswith("guimo.scenarios."):
            for e in g.edges[name]:
                if e.function == "load_predictor":
                    roots.setdefault(e.target, f"{name}.load_predictor imports it")
    return roots


def reachable(g: Graph, roots: dict[str, str]) -> dict[str, list[str]]:
    """Module -> one import path from a root to it."""
    paths = {r: [r] for r in roots}
    todo = list(roots)
    while todo:
        v = todo.pop()
        for e in g.edges[v]:
            if e.target not in paths:
                paths[e.target] = paths[v] + [f"{e.target} (line {e.line} of {v})"]
                todo.append(e.target)
    return paths


def test_no_import_cycle():
    found = cycles(build_graph())
    assert not found, "import circles (module:line -> ...):\n" + "\n".join(" -> ".join(c) for c in found)


def test_serving_reaches_no_training_code():
    g = build_graph()
    roots = serving_roots(g)
    assert "guimo.inference.recommend" in roots  # the recommend scenario's predictor is among them
    bad = {m: p for m, p in reachable(g, roots).items()
           if m.startswith(TRAINING) and not m.startswith(ALLOWED_FOR_SERVING)}
    assert not bad, "serving imports training code:\n" + "\n".join(" -> ".join(p) for p in bad.values())


def test_no_private_names_taken_from_another_module():
    g = build_graph()
    bad = [f"{m}:{e.line} takes {n} from {e.target}" for m, edges in g.edges.items() for e in edges
           for n in e.names if n.startswith("_") and not n.startswith("__")]
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def test_the_graph_sees_lazy_imports_and_skips_type_checking_ones():
    """The checks above could pass by missing edges: pin a few that must and must not be there."""
    g = build_graph()
    lazy = {(e.target, e.function) for e in g.edges["guimo.pipeline.runner"]}
    assert ("guimo.optimize.stage", "optimize") in lazy  # inside a function
    assert all(e.target != "guimo.train.loop" for e in g.edges["guimo.scenarios.base"])  # under TYPE_CHECKING only
    fit = {e.target for e in g.edges["guimo.scale.fit"]}  # `from guimo.scale import joint` runs guimo/scale/__init__ too
    assert {"guimo.scale.joint", "guimo.scale"} <= fit
    assert cycles(Graph(files={"a": ROOT, "b": ROOT}, edges={"a": [Edge("b", 1)], "b": [Edge("a", 2)]})) == [["a:1", "b:2", "a"]]
