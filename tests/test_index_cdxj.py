"""CDXJ indexes: the same lines cdxj-indexer writes, plus our extras; URL keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_index import ABOUT, STORY, build_spool
from storage import cdxj, layout, urls

INDEXER = Path(sys.executable).parent / "cdxj-indexer"


def real_indexer(path: Path) -> list[str]:
    out = subprocess.run([str(INDEXER), "--sort", str(path)], check=True, capture_output=True, text=True)
    return out.stdout.splitlines()


def test_capture_index_matches_cdxj_indexer(tmp_path):
    built = build_spool(tmp_path)
    key = built.days[2][0].warc
    ours = cdxj.index_warc(tmp_path / key, key)
    theirs = real_indexer(tmp_path / key)
    assert len(ours) == len(theirs) == 3  # three responses; request records are not indexed
    for mine, ref in zip(ours, theirs):
        k1, t1, f1 = cdxj.parse_line(mine)
        k2, t2, f2 = cdxj.parse_line(ref)
        assert (k1, t1) == (k2, t2)
        assert f1.pop("filename") == key and f2.pop("filename") == Path(key).name
        record_id = f1.pop("record_id")
        assert record_id.startswith("<urn:uuid:")
        assert f1.pop("warc_date") == f"{t1[:4]}-{t1[4:6]}-{t1[6:8]}T{t1[8:10]}:{t1[10:12]}:{t1[12:14]}Z"
        assert "refers_to" not in f1
        assert list(f1.items()) == list(f2.items())  # same fields, same values, same order
    # the standard part is byte-identical once filename and the extras are put back
    k, t, f = cdxj.parse_line(ours[0])
    f["filename"] = Path(key).name
    del f["record_id"], f["warc_date"]
    assert f"{k} {t} {json.dumps(f)}" == theirs[0]


def test_index_lines_point_at_the_right_records(tmp_path):
    built = build_spool(tmp_path)
    for day, pages in built.days.items():
        key = pages[0].warc
        lines = {cdxj.parse_line(l)[2]["record_id"]: cdxj.parse_line(l) for l in cdxj.index_warc(tmp_path / key, key)}
        for page in pages:
            urlkey, ts, fields = lines[page.record_id]
            assert ts == page.timestamp
            assert urlkey == urls.url_key(page.url)
            assert (int(fields["offset"]), int(fields["length"])) == (page.offset, page.length)
            assert fields["status"] == str(page.status)
            assert fields["mime"] == "text/html"
            assert fields["url"] == page.url


def test_text_warc_index_has_conversion_records_that_refer_to_responses(tmp_path):
    built = build_spool(tmp_path)
    story = built.days[1][0]
    lines = cdxj.index_warc(tmp_path / story.text_warc, story.text_warc)
    assert len(lines) == 1
    urlkey, ts, fields = cdxj.parse_line(lines[0])
    assert fields["refers_to"] == story.record_id
    assert fields["mime"] == "text/plain"
    assert fields["url"] == STORY and ts == story.timestamp
    assert fields["filename"] == story.text_warc
    assert fields["record_id"] != story.record_id
    # the real cdxj-indexer skips conversion records by default, as pywb expects
    assert real_indexer(tmp_path / story.text_warc) == []


def test_write_index_puts_sorted_index_at_its_layout_key(tmp_path):
    built = build_spool(tmp_path)
    key = built.days[2][0].warc
    spool = tmp_path / "other-spool"
    path = cdxj.write_index(tmp_path / key, key, spool)
    assert path == spool / layout.index_key(key)
    lines = path.read_text().splitlines(keepends=True)
    assert lines == sorted(lines) and len(lines) == 3
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("variant", [
    "http://www.example.com/2024/05/01/story?a=1&b=2",
    "https://example.com:443/2024/05/01/story?b=2&a=1#comments",
    "HTTPS://WWW.EXAMPLE.COM/2024/05/01/story?a=1&b=2",
    "www.example.com/2024/05/01/story?b=2&a=1",
    "http:/www.example.com/2024/05/01/story?b=2&a=1",
])
def test_url_variants_share_one_key(variant):
    assert urls.url_key(variant) == urls.url_key(STORY) == "com,example)/2024/05/01/story?a=1&b=2"


def test_different_pages_have_different_keys():
    assert urls.url_key(STORY) != urls.url_key("https://www.example.com/2024/05/01/story?a=1")
    assert urls.url_key(ABOUT) != urls.url_key("http://example.com/about/us")


def test_search_ranges_follow_pywb():
    def matches(url, match_type, key):
        start, end = urls.search_range(url, match_type)
        return start <= key < end

    about = urls.url_key(ABOUT)
    blog = urls.url_key("https://blog.example.com/post")
    assert matches(ABOUT, "exact", about)
    assert not matches(ABOUT, "exact", urls.url_key("http://example.com/about/us"))
    assert matches("example.com/ab", "prefix", about)
    assert matches("example.com/*", "exact", about)  # pywb's trailing-* shorthand
    assert matches("http://example.com/", "host", about)
    assert not matches("http://example.com/", "host", blog)
    assert matches("example.com", "domain", blog) and matches("example.com", "domain", about)
    assert matches("*.example.com", "exact", blog)
    assert not matches("example.com", "domain", urls.url_key("https://other.org/x"))
    assert not matches("example.com", "domain", urls.url_key("https://example.community/x"))
    with pytest.raises(urls.URLError):
        urls.search_range(ABOUT, "fuzzy")
