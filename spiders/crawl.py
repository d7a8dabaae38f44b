"""`python -m spiders.crawl`: one crawl of one source into a spool folder.

    python -m spiders.crawl --source NAME [--sources FILE] --spool DIR
        [--max-pages N] [--stats-out FILE] [--progress] [--lock-fd FD] [--seen FILE]
        [-s NAME=VALUE ...]

Exit codes: 0 the crawl ran (page errors are in the stats); 2 bad input
(unknown source, invalid sources file); 3 nothing could be fetched; 4 the
spool is locked by another live crawl (storage/recovery.py: the crawl holds
SPOOL/.lock for its whole life, so nobody salvages files it is writing).
Logs go to stderr; with --progress, JSON lines go to stdout.

Also here: `CrawlReport`, the extension that writes the progress lines.
"""

from __future__ import annotations

import os

# tldextract (used by Scrapy's cookie middleware) would download the public
# suffix list on first use; an empty URL list is its documented way to stay
# offline and use the bundled snapshot. It must be set before Scrapy imports it.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

from scrapy import signals  # noqa: E402

MAX_ERROR_SAMPLES = 20
EXIT_BUSY = 4


def record_error(stats, kind: str, url: str, message: str) -> None:
    """Count an error by kind in the crawl stats, keeping the first few as samples.

    Every kind keeps a sample: the list holds the first sample of each kind,
    then second ones..., so a flood of one kind never hides another, and a
    summary that shows only the first N samples shows N kinds.
    """
    stats.inc_value(f"newsarchive/errors/{kind}")
    samples = stats.get_value("newsarchive/error_samples") or []
    rank = sum(1 for s in samples if s["kind"] == kind)  # samples of this kind already kept
    if len(samples) >= MAX_ERROR_SAMPLES and rank > 0:
        return
    sample = {"url": url, "kind": kind, "message": message[:300]}

    def rank_of(i: int) -> int:
        return sum(1 for s in samples[:i] if s["kind"] == samples[i]["kind"])

    ranks = [rank_of(i) for i in range(len(samples))]
    place = next((i for i, r in enumerate(ranks) if r > rank), len(samples))
    samples = samples[:place] + [sample] + samples[place:]
    if len(samples) > MAX_ERROR_SAMPLES:
        samples.pop()  # the last is the most repeated kind's latest sample
    stats.set_value("newsarchive/error_samples", samples)


def add_files(stats, *keys: str) -> None:
    """Note files written; the list grows in place (a long crawl writes tens of thousands)."""
    files = stats.get_value("newsarchive/files")
    if files is None:
        files = []
        stats.set_value("newsarchive/files", files)
    files.extend(keys)


class CrawlReport:
    """Progress events: JSON lines on stdout, one per archived page and per extracted article.

    Errors are counted where they are understood: fetch failures and HTTP
    statuses by the spider (spiders.news), extraction by the pipeline.
    """

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
        self.emit({"event": "page", "url": request.url, "status": response.status,
                   "bytes": len(response.body), "article": bool(request.meta.get("article"))})

    def item_scraped(self, item, response, spider):
        if isinstance(item, dict) and item.get("kind") == "article" and not item.get("error"):
            self.emit({"event": "article", "url": item.get("url"), "title": item.get("title")})


def _iso(value) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return value


def summary(source: str, stats: dict, spider_samples: list[dict] = ()) -> dict:
    """The stats JSON of ARCHITECTURE.md, from the crawler's stats.

    pages: exchanges archived (robots.txt, redirects and error pages included);
    articles: articles whose text was written.
    """
    prefix = "newsarchive/errors/"
    status_prefix = "newsarchive/status/"
    return {
        "source": source,
        "started": _iso(stats.get("start_time")),
        "finished": _iso(stats.get("finish_time")) or datetime.now(timezone.utc).isoformat(),
        "pages": stats.get("newsarchive/captures", 0),
        "articles": stats.get("newsarchive/extracted", 0),
        "bytes": stats.get("newsarchive/bytes", 0),
        "errors": {k[len(prefix):]: v for k, v in sorted(stats.items()) if k.startswith(prefix)},
        "error_samples": (list(spider_samples) + stats.get("newsarchive/error_samples", []))[:MAX_ERROR_SAMPLES],
        "files": sorted(stats.get("newsarchive/files", [])),
        "status_counts": {k[len(status_prefix):]: v for k, v in sorted(stats.items())
                          if k.startswith(status_prefix)},
        # incremental crawls (--seen): archived articles not fetched again, unchanged
        # pages written as revisit records, unchanged articles not extracted again
        "skipped_seen": stats.get("newsarchive/skipped_seen", 0),
        "revisits": stats.get("newsarchive/revisits", 0),
        "unchanged": stats.get("newsarchive/unchanged", 0),
    }


# Operator settings read from the environment: the crawl runs as a subprocess of
# the CLI or of a Prefect worker, so the environment is how an operator reaches it.
ENVIRONMENT_SETTINGS = {
    "NEWSARCHIVE_OPERATOR": "NEWSARCHIVE_OPERATOR",  # warcinfo `operator`: who runs this archive
    "NEWSARCHIVE_USER_AGENT": "USER_AGENT",  # e.g. with a contact address for the sites crawled
    "NEWSARCHIVE_WARC_MAX_SIZE": "NEWSARCHIVE_WARC_MAX_SIZE",  # bytes before a WARC rotates
    "NEWSARCHIVE_MAX_BODY_BYTES": "NEWSARCHIVE_MAX_BODY_BYTES",  # a longer body is truncated
    "NEWSARCHIVE_MAX_DECODED_BYTES": "NEWSARCHIVE_MAX_DECODED_BYTES",  # what a Content-Encoding may decode to
    "NEWSARCHIVE_MAX_PARSE_BYTES": "NEWSARCHIVE_MAX_PARSE_BYTES",  # a larger HTML page is archived, not read
    "NEWSARCHIVE_MAX_PARSE_TAGS": "NEWSARCHIVE_MAX_PARSE_TAGS",  # ... and one with more tags
    "NEWSARCHIVE_EXTRACT_WORKERS": "NEWSARCHIVE_EXTRACT_WORKERS",  # extraction processes
}


def environment_settings(environ=os.environ) -> dict:
    return {setting: environ[name] for name, setting in ENVIRONMENT_SETTINGS.items() if environ.get(name)}


def source_settings(source, *, spool: str, progress: bool = False, seen: str | None = None) -> dict:
    """Per-source Scrapy settings, applied over spiders.settings.

    The page limit is not a setting: NewsSpider's scope gate enforces
    source.max_pages before a request is scheduled (--max-pages replaces it).
    """
    settings = {
        "NEWSARCHIVE_SPOOL": str(spool),
        "NEWSARCHIVE_SOURCE": source.name,
        "NEWSARCHIVE_PROGRESS": progress,
        "NEWSARCHIVE_SEEN": seen,
    }
    delay = getattr(source, "delay", None)
    if delay is not None:
        settings["DOWNLOAD_DELAY"] = float(delay)
    concurrency = getattr(source, "concurrency", None)
    if concurrency:
        settings["CONCURRENT_REQUESTS_PER_DOMAIN"] = int(concurrency)
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
    parser.add_argument("--seen", default=None,
                        help="JSON lines of the archive's latest capture per URL (spiders/seen.py): archived "
                             "articles not due for a re-check are skipped, unchanged pages become revisit records")
    parser.add_argument("--stop-with-parent", action="store_true",
                        help="stop gracefully (as on SIGTERM) when the process that started the crawl exits")
    parser.add_argument("--lock-fd", type=int, default=None,
                        help="descriptor of the spool lock, already taken by the parent process (which passes "
                             "it on); without it the crawl takes SPOOL/.lock itself")
    parser.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a Scrapy setting (as `scrapy crawl -s`), over the project's and the source's")
    return parser


def fail(code: int, message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_pages is not None and args.max_pages < 1:
        return fail(2, f"--max-pages must be at least 1, not {args.max_pages}")
    if any(not name or not sep for name, sep, _ in (item.partition("=") for item in args.set)):
        return fail(2, "-s takes NAME=VALUE")
    overrides = dict(item.partition("=")[::2] for item in args.set)

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
    # Held until this process ends (the kernel drops it then, even on SIGKILL):
    # recovery and upload never touch the .open files of a live crawl.
    from storage.errors import StorageError
    from storage.recovery import SourceBusy, SpoolLock, hold_inherited_lock

    try:
        own_lock = None
        if args.lock_fd is not None:
            hold_inherited_lock(args.lock_fd, spool, source.name)
        else:  # released at the end; if this process dies, the kernel drops it (and .lock names the dead pid)
            own_lock = SpoolLock(spool, source.name).acquire()
    except SourceBusy as exc:
        return fail(EXIT_BUSY, str(exc))
    except (StorageError, OSError) as exc:
        return fail(2, f"cannot lock spool folder {spool}: {exc}")
    settings = Settings()
    settings.setmodule("spiders.settings", priority="project")
    settings.setdict(environment_settings(), priority="project")
    if args.max_pages is not None:
        source = dataclasses.replace(source, max_pages=args.max_pages)
    settings.update(source_settings(source, spool=str(spool.resolve()), progress=args.progress,
                                    seen=str(Path(args.seen).resolve()) if args.seen else None),
                    priority="cmdline")
    settings.setdict(overrides, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(NewsSpider)
    process.crawl(crawler, source=source)
    if args.stop_with_parent:
        # A cancelled Prefect run or a killed CLI must not leave an orphan crawl
        # holding the spool: stop as on SIGTERM, which closes the WARCs cleanly.
        from spiders.workerpool import when_process_exits
        parent = os.getppid()
        if not when_process_exits(parent, lambda: os.kill(os.getpid(), signal.SIGTERM)):
            return fail(2, "the process that started this crawl is gone")
    process.start()
    if own_lock is not None:
        own_lock.release()

    report = summary(source.name, crawler.stats.get_stats())
    if args.stats_out:
        Path(args.stats_out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if report["pages"] == 0:
        first = report["error_samples"][0]["message"] if report["error_samples"] else "no response at all"
        return fail(3, f"nothing could be fetched for source {source.name!r}: {first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
