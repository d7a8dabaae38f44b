"""Each article page read once, in the extraction pool: its links and its text from one parse.

An article page is parsed by lxml once, in a worker: Scrapy's LinkExtractor
and the page-requisite reader (spiders.requisites.html_requisites) run over the
tree trafilatura loaded (spiders.scrapy_internals.with_tree), then the
extraction runs on the same tree. Before this the crawl process
parsed every article for its links and a worker parsed it again for its text;
on real news pages the crawl process's share was the crawl's bottleneck
(benchmarks/README.md). Listing pages, which are not extracted, keep their
link extraction in the spider.

`PageReader` is the crawl's one extraction pool (spiders.workerpool: forkserver,
all cores), shared by the spider (article pages it reads whole) and the
article pipeline (items that come without a reading, e.g. from other
spiders). `read_page` is the job a worker runs; a page whose extraction fails
still gives its links, and a worker that dies gives none (the spider then
extracts them itself).
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin, urlparse

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse
from scrapy.linkextractors import IGNORED_EXTENSIONS, LinkExtractor
from scrapy.utils.response import get_base_url
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import load_object
from twisted.internet.defer import Deferred
from w3lib.html import strip_html5_whitespace
from w3lib.url import safe_url_string

from spiders.guard import PLAIN_HTTP_URL, Scope
from spiders.scrapy_internals import with_tree
from spiders.workerpool import extraction_pool

logger = logging.getLogger(__name__)

DEFAULT_EXTRACTOR = "spiders.extraction.extract_article"
_READER_ATTR = "_newsarchive_page_reader"  # the crawler's one PageReader
XHTML_NAMESPACE = "http://www.w3.org/1999/xhtml"  # LinkExtractor reads <a> in it as <a>


@dataclass
class PageRead:
    """What a worker read of one page: the article or why there is none, and its links."""

    article: Any = None
    error: BaseException | None = None
    links: list[str] | None = None  # absolute URLs, as LinkExtractor gives them; None: not asked or not read
    requisites: list[tuple[str, str]] | None = None  # (URL, kind) the page needs; None: not asked or not read


# --------------------------------------------------------------------------- in the worker

def link_extractor(deny: tuple[str, ...], hosts: tuple[str, ...] | None) -> LinkExtractor:
    """The link extractor of a source's pages: its deny patterns, unique links, other sites' links not built."""
    return LinkExtractor(deny=list(deny), unique=True, process_value=Scope(hosts=hosts).link_value)


_link_extractor = lru_cache(maxsize=32)(link_extractor)


@dataclass(frozen=True)
class LinkRules:
    """What a worker needs to extract a page's links as NewsSpider would (picklable)."""

    deny: tuple[str, ...] = ()
    hosts: tuple[str, ...] | None = None
    follow: bool = True  # the page's links are wanted (it is not at the source's depth)
    requisites: str | None = None  # the function (dotted path) that lists a page's requisites, when wanted


def _response(body: bytes, url: str, content_type: str | None) -> HtmlResponse:
    return HtmlResponse(url=url, body=body, headers={"Content-Type": content_type} if content_type else None)


def page_links(body: bytes, url: str, content_type: str | None, rules: LinkRules, tree=None) -> list[str]:
    """The links NewsSpider follows from a page, from `tree` when given."""
    response = _response(body, url, content_type)
    if tree is not None:
        return tree_links(with_tree(response, tree), tree, rules)
    return [link.url for link in _link_extractor(rules.deny, rules.hosts).extract_links(response)]


_LINK_TAGS = ("a", "area", f"{{{XHTML_NAMESPACE}}}a", f"{{{XHTML_NAMESPACE}}}area")
_DENIED_EXTENSIONS = tuple(f".{e}" for e in IGNORED_EXTENSIONS)
_LINK_SCHEMES = {"http", "https", "file", "ftp"}  # what LinkExtractor keeps


_JOIN_DROPS = re.compile(r"[\t\r\n]")  # what urljoin (urlsplit) removes from anywhere in a URL


@lru_cache(maxsize=32)
def _link_filters(deny: tuple[str, ...], hosts: tuple[str, ...] | None):
    return [re.compile(p) for p in deny], Scope(hosts=hosts).link_value


def _plainly_off_site(href: str, link_value) -> bool:
    """link_value(urljoin(base, href)) is None, known without the urljoin.

    For an ASCII href of the shape Scope.link_value judges by its host alone
    (http(s)://host[:port] then /, ?, # or the end), urljoin keeps that
    prefix (scheme lowercased, netloc as written), so link_value says the
    same of the href itself. Anything else goes the long way.
    """
    if not href.isascii() or _JOIN_DROPS.search(href):
        return False
    plain = PLAIN_HTTP_URL.match(href)
    return plain is not None and int(plain.group(2) or 0) <= 65535 and link_value(href) is None


def tree_links(response: HtmlResponse, root, rules: LinkRules) -> list[str]:
    """The URLs link_extractor(rules.deny, rules.hosts).extract_links(response) gives, in its
    order, read from `root` (the response's page, parsed already).

    The same steps as LinkExtractor for each <a>/<area> href (whitespace
    stripped, joined to the base, Scope.link_value, safe_url_string with the
    response's encoding, joined to the page URL, scheme, deny and extension
    checks, first occurrence kept), without what the spider never reads: no
    Link objects, no link text (an XPath string() per link), no nofollow, and
    an href seen already on the page is not worked out again (the same href
    gives the same URL). lxml filters the tags, so no other element becomes a
    Python object. tests/test_pagereader_equivalence.py holds it to LinkExtractor.
    """
    deny, link_value = _link_filters(rules.deny, rules.hosts)
    off_site_known = rules.hosts is not None
    base_url = get_base_url(response)
    page_url = response.url
    encoding = response.encoding
    hrefs: set[str] = set()
    kept: set[str] = set()
    urls: list[str] = []
    for el in root.iter(*_LINK_TAGS):
        href = el.get("href")
        if href is None or href in hrefs:
            continue
        hrefs.add(href)
        href = strip_html5_whitespace(href)
        if off_site_known and _plainly_off_site(href, link_value):
            continue  # most of a news page's links: another site's
        try:
            url = urljoin(base_url, href)
        except ValueError:
            continue
        url = link_value(url)
        if url is None:
            continue
        try:
            url = safe_url_string(url, encoding=encoding)
        except ValueError:
            continue
        url = urljoin(page_url, url)
        if url in kept or url.split("://", 1)[0] not in _LINK_SCHEMES:
            continue
        if any(p.search(url) for p in deny) or urlparse(url).path.lower().endswith(_DENIED_EXTENSIONS):
            continue
        kept.add(url)
        urls.append(url)
    return urls


@lru_cache(maxsize=8)
def _takes_tree(extractor: str) -> bool:
    return "on_parsed" in inspect.signature(load_object(extractor)).parameters


def read_page(extractor: str, body: bytes, *, url: str, content_type: str | None = None,
              fetched_at: str | None = None, hints: dict | None = None, capture: dict | None = None,
              links: LinkRules | None = None) -> PageRead:
    """Extract the article of one page and, when `links` is given, its links, from one parse."""
    read = PageRead()
    kwargs: dict[str, Any] = {"url": url, "content_type": content_type, "fetched_at": fetched_at,
                              "hints": hints or {}, "capture": capture}
    if links is not None and _takes_tree(extractor):
        def take_links(tree) -> None:
            # one response for both: Scrapy decodes it once for the base URL and encoding
            response = with_tree(_response(body, url, content_type), tree)
            if links.follow:
                try:
                    read.links = tree_links(response, tree, links)
                except Exception:  # a tree that cannot be walked: parsed again below
                    read.links = None
            if links.requisites:
                try:
                    read.requisites = load_object(links.requisites)(response)
                except Exception:  # the spider's side reads them from the response instead
                    read.requisites = None
        kwargs["on_parsed"] = take_links
    try:
        read.article = load_object(extractor)(body, **kwargs)
    except Exception as exc:  # the page's error travels back; its links still count
        read.error = exc
    if links is not None and links.follow and read.links is None:
        try:  # no tree from the extractor (not HTML to it, or another extractor): Scrapy parses it
            read.links = page_links(body, url, content_type, links)
        except Exception as exc:
            logger.debug("no links from %s: %s", url, exc)
            read.links = []
    return read


# --------------------------------------------------------------------------- in the crawl process

def _deferred_from_future(future: Future) -> Deferred:
    """A Deferred fired on the reactor thread when a concurrent.futures job ends."""
    from twisted.internet import reactor

    d: Deferred = Deferred()

    def fire(f: Future) -> None:
        exc = f.exception()
        if exc is not None:
            d.errback(exc)
        else:
            d.callback(f.result())

    # done callbacks run on the pool's management thread: hop back to the reactor
    future.add_done_callback(lambda f: reactor.callFromThread(fire, f))
    return d


class PageReader:
    """The crawl's extraction pool: pages in, PageRead out, awaited on the reactor.

    Awaiting keeps the crawl's memory flat: a full pool slows the callbacks
    and items waiting on it instead of piling up bodies.
    """

    def __init__(self, crawler, workers: int, extractor: str):
        self.crawler = crawler
        self.workers = workers
        self.extractor = extractor
        self._executor: ProcessPoolExecutor | None = None

    @classmethod
    def of(cls, crawler) -> "PageReader":
        """The crawler's one reader (one pool for the spider and the pipeline); NotConfigured without a spool."""
        reader = getattr(crawler, _READER_ATTR, None)
        if reader is None:
            s = crawler.settings
            if not s.get("NEWSARCHIVE_SPOOL"):
                raise NotConfigured("NEWSARCHIVE_SPOOL is not set: nowhere to write articles")
            reader = cls(crawler, s.getint("NEWSARCHIVE_EXTRACT_WORKERS") or os.cpu_count() or 1,
                         s.get("NEWSARCHIVE_EXTRACTOR") or DEFAULT_EXTRACTOR)
            setattr(crawler, _READER_ATTR, reader)
            crawler.signals.connect(reader.spider_closed, signal=signals.spider_closed)
        return reader

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # started on the first article: crawls without articles start no workers.
            # Each worker imports the extractor (trafilatura, lxml, ...) and this
            # module (Scrapy's link extractor) as it starts.
            self._executor = extraction_pool(self.workers, imports=[
                self.extractor.rpartition(".")[0] or self.extractor, __name__])
        return self._executor

    async def read(self, body: bytes, *, url: str, content_type: str | None = None, fetched_at: str | None = None,
                   hints: dict | None = None, capture: dict | None = None,
                   links: LinkRules | None = None) -> PageRead:
        try:
            future = self._pool().submit(read_page, self.extractor, body, url=url, content_type=content_type,
                                         fetched_at=fetched_at, hints=hints, capture=capture, links=links)
            return await maybe_deferred_to_future(_deferred_from_future(future))
        except Exception as exc:  # a dead worker: this page's error; the next page gets a fresh pool
            if type(exc).__name__ == "BrokenProcessPool":
                self._executor = None
            return PageRead(error=exc)

    def spider_closed(self, spider, reason) -> None:
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
