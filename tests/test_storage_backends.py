"""Backends, local folder and S3 (moto server on loopback), behave the same."""

from __future__ import annotations

import hashlib
import os

import boto3
import pytest

from storage.backends import (
    LocalBackend,
    ObjectExistsError,
    ObjectInfo,
    ObjectNotFoundError,
    S3Backend,
    StorageError,
    open_backend,
)

WARC = "warc/news/2024/05/01/newsarchive-news-20240501120000000-00000-host.warc.gz"
INDEX = "indexes/news/2024/05/01/newsarchive-news-20240501120000000-00000-host.warc.gz.cdxj"
TEXT = "articles/news/2024/05/01/20240501120000-0123456789abcdef.txt"


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path):
    if request.param == "local":
        return open_backend(str(tmp_path / "archive"))
    return open_backend(request.getfixturevalue("s3_archive"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_open_backend_picks_the_kind(tmp_path, monkeypatch):
    assert isinstance(open_backend(str(tmp_path)), LocalBackend)
    s3 = open_backend("s3://my-bucket/some/prefix")
    assert isinstance(s3, S3Backend) and (s3.bucket, s3.prefix) == ("my-bucket", "some/prefix")
    monkeypatch.setenv("NEWSARCHIVE_ARCHIVE", str(tmp_path / "env-archive"))
    assert open_backend().location == str(tmp_path / "env-archive")
    monkeypatch.delenv("NEWSARCHIVE_ARCHIVE")
    assert open_backend().location == "archive"


@pytest.mark.parametrize(
    "location, says",
    [
        ("s3://", "needs a bucket"),
        ("s3:///prefix", "needs a bucket"),
        ("s3://Bad_Bucket/x", "not a valid S3 bucket name: 'Bad_Bucket'"),
        ("s3://bucket/../x", "unsafe name in archive key: '..'"),
        ("gs://bucket/x", "unsupported archive location 'gs://bucket/x'"),
    ],
)
def test_bad_locations_are_one_line_errors(location, says):
    with pytest.raises(StorageError) as err:
        open_backend(location)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_put_get_range_stat(backend, tmp_path):
    data = b"WARC/1.1\r\n" + bytes(range(256)) * 40
    src = tmp_path / "upload.warc.gz"
    src.write_bytes(data)

    info = backend.put_file(WARC, src)
    assert info == ObjectInfo(WARC, len(data), sha(data))
    assert backend.get_bytes(WARC) == data
    assert backend.get_range(WARC, 10, 100) == data[10:110]
    assert backend.get_range(WARC, len(data) - 5, 100) == data[-5:]  # short at the end
    assert backend.get_range(WARC, len(data) + 10, 5) == b""
    with backend.open_stream(WARC) as stream:
        assert stream.read() == data
    assert backend.stat(WARC) == ObjectInfo(WARC, len(data), sha(data))
    assert backend.stat(INDEX) is None

    line = b"com,example)/ 20240501120000 {}\n"
    assert backend.put_bytes(INDEX, line) == ObjectInfo(INDEX, len(line), sha(line))
    assert backend.get_bytes(INDEX) == line


def test_missing_object_is_a_clear_error(backend):
    with pytest.raises(ObjectNotFoundError, match="no such object"):
        backend.get_bytes(WARC)
    with pytest.raises(ObjectNotFoundError):
        backend.get_range(WARC, 0, 10)


def test_never_overwrites(backend, tmp_path):
    backend.put_bytes(TEXT, b"first version")
    # Same bytes again: a retried upload, accepted.
    assert backend.put_bytes(TEXT, b"first version") == ObjectInfo(TEXT, 13, sha(b"first version"))
    src = tmp_path / "same.txt"
    src.write_bytes(b"first version")
    assert backend.put_file(TEXT, src).sha256 == sha(b"first version")
    # Other bytes: refused, original kept.
    with pytest.raises(ObjectExistsError, match="already exists"):
        backend.put_bytes(TEXT, b"second version")
    src.write_bytes(b"another versio")
    with pytest.raises(ObjectExistsError):
        backend.put_file(TEXT, src)
    assert backend.get_bytes(TEXT) == b"first version"
    assert not hasattr(backend, "delete")


def test_list_is_sorted_filtered_and_paginated(backend):
    keys = [f"articles/news/2024/05/01/20240501120000-{i:016x}.txt" for i in range(23)] + [
        WARC,
        INDEX,
        "articles/news-b/2024/05/01/20240501120000-0000000000000000.txt",  # sorts before "news/"
    ]
    for key in reversed(keys):
        backend.put_bytes(key, key.encode())
    if isinstance(backend, S3Backend):
        requests = []
        backend.list_page_size = 5  # several pages, so continuation tokens are followed
        backend._client.meta.events.register("before-call.s3.ListObjectsV2", lambda **kw: requests.append(1))
        direct = backend._direct()  # signed GETs without boto3 (storage/s3direct.py) list the same pages
        if direct is not None:
            send = direct._request
            direct._request = lambda path, query, headers: (requests.append(1), send(path, query, headers))[1]

    assert list(backend.list()) == sorted(keys)
    assert list(backend.list("articles/news/")) == sorted(k for k in keys if k.startswith("articles/news/"))
    assert list(backend.list("articles/news")) == sorted(k for k in keys if k.startswith("articles/news"))
    assert list(backend.list("warc/")) == [WARC]
    assert list(backend.list("ind")) == [INDEX]
    assert list(backend.list("runs/")) == []
    if isinstance(backend, S3Backend):
        assert len(requests) > 6


@pytest.mark.parametrize("key", ["../x", "warc/../../etc/passwd", "/etc/passwd", "warc//x", "warc/./x", "catalog.sqlite", "warc/a\\..\\..\\x", ""])
def test_unsafe_keys_are_refused(backend, tmp_path, key):
    with pytest.raises(StorageError) as err:
        backend.put_bytes(key, b"x")
    assert "\n" not in str(err.value)
    with pytest.raises(StorageError):
        backend.get_bytes(key)
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


@pytest.mark.parametrize("prefix", ["../", "warc/../../", "/etc", "catalog"])
def test_unsafe_list_prefixes_are_refused(backend, prefix):
    with pytest.raises(StorageError):
        list(backend.list(prefix))


def test_symlink_out_of_the_root_is_refused(tmp_path):
    root = tmp_path / "archive"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (root / "warc").mkdir(parents=True)
    os.symlink(outside, root / "warc" / "news")
    os.symlink(outside / "secret.txt", root / "runs")

    backend = LocalBackend(root)
    with pytest.raises(StorageError, match="outside the archive"):
        backend.put_bytes(WARC, b"data")
    with pytest.raises(StorageError, match="outside the archive"):
        backend.get_bytes("warc/news/secret.txt")
    with pytest.raises(StorageError):
        list(backend.list("warc/news/"))
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]  # nothing written outside
    assert list(backend.list()) == []


def test_a_folder_swapped_for_a_link_after_the_first_write_is_refused_and_one_inside_followed(tmp_path):
    """Keys are checked on every use, not once: a day's folder replaced by a link to elsewhere
    after the archive was written (its root resolved and kept) is refused for reads and
    writes; a link that stays inside the archive is followed, as before."""
    root = tmp_path / "archive"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / WARC.rsplit("/", 1)[1]).write_bytes(b"not ours")
    backend = LocalBackend(root)
    backend.put_bytes(WARC, b"data")
    day = (root / WARC).parent
    inside = root / "warc" / "news" / "2024" / "05" / "kept"
    day.rename(inside)
    os.symlink(outside, day)
    with pytest.raises(StorageError, match="outside the archive"):
        backend.get_bytes(WARC)
    with pytest.raises(StorageError, match="outside the archive"):
        backend.put_bytes(WARC.replace("-00000-", "-00001-"), b"more")
    assert sorted(p.name for p in outside.iterdir()) == [WARC.rsplit("/", 1)[1]]  # nothing written there
    day.unlink()
    os.symlink(inside, day)
    assert backend.get_bytes(WARC) == b"data"


def test_local_files_are_complete_and_only_archive_keys_are_listed(tmp_path):
    root = tmp_path / "archive"
    backend = LocalBackend(root)
    backend.put_bytes(WARC, b"a" * 1000)
    (root / "catalog.sqlite").write_bytes(b"SQLite format 3\0")
    (root / "warc" / "news" / "2024" / "05" / "01" / ".tmp-deadbeef").write_bytes(b"half")
    assert list(backend.list()) == [WARC]
    # The write left no temp file behind.
    assert sorted(p.name for p in (root / "warc/news/2024/05/01").iterdir()) == [".tmp-deadbeef", WARC.rsplit("/", 1)[1]]
    with pytest.raises(StorageError):
        backend.get_bytes("catalog.sqlite")


def test_local_key_taken_by_a_folder_or_failed_source_writes_nothing(tmp_path):
    root = tmp_path / "archive"
    backend = LocalBackend(root)
    (root / TEXT).mkdir(parents=True)
    with pytest.raises(StorageError, match="taken by a folder or link"):
        backend.put_bytes(TEXT, b"x")
    with pytest.raises(StorageError, match="cannot read"):
        backend.put_file(WARC, tmp_path / "does-not-exist")
    assert [p.name for p in (root / TEXT).parent.iterdir()] == [TEXT.rsplit("/", 1)[1]]  # no temp file left
    assert backend.stat(WARC) is None


def test_local_archive_location_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="not a folder"):
        open_backend(str(tmp_path / "file"))


def test_s3_stores_sha256_as_metadata(s3_archive):
    backend = open_backend(s3_archive)
    backend.put_bytes(TEXT, b"hello")
    head = boto3.client("s3").head_object(Bucket=backend.bucket, Key=f"archive/{TEXT}")
    assert head["Metadata"]["sha256"] == sha(b"hello")


def test_s3_object_written_by_another_tool_is_compared_by_content(s3_archive):
    backend = open_backend(s3_archive)
    boto3.client("s3").put_object(Bucket=backend.bucket, Key=f"archive/{TEXT}", Body=b"hello")
    assert backend.stat(TEXT) == ObjectInfo(TEXT, 5, None)
    assert backend.put_bytes(TEXT, b"hello").sha256 == sha(b"hello")
    with pytest.raises(ObjectExistsError):
        backend.put_bytes(TEXT, b"HELLO")


def test_s3_multipart_upload_over_threshold(s3_archive, tmp_path):
    backend = open_backend(s3_archive, multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    data = os.urandom(11 * 1024 * 1024)  # 3 parts of 5, 5, 1 MiB
    src = tmp_path / "big.warc.gz"
    src.write_bytes(data)

    info = backend.put_file(WARC, src)
    assert info == ObjectInfo(WARC, len(data), sha(data))
    head = boto3.client("s3").head_object(Bucket=backend.bucket, Key=f"archive/{WARC}")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object's ETag counts its parts
    assert backend.stat(WARC) == info
    assert backend.get_bytes(WARC) == data
    assert backend.get_range(WARC, 6 * 1024 * 1024, 10) == data[6 * 1024 * 1024 : 6 * 1024 * 1024 + 10]
    # Retrying the same big file is accepted; different bytes are not.
    assert backend.put_file(WARC, src) == info
    src.write_bytes(data[:-1] + b"\0" if data[-1] else data[:-1] + b"\1")
    with pytest.raises(ObjectExistsError):
        backend.put_file(WARC, src)


@pytest.mark.parametrize("size", [100, 6 * 1024 * 1024], ids=["single", "multipart"])
def test_s3_conditional_write_refuses_a_racing_writer(s3_archive, tmp_path, size):
    backend = open_backend(s3_archive, multipart_threshold=5 * 1024 * 1024)
    other = boto3.client("s3")
    real_stat = backend.stat

    def stat_then_race(key):
        # Another machine writes the key right after our HEAD saw nothing.
        result = real_stat(key)
        if result is None:
            other.put_object(Bucket=backend.bucket, Key=f"archive/{key}", Body=b"theirs", Metadata={"sha256": sha(b"theirs")})
        return result

    backend.stat = stat_then_race
    src = tmp_path / "ours"
    src.write_bytes(b"o" * size)
    with pytest.raises(ObjectExistsError):
        backend.put_file(TEXT, src)
    assert other.get_object(Bucket=backend.bucket, Key=f"archive/{TEXT}")["Body"].read() == b"theirs"


def test_s3_ranged_get_reads_only_the_range(s3_archive):
    backend = open_backend(s3_archive)
    data = os.urandom(200_000)
    backend.put_bytes(WARC, data)
    from fixtures_s3 import record_gets

    sent = record_gets(backend)
    assert backend.get_range(WARC, 1000, 50) == data[1000:1050]
    assert [(g["range"], g["size"]) for g in sent] == [("bytes=1000-1049", 50)]


def test_s3_unreachable_is_one_line(s3_archive, s3_server_control):
    backend = open_backend(s3_archive)
    s3_server_control.stop()
    for call in (lambda: backend.stat(WARC), lambda: backend.put_bytes(WARC, b"x"), lambda: list(backend.list())):
        with pytest.raises(StorageError) as err:
            call()
        assert str(err.value) == f"cannot reach S3 endpoint {s3_server_control.url}: connection refused"


def test_s3_missing_bucket_and_bad_credentials(s3_archive, monkeypatch):
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
        open_backend("s3://no-such-bucket/x").put_bytes(TEXT, b"x")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match="no AWS credentials"):
        open_backend(s3_archive).stat(TEXT)


def test_s3_missing_object_is_not_found_without_building_boto3(s3_archive):
    """The one failure reads meet often (an article without its .json) is answered by the signed
    GET itself, with boto3's message; boto3 is not started for it."""
    backend = open_backend(s3_archive)
    if backend._direct() is None:
        pytest.fail("the test environment's S3 settings should allow signed reads without boto3")
    for read in (lambda: backend.get_bytes(WARC), lambda: backend.get_range(WARC, 0, 10)):
        with pytest.raises(ObjectNotFoundError) as err:
            read()
        assert str(err.value) == f"no such object in {s3_archive}: {WARC}"
    assert backend._client_ is None
