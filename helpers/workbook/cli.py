"""``python -m helpers workbook``: run the notebooks, print a status table, exit 0 / 1 / 2.

Serves the command line (``helpers/__main__.py`` registers it) and ``make workbook``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from helpers import config
from helpers.workbook.report import INDEX_FILE
from helpers.workbook.runner import Default, run_workbook
from helpers.workbook.summary import SUMMARY_MD, format_table

__all__ = ["register_cli"]


def _split_only(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def _cli_workbook(args: argparse.Namespace) -> int:
    """The ``workbook`` subcommand: 0 when every notebook succeeded, 1 when one failed, 2 on a set-up error."""
    cell_timeout: int | None | Default = Default.PROFILE
    if args.cell_timeout is not None:
        cell_timeout = args.cell_timeout if args.cell_timeout > 0 else None
    try:
        result = run_workbook(
            profile=args.profile,
            out_dir=args.out,
            notebooks_dir=args.notebooks,
            data_root=args.data_root,
            seed=args.seed,
            only=_split_only(args.only),
            cell_timeout=cell_timeout,
        )
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"workbook: error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    run_dir = Path(result.out_dir)
    print(f"summary: {run_dir / SUMMARY_MD}")
    if (run_dir / INDEX_FILE).is_file():
        print(f"report:  {run_dir / INDEX_FILE}")
    failure = result.failure
    if failure is None and result.ok:
        return 0
    if failure is not None:
        cell = f", cell {failure.failed_cell}" if failure.failed_cell is not None else ""
        print(f"workbook failed: {failure.name}.ipynb{cell}: {failure.error}", file=sys.stderr)
        print(f"open the executed notebook: {failure.output}", file=sys.stderr)
    else:
        print("workbook failed: not every notebook ran", file=sys.stderr)
    return 1


def register_cli(subparsers: Any) -> None:
    """Add the ``workbook`` subcommand to an ``argparse`` subparsers object (``args.func(args)`` runs it)."""
    parser = subparsers.add_parser(
        "workbook",
        help="run the notebooks in order with papermill and summarise their metrics",
        description=(
            "Execute notebooks/NN_*.ipynb in order with papermill. Executed and rendered notebooks, metrics, "
            "summary.json/summary.md and index.html go to the output folder. Stops at the first failing notebook."
        ),
    )
    parser.add_argument("--profile", choices=sorted(config.PROFILES), default="smoke", help="run profile (default: smoke)")
    parser.add_argument("--only", metavar="01,02", default=None, help="comma-separated notebook prefixes or stems to run")
    parser.add_argument("--out", metavar="DIR", default=None, help="output folder (default: runs/<profile>)")
    parser.add_argument("--data-root", metavar="DIR", default=None, help="dataset folder (default: $FORGERY_DATA or data/)")
    parser.add_argument("--seed", metavar="N", type=int, default=config.DEFAULT_SEED, help="random seed passed to every notebook")
    parser.add_argument(
        "--cell-timeout",
        metavar="SECONDS",
        type=int,
        default=None,
        help="per-cell time limit (default: the profile's; 0: no limit)",
    )
    parser.add_argument("--notebooks", metavar="DIR", default=None, help="notebooks folder (default: <checkout>/notebooks)")
    parser.set_defaults(func=_cli_workbook)
