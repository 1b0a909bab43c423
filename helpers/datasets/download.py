"""Resumable, verified downloads and safe extraction of untrusted archives.

Real forgery datasets come as multi-gigabyte archives from university servers that drop connections, and a
notebook cell must be safe to re-run after any interruption: it must not start a large download over, must
never use a truncated or altered file, and must never let an archive write outside its folder (archives are
untrusted input: ``../`` members, absolute paths, links, device files and decompression bombs all exist in
the wild).

Guarantees:

* a completed download is not downloaded again, and a completed dataset is not extracted again;
* the download cache is keyed by URL and checksum, not by file name: ``.downloads.json`` in the folder
  records where each file came from, and a file from another URL is never returned in its place;
* partial data lives only in ``<name>.part`` (downloads) or ``.<dest>.partial-XXXX`` (extraction) and takes
  its final name through one atomic rename, so a final name always holds complete, verified data: checked
  against its length, else its checksum, else, for a server that sends no length, the archive's own
  structure read to the end; an HTML page where an archive was expected is refused, naming what arrived;
* one writer per folder: a second download or extraction into it is refused (:mod:`helpers.locks`);
* a file whose sha256 does not match is moved aside as ``<name>.corrupt-<hash>``: never used, never deleted
  (it is the evidence when a mirror serves something else);
* an archive is inspected as a whole before anything is written and refused as a whole if any member is
  unsafe.

Networking uses the standard library only (``urllib.request``). Notebook 01 (``01_datasets``) fetches the
field's datasets through here (via :mod:`helpers.datasets.registry`).
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import http.client
import json
import lzma
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tqdm.auto import tqdm

from helpers.atomic import atomic_write_json
from helpers.cli_args import non_negative_int, positive_float
from helpers.locks import FolderLockedError, folder_lock

__all__ = [
    "USER_AGENT",
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

USER_AGENT = "forgery-workbook/0.1 (+https://github.com/forgery-workbook/forgery-workbook)"
"""Sent with every request, so that server operators can see who is fetching their dataset."""

MARKER_NAME = ".extracted"
"""File written inside a completed extraction; it names the archive and its sha256."""

RECORDS_NAME = ".downloads.json"
"""File in a download folder recording, per file name, the URL it came from, its size and its sha256."""

_CHUNK = 1 << 20
_MAX_BACKOFF_S = 30.0
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_SEPARATORS_RE = re.compile(r"[\\/]+")
_UNSAFE_NAME_CHARS_RE = re.compile(r"[^A-Za-z0-9._+-]")
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar")
_ARCHIVE_SUFFIXES = (*_TAR_SUFFIXES, ".zip")
# Errors that reading a damaged archive can raise; they become DownloadError naming the archive.
_ARCHIVE_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError)


# --------------------------------------------------------------------------------------------- errors


class DownloadError(Exception):
    """A download or an extraction failed; the message names the URL or the file."""


class HTTPStatusError(DownloadError):
    """The server answered with an error status (4xx fail at once; 5xx are retried first)."""

    def __init__(self, url: str, status: int, reason: str = "") -> None:
        super().__init__(url, status, reason)
        self.url = url
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"HTTP {self.status}{reason} for {self.url}"


class ChecksumMismatchError(DownloadError):
    """The file's sha256 differs from the expected one; the file was moved aside, not deleted."""

    def __init__(self, source: str, expected: str, actual: str, moved_to: Path, origin: str = "expected") -> None:
        super().__init__(source, expected, actual, moved_to, origin)
        self.source = source
        self.expected = expected
        self.actual = actual
        self.moved_to = moved_to
        self.origin = origin

    def __str__(self) -> str:
        return (
            f"sha256 mismatch for {self.source}: {self.origin} {self.expected}, got {self.actual}; "
            f"the file was moved aside to {self.moved_to}"
        )


class InsufficientSpaceError(DownloadError):
    """The destination's file system has less free space than the server says the download needs."""

    def __init__(self, url: str, dest: Path, needed: int, free: int) -> None:
        super().__init__(url, dest, needed, free)
        self.url = url
        self.dest = dest
        self.needed = needed
        self.free = free

    def __str__(self) -> str:
        return (
            f"not enough free space in {self.dest} for {self.url}: need {self.needed} bytes "
            f"({_human(self.needed)}), only {self.free} bytes ({_human(self.free)}) free"
        )


class UnsafeArchiveError(DownloadError):
    """The archive was refused as a whole: a member could write outside the destination, or it is too big."""

    def __init__(self, archive: Path | str, member: str | None, reason: str) -> None:
        super().__init__(archive, member, reason)
        self.archive = Path(archive)
        self.member = member
        self.reason = reason

    def __str__(self) -> str:
        if self.member is None:
            return f"unsafe archive {self.archive}: {self.reason}"
        return f"unsafe archive {self.archive}: member {self.member!r}: {self.reason}"


class _Retry(Exception):
    """Internal: this attempt failed in a way that another attempt (resuming) may fix."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


# ------------------------------------------------------------------------------------------ downloads


def sha256_file(path: str | os.PathLike[str], chunk: int = _CHUNK) -> str:
    """The hex sha256 of a file, read in chunks (dataset archives do not fit in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class _Progress:
    """What is known about the remote file across attempts."""

    total: int | None = None
    end_known: bool = False
    """Whether the last attempt knew where the file ends (a length, a total, or a chunked body's last chunk);
    without it, a connection closed early looks exactly like a finished body."""
    content_type: str = ""


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    filename: str | None = None,
    timeout: float = 30.0,
    retries: int = 5,
    backoff: float = 1.0,
    progress: bool = True,
    checksums: str | os.PathLike[str] | None = None,
) -> Path:
    """Download ``url`` into the folder ``dest`` and return the file's path.

    The file is named ``filename``, else after the URL path's last component. The cache is keyed by URL and
    checksum, not by name: ``dest/.downloads.json`` records which URL each file came from (with its size and
    sha256), and an existing file is returned without any network access only when it matches the known
    sha256 (``sha256``, else the value recorded in ``checksums``) or, with none known, when it was
    downloaded from this very URL and still has its recorded size. A file of the same name from another
    URL, or one nothing records, is never returned in its place: :class:`DownloadError` says so.

    Otherwise the data streams into ``<name>.part`` (a ``.part`` left by another URL is discarded, never
    resumed); connection errors, timeouts, truncated bodies and HTTP 5xx are retried ``retries`` times with
    exponential backoff, resuming with a ``Range`` request. Other 4xx fail at once with
    :class:`HTTPStatusError`. The file takes its final name only once it is known to be whole: by its
    length, by the known sha256, or, when the server sent no length and no checksum is known, by reading
    the archive to its end (a zip's central directory and every member's CRC, a tar stream through its
    end-of-archive marker); a body that is neither, without a length or checksum, is refused. A file named
    like an archive (``.zip``, ``.tar.gz``, ...) that holds neither zip nor tar (an HTML error page) is an
    error naming the URL and what arrived.

    With ``checksums`` (a JSON file) and no ``sha256``, the first verified download's sha256 is recorded
    there (trust on first use) and every later call verifies against it. A mismatch moves the file aside to
    ``<name>.corrupt-<hash>`` and raises :class:`ChecksumMismatchError`. The folder is locked while the call
    runs (:func:`helpers.locks.folder_lock`): a second download into it is refused.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise DownloadError(f"{url}: only http:// and https:// URLs are supported")
    expected = _normalise_sha256(sha256) if sha256 is not None else None
    folder = Path(dest)
    if folder.exists() and not folder.is_dir():
        raise DownloadError(f"{folder}: download destination is not a folder (downloading {url})")
    name = _checked_filename(filename, url) if filename is not None else _filename_from_url(url)
    with folder_lock(folder):
        return _download_locked(url, folder, name, expected, checksums, timeout=timeout, retries=retries,
                                backoff=backoff, progress=progress)


def _download_locked(
    url: str, folder: Path, name: str, expected: str | None, checksums: str | os.PathLike[str] | None, *,
    timeout: float, retries: int, backoff: float, progress: bool,
) -> Path:
    final = folder / name
    part = folder / f"{name}.part"
    records_path = folder / RECORDS_NAME
    records = _read_records(records_path)
    record = records.get(name)
    ledger = Path(checksums) if checksums is not None else None
    recorded = _read_checksums(ledger).get(name) if ledger is not None and expected is None else None
    wanted = expected or recorded
    origin = "expected" if expected is not None else f"recorded in {ledger}"

    if final.is_file():
        if wanted is not None:
            actual = sha256_file(final)
            if actual == wanted:
                if record is None:
                    _write_record(records_path, records, name, url, final, actual)
                return final
            moved = _move_aside(final, name, actual)
            if expected is None:
                # The recorded value is the only reference we have: stop and let a person look.
                raise ChecksumMismatchError(f"{final} (from {url})", wanted, actual, moved, origin)
            # With an explicit sha256 a stale or damaged copy is simply fetched again (the old one is kept aside).
        elif record is None:
            raise DownloadError(
                f"{final} exists but {records_path.name} does not record where it came from, so it cannot stand "
                f"for {url}; delete it to download again, or pass its sha256 (--sha256) to use it"
            )
        elif record.get("url") != url:
            raise DownloadError(
                f"{final} holds the download of {record.get('url')}, not of {url}; pass another file name "
                f"(filename=, --filename) to keep both, or delete {final}"
            )
        elif record.get("bytes") != final.stat().st_size:
            _move_aside(final, name, sha256_file(final))  # changed since it was downloaded: fetch again
        else:
            if ledger is not None:
                _record_checksum(ledger, name, sha256_file(final))
            return final

    if part.exists() and record is not None and record.get("url") != url:
        part.unlink()  # partial data of another URL: resuming would splice two files together
    if record is None or record.get("url") != url or "sha256" in record:
        records[name] = {"url": url}
        atomic_write_json(records_path, records)
    check = None if wanted is not None else _arrival_check(url, name)
    _fetch(url, part, name=name, timeout=timeout, retries=retries, backoff=backoff, progress=progress, check=check)

    actual = sha256_file(part)
    if wanted is not None and actual != wanted:
        moved = _move_aside(part, name, actual)
        raise ChecksumMismatchError(url, wanted, actual, moved, origin)
    _write_record(records_path, records, name, url, part, actual)
    os.replace(part, final)
    if ledger is not None and expected is None and recorded is None:
        _record_checksum(ledger, name, actual)
    return final


def _arrival_check(url: str, name: str) -> Callable[[Path, _Progress], None]:
    """What must hold of a finished body before it may take its name, when no checksum is known."""

    def check(part: Path, state: _Progress) -> None:
        kind = _sniff(part)
        if kind not in ("zip", "tar") and name.lower().endswith(_ARCHIVE_SUFFIXES):
            what = _describe_arrival(part, state.content_type)
            part.unlink()
            raise DownloadError(f"{url}: expected a zip or tar archive for {name}, received {what}; nothing was kept")
        if state.end_known:
            return
        if kind is None:
            part.unlink()
            raise DownloadError(
                f"{url}: the server sent no Content-Length, so a cut-off transfer looks like a finished one, and "
                f"{name} is no archive whose structure could tell; pass its sha256 (--sha256) to verify it"
            )
        problem = _stream_problem(part, kind)
        if problem is not None:
            size = part.stat().st_size
            part.unlink()
            raise _Retry(DownloadError(
                f"{url}: incomplete download ({size} bytes without a Content-Length; the {kind} data {problem})"
            ))

    return check


_STREAM_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


def _sniff(path: Path) -> str | None:
    """``zip``, ``tar`` (plain or compressed), ``gzip``/``bzip2``/``xz`` (a compressed non-tar) or ``None``."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if _is_tar(path):
        return "tar"
    for magic, kind in _STREAM_MAGIC:
        if head.startswith(magic):
            return kind
    try:
        return "zip" if zipfile.is_zipfile(path) else None  # a zip behind a prefix (self-extracting)
    except OSError:
        return None


def _stream_problem(path: Path, kind: str) -> str | None:
    """Why the zip, tar or compressed file ``path`` is not whole (``None``: it reads to its very end)."""
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            return f"fails the CRC check of member {bad!r}" if bad is not None else None
        if kind == "tar":
            with tarfile.open(path, "r:*") as tf:
                for _ in tf:  # walking the headers reads (and decompresses) every member's data
                    pass
                stream = tf.fileobj
                stream.seek(tf.offset)
                marker = stream.read(2 * tarfile.BLOCKSIZE)
                while stream.read(_CHUNK):  # to the end: a compressed stream checks its trailer there
                    pass
            if marker != bytes(2 * tarfile.BLOCKSIZE):
                return "ends without the end-of-archive marker (cut off between members)"
            return None
        opener = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}[kind]
        with opener(path, "rb") as stream:
            while stream.read(_CHUNK):
                pass
        return None
    except _ARCHIVE_READ_ERRORS as exc:
        return f"cannot be read to its end ({type(exc).__name__}: {exc})"


def _describe_arrival(path: Path, content_type: str) -> str:
    """``text/html, 1.2 KiB, starting '<!DOCTYPE html>'``: what a server sent instead of an archive."""
    with open(path, "rb") as handle:
        head = handle.read(80)
    line = head.decode("utf-8", errors="replace").strip().split("\n", 1)[0].strip()[:40]
    start = repr(line) if line and line.isprintable() and "\ufffd" not in line else f"with bytes {head[:8].hex(' ')}"
    kind = content_type.split(";", 1)[0].strip() or "no Content-Type"
    return f"{kind}, {_human(path.stat().st_size)}, starting {start}"


def _read_records(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DownloadError(f"{path}: unreadable download record ({exc}); delete it and the files it describes") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DownloadError(f"{path}: the download record must map file names to objects; delete it")
    return data


def _write_record(path: Path, records: dict[str, dict[str, Any]], name: str, url: str, file: Path, digest: str) -> None:
    records[name] = {"url": url, "sha256": digest, "bytes": file.stat().st_size}
    atomic_write_json(path, records)


def _fetch(
    url: str, part: Path, *, name: str, timeout: float, retries: int, backoff: float, progress: bool,
    check: Callable[[Path, _Progress], None] | None = None,
) -> _Progress:
    """Bring ``part`` to the complete remote file, resuming after transient failures; ``check`` (which may
    raise :class:`_Retry`) judges each finished body."""
    state = _Progress()
    attempt = 0
    while True:
        try:
            _fetch_once(url, part, state, name=name, timeout=timeout, progress=progress)
            if check is not None:
                check(part, state)
            return state
        except _Retry as failure:
            if attempt >= max(0, retries):
                raise DownloadError(
                    f"{url}: giving up after {attempt + 1} attempt(s); last error: {failure.cause}"
                ) from failure.cause
            delay = min(backoff * 2**attempt, _MAX_BACKOFF_S)
            attempt += 1
            if delay > 0:
                time.sleep(delay)


def _fetch_once(url: str, part: Path, state: _Progress, *, name: str, timeout: float, progress: bool) -> None:
    """One request: append to (or restart) ``part``; raise :class:`_Retry` for failures worth retrying."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    state.end_known = False
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset > 0:
            _, remote_total = _parse_content_range(exc.headers.get("Content-Range"))
            total = remote_total if remote_total is not None else state.total
            if total is not None and offset == total:
                state.total = total
                state.end_known = True
                return  # the .part already holds the whole file
            part.unlink()
            raise _Retry(DownloadError(
                f"HTTP 416 for {url}: the partial file ({offset} bytes) does not fit the remote size "
                f"({total if total is not None else 'unknown'}); restarting from zero"
            )) from exc
        if 500 <= exc.code < 600:
            raise _Retry(HTTPStatusError(url, exc.code, str(exc.reason))) from exc
        raise HTTPStatusError(url, exc.code, str(exc.reason)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Retry(exc) from exc
    except ValueError as exc:
        raise DownloadError(f"{url}: invalid URL ({exc})") from exc

    with response:
        status = response.status
        length = _int_or_none(response.headers.get("Content-Length"))
        state.content_type = response.headers.get("Content-Type", "") or state.content_type
        # A chunked body ends with an empty chunk; http.client raises IncompleteRead if the connection closes
        # before it, so such a body delimits itself.
        chunked = bool(getattr(response, "chunked", False))
        if status == 206 and offset > 0:
            start, remote_total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Retry(DownloadError(
                    f"{url}: asked to resume at byte {offset} but the server sent byte {start}; restarting"
                ))
            if remote_total is not None:
                state.total = remote_total
            mode = "ab"
        elif status in (200, 206):
            # A 200 answer to a Range request means the server ignores ranges: start again from zero.
            offset = 0
            start, remote_total = _parse_content_range(response.headers.get("Content-Range"))
            if status == 206 and start not in (None, 0):
                raise _Retry(DownloadError(f"{url}: unasked-for partial content from byte {start}"))
            state.total = remote_total if status == 206 and remote_total is not None else length
            mode = "wb"
        else:
            raise HTTPStatusError(url, status, str(response.reason))

        remaining = length if length is not None else (state.total - offset if state.total is not None else None)
        if remaining is not None:
            reclaimed = part.stat().st_size if mode == "wb" and part.exists() else 0
            free = shutil.disk_usage(part.parent).free + reclaimed
            if remaining > free:
                raise InsufficientSpaceError(url, part.parent, remaining, free)

        written = 0
        with open(part, mode) as out, tqdm(
            total=state.total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=name, disable=not progress, leave=False,
        ) as bar:
            while True:
                try:
                    block = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retry(exc) from exc
                if not block:
                    break
                out.write(block)
                written += len(block)
                bar.update(len(block))

    size = part.stat().st_size
    if state.total is not None and size != state.total:
        raise _Retry(DownloadError(f"{url}: incomplete download, {size} of {state.total} bytes"))
    if length is not None and written != length:
        raise _Retry(DownloadError(f"{url}: incomplete response, {written} of {length} bytes"))
    state.end_known = state.total is not None or length is not None or chunked


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 10-99/100`` -> (10, 100); ``bytes */100`` -> (None, 100); unknown parts -> None."""
    if not value:
        return None, None
    match = re.match(r"^\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*$", value)
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _normalise_sha256(value: str) -> str:
    if not _SHA256_RE.match(value.strip()):
        raise ValueError(f"not a sha256 hex digest (64 hex digits): {value!r}")
    return value.strip().lower()


def _filename_from_url(url: str) -> str:
    """The URL path's last component, reduced to characters that are safe in a file name everywhere."""
    last = urllib.parse.unquote(urllib.parse.urlsplit(url).path).rsplit("/", 1)[-1]
    cleaned = _UNSAFE_NAME_CHARS_RE.sub("_", last)
    if cleaned.strip(".") == "":
        raise DownloadError(f"{url}: cannot derive a file name from the URL; pass filename=")
    return cleaned


def _checked_filename(name: str, url: str) -> str:
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise DownloadError(f"{url}: invalid file name {name!r} (a plain name is required)")
    return name


def _move_aside(path: Path, name: str, actual: str) -> Path:
    """Keep a file that failed verification next to where it was, under a name nothing will use."""
    target = path.parent / f"{name}.corrupt-{actual[:12]}"
    os.replace(path, target)
    return target


def _read_checksums(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DownloadError(f"{path}: unreadable checksum file ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise DownloadError(f"{path}: checksum file must map file names to sha256 strings")
    return {key: value.lower() for key, value in data.items()}


def _record_checksum(path: Path, name: str, digest: str) -> None:
    data = _read_checksums(path)
    data[name] = digest
    atomic_write_json(path, data)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


# ----------------------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class _Entry:
    """One planned write: a folder, a file, a hard link (to a member path) or a symlink (relative target)."""

    kind: str
    parts: tuple[str, ...]
    member: str
    source: Any = None
    target: str = ""


class _Budget:
    """Counts bytes actually written, because declared sizes can lie."""

    def __init__(self, archive: Path, limit: int) -> None:
        self.archive = archive
        self.limit = limit
        self.used = 0

    def spend(self, n: int, member: str) -> None:
        self.used += n
        if self.used > self.limit:
            raise UnsafeArchiveError(
                self.archive, member, f"unpacked data exceeds the limit of {self.limit} bytes while writing"
            )


def is_archive(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a zip or (optionally compressed) tar archive, judged by content."""
    return _archive_kind(Path(path)) is not None


def archive_stem(name: str) -> str:
    """``casia.tar.gz`` -> ``casia``: the folder name an archive is extracted into by default."""
    lower = name.lower()
    for suffix in _ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    stem = Path(name).stem
    return stem if stem and stem != name else f"{name}_extracted"


def extract_archive(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_total_bytes: int = 50 * 2**30,
    max_members: int = 1_000_000,
) -> Path:
    """Extract a zip or tar archive into ``dest`` (created) and return ``dest``.

    Every member is inspected before anything is written; the whole archive is refused with
    :class:`UnsafeArchiveError` for absolute paths, ``..`` components, links leading outside ``dest`` (any
    symlink in a zip), device files, fifos and other special members, more than ``max_members`` members or
    a declared unpacked size over ``max_total_bytes``. Bytes actually written are counted too, since headers
    can lie. Extraction happens in a hidden sibling folder renamed onto ``dest`` at the end, so ``dest``
    appears complete or not at all; ``dest/.extracted`` then records the archive's sha256 and a later call
    with the same archive returns at once. Files get mode 0o644 and folders 0o755. ``dest``'s parent folder
    is locked meanwhile (:func:`helpers.locks.folder_lock`).
    """
    source = Path(archive)
    target = Path(dest)
    if not source.is_file():
        raise DownloadError(f"{source}: archive not found")
    # Two extractions into one folder at once: the second would find a half-built sibling; refuse it instead.
    with folder_lock(target.parent):
        return _extract_locked(source, target, max_total_bytes=max_total_bytes, max_members=max_members)


def _extract_locked(source: Path, target: Path, *, max_total_bytes: int, max_members: int) -> Path:
    digest = sha256_file(source)
    marker = target / MARKER_NAME
    if target.is_dir() and not target.is_symlink():
        previous = _read_marker(marker)
        if previous is not None and previous.get("sha256") == digest:
            return target
        if previous is not None or any(target.iterdir()):
            what = f"the extraction of {previous.get('archive')!r}" if previous is not None else "other files"
            raise DownloadError(
                f"{target}: already holds {what}; remove it to extract {source}"
            )
    elif target.exists() or target.is_symlink():
        raise DownloadError(f"{target}: exists and is not a folder; cannot extract {source} there")

    kind = _archive_kind(source)
    if kind is None:
        raise UnsafeArchiveError(source, None, "unsupported format (neither zip nor tar)")
    try:
        if kind == "zip":
            with zipfile.ZipFile(source) as zf:
                plan = _plan_zip(source, zf, max_total_bytes, max_members)
                _materialise(source, target, digest, plan, zf.open, max_total_bytes)
        else:
            with tarfile.open(source, "r:*") as tf:
                plan = _plan_tar(source, tf, max_total_bytes, max_members)
                _materialise(source, target, digest, plan, tf.extractfile, max_total_bytes)
    except DownloadError:
        raise
    except _ARCHIVE_READ_ERRORS as exc:
        raise DownloadError(f"{source}: cannot extract into {target} ({exc})") from exc
    return target


def _read_marker(marker: Path) -> dict[str, Any] | None:
    if not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"archive": "unknown (unreadable marker)"}
    return data if isinstance(data, dict) else {"archive": "unknown (unreadable marker)"}


def _archive_kind(path: Path) -> str | None:
    # A tar can end with a zip member that zipfile would find, so a tar-looking name is tried as tar first.
    if path.name.lower().endswith(_TAR_SUFFIXES) and _is_tar(path):
        return "tar"
    try:
        if zipfile.is_zipfile(path):
            return "zip"
    except OSError:
        return None
    return "tar" if _is_tar(path) else None


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except Exception:  # noqa: BLE001 - any failure to parse means "not a tar we can read"
        return False


def _member_parts(archive: Path, name: str) -> tuple[str, ...]:
    """A member's path as components below the destination; refuses absolute paths and ``..``."""
    if "\x00" in name:
        raise UnsafeArchiveError(archive, name, "NUL character in the name")
    if name.startswith(("/", "\\")) or _DRIVE_RE.match(name):
        raise UnsafeArchiveError(archive, name, "absolute path")
    parts = tuple(p for p in _SEPARATORS_RE.split(name) if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(archive, name, "'..' path component")
    return parts


def _resolve_inside(parts: list[str], links: dict[str, str]) -> list[str] | None:
    """Resolve a path below the root as the kernel would, following the archive's own symlinks.

    Returns the resolved components, or ``None`` if the path leaves the root (or loops).
    """
    resolved: list[str] = []
    queue = list(parts)
    hops = 0
    while queue:
        part = queue.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        resolved.append(part)
        link = links.get("/".join(resolved))
        if link is not None:
            hops += 1
            if hops > 40 or link.startswith(("/", "\\")) or _DRIVE_RE.match(link):
                return None
            resolved.pop()
            queue = _SEPARATORS_RE.split(link) + queue
    return resolved


def _check_parents(archive: Path, member: str, parts: tuple[str, ...], symlinks: dict[str, str]) -> None:
    # Writing through a symlink is how "safe-looking" members escape; no member may pass through one.
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in symlinks:
            raise UnsafeArchiveError(archive, member, f"path passes through the symbolic link {'/'.join(parts[:i])!r}")


def _check_total(archive: Path, member: str, total: int, limit: int) -> None:
    if total > limit:
        raise UnsafeArchiveError(archive, member, f"declared unpacked size exceeds the limit of {limit} bytes")


def _plan_tar(archive: Path, tf: tarfile.TarFile, limit: int, max_members: int) -> list[_Entry]:
    members: list[tarfile.TarInfo] = []
    for member in tf:
        members.append(member)
        if len(members) > max_members:
            raise UnsafeArchiveError(archive, member.name, f"more than {max_members} members")
    symlinks: dict[str, str] = {}
    for member in members:
        if member.issym():
            parts = _member_parts(archive, member.name)
            if not parts:
                raise UnsafeArchiveError(archive, member.name, "symbolic link replacing the destination itself")
            symlinks["/".join(parts)] = member.linkname

    plan: list[_Entry] = []
    regular: set[str] = set()
    total = 0
    for member in members:
        name = member.name
        parts = _member_parts(archive, name)
        key = "/".join(parts)
        _check_parents(archive, name, parts, symlinks)
        if key in symlinks and not member.issym():
            raise UnsafeArchiveError(archive, name, "also declared as a symbolic link")
        if member.isdir():
            if parts:
                plan.append(_Entry("dir", parts, name))
        elif member.isreg():
            if not parts:
                raise UnsafeArchiveError(archive, name, "file without a name")
            total += member.size
            _check_total(archive, name, total, limit)
            regular.add(key)
            plan.append(_Entry("file", parts, name, source=member))
        elif member.issym():
            link = member.linkname
            if not link or "\x00" in link:
                raise UnsafeArchiveError(archive, name, "symbolic link without a valid target")
            if link.startswith(("/", "\\")) or _DRIVE_RE.match(link):
                raise UnsafeArchiveError(archive, name, f"symbolic link to the absolute path {link!r}")
            if _resolve_inside([*parts[:-1], *_SEPARATORS_RE.split(link)], symlinks) is None:
                raise UnsafeArchiveError(archive, name, f"symbolic link {link!r} points outside the destination")
            plan.append(_Entry("symlink", parts, name, target=link))
        elif member.islnk():
            link = member.linkname
            if link.startswith(("/", "\\")) or _DRIVE_RE.match(link) or ".." in _SEPARATORS_RE.split(link):
                raise UnsafeArchiveError(archive, name, f"hard link {link!r} points outside the destination")
            target = "/".join(p for p in _SEPARATORS_RE.split(link) if p not in ("", "."))
            if target not in regular:
                raise UnsafeArchiveError(archive, name, f"hard link {link!r} is not to an earlier file of the archive")
            if not parts:
                raise UnsafeArchiveError(archive, name, "hard link without a name")
            plan.append(_Entry("hardlink", parts, name, target=target))
        elif member.ischr() or member.isblk():
            raise UnsafeArchiveError(archive, name, "device file")
        elif member.isfifo():
            raise UnsafeArchiveError(archive, name, "fifo (named pipe)")
        else:
            raise UnsafeArchiveError(archive, name, f"unsupported member type {member.type!r}")
    return plan


def _declared_size(info: zipfile.ZipInfo) -> int:
    """A zip member's declared unpacked size (its header's word, which the write guard does not trust)."""
    return info.file_size


def _plan_zip(archive: Path, zf: zipfile.ZipFile, limit: int, max_members: int) -> list[_Entry]:
    infos = zf.infolist()
    if len(infos) > max_members:
        raise UnsafeArchiveError(archive, infos[max_members].filename, f"more than {max_members} members")
    plan: list[_Entry] = []
    total = 0
    for info in infos:
        name = info.filename
        parts = _member_parts(archive, name)
        file_type = stat.S_IFMT(info.external_attr >> 16)
        if file_type == stat.S_IFLNK:
            raise UnsafeArchiveError(archive, name, "symbolic link (refused in zip archives)")
        if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(archive, name, "device, fifo or other special file")
        if info.flag_bits & 0x1:
            raise UnsafeArchiveError(archive, name, "encrypted member (unsupported)")
        if info.is_dir() or file_type == stat.S_IFDIR:
            if parts:
                plan.append(_Entry("dir", parts, name))
            continue
        if not parts:
            raise UnsafeArchiveError(archive, name, "file without a name")
        total += _declared_size(info)
        _check_total(archive, name, total, limit)
        plan.append(_Entry("file", parts, name, source=info))
    return plan


def _materialise(
    archive: Path,
    dest: Path,
    digest: str,
    plan: list[_Entry],
    open_member: Callable[[Any], IO[bytes] | None],
    limit: int,
) -> None:
    """Write a checked plan into a hidden sibling folder, then rename it onto ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        os.chmod(staging, 0o755)
        budget = _Budget(archive, limit)
        made: set[tuple[str, ...]] = set()
        # Symlinks come last: while files are written no link exists that a path could be redirected through.
        for entry in sorted(plan, key=lambda e: e.kind == "symlink"):
            try:
                _write_entry(archive, staging, entry, open_member, budget, made)
            except DownloadError:
                raise
            except _ARCHIVE_READ_ERRORS as exc:
                raise DownloadError(f"{archive}: cannot extract member {entry.member!r}: {exc}") from exc
        atomic_write_json(staging / MARKER_NAME, {"archive": archive.name, "sha256": digest})
        os.chmod(staging / MARKER_NAME, 0o644)
        if dest.is_dir() and not dest.is_symlink():
            dest.rmdir()  # checked empty by the caller; rename cannot replace a folder everywhere
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _ensure_dir(archive: Path, root: Path, parts: tuple[str, ...], member: str, made: set[tuple[str, ...]]) -> Path:
    path = root
    for i, part in enumerate(parts, start=1):
        path = path / part
        if parts[:i] in made:
            continue
        if path.is_symlink():
            raise UnsafeArchiveError(archive, member, f"path passes through a symbolic link ({'/'.join(parts[:i])})")
        if not path.exists():
            os.mkdir(path, 0o755)
        elif not path.is_dir():
            raise DownloadError(f"{archive}: member {member!r}: {'/'.join(parts[:i])} is a file, not a folder")
        os.chmod(path, 0o755)
        made.add(parts[:i])
    return path


def _write_entry(
    archive: Path,
    root: Path,
    entry: _Entry,
    open_member: Callable[[Any], IO[bytes] | None],
    budget: _Budget,
    made: set[tuple[str, ...]],
) -> None:
    if entry.kind == "dir":
        _ensure_dir(archive, root, entry.parts, entry.member, made)
        return
    parent = _ensure_dir(archive, root, entry.parts[:-1], entry.member, made)
    path = parent / entry.parts[-1]
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()  # a duplicate member: the later one wins, as with tar itself
    if entry.kind == "file":
        handle = open_member(entry.source)
        if handle is None:
            raise DownloadError(f"{archive}: member {entry.member!r} has no data")
        with handle:
            _copy_limited(handle, path, budget, entry.member)
    elif entry.kind == "hardlink":
        os.link(root.joinpath(*entry.target.split("/")), path, follow_symlinks=False)
    elif entry.kind == "symlink":
        os.symlink(entry.target, path)
    else:  # pragma: no cover - plans only hold the kinds above
        raise AssertionError(entry.kind)


def _copy_limited(source: IO[bytes], path: Path, budget: _Budget, member: str) -> None:
    """Copy a member's data to a new file (mode 0o644, never through a link), counting against the budget."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "wb") as out:
        while block := source.read(_CHUNK):
            budget.spend(len(block), member)
            out.write(block)
    os.chmod(path, 0o644)


# ------------------------------------------------------------------------------------------------ CLI


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
        return _normalise_sha256(value)
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

    try:
        from helpers.datasets.registry import prepare_dataset
    except ImportError as exc:
        return _fail(f"registered datasets are not available (helpers.datasets.registry: {exc})", 2)
    known = _known_datasets()
    if known is not None and args.name not in known:
        return _fail(f"unknown dataset {args.name!r}; choose one of: {', '.join(known)}", 2)
    try:
        manifest = prepare_dataset(
            args.name, args.data_root, allow_download=not args.no_download, progress=not args.quiet
        )
    except (DownloadError, FolderLockedError, ValueError, OSError) as exc:  # ManifestError is a ValueError
        return _fail(exc, 1)
    print(manifest)
    return 0


def _known_datasets() -> list[str] | None:
    """The registry's dataset names, or ``None`` when it cannot list them (then prepare_dataset decides)."""
    try:
        from helpers.datasets.registry import dataset_names

        return list(dataset_names())
    except Exception:  # noqa: BLE001 - the name check is a convenience, never a new failure
        return None
