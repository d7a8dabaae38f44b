"""The read-only HTTP API over real HTTP on 127.0.0.1: Memento TimeMap and
TimeGate with RFC 7089's Link set, id_/text_ replay with the archived headers
as X-Archive-Orig-*, and the CDX server API in the Wayback Machine's dialect
(and pywb's CDXJ). No pywb here: /web/TIMESTAMP/URL serves the payload
(tests/test_replay_serve.py runs serve with pywb)."""

from __future__ import annotations

import gzip
import json
import re
import urllib.error
import urllib.request
from contextlib import contextmanager
from urllib.parse import quote

import pytest

from fixtures_index import ABOUT, BLOG, OLD, OTHER, STORY, build_spool, publish
from storage import cdxj
from serving import serving
from storage.archive import open_archive
from storage.server import create_app


@contextmanager
def running(archive, **options):
    with serving(create_app(archive, **options)) as url:
        yield url


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def fetch(url, headers=None, method="GET"):
    """(status, headers, body) without following redirects or decoding anything."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with OPENER.open(req, timeout=60) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def parse_links(text):
    """[(uri, {param: value})] of an application/link-format document or Link header."""
    out = []
    for m in re.finditer(r'<([^>]*)>((?:\s*;\s*[a-z]+="[^"]*")*)', text):
        params = dict(re.findall(r'([a-z]+)="([^"]*)"', m.group(2)))
        out.append((m.group(1), params))
    return out


@pytest.fixture
def built(tmp_path):
    return build_spool(tmp_path / "spool")


@pytest.fixture
def base(tmp_path, built):
    location = tmp_path / "archive"
    location.mkdir()
    publish(built, str(location))
    with running(open_archive(str(location))) as url:
        yield url


def test_timemap_link_lists_every_memento(base):
    status, headers, body = fetch(f"{base}/web/timemap/link/{STORY}")
    assert status == 200
    assert headers["Content-Type"] == "application/link-format"
    links = parse_links(body.decode())
    rels = [p.get("rel") for _, p in links]
    assert rels == ["original", "self", "timegate", "first memento", "memento", "last memento"]
    assert links[0][0] == STORY
    assert links[1][1]["from"] == "Wed, 01 May 2024 10:00:00 GMT"
    assert links[1][1]["until"] == "Fri, 03 May 2024 10:00:00 GMT"
    assert links[2][0] == f"{base}/web/{STORY}"
    mementos = links[3:]
    assert [p["datetime"] for _, p in mementos] == [
        "Wed, 01 May 2024 10:00:00 GMT", "Thu, 02 May 2024 10:00:00 GMT", "Fri, 03 May 2024 10:00:00 GMT"]
    assert mementos[1][0] == f"{base}/web/20240502100000/{STORY}"
    # each memento URI answers with that capture
    status, headers, _ = fetch(mementos[1][0])
    assert status == 200 and headers["Memento-Datetime"] == "Thu, 02 May 2024 10:00:00 GMT"


def test_timemap_of_a_single_capture_and_of_nothing(base):
    _, _, body = fetch(f"{base}/web/timemap/link/{ABOUT}")
    assert [p["rel"] for _, p in parse_links(body.decode())][-1] == "first last memento"
    status, _, body = fetch(f"{base}/web/timemap/link/https://example.com/never")
    assert status == 404
    assert body.decode().startswith("no capture of https://example.com/never in ")
    assert body.decode().count("\n") == 1


def test_timemap_json(base, built):
    status, headers, body = fetch(f"{base}/web/timemap/json/{STORY}")
    assert status == 200 and headers["Content-Type"] == "text/x-ndjson"
    rows = [json.loads(line) for line in body.decode().splitlines()]
    pages = built.pages(STORY)
    assert [r["timestamp"] for r in rows] == [p.timestamp for p in pages]
    assert [(r["filename"], int(r["offset"]), int(r["length"])) for r in rows] == [
        (p.warc, p.offset, p.length) for p in pages]
    assert rows[0]["urlkey"] == "com,example)/2024/05/01/story?a=1&b=2"


@pytest.mark.parametrize("accept, expected", [
    ("Thu, 02 May 2024 08:00:00 GMT", "20240502100000"),
    ("Wed, 01 May 2024 00:00:00 GMT", "20240501100000"),
    ("Fri, 03 May 2024 09:59:59 GMT", "20240503100000"),
    (None, "20240503100000"),
])
def test_timegate_redirects_to_nearest_memento(base, accept, expected):
    status, headers, _ = fetch(f"{base}/web/{STORY}", {"Accept-Datetime": accept} if accept else {})
    assert status == 302
    assert headers["Location"] == f"{base}/web/{expected}/{STORY}"
    assert headers["Vary"] == "accept-datetime" and "Memento-Datetime" not in headers
    links = {p["rel"]: uri for uri, p in parse_links(headers["Link"])}
    assert links["original"] == STORY
    assert links["timegate"] == f"{base}/web/{STORY}"
    assert links["timemap"] == f"{base}/web/timemap/link/{STORY}"
    assert links["memento"] == headers["Location"]
    # RFC 7089's first, last, prev and next, one Link entry each (where they exist)
    day = {"20240501100000": 1, "20240502100000": 2, "20240503100000": 3}[expected]
    assert links["first memento"] == f"{base}/web/20240501100000/{STORY}"
    assert links["last memento"] == f"{base}/web/20240503100000/{STORY}"
    assert links.get("prev memento") == (f"{base}/web/2024050{day - 1}100000/{STORY}" if day > 1 else None)
    assert links.get("next memento") == (f"{base}/web/2024050{day + 1}100000/{STORY}" if day < 3 else None)


def test_timegate_answers_url_variants_and_bad_dates(base):
    status, headers, _ = fetch(f"{base}/web/http://example.com/2024/05/01/story?a=1&b=2")
    assert status == 302 and headers["Location"].endswith(f"00/{STORY}")
    status, _, body = fetch(f"{base}/web/{STORY}", {"Accept-Datetime": "soon"})
    assert status == 400 and b"Accept-Datetime" in body
    status, _, _ = fetch(f"{base}/web/{quote(STORY, safe='')}")  # percent-encoded URL
    assert status == 302


def test_id_replay_serves_the_payload_as_the_site_did(base, built):
    page = built.days[2][0]
    status, headers, body = fetch(f"{base}/web/{page.timestamp}id_/{STORY}")
    assert status == 200
    assert headers["Content-Encoding"] == "gzip" and body == page.raw
    assert gzip.decompress(body) == page.html
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    # the site's own headers are the archived response's, not ours: never acted on by the browser
    assert "Last-Modified" not in headers
    assert headers["X-Archive-Orig-Last-Modified"] == "Thu, 02 May 2024 09:00:00 GMT"
    assert headers["X-Archive-Orig-Content-Length"] == str(len(page.raw))
    assert headers["Memento-Datetime"] == "Thu, 02 May 2024 10:00:00 GMT"
    assert int(headers["Content-Length"]) == len(page.raw)
    links = {p["rel"]: uri for uri, p in parse_links(headers["Link"])}
    assert set(links) == {"original", "timegate", "timemap", "first memento", "prev memento", "memento",
                          "next memento", "last memento"}
    assert links["memento"] == f"{base}/web/{page.timestamp}id_/{STORY}"  # in the mode it was asked in
    assert links["next memento"] == f"{base}/web/20240503100000id_/{STORY}"
    # HEAD: same headers, no body
    status, head_headers, body = fetch(f"{base}/web/{page.timestamp}id_/{STORY}", method="HEAD")
    assert status == 200 and body == b"" and head_headers["Content-Length"] == headers["Content-Length"]


def test_id_replay_removes_chunking_and_keeps_redirects_in_the_archive(base, built):
    about = built.days[1][1]
    status, headers, body = fetch(f"{base}/web/{about.timestamp}id_/{ABOUT}")
    assert status == 200 and body == about.html
    assert headers.get("Transfer-Encoding") is None
    old = built.days[2][1]
    status, headers, body = fetch(f"{base}/web/{old.timestamp}id_/{OLD}")
    assert status == 301 and body == b"moved"
    assert headers["Location"] == f"{base}/web/{old.timestamp}id_/{STORY}"
    assert headers["X-Archive-Orig-Location"] == STORY and headers["Memento-Datetime"]
    # without pywb, the page itself is the payload, and its redirect stays in that mode
    status, headers, body = fetch(f"{base}/web/{old.timestamp}/{OLD}")
    assert status == 301 and headers["Location"] == f"{base}/web/{old.timestamp}/{STORY}"


def test_inexact_timestamp_redirects_to_the_nearest_capture(base):
    status, headers, _ = fetch(f"{base}/web/20240502id_/{STORY}")
    assert status == 302 and headers["Location"] == f"{base}/web/20240502100000id_/{STORY}"
    status, headers, _ = fetch(f"{base}/web/2024text_/{STORY}")
    assert status == 302 and headers["Location"] == f"{base}/web/20240501100000text_/{STORY}"
    status, _, body = fetch(f"{base}/web/20240502100000cs_/{STORY}")
    assert status == 404 and b"needs pywb" in body


def test_text_replay(base, built):
    page = built.days[3][0]
    status, headers, body = fetch(f"{base}/web/{page.timestamp}text_/{STORY}")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body.decode("utf-8") == page.text
    assert headers["Memento-Datetime"] == "Fri, 03 May 2024 10:00:00 GMT"
    status, _, body = fetch(f"{base}/web/20240501110000text_/{ABOUT}")
    assert status == 404 and body.decode().startswith("no text of http://example.com/about")


def cdx_text(base, query):
    status, headers, body = fetch(f"{base}/cdx?{query}")
    assert status == 200, body
    return body.decode()


def test_cdx_answers_in_the_wayback_machines_dialect(base, built):
    pages = built.pages(STORY)
    # space-separated: urlkey timestamp original mimetype statuscode digest length
    lines = [l.split(" ") for l in cdx_text(base, f"url={quote(STORY)}").splitlines()]
    assert [l[1] for l in lines] == [p.timestamp for p in pages]
    assert lines[0][:5] == ["com,example)/2024/05/01/story?a=1&b=2", "20240501100000", STORY, "text/html", "200"]
    assert len(lines[0]) == 7 and not lines[0][5].startswith("sha1:") and lines[0][6].isdigit()
    # the same at the Wayback Machine's path, and as an array of arrays with a header row
    status, headers, body = fetch(f"{base}/cdx/search/cdx?url={quote(STORY)}&output=json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    table = json.loads(body)
    assert table[0] == ["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"]
    assert [row[:7] for row in table[1:]] == lines
    # fl picks fields (pywb's names too); filenames and offsets are there for pywb's clients
    old = built.days[2][1]
    assert cdx_text(base, f"url={quote(OLD)}&fl=timestamp,statuscode") == f"{old.timestamp} 301\n"
    assert cdx_text(base, f"url={quote(OLD)}&fl=timestamp,status,offset,filename") == \
        f"{old.timestamp} 301 {old.offset} {old.warc}\n"
    assert json.loads(fetch(f"{base}/cdx?url={quote(OLD)}&fl=original,length&output=json")[2]) == \
        [["original", "length"], [OLD, str(old.length)]]
    assert json.loads(fetch(f"{base}/cdx?url=nothing.example&output=json")[2]) == []


def test_cdx_match_types_ranges_and_limits(base):
    def originals(query):
        return [l.split(" ")[2] for l in cdx_text(base, query).splitlines()]

    assert set(originals("url=example.com&matchType=domain")) == {STORY, ABOUT, OLD, BLOG}
    assert set(originals("url=example.com&matchType=host")) == {STORY, ABOUT, OLD}
    assert originals("url=example.com/2024/*") == [STORY] * 3
    assert OTHER not in originals("url=*.example.com")
    # from/to: 1 to 14 digits, inclusive, a partial to= covering its whole period
    assert cdx_text(base, f"url={quote(STORY)}&from=20240502&to=20240502&fl=timestamp") == "20240502100000\n"
    assert cdx_text(base, f"url={quote(STORY)}&from=2024050210&fl=timestamp").split() == \
        ["20240502100000", "20240503100000"]
    assert cdx_text(base, f"url={quote(STORY)}&to=202405&fl=timestamp").count("\n") == 3
    # limit=N the first N, limit=-N the last N, offset=M skips M
    assert cdx_text(base, f"url={quote(STORY)}&limit=2&fl=timestamp").split() == ["20240501100000", "20240502100000"]
    assert cdx_text(base, f"url={quote(STORY)}&limit=-1&fl=timestamp").split() == ["20240503100000"]
    assert cdx_text(base, f"url={quote(STORY)}&offset=1&limit=1&fl=timestamp").split() == ["20240502100000"]
    # pywb's orders
    assert cdx_text(base, f"url={quote(STORY)}&sort=reverse&limit=1&fl=timestamp").split() == ["20240503100000"]
    assert cdx_text(base, f"url={quote(STORY)}&sort=closest&closest=20240502230000&limit=1&fl=timestamp").split() \
        == ["20240503100000"]


def test_cdx_filters_and_collapsing(base):
    def rows(query):
        return [l.split(" ") for l in cdx_text(base, query).splitlines()]

    everything = rows("url=example.com&matchType=domain")
    assert [r[2] for r in rows("url=example.com&matchType=domain&filter=statuscode:301")] == [OLD]
    assert OLD not in [r[2] for r in rows("url=example.com&matchType=domain&filter=!statuscode:301")]
    assert rows("url=example.com&matchType=domain&filter=statuscode:30") == []  # the whole field must match
    assert [r[2] for r in rows("url=example.com&matchType=domain&filter=~original:blog")] == [BLOG]
    assert len(rows("url=example.com&matchType=domain&filter=mimetype:text/html&filter=!original:.*story.*")) == 3
    assert [r[2] for r in rows("url=example.com&matchType=domain&filter=.*\\s301\\s.*")] == [OLD]  # whole line
    # collapse drops rows equal to the row before in that field (or its first N characters)
    assert len(rows(f"url={quote(STORY)}&collapse=urlkey")) == 1
    assert len(rows("url=example.com&matchType=domain&collapse=urlkey")) == 4
    assert [r[1] for r in rows(f"url={quote(STORY)}&collapse=timestamp:6")] == ["20240501100000"]
    assert len(everything) == 6


def test_cdx_resume_keys_and_pages_walk_every_row(base):
    query = "url=example.com&matchType=domain"
    everything = cdx_text(base, query).splitlines()
    assert len(everything) == 6
    seen, key = [], None
    while True:  # text: rows, a blank line, the key
        text = cdx_text(base, f"{query}&limit=4&showResumeKey=true" + (f"&resumeKey={quote(key)}" if key else ""))
        rows, _, tail = text.partition("\n\n")
        seen += [l for l in rows.splitlines() if l]
        key = tail.strip()
        if not key:
            break
    assert seen == everything
    table = json.loads(fetch(f"{base}/cdx?{query}&limit=5&showResumeKey=true&output=json")[2])
    assert table[-2] == [] and len(table) == 1 + 5 + 2
    rest = json.loads(fetch(f"{base}/cdx?{query}&limit=5&output=json&resumeKey={quote(table[-1][0])}")[2])
    assert [" ".join(r) for r in table[1:6] + rest[1:]] == everything
    # no key when nothing is left
    assert "\n\n" not in cdx_text(base, f"{query}&limit=6&showResumeKey=true")
    # pages of pageSize captures
    assert cdx_text(base, f"{query}&showNumPages=true&pageSize=4") == "2\n"
    pages = [cdx_text(base, f"{query}&page={i}&pageSize=4").splitlines() for i in range(3)]
    assert pages[0] + pages[1] == everything and len(pages[0]) == 4 and pages[2] == []


def test_cdx_cdxj_output_for_pywbs_clients(base, built):
    [line] = cdx_text(base, f"url={quote(OLD)}&output=cdxj").splitlines()
    urlkey, ts, fields = cdxj.parse_line(line)
    old = built.days[2][1]
    assert (urlkey, ts) == ("com,example)/old", old.timestamp)
    assert (fields["filename"], int(fields["offset"]), fields["status"]) == (old.warc, old.offset, "301")
    assert fields["digest"].startswith("sha1:") and fields["url"] == OLD and fields["mime"] == "text/html"
    status, headers, body = fetch(f"{base}/cdx?url={quote(STORY)}&output=ndjson")
    rows = [json.loads(l) for l in body.decode().splitlines()]
    assert headers["Content-Type"] == "text/x-ndjson" and len(rows) == 3
    assert set(rows[0]) == {"urlkey", "timestamp", "url", "mime", "status", "digest", "length", "offset", "filename"}


def test_conversion_records_are_not_captures_anywhere(base, built):
    # the story's three clean texts share its URL and seconds: no answer lists them
    assert "text/plain" not in cdx_text(base, f"url={quote(STORY)}&output=cdxj")
    assert cdx_text(base, f"url={quote(STORY)}").count("\n") == 3
    _, _, body = fetch(f"{base}/web/timemap/link/{STORY}")
    assert body.decode().count("memento\"") == 3
    _, _, body = fetch(f"{base}/web/timemap/json/{STORY}")
    assert [json.loads(l)["mime"] for l in body.decode().splitlines()] == ["text/html"] * 3


def test_cdx_errors_are_one_line(base):
    for query, code in [("", 400), ("url=example.com&matchType=fuzzy", 400),
                        ("url=example.com&limit=many", 400), ("url=example.com&fl=nope", 400),
                        ("url=example.com&filter=status:(", 400), ("url=example.com&output=xml", 400),
                        ("url=example.com&resumeKey=garbage", 400), ("url=example.com&pageSize=0", 400)]:
        status, _, body = fetch(f"{base}/cdx?{query}")
        assert status == code and body.decode().count("\n") == 1, (query, body)
    status, _, _ = fetch(f"{base}/nothing/here")
    assert status == 404


def test_server_over_s3_archive_picks_up_new_captures(s3_archive, built, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    publish(built, s3_archive, days=(1, 2))
    with running(open_archive(s3_archive), sync_interval=0) as url:
        status, _, body = fetch(f"{url}/web/timemap/link/{STORY}")
        assert status == 200 and len(parse_links(body.decode())) == 5
        page = built.days[2][0]
        status, headers, body = fetch(f"{url}/web/{page.timestamp}id_/{STORY}")
        assert status == 200 and gzip.decompress(body) == page.html
        status, _, _ = fetch(f"{url}/web/timemap/link/{OTHER}")
        assert status == 404
        publish(built, s3_archive, days=(3,))  # a crawl finishes while serving
        status, _, body = fetch(f"{url}/web/timemap/link/{OTHER}")
        assert status == 200
        status, _, body = fetch(f"{url}/web/20240503100000text_/{STORY}")
        assert status == 200 and body.decode() == built.days[3][0].text
