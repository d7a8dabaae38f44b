"""Limits on what a crawl takes: body size (extension) and robots.txt (middleware).

BodySizeLimit: stop reading a response body past NEWSARCHIVE_MAX_BODY_BYTES.

Scrapy's own DOWNLOAD_MAXSIZE fails the download and keeps nothing; an archive
wants the first part of an oversized body and an honest note that it was cut.
So we stop the download with StopDownload(fail=False) (Scrapy then returns the
bytes received so far) and mark the request; the capture middleware turns the
mark into `WARC-Truncated: length`.
"""

from __future__ import annotations

import logging

from scrapy import signals
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import NotConfigured, StopDownload
from scrapy.utils.httpobj import urlparse_cached

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 50 * 1024 * 1024
TRUNCATED_META = "newsarchive_truncated"  # read by spiders.warccapture
_COUNT_META = "_newsarchive_body_bytes"


class BodySizeLimit:
    def __init__(self, crawler, max_bytes: int):
        self.crawler = crawler
        self.max_bytes = max_bytes

    @classmethod
    def from_crawler(cls, crawler):
        max_bytes = crawler.settings.getint("NEWSARCHIVE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
        if max_bytes <= 0:
            raise NotConfigured("NEWSARCHIVE_MAX_BODY_BYTES is 0: no body limit")
        ext = cls(crawler, max_bytes)
        crawler.signals.connect(ext.headers_received, signal=signals.headers_received)
        crawler.signals.connect(ext.bytes_received, signal=signals.bytes_received)
        return ext

    def headers_received(self, headers, body_length, request, spider):
        # meta is copied to redirect and retry requests: start each response from zero
        request.meta[_COUNT_META] = 0
        request.meta.pop(TRUNCATED_META, None)

    def bytes_received(self, data, request, spider):
        received = request.meta.get(_COUNT_META, 0) + len(data)
        request.meta[_COUNT_META] = received
        if received > self.max_bytes:
            request.meta[TRUNCATED_META] = "length"
            self.crawler.stats.inc_value("newsarchive/truncated")
            logger.info("Body of %s cut at %d bytes (NEWSARCHIVE_MAX_BODY_BYTES=%d)",
                        request.url, received, self.max_bytes)
            raise StopDownload(fail=False)


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    """RobotsTxtMiddleware that gives every waiting request the parsed robots.txt.

    In Scrapy 2.19 requests that arrive while a host's robots.txt is being
    fetched all await one Deferred; Twisted's asFuture callback returns None,
    so only the first waiter gets the parser and the others are let through
    unchecked. Once the fetch is done the parser (or None after an error) is in
    `_parsers`, so a waiter that got None reads it from there.
    """

    async def robot_parser(self, request):
        parser = await super().robot_parser(request)
        if parser is None:
            parser = self._parsers.get(urlparse_cached(request).netloc)
        return parser
