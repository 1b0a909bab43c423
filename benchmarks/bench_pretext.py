"""Does a manipulation-family pretext task help the forensic network? Same budget, with and without it.

    python benchmarks/bench_pretext.py [--budget-s 480] [--pretext-share 0.33] [--profile smoke] [--seed 0]
                                       [--data DIR] [--max-test 450] [--out bench_pretext.json]

Two runs of the forensic network (:func:`helpers.models.forensic_net.forensic_net`, the default streams) on the
same data as notebook 06 (online forgeries of the embedded set's training photos mixed with crops of its
training-split forgeries, the profile's share), each under ``--budget-s`` seconds in all:

* ``scratch``: the whole budget on the mask task;
* ``pretext``: ``--pretext-share`` of it naming the manipulation family of online forgeries
  (:func:`helpers.models.pretext.pretrain_families`), the rest on the mask task, from that trunk.

Both are scored with :func:`helpers.evaluation.protocol.evaluate` on the embedded held-out test split (at most
``--max-test`` images, a fixed random subset) and on the real fixtures: pixel F1 at 0.5, best-threshold F1,
image ROC AUC, beside the all-tampered floor; the table shows the difference. Target: the pretext run at least
0.02 above the scratch run in held-out F1 at 0.5 (otherwise it is not worth its share of the budget).
Run-to-run spread of one recipe is a few hundredths on 37 images; pass a ``full`` set (``--profile full``,
450 test images) for a difference that means something.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import keras  # noqa: E402
import pandas as pd  # noqa: E402

from helpers import config  # noqa: E402
from helpers.atomic import atomic_write_json  # noqa: E402
from helpers.cli_args import unit_float  # noqa: E402
from helpers.datasets.manifest import load_manifest  # noqa: E402
from helpers.datasets.online import packaged_photos  # noqa: E402
from helpers.datasets.splits import load_split  # noqa: E402
from helpers.datasets.synthetic import synthesize  # noqa: E402
from helpers.detectors import MaskModelDetector  # noqa: E402
from helpers.evaluation.protocol import evaluate  # noqa: E402
from helpers.models.forensic_net import forensic_net  # noqa: E402
from helpers.models.pretext import pretrain_families  # noqa: E402
from helpers.models.recipes import DEFAULT_STREAMS, train_mask_model  # noqa: E402

COLUMNS = {"pixel_f1": "F1@0.5", "best_f1": "best F1", "image_auc": "image AUC"}
TARGET_GAIN = 0.02


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, default=480.0, help="training seconds of each run, in all")
    parser.add_argument("--pretext-share", type=unit_float, default=1 / 3, help="share of it spent on the pretext")
    parser.add_argument("--profile", choices=("smoke", "full"), default="smoke")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=Path("data/bench_detection"))
    parser.add_argument("--max-test", type=int, default=450, help="held-out images scored (a fixed subset)")
    parser.add_argument("--out", type=Path, default=Path("bench_pretext.json"))
    args = parser.parse_args(argv)

    settings = config.get_profile(args.profile)
    manifest = synthesize(args.data / "synthetic", n=settings.synthetic_samples, seed=args.seed, progress=False)
    split = load_split(manifest, seed=args.seed)
    parts = {name: split[split["split"] == name] for name in ("train", "val", "test")}
    test = parts["test"]
    if len(test) > args.max_test:
        test = test.sample(n=args.max_test, random_state=args.seed).sort_index()
    photos = packaged_photos(set(parts["train"]["group"]))
    fixtures_path = config.fixtures_manifest()
    fixtures = load_manifest(fixtures_path) if fixtures_path is not None else None
    streams = DEFAULT_STREAMS
    common = {"streams": streams, "size": settings.mask_crop_size, "seed": args.seed}

    runs, details = {}, {}
    for name, share in (("scratch", 0.0), ("pretext", args.pretext_share)):
        keras.utils.set_random_seed(args.seed)
        model = forensic_net(streams)
        started = time.perf_counter()
        pretext = None
        if share > 0:
            pretext = pretrain_families(model, photos, budget_s=args.budget_s * share, **common)
        left = args.budget_s - (time.perf_counter() - started)
        trained = train_mask_model(model, photos, budget_s=left, validation=parts["val"],
                                   examples=parts["train"], example_share=settings.mask_example_share,
                                   desc=f"{name}: masks", **common)
        runs[name] = MaskModelDetector(model=trained.model, info={"streams": list(streams), "tile": 0})
        details[name] = {"mask": trained.summary(), "curve": trained.curve,
                         "pretext": pretext.summary() if pretext else None,
                         "pretext_curve": pretext.curve if pretext else None}

    tables, floors = {}, {}
    for part, frame in (("held-out", test), ("fixtures", fixtures)):
        if frame is None:
            continue
        summary = evaluate(runs, frame, progress=False).summary
        whole = summary[summary["dataset"] == "(all)"].set_index("detector")
        tables[part] = whole[list(COLUMNS)].rename(columns=COLUMNS)
        floors[part] = float(whole["floor_f1"].max())
    table = pd.concat(tables, axis=1)
    table.loc["pretext - scratch"] = table.loc["pretext"] - table.loc["scratch"]
    table.loc["all tampered (floor)"] = {(part, "F1@0.5"): floors[part] for part in tables}

    pd.set_option("display.width", 160)
    print(f"\nprofile {args.profile}, {args.budget_s:.0f} s per run, pretext share {args.pretext_share:.2f}, "
          f"{len(test)} held-out images")
    for name, info in details.items():
        pre = info["pretext"]
        said = (f"pretext {pre['samples_seen']} samples, family accuracy {pre['best_val_accuracy']:.3f} "
                f"(chance {1 / len(pre['classes']):.3f}); " if pre else "")
        print(f"  {name}: {said}masks {info['mask']['samples_seen']} samples, "
              f"best validation F1 {info['mask']['best_val_pixel_f1']:.3f}")
    print()
    print(table.round(3).to_string())
    gain = float(table.loc["pretext - scratch", ("held-out", "F1@0.5")])
    print(f"\ntarget: pretext above scratch by >= {TARGET_GAIN} held-out F1@0.5: measured {gain:+.3f}, "
          f"{'met' if gain >= TARGET_GAIN else 'NOT met'}")
    atomic_write_json(args.out, {
        "profile": args.profile, "budget_s": args.budget_s, "pretext_share": args.pretext_share, "seed": args.seed,
        "held_out_images": len(test),
        "table": {f"{part}|{metric}": column.to_dict() for (part, metric), column in table.items()},
        "runs": details,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
