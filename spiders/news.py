"""NewsSpider: what to fetch for one source.

Discovery: robots.txt `Sitemap:` lines, feeds (RSS/Atom), sitemaps (indexes,
plain and Google news sitemaps) and link following from start_urls up to
`depth` hops. Everything fetched is archived by the capture middleware; only
article responses become items for extraction.

Scope is enforced in one place, a `request_scheduled` handler (the hook
Scrapy's own OffsiteMiddleware uses), so it also covers requests the spider
never yielded itself, such as redirects: off-site hosts, `deny` matches,
URLs already requested and anything beyond `max_pages` are dropped before
they reach the scheduler. allowed_domains is set too, so Scrapy's
OffsiteMiddleware holds the same line.
"""

from __future__ import annotations

import logging
import re
from typing import Any, AsyncIterator
from urllib.parse import urldefrag, urlsplit

import scrapy
from scrapy import signals
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import HtmlResponse, Request, Response
from scrapy.linkextractors import LinkExtractor
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.sitemap import sitemap_urls_from_robots
from twisted.internet import error as twisted_errors

from spiders.feeds import FeedError, parse_xml_index
from spiders.seen import SeenCaptures
from spiders.sources import Source, SourcesError, default_sources_path, host_key, load_sources

logger = logging.getLogger(__name__)

# Keep a few failures per crawl so a run summary can show what went wrong.
MAX_ERROR_SAMPLES = 20


def error_kind(failure_or_exc: Any) -> str:
    """A short, stable name for why a fetch failed (stats key newsarchive/errors/<kind>)."""
    exc = getattr(failure_or_exc, "value", failure_or_exc)
    if isinstance(exc, HttpError):
        return status_kind(exc.response.status)
    if isinstance(exc, (CannotResolveHostError, twisted_errors.DNSLookupError)):
        return "dns"
    if isinstance(exc, (DownloadTimeoutError, twisted_errors.TimeoutError, twisted_errors.TCPTimedOutError)):
        return "timeout"
    if isinstance(exc, ResponseDataLossError):
        return "data-loss"
    name = type(exc).__module__ + "." + type(exc).__name__
    if "SSL" in name or "TLS" in name:
        return "tls"
    if isinstance(exc, (DownloadFailedError, DownloadConnectionRefusedError, twisted_errors.ConnectError, twisted_errors.ConnectionLost,
                        twisted_errors.ConnectionDone, ConnectionError)) or "ResponseNeverReceived" in name \
            or "ResponseFailed" in name:
        return "connection"
    return "other"


def status_kind(status: int) -> str:
    return f"http-{status // 100}xx"


class NewsSpider(scrapy.Spider):
    name = "news"

    @classmethod
    def from_crawler(cls, crawler, *args, source: Source | str | None = None, sources_file: str | None = None, **kwargs):
        if not isinstance(source, Source):  # `scrapy crawl news -a source=NAME [-a sources_file=...]`
            source = _named_source(source, sources_file)
        spider = super().from_crawler(crawler, *args, source=source, **kwargs)
        # Per-source politeness, at spider priority so the project defaults yield to it.
        if not crawler.settings.frozen:
            crawler.settings.set("DOWNLOAD_DELAY", source.delay, priority="spider")
            crawler.settings.set("CONCURRENT_REQUESTS_PER_DOMAIN", source.concurrency, priority="spider")
        # What the archive holds already (--seen): archived articles not due for a re-check are skipped
        spider.seen = SeenCaptures.load(crawler.settings.get("NEWSARCHIVE_SEEN"))
        crawler.signals.connect(spider._gate, signal=signals.request_scheduled)
        crawler.signals.connect(spider._robots_parsed, signal=signals.robots_parsed)
        return spider

    def __init__(self, source: Source, **kwargs):
        super().__init__(**kwargs)
        self.source = source
        self.allowed_domains = sorted(source.hosts)  # OffsiteMiddleware: www.X is a subdomain of X
        self._allow = [re.compile(p) for p in source.allow]
        self._deny = [re.compile(p) for p in source.deny]
        self._seen: set[bytes] = set()  # request fingerprints admitted by the gate
        self.pages = 0  # requests admitted for fetching (robots.txt and retries not counted)
        self.error_samples: list[dict] = []
        self.seen = SeenCaptures()  # replaced in from_crawler by the archive's state
        self._links = LinkExtractor(deny=source.deny, unique=True)

    # -- where the crawl starts -------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        if not self.settings.getbool("ROBOTSTXT_OBEY"):
            # Otherwise RobotsTxtMiddleware fetches robots.txt and _robots_parsed reads it.
            for root in sorted({_site_root(u) for u in (*self.source.start_urls, *self.source.feeds, *self.source.sitemaps)}):
                yield Request(root + "robots.txt", callback=self.parse_robots, errback=self.on_error,
                              meta={"newsarchive_robots": True, "dont_obey_robotstxt": True})
        for url in (*self.source.feeds, *self.source.sitemaps):
            yield self._request(url, self.parse_index, hops=0)
        for url in self.source.start_urls:
            yield self._request(url, self.parse_page, hops=0)

    def _request(self, url: str, callback, *, hops: int, article: bool = False, hints: dict | None = None) -> Request:
        # Fragments never reach the server; dropping them keeps one capture per page.
        # Feeds and sitemaps first, then articles, then listings: what max_pages
        # cuts off should be the least newsworthy.
        priority = 20 if callback == self.parse_index else 10 if article else 0
        return Request(urldefrag(url).url, callback=callback, errback=self.on_error, priority=priority,
                       meta={"hops": hops, "article": article, "hints": hints or {}})

    def _robots_parsed(self, robotparser, request: Request) -> None:
        """RobotsTxtMiddleware parsed a robots.txt: queue its Sitemap: lines."""
        rp = getattr(robotparser, "rp", None)  # Protego (Scrapy's default parser) keeps them
        found = getattr(rp, "sitemaps", None) or (rp.site_maps() if hasattr(rp, "site_maps") else None) or []
        base = _site_root(request.url)
        for url in found:
            self.crawler.engine.crawl(self._request(url if "://" in url else base + url.lstrip("/"), self.parse_index, hops=0))

    def parse_robots(self, response: Response):
        if self._status_ok(response):
            for url in sitemap_urls_from_robots(response.text, base_url=response.url):
                yield self._request(url, self.parse_index, hops=0)

    # -- the scope gate -----------------------------------------------------

    def _gate(self, request: Request, spider=None) -> None:
        """request_scheduled: raising IgnoreRequest here keeps a request out of the scheduler."""
        if request.dont_filter or request.meta.get("newsarchive_robots"):
            return  # retries (RetryMiddleware sets dont_filter) are the same page again
        stats = self.crawler.stats
        if host_key(urlparse_cached(request).hostname) not in self.source.hosts:
            stats.inc_value("newsarchive/dropped/offsite")
            raise IgnoreRequest(f"off-site: {request.url}")
        if self._denied(request.url):
            stats.inc_value("newsarchive/dropped/denied")
            raise IgnoreRequest(f"denied: {request.url}")
        fp = self.crawler.request_fingerprinter.fingerprint(request)
        if fp in self._seen:
            stats.inc_value("newsarchive/dropped/duplicate")
            raise IgnoreRequest(f"already requested: {request.url}")
        if request.meta.get("article") and not self.seen.due(request.url, self.source.recheck):
            # archived (2xx) and not due for a re-check; feeds, sitemaps and listings always pass
            self._seen.add(fp)
            stats.inc_value("newsarchive/skipped_seen")
            raise IgnoreRequest(f"archived, not due for a re-check: {request.url}")
        if self.pages >= self.source.max_pages:
            stats.inc_value("newsarchive/dropped/max_pages")
            raise IgnoreRequest(f"max_pages ({self.source.max_pages}) reached: {request.url}")
        self._seen.add(fp)
        self.pages += 1

    def _denied(self, url: str) -> bool:
        return any(p.search(url) for p in self._deny)

    def _in_scope(self, url: str) -> bool:
        return host_key(urlsplit(url).hostname) in self.source.hosts and not self._denied(url)

    def is_article_url(self, url: str) -> bool:
        return any(p.search(url) for p in self._allow)

    # -- responses ----------------------------------------------------------

    def parse_index(self, response: Response):
        """A feed or sitemap: every entry is an article; sitemap indexes nest."""
        if not self._status_ok(response):
            return
        try:
            index = parse_xml_index(response.body, response.url)
        except FeedError as e:
            self._record_error(response.url, "bad-feed", str(e))
            return
        self.crawler.stats.inc_value(f"newsarchive/indexes/{index.kind}")
        for entry in index.entries:
            if not self._in_scope(entry.url):
                continue
            if index.is_sitemap_index:
                yield self._request(entry.url, self.parse_index, hops=0)
            else:
                yield self._request(entry.url, self.parse_page, hops=1, article=True, hints=entry.hints)

    def parse_page(self, response: Response):
        if not self._status_ok(response):
            return
        if not isinstance(response, HtmlResponse):
            return  # a PDF, image or feed linked from a page: archived, nothing to read
        meta = response.meta
        is_article = meta.get("article") or self.is_article_url(response.url)
        if is_article and (meta.get("capture") or {}).get("revisit"):
            # the payload the archive holds already (a revisit record): its text exists
            self.crawler.stats.inc_value("newsarchive/unchanged")
        elif is_article:
            self.crawler.stats.inc_value("newsarchive/articles")
            yield {
                "kind": "article",
                "url": response.url,
                "body": response.body,
                "content_type": (response.headers.get(b"Content-Type") or b"").decode("latin-1") or None,
                "status": response.status,
                "hints": meta.get("hints") or {},
                "capture": meta.get("capture"),
            }
        hops = meta.get("hops", 0)
        if hops >= self.source.depth:
            return
        for link in self._links.extract_links(response):
            if self._in_scope(link.url):
                yield self._request(link.url, self.parse_page, hops=hops + 1, article=self.is_article_url(link.url))

    # -- failures -----------------------------------------------------------

    def _status_ok(self, response: Response) -> bool:
        """Non-2xx responses are archived and counted, never read or followed."""
        self.crawler.stats.inc_value("newsarchive/pages")
        if 200 <= response.status < 300:
            return True
        self._record_error(response.url, status_kind(response.status), f"HTTP {response.status}")
        return False

    def on_error(self, failure):
        request = failure.request
        if failure.check(IgnoreRequest) and not failure.check(HttpError):
            # Dropped by a downloader middleware (robots.txt forbids it): not fetched, not counted.
            if not request.meta.get("newsarchive_robots"):
                self.pages -= 1
            self.crawler.stats.inc_value("newsarchive/dropped/ignored")
            return
        if failure.check(HttpError):  # only when HTTPERROR_ALLOW_ALL is off
            self.crawler.stats.inc_value("newsarchive/pages")
        self._record_error(request.url, error_kind(failure), failure.getErrorMessage())

    def _record_error(self, url: str, kind: str, message: str) -> None:
        self.crawler.stats.inc_value(f"newsarchive/errors/{kind}")
        message = " ".join(str(message).split())[:300]
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append({"url": url, "kind": kind, "message": message})
        logger.warning("fetch failed (%s): %s: %s", kind, url, message)


def _site_root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def _named_source(name: str | None, sources_file: str | None) -> Source:
    if not name:
        raise SourcesError("NewsSpider needs a source (a Source, or -a source=NAME)")
    path = sources_file or default_sources_path()
    sources = load_sources(path)
    if name not in sources:
        raise SourcesError(f"{path}: no source named {name!r} (known: {', '.join(sorted(sources)) or 'none'})")
    return sources[name]
