"""The workbook runner: execute the notebooks in order, record what they measured, report the run.

Serves ``python -m helpers workbook`` and every notebook (``from helpers.workbook import save_metrics``). One
module per concern:

* :mod:`~helpers.workbook.runner` -- discovery, kernels, papermill execution, failures, bytes written;
* :mod:`~helpers.workbook.metrics` -- ``save_metrics`` / ``load_metrics``, what each notebook's last cell writes;
* :mod:`~helpers.workbook.summary` -- the run's record, ``summary.json`` and the one-page ``summary.md``;
* :mod:`~helpers.workbook.report` -- ``index.html`` with every notebook rendered and the key figures inline;
* :mod:`~helpers.workbook.cli` -- the ``workbook`` subcommand.

None of them imports papermill, nbformat or nbconvert at module level, so a notebook that records its metrics
loads none of the execution machinery.
"""

from helpers.workbook.cli import register_cli
from helpers.workbook.metrics import HEADLINE_KEY, RESULTS_TABLE_KEY, load_metrics, metrics_path, save_metrics
from helpers.workbook.report import INDEX_FILE, build_index, extract_figures, render_notebook_html
from helpers.workbook.runner import (
    ENVIRONMENT_PACKAGES,
    KERNEL_NAME,
    NOTEBOOK_PATTERN,
    collect_environment,
    committed_cell_index,
    discover_notebooks,
    files_written_since,
    run_workbook,
)
from helpers.workbook.summary import (
    DEFAULT_HEADLINES,
    MAX_HEADLINES,
    NotebookResult,
    WorkbookResult,
    flatten_metrics,
    format_table,
    headline_figures,
    read_summary,
    render_results_table,
    render_summary_markdown,
    write_summary,
)

__all__ = [
    "KERNEL_NAME",
    "NOTEBOOK_PATTERN",
    "ENVIRONMENT_PACKAGES",
    "HEADLINE_KEY",
    "RESULTS_TABLE_KEY",
    "DEFAULT_HEADLINES",
    "MAX_HEADLINES",
    "INDEX_FILE",
    "NotebookResult",
    "WorkbookResult",
    "discover_notebooks",
    "collect_environment",
    "committed_cell_index",
    "files_written_since",
    "save_metrics",
    "load_metrics",
    "metrics_path",
    "run_workbook",
    "write_summary",
    "read_summary",
    "flatten_metrics",
    "headline_figures",
    "format_table",
    "render_summary_markdown",
    "render_results_table",
    "build_index",
    "render_notebook_html",
    "extract_figures",
    "register_cli",
]
