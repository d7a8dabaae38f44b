"""Spool -> archive: upload, verify, then delete; nothing lost on failure."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from storage import layout
from storage.backends import LocalBackend, ObjectInfo, StorageError, open_backend
from storage.manifest import build_manifest, read_manifest
from storage.spool import finished_files, spool_dir_for, upload_spool

STARTED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
NAME = "newsarchive-news-20240501120000000-00000-host"
WARC = f"warc/news/2024/05/01/{NAME}.warc.gz"
TEXT_WARC = f"warc/news/2024/05/01/{NAME}.text.warc.gz"
INDEX = f"indexes/news/2024/05/01/{NAME}.warc.gz.cdxj"
TEXT_INDEX = f"indexes/news/2024/05/01/{NAME}.text.warc.gz.cdxj"
TXT = "articles/news/2024/05/01/20240501120001-0123456789abcdef.txt"
JSON = "articles/news/2024/05/01/20240501120001-0123456789abcdef.json"
RUN = layout.run_key("news", STARTED, "run-1")


def write(spool: Path, key: str, data: bytes) -> Path:
    path = spool / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_run(spool: Path) -> dict[str, bytes]:
    """A finished crawl run in the spool: WARCs, indexes, an article, its manifest."""
    files = {
        WARC: os.urandom(5000),
        TEXT_WARC: os.urandom(700),
        INDEX: b"com,example)/a 20240501120001 {}\n",
        TEXT_INDEX: b"com,example)/a 20240501120001 {\"mime\": \"text/plain\"}\n",
        TXT: "Title\n\nBody \u201cquoted\u201d\n".encode(),
        JSON: b'{"title": "Title"}',
    }
    for key, data in files.items():
        write(spool, key, data)
    manifest = build_manifest("run-1", "news", STARTED, "2024-05-01T12:05:00+00:00", {"pages": 1}, list(files), spool)
    files[manifest["key"]] = (spool / manifest["key"]).read_bytes()
    return files


def spool_files(spool: Path) -> dict[str, bytes]:
    return {p.relative_to(spool).as_posix(): p.read_bytes() for p in spool.rglob("*") if p.is_file()}


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path):
    if request.param == "local":
        return open_backend(str(tmp_path / "archive"))
    return open_backend(request.getfixturevalue("s3_archive"))


def test_manifest_describes_the_run(tmp_path):
    spool = tmp_path / "spool"
    files = make_run(spool)
    manifest = read_manifest(files[RUN])
    assert manifest["key"] == RUN == "runs/news/2024/05/01/run-1.json"
    assert (manifest["run_id"], manifest["source"], manifest["stats"]) == ("run-1", "news", {"pages": 1})
    assert manifest["started"] == "2024-05-01T12:00:00+00:00"
    by_key = {f["key"]: f for f in manifest["files"]}
    assert set(by_key) == set(files) - {RUN}
    assert by_key[WARC] == {"key": WARC, "size": 5000, "sha256": hashlib.sha256(files[WARC]).hexdigest(), "kind": "warc"}
    assert [by_key[k]["kind"] for k in (TEXT_WARC, INDEX, TXT, JSON)] == ["text-warc", "index", "text", "metadata"]


@pytest.mark.parametrize(
    "files, says",
    [
        (["warc/news/2024/05/01/missing.warc.gz"], "not a finished file"),
        ([WARC + ".open"], "unfinished"),
        (["../etc/passwd"], "unknown archive key"),
        ([RUN], "run manifest"),
    ],
)
def test_manifest_refuses_bad_file_lists(tmp_path, files, says):
    write(tmp_path, WARC + ".open", b"half")
    with pytest.raises(StorageError, match=says):
        build_manifest("run-1", "news", STARTED, STARTED, {}, files, tmp_path)
    assert not (tmp_path / RUN).exists()


def test_manifest_refuses_bad_run_id_and_times(tmp_path):
    with pytest.raises(StorageError, match="unsafe name"):
        build_manifest("../run", "news", STARTED, STARTED, {}, [], tmp_path)
    with pytest.raises(StorageError, match="not an ISO 8601 time"):
        build_manifest("run-1", "news", "yesterday", STARTED, {}, [], tmp_path)


def test_finished_files_skip_open_and_temp_files_in_upload_order(tmp_path):
    files = make_run(tmp_path)
    write(tmp_path, "warc/news/2024/05/01/next.warc.gz.open", b"still writing")
    write(tmp_path, "articles/news/2024/05/01/.tmp-1234", b"half")
    assert finished_files(tmp_path) == [WARC, TEXT_WARC, TEXT_INDEX, INDEX, JSON, TXT, RUN]
    assert set(finished_files(tmp_path)) == set(files)


def test_spool_locations(tmp_path, monkeypatch):
    monkeypatch.delenv("NEWSARCHIVE_SPOOL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert spool_dir_for(str(tmp_path / "arch")) == tmp_path / "arch" / ".spool"
    s3_a = spool_dir_for("s3://bucket/a")
    assert s3_a.parent == tmp_path / "data" / "newsarchive" / "spool"
    assert s3_a != spool_dir_for("s3://bucket/b") and s3_a == spool_dir_for("s3://bucket/a/")
    monkeypatch.setenv("NEWSARCHIVE_SPOOL", str(tmp_path / "mine"))
    assert spool_dir_for("s3://bucket/a") == tmp_path / "mine"


def test_upload_verifies_and_empties_the_spool(backend, tmp_path):
    spool = tmp_path / "spool"
    files = make_run(spool)
    write(spool, "warc/news/2024/05/01/next.warc.gz.open", b"still writing")
    progress = []

    report = upload_spool(spool, backend, on_progress=lambda key, done, total: progress.append((key, done, total)))

    assert report.ok and report.failed == []
    assert sorted(i.key for i in report.uploaded) == sorted(files)
    for key, data in files.items():
        assert backend.get_bytes(key) == data
        assert backend.stat(key) == ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest())
    # WARCs first, manifest last: a reader never finds a reference to a missing object.
    assert [k for k, _, _ in progress] == [WARC, TEXT_WARC, TEXT_INDEX, INDEX, JSON, TXT, RUN]
    assert progress[-1][1:] == (7, 7)
    # Only the unfinished file is left, and no empty folders.
    assert spool_files(spool) == {"warc/news/2024/05/01/next.warc.gz.open": b"still writing"}
    assert sorted(p.relative_to(spool).as_posix() for p in spool.rglob("*") if p.is_dir()) == [
        "warc", "warc/news", "warc/news/2024", "warc/news/2024/05", "warc/news/2024/05/01",
    ]
    assert report.summary() == "uploaded 7 files"


def test_retried_upload_of_the_same_files_counts_as_uploaded(backend, tmp_path):
    spool = tmp_path / "spool"
    files = make_run(spool)
    backend.put_bytes(WARC, files[WARC])  # an earlier attempt got this far
    report = upload_spool(spool, backend)
    assert report.ok and len(report.uploaded) == len(files)
    assert spool_files(spool) == {}


def test_conflicting_object_is_an_error_and_holds_back_what_refers_to_it(backend, tmp_path):
    spool = tmp_path / "spool"
    files = make_run(spool)
    backend.put_bytes(WARC, b"someone else's WARC")

    report = upload_spool(spool, backend)

    failed = dict(report.failed)
    assert "already exists with different content" in failed[WARC]
    assert "held back" in failed[INDEX] and "held back" in failed[TXT] and "held back" in failed[RUN]
    assert all("\n" not in reason for reason in failed.values())
    # The text WARC and its index went; nothing that refers to the capture WARC did.
    assert [i.key for i in report.uploaded] == [TEXT_WARC, TEXT_INDEX]
    assert backend.stat(INDEX) is None and backend.stat(RUN) is None
    assert backend.get_bytes(WARC) == b"someone else's WARC"
    assert spool_files(spool) == {k: v for k, v in files.items() if k not in (TEXT_WARC, TEXT_INDEX)}
    assert report.summary().startswith("uploaded 2 files, 5 failed (kept in the spool): ")


def test_stray_files_and_links_in_the_spool_are_reported_and_kept(tmp_path):
    spool = tmp_path / "spool"
    (tmp_path / "secret").write_bytes(b"secret")
    write(spool, "notes.txt", b"mine")
    (spool / "warc/news/2024/05/01").mkdir(parents=True)
    os.symlink(tmp_path / "secret", spool / "warc/news/2024/05/01/link.warc.gz")
    backend = LocalBackend(tmp_path / "archive")

    report = upload_spool(spool, backend)

    assert report.uploaded == []
    assert [k for k, _ in report.failed] == ["notes.txt", "warc/news/2024/05/01/link.warc.gz"]
    assert list(backend.list()) == []
    assert (spool / "notes.txt").read_bytes() == b"mine"


def test_verification_failure_keeps_the_file(tmp_path):
    class LossyDisk(LocalBackend):
        """A folder whose writes lose their last byte (a failing disk or mount)."""

        def put_file(self, key, path):
            info = super().put_file(key, path)
            target = self.root / key
            os.truncate(target, info.size - 1)
            return info

    spool = tmp_path / "spool"
    write(spool, WARC, b"0123456789")
    report = upload_spool(spool, LossyDisk(tmp_path / "archive"))
    assert report.uploaded == []
    assert report.failed[0][0] == WARC and report.failed[0][1].startswith(f"verification failed for {WARC}: expected 10 bytes")
    assert (spool / WARC).read_bytes() == b"0123456789"


def test_s3_outage_before_upload_loses_nothing(s3_archive, s3_server_control, tmp_path):
    spool = tmp_path / "spool"
    files = make_run(spool)
    backend = open_backend(s3_archive)
    s3_server_control.stop()

    report = upload_spool(spool, backend)

    assert report.uploaded == []
    assert report.failed[0] == (WARC, f"cannot reach S3 endpoint {s3_server_control.url}: connection refused")
    assert all(reason.endswith("connection refused") for _, reason in report.failed)
    assert len(report.failed) == len(files)
    assert spool_files(spool) == files

    s3_server_control.start()  # same port, same bucket
    report = upload_spool(spool, backend)
    assert report.ok and len(report.uploaded) == len(files)
    assert spool_files(spool) == {}
    assert {key: backend.get_bytes(key) for key in backend.list()} == files


def test_s3_outage_mid_upload_loses_nothing(s3_archive, s3_server_control, tmp_path):
    spool = tmp_path / "spool"
    files = make_run(spool)
    backend = open_backend(s3_archive)

    def stop_after_first(key, done, total):
        if done == 1:
            s3_server_control.stop()

    report = upload_spool(spool, backend, on_progress=stop_after_first)

    assert [i.key for i in report.uploaded] == [WARC]
    assert report.failed[0] == (TEXT_WARC, f"cannot reach S3 endpoint {s3_server_control.url}: connection refused")
    assert [k for k, _ in report.failed] == [TEXT_WARC, TEXT_INDEX, INDEX, JSON, TXT, RUN]
    assert spool_files(spool) == {k: v for k, v in files.items() if k != WARC}

    s3_server_control.start()
    report = upload_spool(spool, backend)
    assert report.ok and [i.key for i in report.uploaded] == [TEXT_WARC, TEXT_INDEX, INDEX, JSON, TXT, RUN]
    assert spool_files(spool) == {}
    assert {key: backend.get_bytes(key) for key in backend.list()} == files


def test_s3_multipart_upload_from_the_spool(s3_archive, tmp_path):
    spool = tmp_path / "spool"
    big = os.urandom(6 * 1024 * 1024)
    write(spool, WARC, big)
    backend = open_backend(s3_archive, multipart_threshold=5 * 1024 * 1024)
    report = upload_spool(spool, backend)
    assert report.ok
    assert report.uploaded == [ObjectInfo(WARC, len(big), hashlib.sha256(big).hexdigest())]
    assert backend.get_bytes(WARC) == big and not (spool / WARC).exists()
    head = backend._client.head_object(Bucket=backend.bucket, Key=f"archive/{WARC}")
    assert head["ETag"].strip('"').endswith("-2")


def test_missing_spool_is_an_empty_report(tmp_path):
    report = upload_spool(tmp_path / "nope", LocalBackend(tmp_path / "archive"))
    assert report.ok and report.uploaded == []


def test_manifest_lists_json_that_survives_the_round_trip(tmp_path):
    spool = tmp_path / "spool"
    make_run(spool)
    backend = LocalBackend(tmp_path / "archive")
    upload_spool(spool, backend)
    manifest = json.loads(backend.get_bytes(RUN))
    for entry in manifest["files"]:
        assert backend.stat(entry["key"]) == ObjectInfo(entry["key"], entry["size"], entry["sha256"])
