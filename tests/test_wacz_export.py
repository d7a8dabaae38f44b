"""WACZ export: open the zip and check it as a WACZ reader would."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
from pathlib import PurePosixPath

import pytest
from warcio.archiveiterator import ArchiveIterator

from fixtures_index import STORY, build_spool, publish
from storage import cdxj
from storage.archive import open_archive
from storage.errors import BadInput, NotFound
from storage.wacz import export_wacz


@pytest.fixture(params=["folder", "s3"])
def archive_and_built(request, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    built = build_spool(tmp_path / "spool")
    if request.param == "s3":
        location = request.getfixturevalue("s3_archive")
    else:
        location = str(tmp_path / "archive")
        (tmp_path / "archive").mkdir()
    publish(built, location)
    return open_archive(location), built


def read_record(zf: zipfile.ZipFile, name: str, offset: int, length: int):
    with zf.open(name) as member:
        member.seek(offset)
        data = member.read(length)
    assert len(data) == length
    return next(iter(ArchiveIterator(io.BytesIO(data))))


def test_wacz_structure_hashes_and_records(archive_and_built, tmp_path):
    archive, built = archive_and_built
    out = tmp_path / "out" / "news.wacz"
    out.parent.mkdir()
    report = export_wacz(archive, "news", out_path=out)
    assert out.is_file() and report.pages == 3 and report.captures == 7
    assert not list(out.parent.glob(".*"))  # no temporary file left

    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        warcs = {n for n in names if n.startswith("archive/")}
        assert names == warcs | {"indexes/index.cdx", "pages/pages.jsonl", "datapackage.json",
                                 "datapackage-digest.json"}
        assert warcs == {f"archive/{PurePosixPath(k).name}" for day in built.keys.values()
                         for k in day if k.endswith(".warc.gz")}
        for name in warcs:  # stored, so a reader can seek into the WARC
            assert zf.getinfo(name).compress_type == zipfile.ZIP_STORED

        package_bytes = zf.read("datapackage.json")
        package = json.loads(package_bytes)
        assert package["wacz_version"] == "1.1.1" and package["profile"] == "data-package"
        listed = {r["path"]: r for r in package["resources"]}
        assert set(listed) == names - {"datapackage.json", "datapackage-digest.json"}
        for path, resource in listed.items():
            data = zf.read(path)
            assert resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
            assert resource["bytes"] == len(data)
        digest = json.loads(zf.read("datapackage-digest.json"))
        assert digest == {"path": "datapackage.json",
                          "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest()}
        # the WARCs are the archive's files, byte for byte
        for key in [k for day in built.keys.values() for k in day if k.endswith(".warc.gz")]:
            assert zf.read(f"archive/{PurePosixPath(key).name}") == (built.spool / key).read_bytes()

        index = [cdxj.parse_line(l) for l in zf.read("indexes/index.cdx").decode().splitlines()]
        raw_lines = zf.read("indexes/index.cdx").decode().splitlines()
        assert raw_lines == sorted(raw_lines) and len(index) == 7  # 7 responses; conversion records are not replayable
        assert all("/" not in f["filename"] and f"archive/{f['filename']}" in warcs for _, _, f in index)

        lines = zf.read("pages/pages.jsonl").decode().splitlines()
        header = json.loads(lines[0])
        assert header["format"] == "json-pages-1.0"
        pages = [json.loads(l) for l in lines[1:]]
        assert [(p["url"], p["ts"], p["title"]) for p in pages] == [
            (STORY, "2024-05-01T10:00:00Z", "Story, version 1"),
            (STORY, "2024-05-02T10:00:00Z", "Story, version 2"),
            (STORY, "2024-05-03T10:00:00Z", "Story, version 3")]
        assert not [f for _, _, f in index if "refers_to" in f]
        texts = {}  # the text WARCs come along unindexed: conversion records by the response they name
        for name in (n for n in warcs if n.endswith(".text.warc.gz")):
            for rec in ArchiveIterator(io.BytesIO(zf.read(name))):
                texts[rec.rec_headers.get_header("WARC-Refers-To")] = rec.content_stream().read().decode()
        by_time = {(ts, f["url"]): f for _, ts, f in index}
        for page, written in zip(pages, built.pages(STORY)):
            entry = by_time[(written.timestamp, page["url"])]
            rec = read_record(zf, f"archive/{entry['filename']}", int(entry["offset"]), int(entry["length"]))
            assert rec.rec_type == "response"
            assert rec.rec_headers.get_header("WARC-Target-URI") == STORY
            assert rec.content_stream().read() == written.html
            # and its clean text: the conversion record naming it, and the page's text
            assert texts[entry["record_id"]] == written.text == page["text"]


def test_wacz_records_are_readable_straight_from_the_zip_bytes(archive_and_built, tmp_path):
    # What ReplayWeb.page does: local file header offset + index offset, one ranged read.
    archive, built = archive_and_built
    out = tmp_path / "news.wacz"
    export_wacz(archive, "news", out_path=out)
    blob = out.read_bytes()
    with zipfile.ZipFile(out) as zf:
        index = [cdxj.parse_line(l) for l in zf.read("indexes/index.cdx").decode().splitlines()]
        infos = {i.filename: i for i in zf.infolist()}
    for _, _, f in index:
        info = infos[f"archive/{f['filename']}"]
        name_len, extra_len = struct.unpack("<HH", blob[info.header_offset + 26: info.header_offset + 30])
        data_start = info.header_offset + 30 + name_len + extra_len
        start = data_start + int(f["offset"])
        rec = next(iter(ArchiveIterator(io.BytesIO(blob[start: start + int(f["length"])]))))
        assert rec.rec_headers.get_header("WARC-Record-ID") == f["record_id"]


def test_wacz_since_until_selects_captures(archive_and_built, tmp_path):
    archive, built = archive_and_built
    out = tmp_path / "day2.wacz"
    report = export_wacz(archive, "news", since="2024-05-02", until="2024-05-02", out_path=out)
    assert report.captures == 3 and report.pages == 1 and report.originals == 0
    with zipfile.ZipFile(out) as zf:
        warcs = sorted(n for n in zf.namelist() if n.startswith("archive/"))
        assert warcs == sorted(f"archive/{PurePosixPath(k).name}" for k in built.keys[2] if k.endswith(".warc.gz"))
        pages = [json.loads(l) for l in zf.read("pages/pages.jsonl").decode().splitlines()[1:]]
        assert [p["ts"] for p in pages] == ["2024-05-02T10:00:00Z"]


def test_wacz_errors_are_one_line(archive_and_built, tmp_path):
    archive, _ = archive_and_built
    with pytest.raises(NotFound, match=r"^no captures of source 'news' between 20250101000000 and now in "):
        export_wacz(archive, "news", since="2025-01-01", out_path=tmp_path / "x.wacz")
    with pytest.raises(BadInput, match=r"source name"):
        export_wacz(archive, "../etc", out_path=tmp_path / "x.wacz")
    with pytest.raises(NotFound, match=r"the folder .*missing does not exist"):
        export_wacz(archive, "news", out_path=tmp_path / "missing" / "x.wacz")
    assert not (tmp_path / "x.wacz").exists() and not (tmp_path / "missing").exists()
