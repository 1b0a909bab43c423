"""SHA-256 digests of files (notebook 01): what identifies a download, an archive and its extraction."""

from __future__ import annotations

import hashlib
import os
import re

__all__ = ["CHUNK", "sha256_file", "normalise_sha256"]

CHUNK = 1 << 20
"""Bytes read at a time from files and sockets: dataset archives do not fit in memory."""

_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def sha256_file(path: str | os.PathLike[str], chunk: int = CHUNK) -> str:
    """The hex sha256 of a file, read in chunks (dataset archives do not fit in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def normalise_sha256(value: str) -> str:
    """``value`` as 64 lower-case hex digits; ``ValueError`` when it is not a sha256 digest."""
    if not _SHA256_RE.match(value.strip()):
        raise ValueError(f"not a sha256 hex digest (64 hex digits): {value!r}")
    return value.strip().lower()
