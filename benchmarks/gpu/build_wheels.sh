#!/usr/bin/env bash
# Download into .whl/ every wheel the workbook needs on the GPU machine that the machine lacks, plus the
# workbook's own wheel; benchmarks/gpu/run.sh installs them there without a network.
#
# usage: benchmarks/gpu/build_wheels.sh            (on a CPU machine that reaches PyPI; about a minute)
#
# How the list is made (no package is named by hand but in the three lists it reads):
#   1. the workbook's requirements come from pyproject.toml, less those the GPU run does not use
#      (tensorflow: the run uses KERAS_BACKEND=jax; jupyterlab: papermill needs a kernel, not the editor), plus
#      what a dependency imports without declaring it (benchmarks/gpu/also-needed.txt);
#   2. pip resolves them for CPython 3.12 on manylinux x86-64, wheels only, into an installation report
#      (pip install --dry-run --report: one version of every distribution, with its declared dependencies);
#   3. wheel_plan.py walks that graph from the requirements, stops at what the GPU machine has
#      (benchmarks/gpu/gpu-machine.txt) or a headless run never imports (not-needed.txt), and keeps the rest. pip evaluates dependency markers for the Python
#      running it, not for 3.12; wheel_plan.py evaluates them for 3.12 and names what the report lacks, which is
#      added to the requirements and resolved again (at most three rounds);
#   4. pip downloads exactly those name==version wheels (--no-deps) and builds the workbook's (pip wheel .);
#   5. the script checks one version of each distribution and the total size, then replaces .whl/ whole.
#
# Environment:
#   PYTHON     interpreter whose pip resolves and downloads (default python3; 3.11+ for tomllib)
#   PIN_FROM   an interpreter whose installed versions become constraints, e.g. PIN_FROM=.venv/bin/python to
#              ship the versions the tests passed with (default: none, the newest that resolve)
#   WHEEL_DIR  where the wheels go (default <repo>/.whl)
#   MAX_MB     refuse a set larger than this (default 60)
#   TARGET_PYTHON  the GPU machine's Python (default 3.12; another version only to rehearse on a CPU machine)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-python3}
WHEEL_DIR=${WHEEL_DIR:-$REPO/.whl}
MAX_MB=${MAX_MB:-60}
TARGET_PYTHON=${TARGET_PYTHON:-3.12}
TARGET=(--only-binary=:all: --python-version "$TARGET_PYTHON" --implementation cp
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
        --platform any)

die() { echo "build_wheels: error: $*" >&2; exit 1; }
command -v "$PYTHON" >/dev/null 2>&1 || die "no interpreter '$PYTHON' (set PYTHON)"
[[ "$MAX_MB" =~ ^[0-9]+$ ]] || die "MAX_MB must be a whole number of megabytes, got '$MAX_MB'"
[[ "$TARGET_PYTHON" =~ ^3\.[0-9]+$ ]] || die "TARGET_PYTHON must look like 3.12, got '$TARGET_PYTHON'"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/wheels"

# 1. Requirements from pyproject.toml.
"$PYTHON" - "$REPO/pyproject.toml" > "$WORK/requirements.txt" <<'PY'
import re, sys
try:
    import tomllib
except ImportError:
    sys.exit("build_wheels: error: needs Python 3.11+ (tomllib) to read pyproject.toml; set PYTHON")
NOT_ON_GPU = {"tensorflow": "KERAS_BACKEND=jax there", "jupyterlab": "papermill needs a kernel, not the editor"}
with open(sys.argv[1], "rb") as handle:
    requirements = tomllib.load(handle)["project"]["dependencies"]
for requirement in requirements:
    name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()
    if name in NOT_ON_GPU:
        print(f"build_wheels: leaving out {name} ({NOT_ON_GPU[name]})", file=sys.stderr)
    else:
        print(requirement)
PY
sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$HERE/also-needed.txt" >> "$WORK/requirements.txt"

CONSTRAINTS=()
if [ -n "${PIN_FROM:-}" ]; then
    "$PIN_FROM" -m pip list --format=freeze --exclude-editable > "$WORK/constraints.txt" \
        || die "cannot list the packages of PIN_FROM=$PIN_FROM"
    CONSTRAINTS=(-c "$WORK/constraints.txt")
    echo "build_wheels: pinning to the versions installed for $PIN_FROM" >&2
fi

# 2-3. Resolve for Python 3.12 and plan; add what 3.12 alone needs and resolve again.
planned=0
for round in 1 2 3; do
    echo "build_wheels: resolving for CPython $TARGET_PYTHON (round $round)" >&2
    "$PYTHON" -m pip install --dry-run --ignore-installed --quiet "${TARGET[@]}" --target "$WORK/target" \
        --report "$WORK/report.json" "${CONSTRAINTS[@]}" -r "$WORK/requirements.txt" \
        || die "pip could not resolve the requirements for Python $TARGET_PYTHON (see above)"
    status=0
    "$PYTHON" "$HERE/wheel_plan.py" "$WORK/report.json" --provided "$HERE/gpu-machine.txt" \
        --provided "$HERE/not-needed.txt" \
        --python "$TARGET_PYTHON" --out "$WORK/plan.txt" --missing "$WORK/missing.txt" || status=$?
    if [ "$status" -eq 0 ]; then planned=1; break; fi
    [ "$status" -eq 3 ] || die "wheel_plan.py failed (exit $status)"
    cat "$WORK/missing.txt" >> "$WORK/requirements.txt"
done
[ "$planned" -eq 1 ] || die "the plan still lacks requirements after three rounds: $(tr '\n' ' ' < "$WORK/missing.txt")"

# 4. Download the planned wheels, then build the workbook's own.
mapfile -t PLAN < "$WORK/plan.txt"
echo "build_wheels: downloading ${#PLAN[@]} wheels" >&2
"$PYTHON" -m pip download --quiet --no-deps "${TARGET[@]}" -d "$WORK/wheels" "${PLAN[@]}" \
    || die "pip download failed (see above)"
had_egg_info=$(ls -d "$REPO"/*.egg-info 2>/dev/null || true)
"$PYTHON" -m pip wheel --quiet --no-deps -w "$WORK/wheels" "$REPO" || die "could not build the workbook's wheel"
rm -rf "$REPO/build"  # setuptools' scratch folders inside the checkout
[ -n "$had_egg_info" ] || rm -rf "$REPO"/*.egg-info

# 5. One version of each distribution, the total size, then .whl/ replaced whole (no stale versions left).
"$PYTHON" - "$WORK/wheels" "$MAX_MB" "${#PLAN[@]}" <<'PY'
import collections, re, sys
from pathlib import Path
folder, max_mb, planned = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
wheels = sorted(folder.glob("*.whl"))
others = sorted(p.name for p in folder.iterdir() if p.suffix != ".whl")
if others:
    sys.exit(f"build_wheels: error: not wheels: {', '.join(others)}")
names = collections.Counter(re.sub(r"[-_.]+", "-", w.name.split("-")[0]).lower() for w in wheels)
twice = sorted(name for name, count in names.items() if count > 1)
if twice:
    sys.exit(f"build_wheels: error: more than one version of {', '.join(twice)}")
if len(wheels) != planned + 1:
    sys.exit(f"build_wheels: error: {len(wheels)} wheels for {planned} planned distributions plus the workbook")
total = 0
for wheel in sorted(wheels, key=lambda w: -w.stat().st_size):
    size = wheel.stat().st_size
    total += size
    print(f"{size / 1e6:8.2f} MB  {wheel.name}")
print(f"{total / 1e6:8.2f} MB  total, {len(wheels)} wheels (limit {max_mb} MB)")
if total > max_mb * 1e6:
    sys.exit(f"build_wheels: error: {total / 1e6:.1f} MB is over MAX_MB={max_mb}")
PY
cat "$HERE/gpu-machine.txt" "$HERE/not-needed.txt" > "$WORK/wheels/.left-out.txt"  # what run.sh relies on
rm -rf "$WHEEL_DIR.new"
mv "$WORK/wheels" "$WHEEL_DIR.new"
rm -rf "$WHEEL_DIR"
mv "$WHEEL_DIR.new" "$WHEEL_DIR"
echo "build_wheels: wrote $WHEEL_DIR" >&2
