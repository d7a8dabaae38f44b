"""Content-Encoding removed in bounded, streaming steps: no body decodes past a limit.

`BoundedDecompressionMiddleware` takes the place of Scrapy's
HttpCompressionMiddleware (same priority, 590). Scrapy's bounds decoding only
by DOWNLOAD_MAXSIZE (1 GiB here): a 600 KB gzip of 400 MiB of HTML was decoded
in full. Here every coding (gzip, deflate, br, zstd, nested in any order) is
decoded chunk by chunk and stops as soon as the output passes the decoded
limit (NEWSARCHIVE_MAX_DECODED_BYTES, by default the body limit
NEWSARCHIVE_MAX_BODY_BYTES). Such a response is not read: the capture
middleware (950) has archived it already, as received; it is counted as
`decompression-limit`.

The codecs themselves (`decode`, `decoded_chunks`, `split_codings`) live in
storage.contentcoding, shared with the archive's readers; they are imported
here for the spider's own decoding (a .xml.gz sitemap served without
Content-Encoding, spiders.feeds) and for re-extraction.
"""

from __future__ import annotations

import logging

from scrapy.exceptions import NotConfigured
from scrapy.http import TextResponse
from scrapy.responsetypes import responsetypes

from spiders.guard import Refused, record_refusal
from spiders.limits import decoded_limit

from storage.contentcoding import ACCEPT_ENCODING, DecodedTooLarge, DecodeError, decode, split_codings

logger = logging.getLogger(__name__)

def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MB" if n >= 1048576 else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


class BoundedDecompressionMiddleware:
    """Downloader middleware at 590, in place of scrapy's HttpCompressionMiddleware."""

    def __init__(self, crawler, max_bytes: int):
        self.crawler = crawler
        self.max_bytes = max_bytes

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.getbool("COMPRESSION_ENABLED"):
            raise NotConfigured("COMPRESSION_ENABLED is off")
        return cls(crawler, decoded_limit(crawler.settings))

    def process_request(self, request, spider=None):
        request.headers.setdefault("Accept-Encoding", ACCEPT_ENCODING)
        return None

    def process_response(self, request, response, spider=None):
        if request.method == "HEAD":
            return response
        to_decode, to_keep = split_codings(response.headers.getlist("Content-Encoding"))
        if not to_decode or not response.body:
            return response
        try:
            body = decode(response.body, to_decode, self.max_bytes)
        except DecodedTooLarge:
            refused = Refused("decompression-limit",
                              f"{'+'.join(to_decode)} body of {_size(len(response.body))} decodes to more than "
                              f"{_size(self.max_bytes)} (NEWSARCHIVE_MAX_DECODED_BYTES): archived as received, "
                              f"not read", fetched=True)
            record_refusal(self.crawler, response.url, refused)
            raise refused from None
        except DecodeError as exc:
            refused = Refused("bad-encoding", f"{exc}: archived as received, not read", fetched=True)
            record_refusal(self.crawler, response.url, refused)
            raise refused from None
        headers = response.headers.copy()
        if to_keep:
            headers["Content-Encoding"] = ", ".join(to_keep)
        else:
            del headers["Content-Encoding"]
        respcls = responsetypes.from_args(headers=headers, url=response.url, body=body)
        kwargs = {"encoding": None} if issubclass(respcls, TextResponse) else {}
        return response.replace(cls=respcls, body=body, headers=headers, **kwargs)
