"""``python -m helpers download`` (notebook 01): fetch, verify and extract an archive, or prepare a dataset.

The work happens in :mod:`helpers.datasets.fetch` (downloads, archive safety) and
:mod:`helpers.datasets.registry` (the known datasets); this module is the command line, and keeps the names
that code and notebooks import from ``helpers.datasets.download``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from helpers.cli_args import non_negative_int, positive_float
from helpers.datasets.fetch import (
    MARKER_NAME,
    RECORDS_NAME,
    USER_AGENT,
    ChecksumMismatchError,
    DownloadError,
    HTTPStatusError,
    InsufficientSpaceError,
    UnsafeArchiveError,
    archive_stem,
    download,
    extract_archive,
    is_archive,
    sha256_file,
)
from helpers.datasets.fetch.digests import normalise_sha256
from helpers.datasets.registry import dataset_names, prepare_dataset
from helpers.locks import FolderLockedError

__all__ = [
    "USER_AGENT",
    "MARKER_NAME",
    "RECORDS_NAME",
    "DownloadError",
    "HTTPStatusError",
    "ChecksumMismatchError",
    "InsufficientSpaceError",
    "UnsafeArchiveError",
    "sha256_file",
    "download",
    "is_archive",
    "archive_stem",
    "extract_archive",
    "register_cli",
]


def register_cli(subparsers: Any) -> None:
    """Add the ``download`` subcommand to an ``argparse`` subparsers object (``args.func(args)`` runs it)."""
    parser = subparsers.add_parser(
        "download",
        help="download a file (and extract it) or prepare a registered dataset",
        description=(
            "Either download --url into --dest (resuming, verifying --sha256, and extracting recognised "
            "archives into DEST/<archive stem>/ unless --no-extract), or prepare the registered dataset NAME "
            "under --data-root. Archives are refused as a whole if any member is unsafe."
        ),
    )
    parser.add_argument("name", nargs="?", default=None, help="a registered dataset to prepare")
    parser.add_argument("--url", default=None, help="http(s) URL to download")
    parser.add_argument("--sha256", type=_sha256_arg, default=None, help="expected sha256 of the download")
    parser.add_argument("--dest", type=Path, default=None, help="folder to download into (with --url)")
    parser.add_argument("--filename", default=None, help="file name to save as (default: from the URL)")
    parser.add_argument("--checksums", type=Path, default=None,
                        help="JSON file recording sha256s on first download and verifying them later")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--extract", dest="extract", action="store_true", default=True,
                       help="extract a downloaded archive into DEST/<archive stem>/ (the default)")
    group.add_argument("--no-extract", dest="extract", action="store_false", help="keep the archive packed")
    parser.add_argument("--max-unpacked-gb", type=positive_float, default=50.0, metavar="N",
                        help="refuse archives unpacking to more than N GiB (default: 50)")
    parser.add_argument("--data-root", type=Path, default=None, help="dataset folder (with NAME)")
    parser.add_argument("--no-download", action="store_true", help="with NAME: use only files already present")
    parser.add_argument("--retries", type=non_negative_int, default=5,
                        help="retries after transient errors, >= 0 (default: 5)")
    parser.add_argument("--timeout", type=positive_float, default=30.0,
                        help="network timeout in seconds, > 0 (default: 30)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_cli_download)


def _sha256_arg(value: str) -> str:
    try:
        return normalise_sha256(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fail(message: object, code: int) -> int:
    print("error: " + " ".join(str(message).split("\n")), file=sys.stderr)
    return code


def _cli_download(args: argparse.Namespace) -> int:
    if (args.url is None) == (args.name is None):
        return _fail("give either a dataset NAME or --url URL --dest DIR (see --help)", 2)
    if args.url is not None:
        if args.dest is None:
            return _fail("--url needs --dest DIR", 2)
        if args.data_root is not None or args.no_download:
            return _fail("--data-root and --no-download go with a dataset NAME, not --url", 2)
        try:
            path = download(
                args.url, args.dest, sha256=args.sha256, filename=args.filename, timeout=args.timeout,
                retries=args.retries, progress=not args.quiet, checksums=args.checksums,
            )
            print(path)
            if args.extract and is_archive(path):
                limit = int(args.max_unpacked_gb * 2**30)
                print(extract_archive(path, path.parent / archive_stem(path.name), max_total_bytes=limit))
            elif args.extract:
                print(f"note: {path} is not a zip or tar archive; kept as downloaded, nothing extracted",
                      file=sys.stderr)
        except (DownloadError, FolderLockedError, ValueError, OSError) as exc:
            return _fail(exc, 1)
        return 0

    known = dataset_names()
    if args.name not in known:
        return _fail(f"unknown dataset {args.name!r}; choose one of: {', '.join(known)}", 2)
    try:
        manifest = prepare_dataset(
            args.name, args.data_root, allow_download=not args.no_download, progress=not args.quiet
        )
    except (DownloadError, FolderLockedError, ValueError, OSError) as exc:  # ManifestError is a ValueError
        return _fail(exc, 1)
    print(manifest)
    return 0
