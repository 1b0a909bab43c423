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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SPLITS", "group_split", "split_report", "assert_no_group_leakage"]

SPLITS: tuple[str, ...] = ("train", "val", "test")


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
