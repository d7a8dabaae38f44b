"""Bodies are bounded by what they decode to and by what is parsed: compression bombs (gzip,
deflate, br, zstd, nested), huge pages and a sitemap of a million URLs are archived as received,
counted, and never blow up the crawl's memory (peak RSS of its process tree under 768 MB)."""

from __future__ import annotations

import functools
import gzip
import re
import shutil
import zlib

import brotli

from siteserver import Route
from spiders.reextract import reextract_warc
from storage.recovery import SpoolLock, recover_spool

from fixtures_hostile import check_archive, hostile_crawl_run
from fixtures_replay import http_get
from hostile_site import HTML, XML, article_html, page
from test_cli_support import assert_one_line_error, cli_env, run as run_cli

try:
    from compression import zstd
except ImportError:
    from backports import zstd

MB = 1024 * 1024
BOMB_BYTES = 120 * MB  # decodes to more than twice the 50 MB limit
LIMIT = 50 * MB
ENCODED_CODINGS = ("br", "zstd", "deflate", "gzip, br", "zstd, gzip")  # the legitimate pages'


def _zeros(total: int, chunk: int = 4 * MB):
    head = b"<html><head><title>bomb</title></head><body><p>"
    yield head
    left = total - len(head)
    while left > 0:
        yield b" " * min(chunk, left)
        left -= chunk


def _stream(compressor, total: int) -> bytes:
    parts = [compressor.compress(c) for c in _zeros(total)]
    return b"".join(parts) + compressor.flush()


@functools.lru_cache(maxsize=None)
def bomb(coding: str, total: int = BOMB_BYTES) -> bytes:
    """A body of `total` bytes of HTML, compressed with `coding` (built once per session)."""
    if coding == "gzip":
        return _stream(zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS), total)
    if coding == "deflate":
        return _stream(zlib.compressobj(9), total)
    if coding == "br":
        c = brotli.Compressor(quality=4)
        return b"".join(c.process(x) for x in _zeros(total)) + c.finish()
    if coding == "zstd":
        return _stream(zstd.ZstdCompressor(), total)
    raise ValueError(coding)


def encoded(body: bytes, coding: str) -> bytes:
    return {"gzip": lambda b: gzip.compress(b, mtime=0), "deflate": zlib.compress, "br": brotli.compress,
            "zstd": zstd.compress}[coding](body)


def test_compression_bombs_are_archived_as_received_and_never_decoded_in_full(hostile_site, hostile_crawl, tmp_path,
                                                                            serve_archive, pywb_bin):
    site = hostile_site
    good = site.articles("", 2)
    sent: dict[str, bytes] = {}

    def serve(path: str, body: bytes, coding: str, content_type=HTML) -> str:
        site.add(path, Route(body, headers=content_type + [("Content-Encoding", coding)]))
        sent[site.url(path)] = body
        return path

    # the gzip bomb (replayed below) and the br page also name another page as their original,
    # as a hostile page may, to steer what serve checks: pywb passes such a Link on as it is
    forged = [("Link", '<http://127.0.0.1:9/harmless>; rel="original"')]
    bombs = [serve(f"/news/bomb-{c}", bomb(c), c, HTML + (forged if c == "gzip" else []))
             for c in ("gzip", "deflate", "br", "zstd")]
    # nested: Content-Encoding lists codings in the order applied (so br comes off first)
    bombs.append(serve("/news/bomb-gzip-br", brotli.compress(bomb("gzip")), "gzip, br"))
    bombs.append(serve("/news/bomb-gzip-gzip", gzip.compress(bomb("gzip")), "gzip, gzip"))
    bombs.append(serve("/news/bomb-zstd-deflate", zlib.compress(bomb("zstd")), "zstd,deflate"))
    # legitimate pages in each coding, nested too: decoded and extracted
    for i, coding in enumerate(ENCODED_CODINGS):
        body = article_html(f"Encoded story {i}")
        for c in coding.split(", "):
            body = encoded(body, c)
        serve(f"/news/encoded-{i}", body, coding, HTML + (forged if coding == "br" else []))
        site.good.append(site.url(f"/news/encoded-{i}"))
    # robots.txt and sitemaps as bombs: neither may escape the limit
    serve("/robots.txt", bomb("gzip"), "gzip", [("Content-Type", "text/plain")])
    sitemap_bomb = gzip.compress(b"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
                                 + b"<!-- " + b" " * (80 * MB) + b" --></urlset>")
    serve("/sitemap.xml", sitemap_bomb, "gzip", XML)
    # a .xml.gz served as is: the spider decodes it, as bounded; entries before the cut are read
    raw = gzip.compress(f"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'><url><loc>{good[1]}</loc>"
                        f"</url>".encode() + b" " * (80 * MB) + b"</urlset>")
    site.add("/sitemap-raw.xml.gz", Route(raw, headers=[("Content-Type", "application/x-gzip")]))
    site.add("/", page("Home", good[0], *bombs, *[f"/news/encoded-{i}" for i in range(5)]))

    run = hostile_crawl(site, site.sources_toml(sitemaps=[site.url("/sitemap.xml"), site.url("/sitemap-raw.xml.gz")]))
    check_archive(run, site)
    # the 7 bomb pages, robots.txt, the gzip-encoded sitemap and the raw one
    assert run.errors.get("decompression-limit") == 10, run.errors
    assert set(run.errors) == {"decompression-limit"}, run.errors
    responses = run.responses()
    for url, body in sent.items():  # archived byte for byte as received, still encoded
        headers, status, payload = responses[url]
        assert status == 200 and payload.endswith(body) and "WARC-Truncated" not in headers, url
    extracted = {a["url"] for a in run.articles()}
    assert not [u for u in extracted if "bomb" in u]
    message = next(s["message"] for s in run.samples("decompression-limit") if "bomb-br" in s["url"])
    assert "decodes to more than 50.0 MB" in message and "archived as received" in message, message
    # re-deriving text from the WARC later reads the bombs no further than the crawl did
    results = {r.url: r for w in run.warcs(text=False) for r in reextract_warc(w, workers=1)}
    for path in bombs:
        assert results[site.url(path)].error.startswith("decompression-limit: decodes to more than"), path
    for i in range(5):
        assert results[site.url(f"/news/encoded-{i}")].ok, results[site.url(f"/news/encoded-{i}")].error
    # read back from an archive of it, a bomb decodes no further than the limit: one line, and
    # --as raw still gives it as received; the legitimate encoded pages decode in full
    archive = tmp_path / "archive"
    for warc in run.warcs():
        key = warc.relative_to(run.spool).as_posix()
        (archive / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(warc, archive / key)
    env = cli_env(tmp_path)
    assert run_cli("reindex", "--archive", archive, cwd=tmp_path, env=env).returncode == 0
    bomb_url = site.url("/news/bomb-gzip")
    line = assert_one_line_error(run_cli("get", bomb_url, "--as", "html", "--archive", archive, cwd=tmp_path, env=env),
                                 bomb_url, f"decodes to more than {LIMIT} bytes", "--as raw")
    raw = run_cli("get", bomb_url, "--as", "raw", "--archive", archive, cwd=tmp_path, env=env, text=False)
    assert raw.returncode == 0 and raw.stdout == sent[bomb_url], line
    for i in range(5):  # br, zstd, deflate, and nested codings
        legit = run_cli("get", site.url(f"/news/encoded-{i}"), "--as", "html", "--archive", archive, cwd=tmp_path,
                        env=env, text=False)
        assert legit.returncode == 0 and legit.stdout == article_html(f"Encoded story {i}"), (i, legit.stderr)
    # replayed rewritten through pywb, which would decode it all and stream 120 MB to the reader:
    # one line instead, naming the form as stored, which is the bytes received; legit pages replay
    served = serve_archive(archive, pywb=pywb_bin, env=env)
    assert served.pywb_pid
    status, headers, _ = http_get(f"{served.base}/web/{bomb_url}")
    memento = headers["Location"]
    assert status == 302 and re.fullmatch(rf"{served.base}/web/\d{{14}}/{re.escape(bomb_url)}", memento), memento
    for modifier in ("", "mp_"):
        status, _, body = http_get(memento.replace(f"/{bomb_url}", f"{modifier}/{bomb_url}"))
        error = body.decode()
        assert status == 502 and error.count("\n") == 1, (modifier, status, error[:300])
        assert f"decodes to more than {LIMIT} bytes" in error and f"id_/{bomb_url} gives it as stored" in error
    # pywb's fuzzy match answers a cache-busting query with the bomb too: refused the same way
    status, _, body = http_get(memento.replace(f"/{bomb_url}", f"mp_/{bomb_url}?_=1712345678"))
    assert status == 502 and f"decodes to more than {LIMIT} bytes" in body.decode(), (status, body[:300])
    status, headers, body = http_get(memento.replace(f"/{bomb_url}", f"id_/{bomb_url}"))
    assert status == 200 and headers["Content-Encoding"] == "gzip" and body == sent[bomb_url]
    for i, coding in enumerate(ENCODED_CODINGS):  # pywb decodes one layer of gzip, deflate or br
        legit = site.url(f"/news/encoded-{i}")
        status, headers, _ = http_get(f"{served.base}/web/{legit}")
        status, page_headers, body = http_get(headers["Location"])
        if coding in ("br", "deflate"):
            assert status == 200 and f"Encoded story {i}".encode() in body and b"/web/" in body, (i, status, body)
        else:  # zstd or nested: pywb would answer with encoded bytes under no Content-Encoding
            assert status == 502 and body.decode().count("\n") == 1, (i, status, body[:300])
            assert f"stored {coding}-encoded" in body.decode() and "id_/" in body.decode(), body
        if coding == "br":  # the page's own Link is passed on as the archived site's, never as ours
            assert "harmless" in page_headers["X-Archive-Orig-Link"] and "harmless" not in page_headers["Link"]
    # and had the crawl been killed while writing this WARC, recovery would keep every record of it
    capture = run.warcs(text=False)[0]
    key = capture.relative_to(run.spool).as_posix()
    torn = tmp_path / "killed"
    (torn / key).parent.mkdir(parents=True)
    (torn / (key + ".open")).write_bytes(capture.read_bytes() + gzip.compress(b"WARC/1.1\r\n")[:20])
    with SpoolLock(torn) as lock:
        report = recover_spool(lock)
    assert report.keys == [key] and not report.quarantined, report.as_dict()
    assert (torn / key).read_bytes() == capture.read_bytes()


def test_huge_pages_are_archived_but_not_read(hostile_site, hostile_crawl):
    site = hostile_site
    site.articles("", 2)
    huge = b"<html><body>" + b"<p>far too much</p>" * (60 * MB // 19) + b"</body></html>"  # past the 50 MB cut
    big = b"<html><body><article>" + b"<p>" + b"word " * (8 * MB // 5) + b"</p></article></body></html>"
    tags = b"<html><body>" + b"<b>x</b>" * 30_000 + b"</body></html>"  # 240 KB, 60,000 tags
    # just under the parse limits (5 MB, 50,000 tags), for the two extraction workers at once:
    # read in full, links and text (the costliest pages the crawl reads)
    para = "<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 7 + "</p>\n"
    site.add("/news/almost-0", Route(f"<html><head><title>Text</title></head><body><article>{para * 12_000}"
                                     f"</article></body></html>".encode(), headers=HTML))  # 4.9 MB
    site.good.append(site.url("/news/almost-0"))
    for n in (1, 2):
        links = "".join(f'<a href="/news/linked/{n}-{i}">story {i}</a> ' for i in range(24_000))
        site.add(f"/news/almost-{n}", Route(article_html(f"Almost too large {n}", extra=f"<nav>{links}</nav>"),
                                            headers=HTML))
        site.good.append(site.url(f"/news/almost-{n}"))
    site.add("/news/huge", Route(huge, headers=HTML))
    site.add("/news/big", Route(big, headers=HTML))
    site.add("/news/tags", Route(tags, headers=HTML))
    site.prefixes["/news/linked/"] = lambda path: Route(article_html(f"Linked {path}"), headers=HTML)
    site.add("/", page("Home", *[u.removeprefix(site.url("")) for u in site.good], "/news/huge", "/news/big",
                       "/news/tags"))
    run = hostile_crawl(site, site.sources_toml(max_pages=40))
    check_archive(run, site)
    assert run.errors.get("too-large") == 3, run.errors
    responses = run.responses()
    headers, _, payload = responses[site.url("/news/huge")]
    assert headers.get("WARC-Truncated") == "length" and LIMIT <= len(payload) < len(huge)
    assert huge.startswith(payload)  # the first part, as received
    headers, _, payload = responses[site.url("/news/big")]
    assert "WARC-Truncated" not in headers and payload == big
    messages = {s["url"]: s["message"] for s in run.samples("too-large")}
    assert "over the parse limit of 5.0 MB" in messages[site.url("/news/big")], messages
    assert re.match(r"600\d\d tags, over the parse limit of 50000 ", messages[site.url("/news/tags")]), messages
    extracted = {a["url"] for a in run.articles()}
    assert not {site.url(p) for p in ("/news/huge", "/news/big", "/news/tags")} & extracted
    assert any("/news/linked/" in u for u in extracted)  # the links of the page under the limits were followed


URLSET = b"<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>%s</urlset>"


def test_a_sitemap_of_a_million_urls_is_read_only_as_far_as_max_pages(hostile_site, hostile_crawl):
    site = hostile_site
    entries = b"".join(b"<url><loc>/news/s/%d</loc></url>\n" % i for i in range(1_000_000))
    site.add("/sitemap-huge.xml", Route(gzip.compress(URLSET % entries, 1), headers=XML + [("Content-Encoding", "gzip")]))
    site.prefixes["/news/s/"] = lambda path: Route(article_html(f"Sitemap story {path}"), headers=HTML)
    site.add("/", page("Home"))
    run = hostile_crawl(site, site.sources_toml(sitemaps=[site.url("/sitemap-huge.xml")], max_pages=30))
    fetched = [p for p in site.hits if p.startswith("/news/s/")]
    check_archive(run, site, good=[site.url(p) for p in fetched])
    assert len(fetched) == 28  # max_pages, less the homepage and the sitemap
    assert "not read further (after" in run.stderr
    assert run.errors == {}, run.errors


def test_a_sitemap_of_a_million_other_sites_pages_is_left_at_the_sitemaps_org_limit(hostile_site, hostile_crawl):
    site = hostile_site
    elsewhere = b"".join(b"<url><loc>%s</loc></url>\n" % site.bait.url(f"/news/{i}").encode() for i in range(1_000_000))
    site.add("/sitemap-elsewhere.xml.gz", Route(gzip.compress(URLSET % elsewhere, 1),
                                                headers=[("Content-Type", "application/gzip")]))
    site.articles("", 1)
    site.add("/", page("Home", *[u.removeprefix(site.url("")) for u in site.good]))
    run = hostile_crawl(site, site.sources_toml(sitemaps=[site.url("/sitemap-elsewhere.xml.gz")]))
    check_archive(run, site)
    assert run.errors == {"bad-feed": 1}, run.errors  # read up to 50,000 entries, then left
    assert "lists more than 50000 entries" in run.samples("bad-feed")[0]["message"]


def test_a_normal_crawl_is_the_baseline(news_site, tmp_path):
    """The test news site crawled as the hostile sites are (the memory figure of ARCHITECTURE.md)."""
    sources = news_site.write_sources(tmp_path)
    run = hostile_crawl_run(None, sources.read_text(), tmp_path / "run", source="testnews")
    assert run.returncode == 0 and run.stats["articles"] >= 14, run.stderr[-3000:]
    assert run.memory["peak_mb"] < 768, run.memory
