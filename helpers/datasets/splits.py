"""Leakage-free splits: whole source groups go to train, validation or test, never to two of them.

Why groups: a tampered image and the authentic photo it was made from share almost every pixel; crops of one
photo share its content, camera and compression. If one lands in training and the other in testing, a model
scores by recognising the photo, not the forgery. The seed notebook of this workbook did worse still: it
augmented *before* splitting, so variants of one image sat on both sides. Here the split comes first, by
``group``, and augmentation only ever sees the training split.

The assignment is a greedy balanced partition: groups, largest first (sizes jittered by the seed), each go to
the split furthest below its target share of images; among splits within 5 % (relative) of that one, the group
goes where it best keeps the tampered share at the overall share, so labels stay stratified where the groups
allow it. With few large groups (the embedded set has 16 source
photos) the realised fractions are lumpy; :func:`split_report` shows them.

One split per dataset (notebook 03 computes it; 04 and 05 read it). :func:`load_split` computes the split once
and saves it as ``split.csv`` beside the manifest (:func:`save_split`: one row per image, its path relative to
the manifest as the manifest writes it, its split and the seed that made it); every later call reads that file,
so every notebook trains, validates and tests on the same images whatever its own code does. A saved split
that no longer fits its manifest (images added or removed, a group now spanning two splits, another seed
asked for) is refused with :class:`SplitMismatchError` until ``recompute=True`` replaces it: a silent new split
would quietly move test images into training for every notebook that already ran.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.atomic import atomic_output
from helpers.config import DEFAULT_SEED
from helpers.datasets.manifest import load_manifest

__all__ = [
    "SPLITS",
    "SPLIT_FILE",
    "SplitMismatchError",
    "group_split",
    "split_path",
    "save_split",
    "load_split",
    "split_report",
    "assert_no_group_leakage",
]

SPLITS: tuple[str, ...] = ("train", "val", "test")

SPLIT_FILE = "split.csv"
"""Name of the saved split, beside its ``manifest.csv``."""

_SPLIT_COLUMNS = ("image", "split", "seed")
_EXAMPLES = 3


class SplitMismatchError(ValueError):
    """A saved split that no longer fits its manifest (or was made with another seed); the message says how."""


def group_split(
    manifest: pd.DataFrame,
    *,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    group_column: str = "group",
) -> pd.DataFrame:
    """Return a copy of ``manifest`` with a ``split`` column (``train``, ``val`` or ``test``).

    Rows with the same ``group`` always share a split. Rows without a group (empty or missing column) form
    their own singleton groups, so a manifest without groups still splits (with no protection beyond rows).
    ``val`` and ``test`` are target fractions of images; ``val=0`` gives a train/test split. Deterministic
    given ``seed``. Raises ``ValueError`` when the fractions are out of range or there are fewer groups than
    non-empty splits.
    """
    if not (0 <= val < 1 and 0 < test < 1 and val + test < 1):
        raise ValueError(f"need 0 <= val, 0 < test and val + test < 1; got val={val}, test={test}")
    if len(manifest) == 0:
        raise ValueError("cannot split an empty manifest")
    groups = _group_keys(manifest, group_column)
    targets = {"train": 1.0 - val - test, "val": val, "test": test}
    active = [name for name in SPLITS if targets[name] > 0]

    table = (
        pd.DataFrame({"group": groups, "tampered": manifest["label"].to_numpy() == 1})
        .groupby("group", sort=True)["tampered"]
        .agg(images="size", tampered="sum")
    )
    if len(table) < len(active):
        raise ValueError(f"{len(table)} groups cannot fill {len(active)} splits ({', '.join(active)})")
    # Largest first packs best; a seeded jitter on the sizes lets different seeds give different partitions.
    rng = np.random.default_rng(seed)
    table = table.assign(order=table["images"] * rng.uniform(0.5, 1.5, len(table)))
    table = table.sort_values("order", ascending=False, kind="stable")

    total_images = float(table["images"].sum())
    overall_tampered = float(table["tampered"].sum()) / total_images
    placed = {name: {"images": 0, "tampered": 0} for name in active}
    assignment: dict[str, str] = {}
    # An empty split is the most starved (-100 %), so every split receives a group before any gets a second.
    for group, row in table.iterrows():
        best = _choose(placed, active, row, targets, total_images, overall_tampered)
        _place(placed, assignment, best, group, row)

    out = manifest.copy()
    out["split"] = [assignment[g] for g in groups]
    return out


def _group_keys(manifest: pd.DataFrame, column: str) -> list[str]:
    if column not in manifest:
        return [f"__row{i}" for i in range(len(manifest))]
    keys = []
    for i, value in enumerate(manifest[column]):
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        keys.append(text if text else f"__row{i}")
    return keys


def _place(placed: dict, assignment: dict, name: str, group: str, row: pd.Series) -> None:
    placed[name]["images"] += int(row["images"])
    placed[name]["tampered"] += int(row["tampered"])
    assignment[group] = name


_STARVATION_MARGIN = 0.05
"""Splits within this relative distance of the most starved one all qualify; label balance picks among them."""


def _choose(placed: dict, active: list[str], row: pd.Series, targets: dict, total: float, overall: float) -> str:
    starvation = {name: (placed[name]["images"] / total - targets[name]) / targets[name] for name in active}
    hungriest = min(starvation.values())
    candidates = [name for name in active if starvation[name] <= hungriest + _STARVATION_MARGIN]

    def label_gap(name: str) -> float:
        images = placed[name]["images"] + row["images"]
        return abs((placed[name]["tampered"] + row["tampered"]) / images - overall)

    return min(candidates, key=lambda name: (label_gap(name), starvation[name]))


def split_path(manifest_path: str | os.PathLike[str]) -> Path:
    """Where the split of the manifest at ``manifest_path`` is saved: ``split.csv`` in the same folder."""
    return Path(manifest_path).parent / SPLIT_FILE


def save_split(
    split_frame: pd.DataFrame, manifest_path: str | os.PathLike[str], *, seed: int | None = None
) -> Path:
    """Write the ``split`` column of ``split_frame`` to ``split.csv`` beside ``manifest_path``, atomically.

    Columns: ``image`` (the image's path relative to the manifest's folder, as :func:`write_manifest
    <helpers.datasets.manifest.write_manifest>` writes it), ``split`` and ``seed`` (empty when ``None``: a split
    not made by :func:`group_split`). Images are taken from ``image_path`` when present (as
    :func:`~helpers.datasets.manifest.load_manifest` gives them), else from ``image``. Raises ``ValueError``
    for a missing or unknown split, or one image listed twice with two splits. Returns the file's path.
    """
    target = split_path(manifest_path)
    if "split" not in split_frame:
        raise ValueError(f"{target}: cannot save a split from a frame without a 'split' column")
    splits = split_frame["split"].astype(str).tolist()
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"{target}: unknown split name(s) {', '.join(map(repr, unknown))}; use {', '.join(SPLITS)}")
    assignment: dict[str, str] = {}
    for key, name in zip(_image_keys(split_frame, Path(manifest_path).resolve().parent), splits):
        if assignment.setdefault(key, name) != name:
            raise ValueError(f"{target}: image {key!r} is listed twice, in {assignment[key]!r} and {name!r}")
    table = pd.DataFrame({"image": list(assignment), "split": list(assignment.values()),
                          "seed": "" if seed is None else int(seed)}, columns=list(_SPLIT_COLUMNS))
    with atomic_output(target) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    return target


def load_split(
    manifest: pd.DataFrame | str | os.PathLike[str],
    *,
    seed: int = DEFAULT_SEED,
    create: bool = True,
    recompute: bool = False,
) -> pd.DataFrame:
    """The manifest with its ``split`` column, from ``split.csv`` beside it (computed and saved the first time).

    ``manifest`` is a manifest's path or a frame of :func:`~helpers.datasets.manifest.load_manifest` (or
    :func:`~helpers.datasets.synthetic.synthesize`), whose ``attrs["manifest"]`` says where the manifest lives;
    a frame may hold a subset of the manifest's rows, and gets their splits. The split always covers the
    manifest file as a whole.

    Without a saved split, :func:`group_split` (default fractions, ``seed``) splits the manifest and
    :func:`save_split` saves it (``create=False`` raises ``FileNotFoundError`` instead). A saved split is used
    as it is when it lists exactly the manifest's images, was made with ``seed``, and keeps every group in one
    split; otherwise :class:`SplitMismatchError` says which images were added or removed, which group now spans
    two splits, or which seed made it. ``recompute=True`` splits again and replaces the file.
    """
    frame, manifest_path = _frame_and_path(manifest)
    full = frame if not isinstance(manifest, pd.DataFrame) else load_manifest(manifest_path)
    root = manifest_path.resolve().parent
    target = split_path(manifest_path)
    if recompute or not target.is_file():
        if not (create or recompute):
            raise FileNotFoundError(f"{target}: no saved split of {manifest_path} (load_split with create=False)")
        split = group_split(full, seed=seed)
        save_split(split, manifest_path, seed=seed)
        assignment = dict(zip(_image_keys(full, root), split["split"]))
    else:
        assignment = _checked_assignment(target, full, manifest_path, seed)
    keys = _image_keys(frame, root)
    missing = [key for key in keys if key not in assignment]
    if missing:
        raise ValueError(
            f"{len(missing)} row(s) of the frame are not images of {manifest_path}, e.g. {missing[0]!r}: a frame "
            "passed to load_split must hold rows of its manifest"
        )
    out = frame.copy()
    out["split"] = [assignment[key] for key in keys]
    return out


def _frame_and_path(manifest: pd.DataFrame | str | os.PathLike[str]) -> tuple[pd.DataFrame, Path]:
    if isinstance(manifest, pd.DataFrame):
        location = manifest.attrs.get("manifest")
        if not location:
            raise ValueError(
                "this frame does not say which manifest it came from (attrs['manifest'] is unset): pass the "
                "manifest's path, or a frame from load_manifest or synthesize"
            )
        return manifest, Path(location)
    path = Path(manifest)
    return load_manifest(path), path


def _checked_assignment(target: Path, full: pd.DataFrame, manifest_path: Path, seed: int) -> dict[str, str]:
    """The saved assignment, after checking it against the manifest ``full`` and ``seed``."""
    try:
        saved = pd.read_csv(target, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{target}: not a readable split file ({exc}); delete it to split again") from exc
    absent = [c for c in ("image", "split") if c not in saved.columns]
    if absent:
        raise ValueError(f"{target}: missing column(s) {', '.join(absent)}; delete it to split again")
    unknown = sorted(set(saved["split"]) - set(SPLITS))
    if unknown:
        raise ValueError(f"{target}: unknown split name(s) {', '.join(map(repr, unknown))}; delete it to split again")
    recompute_hint = "load_split(..., recompute=True) replaces it (every notebook then reads the new split)"
    seeds = sorted(set(saved["seed"]) - {""}) if "seed" in saved else []
    if seeds and seeds != [str(int(seed))]:
        raise SplitMismatchError(f"{target}: made with seed {', '.join(seeds)}, not {seed}; {recompute_hint}")
    assignment = dict(zip(saved["image"], saved["split"]))
    current = _image_keys(full, manifest_path.resolve().parent)
    added = [key for key in dict.fromkeys(current) if key not in assignment]
    present = set(current)
    removed = [key for key in assignment if key not in present]
    if added or removed:
        parts = [f"{len(keys)} image(s) {what} since it was saved (e.g. {', '.join(map(repr, keys[:_EXAMPLES]))})"
                 for what, keys in (("added", added), ("removed", removed)) if keys]
        raise SplitMismatchError(f"{target}: no longer matches {manifest_path}: {'; '.join(parts)}; "
                                 f"{recompute_hint}")
    groups = pd.Series(_group_keys(full, "group"))
    spread = pd.DataFrame({"group": groups, "split": [assignment[key] for key in current]})
    straddling = spread.groupby("group")["split"].unique()
    straddling = straddling[straddling.map(len) > 1]
    if len(straddling):
        group, names = straddling.index[0], sorted(straddling.iloc[0])
        raise SplitMismatchError(
            f"{target}: {len(straddling)} group(s) of the manifest now span two splits, e.g. {group!r} in "
            f"{' and '.join(names)} (the groups changed since the split was saved); {recompute_hint}"
        )
    return assignment


def _image_keys(frame: pd.DataFrame, root: Path) -> list[str]:
    """Each row's image as a POSIX path relative to ``root`` (absolute when it lies on another drive)."""
    if "image_path" not in frame and "image" not in frame:
        raise ValueError("a frame to split has neither an image_path nor an image column")
    entries = frame["image_path"] if "image_path" in frame else frame["image"]
    keys = []
    for entry in entries:
        path = Path(str(entry).strip())
        if path.is_absolute():
            try:
                path = Path(os.path.relpath(path, root))
            except ValueError:  # another drive on Windows: keep it absolute
                keys.append(path.as_posix())
                continue
        keys.append(Path(os.path.normpath(path)).as_posix())
    return keys


def split_report(split_manifest: pd.DataFrame, group_column: str = "group") -> pd.DataFrame:
    """Per split: images, share of images, groups, tampered share, and counts per kind when known."""
    groups = pd.Series(_group_keys(split_manifest, group_column), index=split_manifest.index)
    rows = []
    for name in SPLITS:
        part = split_manifest[split_manifest["split"] == name]
        if part.empty:
            continue
        entry = {
            "split": name,
            "images": len(part),
            "share": round(len(part) / len(split_manifest), 3),
            "groups": int(groups[part.index].nunique()),
            "tampered_share": round(float((part["label"] == 1).mean()), 3),
        }
        if "kind" in part:
            entry.update({f"kind:{k}": int(v) for k, v in part["kind"].value_counts().sort_index().items()})
        rows.append(entry)
    return pd.DataFrame(rows).set_index("split").fillna(0)


def assert_no_group_leakage(split_manifest: pd.DataFrame, group_column: str = "group") -> None:
    """Raise ``AssertionError`` naming a group found in more than one split."""
    groups = pd.Series(_group_keys(split_manifest, group_column), index=split_manifest.index)
    spread = pd.DataFrame({"group": groups, "split": split_manifest["split"]}).groupby("group")["split"].nunique()
    leaking = spread[spread > 1]
    if len(leaking):
        raise AssertionError(f"{len(leaking)} groups straddle splits, e.g. {leaking.index[0]!r}")
