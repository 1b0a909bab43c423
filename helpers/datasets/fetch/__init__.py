"""Fetching datasets (notebook 01): resumable, verified downloads and safe extraction of untrusted archives.

Guarantees:

* a completed download is not downloaded again, and a completed dataset is not extracted again;
* the download cache is keyed by URL and checksum, not by file name (:mod:`~helpers.datasets.fetch.downloads`);
* partial data lives only in ``<name>.part`` (downloads) or ``.<dest>.partial-XXXX`` (extraction) and takes
  its final name through one atomic rename, so a final name always holds complete, verified data;
* one writer per folder: a second download or extraction into it is refused (:mod:`helpers.locks`);
* a file whose sha256 does not match is moved aside as ``<name>.corrupt-<hash>``: never used, never deleted;
* an archive is inspected as a whole before anything is written and refused as a whole if any member is
  unsafe (:mod:`~helpers.datasets.fetch.archives`).

Modules: :mod:`~helpers.datasets.fetch.downloads` (HTTP), :mod:`~helpers.datasets.fetch.archives` (archive
detection and safe extraction), :mod:`~helpers.datasets.fetch.digests` (sha256 of files) and
:mod:`~helpers.datasets.fetch.errors`. Notebook 01 fetches the field's datasets through here, via
:mod:`helpers.datasets.registry`; ``python -m helpers download`` is :mod:`helpers.datasets.download`.
"""

from helpers.datasets.fetch.archives import MARKER_NAME, archive_stem, extract_archive, is_archive
from helpers.datasets.fetch.digests import sha256_file
from helpers.datasets.fetch.downloads import RECORDS_NAME, USER_AGENT, download
from helpers.datasets.fetch.errors import (
    ChecksumMismatchError,
    DownloadError,
    HTTPStatusError,
    InsufficientSpaceError,
    UnsafeArchiveError,
)

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
]
