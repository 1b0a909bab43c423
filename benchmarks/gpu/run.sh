#!/usr/bin/env bash
# Run the workbook's GPU notebooks (05, 06, 07, profile full) within a time budget and collect what they measured.
#
# usage: benchmarks/gpu/run.sh BUDGET_MINUTES [OUT]
#
#   BUDGET_MINUTES  time for the whole run, in minutes (a positive number, e.g. 5 or 7.5). It reaches the
#                   notebooks as FORGERY_TIME_BUDGET_S; each model trains for its share of it (60% for all of them
#                   together: helpers.training.BUDGET_SHARES) and stops with its best weights when that is spent.
#   OUT             where the results go (default runs/gpu-<time>): the executed notebooks, summary.json and
#                   summary.md, metrics/, histories/ (one CSV per model), models/ (the models' JSON records,
#                   not the weights) and run.log. Written even when a step fails.
#
# Exit status: 0 when every step succeeded, 1 when one failed (the log names it), 124 when the workbook ran into
# the hard limit, 2 for bad arguments. Steps, each logged in OUT/run.log:
#   wheels       .whl/*.whl (benchmarks/gpu/build_wheels.sh) installed with --target into FORGERY_GPU_SITE, which
#                goes on PYTHONPATH after the checkout; skipped when there is no .whl/ (a CPU box with the venv)
#   kernel       a Jupyter kernel "python3" for this interpreter, registered in a private folder (JUPYTER_PATH)
#   environment  nvidia-smi, JAX's devices, the precision and XLA settings the notebooks will choose
#   imports      every module the notebooks import, so a missing wheel fails here and not an hour in
#   workbook     python -m helpers workbook --profile full --only 05,06,07, stopped by SIGINT at a hard limit
#   collect      (always) the results copied into OUT
#
# Environment (all optional):
#   PYTHON                      interpreter (default python3)
#   FORGERY_GPU_NOTEBOOKS       notebooks to run (default 05,06,07)
#   FORGERY_GPU_PROFILE         workbook profile (default full)
#   FORGERY_GPU_REQUIRE_GPU     1 (default): fail unless JAX sees a GPU; 0 on a CPU machine
#   FORGERY_GPU_HARD_LIMIT_S    seconds before the workbook is interrupted (default: the budget plus half of it,
#                               at least 2 minutes more; 0: no limit). Data preparation and evaluation are not
#                               under the budget; this bounds them.
#   FORGERY_GPU_WHEELS          wheel folder (default <repo>/.whl)
#   FORGERY_GPU_SITE            where the wheels are installed (default /tmp/site)
#   FORGERY_GPU_WORK            the workbook's own run folder, with models and checkpoints, kept (default: a
#                               temporary folder, removed at the end; OUT gets the small files only)
#   FORGERY_DATA                data folder (default <repo>/data)
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

usage() { echo "usage: benchmarks/gpu/run.sh BUDGET_MINUTES [OUT]" >&2; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    usage
    exit 2
fi
BUDGET_MINUTES=$1
if ! [[ "$BUDGET_MINUTES" =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v m="$BUDGET_MINUTES" 'BEGIN { exit !(m > 0) }'; then
    echo "run.sh: error: BUDGET_MINUTES must be a positive number of minutes (e.g. 5 or 7.5), got '$BUDGET_MINUTES'" >&2
    usage
    exit 2
fi
PYTHON=${PYTHON:-python3}
NOTEBOOKS=${FORGERY_GPU_NOTEBOOKS:-05,06,07}
PROFILE=${FORGERY_GPU_PROFILE:-full}
REQUIRE_GPU=${FORGERY_GPU_REQUIRE_GPU:-1}
WHEELS=${FORGERY_GPU_WHEELS:-$REPO/.whl}
SITE=${FORGERY_GPU_SITE:-/tmp/site}
BUDGET_S=$(awk -v m="$BUDGET_MINUTES" 'BEGIN { printf "%d", m * 60 + 0.5 }')
[ "$BUDGET_S" -ge 1 ] || BUDGET_S=1
DEFAULT_HARD=$(awk -v b="$BUDGET_S" 'BEGIN { extra = b / 2; if (extra < 120) extra = 120; printf "%d", b + extra }')
HARD_LIMIT_S=${FORGERY_GPU_HARD_LIMIT_S:-$DEFAULT_HARD}
if ! [[ "$REQUIRE_GPU" =~ ^[01]$ ]]; then
    echo "run.sh: error: FORGERY_GPU_REQUIRE_GPU must be 0 or 1, got '$REQUIRE_GPU'" >&2
    exit 2
fi
if ! [[ "$HARD_LIMIT_S" =~ ^[0-9]+$ ]]; then
    echo "run.sh: error: FORGERY_GPU_HARD_LIMIT_S must be a whole number of seconds, got '$HARD_LIMIT_S'" >&2
    exit 2
fi

OUT=${2:-$REPO/runs/gpu-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" || { echo "run.sh: error: cannot create $OUT" >&2; exit 2; }
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/run.log"
: > "$LOG"
SCRATCH=$(mktemp -d)
WORK=${FORGERY_GPU_WORK:-$SCRATCH/workbook}
KERNELS="$SCRATCH/jupyter"

log() { echo "[run.sh $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }
FAILED_STEP=""
STATUS=0
# step NAME COMMAND...: run, log its output, remember the first failure. Later steps still run only if they can.
step() {
    local name=$1
    shift
    log "step $name: $*"
    "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        log "step $name: FAILED (exit $rc)"
        if [ -z "$FAILED_STEP" ]; then FAILED_STEP=$name; STATUS=1; fi
        return "$rc"
    fi
    log "step $name: ok"
}

# The small results, copied from the workbook's folder into OUT: at the end, and every 30 s while the workbook
# runs, so that OUT holds the latest summary even if this script is killed outright.
copy_results() {
    [ -d "$WORK" ] || return 0
    cp -p "$WORK"/*.ipynb "$OUT"/ 2>/dev/null
    for name in summary.json summary.md; do [ -f "$WORK/$name" ] && cp -p "$WORK/$name" "$OUT/"; done
    [ -d "$WORK/metrics" ] && cp -rp "$WORK/metrics" "$OUT/"
    for history in "$WORK"/checkpoints/*/history.csv; do
        [ -f "$history" ] || continue
        mkdir -p "$OUT/histories"
        cp -p "$history" "$OUT/histories/$(basename "$(dirname "$history")").csv"
    done
    for record in "$WORK"/models/*.json; do
        [ -f "$record" ] || continue
        mkdir -p "$OUT/models"
        cp -p "$record" "$OUT/models/"
    done
    return 0
}

COPIER=""
finish() {
    [ -z "$COPIER" ] || kill "$COPIER" 2>/dev/null
    copy_results
    log "collected into $OUT: $(cd "$OUT" && find . -type f ! -name run.log | sort | tr '\n' ' ')"
    rm -rf "$SCRATCH"
    if [ "$STATUS" -ne 0 ]; then
        log "FAILED at step $FAILED_STEP (exit $STATUS); see $LOG"
    else
        log "OK: results in $OUT"
    fi
    exit "$STATUS"
}
trap finish EXIT
trap 'STATUS=130; FAILED_STEP=${FAILED_STEP:-interrupted}; exit 130' INT TERM

export KERAS_BACKEND=jax
export FORGERY_TIME_BUDGET_S=$BUDGET_S
export NO_ALBUMENTATIONS_UPDATE=1     # albumentations would look for a newer version online at import
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export PYTHONUNBUFFERED=1
log "budget ${BUDGET_MINUTES} min: FORGERY_TIME_BUDGET_S=$BUDGET_S, hard limit ${HARD_LIMIT_S} s (0: none)"
log "KERAS_BACKEND=$KERAS_BACKEND profile=$PROFILE notebooks=$NOTEBOOKS python=$(command -v "$PYTHON" || echo "$PYTHON")"

# wheels
install_wheels() {
    local wheels=("$WHEELS"/*.whl)
    rm -rf "$SITE"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "${wheels[@]}" || return 1
    echo "installed ${#wheels[@]} wheels into $SITE (left to the machine: $(grep -v '^#' "$WHEELS/.left-out.txt" 2>/dev/null | awk '{print $1}' | grep -v '^$' | tr '\n' ' '))"
}
if compgen -G "$WHEELS/*.whl" > /dev/null; then
    step wheels install_wheels && export PYTHONPATH="$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
    log "step wheels: skipped (no $WHEELS/*.whl: using the environment of $PYTHON as it is)"
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
fi
log "PYTHONPATH=$PYTHONPATH"
[ -z "$FAILED_STEP" ] || exit "$STATUS"

# kernel: the runner looks for "python3"; JUPYTER_PATH comes before every other kernel folder, so this one wins.
step kernel "$PYTHON" -m ipykernel install --prefix "$KERNELS" --name python3 --display-name "Python 3 (forgery-workbook GPU run)" \
    || exit "$STATUS"
export JUPYTER_PATH="$KERNELS/share/jupyter"

# environment
show_environment() {
    if command -v nvidia-smi > /dev/null 2>&1; then
        nvidia-smi || echo "nvidia-smi failed"
    else
        echo "nvidia-smi: not found"
    fi
    "$PYTHON" - "$REQUIRE_GPU" <<'PY'
import importlib.metadata as metadata
import sys

import jax
import keras

from helpers import training

devices = jax.devices()
print(f"jax {jax.__version__} devices: {devices}")
print(f"keras {keras.__version__} backend {keras.backend.backend()}")
kind = training.accelerator()
print(f"accelerator {kind} x{training.device_count()}, compute capability {training.gpu_compute_capability()}, "
      f"precision {training.precision_policy(kind, training.gpu_compute_capability(), None)}, "
      f"jit_compile {training.jit_compile_setting()}")
for name in ("numpy", "scipy", "jaxlib", "ml-dtypes", "opencv-python", "opencv-python-headless", "scikit-image",
             "albumentations", "albucore", "segmentation-models", "jpeglib", "papermill", "ipykernel", "h5py"):
    try:
        print(f"  {name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"  {name} (no distribution metadata)")
if sys.argv[1] == "1" and kind != "gpu":
    sys.exit("JAX sees no GPU (set FORGERY_GPU_REQUIRE_GPU=0 to run on a CPU anyway)")
PY
}
step environment show_environment || exit "$STATUS"

# imports: what the notebooks import, so a missing or broken wheel stops the run here, in seconds
check_imports() {
    "$PYTHON" - <<'PY'
import importlib
import sys

modules = ["cv2", "albumentations", "jpeglib", "papermill", "ipykernel", "ipywidgets", "h5py", "seaborn",
           "helpers.models.segmentation", "helpers.models.classifier", "helpers.pipeline", "helpers.inference",
           "helpers.evaluation.protocol", "helpers.detectors", "helpers.shipped", "helpers.analyze", "helpers.baselines", "helpers.training_plots"]
failed = []
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - every failure is reported, then the step fails
        failed.append(f"{name}: {type(error).__name__}: {error}")
try:
    from helpers.models.sm_compat import import_segmentation_models

    import_segmentation_models()
except Exception as error:  # noqa: BLE001
    failed.append(f"segmentation_models: {type(error).__name__}: {error}")
if failed:
    sys.exit("cannot import:\n  " + "\n  ".join(failed))
print(f"{len(modules)} modules and segmentation_models import")
PY
}
step imports check_imports || exit "$STATUS"

# workbook
mkdir -p "$WORK"
workbook=("$PYTHON" -m helpers workbook --profile "$PROFILE" --only "$NOTEBOOKS" --out "$WORK")
if [ "$HARD_LIMIT_S" -gt 0 ]; then
    # SIGINT first: the runner records the interrupted notebook in summary.json; KILL a minute later if need be.
    workbook=(timeout --signal=INT --kill-after=60 "$HARD_LIMIT_S" "${workbook[@]}")
fi
( while sleep 30; do copy_results; done ) &
COPIER=$!
step workbook "${workbook[@]}"
rc=$?
kill "$COPIER" 2>/dev/null
COPIER=""
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    log "the workbook ran into the hard limit of ${HARD_LIMIT_S} s and was interrupted"
    STATUS=124
fi
exit "$STATUS"
