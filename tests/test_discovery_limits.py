"""Crawl limits and failures: max_pages, per-source politeness, errors counted by kind."""

from collections import Counter

from loopback import closed_port
from siteserver import Route, SiteServer
from spiders.failures import error_kind
from spiders.news import NewsSpider
from spiders.sources import Source

HTML = [("Content-Type", "text/html; charset=utf-8")]


def page(title: str, *links: str) -> Route:
    anchors = "".join(f'<a href="{h}">{h}</a> ' for h in links)
    return Route(f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{anchors}</body></html>".encode(),
                 headers=HTML)


def test_max_pages_stops_scheduling_and_counts_every_fetched_page(crawl):
    articles = [f"/2024/01/{n:02d}/story" for n in range(1, 21)]
    routes = {"/robots.txt": Route(b"User-agent: *\nAllow: /\n"), "/": page("Home", *articles)}
    routes.update({a: page(a) for a in articles})
    with SiteServer(routes) as site:
        src = Source(name="capped", start_urls=(site.url("/"),), allow=(r"/\d{4}/",), depth=1, max_pages=5, delay=0.0)
        result = crawl(src)
        pages = [p for p in site.fetched_paths() if p != "/robots.txt"]
    assert len(pages) == 5 and "/" in pages  # the homepage counts as a page too
    assert len(result.items) == 4
    assert result.stats["newsarchive/dropped/max_pages"] == 16


def test_source_politeness_becomes_the_crawl_settings(crawl):
    with SiteServer({"/": page("Home")}) as site:
        src = Source(name="polite", start_urls=(site.url("/"),), delay=0.25, concurrency=3)
        result = crawl(src)
    assert result.settings == {"DOWNLOAD_DELAY": 0.25, "CONCURRENT_REQUESTS_PER_DOMAIN": 3}


def test_failures_are_counted_by_kind_and_the_crawl_goes_on(crawl):
    with closed_port() as port:
        _failures_are_counted_by_kind(crawl, f"http://127.0.0.1:{port}/")


def _failures_are_counted_by_kind(crawl, dead: str):
    routes = {
        "/": page("Home", "/2024/01/01/fine", "/2024/01/02/boom", "/2024/01/03/gone", "/section/boom"),
        "/2024/01/01/fine": page("Fine"),
        "/2024/01/02/boom": Route(b"<h1>oops</h1>", status=503, headers=HTML),
        "/2024/01/03/gone": Route(b"<h1>gone</h1>", status=410, headers=HTML),
        "/section/boom": Route(b"<h1>oops</h1>", status=500, headers=HTML),
        "/not-a-feed": page("I am HTML, not a feed"),
    }
    with SiteServer(routes) as site:
        src = Source(name="faulty", start_urls=(site.url("/"), dead), feeds=(site.url("/not-a-feed"),),
                     allow=(r"/\d{4}/",), depth=1, delay=0.0)
        result = crawl(src)
        fetched = site.fetched_paths()
    assert result.urls == {site.url("/2024/01/01/fine")}  # error pages are never articles
    assert result.errors() == {"http-5xx": 2, "http-4xx": 1, "connection": 1, "bad-feed": 1}
    kinds = {s["url"]: s["kind"] for s in result.error_samples}
    assert kinds[dead] == "connection" and kinds[site.url("/not-a-feed")] == "bad-feed"
    # Counted once per URL, whatever retries the settings allow; a 4xx is fetched once.
    assert Counter(fetched)["/2024/01/03/gone"] == 1
    assert "fetch failed (http-4xx)" in result.log


def test_error_kinds_name_the_cause():
    from scrapy.exceptions import CannotResolveHostError, DownloadTimeoutError
    from twisted.internet import error

    assert error_kind(CannotResolveHostError("no.such.host")) == "dns"
    assert error_kind(error.DNSLookupError("no.such.host")) == "dns"
    assert error_kind(DownloadTimeoutError("took too long")) == "timeout"
    assert error_kind(error.TCPTimedOutError()) == "timeout"
    assert error_kind(error.ConnectionRefusedError()) == "connection"
    assert error_kind(ValueError("?")) == "other"


def test_scope_is_the_named_hosts_with_or_without_www():
    spider = NewsSpider(source=Source(name="s", start_urls=("https://www.example.com/news",),
                                      feeds=("https://feeds.example.org/rss",), deny=("/video/",)))
    assert spider._in_scope("https://example.com/a") and spider._in_scope("https://WWW.example.com/a")
    assert spider._in_scope("http://feeds.example.org/other")
    assert not spider._in_scope("https://cdn.example.com/a")  # another host, however close
    assert not spider._in_scope("https://example.com.evil.test/a")
    assert not spider._in_scope("https://www.example.com/video/1")
