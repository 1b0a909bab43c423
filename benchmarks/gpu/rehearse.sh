#!/usr/bin/env bash
# Rehearse the GPU check on a CPU machine: build_wheels.sh, then run.sh in an interpreter that holds only what the
# GPU machine holds (benchmarks/gpu/gpu-machine.txt, linked from the development venv) plus the planned wheels.
# A wheel the plan forgot, or a dependency a package imports without declaring it, fails here instead of on
# the GPU machine. Needs PyPI (for the wheels) and about ten minutes of two cores for notebook 05 (smoke).
#
# usage: benchmarks/gpu/rehearse.sh [NOTEBOOKS]        (default 05; e.g. 05,06,07 for all three, much longer)
#
# Environment: VENV_PYTHON (the development venv's interpreter, default .venv/bin/python), REHEARSAL (scratch
# folder, default /tmp/forgery-gpu-rehearsal; the results land in its out/). The wheels are planned for the venv's
# Python version, not 3.12: the walk and the downloads are the same, the interpreter is the one at hand.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
NOTEBOOKS=${1:-05}
VENV_PYTHON=${VENV_PYTHON:-$REPO/.venv/bin/python}
REHEARSAL=${REHEARSAL:-/tmp/forgery-gpu-rehearsal}
[ -x "$VENV_PYTHON" ] || { echo "rehearse: error: no interpreter at $VENV_PYTHON (set VENV_PYTHON)" >&2; exit 2; }
VERSION=$("$VENV_PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
BASE=$("$VENV_PYTHON" -c 'import sys; print(sys._base_executable)')

rm -rf "$REHEARSAL"
mkdir -p "$REHEARSAL"
TARGET_PYTHON=$VERSION WHEEL_DIR="$REHEARSAL/whl" PYTHON="$VENV_PYTHON" PIN_FROM="$VENV_PYTHON" \
    bash "$HERE/build_wheels.sh"

# The "GPU machine": a bare venv whose site-packages links the listed distributions and what they depend on.
"$BASE" -m venv --without-pip "$REHEARSAL/machine"
SITE_PACKAGES=$("$REHEARSAL/machine/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$VENV_PYTHON" - "$HERE/gpu-machine.txt" "$SITE_PACKAGES" <<'PY'
import os, re, sys
from importlib import metadata
from pathlib import Path
from packaging.requirements import Requirement

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

listed = {canonical(line.split("#")[0].strip()) for line in open(sys.argv[1]) if line.split("#")[0].strip()}
installed = {canonical(d.metadata["Name"]): d for d in metadata.distributions()}
todo, closure = [name for name in listed if name in installed], set()
while todo:
    name = todo.pop()
    if name in closure:
        continue
    closure.add(name)
    for text in installed[name].requires or ():
        requirement = Requirement(text)
        if (requirement.marker is None or requirement.marker.evaluate({"extra": ""})) \
                and canonical(requirement.name) in installed:
            todo.append(canonical(requirement.name))
target = Path(sys.argv[2])
for name in sorted(closure):
    dist = installed[name]
    for top in sorted({f.parts[0] for f in dist.files or () if f.parts[0] != ".."}):
        source, link = Path(dist.locate_file(top)), target / top
        if source.exists() and not link.exists():
            os.symlink(source, link)
print(f"rehearse: the machine has {len(closure)} distributions: {', '.join(sorted(closure))}")
PY

env -u PYTHONPATH PYTHON="$REHEARSAL/machine/bin/python" FORGERY_GPU_WHEELS="$REHEARSAL/whl" \
    FORGERY_GPU_SITE="$REHEARSAL/site" FORGERY_GPU_WORK="$REHEARSAL/work" FORGERY_GPU_REQUIRE_GPU=0 \
    FORGERY_GPU_PROFILE=smoke FORGERY_GPU_NOTEBOOKS="$NOTEBOOKS" FORGERY_GPU_HARD_LIMIT_S=0 \
    FORGERY_DATA="$REHEARSAL/data" JAX_PLATFORMS=cpu HOME="$REHEARSAL/home" \
    bash "$HERE/run.sh" 1 "$REHEARSAL/out"
