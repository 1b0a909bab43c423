"""Safe extraction of untrusted archives, and whether a file is a whole archive (notebook 01).

Archives are untrusted input: ``../`` members, absolute paths, links leading out of the destination, device
files and decompression bombs all exist in the wild. :func:`extract_archive` inspects an archive as a whole
before anything is written and refuses it as a whole (:class:`~helpers.datasets.fetch.errors.UnsafeArchiveError`)
if any member is unsafe; it counts the bytes actually written, since headers can lie; and it extracts into a
hidden sibling folder renamed onto the destination at the end, so the destination appears complete or not at
all. ``dest/.extracted`` then records the archive's sha256, and a second extraction of the same archive returns
at once. One extraction per folder at a time (:mod:`helpers.locks`).

:func:`sniff_archive` and :func:`archive_problem` tell what a file is by its content and whether it reads to
its very end: :mod:`helpers.datasets.fetch.downloads` uses them to judge a body that came without a length.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from helpers.atomic import atomic_write_json
from helpers.datasets.fetch.digests import CHUNK, sha256_file
from helpers.datasets.fetch.errors import DownloadError, UnsafeArchiveError
from helpers.locks import folder_lock

__all__ = [
    "MARKER_NAME",
    "ARCHIVE_SUFFIXES",
    "ARCHIVE_READ_ERRORS",
    "is_archive",
    "archive_stem",
    "extract_archive",
    "sniff_archive",
    "archive_problem",
]

MARKER_NAME = ".extracted"
"""File written inside a completed extraction; it names the archive and its sha256."""

_DRIVE_RE = re.compile(r"^[A-Za-z]:")

_SEPARATORS_RE = re.compile(r"[\\/]+")

_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar")

ARCHIVE_SUFFIXES = (*_TAR_SUFFIXES, ".zip")
"""Names that promise a zip or (optionally compressed) tar archive."""

ARCHIVE_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError)
"""Errors that reading a damaged archive can raise; callers turn them into a DownloadError naming the archive."""

_STREAM_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


def sniff_archive(path: Path) -> str | None:
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


def archive_problem(path: Path, kind: str) -> str | None:
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
                while stream.read(CHUNK):  # to the end: a compressed stream checks its trailer there
                    pass
            if marker != bytes(2 * tarfile.BLOCKSIZE):
                return "ends without the end-of-archive marker (cut off between members)"
            return None
        opener = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}[kind]
        with opener(path, "rb") as stream:
            while stream.read(CHUNK):
                pass
        return None
    except ARCHIVE_READ_ERRORS as exc:
        return f"cannot be read to its end ({type(exc).__name__}: {exc})"


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
    for suffix in ARCHIVE_SUFFIXES:
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
    except ARCHIVE_READ_ERRORS as exc:
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
            except ARCHIVE_READ_ERRORS as exc:
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
        while block := source.read(CHUNK):
            budget.spend(len(block), member)
            out.write(block)
    os.chmod(path, 0o644)
