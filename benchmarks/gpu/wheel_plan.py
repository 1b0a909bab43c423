"""Which wheels the GPU machine needs, from a pip installation report: the planning half of build_wheels.sh.

``pip install --dry-run --report`` resolves the workbook's requirements into one version of every distribution
they need, each with its declared dependencies (``requires_dist``). This script walks that graph from the
requested distributions and keeps those the GPU machine lacks:

* a distribution named in the machine's list (``gpu-machine.txt``) is not shipped, and neither is anything the
  walk reaches *only through* it: the machine's matplotlib comes with its own kiwisolver and pillow, and a second
  copy of those on ``PYTHONPATH`` would shadow the ones it was built with. The same holds for the declared
  dependencies a headless run never imports (``not-needed.txt``: a debugger, tab completion, browser assets);
* dependency markers are evaluated for the target (CPython 3.12 on x86-64 Linux), not for the interpreter that
  ran pip: pip evaluates markers for itself whatever ``--python-version`` says, so a dependency that only
  Python 3.12 needs (papermill's ``aiohttp; python_version == "3.12"``) is missing from a report made on 3.11,
  and one that only older Pythons need is in it. The first kind is printed to ``--missing`` (exit status 3):
  build_wheels.sh adds those requirements and resolves again; the second kind is simply never reached.

Writes ``name==version`` lines to ``--out`` (sorted) and a one-line summary to standard error. Called by
``benchmarks/gpu/build_wheels.sh``; ``tests/test_gpu_script.py`` checks the walk on a hand-made report.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

try:
    from packaging.requirements import InvalidRequirement, Requirement
except ImportError:  # pragma: no cover - a bare interpreter: pip's own copy of packaging
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement

MISSING_STATUS = 3
"""Exit status when the target needs requirements the report does not hold (resolve again with them)."""


def canonical(name: str) -> str:
    """A distribution name as the index compares names (PEP 503): ``Jupyter_Client`` -> ``jupyter-client``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def target_environment(python: str) -> dict[str, str]:
    """Marker variables of CPython ``python`` (``"3.12"``) on x86-64 Linux, the GPU machine."""
    if not re.fullmatch(r"3\.\d+", python):
        raise ValueError(f"--python must look like 3.12, got {python!r}")
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{python}.0",
        "python_version": python,
        "sys_platform": "linux",
    }


def read_names(path: Path) -> set[str]:
    """Canonical distribution names listed in ``path``: one per line, ``#`` comments and blank lines skipped."""
    names: set[str] = set()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if match is None:
            raise ValueError(f"{path}:{number}: expected one distribution name, got {line!r}")
        names.add(canonical(line))
    return names


def _applies(requirement: Requirement, environment: Mapping[str, str], extras: Iterable[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in (*extras, ""))


def plan(report: Mapping[str, Any], provided: set[str], environment: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``(ship, missing)``: ``{name: version}`` to download, and requirements the target needs beyond the report.

    ``report`` is pip's installation report; ``provided`` canonical names the target already has.
    """
    nodes = {canonical(item["metadata"]["name"]): item for item in report.get("install", [])}
    if not nodes:
        raise ValueError("the report resolves nothing (is it pip's --report output?)")
    stack = [(name, tuple(sorted(item.get("requested_extras") or ())))
             for name, item in nodes.items() if item.get("requested")]
    ship: dict[str, str] = {}
    missing: dict[str, str] = {}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while stack:
        name, extras = stack.pop()
        if (name, extras) in seen or name in provided:
            continue
        seen.add((name, extras))
        metadata = nodes[name]["metadata"]
        ship[name] = metadata["version"]
        for text in metadata.get("requires_dist") or ():
            try:
                requirement = Requirement(text)
            except InvalidRequirement as error:
                raise ValueError(f"{name} {metadata['version']}: unreadable requirement {text!r}: {error}") from None
            if not _applies(requirement, environment, extras):
                continue
            dependency = canonical(requirement.name)
            if dependency in provided:
                continue
            if dependency not in nodes:
                extra = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
                missing[dependency] = f"{requirement.name}{extra}{requirement.specifier}"
                continue
            stack.append((dependency, tuple(sorted(requirement.extras))))
    return dict(sorted(ship.items())), sorted(missing.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="pip install --dry-run --report output (JSON)")
    parser.add_argument("--provided", type=Path, action="append", required=True,
                        help="distribution names the target has or never imports (repeat for several files)")
    parser.add_argument("--python", default="3.12", help="target Python version (default 3.12)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the name==version lines")
    parser.add_argument("--missing", type=Path, required=True, help="where to write requirements to add")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
        provided = set().union(*(read_names(path) for path in args.provided))
        ship, missing = plan(report, provided, target_environment(args.python))
    except (OSError, ValueError) as error:
        print(f"wheel_plan: error: {error}", file=sys.stderr)
        return 2
    args.missing.write_text("".join(f"{line}\n" for line in missing), encoding="utf-8")
    if missing:
        print(f"wheel_plan: Python {args.python} needs {len(missing)} requirement(s) the report lacks: "
              f"{', '.join(missing)}", file=sys.stderr)
        return MISSING_STATUS
    args.out.write_text("".join(f"{name}=={version}\n" for name, version in ship.items()), encoding="utf-8")
    print(f"wheel_plan: {len(ship)} distributions to ship for Python {args.python}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
