"""Archive facade against a real folder archive and a real S3 API (moto on loopback):
list, nearest, and reads of records, payloads, text and metadata."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from fixtures_index import ABOUT, BLOG, OLD, OTHER, STORY, build_spool, publish
from storage import catalog as catalog_mod
from storage.archive import Archive, open_archive
from storage.errors import BadInput, NotFound
from storage.times import parse_time

CONTRACT = {"timestamp", "url", "status", "mime", "digest", "warc", "offset", "length", "text"}


@pytest.fixture(params=["folder", "s3"])
def location(request, tmp_path, monkeypatch):
    """An empty archive location of each kind; S3 catalogs go to a temp cache folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NEWSARCHIVE_CATALOG", raising=False)
    if request.param == "s3":
        return request.getfixturevalue("s3_archive")
    folder = tmp_path / "archive"
    folder.mkdir()
    return str(folder)


@pytest.fixture
def built(tmp_path):
    return build_spool(tmp_path / "spool")


@pytest.fixture
def full(location, built):
    publish(built, location)
    return open_archive(location)


def test_list_gives_captures_oldest_first_with_the_contract_fields(full, built):
    found = full.list(STORY)
    pages = built.pages(STORY)
    assert [c.timestamp for c in found] == ["20240501100000", "20240502100000", "20240503100000"]
    for capture, page in zip(found, pages):
        assert CONTRACT <= set(capture.as_json())
        assert capture.url == STORY
        assert capture.status == 200 and capture.mime == "text/html"
        assert (capture.warc, capture.offset, capture.length) == (page.warc, page.offset, page.length)
        assert capture.digest.startswith("sha1:")
        assert capture.text is True
        assert capture.record_id == page.record_id
    json.dumps([c.as_json() for c in found])  # printable as `list --json`


def test_list_matches_url_variants_and_only_responses(full):
    variant = "http://example.com/2024/05/01/story?a=1&b=2#top"
    assert [c.timestamp for c in full.list(variant)] == [c.timestamp for c in full.list(STORY)]
    assert all(c.mime != "text/plain" for c in full.list(STORY))  # conversion records are not captures
    about = full.list("https://www.example.com/about")
    assert len(about) == 1 and about[0].text is False
    assert full.list(OLD)[0].status == 301
    assert full.list("https://example.com/never") == []


@pytest.mark.parametrize("at, expected", [
    ("2024-05-02T09:00:00Z", "20240502100000"),
    ("2024-05-02T13:00:00+02:00", "20240502100000"),
    ("20240502220001", "20240503100000"),
    ("20240502220000", "20240502100000"),  # exactly between: the earlier one
    ("2024-05-02", "20240502100000"),
    ("1999", "20240501100000"),
    ("2030-01-01T00:00:00Z", "20240503100000"),
    (None, "20240503100000"),
])
def test_nearest_capture_to_a_time(full, at, expected):
    assert full.nearest(STORY, at).timestamp == expected


def test_reads_give_back_what_was_written(full, built):
    for page in built.pages():
        capture = full.nearest(page.url, page.timestamp)
        assert capture.timestamp == page.timestamp
        assert full.payload(capture) == page.raw  # as stored: gzip or chunked bytes untouched
        assert full.payload(capture, decoded=True) == page.html
        record = full.record(capture)
        assert len(record) == page.length
        rec = next(iter(ArchiveIterator(io.BytesIO(record))))
        assert rec.rec_type == "response"
        assert rec.rec_headers.get_header("WARC-Record-ID") == page.record_id
    story = full.nearest(STORY, "2024-05-01")
    assert full.payload(story)[:2] == b"\x1f\x8b"  # really gzip content-encoding in the archive
    about = full.nearest(ABOUT)
    assert b"\r\n0\r\n\r\n" in full.payload(about) and b"0\r\n" not in full.payload(about, decoded=True)


def test_get_as_each_form(full, built):
    page = built.days[2][0]
    assert full.get(STORY, "2024-05-02T10:00:00Z", "html") == page.html
    assert full.get(STORY, "2024-05-02T10:00:00Z", "raw") == page.raw
    assert full.get(STORY, "2024-05-02T10:00:00Z", "text").decode() == page.text
    meta = json.loads(full.get(STORY, "20240502100000", "json"))
    assert meta["title"] == "Story, version 2" and meta["text"] == page.text
    assert meta["record_id"] == page.record_id
    assert full.get(STORY, "20240502100000", "warc")[:2] == b"\x1f\x8b"
    with pytest.raises(BadInput, match="--as must be one of"):
        full.get(STORY, None, "pdf")


def test_text_of_a_capture_is_its_conversion_record(full, built):
    for page in built.pages(STORY):
        capture = full.nearest(STORY, page.timestamp)
        assert full.text(capture) == page.text
        assert full.text(capture).startswith(f"{page.title}\nBy Test Desk")
    with pytest.raises(NotFound, match=r"^no text of http://example.com/about at 20240501110000 in "):
        full.text(full.nearest(ABOUT))


def test_text_falls_back_to_the_article_file(location, built):
    # Only the capture WARC, its index and the articles: the text WARC is not uploaded yet.
    from storage.backends import open_backend

    backend = open_backend(location)
    page = built.days[1][0]
    for key in built.keys[1]:
        if ".text.warc.gz" not in key:
            backend.put_file(key, built.spool / key)
    archive = open_archive(location)
    capture = archive.nearest(STORY)
    assert capture.text is False  # the catalog knows texts from conversion records
    assert archive.text(capture) == page.text
    assert archive.metadata(capture)["title"] == page.title


def test_missing_url_is_one_clear_line(full, location):
    with pytest.raises(NotFound) as err:
        full.nearest("https://example.com/never")
    assert str(err.value) == f"no capture of https://example.com/never in {location}"
    with pytest.raises(BadInput, match="not a time"):
        full.nearest(STORY, "next tuesday")


def test_sync_picks_up_new_indexes_only(location, built):
    publish(built, location, days=(1, 2))
    archive = open_archive(location)
    assert archive.last_sync.indexes == 4
    assert len(archive.list(STORY)) == 2 and archive.list(OTHER) == []
    publish(built, location, days=(3,))
    assert len(archive.list(STORY)) == 2  # not synced yet
    report = archive.sync()
    assert (report.indexes, report.captures, report.texts) == (2, 2, 1)
    assert len(archive.list(STORY)) == 3 and len(archive.list(OTHER)) == 1
    again = archive.sync()
    assert (again.indexes, again.captures) == (0, 0)
    assert len(archive.list(STORY)) == 3  # nothing doubled


def test_reindex_on_a_fresh_catalog_answers_the_same(full, location, tmp_path):
    fresh = Archive(location, catalog_path=tmp_path / "fresh" / "catalog.sqlite")
    for url in (STORY, ABOUT, OLD, BLOG, OTHER):
        assert fresh.list(url) == full.list(url)
    assert fresh.nearest(STORY, "2024-05-02T23:00:00Z") == full.nearest(STORY, "2024-05-02T23:00:00Z")
    report = full.reindex()
    assert (report.indexes, report.captures, report.texts) == (6, 7, 3)
    assert [c.timestamp for c in full.list(STORY)] == ["20240501100000", "20240502100000", "20240503100000"]


def test_catalog_location(full, location, tmp_path):
    path = Path(full.catalog.path)
    assert path.is_file()
    if location.startswith("s3://"):
        assert path.is_relative_to(tmp_path / "cache" / "newsarchive")
    else:
        assert path == Path(location) / "catalog.sqlite"
        # the catalog never shows up as an archived object
        assert not [k for k in full.backend.list("") if "catalog" in k]
    with catalog_mod.Catalog(path)._connect() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_no_archive_folder(tmp_path):
    with pytest.raises(NotFound, match="no archive at .*nowhere"):
        open_archive(str(tmp_path / "nowhere"))


def test_opening_a_folder_that_is_not_an_archive_creates_nothing(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(NotFound, match=r"no archive at .*empty \(no warc/ or indexes/ in it\)"):
        open_archive(str(folder))
    assert list(folder.iterdir()) == []


def test_parse_time_forms():
    assert parse_time("2024-05-02T12:00:00Z") == "20240502120000"
    assert parse_time("Thu, 02 May 2024 12:00:00 GMT") == "20240502120000"
    assert parse_time("202405") == "20240501000000"
    assert parse_time("2024-05") == "20240501000000"
    assert parse_time("2024-05-02T14:00+02:00") == "20240502120000"
    with pytest.raises(BadInput):
        parse_time("20241340")
    with pytest.raises(BadInput):
        parse_time("2024-13")


def test_period_end_covers_the_whole_period():
    from storage.times import period_end

    assert period_end("2024") == "20241231235959"
    assert period_end("2024-02") == "20240229235959"
    assert period_end("20240502") == "20240502235959"
    assert period_end("2024-05-02T12:00:00Z") == "20240502120000"


@pytest.mark.parametrize("way", ["direct", "boto3"])
def test_s3_reads_one_record_with_a_range_request(way, s3_archive, built, tmp_path, monkeypatch):
    """Signed GETs without boto3 when the settings allow (storage/s3direct.py), else boto3:
    either way one GET with one byte range."""
    from storage import s3direct

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    publish(built, s3_archive)
    archive = open_archive(s3_archive)
    sent = []

    def record(request, **kwargs):
        sent.append((request.url, request.headers.get("Range")))

    if way == "boto3":
        archive.backend._direct_ = None  # as when the settings are more than s3direct reads
        archive.backend._client.meta.events.register("before-send.s3.GetObject", record)
    else:
        assert archive.backend._direct() is not None
        original = s3direct.DirectS3._request

        def direct_request(self, path, query, headers):
            sent.append((path, headers.get("range")))
            return original(self, path, query, headers)

        monkeypatch.setattr(s3direct.DirectS3, "_request", direct_request)
    page = built.days[2][1]  # the second record in its WARC: not at offset 0
    capture = archive.nearest(OLD)
    assert archive.payload(capture) == page.raw
    assert len(sent) == 1
    url, range_header = sent[0]
    assert url.endswith(page.warc)
    expected = f"bytes={page.offset}-{page.offset + page.length - 1}"
    assert (range_header.decode() if isinstance(range_header, bytes) else range_header) == expected
    if way == "direct":
        assert "boto3" not in archive.backend.__dict__ and archive.backend._client_ is None  # never built


def test_reindex_indexes_warcs_that_have_no_index(location, built):
    from storage import cdxj, layout
    from storage.backends import open_backend

    publish(built, location, days=(1, 2))
    backend = open_backend(location)
    for key in built.keys[3]:  # day 3 uploaded without its indexes (a run cut short)
        if not key.endswith(".cdxj"):
            backend.put_file(key, built.spool / key)
    archive = open_archive(location)
    assert archive.list(OTHER) == [] and len(archive.list(STORY)) == 2
    report = archive.reindex()
    assert report.indexes_written == 2 and report.skipped == []
    assert len(archive.list(STORY)) == 3 and archive.list(STORY)[-1].text is True
    assert archive.list(OTHER)[0].timestamp == "20240503110000"
    for key in built.keys[3]:
        if key.endswith(".warc.gz"):
            stored = backend.get_bytes(layout.index_key(key)).decode()
            assert stored == "".join(cdxj.index_warc(built.spool / key, key))
    assert archive.reindex().indexes_written == 0  # nothing left to index
