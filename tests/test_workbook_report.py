"""index.html: a tiny run folder of two executed notebooks with figures, rendered and linked without Jupyter."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest
from PIL import Image

from helpers.workbook import NotebookResult, WorkbookResult, build_index, save_metrics, write_summary
from helpers.workbook.report import FIGURES_PER_NOTEBOOK, REPORT_FIGURE_TAG, extract_figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png(width: int, height: int, seed: int) -> str:
    """A noisy PNG (noise does not compress, so a larger image is a larger file), base64 as in a notebook."""
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_cell(source: str, *images: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": image, "text/plain": "<Figure>"})
                    for image in images]
    cell.metadata["tags"] = list(tags)
    return cell


def executed_notebook(path: Path, cells: list[nbformat.NotebookNode]) -> Path:
    node = nbformat.v4.new_notebook()
    node.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    text = nbformat.v4.new_code_cell("print('hello from the run')", execution_count=1)
    text.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello from the run\n")]
    node.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), text, *cells]
    nbformat.write(node, str(path))
    return path


class Links(HTMLParser):
    """Every ``href`` and ``img src`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])
        if tag == "img" and values.get("src"):
            self.images.append(values["src"])


def local(root: Path, link: str) -> Path | None:
    parsed = urlparse(link)
    if parsed.scheme or parsed.netloc or not parsed.path:
        return None  # the page itself links nothing outside the run folder (asserted below)
    return root / unquote(parsed.path)


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    small, middle, large, huge = (png(40, 30, 1), png(80, 60, 2), png(160, 120, 3), png(320, 240, 4))
    executed_notebook(run / "01_data.ipynb", [figure_cell("plot()", small), figure_cell("plot(2)", huge, middle),
                                              figure_cell("plot(3)", large), figure_cell("plot(4)", small)])
    executed_notebook(run / "02_model.ipynb", [figure_cell("hist()", huge), figure_cell("chosen()", small,
                                                                                        tags=(REPORT_FIGURE_TAG,))])
    save_metrics(run, "01_data", {"samples": 200, "curve": list(range(100))})
    table = [{"dataset": "fixtures", "predictor": "all tampered (floor)", "pixel_f1": 0.21},
             {"dataset": "fixtures", "predictor": "mask <model>", "pixel_f1": 0.4}]
    save_metrics(run, "02_model", {"headline": {"test AUC": 0.91}, "results_table": table})
    result = WorkbookResult(
        profile="smoke", seed=0, data_root=str(tmp_path / "data"), out_dir=str(run),
        notebooks=[NotebookResult("01_data", "ok", 1.5, {"samples": 200}, str(run / "01_data.ipynb")),
                   NotebookResult("02_model", "ok", 2.5, {"headline": {"test AUC": 0.91}, "results_table": table},
                                  str(run / "02_model.ipynb")),
                   NotebookResult("03_never", "skipped")],
        started="2026-01-01T10:00:00+00:00", wall_seconds=5.0, environment={"python": "3.11"},
        planned=["01_data", "02_model", "03_never"], bytes_written=2_000_000, write_budget_bytes=100_000_000,
        largest_writes=[{"path": "01_data.ipynb", "bytes": 1_000_000}],
    )
    write_summary(result, run)
    return run


def test_index_links_every_rendered_notebook_and_shows_figures(run_folder: Path) -> None:
    index = build_index(run_folder)

    assert index == run_folder / "index.html"
    page = index.read_text(encoding="utf-8")
    links = Links()
    links.feed(page)
    assert links.hrefs and links.images
    for link in links.hrefs + links.images:
        target = local(run_folder, link)
        assert target is not None, f"{link} leaves the run folder"
        assert target.exists(), f"{link} does not resolve"
    for name in ("01_data", "02_model"):
        rendered = run_folder / f"{name}.html"
        assert f"href='{name}.html'" in page and rendered.is_file()
        assert "hello from the run" in rendered.read_text(encoding="utf-8")  # the notebook, outputs included
    assert "03_never.html" not in page and not (run_folder / "03_never.html").exists()
    for image in links.images:
        assert (run_folder / image).read_bytes().startswith(PNG_MAGIC)
    by_notebook = {name: [i for i in links.images if Path(i).name.startswith(name)] for name in ("01_data", "02_model")}
    assert len(by_notebook["01_data"]) == FIGURES_PER_NOTEBOOK
    assert len(by_notebook["02_model"]) == 1  # a notebook that tags figures shows those only
    assert "samples <b>200</b>" in page and "test AUC <b>0.91</b>" in page
    assert "mask &lt;model&gt;" in page and "<td class='num'>0.400</td>" in page  # results table, escaped
    assert "not run: an earlier notebook failed" in page


def test_figures_are_the_closing_ones_one_per_cell_and_never_stale(run_folder: Path) -> None:
    figures = extract_figures(run_folder / "01_data.ipynb", run_folder / "figures")
    # cells: 0 markdown, 1 text, 2 small, 3 huge + middle, 4 large, 5 small -> the last three drawing cells, in
    # order, each by its largest figure
    assert [(f.cell, f.path.name) for f in figures] == [(3, "01_data-1.png"), (4, "01_data-2.png"),
                                                        (5, "01_data-3.png")]
    sizes = [f.size for f in figures]
    assert sizes[0] > sizes[1] > sizes[2]  # huge (not middle, from the same cell), large, small
    fewer = extract_figures(run_folder / "01_data.ipynb", run_folder / "figures", limit=1)
    assert [(f.cell, f.path.name) for f in fewer] == [(5, "01_data-1.png")]
    assert sorted(p.name for p in (run_folder / "figures").glob("01_data-*.png")) == ["01_data-1.png"]


def test_index_needs_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="summary.json"):
        build_index(tmp_path)
