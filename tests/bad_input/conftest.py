"""Shared tools of the bad-input tests: a misbehaving HTTP server, folder locks held by other processes, a tiny
manifest, and the real command line run in-process.

The server listens on 127.0.0.1 only, on a port the OS picks. It speaks HTTP/1.0, so a reply sent without
Content-Length ends where the server closes the connection, which is how a cut transfer looks to a client.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from helpers.__main__ import main
from helpers.datasets.manifest import write_manifest
from helpers.imageio import save_jpeg

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------ server


@dataclass
class Reply:
    """One answer of the server."""

    body: bytes
    content_type: str = "application/octet-stream"
    send_length: bool = True
    """Send Content-Length; without it the body ends when the connection closes."""
    cut: int | None = None
    """Send only this many bytes of the body, then close the connection."""
    ranges: bool = False
    """Answer ``Range: bytes=N-`` with 206 and the rest of the body."""


@dataclass
class Site:
    """What the server answers, path by path; the last reply of a path repeats. Requests are logged."""

    base: str
    routes: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, path: str, *replies: Reply) -> str:
        self.routes[path] = list(replies)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def hits(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        site: Site = self.server.state
        path = self.path.split("?", 1)[0]
        wanted = self.headers.get("Range")
        with site.lock:
            site.requests.append({"path": path, "range": wanted})
            replies = site.routes.get(path)
            reply = (replies.pop(0) if len(replies) > 1 else replies[0]) if replies else None
        if reply is None:
            self.send_error(404, "Not Found")
            return
        body = reply.body
        match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
        if match and reply.ranges:
            start = int(match.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Type", reply.content_type)
        if reply.send_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if reply.cut is None else body[: reply.cut])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture()
def site(http_server) -> Site:
    state = Site(base="")
    state.base = http_server(_Handler, state)
    return state


# ------------------------------------------------------------------------------------------------- locks

_HOLDER = """
import sys
from helpers.locks import folder_lock
with folder_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


@contextmanager
def lock_held_elsewhere(folder: Path) -> Iterator[int]:
    """Another process holds ``folder``'s lock for the block; yields its PID."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    return int(finished.stdout)


def leave_stale_lock(folder: Path) -> int:
    """Write the lock a killed process would have left in ``folder``; return its PID."""
    pid = dead_pid()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                              "started": "2024-01-01 00:00:00", "command": "killed run"}))
    return pid


# ---------------------------------------------------------------------------------------------- commands


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``python -m helpers ARGV`` in this process: exit status (2 for a parser error), stdout, stderr."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    """The lines of ``err`` that report an error (argparse's ``prog: error: ...`` or the CLI's ``error: ...``)."""
    return [line for line in err.splitlines() if line.startswith("error: ") or ": error: " in line]


@pytest.fixture()
def tiny_manifest(tmp_path: Path) -> Path:
    """Three small JPEGs with a manifest."""
    folder = tmp_path / "tiny"
    rng = np.random.default_rng(0)
    rows = []
    for index in range(3):
        pixels = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
        save_jpeg(folder / f"img{index}.jpg", pixels, 85)
        rows.append({"image": f"img{index}.jpg", "mask": "", "label": index % 2})
    return write_manifest(pd.DataFrame(rows), folder / "manifest.csv")
