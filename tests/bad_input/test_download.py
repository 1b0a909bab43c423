"""``python -m helpers download`` against a server that misbehaves: bodies cut short without a length, HTML
where an archive was expected, two URLs with one file name, a second download into a busy folder."""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from bad_input.conftest import Reply, Site, error_lines, lock_held_elsewhere, run_cli
from helpers.datasets.download import DownloadError, download

RECORDS_NAME = ".downloads.json"  # where a download folder records the URL of each file
FAST = {"timeout": 5.0, "retries": 1, "backoff": 0.0, "progress": False}
HTML = b"<!DOCTYPE html>\n<html><head><title>Login required</title></head><body>" + b"x" * 1200 + b"</body></html>\n"


def _random(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _zip(seed: int = 0, n: int = 40_000) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.bin", _random(n, seed))
        zf.writestr("b.bin", _random(n, seed + 1))
    return buffer.getvalue()


def _tar(mode: str, seed: int = 0, n: int = 40_000) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:
        for index in range(2):
            data = _random(n, seed + index)
            info = tarfile.TarInfo(f"member{index}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != RECORDS_NAME)


@pytest.mark.parametrize("name, body", [("set.zip", _zip()), ("set.tar.gz", _tar("w:gz")), ("set.tar", _tar("w"))])
def test_an_archive_cut_short_without_content_length_never_takes_its_name(
    site: Site, tmp_path: Path, name: str, body: bytes
) -> None:
    url = site.serve(f"/{name}", Reply(body, send_length=False, cut=len(body) * 3 // 5))

    with pytest.raises(DownloadError, match="incomplete download") as info:
        download(url, tmp_path, **FAST)

    assert url in str(info.value) and "giving up after 2 attempt(s)" in str(info.value)
    assert _files(tmp_path) == [], "neither the final name nor a .part may hold the half file"
    assert len(site.hits(f"/{name}")) == 2, "a cut transfer is retried"


def test_a_plain_tar_cut_between_two_members_without_content_length_is_refused(site: Site, tmp_path: Path) -> None:
    body = _tar("w", n=4096)
    second_member = 512 + 4096  # header and data of the first member
    url = site.serve("/set.tar", Reply(body, send_length=False, cut=second_member))

    with pytest.raises(DownloadError, match="end-of-archive marker"):
        download(url, tmp_path, **FAST)
    assert _files(tmp_path) == []


def test_a_cut_transfer_without_content_length_is_fetched_again_whole(site: Site, tmp_path: Path) -> None:
    body = _zip(seed=3)
    url = site.serve("/set.zip", Reply(body, send_length=False, cut=len(body) // 2), Reply(body, send_length=False))

    path = download(url, tmp_path, **FAST)

    assert path.read_bytes() == body
    assert [h["range"] for h in site.hits("/set.zip")] == [None, None], "the cut body is dropped, not resumed"
    assert _files(tmp_path) == ["set.zip"]


def test_a_file_without_content_length_that_is_no_archive_needs_a_checksum(site: Site, tmp_path: Path) -> None:
    body = _random(30_000, 5)
    url = site.serve("/weights.bin", Reply(body, send_length=False))

    with pytest.raises(DownloadError, match="no Content-Length") as info:
        download(url, tmp_path, **FAST)
    assert "--sha256" in str(info.value) and _files(tmp_path) == []

    assert download(url, tmp_path, sha256=_sha(body), **FAST).read_bytes() == body


def test_the_checksum_ledger_never_records_a_cut_download(site: Site, tmp_path: Path) -> None:
    body = _zip(seed=7)
    ledger = tmp_path / "checksums.json"
    url = site.serve("/set.zip", Reply(body, send_length=False, cut=len(body) // 2))

    with pytest.raises(DownloadError):
        download(url, tmp_path / "raw", checksums=ledger, **FAST)
    assert not ledger.exists() or "set.zip" not in json.loads(ledger.read_text())

    site.serve("/set.zip", Reply(body, send_length=False))
    download(url, tmp_path / "raw", checksums=ledger, **FAST)
    assert json.loads(ledger.read_text()) == {"set.zip": _sha(body)}


def test_a_second_url_with_the_same_file_name_is_not_given_the_first_file(site: Site, tmp_path: Path) -> None:
    first, second = _zip(seed=1), _zip(seed=2)
    url_a = site.serve("/mirror-a/data.zip", Reply(first))
    url_b = site.serve("/mirror-b/data.zip", Reply(second))
    path = download(url_a, tmp_path, **FAST)

    with pytest.raises(DownloadError) as info:
        download(url_b, tmp_path, **FAST)

    message = str(info.value)
    assert url_a in message and url_b in message and "--filename" in message
    assert path.read_bytes() == first, "the first download stays as it was"
    assert download(url_b, tmp_path, filename="data-b.zip", **FAST).read_bytes() == second
    assert download(url_a, tmp_path, **FAST) == path and len(site.hits("/mirror-a/data.zip")) == 1
    # A known checksum identifies the content whatever the URL: no request, no error.
    assert download(url_b, tmp_path, sha256=_sha(first), **FAST) == path
    assert len(site.hits("/mirror-b/data.zip")) == 1


def test_a_file_nothing_records_is_not_taken_for_a_download(site: Site, tmp_path: Path) -> None:
    url = site.serve("/data.zip", Reply(_zip()))
    (tmp_path / "data.zip").write_bytes(b"placed here by something else")

    with pytest.raises(DownloadError, match="does not record where it came from"):
        download(url, tmp_path, **FAST)
    assert site.requests == []


def test_a_partial_file_of_another_url_is_not_resumed(site: Site, tmp_path: Path) -> None:
    first, second = _zip(seed=1), _zip(seed=2)
    url_a = site.serve("/a/data.zip", Reply(first, cut=len(first) // 2))  # drops midway, length sent
    url_b = site.serve("/b/data.zip", Reply(second, ranges=True))
    with pytest.raises(DownloadError):
        download(url_a, tmp_path, **{**FAST, "retries": 0})
    assert (tmp_path / "data.zip.part").exists()

    path = download(url_b, tmp_path, **FAST)

    assert path.read_bytes() == second
    assert [h["range"] for h in site.hits("/b/data.zip")] == [None]


def test_an_html_page_served_as_zip_is_an_error_naming_the_url_and_what_arrived(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = site.serve("/dataset.zip", Reply(HTML, content_type="text/html; charset=utf-8"))

    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "lib", **FAST)
    message = str(info.value)
    assert url in message and "received text/html, 1.3 KiB, starting '<!DOCTYPE html>'" in message
    assert _files(tmp_path / "lib") == []

    code, out, err = run_cli(["download", "--url", url, "--dest", tmp_path / "cli", "--quiet"], capsys)
    assert code == 1
    assert error_lines(err) == err.strip().splitlines() and len(error_lines(err)) == 1
    assert url in err and "text/html" in err and "<!DOCTYPE html>" in err
    assert _files(tmp_path / "cli") == []


def test_a_download_that_is_no_archive_says_nothing_was_extracted(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = site.serve("/readme.txt", Reply(b"read me\n", content_type="text/plain"))

    code, out, err = run_cli(["download", "--url", url, "--dest", tmp_path, "--quiet"], capsys)

    assert code == 0
    assert out.split() == [str(tmp_path / "readme.txt")]
    assert err.strip() == f"note: {tmp_path / 'readme.txt'} is not a zip or tar archive; kept as downloaded, nothing extracted"


def test_a_second_download_into_the_same_folder_is_refused_naming_the_owner_pid(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = site.serve("/set.zip", Reply(_zip()))
    dest = tmp_path / "raw"
    with lock_held_elsewhere(dest) as pid:
        code, out, err = run_cli(["download", "--url", url, "--dest", dest, "--quiet"], capsys)
    assert code == 1
    assert len(error_lines(err)) == 1 and str(dest) in err and f"PID {pid}" in err
    assert site.requests == [] and _files(dest) == []
