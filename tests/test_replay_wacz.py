"""WACZ exports that the ecosystem's own tools open: ReplayWeb.page in Chromium,
pywb (a collection made from the WACZ) and py-wacz's validator.

The archive is the demo site crawled twice (tests/fixtures_replay.py), so it
holds originals, revisits and conversion records. py-wacz validates files that
ReplayWeb.page cannot open (a ZIP64 extra in the local headers only, conversion
records in the index): the browser is the test that counts.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import zipfile

import pytest
from warcio.archiveiterator import ArchiveIterator

from rwpsite import build_rwp_site, embed_url, rwp_app, wait_for_replay
from fixtures_replay import http_get
from serving import serving
from storage import cdxj
from storage.archive import open_archive
from storage.wacz import export_wacz, needs_zip64

HEADLINE = "Seagrass meadows return to the bay after a decade"


@pytest.fixture(scope="module")
def exported(replay_archive, tmp_path_factory):
    """The whole source, and only the second crawl (revisits whose originals are older)."""
    out = tmp_path_factory.mktemp("wacz")
    archive = open_archive(str(replay_archive.path))
    whole = export_wacz(archive, "demo", out_path=out / "demo.wacz")
    second = export_wacz(archive, "demo", since=replay_archive.runs[1].started, out_path=out / "second.wacz")
    return {"whole": whole, "second": second}


def local_header(blob: bytes, info: zipfile.ZipInfo) -> dict:
    (sig, _version, flags, method, _time, _date, crc, csize, usize, name_len,
     extra_len) = struct.unpack("<IHHHHHIIIHH", blob[info.header_offset: info.header_offset + 30])
    assert sig == 0x04034B50, info.filename
    start = info.header_offset + 30
    return {"flags": flags, "method": method, "crc": crc, "csize": csize, "usize": usize,
            "name": blob[start: start + name_len].decode(), "extra": blob[start + name_len: start + name_len + extra_len]}


def read_record(zf: zipfile.ZipFile, fields: dict):
    with zf.open(f"archive/{fields['filename']}") as member:
        member.seek(int(fields["offset"]))
        data = member.read(int(fields["length"]))
    return next(iter(ArchiveIterator(io.BytesIO(data))))


def test_wacz_entries_are_plain_zip_entries_whose_local_and_central_headers_agree(exported):
    path = exported["whole"].path
    blob = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            local = local_header(blob, info)
            assert local["name"] == info.filename
            assert local["extra"] == info.extra == b"", f"{info.filename}: ZIP64 or other extra fields"
            assert (local["csize"], local["usize"], local["crc"]) == (info.compress_size, info.file_size, info.CRC)
            assert local["method"] == info.compress_type
            if info.filename.startswith("archive/"):
                assert info.compress_type == zipfile.ZIP_STORED  # readers seek into WARCs
    assert not needs_zip64(2**31 - 1) and needs_zip64(2**31)  # only an entry over 2 GiB carries ZIP64


def test_wacz_index_holds_replayable_records_only_and_pages_have_titles(exported, replay_archive):
    path = exported["whole"].path
    archive = open_archive(str(replay_archive.path))
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        index = [cdxj.parse_line(line) for line in zf.read("indexes/index.cdx").decode().splitlines()]
        pages = [json.loads(line) for line in zf.read("pages/pages.jsonl").decode().splitlines()]
        package_bytes = zf.read("datapackage.json")
        package = json.loads(package_bytes)
        for resource in package["resources"]:
            data = zf.read(resource["path"])
            assert resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
            assert resource["bytes"] == len(data)
        assert json.loads(zf.read("datapackage-digest.json"))["hash"] == \
            "sha256:" + hashlib.sha256(package_bytes).hexdigest()
    # no conversion record in the index: every line is a response or a revisit of the crawl
    assert {f["mime"] for _, _, f in index} >= {"text/html", "warc/revisit", "text/css"}
    with zipfile.ZipFile(path) as zf:
        kinds = {read_record(zf, f).rec_type for _, _, f in index}
    assert kinds == {"response", "revisit"} and not [f for _, _, f in index if "refers_to" in f]
    assert len(index) == exported["whole"].captures == 2 * 23
    # the text WARC is in the package, unindexed; its conversion records name their responses
    text_warcs = [n for n in names if n.endswith(".text.warc.gz")]
    assert len(text_warcs) == 1 and not [f for _, _, f in index if f["filename"] in text_warcs[0]]
    # pages: every article capture (the revisit too), titled, with its text for search
    header, pages = pages[0], pages[1:]
    assert header["format"] == "json-pages-1.0" and header["hasText"] is True
    seagrass = [p for p in pages if p["url"] == replay_archive.article]
    assert [p["ts"] for p in seagrass] == [c.iso_date for c in archive.list(replay_archive.article)]
    assert all(p["title"] == HEADLINE and HEADLINE in p["text"] for p in seagrass)
    assert len(pages) == 12 and all(p.get("title") for p in pages)


def test_an_export_of_revisits_carries_the_originals_they_repeat(exported, replay_archive):
    report = exported["second"]
    assert report.captures == 23 and report.originals == 23  # every page was unchanged
    with zipfile.ZipFile(report.path) as zf:
        index = [cdxj.parse_line(line) for line in zf.read("indexes/index.cdx").decode().splitlines()]
        warcs = {n.split("/", 1)[1] for n in zf.namelist() if n.startswith("archive/")}
    revisits = [(k, f) for k, ts, f in index if f["mime"] == "warc/revisit"]
    assert len(revisits) == 23
    by_digest = {(k, f["digest"]): f for k, ts, f in index if f["mime"] != "warc/revisit"}
    for key, fields in revisits:
        original = by_digest[(key, fields["digest"])]  # how pywb and ReplayWeb.page resolve a revisit
        assert original["filename"] in warcs and fields["filename"] in warcs


@pytest.mark.parametrize("which, when", [("whole", "first"), ("whole", "second"), ("second", "second")])
def test_replaywebpage_renders_the_article_from_the_wacz(exported, replay_archive, which, when, node_modules,
                                                         page, tmp_path, artifacts_dir):
    """ReplayWeb.page 2.4.6 (served from 127.0.0.1) loads the WACZ and renders the article:
    the original capture, and the revisit (from the whole export and from the export of
    the second crawl alone, which must carry the original's WARC)."""
    site = build_rwp_site(tmp_path / "site", node_modules, {"x.wacz": exported[which].path})
    ts = getattr(replay_archive, when)
    with serving(rwp_app(site)) as base:
        page.goto(embed_url(base, "/x.wacz", replay_archive.article, ts))
        frame = wait_for_replay(page, HEADLINE)
        assert f"/{ts}mp_/" in frame.url
        assert frame.evaluate("document.querySelector('h1').innerText") == HEADLINE
        page.screenshot(path=str(artifacts_dir / f"rwp-{which}-{when}.png"))
    assert page.refused == []


def test_pywb_replays_the_wacz_and_py_wacz_validates_it(exported, replay_archive, pywb_bin, start_pywb, tmp_path):
    wacz = exported["whole"].path
    check = subprocess.run([str(pywb_bin / "wacz"), "validate", "-f", str(wacz)],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr

    home = tmp_path / "pywb-from-wacz"
    home.mkdir()
    manager = str(pywb_bin / "wb-manager")
    subprocess.run([manager, "init", "fromwacz"], cwd=home, check=True, capture_output=True, timeout=120)
    added = subprocess.run([manager, "add", "--unpack-wacz", "fromwacz", str(wacz)], cwd=home,
                           capture_output=True, text=True, timeout=300)
    assert added.returncode == 0, added.stdout + added.stderr
    base = start_pywb(home)
    archive = open_archive(str(replay_archive.path))
    original, revisit = archive.list(replay_archive.article)
    sent = archive.payload(original)
    for capture in (original, revisit):
        status, headers, body = http_get(f"{base}/fromwacz/{capture.timestamp}id_/{replay_archive.article}")
        assert status == 200 and body == sent
        assert headers["Memento-Datetime"] == capture.http_date
    status, _, body = http_get(f"{base}/fromwacz/{revisit.timestamp}mp_/{replay_archive.article}")
    assert status == 200 and HEADLINE.encode() in body and b"wombat" in body  # rewritten replay
    status, _, body = http_get(f"{base}/fromwacz/timemap/link/{replay_archive.article}")
    assert body.decode().count('memento"') == 2  # one memento per capture, no text/plain one
