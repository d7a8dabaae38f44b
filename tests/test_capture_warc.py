"""A real crawl of a loopback site, read back with warcio, warcio check and cdxj-indexer."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from fixtures_capture import gzipped, run_capture_crawl
from siteserver import Route, SiteServer

BIN = Path(sys.executable).parent
PAGE = b"<html><head><title>Story</title></head><body><p>" + "Caf\u00e9 \u00ab news \u00bb ".encode() * 40 + b"</p></body></html>"
BIG = bytes(range(256)) * 1200  # 307200 bytes, over the 100000-byte limit below
ROUTES = {
    "/robots.txt": Route(b"User-agent: *\nDisallow: /private\n", headers=[("Content-Type", "text/plain")]),
    "/gz": Route(gzipped(PAGE), headers=[("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", "gzip")]),
    "/chunked": Route(PAGE * 3, chunked=True, headers=[("Content-Type", "text/html; charset=utf-8")]),
    "/gzchunked": Route(gzipped(PAGE * 5), chunked=True,
                        headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]),
    "/cookies": Route(b"<html>c</html>", headers=[("Content-Type", "text/html"), ("Set-Cookie", "a=1; Path=/"),
                                                 ("Set-Cookie", "b=2; Path=/"), ("Set-Cookie", "c=3; Domain=example.com")]),
    "/broken": Route(b"<html>oops</html>", status=500, reason="Internal Trouble"),
    "/old": Route(b"", status=301, headers=[("Location", "/new")]),
    "/new": Route(b"<html>new</html>", headers=[("Content-Type", "text/html")]),
    "/feed.xml": Route(b"<?xml version='1.0'?><rss version='2.0'><channel/></rss>",
                       headers=[("Content-Type", "application/rss+xml")]),
    "/logo.png": Route(b"\x89PNG\r\n\x1a\n" + bytes(range(256)), headers=[("Content-Type", "image/png")]),
    "/search?q=news&page=2": Route(b"<html>results</html>", headers=[("Content-Type", "text/html")]),
    "/big": Route(BIG, headers=[("Content-Type", "application/octet-stream")]),
    "/private/secret": Route(b"never"),
}
FETCH = ["/gz", "/chunked", "/gzchunked", "/cookies", "/broken", "/old", "/feed.xml", "/logo.png",
         "/search?q=news&page=2", "/missing", "/big", "/private/secret"] + [f"/private/{i}" for i in range(6)]


def slow_robots(path, server):
    if path == "/robots.txt":
        # every start request is waiting on robots.txt when it arrives
        time.sleep(0.5)
    return ROUTES.get(path)


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    with SiteServer(slow_robots) as site:
        result = run_capture_crawl([site.url(p) for p in FETCH], tmp_path_factory.mktemp("cap") / "spool",
                                   articles=[site.url("/gz"), site.url("/chunked")],
                                   settings={"NEWSARCHIVE_MAX_BODY_BYTES": 100_000})
        result.site_requests = site.fetched_paths()
        result.base = site.url("")
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def records(path: Path) -> list:
    """(record, headers, payload bytes) for every record, payload exactly as stored."""
    out = []
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            out.append((rec, rec.raw_stream.read()))
    return out


def responses(crawl) -> dict[str, tuple]:
    found = {}
    for warc in crawl.warcs():
        for rec, payload in records(warc):
            if rec.rec_type == "response":
                found[rec.rec_headers.get_header("WARC-Target-URI")[len(crawl.base):]] = (rec, payload)
    return found


def test_warcio_check_passes_on_every_file(crawl):
    files = crawl.warcs() + crawl.warcs(text=True)
    assert len(files) == 2
    proc = subprocess.run([str(BIN / "warcio"), "check", "-v", *map(str, files)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "digest pass" in proc.stdout and "fail" not in proc.stdout
    for path in files:  # every gzip member complete (warcio check passes a file cut mid-record)
        with gzip.open(path) as fh:
            while fh.read(1 << 20):
                continue
    assert not list(crawl.spool.rglob("*.open")), "files left open after the crawl"


def test_each_file_starts_with_warcinfo_and_records_are_warc_1_1(crawl):
    for warc in crawl.warcs() + crawl.warcs(text=True):
        recs = records(warc)
        first, payload = recs[0]
        assert first.rec_type == "warcinfo"
        info = dict(line.split(": ", 1) for line in payload.decode().splitlines() if line)
        assert info["software"].startswith("newsarchive/")
        assert info["robots"] == "obey"
        assert info["http-header-user-agent"].startswith("newsarchive/0.1 (+")
        assert info["format"] == "WARC File Format 1.1"
        assert info["operator"] == "newsarchive operator"  # the default: no NEWSARCHIVE_OPERATOR here
        assert all(rec.rec_headers.protocol == "WARC/1.1" for rec, _ in recs)
        assert warc.name.startswith("newsarchive-testsite-")
        assert warc.relative_to(crawl.spool).parts[:2] == ("warc", "testsite")


def test_every_exchange_is_archived_as_a_linked_pair(crawl):
    fetched = set(crawl.site_requests)
    archived = set(responses(crawl))
    # robots.txt, the redirect and its target, errors and non-HTML are all there
    assert {"/robots.txt", "/old", "/new", "/broken", "/missing", "/feed.xml", "/logo.png"} <= archived
    assert archived == fetched
    assert not [p for p in fetched if p.startswith("/private")]  # robots.txt obeyed by every request
    for warc in crawl.warcs():
        recs = [rec for rec, _ in records(warc)][1:]
        ids = {rec.rec_headers.get_header("WARC-Record-ID"): rec for rec in recs if rec.rec_type == "response"}
        requests = [rec for rec in recs if rec.rec_type == "request"]
        assert len(requests) == len(ids)
        for req in requests:
            resp = ids[req.rec_headers.get_header("WARC-Concurrent-To")]
            assert resp.rec_headers.get_header("WARC-Target-URI") == req.rec_headers.get_header("WARC-Target-URI")


@pytest.mark.parametrize("path", ["/gz", "/chunked", "/gzchunked", "/cookies", "/broken", "/feed.xml",
                                  "/logo.png", "/search?q=news&page=2", "/robots.txt", "/old"])
def test_payload_is_byte_for_byte_what_the_server_sent(crawl, path):
    rec, payload = responses(crawl)[path]
    assert payload == ROUTES[path].body
    names = [name.lower() for name, _ in rec.http_headers.headers]
    assert "transfer-encoding" not in names
    assert rec.rec_headers.get_header("WARC-Truncated") is None
    assert rec.rec_headers.get_header("WARC-IP-Address") == "127.0.0.1"


def test_content_encoding_is_kept_with_the_still_compressed_body(crawl):
    rec, payload = responses(crawl)["/gzchunked"]
    assert rec.http_headers.get_header("Content-Encoding") == "gzip"
    assert payload[:2] == b"\x1f\x8b"
    assert rec.http_headers.get_header("Vary") == "Accept-Encoding"


def test_repeated_set_cookie_headers_survive(crawl):
    rec, _ = responses(crawl)["/cookies"]
    cookies = [value for name, value in rec.http_headers.headers if name.lower() == "set-cookie"]
    assert cookies == ["a=1; Path=/", "b=2; Path=/", "c=3; Domain=example.com"]


@pytest.mark.parametrize("path,line", [("/broken", "HTTP/1.1 500 Internal Trouble"),
                                       ("/missing", "HTTP/1.1 404 Not Found"),
                                       ("/old", "HTTP/1.1 301 Moved Permanently"),
                                       ("/gz", "HTTP/1.1 200 OK")])
def test_status_line_keeps_the_servers_reason_phrase(crawl, path, line):
    rec, _ = responses(crawl)[path]
    assert f"{rec.http_headers.protocol} {rec.http_headers.statusline}" == line


def test_request_record_has_full_request_line_and_host(crawl):
    port = crawl.base.rsplit(":", 1)[1]
    for warc in crawl.warcs():
        for rec, payload in records(warc):
            if rec.rec_type == "request" and rec.rec_headers.get_header("WARC-Target-URI").endswith("page=2"):
                assert f"{rec.http_headers.protocol} {rec.http_headers.statusline}" == "GET /search?q=news&page=2 HTTP/1.1"
                assert rec.http_headers.get_header("Host") == f"127.0.0.1:{port}"
                assert rec.http_headers.get_header("User-Agent").startswith("newsarchive/0.1")
                assert payload == b""
                return
    pytest.fail("no request record for the query-string URL")


def test_body_past_the_limit_is_kept_in_part_and_marked_truncated(crawl):
    rec, payload = responses(crawl)["/big"]
    assert rec.rec_headers.get_header("WARC-Truncated") == "length"
    assert 100_000 <= len(payload) < len(BIG)
    assert BIG.startswith(payload)
    assert rec.http_headers.get_header("Content-Length") == str(len(BIG))  # what the server declared


def test_capture_meta_points_at_the_response_record(crawl):
    items = {item["url"][len(crawl.base):]: item for item in crawl.items}
    assert set(items) == {"/gz", "/chunked"}
    for path, item in items.items():
        cap = item["capture"]
        with open(crawl.spool / cap["warc"], "rb") as fh:
            fh.seek(cap["offset"])
            member = fh.read(cap["length"])
        # offset and length span exactly one gzip member: the response record
        recs = list(ArchiveIterator(io.BytesIO(member)))
        assert len(recs) == 1 and recs[0].rec_type == "response"
        rec = recs[0]
        assert rec.rec_headers.get_header("WARC-Record-ID") == cap["record_id"]
        assert rec.rec_headers.get_header("WARC-Date") == cap["date"]
        assert rec.rec_headers.get_header("WARC-Target-URI") == item["url"]
        assert cap["truncated"] is False


def test_cdxj_indexer_indexes_the_capture_warcs(crawl):
    warc = crawl.warcs()[0]
    proc = subprocess.run([str(BIN / "cdxj-indexer"), str(warc)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line.split(" ", 2)[2]) for line in proc.stdout.splitlines()]
    by_url = {entry["url"][len(crawl.base):]: entry for entry in lines}
    assert by_url["/broken"]["status"] == "500"
    assert by_url["/old"]["status"] == "301"
    assert by_url["/search?q=news&page=2"]["status"] == "200"
    assert by_url["/gz"]["mime"] == "text/html"
    assert set(by_url) == set(responses(crawl))


def test_crawl_stats_count_pages_errors_and_files(crawl):
    stats = crawl.stats
    assert stats["pages"] == len(crawl.site_requests)
    assert stats["status_counts"]["500"] == 1 and stats["status_counts"]["301"] == 1
    # 200: robots.txt, /new (the redirect's target) and the 8 of FETCH that answer 200
    assert stats["status_counts"] == {"200": 10, "301": 1, "404": 1, "500": 1}
    assert stats["bytes"] > len(ROUTES["/gz"].body)
    for key in stats["files"]:
        assert (crawl.spool / key).is_file(), key
    assert sorted(str(p.relative_to(crawl.spool)) for p in crawl.spool.rglob("*") if p.is_file()) == stats["files"]


def test_crawl_log_has_no_network_attempts_or_tracebacks(crawl):
    assert "Traceback" not in crawl.stderr
    assert "ConnectionError" not in crawl.stderr
    assert "publicsuffix" not in crawl.stderr.lower()
