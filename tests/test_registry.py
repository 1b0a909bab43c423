"""Tests for helpers.datasets.registry: the specs, and prepare_dataset on archives placed in data/raw.

No network: archives are miniature replicas zipped in tmp_path; the Kaggle CLI and direct downloads are
replaced by stand-ins that only copy local files.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.datasets import registry
from helpers.datasets.fetch import ChecksumMismatchError, sha256_file
from helpers.datasets.manifest import load_manifest, validate_manifest
from helpers.datasets.parsers import PARSERS
from helpers.datasets.registry import (
    DATASETS,
    DatasetNotAvailable,
    DatasetSpec,
    dataset_names,
    get_dataset,
    prepare_dataset,
)

CASIA2_ARCHIVE = "casia-20-image-tampering-detection-dataset.zip"
SPLICE = "Tp_D_CND_M_N_ani00018_sec00096_00138"
COPYMOVE = "Tp_S_NRN_S_N_cha00011_cha00011_10167"


def _image(path: Path, seed: int, size: tuple[int, int] = (32, 24)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _mask(path: Path, size: tuple[int, int] = (32, 24)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((size[1], size[0]), np.uint8)
    pixels[3:10, 4:14] = 255
    Image.fromarray(pixels).save(path)


def build_casia2(top: Path) -> Path:
    """A CASIA v2 replica under ``top`` (the folder an archive's top level would be)."""
    for i, name in enumerate(["Au_ani_00018", "Au_sec_00096", "Au_cha_00011"]):
        _image(top / "Au" / f"{name}.jpg", i)
    _image(top / "Tp" / f"{SPLICE}.tif", 10)
    _image(top / "Tp" / f"{COPYMOVE}.jpg", 11)
    _mask(top / "CASIA 2 Groundtruth" / f"{SPLICE}_gt.png")
    _mask(top / "CASIA 2 Groundtruth" / f"{COPYMOVE}_gt.png", size=(24, 32))  # transposed
    return top


def _zip(folder: Path, archive: Path, top: str) -> Path:
    """Zip ``folder``'s contents under the top-level folder name ``top`` (as archives usually do)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
    return archive


@pytest.fixture()
def casia2_zip(tmp_path: Path) -> Path:
    return _zip(build_casia2(tmp_path / "replica"), tmp_path / "casia2.zip", "CASIA2")


# ----------------------------------------------------------------------------------------------------------------
# Specs


def test_every_spec_is_complete_and_names_a_parser() -> None:
    assert dataset_names() == ["casia2", "casia1", "ifs-tc", "columbia", "coverage", "folder"]
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert spec.homepage.startswith("https://"), name
        assert len(spec.instructions.splitlines()) >= 2, name
        assert spec.terms and spec.counts and spec.title, name
        assert spec.parser in PARSERS, name
        assert spec.obtain in ("url", "kaggle", "manual"), name
        assert spec.mask_polarity in ("white", "black", "edge"), name
        if spec.obtain == "url":
            assert len(spec.urls) == len(spec.archives) > 0, name
        if spec.obtain == "kaggle":
            assert spec.kaggle_dataset and spec.kaggle_dataset.count("/") == 1, name
        if name != "folder":
            assert spec.archives and spec.markers, name
            for archive in spec.archives:
                assert archive in spec.instructions, f"{name}: instructions do not name {archive}"
        assert all(len(h) == 64 for h in spec.sha256.values()), name
    assert get_dataset("ifs-tc").mask_polarity == "black"
    assert get_dataset("columbia").mask_polarity == "edge"
    assert "5,123" in get_dataset("casia2").counts
    assert "921" in get_dataset("casia1").counts


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="casia2, casia1, ifs-tc, columbia, coverage, folder"):
        get_dataset("casia3")


# ----------------------------------------------------------------------------------------------------------------
# prepare_dataset


def test_prepare_casia2_from_placed_archive_then_return_at_once(
    tmp_path: Path, casia2_zip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    archive = root / "raw" / CASIA2_ARCHIVE
    archive.parent.mkdir(parents=True)
    casia2_zip.rename(archive)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean replica: no warning at all
        manifest = prepare_dataset("casia2", root, allow_download=False, progress=False)
    assert manifest == root.resolve() / "casia2" / "manifest.csv"
    assert validate_manifest(manifest, strict=True).ok
    frame = load_manifest(manifest)
    assert sorted(zip(frame["kind"], frame["label"])) == [
        ("authentic", 0), ("authentic", 0), ("authentic", 0), ("copy-move", 1), ("splice", 1)]
    assert (frame.loc[frame["label"] == 1, "mask"] != "").all()
    assert all(Path(p).is_relative_to(root.resolve() / "casia2") for p in frame["image_path"])
    extracted = root / "casia2" / "extracted" / "casia-20-image-tampering-detection-dataset"
    assert (extracted / ".extracted").is_file() and (extracted / "CASIA2" / "Au").is_dir()
    recorded = json.loads((root / "raw" / "checksums.json").read_text())
    assert recorded == {CASIA2_ARCHIVE: sha256_file(archive)}

    # Second call: the manifest is newer than the extraction marker -> returned at once, nothing redone.
    before = manifest.stat().st_mtime_ns
    def forbidden(*args, **kwargs):
        raise AssertionError("prepare_dataset redid work on an up-to-date dataset")

    monkeypatch.setattr(registry, "extract_archive", forbidden)
    monkeypatch.setitem(PARSERS, "casia2", forbidden)
    assert prepare_dataset("casia2", root, allow_download=False, progress=False) == manifest
    assert manifest.stat().st_mtime_ns == before
    monkeypatch.undo()

    # force=True rebuilds (extraction itself is idempotent: same archive, same folder).
    os.utime(manifest, ns=(before - 10**9, before - 10**9))
    prepare_dataset("casia2", root, allow_download=False, progress=False, force=True)
    assert manifest.stat().st_mtime_ns > before - 10**9


def test_missing_archive_raises_with_path_and_instructions(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with pytest.raises(DatasetNotAvailable) as info:
        prepare_dataset("casia2", root, allow_download=False, progress=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(root.resolve() / "raw" / CASIA2_ARCHIVE) in message
    assert get_dataset("casia2").instructions.splitlines()[0][3:40] in message
    assert "allow_download=False" in message

    with pytest.raises(DatasetNotAvailable) as info:
        prepare_dataset("columbia", root, progress=False)
    message = str(info.value)
    for archive in ("4cam_auth.tar.bz2", "4cam_splc.tar.bz2"):
        assert str(root.resolve() / "raw" / archive) in message
    assert "cannot be downloaded automatically" in message
    assert "https://www.ee.columbia.edu/ln/dvmm/downloads/authsplcuncmp/" in message
    assert not (root / "columbia" / "manifest.csv").exists()


def test_kaggle_without_cli_or_credentials_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry.shutil, "which", lambda name: None)
    with pytest.raises(DatasetNotAvailable, match="Kaggle CLI is not installed") as info:
        prepare_dataset("casia2", tmp_path / "data", progress=False)
    assert "kaggle.json" in str(info.value) and CASIA2_ARCHIVE in str(info.value)

    monkeypatch.setattr(registry.shutil, "which", lambda name: "/usr/bin/kaggle")
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setattr(registry.Path, "home", classmethod(lambda cls: tmp_path / "home"))
    with pytest.raises(DatasetNotAvailable, match="no Kaggle credentials"):
        prepare_dataset("casia2", tmp_path / "data", progress=False)


def test_kaggle_cli_is_run_when_available(tmp_path: Path, casia2_zip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in `kaggle` executable that "downloads" the replica zip into the -p folder.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kaggle"
    script.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "args = sys.argv[1:]\n"
        "assert args[:3] == ['datasets', 'download', 'divg07/casia-20-image-tampering-detection-dataset'], args\n"
        "dest = args[args.index('-p') + 1]\n"
        f"shutil.copy({str(casia2_zip)!r}, dest + '/{CASIA2_ARCHIVE}')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    manifest = prepare_dataset("casia2", tmp_path / "data", progress=False)
    assert (tmp_path / "data" / "raw" / CASIA2_ARCHIVE).is_file()
    assert len(load_manifest(manifest)) == 5


def test_url_datasets_use_download(tmp_path: Path, casia2_zip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = DatasetSpec(
        name="mirror", title="A CASIA v2 mirror", homepage="https://example.org/", terms="test", obtain="url",
        parser="casia2", mask_polarity="white", counts="5", instructions="1. nothing\n2. to do",
        archives=("mirror.zip",), urls=("https://example.org/mirror.zip",), markers=("Au", "Tp"),
    )
    monkeypatch.setitem(DATASETS, "mirror", spec)
    calls = []

    def fake_download(url, dest, *, sha256=None, filename=None, progress=True, checksums=None, **kwargs):
        calls.append((url, Path(dest), filename, Path(checksums).name))
        target = Path(dest) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(casia2_zip.read_bytes())
        return target

    monkeypatch.setattr(registry, "download", fake_download)
    manifest = prepare_dataset("mirror", tmp_path / "data", progress=False)
    assert calls == [("https://example.org/mirror.zip", (tmp_path / "data" / "raw").resolve(), "mirror.zip",
                      "checksums.json")]
    assert manifest.parent.name == "mirror" and validate_manifest(manifest).ok


def test_changed_archive_is_refused_by_trust_on_first_use(tmp_path: Path, casia2_zip: Path) -> None:
    root = tmp_path / "data"
    archive = root / "raw" / CASIA2_ARCHIVE
    archive.parent.mkdir(parents=True)
    archive.write_bytes(casia2_zip.read_bytes())
    prepare_dataset("casia2", root, allow_download=False, progress=False)
    with zipfile.ZipFile(archive, "a") as zf:  # someone swaps in other contents under the same name
        zf.writestr("CASIA2/extra.txt", "changed")
    later = (root / "casia2" / "manifest.csv").stat().st_mtime + 5
    os.utime(archive, (later, later))  # a newer archive makes the manifest stale (coarse clocks: say so)
    with pytest.raises(ChecksumMismatchError):
        prepare_dataset("casia2", root, allow_download=False, progress=False)
    assert not archive.exists() and list(archive.parent.glob(f"{CASIA2_ARCHIVE}.corrupt-*"))


def test_wrong_archive_contents_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "data"
    other = tmp_path / "other"
    _image(other / "photos" / "cat.jpg", 1)
    _zip(other, root / "raw" / "COVERAGE.zip", "COVERAGE")
    with pytest.raises(DatasetNotAvailable, match="does not look like COVERAGE.*image, mask"):
        prepare_dataset("coverage", root, allow_download=False, progress=False)


def test_dataset_unpacked_by_hand_needs_no_archive(tmp_path: Path) -> None:
    root = tmp_path / "data"
    build_casia2(root / "casia2" / "extracted" / "CASIA2")
    manifest = prepare_dataset("casia2", root, allow_download=False, progress=False)
    assert len(load_manifest(manifest)) == 5
    before = manifest.stat().st_mtime_ns
    assert prepare_dataset("casia2", root, allow_download=False, progress=False) == manifest
    assert manifest.stat().st_mtime_ns == before


def test_prepare_a_users_folder(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with pytest.raises(DatasetNotAvailable, match="folder/images"):
        prepare_dataset("folder", root, progress=False)
    _image(root / "folder" / "images" / "holiday.jpg", 1)
    _image(root / "folder" / "images" / "edited.png", 2)
    _mask(root / "folder" / "masks" / "edited_mask.png")
    manifest = prepare_dataset("folder", root, progress=False)
    frame = load_manifest(manifest)
    assert dict(zip(frame["image"], frame["label"])) == {"images/edited.png": 1, "images/holiday.jpg": 0}
    assert sorted(p.name for p in (root / "folder" / "masks").iterdir()) == ["edited_mask.png"]  # untouched
