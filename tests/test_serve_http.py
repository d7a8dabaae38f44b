"""The read-only HTTP API over real HTTP on 127.0.0.1: Memento TimeMap and
TimeGate, id_/text_ replay, and pywb's CDX server API."""

from __future__ import annotations

import gzip
import json
import re
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from urllib.parse import quote

import pytest

from fixtures_index import ABOUT, BLOG, OLD, OTHER, STORY, build_spool, publish
from storage import cdxj
from storage.archive import open_archive
from storage.server import make_server


@contextmanager
def running(archive, **options):
    server = make_server(archive, "127.0.0.1", 0, quiet=True, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


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
    assert mementos[1][0] == f"{base}/web/20240502100000id_/{STORY}"
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
    assert headers["Location"] == f"{base}/web/{expected}id_/{STORY}"
    assert headers["Vary"] == "accept-datetime"
    links = {p["rel"]: uri for uri, p in parse_links(headers["Link"])}
    assert links["original"] == STORY
    assert links["timemap"] == f"{base}/web/timemap/link/{STORY}"
    assert links["memento"] == headers["Location"]


def test_timegate_answers_url_variants_and_bad_dates(base):
    status, headers, _ = fetch(f"{base}/web/http://example.com/2024/05/01/story?a=1&b=2")
    assert status == 302 and headers["Location"].endswith(f"id_/{STORY}")
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
    assert headers["Last-Modified"] == "Thu, 02 May 2024 09:00:00 GMT"
    assert headers["Memento-Datetime"] == "Thu, 02 May 2024 10:00:00 GMT"
    assert int(headers["Content-Length"]) == len(page.raw)
    rels = {p["rel"] for _, p in parse_links(headers["Link"])}
    assert {"original", "timegate", "timemap"} <= rels
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


def test_inexact_timestamp_redirects_to_the_nearest_capture(base):
    status, headers, _ = fetch(f"{base}/web/20240502id_/{STORY}")
    assert status == 302 and headers["Location"] == f"{base}/web/20240502100000id_/{STORY}"
    status, headers, _ = fetch(f"{base}/web/2024text_/{STORY}")
    assert status == 302 and headers["Location"] == f"{base}/web/20240501100000text_/{STORY}"
    status, _, _ = fetch(f"{base}/web/20240502100000xx_/{STORY}")
    assert status == 404


def test_text_replay(base, built):
    page = built.days[3][0]
    status, headers, body = fetch(f"{base}/web/{page.timestamp}text_/{STORY}")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body.decode("utf-8") == page.text
    assert headers["Memento-Datetime"] == "Fri, 03 May 2024 10:00:00 GMT"
    status, _, body = fetch(f"{base}/web/20240501110000text_/{ABOUT}")
    assert status == 404 and body.decode().startswith("no text of http://example.com/about")


def test_cdx_json_as_pywb(base, built):
    status, headers, body = fetch(f"{base}/cdx?url={quote(STORY)}&output=json")
    assert status == 200 and headers["Content-Type"] == "text/x-ndjson"
    rows = [json.loads(l) for l in body.decode().splitlines()]
    assert [r["timestamp"] for r in rows] == ["20240501100000", "20240502100000", "20240503100000"]
    assert set(rows[0]) == {"urlkey", "timestamp", "url", "mime", "status", "digest", "length", "offset", "filename"}
    assert rows[0]["status"] == "200" and rows[0]["mime"] == "text/html"


def test_cdx_match_types_ranges_and_limits(base):
    def timestamps_urls(query):
        status, _, body = fetch(f"{base}/cdx?{query}&output=json")
        assert status == 200, body
        return [(json.loads(l)["url"]) for l in body.decode().splitlines()]

    assert set(timestamps_urls("url=example.com&matchType=domain")) == {STORY, ABOUT, OLD, BLOG}
    assert set(timestamps_urls("url=example.com&matchType=host")) == {STORY, ABOUT, OLD}
    assert timestamps_urls("url=example.com/2024/*") == [STORY] * 3
    assert timestamps_urls(f"url={quote(STORY)}&from=20240502&to=20240502235959") == [STORY]
    assert timestamps_urls(f"url={quote(STORY)}&limit=2") == [STORY, STORY]
    assert OTHER not in timestamps_urls("url=*.example.com")
    status, _, body = fetch(f"{base}/cdx?url={quote(STORY)}&sort=reverse&limit=1&output=json")
    assert json.loads(body)["timestamp"] == "20240503100000"
    status, _, body = fetch(f"{base}/cdx?url={quote(STORY)}&sort=closest&closest=20240502230000&limit=1&output=json")
    assert json.loads(body)["timestamp"] == "20240503100000"


def test_cdx_default_output_is_cdxj(base, built):
    status, _, body = fetch(f"{base}/cdx?url={quote(OLD)}")
    assert status == 200
    [line] = body.decode().splitlines()
    urlkey, ts, fields = cdxj.parse_line(line)
    old = built.days[2][1]
    assert (urlkey, ts) == ("com,example)/old", old.timestamp)
    assert (fields["filename"], int(fields["offset"]), fields["status"]) == (old.warc, old.offset, "301")
    status, _, body = fetch(f"{base}/cdx?url={quote(OLD)}&fl=timestamp,status")
    assert body.decode() == f"{old.timestamp} 301\n"


def test_cdx_errors_are_one_line(base):
    for query, code in [("", 400), ("url=example.com&matchType=fuzzy", 400),
                        ("url=example.com&limit=many", 400), ("url=example.com&fl=nope", 400)]:
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
