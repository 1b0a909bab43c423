"""Downloads (resume, retries, verification) against a local HTTP server, and refusal of unsafe archives.

The server listens on 127.0.0.1 only, on a port the OS picks, and is shut down after each test. Every
network call passes a short timeout and few retries, so a regression fails fast instead of hanging.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from helpers.datasets import download as dl
from helpers.datasets.fetch import archives
from helpers.datasets.download import (
    ChecksumMismatchError,
    DownloadError,
    HTTPStatusError,
    InsufficientSpaceError,
    UnsafeArchiveError,
    download,
    extract_archive,
    register_cli,
    sha256_file,
)
from helpers.datasets.manifest import ManifestError

REPO = Path(__file__).resolve().parent.parent
FAST = {"timeout": 5.0, "retries": 2, "backoff": 0.01, "progress": False}


# ------------------------------------------------------------------------------------------ the server


@dataclass
class ServerState:
    """What the local server serves and how it misbehaves; requests are logged for the assertions."""

    files: dict[str, bytes] = field(default_factory=dict)
    drop_first: set[str] = field(default_factory=set)
    """Paths whose first response sends the full Content-Length but only half the body, then closes."""
    fail_500: dict[str, int] = field(default_factory=dict)
    """Paths answered with HTTP 500 this many more times before they succeed."""
    ignore_range: bool = False
    """Answer 200 with the whole file even to Range requests."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def hits(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default stderr log
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        state: ServerState = self.server.state
        path = self.path.split("?", 1)[0]
        wanted = self.headers.get("Range")
        with state.lock:
            state.requests.append({"path": path, "range": wanted, "user_agent": self.headers.get("User-Agent")})
            first = len(state.hits(path)) == 1
            fail = state.fail_500.get(path, 0) > 0
            if fail:
                state.fail_500[path] -= 1
        if fail:
            self.send_error(500, "Internal Server Error")
            return
        data = state.files.get(path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        if wanted and not state.ignore_range:
            match = re.fullmatch(r"bytes=(\d+)-", wanted)
            assert match, wanted
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = data[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if first and path in state.drop_first:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture()
def server(http_server) -> ServerState:
    state = ServerState()
    state.base = http_server(_Handler, state)
    return state


class _DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


def _payload(n: int = 300_000, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _tar_gz_bytes(n: int = 30_000, seed: int = 0) -> bytes:
    """A real .tar.gz holding random bytes: files named like archives must be archives."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        data = _payload(n, seed)
        info = tarfile.TarInfo("data.bin")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip_bytes(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("data.bin", data)
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _listing(folder: Path) -> list[str]:
    """The folder's files, less the download record (which says where each file came from)."""
    return sorted(p.name for p in folder.iterdir() if p.name != dl.RECORDS_NAME)


# ------------------------------------------------------------------------------------------- downloads


def test_download_verifies_and_a_completed_download_is_not_downloaded_again(server: ServerState, tmp_path: Path) -> None:
    data = _payload()
    server.files["/data/set.bin"] = data
    out = tmp_path / "raw"

    path = download(server.url("/data/set.bin"), out, sha256=_sha(data).upper(), **FAST)

    assert path == out / "set.bin"
    assert path.read_bytes() == data
    assert _listing(out) == ["set.bin"]  # no .part left behind
    assert len(server.requests) == 1
    assert server.requests[0]["range"] is None
    assert "forgery-workbook" in server.requests[0]["user_agent"]

    again = download(server.url("/data/set.bin"), out, sha256=_sha(data), **FAST)
    assert again == path
    assert len(server.requests) == 1, "a verified file must be returned without any request"
    unverified = download(server.url("/data/set.bin"), out, **FAST)
    assert unverified == path and len(server.requests) == 1


def test_resume_after_the_connection_drops_midway(server: ServerState, tmp_path: Path) -> None:
    data = _payload(500_000, seed=1)
    server.files["/big.bin"] = data
    server.drop_first.add("/big.bin")

    path = download(server.url("/big.bin"), tmp_path, sha256=_sha(data), **FAST)

    assert path.read_bytes() == data
    hits = server.hits("/big.bin")
    assert len(hits) == 2
    assert hits[0]["range"] is None
    match = re.fullmatch(r"bytes=(\d+)-", hits[1]["range"] or "")
    assert match and int(match.group(1)) == len(data) // 2 > 0
    assert _listing(tmp_path) == ["big.bin"]


def test_server_ignoring_range_restarts_from_zero(server: ServerState, tmp_path: Path) -> None:
    data = _payload(400_000, seed=2)
    server.files["/norange.bin"] = data
    server.drop_first.add("/norange.bin")
    server.ignore_range = True

    path = download(server.url("/norange.bin"), tmp_path, sha256=_sha(data), **FAST)

    assert path.read_bytes() == data  # appending the 200 body to the half .part would corrupt it
    hits = server.hits("/norange.bin")
    assert len(hits) == 2 and hits[1]["range"] == f"bytes={len(data) // 2}-"


def test_partial_file_already_complete_is_accepted_on_416(server: ServerState, tmp_path: Path) -> None:
    data = _payload(50_000, seed=3)
    server.files["/done.bin"] = data
    (tmp_path / "done.bin.part").write_bytes(data)

    path = download(server.url("/done.bin"), tmp_path, sha256=_sha(data), **FAST)

    assert path.read_bytes() == data
    assert [h["range"] for h in server.hits("/done.bin")] == [f"bytes={len(data)}-"]


def test_oversized_partial_file_is_restarted_on_416(server: ServerState, tmp_path: Path) -> None:
    data = _payload(50_000, seed=4)
    server.files["/grown.bin"] = data
    (tmp_path / "grown.bin.part").write_bytes(data + b"junk")

    path = download(server.url("/grown.bin"), tmp_path, sha256=_sha(data), **FAST)

    assert path.read_bytes() == data
    assert [h["range"] for h in server.hits("/grown.bin")] == [f"bytes={len(data) + 4}-", None]


def test_checksum_mismatch_keeps_the_bad_bytes_aside(server: ServerState, tmp_path: Path) -> None:
    data = _payload(20_000, seed=5)
    server.files["/x.zip"] = data
    wrong = "0" * 64

    with pytest.raises(ChecksumMismatchError) as info:
        download(server.url("/x.zip"), tmp_path, sha256=wrong, **FAST)

    actual = _sha(data)
    corrupt = tmp_path / f"x.zip.corrupt-{actual[:12]}"
    assert _listing(tmp_path) == [corrupt.name]
    assert corrupt.read_bytes() == data
    message = str(info.value)
    assert wrong in message and actual in message and str(corrupt) in message and server.url("/x.zip") in message
    assert info.value.moved_to == corrupt


def test_404_fails_at_once_and_500_is_retried(server: ServerState, tmp_path: Path) -> None:
    with pytest.raises(HTTPStatusError) as info:
        download(server.url("/missing.tar"), tmp_path, **FAST)
    assert info.value.status == 404
    assert "404" in str(info.value) and server.url("/missing.tar") in str(info.value)
    assert len(server.hits("/missing.tar")) == 1, "4xx must not be retried"
    assert _listing(tmp_path) == []

    data = _payload(10_000, seed=6)
    server.files["/flaky.bin"] = data
    server.fail_500["/flaky.bin"] = 1
    path = download(server.url("/flaky.bin"), tmp_path, sha256=_sha(data), **FAST)
    assert path.read_bytes() == data
    assert len(server.hits("/flaky.bin")) == 2

    server.files["/down.bin"] = data
    server.fail_500["/down.bin"] = 100
    with pytest.raises(DownloadError) as info:
        download(server.url("/down.bin"), tmp_path, **FAST)
    assert not isinstance(info.value, HTTPStatusError)
    assert "500" in str(info.value) and server.url("/down.bin") in str(info.value)
    assert len(server.hits("/down.bin")) == FAST["retries"] + 1
    assert not (tmp_path / "down.bin").exists()


def test_trust_on_first_use_records_then_detects_a_changed_file(server: ServerState, tmp_path: Path) -> None:
    first = _tar_gz_bytes(30_000, seed=7)
    server.files["/casia.tar.gz"] = first
    raw = tmp_path / "raw"
    ledger = raw / "checksums.json"

    path = download(server.url("/casia.tar.gz"), raw, checksums=ledger, **FAST)
    assert json.loads(ledger.read_text()) == {"casia.tar.gz": _sha(first)}
    download(server.url("/casia.tar.gz"), raw, checksums=ledger, **FAST)
    assert len(server.requests) == 1

    changed = _tar_gz_bytes(30_000, seed=8)
    server.files["/casia.tar.gz"] = changed
    path.unlink()
    with pytest.raises(ChecksumMismatchError) as info:
        download(server.url("/casia.tar.gz"), raw, checksums=ledger, **FAST)

    assert len(server.requests) == 2
    assert _sha(first) in str(info.value) and str(ledger) in str(info.value)
    assert not path.exists()
    assert (raw / f"casia.tar.gz.corrupt-{_sha(changed)[:12]}").read_bytes() == changed
    assert json.loads(ledger.read_text()) == {"casia.tar.gz": _sha(first)}, "the ledger must not be rewritten"


def test_existing_file_not_matching_the_ledger_is_refused_without_network(server: ServerState, tmp_path: Path) -> None:
    ledger = tmp_path / "checksums.json"
    ledger.write_text(json.dumps({"a.bin": "1" * 64}))
    (tmp_path / "a.bin").write_bytes(b"tampered")

    with pytest.raises(ChecksumMismatchError):
        download(server.url("/a.bin"), tmp_path, checksums=ledger, **FAST)
    assert server.requests == []
    assert not (tmp_path / "a.bin").exists()
    assert (tmp_path / f"a.bin.corrupt-{_sha(b'tampered')[:12]}").read_bytes() == b"tampered"


def test_not_enough_disk_space_is_refused_before_writing(
    server: ServerState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _payload(100_000, seed=9)
    server.files["/huge.bin"] = data
    monkeypatch.setattr(shutil, "disk_usage", lambda path: _DiskUsage(10**12, 10**12 - 1000, 1000))

    with pytest.raises(InsufficientSpaceError) as info:
        download(server.url("/huge.bin"), tmp_path, **FAST)

    assert info.value.needed == len(data) and info.value.free == 1000
    assert str(len(data)) in str(info.value) and server.url("/huge.bin") in str(info.value)
    assert len(server.requests) == 1, "not a transient error: no retries"
    assert not (tmp_path / "huge.bin").exists()


@pytest.mark.parametrize("path", ["/", "/files/%2e%2e", "/dir/.."])
def test_urls_without_a_usable_file_name_are_refused(server: ServerState, tmp_path: Path, path: str) -> None:
    with pytest.raises(DownloadError, match="file name"):
        download(server.url(path), tmp_path / "out", **FAST)
    assert server.requests == []


def test_file_names_from_urls_are_sanitised(server: ServerState, tmp_path: Path) -> None:
    server.files["/a%20b/we%27ird%3Bname.zip"] = _zip_bytes(b"payload")
    path = download(server.url("/a%20b/we%27ird%3Bname.zip?x=1"), tmp_path, **FAST)
    assert path == tmp_path / "we_ird_name.zip"
    with pytest.raises(DownloadError, match="invalid file name"):
        download(server.url("/whatever"), tmp_path, filename="../escape", **FAST)
    with pytest.raises(DownloadError, match="only http"):
        download("file:///etc/passwd", tmp_path, **FAST)


# ------------------------------------------------------------------------------------------ extraction

GOOD_FILES = {
    "data/a.txt": b"alpha\n",
    "data/sub/b.bin": bytes(range(256)) * 40,
    "top.txt": b"top level\n",
}


def _tarinfo(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, linkname: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.linkname = linkname
    info.mode = mode
    return info


def _write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _write_zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


def _good_tar(path: Path, mode: str) -> Path:
    members: list[tuple[tarfile.TarInfo, bytes | None]] = [(_tarinfo("data", tarfile.DIRTYPE, mode=0o777), None)]
    for name, data in GOOD_FILES.items():
        members.append((_tarinfo(name, mode=0o4755 if name == "top.txt" else 0o644), data))
    members.append((_tarinfo("data/link_to_a", tarfile.SYMTYPE, linkname="a.txt"), None))
    members.append((_tarinfo("data/sub/up_link", tarfile.SYMTYPE, linkname="../a.txt"), None))
    members.append((_tarinfo("data/hard_a", tarfile.LNKTYPE, linkname="data/a.txt"), None))
    return _write_tar(path, members, mode)


def _good_zip(path: Path) -> Path:
    members: list[tuple[zipfile.ZipInfo | str, bytes]] = []
    for name, data in GOOD_FILES.items():
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = ((stat.S_IFREG | (0o4755 if name == "top.txt" else 0o600)) << 16)
        members.append((info, data))
    return _write_zip(path, members)


def _snapshot(root: Path) -> set[str]:
    """Every file, folder and link under ``root`` (links not followed)."""
    found: set[str] = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


def _partials(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if ".partial-" in p.name]


@pytest.mark.parametrize(
    "name, builder",
    [
        ("good.tar.gz", lambda p: _good_tar(p, "w:gz")),
        ("good.tar.bz2", lambda p: _good_tar(p, "w:bz2")),
        ("good.tar.xz", lambda p: _good_tar(p, "w:xz")),
        ("good.dat", lambda p: _good_tar(p, "w")),  # plain tar, recognised by content
        ("good.zip", _good_zip),
        ("good.download", _good_zip),  # zip under a misleading name
    ],
)
def test_good_archives_extract_once(tmp_path: Path, name: str, builder: Callable[[Path], Path]) -> None:
    archive = builder(tmp_path / name)
    dest = tmp_path / "out" / "dataset"

    assert extract_archive(archive, dest) == dest

    for member, data in GOOD_FILES.items():
        path = dest / member
        assert path.read_bytes() == data
        assert stat.S_IMODE(path.lstat().st_mode) == 0o644, member  # setuid and exec bits stripped
    assert stat.S_IMODE((dest / "data").stat().st_mode) == 0o755
    marker = json.loads((dest / ".extracted").read_text())
    assert marker == {"archive": name, "sha256": sha256_file(archive)}
    if "tar" in name or name.endswith(".dat"):
        assert os.readlink(dest / "data" / "link_to_a") == "a.txt"
        assert (dest / "data" / "sub" / "up_link").read_bytes() == GOOD_FILES["data/a.txt"]
        assert (dest / "data" / "hard_a").stat().st_ino == (dest / "data" / "a.txt").stat().st_ino
    assert _partials(dest.parent) == []

    (dest / "top.txt").unlink()
    assert extract_archive(archive, dest) == dest
    assert not (dest / "top.txt").exists(), "a completed extraction must not run again"


def test_modes_do_not_depend_on_the_umask_and_an_empty_destination_is_used(tmp_path: Path) -> None:
    archive = _good_zip(tmp_path / "good.zip")
    dest = tmp_path / "empty"
    dest.mkdir()
    previous = os.umask(0o077)
    try:
        extract_archive(archive, dest)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((dest / "data" / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "data").stat().st_mode) == 0o755
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755


def test_destination_holding_something_else_is_not_overwritten(tmp_path: Path) -> None:
    first = _good_tar(tmp_path / "one.tar.gz", "w:gz")
    other = _write_tar(tmp_path / "two.tar.gz", [(_tarinfo("x.txt"), b"x")])
    dest = tmp_path / "out"
    extract_archive(first, dest)
    with pytest.raises(DownloadError, match="one.tar.gz"):
        extract_archive(other, dest)
    assert not (dest / "x.txt").exists()


def _unsafe_cases(tmp_path: Path) -> dict[str, tuple[Path, str | None, dict[str, int]]]:
    """name -> (archive, the member the error must name, extract_archive keywords)."""
    a = tmp_path / "archives"
    ok = (_tarinfo("data/ok.txt"), b"fine")
    absolute = str(tmp_path / "abs_evil.txt")
    cases: dict[str, tuple[Path, str | None, dict[str, int]]] = {
        "tar_dotdot": (_write_tar(a / "dotdot.tar.gz", [ok, (_tarinfo("../evil.txt"), b"evil")]), "../evil.txt", {}),
        "tar_nested_dotdot": (_write_tar(a / "nested.tar", [ok, (_tarinfo("data/../../evil.txt"), b"e")], "w"),
                              "data/../../evil.txt", {}),
        "tar_absolute": (_write_tar(a / "abs.tar.gz", [ok, (_tarinfo(absolute), b"evil")]), absolute, {}),
        "tar_symlink_out": (_write_tar(a / "sym.tar.gz", [
            ok, (_tarinfo("link", tarfile.SYMTYPE, linkname="../../outside"), None),
            (_tarinfo("link/pwned.txt"), b"evil")]), "link", {}),
        "tar_symlink_abs": (_write_tar(a / "symabs.tar.bz2", [
            (_tarinfo("etc", tarfile.SYMTYPE, linkname=str(tmp_path)), None)], "w:bz2"), "etc", {}),
        "tar_symlink_chain": (_write_tar(a / "chain.tar.xz", [
            (_tarinfo("a", tarfile.DIRTYPE, mode=0o755), None),
            (_tarinfo("a/b", tarfile.SYMTYPE, linkname=".."), None),  # inside on its own...
            (_tarinfo("c", tarfile.SYMTYPE, linkname="a/b/.."), None),  # ...but through a/b this leaves
            (_tarinfo("c/pwned.txt"), b"evil")], "w:xz"), "c", {}),
        "tar_hardlink_out": (_write_tar(a / "hard.tar.gz", [
            ok, (_tarinfo("hard", tarfile.LNKTYPE, linkname="../outside.txt"), None)]), "hard", {}),
        "tar_hardlink_abs": (_write_tar(a / "hardabs.tar.gz", [
            (_tarinfo("passwd", tarfile.LNKTYPE, linkname="/etc/passwd"), None)]), "passwd", {}),
        "tar_fifo": (_write_tar(a / "fifo.tar.gz", [ok, (_tarinfo("data/pipe", tarfile.FIFOTYPE), None)]),
                     "data/pipe", {}),
        "tar_device": (_write_tar(a / "dev.tar", [ok, (_tarinfo("data/null", tarfile.CHRTYPE), None)], "w"),
                       "data/null", {}),
        "tar_too_big": (_write_tar(a / "big.tar.gz", [ok, (_tarinfo("data/big.bin"), bytes(5000))]),
                        "data/big.bin", {"max_total_bytes": 1000}),
        "tar_too_many": (_write_tar(a / "many.tar.gz", [(_tarinfo(f"f{i}.txt"), b"x") for i in range(5)]),
                         "f3.txt", {"max_members": 3}),
        "zip_dotdot": (_write_zip(a / "dotdot.zip", [("ok.txt", b"fine"), ("../evil.txt", b"evil")]), "../evil.txt", {}),
        "zip_backslash": (_write_zip(a / "bs.zip", [("ok.txt", b"fine"), ("..\\evil.txt", b"evil")]), "..\\evil.txt", {}),
        "zip_absolute": (_write_zip(a / "abs.zip", [("/abs_evil.txt", b"evil")]), "/abs_evil.txt", {}),
        "zip_drive": (_write_zip(a / "drive.zip", [("C:/Windows/evil.txt", b"evil")]), "C:/Windows/evil.txt", {}),
        "zip_too_big": (_write_zip(a / "big.zip", [("ok.txt", b"fine"), ("zeros.bin", bytes(100_000))]),
                        "zeros.bin", {"max_total_bytes": 50_000}),
        "not_an_archive": (a / "plain.tar.gz", None, {}),
    }
    link = zipfile.ZipInfo("link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    cases["zip_symlink"] = (_write_zip(a / "sym.zip", [("ok.txt", b"fine"), (link, b"../outside")]), "link", {})
    fifo = zipfile.ZipInfo("pipe")
    fifo.create_system = 3
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    cases["zip_fifo"] = (_write_zip(a / "fifo.zip", [(fifo, b"")]), "pipe", {})
    (a / "plain.tar.gz").write_bytes(b"this is not an archive at all" * 100)
    return cases


UNSAFE = [
    "tar_dotdot", "tar_nested_dotdot", "tar_absolute", "tar_symlink_out", "tar_symlink_abs", "tar_symlink_chain",
    "tar_hardlink_out", "tar_hardlink_abs", "tar_fifo", "tar_device", "tar_too_big", "tar_too_many",
    "zip_dotdot", "zip_backslash", "zip_absolute", "zip_drive", "zip_too_big", "zip_symlink", "zip_fifo",
    "not_an_archive",
]


@pytest.mark.parametrize("case", UNSAFE)
def test_unsafe_archives_are_refused_as_a_whole(tmp_path: Path, case: str) -> None:
    archive, member, kwargs = _unsafe_cases(tmp_path)[case]
    dest = tmp_path / "out" / "dataset"
    dest.parent.mkdir()
    before = _snapshot(tmp_path)

    with pytest.raises(UnsafeArchiveError) as info:
        extract_archive(archive, dest, **kwargs)

    assert info.value.member == member
    assert str(archive) in str(info.value)
    if member is not None:
        assert repr(member) in str(info.value)
    else:
        assert "unsupported" in str(info.value)
    assert not dest.exists() and not os.path.lexists(dest)
    assert _partials(dest.parent) == []
    assert _snapshot(tmp_path) == before, "nothing may be written anywhere"


def test_write_guard_catches_sizes_that_headers_under_declare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _write_zip(tmp_path / "liar.zip", [("small.txt", b"s"), ("bomb.bin", bytes(200_000))])
    monkeypatch.setattr(archives, "_declared_size", lambda info: 0)  # as if every header claimed 0 bytes
    dest = tmp_path / "out"
    before = _snapshot(tmp_path)

    with pytest.raises(UnsafeArchiveError, match="while writing") as info:
        extract_archive(archive, dest, max_total_bytes=10_000)

    assert info.value.member == "bomb.bin"
    assert not dest.exists() and _partials(tmp_path) == []
    assert _snapshot(tmp_path) == before


def test_copy_guard_stops_at_the_limit(tmp_path: Path) -> None:
    budget = archives._Budget(tmp_path / "a.zip", limit=1000)
    with pytest.raises(UnsafeArchiveError, match="while writing"):
        archives._copy_limited(io.BytesIO(bytes(5000)), tmp_path / "out.bin", budget, "m")
    budget = archives._Budget(tmp_path / "a.zip", limit=5000)
    archives._copy_limited(io.BytesIO(bytes(5000)), tmp_path / "ok.bin", budget, "m")
    assert (tmp_path / "ok.bin").stat().st_size == 5000


# ------------------------------------------------------------------------------------------------- CLI


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_refuses_a_malicious_archive_and_extracts_a_good_one(
    server: ServerState, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = _write_tar(tmp_path / "build" / "evil.tar.gz", [(_tarinfo("ok.txt"), b"ok"), (_tarinfo("../evil.txt"), b"evil")])
    good = _good_tar(tmp_path / "build" / "good.tar.gz", "w:gz")
    server.files["/evil.tar.gz"] = evil.read_bytes()
    server.files["/good.tar.gz"] = good.read_bytes()
    dest = tmp_path / "D"
    outside_before = _snapshot(tmp_path)

    code = _cli(["download", "--url", server.url("/evil.tar.gz"), "--dest", str(dest), "--quiet", "--retries", "0"])

    captured = capsys.readouterr()
    assert code == 1
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and "../evil.txt" in errors[0]
    assert {p for p in _snapshot(tmp_path) if not p.startswith("D")} == outside_before
    assert _listing(dest) == ["evil.tar.gz"], "no extraction folder and no partial folder may remain"

    code = _cli(["download", "--url", server.url("/good.tar.gz"), "--dest", str(dest), "--quiet",
                 "--sha256", sha256_file(good)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (dest / "good" / "data" / "a.txt").read_bytes() == GOOD_FILES["data/a.txt"]
    assert captured.out.split() == [str(dest / "good.tar.gz"), str(dest / "good")]

    code = _cli(["download", "--url", server.url("/good.tar.gz"), "--dest", str(tmp_path / "packed"), "--quiet",
                 "--no-extract"])
    assert code == 0 and _listing(tmp_path / "packed") == ["good.tar.gz"]


def test_cli_errors_and_usage(
    server: ServerState, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _cli(["download"]) == 2
    assert _cli(["download", "--url", server.url("/x.zip")]) == 2
    assert _cli(["download", "casia2", "--url", server.url("/x.zip"), "--dest", str(tmp_path)]) == 2
    with pytest.raises(SystemExit) as exit_info:
        _cli(["download", "--url", server.url("/x.zip"), "--dest", str(tmp_path), "--sha256", "nothex"])
    assert exit_info.value.code == 2
    capsys.readouterr()

    assert _cli(["download", "--url", server.url("/missing.zip"), "--dest", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "404" in err and server.url("/missing.zip") in err

    server.files["/huge.bin"] = _payload(100_000)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: _DiskUsage(10**9, 10**9 - 10, 10))
    assert _cli(["download", "--url", server.url("/huge.bin"), "--dest", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "free space" in err
    assert server.requests and not (tmp_path / "huge.bin").exists()


def test_cli_registered_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def prepare_dataset(name: str, data_root: Path | None = None, *, allow_download: bool = True,
                        progress: bool = True) -> Path:
        calls.append((name, data_root, allow_download, progress))
        if name == "broken":
            raise ManifestError(f"{data_root}/broken/manifest.csv: 2 invalid rows\nline 2: bad\nline 3: bad")
        if name == "nowhere":
            raise DownloadError("HTTP 404 Not Found for http://127.0.0.1:1/nowhere.zip")
        return Path(data_root or ".") / name / "manifest.csv"

    monkeypatch.setattr(dl, "prepare_dataset", prepare_dataset)
    monkeypatch.setattr(dl, "dataset_names", lambda: ["casia2", "columbia"])

    assert _cli(["download", "casia2", "--data-root", str(tmp_path), "--no-download", "--quiet"]) == 0
    assert calls[-1] == ("casia2", tmp_path, False, False)
    assert capsys.readouterr().out.strip() == str(tmp_path / "casia2" / "manifest.csv")

    assert _cli(["download", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nosuch" in err and "casia2, columbia" in err
    monkeypatch.setattr(dl, "dataset_names", lambda: ["casia2", "columbia", "broken", "nowhere"])
    for name in ("broken", "nowhere"):
        assert _cli(["download", name, "--data-root", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err


def test_real_entry_point(server: ServerState, tmp_path: Path) -> None:
    import helpers.__main__ as entry

    evil = _write_tar(tmp_path / "build" / "evil.tar.gz", [(_tarinfo("../evil.txt"), b"evil")])
    server.files["/evil.tar.gz"] = evil.read_bytes()
    assert "download" in entry.build_parser().format_help()
    result = subprocess.run(
        [sys.executable, "-m", "helpers", "download", "--url", server.url("/evil.tar.gz"),
         "--dest", str(tmp_path / "D"), "--quiet", "--retries", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "error: " in result.stderr and "../evil.txt" in result.stderr
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "D" / "evil").exists()


def test_the_old_import_path_names_the_fetch_package_objects() -> None:
    from helpers.datasets import fetch

    for name in fetch.__all__:
        assert getattr(dl, name) is getattr(fetch, name), name
    assert archives.extract_archive is fetch.extract_archive
