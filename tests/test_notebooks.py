"""The notebooks as committed: no outputs, one literal `parameters` cell, a Colab header, metrics at the end."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from helpers.workbook import KERNEL_NAME, discover_notebooks

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = discover_notebooks(NOTEBOOKS_DIR)
PARAMETER_NAMES = {"profile", "data_root", "seed", "run_dir"}


def test_notebooks_exist_with_unique_numbers_starting_at_01() -> None:
    assert NOTEBOOKS, "no notebooks found"
    numbers = [int(path.name[:2]) for path in NOTEBOOKS]
    assert numbers[0] == 1 and len(set(numbers)) == len(numbers), f"duplicate numbers or no 01 in {numbers}"
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name) for path in NOTEBOOKS)


@pytest.fixture(params=NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def notebook(request: pytest.FixtureRequest) -> tuple[Path, nbformat.NotebookNode]:
    path: Path = request.param
    node = nbformat.read(path, as_version=4)
    nbformat.validate(node)
    return path, node


def test_committed_without_outputs(notebook) -> None:
    path, node = notebook
    for index, cell in enumerate(node.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} cell {index} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"


def test_exactly_one_parameters_cell_of_plain_literals(notebook) -> None:
    path, node = notebook
    tagged = [i for i, c in enumerate(node.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters', need exactly one"
    cell = node.cells[tagged[0]]
    assert cell.cell_type == "code"
    names = set()
    for statement in ast.parse(cell.source).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, (
            f"{path.name}: the parameters cell may only assign literals, found: {ast.unparse(statement)}"
        )
        target = statement.targets[0]
        assert isinstance(target, ast.Name)
        ast.literal_eval(statement.value)  # raises for anything but a literal
        names.add(target.id)
    assert PARAMETER_NAMES <= names, f"{path.name}: parameters cell lacks {PARAMETER_NAMES - names}"
    following = node.cells[tagged[0] + 1 :]
    assert any(c.cell_type == "code" for c in following), "derived values belong in a cell after the parameters"


def test_colab_header(notebook) -> None:
    path, node = notebook
    first = node.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "colab.research.google.com/assets/colab-badge.svg" in first.source
    assert f"notebooks/{path.name})" in first.source, "the badge must open this very notebook"
    tagged = next(i for i, c in enumerate(node.cells) if "parameters" in c.metadata.get("tags", []))
    install = [c for c in node.cells[:tagged] if c.cell_type == "code"]
    assert len(install) == 1, "one install cell before the parameters"
    assert 'if "google.colab" in sys.modules:' in install[0].source and "pip" in install[0].source


def test_fixed_kernel_and_metrics_at_the_end(notebook) -> None:
    path, node = notebook
    assert node.metadata["kernelspec"]["name"] == KERNEL_NAME
    last_code = [c for c in node.cells if c.cell_type == "code"][-1]
    assert f'save_metrics(run_dir, "{path.stem}",' in last_code.source, (
        f"{path.name}: the last code cell must record metrics with save_metrics(run_dir, \"{path.stem}\", ...)"
    )


def test_notebooks_import_logic_from_helpers_instead_of_defining_it(notebook) -> None:
    path, node = notebook
    for index, cell in enumerate(node.cells):
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        defined = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert not defined, f"{path.name} cell {index} defines {defined}: logic lives in helpers"
