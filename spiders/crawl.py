"""`python -m spiders.crawl`: one crawl of one source into a spool folder.

    python -m spiders.crawl --source NAME [--sources FILE] --spool DIR
        [--max-pages N] [--stats-out FILE] [--progress]

Exit codes: 0 the crawl ran (page errors are in the stats); 2 bad input
(unknown source, invalid sources file); 3 nothing could be fetched.
Logs go to stderr; with --progress, JSON lines go to stdout.

Also here: the two small components that make the crawl's report,
`CrawlReport` (extension) and `FetchErrorsMiddleware` (downloader middleware).
"""

from __future__ import annotations

import os

# tldextract (used by Scrapy's cookie middleware) would download the public
# suffix list on first use; an empty URL list is its documented way to stay
# offline and use the bundled snapshot. It must be set before Scrapy imports it.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

from scrapy import signals  # noqa: E402
from scrapy.exceptions import IgnoreRequest  # noqa: E402

MAX_ERROR_SAMPLES = 20


def record_error(stats, kind: str, url: str, message: str) -> None:
    """Count an error by kind in the crawl stats, keeping the first few as samples."""
    stats.inc_value(f"newsarchive/errors/{kind}")
    samples = stats.get_value("newsarchive/error_samples") or []
    if len(samples) < MAX_ERROR_SAMPLES:
        stats.set_value("newsarchive/error_samples",
                        samples + [{"url": url, "kind": kind, "message": message[:300]}])


def add_files(stats, *keys: str) -> None:
    stats.set_value("newsarchive/files", (stats.get_value("newsarchive/files") or []) + list(keys))


def _error_kind(exc: BaseException) -> str:
    from twisted.internet import error as tx_error
    from scrapy.exceptions import DownloadTimeoutError, ResponseDataLossError

    if isinstance(exc, (DownloadTimeoutError, tx_error.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, tx_error.DNSLookupError):
        return "dns"
    if isinstance(exc, (tx_error.ConnectError, ConnectionError)):
        return "connection"
    if isinstance(exc, ResponseDataLossError):
        return "dataloss"
    return "network"


class FetchErrorsMiddleware:
    """Counts downloads that failed for good (after RetryMiddleware gave up)."""

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_exception(self, request, exception):
        if not isinstance(exception, IgnoreRequest):  # robots.txt, offsite: decisions, not errors
            record_error(self.crawler.stats, _error_kind(exception), request.url,
                         f"{type(exception).__name__}: {exception}".strip())
        return None


class CrawlReport:
    """Progress events (JSON lines on stdout) and error counts for HTTP status >= 400."""

    def __init__(self, crawler, progress: bool):
        self.crawler = crawler
        self.progress = progress

    @classmethod
    def from_crawler(cls, crawler):
        from spiders.warccapture import page_captured

        ext = cls(crawler, crawler.settings.getbool("NEWSARCHIVE_PROGRESS"))
        crawler.signals.connect(ext.page_captured, signal=page_captured)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        return ext

    def emit(self, event: dict) -> None:
        if self.progress:
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            sys.stdout.flush()

    def page_captured(self, request, response, capture):
        if response.status >= 400:
            record_error(self.crawler.stats, f"http_{response.status}", request.url,
                         f"HTTP {response.status}")
        self.emit({"event": "page", "url": request.url, "status": response.status,
                   "bytes": len(response.body), "article": bool(request.meta.get("article"))})

    def item_scraped(self, item, response, spider):
        if isinstance(item, dict) and item.get("kind") == "article" and not item.get("error"):
            self.crawler.stats.inc_value("newsarchive/articles")
            self.emit({"event": "article", "url": item.get("url"), "title": item.get("title")})


def _iso(value) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return value


def summary(source: str, stats: dict) -> dict:
    """The stats JSON of ARCHITECTURE.md, from the crawler's stats."""
    prefix = "newsarchive/errors/"
    status_prefix = "newsarchive/status/"
    return {
        "source": source,
        "started": _iso(stats.get("start_time")),
        "finished": _iso(stats.get("finish_time")) or datetime.now(timezone.utc).isoformat(),
        "pages": stats.get("newsarchive/pages", 0),
        "articles": stats.get("newsarchive/articles", 0),
        "bytes": stats.get("newsarchive/bytes", 0),
        "errors": {k[len(prefix):]: v for k, v in sorted(stats.items()) if k.startswith(prefix)},
        "error_samples": stats.get("newsarchive/error_samples", []),
        "files": sorted(stats.get("newsarchive/files", [])),
        "status_counts": {k[len(status_prefix):]: v for k, v in sorted(stats.items())
                          if k.startswith(status_prefix)},
    }


def source_settings(source, *, spool: str, max_pages: int | None = None, progress: bool = False) -> dict:
    """Per-source Scrapy settings, applied over spiders.settings."""
    settings = {
        "NEWSARCHIVE_SPOOL": str(spool),
        "NEWSARCHIVE_SOURCE": source.name,
        "NEWSARCHIVE_PROGRESS": progress,
    }
    delay = getattr(source, "delay", None)
    if delay is not None:
        settings["DOWNLOAD_DELAY"] = float(delay)
    concurrency = getattr(source, "concurrency", None)
    if concurrency:
        settings["CONCURRENT_REQUESTS_PER_DOMAIN"] = int(concurrency)
    pages = max_pages if max_pages is not None else getattr(source, "max_pages", None)
    if pages:
        settings["CLOSESPIDER_PAGECOUNT"] = int(pages)
    return settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m spiders.crawl",
                                     description="Crawl one news source into a spool folder (WARC, text, stats).")
    parser.add_argument("--source", required=True, help="source name in the sources file")
    parser.add_argument("--sources", default=os.environ.get("NEWSARCHIVE_SOURCES", "sources.toml"),
                        help="sources file (default: $NEWSARCHIVE_SOURCES or sources.toml)")
    parser.add_argument("--spool", required=True, help="folder to write WARCs and articles into")
    parser.add_argument("--max-pages", type=int, default=None, help="stop after N pages (default: the source's)")
    parser.add_argument("--stats-out", default=None, help="write the crawl stats JSON here")
    parser.add_argument("--progress", action="store_true", help="JSON lines on stdout for each page and article")
    return parser


def fail(code: int, message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_pages is not None and args.max_pages < 1:
        return fail(2, f"--max-pages must be at least 1, not {args.max_pages}")

    from spiders.sources import SourcesError, load_sources

    try:
        sources = load_sources(args.sources)
    except SourcesError as exc:
        return fail(2, str(exc))
    except OSError as exc:
        return fail(2, f"cannot read sources file {args.sources}: {exc.strerror or exc}")
    source = sources.get(args.source)
    if source is None:
        known = ", ".join(sorted(sources)) or "none"
        return fail(2, f"unknown source {args.source!r} in {args.sources} (known: {known})")

    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    from spiders.news import NewsSpider

    spool = Path(args.spool)
    try:
        spool.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return fail(2, f"cannot create spool folder {spool}: {exc.strerror or exc}")
    settings = Settings()
    settings.setmodule("spiders.settings", priority="project")
    settings.update(source_settings(source, spool=str(spool.resolve()), max_pages=args.max_pages,
                                    progress=args.progress), priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(NewsSpider)
    process.crawl(crawler, source=source)
    process.start()

    report = summary(source.name, crawler.stats.get_stats())
    if args.stats_out:
        Path(args.stats_out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if report["pages"] == 0:
        first = report["error_samples"][0]["message"] if report["error_samples"] else "no response at all"
        return fail(3, f"nothing could be fetched for source {source.name!r}: {first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
