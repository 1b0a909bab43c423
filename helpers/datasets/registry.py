"""The real datasets of notebook 01: where each comes from, how it is checked, which parser reads it.

One call turns whatever the user has (an archive in ``<data_root>/raw/``, a Kaggle account, or nothing yet)
into a validated manifest::

    from helpers.datasets.registry import prepare_dataset
    manifest = prepare_dataset("casia2")          # -> <data_root>/casia2/manifest.csv

Layout under ``data_root`` (``helpers.config.data_root()``: ``$FORGERY_DATA`` or ``<checkout>/data``)::

    raw/<archive>                    archives as downloaded or placed by hand (names in DatasetSpec.archives)
    raw/checksums.json               SHA-256 of every archive seen (trust on first use when none is published)
    <name>/extracted/<archive stem>/ one folder per archive, written by fetch.extract_archive
    <name>/masks/                    normalised masks (single-channel PNG, 255 = tampered)
    <name>/manifest.csv              the manifest, paths relative to <name>/

None of these datasets publishes a checksum, so ``sha256`` is empty everywhere: the first archive seen is
recorded in ``raw/checksums.json`` and a later archive of the same name with other contents is refused
(:class:`~helpers.datasets.fetch.errors.ChecksumMismatchError`) until the entry is deleted.

Instead of an archive, a dataset may also be unpacked by hand into ``<data_root>/<name>/extracted/``; the
parsers search it recursively (see :mod:`helpers.datasets.sources`). A user's own folder (``"folder"``) lives
in ``<data_root>/folder/images`` and ``<data_root>/folder/masks`` (``X.ext`` -> ``X_mask.png``).

Kaggle slugs below point at community mirrors (re-uploads by Kaggle users, not the datasets' authors); check
the terms on the homepage before use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from helpers import config
from helpers.atomic import atomic_write_json
from helpers.datasets.fetch import (
    MARKER_NAME,
    ChecksumMismatchError,
    DownloadError,
    archive_stem,
    download,
    extract_archive,
    sha256_file,
)
from helpers.datasets.manifest import validate_manifest, write_manifest
from helpers.datasets.sources import PARSERS

__all__ = [
    "DATASETS",
    "DatasetNotAvailable",
    "DatasetSpec",
    "dataset_names",
    "get_dataset",
    "prepare_dataset",
]

MANIFEST_NAME = "manifest.csv"
CHECKSUMS_NAME = "checksums.json"


class DatasetNotAvailable(FileNotFoundError):
    """A dataset's files are not on disk and cannot be fetched; the message says what to put where."""


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the workbook knows about one dataset."""

    name: str
    title: str
    homepage: str
    terms: str
    """Licence / terms of use, in short; the homepage has the full text."""
    obtain: str
    """``"url"`` (direct download), ``"kaggle"`` (Kaggle CLI) or ``"manual"`` (the user places the archive)."""
    parser: str
    """Key of :data:`helpers.datasets.sources.PARSERS`."""
    mask_polarity: str
    """How the dataset's own masks mark tampering: ``"white"``, ``"black"`` or ``"edge"`` (Columbia colours)."""
    counts: str
    instructions: str
    """Step-by-step text for getting the files by hand."""
    archives: tuple[str, ...] = ()
    """Archive file names expected in ``<data_root>/raw/`` (all needed)."""
    optional_archives: tuple[str, ...] = ()
    """Archives used when present (e.g. ground truth published separately)."""
    urls: tuple[str, ...] = ()
    """Direct URLs, one per entry of ``archives`` (only for ``obtain="url"``)."""
    kaggle_dataset: str | None = None
    sha256: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Archive name -> published SHA-256; empty when none is published (then trust on first use)."""
    markers: tuple[str, ...] = ()
    """Folder names that must appear somewhere in the extracted tree (a check that it is this dataset)."""

    def describe(self) -> str:
        """A human-readable summary: title, homepage, terms, counts and the instructions."""
        return "\n".join([
            f"{self.title} ({self.name})",
            f"  homepage: {self.homepage}",
            f"  terms:    {self.terms}",
            f"  contents: {self.counts}",
            f"  obtain:   {self.obtain}" + (f" (kaggle: {self.kaggle_dataset})" if self.kaggle_dataset else ""),
            "",
            textwrap.indent(self.instructions.strip(), "  "),
        ])


def _steps(*lines: str) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            name="casia2",
            title="CASIA Image Tampering Detection Evaluation Database v2.0",
            homepage="https://github.com/namtpham/casia2groundtruth",
            terms="Research use only; cite Dong, Wang & Tan, 'CASIA image tampering detection evaluation "
                  "database', ChinaSIP 2013, and Pham et al., Symmetry 2019 for the ground truth. The original "
                  "host (CASIA, forensics.idealtest.org) is offline; copies circulate as community mirrors.",
            obtain="kaggle",
            # Community mirror of CASIA 2.0 with Au/, Tp/ and 'CASIA 2 Groundtruth/' (not the authors' upload).
            kaggle_dataset="divg07/casia-20-image-tampering-detection-dataset",
            archives=("casia-20-image-tampering-detection-dataset.zip",),
            optional_archives=("casia2groundtruth-master.zip",),
            parser="casia2",
            mask_polarity="white",
            counts="5,123 tampered (splicing and copy-move, JPEG and TIFF) and about 7,400 authentic images; "
                   "ground truth for 5,123 tampered images (namtpham/casia2groundtruth)",
            markers=("Au", "Tp"),
            instructions=_steps(
                "Automatic: install the Kaggle CLI (pip install kaggle), create an API token on kaggle.com "
                "(Account -> Create New API Token) and save it as ~/.kaggle/kaggle.json (or set KAGGLE_USERNAME "
                "and KAGGLE_KEY); prepare_dataset('casia2') then downloads "
                "divg07/casia-20-image-tampering-detection-dataset.",
                "By hand: download that Kaggle dataset in a browser "
                "(https://www.kaggle.com/datasets/divg07/casia-20-image-tampering-detection-dataset) and save the "
                "zip, unrenamed, as <data_root>/raw/casia-20-image-tampering-detection-dataset.zip.",
                "If your copy has no 'CASIA 2 Groundtruth' folder, also download "
                "https://github.com/namtpham/casia2groundtruth as a zip (Code -> Download ZIP) and save it as "
                "<data_root>/raw/casia2groundtruth-master.zip.",
                "Alternatively unpack any CASIA 2.0 copy (folders Au/, Tp/ and the *_gt.png ground truth) into "
                "<data_root>/casia2/extracted/.",
                "Run prepare_dataset('casia2') (or: python -m helpers download casia2).",
            ),
        ),
        DatasetSpec(
            name="casia1",
            title="CASIA Image Tampering Detection Evaluation Database v1.0 with the CASIA 1.0 ground truth",
            homepage="https://github.com/namtpham/casia1groundtruth",
            terms="Research use only; cite Dong, Wang & Tan (ChinaSIP 2013) and Pham et al., Symmetry 2019 "
                  "for the ground truth.",
            obtain="manual",
            archives=("CASIA 1.0 dataset.zip", "CASIA 1.0 groundtruth.zip"),
            parser="casia1",
            mask_polarity="white",
            counts="800 authentic and 921 tampered images (splicing Sp/ and copy-move CM/), 384x256 JPEG",
            markers=("Au", "Sp"),
            instructions=_steps(
                "Open https://github.com/namtpham/casia1groundtruth. Its README links the images (original and "
                "renamed 'Modified' version, ~91 MB, Google Drive / OneDrive); prefer the modified version, "
                "whose tampered names match the ground truth.",
                "Save the image archive as <data_root>/raw/CASIA 1.0 dataset.zip (folders Au/ and Sp/, CM/, "
                "possibly under 'Modified Tp/Tp/').",
                "Download 'CASIA 1.0 groundtruth.zip' from the same repository (folders Sp/ and CM/ with "
                "*_gt.png) and save it as <data_root>/raw/CASIA 1.0 groundtruth.zip.",
                "Alternatively unpack both into <data_root>/casia1/extracted/.",
                "Run prepare_dataset('casia1').",
            ),
        ),
        DatasetSpec(
            name="ifs-tc",
            title="IEEE IFS-TC Image Forensics Challenge, phase 1 training set",
            homepage="https://signalprocessingsociety.org/newsletter/2013/06/ifs-tc-image-forensics-challenge",
            terms="Released to the research community by the IEEE Information Forensics and Security Technical "
                  "Committee after the 2013 challenge; research use, cite the challenge.",
            obtain="manual",
            archives=("phase-01-training.tgz",),
            parser="ifs-tc",
            mask_polarity="black",
            counts="1,050 pristine and 450 fake images (PNG), masks for the fakes (black = tampered)",
            markers=("fake", "pristine"),
            instructions=_steps(
                "Obtain the challenge corpus 'phase-01-training' (the homepage links the challenge website; "
                "the corpus is also mirrored by the community).",
                "Save the archive as <data_root>/raw/phase-01-training.tgz (any .tgz/.zip works if renamed to "
                "that name), or unpack it into <data_root>/ifs-tc/extracted/ so that folders fake/ (images and "
                "*.mask.png) and pristine/ exist somewhere inside.",
                "Run prepare_dataset('ifs-tc').",
            ),
        ),
        DatasetSpec(
            name="columbia",
            title="Columbia Uncompressed Image Splicing Detection Evaluation Dataset",
            homepage="https://www.ee.columbia.edu/ln/dvmm/downloads/authsplcuncmp/",
            terms="Research purposes only; no redistribution; credit the DVMM Laboratory of Columbia University "
                  "(Hsu & Chang, ICME 2006). Download after agreeing to the terms on the homepage.",
            obtain="manual",
            archives=("4cam_auth.tar.bz2", "4cam_splc.tar.bz2"),
            parser="columbia",
            mask_polarity="edge",
            counts="183 authentic and 180 spliced images (TIFF/BMP, 757x568 to 1152x768), colour edge masks",
            markers=("4cam_auth", "4cam_splc"),
            instructions=_steps(
                "Open https://www.ee.columbia.edu/ln/dvmm/downloads/authsplcuncmp/ and follow its download "
                "procedure (agree to the terms).",
                "Save the two archives as <data_root>/raw/4cam_auth.tar.bz2 and <data_root>/raw/4cam_splc.tar.bz2 "
                "(or unpack them into <data_root>/columbia/extracted/ so that 4cam_auth/ and 4cam_splc/ with "
                "4cam_splc/edgemask/ exist inside).",
                "Run prepare_dataset('columbia'). Masks: the green region of each edge mask is taken as the "
                "spliced one (sources.parse_columbia(edge_rule=...) to change).",
            ),
        ),
        DatasetSpec(
            name="coverage",
            title="COVERAGE: copy-move forgery database with similar but genuine objects",
            homepage="https://github.com/wenbihan/coverage",
            terms="Subject to copyright; non-commercial research only; cite Wen et al., ICIP 2016.",
            obtain="manual",
            archives=("COVERAGE.zip",),
            parser="coverage",
            mask_polarity="white",
            counts="100 original and 100 forged (copy-move) images, TIFF, with masks",
            markers=("image", "mask"),
            instructions=_steps(
                "Open https://github.com/wenbihan/coverage and follow 'Download COVERAGE' (a OneDrive folder).",
                "Zip or download the dataset folder (it holds image/ with N.tif and Nt.tif, and mask/ with "
                "Nforged.tif) and save it as <data_root>/raw/COVERAGE.zip, or copy the folder into "
                "<data_root>/coverage/extracted/.",
                "Run prepare_dataset('coverage').",
            ),
        ),
        DatasetSpec(
            name="folder",
            title="Your own images and masks",
            homepage="https://github.com/forgery-workbook/forgery-workbook",
            terms="Yours.",
            obtain="manual",
            parser="folder",
            mask_polarity="white",
            counts="whatever you put there",
            markers=("images",),
            instructions=_steps(
                "Put your images in <data_root>/folder/images/ (JPEG, PNG, TIFF, ...).",
                "Put a mask for each tampered image X.ext in <data_root>/folder/masks/X_mask.png: white (>127) = "
                "tampered, same size as the image. Images without a mask (or with an all-black one) are "
                "authentic.",
                "Run prepare_dataset('folder'); for other layouts call "
                "helpers.datasets.sources.parse_folder(root, out_dir, pattern=..., polarity=..., labels=...) "
                "and write_manifest directly.",
            ),
        ),
    ]
}


def dataset_names() -> list[str]:
    """Names of the known datasets, in registry order."""
    return list(DATASETS)


def get_dataset(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` called ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


# ----------------------------------------------------------------------------------------------------------------
# prepare_dataset


def prepare_dataset(
    name: str,
    data_root: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = True,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Make ``<data_root>/<name>/manifest.csv`` for a registered dataset and return its path.

    Steps: find the archives in ``<data_root>/raw/`` (downloading them when the dataset has direct URLs or a
    Kaggle mirror, ``allow_download`` is true and, for Kaggle, the CLI and credentials exist); verify each
    against its published SHA-256 or the one recorded in ``raw/checksums.json`` (recording it the first time);
    extract each into ``<name>/extracted/<archive stem>/``; check the expected folders are there; run the
    dataset's parser; write the manifest atomically and validate it strictly.

    When the manifest exists and is newer than every extraction marker and every archive, it is returned at
    once (``force=True`` rebuilds it). Raises :class:`DatasetNotAvailable` (a ``FileNotFoundError``) naming
    the expected paths and the instructions when the files are missing and cannot be fetched, and
    :class:`~helpers.datasets.manifest.ManifestError` when the manifest fails validation.
    """
    spec = get_dataset(name)
    root = config.data_root(data_root)
    work = root / spec.name
    manifest = work / MANIFEST_NAME
    if spec.name == "folder":
        return _prepare_folder(spec, root, manifest, progress=progress, force=force)

    raw = root / "raw"
    extracted = work / "extracted"
    if not force and _up_to_date(manifest, extracted, [raw / a for a in (*spec.archives, *spec.optional_archives)]):
        return manifest

    archives = _obtain_archives(spec, raw, extracted, allow_download=allow_download, progress=progress)
    for archive in archives:
        _verify_checksum(archive, spec, raw / CHECKSUMS_NAME)
        extract_archive(archive, extracted / archive_stem(archive.name))
    dataset_root = _locate_root(spec, extracted)
    parser = PARSERS[spec.parser]
    frame = parser(dataset_root, work, progress=progress)
    write_manifest(frame, manifest)
    validate_manifest(manifest, strict=True)
    return manifest


def _up_to_date(manifest: Path, extracted: Path, archives: list[Path]) -> bool:
    if not manifest.is_file():
        return False
    markers = sorted(extracted.glob(f"*/{MARKER_NAME}")) + sorted(extracted.glob(MARKER_NAME))
    if not markers:
        # Unpacked by hand: only trust the manifest if the extracted tree has not changed since.
        if not extracted.is_dir():
            return False
        markers = [extracted]
    newest = max(p.stat().st_mtime for p in [*markers, *(a for a in archives if a.is_file())])
    return manifest.stat().st_mtime >= newest


def _obtain_archives(spec: DatasetSpec, raw: Path, extracted: Path, *, allow_download: bool,
                     progress: bool) -> list[Path]:
    """The archives to extract (required ones, then optional ones present); fetch missing ones if allowed."""
    missing = [a for a in spec.archives if not (raw / a).is_file()]
    if missing and _has_markers(spec, extracted):
        missing = []  # unpacked by hand; use whatever archives there are
    elif missing and allow_download and spec.obtain == "url" and spec.urls:
        urls = dict(zip(spec.archives, spec.urls))
        for archive in missing:
            if archive in urls:
                download(urls[archive], raw, sha256=spec.sha256.get(archive) or None, filename=archive,
                         progress=progress, checksums=raw / CHECKSUMS_NAME)
        missing = [a for a in spec.archives if not (raw / a).is_file()]
    elif missing and allow_download and spec.obtain == "kaggle" and spec.kaggle_dataset:
        problem = _kaggle_problem()
        if problem is None:
            _kaggle_download(spec.kaggle_dataset, raw, progress=progress)
            missing = [a for a in spec.archives if not (raw / a).is_file()]
        else:
            raise DatasetNotAvailable(_not_available_message(spec, raw, extracted, missing, problem))
    if missing:
        reason = "downloads disabled (allow_download=False)" if not allow_download else (
            "this dataset cannot be downloaded automatically" if spec.obtain == "manual" else "download did not "
            "produce the expected file")
        raise DatasetNotAvailable(_not_available_message(spec, raw, extracted, missing, reason))
    present = [raw / a for a in (*spec.archives, *spec.optional_archives) if (raw / a).is_file()]
    return present


def _not_available_message(spec: DatasetSpec, raw: Path, extracted: Path, missing: list[str], reason: str) -> str:
    expected = "\n".join(f"  {raw / a}" for a in missing)
    return (
        f"{spec.title} ({spec.name}) is not available: {reason}.\n"
        f"Expected file(s):\n{expected}\n"
        f"(or the unpacked dataset in {extracted})\n\n"
        f"How to get it ({spec.homepage}), with <data_root> = {raw.parent}:\n"
        f"{textwrap.indent(spec.instructions.strip(), '  ')}\n"
        f"Terms: {spec.terms}"
    )


def _kaggle_problem() -> str | None:
    """Why the Kaggle CLI cannot be used here, or ``None`` when it can."""
    if shutil.which("kaggle") is None:
        return "the Kaggle CLI is not installed (pip install kaggle)"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return None
    folders = [Path(os.environ["KAGGLE_CONFIG_DIR"])] if os.environ.get("KAGGLE_CONFIG_DIR") else []
    folders += [Path.home() / ".kaggle", Path.home() / ".config" / "kaggle"]
    if any((folder / "kaggle.json").is_file() for folder in folders):
        return None
    return "no Kaggle credentials (~/.kaggle/kaggle.json, or KAGGLE_USERNAME and KAGGLE_KEY)"


def _kaggle_download(slug: str, raw: Path, *, progress: bool) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    command = [shutil.which("kaggle") or "kaggle", "datasets", "download", slug, "-p", str(raw)]
    if not progress:
        command.append("-q")
    result = subprocess.run(command, capture_output=not progress, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip() if not progress else ""
        raise DatasetNotAvailable(f"kaggle download of {slug} failed (exit {result.returncode}): "
                                  f"{' '.join(command)}\n{detail}")


def _verify_checksum(archive: Path, spec: DatasetSpec, checksums: Path) -> None:
    """Check ``archive`` against its published sha256, else against ``raw/checksums.json`` (trust on first use:
    the first digest seen is recorded there, in the format :func:`helpers.datasets.fetch.download` uses). A
    mismatch moves the archive aside to ``<name>.corrupt-<hash>`` (never deleted) and raises
    ``ChecksumMismatchError``."""
    recorded: dict[str, str] = {}
    if checksums.is_file():
        try:
            loaded = json.loads(checksums.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DownloadError(f"{checksums}: unreadable checksum file ({exc})") from exc
        if not isinstance(loaded, dict):
            raise DownloadError(f"{checksums}: checksum file must map file names to sha256 strings")
        recorded = {str(k): str(v).lower() for k, v in loaded.items()}
    published = (spec.sha256.get(archive.name) or "").lower()
    expected = published or recorded.get(archive.name)
    digest = sha256_file(archive)
    if expected and digest != expected:
        moved = archive.with_name(f"{archive.name}.corrupt-{digest[:12]}")
        os.replace(archive, moved)
        origin = "published" if published else f"recorded in {checksums}"
        raise ChecksumMismatchError(str(archive), expected, digest, moved, origin)
    if recorded.get(archive.name) != digest:
        recorded[archive.name] = digest
        atomic_write_json(checksums, recorded)


def _find_dirs(top: Path, wanted: set[str], max_depth: int = 6) -> dict[str, list[Path]]:
    """Folders under ``top`` whose name (case-insensitive) is in ``wanted``, shallowest first."""
    found: dict[str, list[Path]] = {w: [] for w in wanted}
    if not top.is_dir():
        return found
    for folder, dirs, _files in os.walk(top):
        depth = len(Path(folder).relative_to(top).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        for d in dirs:
            if d.lower() in wanted:
                found[d.lower()].append(Path(folder) / d)
        if depth >= max_depth:
            dirs[:] = []
    return found


def _has_markers(spec: DatasetSpec, extracted: Path) -> bool:
    wanted = {m.lower() for m in spec.markers}
    return bool(wanted) and all(_find_dirs(extracted, wanted).values())


def _locate_root(spec: DatasetSpec, extracted: Path) -> Path:
    """The folder to hand to the parser: the common ancestor of the expected sub-folders and every unpacked
    archive (archives often add a top folder; ground truth may come in a second archive)."""
    wanted = {m.lower() for m in spec.markers}
    found = _find_dirs(extracted, wanted)
    absent = sorted(m for m, paths in found.items() if not paths)
    if absent:
        top = sorted(p.name for p in extracted.iterdir()) if extracted.is_dir() else []
        raise DatasetNotAvailable(
            f"{extracted} does not look like {spec.title}: no folder named {', '.join(absent)} inside "
            f"(top level: {', '.join(top) or 'empty'}). Expected sub-folders: {', '.join(spec.markers)}.\n\n"
            f"{spec.instructions}"
        )
    anchors = [paths[0].parent for paths in found.values()]
    anchors += [p for p in extracted.iterdir() if p.is_dir() and (p / MARKER_NAME).exists()]
    return Path(os.path.commonpath([str(p) for p in anchors]))


def _prepare_folder(spec: DatasetSpec, root: Path, manifest: Path, *, progress: bool, force: bool) -> Path:
    """``<data_root>/folder/images`` + ``masks`` -> manifest; normalised masks go to ``folder/normalised/masks``
    so that the user's own files are never touched."""
    work = manifest.parent
    images, masks = work / "images", work / "masks"
    if not images.is_dir():
        raise DatasetNotAvailable(
            f"{spec.title}: {images} not found.\n\nHow to set it up:\n"
            f"{textwrap.indent(spec.instructions.strip(), '  ')}"
        )
    if not force and manifest.is_file():
        newest = max(p.stat().st_mtime for p in (images, masks) if p.exists())
        if manifest.stat().st_mtime >= newest:
            return manifest
    frame = PARSERS[spec.parser](work, work / "normalised", images="images", masks="masks", progress=progress)
    write_manifest(frame, manifest)
    validate_manifest(manifest, strict=True)
    return manifest
