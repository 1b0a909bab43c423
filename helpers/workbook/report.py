"""``runs/<profile>/index.html``: a run a person can look at without Jupyter.

Serves ``python -m helpers workbook``, which rebuilds the page after every notebook. For each executed notebook
it writes ``NN_name.html`` beside it (nbconvert's ``HTMLExporter``) and copies its most telling figures into
``figures/`` as PNG files; ``index.html`` then links every rendered notebook and shows the verdict, the headline
figures, the results table and those figures inline. Everything it links is relative, so the run folder can be
copied or zipped whole.

Which figures: up to :data:`FIGURES_PER_NOTEBOOK` per notebook, one per cell (the cell's largest PNG), from
the cells tagged :data:`REPORT_FIGURE_TAG` when a notebook tags any, else from its last cells that draw one: a
notebook builds up to its results, so its closing figures are the ones to look at. Shown in notebook order.

nbformat and nbconvert are imported inside the functions that render: notebooks import
:mod:`helpers.workbook` for ``save_metrics`` and should not load the renderer.
"""

from __future__ import annotations

import base64
import binascii
import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.atomic import atomic_write_bytes, atomic_write_text
from helpers.workbook.summary import (
    SUMMARY_JSON,
    SUMMARY_MD,
    NotebookResult,
    WorkbookResult,
    table_columns,
    environment_line,
    fmt_value,
    format_bytes,
    headline_figures,
    read_summary,
    results_table,
    table_cell,
    verdict,
)

__all__ = [
    "INDEX_FILE",
    "FIGURES_DIR",
    "FIGURES_PER_NOTEBOOK",
    "REPORT_FIGURE_TAG",
    "Figure",
    "render_notebook_html",
    "extract_figures",
    "build_index",
]

INDEX_FILE = "index.html"
FIGURES_DIR = "figures"
FIGURES_PER_NOTEBOOK = 3
REPORT_FIGURE_TAG = "report-figure"
"""Cell tag a notebook may put on the cells whose figures belong on the index page."""

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; } h3 { margin-bottom: .3rem; }
table { border-collapse: collapse; margin: .5rem 0; } th, td { border: 1px solid #ddd; padding: .25rem .5rem; }
th { background: #f4f4f4; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #17692b; } .failed { color: #b00020; } .skipped, .pending { color: #777; }
.verdict { font-weight: 600; } .warning { background: #fff4e5; padding: .4rem .6rem; border-left: 4px solid #f90; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure { margin: 0; max-width: 100%; } figure img { max-width: 100%; max-height: 28rem; border: 1px solid #eee; }
figcaption, .muted { color: #666; font-size: .85rem; }
"""


@dataclass(frozen=True)
class Figure:
    """One PNG output of an executed notebook, saved as a file."""

    path: Path
    cell: int
    """Index of the cell that drew it, in the executed notebook."""
    size: int
    """Bytes of the PNG."""


# --------------------------------------------------------------------------------------------------------------
# Per notebook
# --------------------------------------------------------------------------------------------------------------


def render_notebook_html(executed: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Render an executed notebook to HTML beside it (``NN_name.html``); skipped when that is already newer."""
    import nbformat
    from nbconvert import HTMLExporter

    source = Path(executed)
    target = source.with_suffix(".html")
    if not force and target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    try:
        node = nbformat.read(str(source), as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises several kinds; all mean "not a notebook"
        raise ValueError(f"cannot read executed notebook {source}: {exc}") from None
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(node)
    return atomic_write_text(target, body)


def _png_outputs(node: Any) -> list[tuple[int, bool, bytes]]:
    """``(cell index, tagged, png bytes)`` of every PNG output, in notebook order."""
    found: list[tuple[int, bool, bytes]] = []
    for index, cell in enumerate(node.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        tagged = REPORT_FIGURE_TAG in ((cell.get("metadata") or {}).get("tags") or [])
        for output in cell.get("outputs", []):
            data = (output.get("data") or {}).get("image/png")
            if not data:
                continue
            text = "".join(data) if isinstance(data, list) else str(data)
            try:
                png = base64.b64decode(text, validate=False)
            except (binascii.Error, ValueError):
                continue
            if png.startswith(_PNG_MAGIC):
                found.append((index, tagged, png))
    return found


def extract_figures(
    executed: str | os.PathLike[str], figures_dir: str | os.PathLike[str], *, limit: int = FIGURES_PER_NOTEBOOK
) -> list[Figure]:
    """Save ``limit`` figures of an executed notebook (see the module's notes) as ``figures_dir/<stem>-<k>.png``.

    Older figures of the same notebook are removed first, so a rerun never shows a stale one.
    """
    import nbformat

    source = Path(executed)
    folder = Path(figures_dir)
    try:
        node = nbformat.read(str(source), as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises several kinds; all mean "not a notebook"
        raise ValueError(f"cannot read executed notebook {source}: {exc}") from None
    per_cell: dict[int, tuple[int, bool, bytes]] = {}
    for item in _png_outputs(node):  # one figure per cell: its largest
        if item[0] not in per_cell or len(item[2]) > len(per_cell[item[0]][2]):
            per_cell[item[0]] = item
    cells = [per_cell[index] for index in sorted(per_cell)]
    tagged = [item for item in cells if item[1]]
    pool = tagged if tagged else cells
    picked = pool[-limit:] if limit > 0 else []
    for old in folder.glob(f"{source.stem}-*.png"):
        old.unlink()
    figures = []
    for number, (cell, _, png) in enumerate(picked, start=1):
        path = atomic_write_bytes(folder / f"{source.stem}-{number}.png", png)
        figures.append(Figure(path=path, cell=cell, size=len(png)))
    return figures


# --------------------------------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _href(path: Path, root: Path) -> str:
    return _e(Path(os.path.relpath(path, root)).as_posix())


def _results_html(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = table_columns(rows)
    if not columns:
        return "<p class='muted'>(empty results table)</p>"
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            kind = " class='num'" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
            cells.append(f"<td{kind}>{_e(table_cell(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _notebook_row(nb: NotebookResult, root: Path, pages: Mapping[str, Path]) -> str:
    page = pages.get(nb.name)
    name = f"<a href='{_href(page, root)}'>{_e(nb.name)}</a>" if page else _e(nb.name)
    executed = root / f"{nb.name}.ipynb"
    raw = f" <a class='muted' href='{_href(executed, root)}'>.ipynb</a>" if page and executed.is_file() else ""
    if nb.status == "ok":
        figures = headline_figures(nb.name, nb.metrics)
        detail = " · ".join(f"{_e(label)} <b>{_e(fmt_value(value))}</b>" for label, value in figures) or "(no metrics)"
    elif nb.status == "failed":
        cell = f"cell {nb.failed_cell}: " if nb.failed_cell is not None else ""
        detail = f"<span class='failed'>{_e(cell + (nb.error or 'failed'))}</span>"
    else:
        detail = "<span class='muted'>not run: an earlier notebook failed</span>"
    return (f"<tr><td>{name}{raw}</td><td class='{_e(nb.status)}'>{_e(nb.status)}</td>"
            f"<td class='num'>{nb.wall_seconds:.1f}</td><td>{detail}</td></tr>")


def render_index(result: WorkbookResult, root: Path, pages: Mapping[str, Path],
                 figures: Mapping[str, Sequence[Figure]]) -> str:
    """The page itself, from the run's record, the rendered notebooks and the saved figures."""
    title = f"Workbook run: profile {result.profile}, seed {result.seed}, {result.started.replace('T', ' ')}"
    status_class = "ok" if result.ok else ("failed" if result.failure is not None else "pending")
    parts = [
        "<!doctype html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{_e(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='verdict {status_class}'>{_e(verdict(result))}</p>",
        *[f"<p class='warning'>{_e(warning)}</p>" for warning in result.warnings],
        f"<p class='muted'>Full record: <a href='{SUMMARY_MD}'>{SUMMARY_MD}</a> · <a href='{SUMMARY_JSON}'>"
        f"{SUMMARY_JSON}</a> · <a href='metrics/'>metrics/</a>. Each notebook name opens the notebook as it ran, "
        "outputs included.</p>",
        "<table><thead><tr><th>notebook</th><th>status</th><th>wall s</th><th>headline figures</th></tr></thead>",
        "<tbody>",
        *[_notebook_row(nb, root, pages) for nb in result.notebooks],
        *[f"<tr><td>{_e(name)}</td><td class='pending'>pending</td><td></td><td></td></tr>"
          for name in result.planned if name not in {nb.name for nb in result.notebooks}],
        "</tbody></table>",
    ]
    table = results_table(result)
    if table is not None:
        source, rows = table
        parts += ["<h2>Results</h2>", f"<p class='muted'>Recorded by {_e(source)}.</p>", _results_html(rows)]
    if any(figures.values()):
        parts.append("<h2>Figures</h2>")
        for nb in result.notebooks:
            shown = figures.get(nb.name) or []
            if not shown:
                continue
            page = pages.get(nb.name)
            heading = f"<a href='{_href(page, root)}'>{_e(nb.name)}</a>" if page else _e(nb.name)
            parts += [f"<h3>{heading}</h3>", "<div class='figures'>"]
            for figure in shown:
                parts.append(f"<figure><img src='{_href(figure.path, root)}' alt='{_e(nb.name)}, cell {figure.cell}' "
                             f"loading='lazy'><figcaption>cell {figure.cell}</figcaption></figure>")
            parts.append("</div>")
    written = "".join(
        f"<li><code>{_e(item.get('path'))}</code>: {_e(format_bytes(int(item.get('bytes', 0))))}"
        f" in {_e(item.get('files', 1))} file(s)</li>"
        for item in result.largest_writes
    )
    parts += [
        "<h2>Run</h2>",
        f"<p>Data root <code>{_e(result.data_root)}</code>; run folder <code>{_e(result.out_dir)}</code>; "
        f"per-cell timeout {_e(result.cell_timeout if result.cell_timeout is not None else 'none')}"
        f"{' s' if result.cell_timeout is not None else ''}.</p>",
        f"<p>Where the run's bytes went (<code>&lt;run&gt;</code>: the run folder, <code>&lt;data&gt;</code>: the "
        f"data root):</p><ul>{written}</ul>" if written else "",
        f"<p class='muted'>Environment: {_e(environment_line(result.environment))}</p>",
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def build_index(run_dir: str | os.PathLike[str]) -> Path:
    """Render every executed notebook of a run folder, save their key figures, write ``index.html``; its path.

    Reads the run from ``summary.json`` (a missing or foreign summary is an error). A notebook whose executed
    copy is missing or unreadable is listed without a link rather than stopping the page.
    """
    root = Path(run_dir).resolve()
    result = read_summary(root)
    pages: dict[str, Path] = {}
    figures: dict[str, list[Figure]] = {}
    for nb in result.notebooks:
        executed = root / f"{nb.name}.ipynb"
        if nb.status == "skipped" or not executed.is_file():
            continue
        try:
            pages[nb.name] = render_notebook_html(executed)
            figures[nb.name] = extract_figures(executed, root / FIGURES_DIR)
        except ValueError:
            continue
    return atomic_write_text(root / INDEX_FILE, render_index(result, root, pages, figures))
