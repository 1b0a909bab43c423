"""Atomic file writes: a reader sees either the old file or the complete new one, never half of it.

Everything the workbook writes (images, masks, manifests, metrics) goes through here, so an interrupted run
(Ctrl-C, a killed Colab session, a full disk) leaves no truncated file behind that a later run would trust.
JSON has one writer, :func:`atomic_write_json`, and one sanitiser, :func:`json_safe`: what it writes is
strict JSON (``null``, never ``NaN``). Notebook 01 introduces the files written here; every notebook's last
cell records its metrics through them.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_output", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "json_safe"]


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file lives in the destination folder so that the final ``os.replace`` is a rename on one
    file system, which POSIX and Windows both make atomic. On an exception the temporary file is removed and
    ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file private (0600); give it the permissions a plain open() would have had.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int = 2, sort_keys: bool = True) -> Path:
    """Write ``obj`` as strict JSON (UTF-8, trailing newline; keys sorted unless ``sort_keys=False``) atomically.

    The workbook's one JSON writer: ``obj`` goes through :func:`json_safe` first, so NaN and infinities
    become ``null`` and NumPy values plain ones; anything else JSON cannot hold raises ``TypeError`` naming
    it, and nothing is written.
    """
    text = json.dumps(json_safe(obj), indent=indent, sort_keys=sort_keys, ensure_ascii=False, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: NaN and infinities become ``None``, NumPy scalars and arrays Python
    numbers and lists, tuples lists, paths strings and mapping keys strings.

    The workbook's one sanitiser (metrics with an undefined AUC, tables with empty cells): Python's ``json``
    would otherwise write ``NaN``, which strict parsers (browsers, ``jq``, most languages) reject.
    Raises ``TypeError`` for values JSON cannot hold.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key if isinstance(key, str) else str(json_safe(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    # NumPy without importing it: scalars have .item() and shape (), arrays .tolist().
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return json_safe(value.item())
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    raise TypeError(f"cannot store {type(value).__name__} as JSON: {value!r}")
