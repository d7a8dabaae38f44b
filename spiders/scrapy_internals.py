"""Every use of Scrapy's private internals, in one place (Scrapy is pinned: >=2.19,<2.20).

tests/test_scrapy_internals.py fails loudly, naming what moved, when an
upgrade changes any of these:

- `scrapy.core.downloader.handlers.http11._ScrapyAgent`: subclassed to keep the
  server's reason phrase (`_cb_bodyready` sees Twisted's response, the only
  place it is still known) and to connect only through the address guard
  (`_get_agent`, which reads `_bindAddress`, `_contextFactory`, `_pool`);
- `HTTP11DownloadHandler`'s attributes (`_contextFactory`, `_bind_address`,
  `_pool`, `_default_maxsize`, `_default_warnsize`, `_fail_on_dataloss`,
  `_crawler`, `_tls_verbose_logging`), to build that agent as the handler does;
- `scrapy.utils._download_handlers`: `normalize_bind_address`, `wrap_twisted_exceptions`;
- `RobotsTxtMiddleware._parsers` (a host's parsed robots.txt) and its
  `process_request_2` (where it refuses a request), see spiders/limits.py;
- `TextResponse._cached_selector`: set to a Selector over a tree parsed
  already, so LinkExtractor reads the tree the extraction parsed
  (spiders/pagereader.py) instead of parsing the page a second time;
- `StatsCollector.__getattribute__`: Scrapy 2.19 routes every attribute read
  of a stats collector through it (to warn about a deprecated `spider`
  argument); DirectStatsCollector reads attributes directly.
"""

from __future__ import annotations

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler, _ScrapyAgent
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils._download_handlers import normalize_bind_address, wrap_twisted_exceptions
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.web.client import Agent

from spiders.connection import GuardedEndpointFactory
from spiders.guard import AddressGuard, Refused, record_refusal

REASON_META = "newsarchive_reason"  # request.meta key of the server's reason phrase


def with_tree(response, root):
    """`response`, its selector (xpath, css, LinkExtractor) reading `root`, an lxml tree of its page parsed already."""
    from scrapy.selector import Selector

    response._cached_selector = Selector(root=root, type="html")
    return response


class DirectStatsCollector(MemoryStatsCollector):
    """Scrapy's in-memory stats, each attribute read directly (STATS_CLASS).

    Scrapy 2.19's StatsCollector.__getattribute__ runs on every attribute read
    (`_stats` included): an f-string, a failed lookup caught as AttributeError
    and a wrapper warning of a `spider` argument, ~2.3 us a call against 0.1.
    A crawl makes dozens of stats calls a page, Scrapy's middlewares and ours:
    3 % of the crawl process's CPU on the real-page benchmark. None of our code
    passes `spider`, so the warning has nothing to say here.
    """

    __getattribute__ = object.__getattribute__


def parsed_robots(middleware, netloc: str):
    """The robots.txt parser RobotsTxtMiddleware holds for `netloc` (None: none, or it failed)."""
    return middleware._parsers.get(netloc)


class PhraseKeepingAgent(_ScrapyAgent):
    def __init__(self, *, guard: AddressGuard, **kwargs):
        super().__init__(**kwargs)
        self.guard = guard

    def _cb_bodyready(self, txresponse, request):
        # the only place the reason phrase is still known; Response drops it
        request.meta[REASON_META] = txresponse.phrase
        return super()._cb_bodyready(txresponse, request)

    def _get_agent(self, request, timeout):
        # Direct connections only, each through the address guard: through a
        # proxy the address connected to would be the proxy's, not the site's.
        if request.meta.get("proxy"):
            raise Refused("blocked-address", "requests through a proxy are not made: the address guard "
                                             "must see the address connected to")
        from twisted.internet import reactor

        bind_address = normalize_bind_address(request.meta.get("bindaddress") or self._bindAddress)
        factory = GuardedEndpointFactory(reactor, self.guard, self._contextFactory, timeout=timeout,
                                         bind_address=bind_address)
        return Agent.usingEndpointFactory(reactor, factory, pool=self._pool)


class PhraseKeepingDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, with the server's reason phrase kept in meta,
    connecting only to addresses the source's AddressGuard allows."""

    _guard: AddressGuard | None = None

    def guard(self) -> AddressGuard:
        if self._guard is None:  # the spider (and its source) exists by the first download
            self._guard = AddressGuard(getattr(self._crawler.spider, "source", None))
        return self._guard

    async def download_request(self, request):
        try:
            return await self._download(request)
        except Refused as refused:
            record_refusal(self._crawler, request.url, refused)
            raise

    async def _download(self, request):
        agent = PhraseKeepingAgent(
            guard=self.guard(),
            contextFactory=self._contextFactory,
            bindAddress=self._bind_address,
            pool=self._pool,
            maxsize=self._default_maxsize,
            warnsize=self._default_warnsize,
            fail_on_dataloss=self._fail_on_dataloss,
            crawler=self._crawler,
            tls_verbose_logging=self._tls_verbose_logging,
        )
        with wrap_twisted_exceptions():
            return await maybe_deferred_to_future(agent.download_request(request))
