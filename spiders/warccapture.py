"""Capture every HTTP exchange as a WARC/1.1 request + response record pair.

`WarcCaptureMiddleware` is a downloader middleware at priority 950, the
closest to the downloader: its process_response sees each response exactly as
the download handler produced it, before HttpCompressionMiddleware (590)
decodes the body and before RedirectMiddleware (600) or RobotsTxtMiddleware
consume 3xx answers and robots.txt. So robots.txt, feeds, sitemaps, redirects,
error pages and non-HTML are archived alike, with their bodies still
content-encoded as sent (Twisted has already removed the chunked framing).

Scrapy keeps only the status code; `PhraseKeepingDownloadHandler`
(spiders/scrapy_internals.py, installed in DOWNLOAD_HANDLERS) keeps the
server's reason phrase in request.meta so the stored status line is the one the
server sent. It also connects only through the address guard
(spiders.connection): no proxy, every address checked. After each pair the
`page_captured` signal (spiders/signals.py) is sent: 3xx and robots.txt count
as pages too. Page requisites (spiders/requisites.py) are archived alike but
counted under newsarchive/requisites/*, and send no page_captured: they are no pages.

Each pair goes through `spiders.warcfiles.RotatingWarcWriter` and the response
record's place is stored in request.meta["capture"] for the pipeline.

Unchanged pages: when the archive's last capture of the URL with a payload
(the spider's `seen`, from `--seen`) has the same payload digest, the pair is
a `revisit` record (profile identical-payload-digest, HTTP headers kept, no
payload block) referring to that capture, and its request; the capture dict
then says `"revisit": True`.
"""

from __future__ import annotations

import http
import logging
from io import BytesIO
from urllib.parse import urldefrag, urlsplit

import scrapy
import warcio
from scrapy import signals
from scrapy.exceptions import NotConfigured
from warcio.statusandheaders import StatusAndHeaders

from spiders.guard import REQUISITE_META
from spiders.limits import TRUNCATED_META
from spiders.scrapy_internals import REASON_META
from spiders.signals import page_captured
from spiders.stats import add_files
from spiders.seen import payload_digest, warc_date
from spiders.warcfiles import CONFORMS_TO, DEFAULT_GZIP_LEVEL, DEFAULT_MAX_SIZE, FORMAT, RotatingWarcWriter, record_builder
from storage import layout

logger = logging.getLogger(__name__)


# Connection framing, not content: the stored body is already de-chunked.
FRAMING_HEADERS = {b"transfer-encoding"}


def software_version() -> str:
    try:
        from importlib.metadata import version
        ours = version("newsarchive")
    except Exception:  # not installed: running from a checkout
        ours = "0.1.0"
    return f"newsarchive/{ours} (Scrapy/{scrapy.__version__}; warcio/{warcio_version()})"


def warcio_version() -> str:
    from importlib.metadata import version
    return getattr(warcio, "__version__", None) or version("warcio")


def warcinfo_fields(settings, source: str) -> dict[str, str]:
    """The warcinfo record at the start of every file: who, with what, under which policy."""
    return {
        "software": software_version(),
        "format": FORMAT,
        "conformsTo": CONFORMS_TO,
        "isPartOf": source,
        "hostname": layout.safe_host_label(),
        "operator": settings.get("NEWSARCHIVE_OPERATOR") or "newsarchive operator",
        "robots": "obey" if settings.getbool("ROBOTSTXT_OBEY") else "ignore",
        "http-header-user-agent": settings.get("USER_AGENT"),
    }


def _latin1(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def header_lines(headers) -> list[tuple[str, str]]:
    """Every header line of a Scrapy Headers, repeated ones included."""
    lines = []
    for name in headers:
        if name.lower() in FRAMING_HEADERS:
            continue
        for value in headers.getlist(name):
            lines.append((_latin1(name), _latin1(value)))
    return lines


def status_line(status: int, reason: bytes | str | None) -> str:
    reason = _latin1(reason or b"").strip()
    if not reason:
        # handler not installed or server sent none: the standard phrase
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
    return f"{status} {reason}"


def request_target(url: str) -> tuple[str, str]:
    """(path?query as on the request line, Host header value)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port and parts.port != default_port:
        host = f"{host}:{parts.port}"
    return target, host


class WarcCaptureMiddleware:
    def __init__(self, crawler, spool: str, source: str | None, max_size: int):
        self.crawler = crawler
        self.spool = spool
        self.source = source
        self.max_size = max_size
        self.builder = record_builder()
        self.writer: RotatingWarcWriter | None = None

    @classmethod
    def from_crawler(cls, crawler):
        spool = crawler.settings.get("NEWSARCHIVE_SPOOL")
        if not spool:
            raise NotConfigured("NEWSARCHIVE_SPOOL is not set: nothing to write WARCs into")
        mw = cls(crawler, spool, crawler.settings.get("NEWSARCHIVE_SOURCE"),
                 crawler.settings.getint("NEWSARCHIVE_WARC_MAX_SIZE", DEFAULT_MAX_SIZE))
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    def _writer(self) -> RotatingWarcWriter:
        if self.writer is None:
            spider = self.crawler.spider
            source = self.source or getattr(getattr(spider, "source", None), "name", None) or spider.name
            self.writer = RotatingWarcWriter(
                self.spool, source, max_size=self.max_size,
                prefix=self.crawler.settings.get("NEWSARCHIVE_WARC_PREFIX"),
                warcinfo=warcinfo_fields(self.crawler.settings, source),
                gzip_level=self.crawler.settings.getint("NEWSARCHIVE_WARC_GZIP_LEVEL", DEFAULT_GZIP_LEVEL),
                on_close=self._file_closed)
        return self.writer

    def _file_closed(self, key: str) -> None:
        add_files(self.crawler.stats, key)

    def process_response(self, request, response):
        if "cached" in response.flags:  # not a network exchange: nothing to archive
            return response
        capture = self.write_pair(request, response)
        request.meta["capture"] = capture
        stats = self.crawler.stats
        stats.inc_value("newsarchive/bytes", len(response.body))
        if request.meta.get(REQUISITE_META):
            # a page's stylesheet, image...: archived the same way, counted apart (it is no page)
            stats.inc_value("newsarchive/requisites/archived")
            stats.inc_value(f"newsarchive/requisites/status/{response.status}")
            return response
        stats.inc_value("newsarchive/captures")
        stats.inc_value(f"newsarchive/status/{response.status}")
        self.crawler.signals.send_catch_log(page_captured, request=request, response=response, capture=capture)
        return response

    def write_pair(self, request, response) -> dict:
        url = urldefrag(request.url)[0]
        date = self.builder.curr_warc_date()
        truncated = request.meta.pop(TRUNCATED_META, None)
        if not truncated and ("partial" in response.flags or "dataloss" in response.flags):
            truncated = "disconnect"  # the server closed the connection early
        protocol = response.protocol or "HTTP/1.1"

        resp_warc = {"WARC-Date": date}
        if response.ip_address is not None:
            resp_warc["WARC-IP-Address"] = str(response.ip_address)
        if truncated:
            resp_warc["WARC-Truncated"] = truncated
        body = response.body
        http_headers = StatusAndHeaders(status_line(response.status, request.meta.pop(REASON_META, None)),
                                        header_lines(response.headers), protocol=protocol)
        earlier = self._unchanged(url, body, truncated)
        if earlier is not None:
            resp_warc["WARC-Refers-To"] = earlier["record_id"]
            resp_record = self.builder.create_revisit_record(
                url, earlier["digest"], url, warc_date(earlier["date"]),
                http_headers=http_headers, warc_headers_dict=resp_warc)  # no payload block
        else:
            resp_record = self.builder.create_warc_record(
                url, "response", payload=BytesIO(body), length=len(body),
                warc_headers_dict=resp_warc, http_headers=http_headers)

        target, host = request_target(url)
        req_headers = [("Host", host)] + header_lines(request.headers)
        if request.body and not request.headers.get(b"Content-Length"):
            req_headers.append(("Content-Length", str(len(request.body))))  # as Twisted sends it
        req_record = self.builder.create_warc_record(
            url, "request", payload=BytesIO(request.body), length=len(request.body),
            warc_headers_dict={"WARC-Date": date,
                               "WARC-Concurrent-To": resp_record.rec_headers.get_header("WARC-Record-ID")},
            http_headers=StatusAndHeaders(f"{request.method} {target} {protocol}", req_headers))

        written = self._writer().write_group([resp_record, req_record])[0]
        capture = {"warc": written.key, "offset": written.offset, "length": written.length,
                   "record_id": written.record_id, "date": written.date, "truncated": bool(truncated)}
        if earlier is not None:
            capture["revisit"] = True
            self.crawler.stats.inc_value("newsarchive/requisites/revisits" if request.meta.get(REQUISITE_META)
                                         else "newsarchive/revisits")
        return capture

    def _unchanged(self, url: str, body: bytes, truncated) -> dict | None:
        """The archive's capture of ``url`` whose payload ``body`` repeats, if any."""
        seen = getattr(self.crawler.spider, "seen", None)
        if not seen or not body or truncated:
            return None
        return seen.revisit_of(url, payload_digest(body))

    def spider_closed(self, spider, reason):
        if self.writer is not None:
            self.writer.close()
