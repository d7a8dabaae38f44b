"""Scrapy's redirect middlewares, with their silent outcomes counted.

Scrapy ends a chain past REDIRECT_MAX_TIMES with an IgnoreRequest that only
a debug line mentions, and drops a redirect to a non-http(s) URL without a
word. These subclasses (same priorities: 600 and 580) count them as
`redirect-limit` and `bad-scheme`, with a sample. Where a redirect goes is the
scope gate's business (spiders.news: every redirect target passes it, and a
target already on the chain is a `redirect-loop`).

The meta refresh middleware also leaves alone pages over the parse limit:
reading their refresh tag would decode the whole body as text. And a page
whose head cannot hold a refresh tag (no "refresh" in the bytes Scrapy's
own look-up reads) is passed on without being decoded at all: the look-up
decoded every HTML page the crawl fetched, in the crawl process.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware, RedirectMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse
from scrapy.utils.response import get_meta_refresh
from w3lib.url import safe_url_string

from spiders.guard import ALLOWED_SCHEMES, Refusal, Refused, record_refusal
from spiders.limits import ParseLimits


def _chain(request) -> str:
    urls = [*request.meta.get("redirect_urls", []), request.url]
    return f"{len(urls)} URLs from {urls[0]}"


class _Recording:
    """What both subclasses add (BaseRedirectMiddleware.from_crawler sets self.crawler)."""

    def _limit_reached(self, request) -> Refused:
        refused = Refused("redirect-limit", f"more than {self.max_redirect_times} redirects in a row "
                                            f"(REDIRECT_MAX_TIMES; {_chain(request)}): not followed", fetched=True)
        record_refusal(self.crawler, request.url, refused)
        return refused

    def _check_scheme(self, request, target: str | None, how: str) -> None:
        if not target:
            return
        try:
            scheme = urlsplit(urljoin(request.url, target)).scheme.lower()
        except ValueError:
            return
        if scheme and scheme not in ALLOWED_SCHEMES:
            record_refusal(self.crawler, request.url,
                           Refusal("bad-scheme", f"{how} to a {scheme}: URL not followed (only http and https)"))


class RecordingRedirectMiddleware(_Recording, RedirectMiddleware):
    def process_response(self, request, response, spider=None):
        try:
            result = super().process_response(request, response)
        except IgnoreRequest:  # the only one RedirectMiddleware raises: too many redirects
            raise self._limit_reached(request) from None
        if result is response and response.status in (301, 302, 303, 307, 308) and "Location" in response.headers \
                and not request.meta.get("dont_redirect"):
            self._check_scheme(request, safe_url_string(response.headers["Location"]), f"HTTP {response.status} redirect")
        return result


# Scrapy's get_meta_refresh reads the first 4096 characters of the text: at most 4 bytes each in
# UTF-8, one in the single-byte encodings.
_REFRESH_HEAD_BYTES = 4 * 4096


def may_hold_meta_refresh(body: bytes) -> bool:
    """False only when the text Scrapy's meta refresh look-up reads surely has no "refresh" in it.

    In an ASCII-compatible encoding (UTF-8, the ISO-8859 and windows code pages, the CJK
    multi-byte encodings) the word is its ASCII bytes; a page in UTF-16 or UTF-32 has NULs in
    its head and is always read.
    """
    head = body[:_REFRESH_HEAD_BYTES]
    return b"\x00" in head or head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"refresh" in head.lower()


class RecordingMetaRefreshMiddleware(_Recording, MetaRefreshMiddleware):
    def __init__(self, settings):
        super().__init__(settings)
        self.parse_limits = ParseLimits.from_settings(settings)
        self.ignore_tags = settings.getlist("METAREFRESH_IGNORE_TAGS")

    def process_response(self, request, response, spider=None):
        if isinstance(response, HtmlResponse) and self.parse_limits.too_large(response.body):
            return response  # the spider counts it as too-large
        if isinstance(response, HtmlResponse) and not may_hold_meta_refresh(response.body):
            return response  # no refresh tag to follow: not decoded here
        try:
            result = super().process_response(request, response)
        except IgnoreRequest:
            raise self._limit_reached(request) from None
        if result is response and isinstance(response, HtmlResponse) and not request.meta.get("dont_redirect"):
            _, url = get_meta_refresh(response, ignore_tags=self.ignore_tags)  # cached: read once
            self._check_scheme(request, url, "meta refresh")
        return result
