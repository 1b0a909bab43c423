from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from helpers.atomic import atomic_output, atomic_write_json, atomic_write_text


def test_written_files_get_ordinary_permissions_not_private_ones(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "a.json", {"b": 1, "a": 2}, sort_keys=False)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text().index('"b"') < path.read_text().index('"a"')


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "x.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
