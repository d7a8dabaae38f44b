"""NewsSpider: what to fetch for one source.

Discovery: robots.txt `Sitemap:` lines, feeds (RSS/Atom), sitemaps (indexes,
plain and Google news sitemaps) and link following from start_urls up to
`depth` hops. Everything fetched is archived by the capture middleware; only
article responses become items for extraction.

Scope is enforced in one place, a `request_scheduled` handler (the hook
Scrapy's own OffsiteMiddleware uses), so it also covers requests the spider
never yielded itself, such as redirects and meta refreshes: URLs that are not
http(s) (`bad-scheme`), hosts the source does not name (`off-scope`), `deny`
matches, URLs already requested (a `redirect-loop` when the URL is on the
redirect chain that led to it) and anything beyond `max_pages` are dropped
before they reach the scheduler. Every request passes it, whatever its
dont_filter says; only a retry of a request the gate admitted (RetryMiddleware
copies it, same URL, same redirect count) passes as the page it already is.
spiders.guard.ScopeGuardMiddleware holds the scheme and host line again in
front of the downloader, for requests that never see the scheduler (robots.txt
and its redirects); allowed_domains is set too, for Scrapy's OffsiteMiddleware.

Pages larger than the parse limits (spiders.limits.ParseLimits) are archived
but not read: no links, no article (`too-large`). Feeds and sitemaps are read
as a stream, and no further than max_pages.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any, AsyncIterator
from urllib.parse import urldefrag, urljoin, urlsplit

import scrapy
from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse, Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.sitemap import sitemap_urls_from_robots
from w3lib.url import canonicalize_url

from spiders.failures import describe_failure, error_kind, status_kind
from spiders.feeds import MAX_XML_BYTES, FeedError, XmlIndexReader
from spiders.guard import REQUISITE_META, Refused, Scope, record_refusal, redact_url, strip_userinfo
from spiders.limits import MAX_ROBOTSTXT_BYTES, ForbiddenByRobots, ParseLimits, decoded_limit
from spiders.pagereader import LinkRules, PageReader, tree_links
from spiders.requested import Requested
from spiders.seen import SeenCaptures
from spiders.sources import Source, SourcesError, default_sources_path, load_sources
from spiders.stats import record_error

logger = logging.getLogger(__name__)

# request.meta: [url, redirect count] of a request the gate admitted; a retry carries it unchanged
ADMITTED_META = "newsarchive_admitted"
# response.meta: the spider read this page (2xx HTML within the parse limits): its requisites may be fetched
PAGE_READ_META = "newsarchive_page_read"
PAGE_REQUISITES_META = "newsarchive_page_requisites"  # (URL, kind) read in the pool with the article


class NewsSpider(scrapy.Spider):
    name = "news"

    @classmethod
    def from_crawler(cls, crawler, *args, source: Source | str | None = None, sources_file: str | None = None, **kwargs):
        if not isinstance(source, Source):  # `scrapy crawl news -a source=NAME [-a sources_file=...]`
            source = _named_source(source, sources_file)
        spider = super().from_crawler(crawler, *args, source=source, **kwargs)
        # Per-source politeness, at spider priority so the project defaults yield to it
        # (the one place it is set; settings freeze after from_crawler).
        if not crawler.settings.frozen:
            crawler.settings.set("DOWNLOAD_DELAY", source.delay, priority="spider")
            crawler.settings.set("CONCURRENT_REQUESTS_PER_DOMAIN", source.concurrency, priority="spider")
        # What the archive holds already (--seen): archived articles not due for a re-check are skipped
        spider.seen = SeenCaptures.load(crawler.settings.get("NEWSARCHIVE_SEEN"))
        spider.parse_limits = ParseLimits.from_settings(crawler.settings)
        spider.max_xml_bytes = decoded_limit(crawler.settings)
        try:  # article pages are read (links and text) in the crawl's extraction pool
            spider.reader = PageReader.of(crawler)
        except NotConfigured:  # no spool: nothing extracts; links are read here
            spider.reader = None
        crawler.signals.connect(spider._gate, signal=signals.request_scheduled)
        crawler.signals.connect(spider._robots_parsed, signal=signals.robots_parsed)
        return spider

    def __init__(self, source: Source, **kwargs):
        super().__init__(**kwargs)
        self.source = source
        # OffsiteMiddleware (www.X is a subdomain of X): the requisite hosts too, so their robots.txt
        # and requisites pass it; the gates keep pages to the source's own hosts
        self.allowed_domains = sorted(source.requisite_scope)
        self._allow = [re.compile(p) for p in source.allow]
        self._deny = [re.compile(p) for p in source.deny]
        self.scope = Scope(source)
        # requests admitted by the gates (spiders.requisites shares it: one fetch per URL)
        self.requested = Requested()
        self.pages = 0  # requests admitted for fetching (robots.txt and retries not counted)
        self.seen = SeenCaptures()  # replaced in from_crawler by the archive's state
        self.parse_limits = ParseLimits()  # these two from the settings, in from_crawler
        self.max_xml_bytes = MAX_XML_BYTES
        self.link_rules = LinkRules(deny=tuple(source.deny), hosts=tuple(sorted(source.hosts)))
        self.reader = None  # a PageReader, in from_crawler, when the crawl has a spool

    @property
    def error_samples(self) -> list[dict]:
        """The first failures of each kind (spiders.stats.record_error keeps them in the stats)."""
        return list(self.crawler.stats.get_value("newsarchive/error_samples") or [])

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
        # A user name and password in a link are dropped too: never sent, never archived.
        # Feeds and sitemaps first, then articles, then listings: what max_pages
        # cuts off should be the least newsworthy.
        priority = 20 if callback == self.parse_index else 10 if article else 0
        return Request(strip_userinfo(urldefrag(url).url), callback=callback, errback=self.on_error,
                       priority=priority, meta={"hops": hops, "article": article, "hints": hints or {}})

    def _robots_parsed(self, robotparser, request: Request) -> None:
        """RobotsTxtMiddleware parsed a robots.txt: queue its Sitemap: lines (the gate judges them)."""
        if self.scope.refusal(request.url) is not None:
            return  # the robots.txt of a requisite host: its Sitemap: lines are not this source's
        rp = getattr(robotparser, "rp", None)  # Protego (Scrapy's default parser) keeps them
        found = getattr(rp, "sitemaps", None) or (rp.site_maps() if hasattr(rp, "site_maps") else None) or []
        for url in found:
            sitemap = self._sitemap_request(url, request.url)
            if sitemap is not None:
                self.crawler.engine.crawl(sitemap)

    def parse_robots(self, response: Response):
        if self._status_ok(response):
            text = response.body[:MAX_ROBOTSTXT_BYTES].decode("utf-8", "replace")  # as Google reads it
            for url in sitemap_urls_from_robots(text, base_url=response.url):
                sitemap = self._sitemap_request(url, response.url)
                if sitemap is not None:
                    yield sitemap

    def _sitemap_request(self, line: str, robots_url: str) -> Request | None:
        """A robots.txt `Sitemap:` line as a request (the gate judges it), None if it is no URL."""
        try:
            return self._request(urljoin(_site_root(robots_url), line.strip()), self.parse_index, hops=0)
        except ValueError as exc:
            record_refusal(self.crawler, robots_url, Refused("bad-url", f"a Sitemap: line is not a URL ({exc})"))
            return None

    # -- the scope gate -----------------------------------------------------

    def _gate(self, request: Request, spider=None) -> None:
        """request_scheduled: raising IgnoreRequest here keeps a request out of the scheduler."""
        meta = request.meta
        if meta.get(REQUISITE_META):
            return  # a page's stylesheet, image...: spiders.requisites judges it, with its own scope and budget
        admitted_as = [request.url, meta.get("redirect_times", 0)]
        if meta.get(ADMITTED_META) == admitted_as:
            return  # a retry (RetryMiddleware's copy) of a request admitted here: the same page again
        refusal = self.scope.refusal(request.url)
        if refusal is not None:
            record_refusal(self.crawler, request.url, refusal)
            raise IgnoreRequest(refusal.message)
        if meta.get("newsarchive_robots"):
            meta[ADMITTED_META] = admitted_as
            return  # robots.txt: in scope is enough, it is no page
        stats = self.crawler.stats
        if self._denied(request.url):
            stats.inc_value("newsarchive/dropped/denied")
            raise IgnoreRequest(f"denied: {request.url}")
        fp = self.crawler.request_fingerprinter.fingerprint(request)
        if fp in self.requested:
            chain = meta.get("redirect_urls") or []
            if chain and _canonical(request.url) in {_canonical(u) for u in chain}:
                record_refusal(self.crawler, chain[0], Refused(
                    "redirect-loop", f"redirects lead back to {redact_url(request.url)} "
                                     f"after {len(chain)} hops: not followed"))
            else:
                stats.inc_value("newsarchive/dropped/duplicate")
            raise IgnoreRequest(f"already requested: {request.url}")
        if meta.get("article") and not self.seen.due(request.url, self.source.recheck):
            # archived (2xx) and not due for a re-check; feeds, sitemaps and listings always pass
            self.requested.add(fp, request.url)
            stats.inc_value("newsarchive/skipped_seen")
            raise IgnoreRequest(f"archived, not due for a re-check: {request.url}")
        if self.pages >= self.source.max_pages:
            stats.inc_value("newsarchive/dropped/max_pages")
            raise IgnoreRequest(f"max_pages ({self.source.max_pages}) reached: {request.url}")
        self.requested.add(fp, request.url)
        self.pages += 1
        meta[ADMITTED_META] = admitted_as

    def _denied(self, url: str) -> bool:
        return any(p.search(url) for p in self._deny)

    def _in_scope(self, url: str) -> bool:
        return self.scope.refusal(url) is None and not self._denied(url)

    def is_article_url(self, url: str) -> bool:
        return any(p.search(url) for p in self._allow)

    # -- responses ----------------------------------------------------------

    def parse_index(self, response: Response):
        """A feed or sitemap: every entry is an article; sitemap indexes nest.

        Read as a stream and no further than max_pages (and MAX_ENTRIES):
        what is not read is not built, fingerprinted or queued.
        """
        if not self._status_ok(response):
            return
        try:
            index = XmlIndexReader(response.body, response.url, max_bytes=self.max_xml_bytes)
        except FeedError as e:
            self._record_error(response.url, "bad-feed", str(e))
            return
        stats = self.crawler.stats
        stats.inc_value(f"newsarchive/indexes/{index.kind}")
        try:
            for entry in index:
                url = strip_userinfo(entry.url)
                if self.pages >= self.source.max_pages:
                    stats.inc_value("newsarchive/dropped/max_pages")
                    logger.info("max_pages (%d) reached: %s not read further (after %d entries)",
                                self.source.max_pages, response.url, index.read)
                    return
                refusal = self.scope.refusal(url)
                if refusal is not None and refusal.kind == "off-scope":
                    stats.inc_value("newsarchive/dropped/offsite")  # another site's page, as a link would be
                    continue
                if refusal is not None:
                    record_refusal(self.crawler, url, refusal)
                    continue
                if self._denied(url):
                    stats.inc_value("newsarchive/dropped/denied")
                    continue
                if index.is_sitemap_index:
                    yield self._request(url, self.parse_index, hops=0)
                else:
                    yield self._request(url, self.parse_page, hops=1, article=True, hints=entry.hints)
        except FeedError as e:
            self._record_error(response.url, "bad-feed", str(e))
        if index.cut:
            record_refusal(self.crawler, response.url, Refused(
                "decompression-limit", f"decodes to more than {self.max_xml_bytes / 1048576:.1f} MB: read up to "
                                       f"there ({index.read} entries)", fetched=True))
        if index.overflow:
            self._record_error(response.url, "bad-feed", f"lists more than {index.max_entries} entries "
                                                         f"(the sitemaps.org limit): the rest not read")

    async def parse_page(self, response: Response):
        if not self._status_ok(response):
            return
        if not isinstance(response, HtmlResponse):
            return  # a PDF, image or feed linked from a page: archived, nothing to read
        too_large = self.parse_limits.too_large(response.body)
        if too_large:
            record_refusal(self.crawler, response.url, Refused("too-large", too_large, fetched=True))
            return
        meta = response.meta
        meta[PAGE_READ_META] = True  # spiders.requisites fetches what this page needs to look like itself
        hops = meta.get("hops", 0)
        follow = hops < self.source.depth
        links = None
        is_article = meta.get("article") or self.is_article_url(response.url)
        if is_article and (meta.get("capture") or {}).get("revisit"):
            # the payload the archive holds already (a revisit record): its text exists
            self.crawler.stats.inc_value("newsarchive/unchanged")
        elif is_article:
            self.crawler.stats.inc_value("newsarchive/articles")
            item = {
                "kind": "article",
                "url": response.url,
                "body": response.body,
                "content_type": (response.headers.get(b"Content-Type") or b"").decode("latin-1") or None,
                "status": response.status,
                "hints": meta.get("hints") or {},
                "capture": meta.get("capture"),
            }
            if self.reader is not None:
                # links and text from one parse, in the extraction pool (spiders/pagereader.py)
                capture = item["capture"] or {}
                rules = replace(self.link_rules, follow=follow, requisites=self._requisites_reader())
                item["read"] = await self.reader.read(
                    response.body, url=response.url, content_type=item["content_type"],
                    fetched_at=capture.get("date"), hints=item["hints"], capture=capture or None,
                    links=rules if follow or rules.requisites else None)
                links = item["read"].links
                if item["read"].requisites is not None:
                    meta[PAGE_REQUISITES_META] = item["read"].requisites
            yield item
        if not follow:
            return
        if links is None:  # a listing page (or no reading): Scrapy parses it here, links read as the pool reads them
            links = tree_links(response, response.selector.root, self.link_rules)
        for request in self.follow(links, hops + 1):
            yield request

    def _requisites_reader(self) -> str | None:
        """The function the pool lists an article's requisites with, when spiders.requisites wants them."""
        if not self.settings.getbool("NEWSARCHIVE_REQUISITES", True) or self.source.requisite_budget <= 0:
            return None
        return "spiders.requisites.html_requisites"

    def follow(self, urls, hops: int):
        """Requests for the in-scope links of a page, until max_pages."""
        for url in urls:
            if self.pages >= self.source.max_pages:
                self.crawler.stats.inc_value("newsarchive/dropped/max_pages")
                return  # no more pages to fetch: the rest of the links are not even built
            url = strip_userinfo(url)
            if self._denied(url):
                continue
            refusal = self.scope.refusal(url)
            if refusal is None and self.requested.has_url(url):
                # requested already, so the gate would refuse it: no Request is built for it
                self.crawler.stats.inc_value("newsarchive/dropped/duplicate")
            elif refusal is None:
                yield self._request(url, self.parse_page, hops=hops, article=self.is_article_url(url))
            elif refusal.kind != "off-scope":
                # a link to another site is no failure; a file:, ftp: or broken link is
                record_refusal(self.crawler, url, refusal)

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
        robots = request.meta.get("newsarchive_robots")
        if failure.check(Refused):
            # counted where it was refused; a request never sent gives its page back
            if not failure.value.fetched and not robots:
                self.pages -= 1
            return
        if failure.check(IgnoreRequest) and not failure.check(HttpError):
            if not robots:
                self.pages -= 1  # dropped before fetching: not fetched, not counted
            if failure.check(ForbiddenByRobots):
                self.crawler.stats.inc_value("newsarchive/dropped/robots_txt")
            else:
                self.crawler.stats.inc_value("newsarchive/dropped/ignored")
            return
        if failure.check(HttpError):  # only when HTTPERROR_ALLOW_ALL is off
            self.crawler.stats.inc_value("newsarchive/pages")
        self._record_error(request.url, error_kind(failure), describe_failure(failure))

    def _record_error(self, url: str, kind: str, message: str) -> None:
        url = redact_url(url)
        message = " ".join(str(message).split())[:300]
        record_error(self.crawler.stats, kind, url, message)
        logger.warning("fetch failed (%s): %s: %s", kind, url, message)


def _canonical(url: str) -> str:
    """The URL as request fingerprints see it (query order, escaping), for comparing chains."""
    try:
        return canonicalize_url(url)
    except ValueError:
        return url


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
