"""Limits on what a crawl takes: body size (extension), what is parsed, and robots.txt.

Three sizes bound a response (docs/ARCHITECTURE.md, "Limits"):

    NEWSARCHIVE_MAX_BODY_BYTES     bytes read from the wire (50 MB); the rest is cut
                                   and the WARC record says WARC-Truncated: length
    NEWSARCHIVE_MAX_DECODED_BYTES  bytes a Content-Encoding may decode to (default:
                                   the body limit; spiders.decoding): past it the
                                   page is archived as received, not read
    NEWSARCHIVE_MAX_PARSE_BYTES    decoded bytes of HTML the crawl parses for links
    NEWSARCHIVE_MAX_PARSE_TAGS     and text (5 MB, 50,000 tags): a larger page is
                                   archived, not read (`too-large`)

Link extraction and trafilatura cost memory by the element, not by the byte:
5 MB of bare <a> tags (280,000 tags) took 730 MB in one extraction worker, and
100 s for 5 MB of <div><span>. Hence a tag limit next to the byte limit
(tags: the count of "<"): at 50,000 tags a worker stays near 150 MB, and the
largest page of the extraction test set has 5,300.

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
from scrapy.exceptions import IgnoreRequest, NotConfigured, StopDownload
from scrapy.robotstxt import ProtegoRobotParser
from scrapy.utils.httpobj import urlparse_cached

from spiders.failures import describe_failure, error_kind
from spiders.scrapy_internals import parsed_robots

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_PARSE_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_PARSE_TAGS = 50_000
# What Google reads of a robots.txt; the rest is ignored.
MAX_ROBOTSTXT_BYTES = 500 * 1024
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


class ForbiddenByRobots(IgnoreRequest):
    """robots.txt forbids this URL (the only refusal the robots.txt count counts)."""


class RobotsErrorsInWords(logging.Filter):
    """Scrapy logs a robots.txt that could not be downloaded with a full traceback; a
    refused or reset connection is no program error: one line, in words, as a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True

        kind = error_kind(exc)
        if kind == "other":
            return True  # a real surprise keeps its traceback
        request = record.args.get("request") if isinstance(record.args, dict) else None
        netloc = urlparse_cached(request).netloc if request is not None else "?"
        record.msg, record.args = "robots.txt of %s not read (%s: %s): crawling without it", \
            (netloc, kind, describe_failure(exc))
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    """RobotsTxtMiddleware that gives every waiting request the parsed robots.txt,
    and says ForbiddenByRobots when it refuses one (not any IgnoreRequest).

    In Scrapy 2.19 requests that arrive while a host's robots.txt is being
    fetched all await one Deferred; Twisted's asFuture callback returns None,
    so only the first waiter gets the parser and the others are let through
    unchecked. Once the fetch is done the parser (or None after an error) is in
    the middleware's `_parsers`, so a waiter that got None reads it from there
    (spiders/scrapy_internals.py).
    """

    def __init__(self, crawler):
        super().__init__(crawler)
        robots_log = logging.getLogger(RobotsTxtMiddleware.__module__)
        if not any(isinstance(f, RobotsErrorsInWords) for f in robots_log.filters):
            robots_log.addFilter(RobotsErrorsInWords())

    async def robot_parser(self, request):
        parser = await super().robot_parser(request)
        if parser is None:
            parser = parsed_robots(self, urlparse_cached(request).netloc)
        return parser

    def process_request_2(self, rp, request):
        try:
            super().process_request_2(rp, request)
        except IgnoreRequest as exc:
            raise ForbiddenByRobots(str(exc)) from None


def decoded_limit(settings) -> int:
    """NEWSARCHIVE_MAX_DECODED_BYTES, else the body limit, else 50 MB (0 never means unlimited)."""
    for name in ("NEWSARCHIVE_MAX_DECODED_BYTES", "NEWSARCHIVE_MAX_BODY_BYTES"):
        value = settings.getint(name, 0)
        if value > 0:
            return value
    return DEFAULT_MAX_BODY_BYTES


class ParseLimits:
    """How much HTML the crawl reads: bytes and tags (see the module docstring)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_PARSE_BYTES, max_tags: int = DEFAULT_MAX_PARSE_TAGS):
        self.max_bytes = max_bytes
        self.max_tags = max_tags

    @classmethod
    def from_settings(cls, settings) -> "ParseLimits":
        return cls(settings.getint("NEWSARCHIVE_MAX_PARSE_BYTES", 0) or DEFAULT_MAX_PARSE_BYTES,
                   settings.getint("NEWSARCHIVE_MAX_PARSE_TAGS", 0) or DEFAULT_MAX_PARSE_TAGS)

    def too_large(self, body: bytes) -> str | None:
        """Why `body` (decoded) is not parsed, in one line, or None."""
        if len(body) > self.max_bytes:
            return (f"{len(body) / 1048576:.1f} MB of HTML, over the parse limit of "
                    f"{self.max_bytes / 1048576:.1f} MB (NEWSARCHIVE_MAX_PARSE_BYTES): archived, not read")
        tags = body.count(b"<")
        if tags > self.max_tags:
            return (f"{tags} tags, over the parse limit of {self.max_tags} (NEWSARCHIVE_MAX_PARSE_TAGS): "
                    f"archived, not read")
        return None


class BoundedRobotParser(ProtegoRobotParser):
    """Scrapy's robots.txt parser (Protego) on the first 500 KiB of a robots.txt, as Google reads it."""

    def __init__(self, robotstxt_body: bytes, spider):
        if len(robotstxt_body) > MAX_ROBOTSTXT_BYTES:
            logger.info("robots.txt of %d bytes: reading the first %d", len(robotstxt_body), MAX_ROBOTSTXT_BYTES)
            robotstxt_body = robotstxt_body[:MAX_ROBOTSTXT_BYTES]
        super().__init__(robotstxt_body, spider)
