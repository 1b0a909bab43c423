"""The feature cache (notebook 04): forensic maps for every image of a manifest, computed once, in parallel.

ELA, SRM and noise maps cost milliseconds per image but are needed every epoch and by several notebooks, so
they are computed ahead and stored as compressed ``.npz`` files. An entry is keyed by

* the SHA-256 of the image file's **content** (renaming or moving a dataset keeps its cache; changing a file,
  even under the same name, invalidates it; identical files share one entry),
* the feature kind, and
* a hash of the JSON of the feature's parameters and :data:`FEATURE_VERSION`,

and lives at ``OUT/<kind>/<sha256>_<params hash>.npz``. Each file is written atomically
(:func:`helpers.atomic.atomic_output`), so an entry that exists is complete: a second run finds everything up
to date and rewrites nothing. A file that cannot be read is reported (a warning and a row with status
``error`` naming the file) and the run goes on with the others. The parameters of each hash are kept in
``OUT/<kind>/params-<hash>.json`` so that a cache folder documents itself.

Storage (:attr:`FeatureSpec.storage`). A cache that stores SRM as float32 costs 15 bytes per pixel for ELA
and SRM together: 339 MB for the 200 images of the smoke set. So each kind is stored in the smallest dtype
that keeps what the maps say, inside a zip-deflated ``.npz`` (zlib level 1, the fastest: it removes two thirds
to three quarters of the bytes, and a cache run takes about a third longer than writing plain float32 ``.npy``
did):

* ``ela`` as ``uint8``: what :func:`~helpers.forensics.ela.ela` returns (absolute differences of ``uint8``
  images), so nothing is lost; error levels are mostly small, and deflate shrinks them about four times;
* ``srm`` as ``int8`` twelfths: the SRM filters have integer taps and divide by 12, 4 or 2, so on ``uint8``
  pixels every residual is a whole number of twelfths, and truncated at 3 it lies in -36..36 twelfths. The
  entry stores those whole numbers (and the divisor, as a second array ``divisor``), which loads back to
  exactly what :func:`~helpers.forensics.srm.srm` returns, in a third of float16's deflated size (the smoke
  set's SRM: about 15 MB instead of 48 MB). Maps that are not whole twelfths within -127..127 (no truncation,
  other parameters) are stored as ``float16`` instead;
* ``noise``, ``median`` and ``ghosts`` (and such SRM maps) as ``float16``: an 11-bit significand, so every
  value is kept to a relative error of at most 2^-11 (4.9e-4). The median residual's integer values
  (-255..255) are exact; normalised JPEG ghosts (0..1) lose at most 2.4e-4. Values beyond float16's range
  (65504) are refused with an error rather than stored as infinities.

:func:`load_feature` gives ``uint8`` back for ELA and ``float32`` for the others, as the functions return them.
(``benchmarks/bench_features.py`` measures the cache's size and speed.)

Command line (registered by :func:`register_cli`)::

    python -m helpers features --manifest M --kinds ela,srm --out CACHE [--workers N] [--quality Q]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib
import json
import os
import sys
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import config
from helpers.atomic import atomic_output, atomic_write_json
from helpers.cli_args import jpeg_quality, positive_int
from helpers.datasets.manifest import ManifestError, load_manifest
from helpers.forensics.jpeg import DEFAULT_GHOST_QUALITIES
from helpers.forensics.srm import DEFAULT_TRUNCATE
from helpers.imageio import ImageLoadError, load_rgb
from helpers.locks import folder_lock
from helpers.parallel import process_map

__all__ = [
    "FEATURE_VERSION",
    "FEATURES",
    "STORAGE_DTYPES",
    "FeatureCacheError",
    "STATUSES",
    "FeatureSpec",
    "params_hash",
    "resolve_params",
    "compute_features",
    "load_feature",
    "register_cli",
]

FEATURE_VERSION: int = 3
"""Part of every cache key: bump it whenever a feature function changes its output for the same parameters,
or the way entries are stored changes, and every existing entry becomes stale at once. Version 2: compressed
``.npz`` entries in compact dtypes (version 1 wrote float32 ``.npy``); version 3: SRM as ``int8`` twelfths."""

STORAGE_DTYPES: tuple[str, ...] = ("uint8", "int8", "float16")
"""Dtypes an entry may be stored in (see the module docstring for what each keeps)."""

STATUSES: tuple[str, ...] = ("ok", "cached", "skipped", "error")
"""``ok``: computed and written; ``cached``: an up-to-date entry existed, nothing written; ``skipped``: the row
repeats an image file listed earlier in the manifest, whose result it shares; ``error``: see the message."""


class FeatureCacheError(ValueError):
    """A cache entry that cannot be read (not an entry of this version, damaged, or from elsewhere)."""


@dataclass(frozen=True)
class FeatureSpec:
    """A cacheable feature: the function (``rgb -> array``), its default keyword arguments and its storage."""

    name: str
    function: str
    """``module:function``, imported in each worker process (spawned workers need importable names)."""
    defaults: Mapping[str, Any]
    storage: str
    """The dtype on disk, one of :data:`STORAGE_DTYPES`."""
    divisor: int | None = None
    """For ``int8`` storage: values are stored as whole multiples of ``1 / divisor`` (else as ``float16``)."""


FEATURES: dict[str, FeatureSpec] = {
    "ela": FeatureSpec("ela", "helpers.forensics.ela:ela", {"quality": config.ELA_QUALITY, "mode": "raw"}, "uint8"),
    "srm": FeatureSpec("srm", "helpers.forensics.srm:srm", {"bank": "zhou3", "truncate": DEFAULT_TRUNCATE}, "int8",
                       divisor=12),
    "noise": FeatureSpec("noise", "helpers.forensics.noise:local_noise_map", {"window": 16}, "float16"),
    "median": FeatureSpec("median", "helpers.forensics.noise:median_residual", {"size": 3}, "float16"),
    "ghosts": FeatureSpec(
        "ghosts", "helpers.forensics.jpeg:jpeg_ghosts", {"qualities": list(DEFAULT_GHOST_QUALITIES), "window": 16},
        "float16",
    ),
}
"""Kinds :func:`compute_features` knows, with their default parameters."""

_COLUMNS = ["image_path", "kind", "cache_file", "status", "error", "sha256"]
_CHUNK = 1 << 20
_SUFFIX = ".npz"
_ARRAY_NAME = "feature"
"""The map of an entry's ``.npz`` (``np.load(entry)["feature"]``)."""
_DIVISOR_NAME = "divisor"
"""An ``int8`` entry's second array: the map is ``feature / divisor``."""
_DEFLATE_LEVEL = 1
"""zlib level 1: on the smoke set's maps it keeps 38 % of float16 SRM and 25 % of ELA; level 6 saves a further
sixth at six to eight times the compression time."""


def resolve_params(kinds: Sequence[str], params: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict]:
    """Each kind's defaults updated with ``params[kind]``; unknown kinds or parameter names raise ``ValueError``.

    The merged dictionaries round-trip through JSON (tuples become lists), exactly what is hashed.
    """
    params = dict(params or {})
    unknown = sorted(set(params) - set(kinds))
    if unknown:
        raise ValueError(f"params given for kinds not computed: {', '.join(unknown)}")
    resolved: dict[str, dict] = {}
    for kind in kinds:
        if kind not in FEATURES:
            raise ValueError(f"unknown feature kind {kind!r}; choose from {', '.join(FEATURES)}")
        merged = copy.deepcopy(dict(FEATURES[kind].defaults))
        merged.update(params.get(kind, {}))
        try:
            # allow_nan=False: a NaN parameter would hash and record as the non-JSON token NaN.
            resolved[kind] = json.loads(json.dumps(merged, sort_keys=True, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"parameters of {kind!r} must be finite JSON values: {exc}") from exc
    return resolved


def params_hash(kind: str, params: Mapping[str, Any]) -> str:
    """16 hex digits identifying ``kind`` with ``params`` at :data:`FEATURE_VERSION`."""
    text = json.dumps({"kind": kind, "params": params, "version": FEATURE_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def compute_features(
    manifest: pd.DataFrame | str | os.PathLike[str],
    kinds: Sequence[str] = ("ela", "srm"),
    out: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Compute ``kinds`` for every image of ``manifest`` into the cache folder ``out``; return one row per
    manifest image and kind.

    ``manifest`` is a manifest path or a DataFrame with an ``image_path`` column (as
    :func:`helpers.datasets.manifest.load_manifest` gives) or, failing that, absolute paths in ``image``.
    ``out`` defaults to ``<data root>/features`` (:func:`helpers.config.data_root`). ``params`` overrides
    defaults per kind, e.g. ``{"ela": {"quality": 75}}`` (see :data:`FEATURES`).
    ``workers`` processes are spawned (``None``: all cores, ``1``: this process); ``progress`` shows a bar.
    The cache folder is locked for the run (:func:`helpers.locks.folder_lock`): a second writer into it is
    refused with :class:`helpers.locks.FolderLockedError`.

    Returned columns: ``image_path``, ``kind``, ``cache_file``, ``status`` (see :data:`STATUSES`), ``error``
    (``""`` unless ``status == "error"``) and ``sha256``, in manifest order; ``df.attrs["params"]`` holds the
    resolved parameters. Bad images never stop the run: they are warned about and reported in their rows.
    """
    kinds = list(dict.fromkeys(kinds))
    if not kinds:
        raise ValueError("no feature kinds given")
    resolved = resolve_params(kinds, params)
    paths = _image_paths(manifest)  # before touching the cache folder: a bad manifest leaves no trace
    hashes = {kind: params_hash(kind, resolved[kind]) for kind in kinds}
    if out is None:
        out = config.data_root() / "features"
    root = Path(out)
    first_index: dict[str, int] = {}
    for index, path in enumerate(paths):
        first_index.setdefault(path, index)
    unique = list(first_index)
    specs = tuple((kind, resolved[kind], hashes[kind]) for kind in kinds)
    tasks = [(path, specs, str(root)) for path in unique]

    with folder_lock(root):
        for kind in kinds:
            folder = root / kind
            folder.mkdir(parents=True, exist_ok=True)
            sidecar = folder / f"params-{hashes[kind]}.json"
            if not sidecar.exists():
                atomic_write_json(sidecar, {"kind": kind, "params": resolved[kind], "version": FEATURE_VERSION})
        results = process_map(_process_image, tasks, workers=workers, desc="features", unit="img",
                              progress=progress)
        by_path: dict[str, list[dict]] = dict(zip(unique, results))

    records: list[dict] = []
    for index, path in enumerate(paths):
        rows = by_path[path]
        if first_index[path] == index:
            records.extend(rows)
        else:
            records.extend(row if row["status"] == "error" else {**row, "status": "skipped"} for row in rows)
    for message in dict.fromkeys(r["error"] for r in records if r["status"] == "error"):
        warnings.warn(f"feature cache: {message}", stacklevel=2)
    result = pd.DataFrame.from_records(records, columns=_COLUMNS)
    result.attrs["params"] = resolved
    result.attrs["out"] = str(root)
    return result


def load_feature(cache_file: str | os.PathLike[str]) -> np.ndarray:
    """Read one cache entry: ``uint8`` for kinds stored so (ELA), ``float32`` for the float16-stored ones.

    Raises :class:`FeatureCacheError` naming the file when it is not an entry of this cache version (an older
    ``.npy`` entry, a damaged or foreign file).
    """
    path = Path(cache_file)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise FeatureCacheError(
                f"{path}: a plain .npy array (cache version 1), not an entry of cache version {FEATURE_VERSION}; "
                "recompute the features (compute_features writes .npz entries)"
            )
        with loaded:
            if _ARRAY_NAME not in loaded.files:
                raise FeatureCacheError(f"{path}: an .npz file without the array {_ARRAY_NAME!r}, not a cache entry")
            stored = loaded[_ARRAY_NAME]
            divisor = loaded[_DIVISOR_NAME] if _DIVISOR_NAME in loaded.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, FeatureCacheError):
            raise
        raise FeatureCacheError(f"{path}: unreadable cache entry ({type(exc).__name__}: {exc})") from exc
    if stored.dtype == np.float16:
        return stored.astype(np.float32)
    if stored.dtype == np.uint8:
        return stored
    if stored.dtype == np.int8 and divisor is not None and divisor.size == 1 and float(divisor) > 0:
        # The same division srm() ends with, so the float32 values come back bit for bit.
        return stored.astype(np.float32) / np.float32(divisor)
    raise FeatureCacheError(f"{path}: stored as {stored.dtype}, not one of {', '.join(STORAGE_DTYPES)}")


def _image_paths(manifest: pd.DataFrame | str | os.PathLike[str]) -> list[str]:
    if isinstance(manifest, pd.DataFrame):
        df = manifest
    else:
        df = load_manifest(manifest)
    if "image_path" in df.columns:
        column = df["image_path"]
    elif "image" in df.columns:
        column = df["image"]
    else:
        raise ValueError("manifest has neither an image_path nor an image column")
    return [os.fspath(p) for p in column]


# ----------------------------------------------------------------------------------------------------------------
# Worker side (runs in spawned processes: module-level, picklable arguments only)


def _process_image(task: tuple[str, tuple[tuple[str, dict, str], ...], str]) -> list[dict]:
    """Hash one image, find which entries are missing, decode once and compute those; never raises."""
    path, specs, out = task
    try:
        digest = _sha256(Path(path))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return [_row(path, kind, "", "error", f"{path}: cannot read file ({reason})", "") for kind, _, _ in specs]

    rows: list[dict] = []
    pending: list[tuple[str, dict, Path]] = []
    for kind, kind_params, phash in specs:
        target = Path(out) / kind / f"{digest}_{phash}{_SUFFIX}"
        if target.exists():
            rows.append(_row(path, kind, str(target), "cached", "", digest))
        else:
            pending.append((kind, kind_params, target))
            rows.append({})  # filled below, keeping the kinds' order
    if not pending:
        return rows

    try:
        rgb = load_rgb(path)
        failure = ""
    except ImageLoadError as exc:
        failure = str(exc)  # "{path}: {reason}"
    computed: dict[str, dict] = {}
    for kind, kind_params, target in pending:
        if failure:
            computed[kind] = _row(path, kind, "", "error", failure, digest)
            continue
        try:
            array = _function(kind)(rgb, **kind_params)
            _save(target, *_to_storage(array, FEATURES[kind].storage, FEATURES[kind].divisor))
            computed[kind] = _row(path, kind, str(target), "ok", "", digest)
        except Exception as exc:  # noqa: BLE001 - one bad image or parameter must not stop a dataset run
            reason = f"{path}: {kind} failed ({type(exc).__name__}: {exc})"
            computed[kind] = _row(path, kind, "", "error", reason, digest)
    return [row if row else computed[kind] for row, (kind, _, _) in zip(rows, specs)]


def _row(path: str, kind: str, cache_file: str, status: str, error: str, digest: str) -> dict:
    return dict(zip(_COLUMNS, (path, kind, cache_file, status, error, digest)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {}


def _function(kind: str) -> Callable[..., np.ndarray]:
    if kind not in _FUNCTIONS:
        module_name, _, attribute = FEATURES[kind].function.partition(":")
        _FUNCTIONS[kind] = getattr(importlib.import_module(module_name), attribute)
    return _FUNCTIONS[kind]


def _to_storage(array: np.ndarray, storage: str, divisor: int | None = None) -> tuple[np.ndarray, int | None]:
    """``(array in its storage dtype, divisor or None)``; refuses what the dtype cannot hold instead of storing
    it wrongly (``int8`` storage falls back to ``float16`` for a map that is not whole ``1 / divisor`` steps)."""
    if storage == "uint8":
        if array.dtype != np.uint8:
            raise ValueError(f"expected a uint8 map to store as uint8, got {array.dtype}")
        return array, None
    if storage == "int8":
        if not divisor or divisor < 1:
            raise ValueError(f"int8 storage needs a positive integer divisor, not {divisor!r}")
        steps = np.asarray(array, np.float64) * divisor
        whole = np.rint(steps)
        if steps.size and np.isfinite(steps).all() and np.abs(whole).max() <= 127 \
                and np.abs(steps - whole).max() <= 1e-3:
            return whole.astype(np.int8), int(divisor)
        storage = "float16"
    if storage != "float16":
        raise ValueError(f"unknown storage dtype {storage!r}; choose from {', '.join(STORAGE_DTYPES)}")
    with np.errstate(over="ignore"):  # overflow is reported below, naming the value
        stored = array.astype(np.float16)
    overflow = np.isinf(stored) & np.isfinite(array)
    if overflow.any():
        peak = float(np.abs(array[overflow]).max())
        raise ValueError(f"values up to {peak:g} exceed float16's range (65504); the entry cannot be stored")
    return stored, None


def _save(target: Path, array: np.ndarray, divisor: int | None = None) -> None:
    # An .npz written by hand: np.savez_compressed offers no compression level, and level 1 is what keeps the
    # cache fast (see _DEFLATE_LEVEL).
    members = {_ARRAY_NAME: np.ascontiguousarray(array)}
    if divisor is not None:
        members[_DIVISOR_NAME] = np.asarray(divisor, np.int64)
    with atomic_output(target) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_DEFLATE_LEVEL) as archive:
            for name, values in members.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, values, allow_pickle=False)


# ----------------------------------------------------------------------------------------------------------------
# Command line


def register_cli(subparsers: Any) -> None:
    """Add the ``features`` subcommand to an ``argparse`` subparsers object (``args.func(args)`` runs it)."""
    parser = subparsers.add_parser(
        "features",
        help="compute forensic feature maps (ELA, SRM, ...) for a manifest into a cache folder",
        description=(
            "Compute the feature maps of every image of a manifest and store them as compressed .npz files keyed "
            "by image content and parameters. Up-to-date entries are kept; unreadable images are reported and skipped. "
            "Exit status: 0 when every image is done, 1 when some failed, 2 when the manifest is unusable."
        ),
    )
    parser.add_argument("--manifest", required=True, type=Path, metavar="M", help="path of manifest.csv")
    parser.add_argument(
        "--kinds",
        default="ela,srm",
        metavar="K1,K2",
        help=f"comma-separated kinds out of {','.join(FEATURES)} (default: ela,srm)",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="CACHE", help="cache folder")
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N", help="processes (default: all cores)")
    parser.add_argument("--quality", type=jpeg_quality, default=None, metavar="Q",
                        help=f"JPEG quality of ELA, 1-100 (default: {config.ELA_QUALITY})")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    params: dict[str, dict] = {}
    if args.quality is not None:
        if "ela" not in kinds:
            print("error: --quality applies to the ela kind, which is not in --kinds", file=sys.stderr)
            return 2
        params["ela"] = {"quality": args.quality}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # errors are listed below, once each
            result = compute_features(
                args.manifest, kinds, args.out, workers=args.workers, params=params, progress=not args.no_progress
            )
    except (ManifestError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = result["status"].value_counts()
    summary = ", ".join(f"{counts.get(status, 0)} {status}" for status in STATUSES)
    print(f"{len(result)} entries ({', '.join(kinds)}) in {args.out}: {summary}")
    failed = result[result["status"] == "error"]
    for message in dict.fromkeys(failed["error"]):
        print(f"error: {message}", file=sys.stderr)
    return 1 if len(failed) else 0
