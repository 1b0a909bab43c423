"""Command line: ``python -m helpers <command>``.

Commands:
  workbook   run the notebooks in order with papermill and gather their metrics
  synth      build the embedded synthetic forgery set
  download   fetch, verify and extract an archive or a registered dataset
  features   compute forensic features (ELA, SRM, ...) for a manifest into a cache
  evaluate   every detector (and saved model) on a manifest by the field's protocol, beside the floor
  train      train the compact forensic mask model on online forgeries
  analyze    one image through every detector: maps, scores, JPEG quality, metadata (JSON + figure)
  validate   check a manifest row by row

Arguments are checked by the parser (exit status 2, one line naming the argument). A command whose output
folder another run is writing into stops with one line naming that run's PID (exit status 1).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from helpers import cli_args, config
from helpers.locks import FolderLockedError


def _add_synth(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "synth",
        help="build the embedded synthetic forgery set",
        description="Generate splicing, copy-move and removal forgeries (with exact masks) and authentic "
        "images from real photographs shipped in scikit-image and scikit-learn, and write a manifest. "
        "An existing set is reused only if its manifest and every file match synth_info.json.",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: DATA_ROOT/synthetic)")
    parser.add_argument("--n", type=cli_args.positive_int, default=config.get_profile("smoke").synthetic_samples,
                        help="number of samples (>= 1)")
    parser.add_argument("--seed", type=cli_args.non_negative_int, default=config.DEFAULT_SEED,
                        help="random seed, >= 0 (same seed, same bytes)")
    parser.add_argument("--workers", type=cli_args.positive_int, default=None, help="processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="regenerate even if an identical set exists")
    parser.add_argument("--from", dest="source", type=Path, default=None, metavar="DIR",
                        help="make forgeries of every manipulation family from your own photographs in DIR "
                             "(PNG samples of --size pixels) instead of the packaged photos")
    parser.add_argument("--size", type=cli_args.positive_int, default=256,
                        help="side of the samples made with --from (default 256)")
    parser.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from helpers.datasets.manifest import summarize
    from helpers.datasets.synthetic import synthesize

    if args.source is not None:
        return _run_synth_from(args)
    out = args.out if args.out is not None else config.data_root() / "synthetic"
    manifest = synthesize(out, n=args.n, seed=args.seed, workers=args.workers, overwrite=args.overwrite)
    if manifest.attrs.get("rebuild_reason"):
        print(f"note: rebuilt {out}: {manifest.attrs['rebuild_reason']}", file=sys.stderr)
    if manifest.attrs.get("removed"):
        print(f"note: removed {len(manifest.attrs['removed'])} file(s) of an earlier, larger set", file=sys.stderr)
    print(summarize(manifest, by=("kind", "label")).to_string(index=False))
    verb = "reused" if manifest.attrs.get("reused") else "wrote"
    print(f"{verb} {len(manifest)} samples and {Path(out) / 'manifest.csv'}")
    return 0


def _run_synth_from(args: argparse.Namespace) -> int:
    from helpers.datasets.manifest import summarize
    from helpers.datasets.online import folder_photos, write_online_set

    try:
        photos = folder_photos(args.source)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else config.data_root() / "online"
    manifest = write_online_set(out, photos, n=args.n, seed=args.seed, size=args.size)
    print(summarize(manifest, by=("kind", "label")).to_string(index=False))
    print(f"wrote {len(manifest)} samples from {len(photos)} photographs and {Path(out) / 'manifest.csv'}")
    return 0


def _add_validate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "validate",
        help="check a manifest row by row",
        description="Check that every image and mask of a manifest exists and is readable, labels are 0/1, "
        "masks match their images' sizes and authentic images carry no tampered pixels.",
    )
    parser.add_argument("manifest", type=Path, help="path of manifest.csv")
    parser.add_argument("--no-mask-pixels", action="store_true", help="read mask headers only (faster)")
    parser.set_defaults(func=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from helpers.datasets.manifest import ManifestError, validate_manifest

    try:
        report = validate_manifest(args.manifest, check_masks=not args.no_mask_pixels)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.ok else 1


def _add_analyze(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "analyze", help="one image through every detector: maps, scores, JPEG quality, metadata (JSON + figure)",
        description="Write <stem>-<hash>_analysis.json and .png into --out (default: the current folder).")
    parser.add_argument("image", type=Path)
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder")
    parser.add_argument("--detectors", default=None,
                        help="comma-separated detector names, or 'all' (default: every training-free detector; on a photo "
                             "over 4 MP the quick set dq, ela, noise)")
    parser.add_argument("--classifier", type=Path, default=None,
                        help="saved classifier (folder or .keras; default: newest in runs/)")
    parser.add_argument("--mask-model", type=Path, default=None,
                        help="saved mask model (folder or .keras; default: newest in runs/)")
    parser.add_argument("--no-search", action="store_true", help="do not look for models under runs/")
    parser.set_defaults(func=_run_analyze)


def _run_analyze(args: argparse.Namespace) -> int:
    # analyze loads every detector and Keras: only its own command pays for that, not `validate` or `synth`.
    from helpers.analyze import run_cli

    return run_cli(args)


def _add_train(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train the compact forensic mask model on online forgeries",
        description="Train the compact forensic mask model on online forgeries made from the training split's "
        "source photos (the packaged ones, plus --photos), mixed with crops of the embedded set's training-split "
        "forgeries (--example-share), for the profile's time budget, keeping the epoch "
        "with the best pixel F1 on the embedded validation split; save it as forensic_net.keras + .json in --out.",
    )
    parser.add_argument("--profile", choices=("smoke", "full"), default="full")
    parser.add_argument("--out", type=Path, required=True, help="folder for forensic_net.keras and .json")
    parser.add_argument("--budget-s", type=cli_args.positive_float, default=None,
                        help="training seconds (default: the profile's mask_training_s)")
    parser.add_argument("--seed", type=cli_args.non_negative_int, default=config.DEFAULT_SEED)
    parser.add_argument("--photos", type=Path, default=None,
                        help="a folder of your own photographs to make training forgeries from as well")
    parser.add_argument("--example-share", type=cli_args.unit_float, default=None,
                        help="share of each batch cut from the embedded training split's forgeries, 0 for online "
                        "forgeries only (default: the profile's mask_example_share)")
    parser.add_argument("--flip-views", type=int, choices=(1, 2, 4), default=4,
                        help="mirror views each map is averaged over, saved with the model; the map threshold and "
                        "image calibration are chosen on them (default: 4; 1 runs the network a quarter as often)")
    parser.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    # Training loads Keras: only its own command pays for that.
    from helpers.shipped import run_train

    return run_train(args)


def build_parser() -> argparse.ArgumentParser:
    from helpers import workbook
    from helpers.datasets import download
    from helpers.evaluation import cli as evaluation_cli
    from helpers.forensics import cache

    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    workbook.register_cli(sub)
    _add_synth(sub)
    download.register_cli(sub)
    cache.register_cli(sub)
    evaluation_cli.register_cli(sub)
    _add_analyze(sub)
    _add_train(sub)
    _add_validate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except FolderLockedError as exc:  # another run writes into the same folder: say who, in one line
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
