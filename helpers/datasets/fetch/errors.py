"""Errors of downloads and extractions (notebook 01): each message names the URL or the file and the problem."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DownloadError",
    "HTTPStatusError",
    "ChecksumMismatchError",
    "InsufficientSpaceError",
    "UnsafeArchiveError",
    "human_size",
]


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
            f"({human_size(self.needed)}), only {self.free} bytes ({human_size(self.free)}) free"
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


def human_size(n: float) -> str:
    """``1536`` -> ``1.5 KiB``: a byte count for messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover
