"""``python -m helpers synth`` given bad circumstances: a second writer, a dead writer's lock, a set changed
after it was written, a smaller rerun. Each test names the case; the assertions are what the user sees."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest

from bad_input.conftest import error_lines, leave_stale_lock, lock_held_elsewhere, run_cli
from helpers.datasets import synthetic
from helpers.datasets.manifest import load_manifest


def _synth(out: Path, n: int, seed: int) -> list[str]:
    return ["synth", "--out", out, "--n", n, "--seed", seed, "--workers", 1]


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "synth_info.json"}


def test_a_second_synth_into_the_same_folder_is_refused_naming_the_owner_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "synthetic"
    with lock_held_elsewhere(out) as pid:
        code, stdout, err = run_cli(_synth(out, 4, 2), capsys)
        assert code == 1
        assert error_lines(err) == err.strip().splitlines(), "one line, nothing else"
        assert len(error_lines(err)) == 1
        assert str(out) in err and f"PID {pid}" in err
        assert sorted(p.name for p in out.iterdir()) == [".lock"], "the refused run must write nothing"
    assert list(out.iterdir()) == [], "the owner's lock goes with the owner"


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synthetic"
    pid = leave_stale_lock(out)

    code, stdout, err = run_cli(_synth(out, 4, 2), capsys)

    assert code == 0, err
    assert f"taking over the lock left by PID {pid}" in err and "no longer running" in err
    assert "wrote 4 samples" in stdout
    assert not (out / ".lock").exists()


def test_a_failed_synth_run_releases_its_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.locks import read_lock_owner

    out = tmp_path / "synthetic"
    seen: list[int | None] = []

    def interrupted(*args: object, **kwargs: object) -> list[object]:
        owner = read_lock_owner(out)
        seen.append(owner.pid if owner is not None else None)
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "process_map", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synthetic.synthesize(out, n=3, seed=0, workers=1, progress=False)
    assert seen == [os.getpid()], "the run held the folder's lock while it wrote"
    assert not (out / ".lock").exists()
    assert not (out / "manifest.csv").exists()


def test_a_set_whose_image_was_replaced_is_rebuilt_not_reused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synthetic"
    assert run_cli(_synth(out, 6, 1), capsys)[0] == 0
    original = _digests(out)
    # What a concurrent run into the same folder leaves: a file of the other run under a name this manifest uses.
    (out / "images" / "syn_00001.jpg").write_bytes((out / "images" / "syn_00000.jpg").read_bytes())

    code, stdout, err = run_cli(_synth(out, 6, 1), capsys)

    assert code == 0
    assert "wrote 6 samples" in stdout and "reused" not in stdout
    note = next(line for line in err.splitlines() if line.startswith("note: rebuilt"))
    assert "images/syn_00001.jpg has another size than synth_info.json records" in note
    assert _digests(out) == original


def test_a_manifest_changed_after_the_run_is_rebuilt_not_reused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synthetic"
    assert run_cli(_synth(out, 6, 1), capsys)[0] == 0
    original = _digests(out)
    frame = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    frame["label"] = 1 - frame["label"]  # labels that contradict the pixels
    frame.to_csv(out / "manifest.csv", index=False, lineterminator="\n")

    code, stdout, err = run_cli(_synth(out, 6, 1), capsys)

    assert code == 0 and "wrote 6 samples" in stdout
    assert "manifest.csv differs from what synth_info.json records" in err
    assert _digests(out) == original


def test_an_untouched_set_is_reused_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synthetic"
    assert run_cli(_synth(out, 4, 1), capsys)[0] == 0
    stamp = (out / "manifest.csv").stat().st_mtime_ns

    code, stdout, err = run_cli(_synth(out, 4, 1), capsys)

    assert code == 0 and "reused 4 samples" in stdout and "wrote" not in stdout and err == ""
    assert (out / "manifest.csv").stat().st_mtime_ns == stamp


def test_a_smaller_rerun_removes_the_files_it_no_longer_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synthetic"
    assert run_cli(_synth(out, 10, 1), capsys)[0] == 0

    code, stdout, err = run_cli(_synth(out, 3, 2), capsys)

    assert code == 0 and "wrote 3 samples" in stdout
    frame = load_manifest(out / "manifest.csv")
    named = set(frame["image"]) | {m for m in frame["mask"] if m}
    on_disk = {f"{p.parent.name}/{p.name}" for p in out.glob("*/*")}
    assert on_disk == named
    assert "removed" in err
