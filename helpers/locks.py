"""Folder locks: one writer per output folder; a second is refused by name, a dead writer's lock is taken over.

Taught in notebook 01 (``01_datasets``), where the embedded set is synthesised and real datasets downloaded:
two runs writing into one folder at once (a notebook and a terminal, two Colab tabs) would otherwise
interleave their files, and the manifest of one would point at the images of the other.

A lock is the file ``<folder>/.lock``, created with ``O_CREAT | O_EXCL`` so that exactly one process can
create it, holding JSON with the owner's PID, host name, start time and command line. Then:

* a second writer finds the file and is refused with :class:`FolderLockedError`, whose one-line message names
  the folder, the owner's PID and host and how to proceed;
* a lock whose owner is gone (same host, PID no longer running: the process was killed before it could clean
  up) is *stale*: it is moved aside, a note is printed to stderr, and the new writer proceeds;
* the lock is removed when the ``with`` block ends, normally or by an exception (Ctrl-C included).

A lock from another host (a shared network folder) cannot be checked and counts as held. On Windows, where a
process cannot be probed without opening it, every lock counts as held; delete the file by hand if its owner
is gone. The lock file is written directly, not through :mod:`helpers.atomic`: an atomic *replace* is exactly
what a lock must not do.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LOCK_NAME", "FolderLockedError", "LockOwner", "folder_lock", "read_lock_owner"]

LOCK_NAME = ".lock"
"""The lock file's name inside the locked folder."""

_UNREADABLE_GRACE_S = 10.0
"""A lock file without readable content is being written by its creator for this long at most; after that
its creator died between creating and writing it, and the lock is stale."""
_ATTEMPTS = 5


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock, as its lock file says."""

    pid: int
    host: str
    started: str
    command: str

    def describe(self) -> str:
        command = f", {self.command}" if self.command else ""
        return f"PID {self.pid} on {self.host}{command}, since {self.started}"


class FolderLockedError(RuntimeError):
    """Another process is writing into the folder; the message names it and says what to do."""

    def __init__(self, folder: Path, lock: Path, owner: LockOwner | None) -> None:
        super().__init__(folder, lock, owner)
        self.folder = folder
        self.lock = lock
        self.owner = owner

    def __str__(self) -> str:
        who = self.owner.describe() if self.owner is not None else "a process that is still creating the lock"
        return (
            f"{self.folder} is being written by another process ({who}); wait for it to finish, "
            f"or delete {self.lock} if that process is gone"
        )


def read_lock_owner(folder: str | os.PathLike[str]) -> LockOwner | None:
    """The owner recorded in ``folder``'s lock, or ``None`` when the folder is not locked (or the file is
    unreadable)."""
    try:
        return _parse(Path(folder, LOCK_NAME).read_bytes())
    except OSError:
        return None


@contextmanager
def folder_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if missing) for the ``with`` block; yield the lock file's path.

    Raises :class:`FolderLockedError` when a live process holds it, this process included (the lock is not
    reentrant: a nested writer into the same folder is a bug). A stale lock is taken over with a note.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    lock = root / LOCK_NAME
    content = _acquire(root, lock)
    try:
        yield lock
    finally:
        _release(lock, content)


def _acquire(root: Path, lock: Path) -> bytes:
    content = json.dumps({
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": _command_line(),
        "token": secrets.token_hex(8),  # tells this lock from one a later process with a reused PID writes
    }).encode("utf-8")
    for _ in range(_ATTEMPTS):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        except FileExistsError:
            found = _read_or_none(lock)
            if found is None:
                continue  # released meanwhile: try again
            owner = _parse(found)
            if not _is_stale(lock, owner):
                raise FolderLockedError(root, lock, owner) from None
            _take_over(root, lock, found, owner)
            continue
        try:
            os.write(fd, content)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            lock.unlink(missing_ok=True)
            raise
        os.close(fd)
        return content
    raise FolderLockedError(root, lock, read_lock_owner(root))


def _command_line() -> str:
    """``python -m helpers synth --n 40`` rather than the full path of ``helpers/__main__.py``."""
    if not sys.argv or not sys.argv[0]:
        return ""
    program = Path(sys.argv[0])
    head = f"python -m {program.parent.name}" if program.name == "__main__.py" else program.name
    return " ".join([head, *sys.argv[1:]])[:200]


def _release(lock: Path, content: bytes) -> None:
    # Remove only our own lock: if it was taken over as stale meanwhile (a PID probe gone wrong), the new
    # owner's lock stays.
    if _read_or_none(lock) == content:
        lock.unlink(missing_ok=True)


def _read_or_none(lock: Path) -> bytes | None:
    try:
        return lock.read_bytes()
    except FileNotFoundError:
        return None


def _parse(data: bytes) -> LockOwner | None:
    try:
        record = json.loads(data.decode("utf-8"))
        return LockOwner(int(record["pid"]), str(record["host"]), str(record.get("started", "?")),
                         str(record.get("command", "")))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _is_stale(lock: Path, owner: LockOwner | None) -> bool:
    if owner is None:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return False
        return age > _UNREADABLE_GRACE_S
    if owner.host != socket.gethostname():
        return False
    return not _pid_running(owner.pid)


def _pid_running(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def _take_over(root: Path, lock: Path, found: bytes, owner: LockOwner | None) -> None:
    """Move the stale lock aside; if what was moved is not the stale lock (a new owner got in between), put
    it back."""
    aside = lock.with_name(f"{LOCK_NAME}.stale-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    if aside.read_bytes() != found:
        try:
            os.link(aside, lock)  # fails if yet another lock appeared meanwhile; that one stands
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system
            if not lock.exists():
                os.replace(aside, lock)
                return
        aside.unlink(missing_ok=True)
        return
    aside.unlink(missing_ok=True)
    who = owner.describe() if owner is not None else "a process that died while creating it"
    print(f"note: {root}: taking over the lock left by {who}, which is no longer running", file=sys.stderr)
