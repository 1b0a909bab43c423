"""The mask model that ships inside the package, and the command that made it (notebook 07, ``analyze``).

A newcomer should see a map that finds edits before training anything. The compact forensic network trained by
the ``full`` profile on a CPU (``python -m helpers train --profile full --seed 0 --out helpers/models/pretrained``,
about half an hour on two cores) is small (under 1 MB) and ships in ``helpers/models/pretrained/``; its JSON records
the command, the seed, the learning curve and the scores it reached on the embedded held-out split and on the real
fixtures. ``analyze`` and notebook 07 use it when no trained mask model is given or found, and a test checks that it
still reaches its recorded fixture F1.

The recorded scores are the network's own (``matching=False``); as a detector the model also runs the matching
branch for copy-moves (:mod:`helpers.detectors.mask_map`), whose scores ``train`` records beside them under
``with_matching``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from helpers import config
from helpers.datasets.manifest import load_manifest
from helpers.datasets.online import folder_photos, packaged_photos
from helpers.datasets.splits import load_split
from helpers.datasets.synthetic import synthesize
from helpers.detectors import MaskModelDetector
from helpers.evaluation.protocol import evaluate
from helpers.models.artifact import save_model_artifact
from helpers.models.artifact_files import SHIPPED_MODEL, shipped_model_path
from helpers.models.recipes import DEFAULT_FLIP_VIEWS, profile_mixing, train_forensic_net

__all__ = ["SHIPPED_MODEL", "shipped_model_path", "shipped_mask_detector", "score_mask_model", "run_train"]


def shipped_mask_detector(*, matching: bool = True) -> MaskModelDetector | None:
    """The shipped model as a detector (``None`` when there is none); ``matching=False``: the network alone,
    without the copy-move matching branch."""
    path = shipped_model_path()
    return MaskModelDetector(path, matching=matching) if path is not None else None


def score_mask_model(detector: MaskModelDetector, parts: dict[str, Any]) -> dict[str, float | None]:
    """Pixel F1 at 0.5, best-threshold F1, image AUC and the floor of ``detector`` on each manifest of ``parts``
    (``{"test": frame, "fixtures": frame}``), as ``{"test_pixel_f1": ...}`` for a model's provenance."""
    metrics: dict[str, float | None] = {}
    for part, frame in parts.items():
        if frame is None or not len(frame):
            continue
        row = evaluate({"model": detector}, frame, progress=False).headline("model")
        for key in ("pixel_f1", "best_f1", "image_auc", "floor_f1"):
            metrics[f"{part}_{key}"] = row.get(key)
    return metrics


def run_train(args: argparse.Namespace) -> int:
    """``python -m helpers train`` (its arguments are declared in :mod:`helpers.__main__`)."""
    profile = config.get_profile(args.profile)
    embedded = synthesize(config.data_root() / "synthetic", n=profile.synthetic_samples, seed=args.seed,
                          progress=False)
    split = load_split(embedded, seed=args.seed)
    photos = packaged_photos(set(split.loc[split["split"] == "train", "group"]))
    if args.photos is not None:
        photos = photos + folder_photos(args.photos)
    budget = float(args.budget_s or profile.mask_training_s)
    mixing = profile_mixing(profile, split[split["split"] == "train"],
                            example_share=getattr(args, "example_share", None))
    trained = train_forensic_net(photos, budget_s=budget, validation=split[split["split"] == "val"],
                                 size=profile.mask_crop_size, seed=args.seed,
                                 flip_views=getattr(args, "flip_views", DEFAULT_FLIP_VIEWS), **mixing)
    info = {"task": "segment", "streams": list(trained.streams), "crop": profile.mask_crop_size, "tile": 0,
            "threshold": 0.5, "architecture": "forensic_net", **trained.map_info}
    fixtures = config.fixtures_manifest()
    parts = {"test": split[split["split"] == "test"], "fixtures": load_manifest(fixtures) if fixtures else None}
    metrics = score_mask_model(MaskModelDetector(model=trained.model, info=info, matching=False), parts)
    with_matching = score_mask_model(MaskModelDetector(model=trained.model, info=info), parts)
    command = "python -m helpers " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else "run_train"
    keras_path, json_path = save_model_artifact(trained.model, args.out, "forensic_net", {
        **info,
        "provenance": {"profile": profile.name, "seed": args.seed,
                       "data": {"photos": photos.names, "online_families": "helpers.datasets.families",
                                "embedded_samples": profile.synthetic_samples,
                                "embedded_training_crops": {"images": trained.example_images,
                                                            "share_of_each_batch": trained.example_share,
                                                            "finetune_share": trained.finetune_share}},
                       "metrics": {**trained.summary(), **metrics, "with_matching": with_matching}},
        "details": {"command": command, "learning_curve": trained.curve},
    })
    print(f"trained on {trained.samples_seen} samples ({trained.example_share:.0%} of them crops of "
          f"{trained.example_images} training-split images, the rest online forgeries) in {trained.seconds:.0f} s; "
          f"best validation pixel F1 {trained.best_val_pixel_f1:.3f}")
    for key, value in metrics.items():
        alongside = with_matching.get(key)
        print(f"  {key}: {value if value is None else round(value, 3)}"
              f" (with the matching branch: {alongside if alongside is None else round(alongside, 3)})")
    print(f"saved {keras_path} and {json_path}")
    return 0
