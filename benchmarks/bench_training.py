"""Seconds per training batch: Keras' ``model.fit`` against the recipes' own loop, on the same batches.

    python benchmarks/bench_training.py [--model forensic_net] [--size 128] [--batch-size 16] [--batches 10]
                                        [--rounds 3]

The recipes (:mod:`helpers.models.recipes`) train under a time budget, so every second a batch costs is samples
the model never sees. This script times one epoch of ``--batches`` batches both ways, alternately, ``--rounds``
times, on the same fixed online forgeries (the forensic network's six streams, or the scratch U-Net's four):

* ``fit``: ``model.fit(data, epochs=1)`` over the ``PyDataset``, as the recipes did before;
* ``loop``: :func:`helpers.models.recipes._train_epoch`, ``train_on_batch`` per batch with the time schedule;
* ``step only``: ``train_on_batch`` on one batch already in memory, the floor neither can beat;
* ``loop after fit``: the loop again, in the same process once ``fit`` has run (see the comment in ``main``).

It prints the median seconds per batch of each and the ratio fit / loop beside the target (the loop at least
1.1 times faster on a CPU; measured 1.12 with 160-pixel crops on two cores). Steady batches understate the gain
of a whole recipe, which also pays ``fit``'s set-up once per epoch: end to end see ``_train_epoch``'s docs. The first epoch of the loop and of fit (tracing) is left out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from helpers.datasets.online import OnlineForgeries, packaged_photos  # noqa: E402
from helpers.models.forensic_net import forensic_net  # noqa: E402
from helpers.models.losses import get_loss  # noqa: E402
from helpers.models.recipes import DEFAULT_STREAMS, _TimeSchedule, _train_epoch  # noqa: E402
from helpers.models.segmentation import unet_scratch  # noqa: E402

TARGET_RATIO = 1.1
MODELS = {"forensic_net": (lambda streams: forensic_net(streams), DEFAULT_STREAMS),
          "unet_scratch": (lambda streams: unet_scratch(streams), ("ela", "noise", "ghost", "dq"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="forensic_net")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=10, help="batches per timed epoch")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs of each, after one untimed")
    args = parser.parse_args(argv)

    build, streams = MODELS[args.model]
    keras.utils.set_random_seed(0)
    model = build(streams)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=get_loss("bce_dice"), jit_compile="auto")
    data = OnlineForgeries(packaged_photos(), streams=streams, size=args.size, batch_size=args.batch_size,
                           batches=args.batches, seed=0, fixed=True)
    x, y = data[0]

    def fit() -> float:
        model.fit(data, epochs=1, verbose=0)
        return float(args.batches)

    def loop() -> float:
        schedule = _TimeSchedule(time.perf_counter(), 1e9, 1e-3)
        return float(_train_epoch(model, data, schedule, None)[0])

    def step() -> float:
        for _ in range(args.batches):
            model.train_on_batch(x, y)
        return float(args.batches)

    # fit goes last: its PyDataset runs through TensorFlow's generator op, which lowers glibc's trim threshold for
    # the rest of the process ("Memory patch applied: M_TRIM_THRESHOLD=128 kb"), and every later step pays for the
    # page faults; "loop after fit" shows that cost.
    times: dict[str, list[float]] = {"loop": [], "step only": [], "fit": [], "loop after fit": []}
    phases = (((("loop", loop), ("step only", step)), True), ((("fit", fit),), True),
              ((("loop after fit", loop),), False))
    for ways, warm_up in phases:
        for round_ in range(args.rounds + int(warm_up)):
            for name, run in ways:
                started = time.perf_counter()
                batches = run()
                if round_ or not warm_up:  # a first round traces and compiles
                    times[name].append((time.perf_counter() - started) / batches)
    median = {name: statistics.median(values) for name, values in times.items()}
    ratio = median["fit"] / median["loop"]
    print(f"\n{args.model}, {args.size}-pixel crops, batches of {args.batch_size}, {len(streams)} streams, "
          f"{args.rounds} timed epochs of {args.batches} batches each, backend {keras.backend.backend()}")
    print(f"{'way':<10} {'s/batch':>8} {'samples/s':>10}")
    for name, seconds in median.items():
        print(f"{name:<10} {seconds:8.3f} {args.batch_size / seconds:10.1f}")
    met = ratio >= TARGET_RATIO
    print(f"\nfit / loop = {ratio:.2f} (target >= {TARGET_RATIO}: {'met' if met else 'NOT met'}); "
          f"loop / step only = {median['loop'] / median['step only']:.2f} (the input pipeline's share)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
