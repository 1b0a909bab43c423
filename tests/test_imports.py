"""The package's module-level imports form no cycle, and the layers point one way (read from the source, by ast).

Importing ``helpers.a.b`` runs ``helpers/a/__init__.py`` first, so an import is an edge to the module and to
each package above it that the importing module is not already inside.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "helpers"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: its body, including try/if blocks, but not
    ``if TYPE_CHECKING:`` blocks, functions or classes' methods."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if "TYPE_CHECKING" not in test:
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With, ast.ClassDef)):
                visit(node.body)

    visit(tree.body)
    return found


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The helpers modules a statement makes Python execute (the module, its packages, imported submodules)."""
    names: set[str] = set()
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        if node.level:
            package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        names = {base} | {f"{base}.{alias.name}" for alias in node.names}
    out: set[str] = set()
    for name in names:
        if not (name == "helpers" or name.startswith("helpers.")):
            continue
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            # a package the importer lives in is already being initialised: no edge to it
            if prefix in MODULES and not (module == prefix or module.startswith(prefix + ".")):
                out.add(prefix)
    return out


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in _top_level_imports(tree):
            edges |= _targets(module, node)
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_a_package_import_runs_its_init() -> None:
    statement = ast.parse("from helpers.evaluation.pixel import pixel_auc").body[0]
    assert _targets("helpers.analyze", statement) == {"helpers.evaluation", "helpers.evaluation.pixel"}
    # inside the package its __init__ is already running: only the submodule is an edge
    assert _targets("helpers.evaluation.protocol", statement) == {"helpers.evaluation.pixel"}


def test_no_import_cycles_in_the_package() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def _importers_of(target_prefixes: tuple[str, ...]) -> dict[str, set[str]]:
    graph = import_graph()
    return {module: {t for t in edges if t.startswith(target_prefixes)} for module, edges in graph.items()}


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        # datasets and forensics sit below everything that learns or decides (the metric leaves may be used)
        ("helpers.datasets", ("helpers.models", "helpers.detectors", "helpers.evaluation.protocol",
                              "helpers.evaluation.cli", "helpers.inference", "helpers.analyze", "helpers.workbook")),
        ("helpers.forensics", ("helpers.models", "helpers.detectors", "helpers.evaluation.protocol",
                               "helpers.evaluation.cli", "helpers.inference", "helpers.analyze", "helpers.workbook")),
        ("helpers.models", ("helpers.detectors", "helpers.evaluation.protocol", "helpers.analyze", "helpers.workbook")),
        ("helpers.detectors", ("helpers.evaluation.protocol", "helpers.evaluation.cli", "helpers.analyze",
                               "helpers.workbook")),
        ("helpers.evaluation", ("helpers.analyze", "helpers.workbook")),
    ],
)
def test_layers_point_one_way(layer: str, forbidden: tuple[str, ...]) -> None:
    offending = {module: sorted(targets) for module, targets in _importers_of(forbidden).items()
                 if (module == layer or module.startswith(layer + ".")) and targets}
    assert not offending, f"{layer} imports layers above it: {offending}"


def test_only_the_command_line_imports_the_workbook_runner() -> None:
    importers = {module for module, targets in _importers_of(("helpers.workbook",)).items()
                 if targets and not module.startswith("helpers.workbook")}
    assert importers <= {"helpers.__main__", "helpers.cli"}, importers


# A package module imports its peers at the top; the few that wait do so for a reason a user feels.
DEFERRED_INTERNAL_IMPORTS = {
    "helpers.__main__": "each subcommand loads its own modules: `--help` and argument errors answer at once",
    "helpers.evaluation.cli": "arguments and --out are checked before Keras and the detectors load",
    "helpers.forensics": "the feature cache is an attribute loaded on first use (PEP 562 __getattr__)",
    "helpers.detectors": "the learned detectors' module starts TensorFlow (11 s): loaded on first use (PEP 562)",
}


def test_no_module_imports_its_peers_inside_a_function() -> None:
    """Imports of ``helpers`` modules inside functions hide cycles; only the listed, reasoned exceptions remain."""
    found = []
    for module, path in MODULES.items():
        if module in DEFERRED_INTERNAL_IMPORTS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "helpers":
                    found.append(f"{module}:{node.lineno} from {node.module} import ...")
                elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "helpers" for a in node.names):
                    found.append(f"{module}:{node.lineno} import {', '.join(a.name for a in node.names)}")
    assert not found, "move these imports to the top of their module:\n" + "\n".join(found)
