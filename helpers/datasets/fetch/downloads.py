"""Resumable, verified HTTP downloads (notebook 01).

Real forgery datasets come as multi-gigabyte archives from university servers that drop connections, and a
notebook cell must be safe to re-run after any interruption: it must not start a large download over and must
never use a truncated or altered file.

* A completed download is not downloaded again. The cache is keyed by URL and checksum, not by file name:
  ``.downloads.json`` in the folder records where each file came from, and a file from another URL is never
  returned in its place.
* Partial data lives only in ``<name>.part`` and takes its final name through one atomic rename, so a final
  name always holds complete, verified data: checked against its length, else its checksum, else, for a server
  that sends no length, the archive's own structure read to the end
  (:func:`helpers.datasets.fetch.archives.archive_problem`); an HTML page where an archive was expected is
  refused, naming what arrived.
* One writer per folder: a second download into it is refused (:mod:`helpers.locks`).
* A file whose sha256 does not match is moved aside as ``<name>.corrupt-<hash>``: never used, never deleted
  (it is the evidence when a mirror serves something else).

Networking uses the standard library only (``urllib.request``).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from helpers.atomic import atomic_write_json
from helpers.datasets.fetch.archives import ARCHIVE_SUFFIXES, archive_problem, sniff_archive
from helpers.datasets.fetch.digests import CHUNK, normalise_sha256, sha256_file
from helpers.datasets.fetch.errors import (
    ChecksumMismatchError,
    DownloadError,
    HTTPStatusError,
    InsufficientSpaceError,
    human_size,
)
from helpers.locks import folder_lock

__all__ = ["USER_AGENT", "RECORDS_NAME", "download"]

USER_AGENT = "forgery-workbook/0.1 (+https://github.com/forgery-workbook/forgery-workbook)"
"""Sent with every request, so that server operators can see who is fetching their dataset."""

RECORDS_NAME = ".downloads.json"
"""File in a download folder recording, per file name, the URL it came from, its size and its sha256."""

_MAX_BACKOFF_S = 30.0

_UNSAFE_NAME_CHARS_RE = re.compile(r"[^A-Za-z0-9._+-]")


class _Retry(Exception):
    """Internal: this attempt failed in a way that another attempt (resuming) may fix."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


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
    expected = normalise_sha256(sha256) if sha256 is not None else None
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
        kind = sniff_archive(part)
        if kind not in ("zip", "tar") and name.lower().endswith(ARCHIVE_SUFFIXES):
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
        problem = archive_problem(part, kind)
        if problem is not None:
            size = part.stat().st_size
            part.unlink()
            raise _Retry(DownloadError(
                f"{url}: incomplete download ({size} bytes without a Content-Length; the {kind} data {problem})"
            ))

    return check


def _describe_arrival(path: Path, content_type: str) -> str:
    """``text/html, 1.2 KiB, starting '<!DOCTYPE html>'``: what a server sent instead of an archive."""
    with open(path, "rb") as handle:
        head = handle.read(80)
    line = head.decode("utf-8", errors="replace").strip().split("\n", 1)[0].strip()[:40]
    start = repr(line) if line and line.isprintable() and "\ufffd" not in line else f"with bytes {head[:8].hex(' ')}"
    kind = content_type.split(";", 1)[0].strip() or "no Content-Type"
    return f"{kind}, {human_size(path.stat().st_size)}, starting {start}"


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
                    block = response.read(CHUNK)
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
