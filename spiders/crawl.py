"""`python -m spiders.crawl`: one crawl of one source into a spool folder.

    python -m spiders.crawl --source NAME [--sources FILE] --spool DIR
        [--max-pages N] [--stats-out FILE] [--progress] [--lock-fd FD] [--seen FILE]
        [-s NAME=VALUE ...]

Exit codes: 0 the crawl ran (page errors are in the stats); 2 bad input
(unknown source, invalid sources file); 3 nothing could be fetched; 4 the
spool is locked by another live crawl (storage/recovery.py: the crawl holds
SPOOL/.lock for its whole life, so nobody salvages files it is writing).
Logs go to stderr; with --progress, JSON lines go to stdout.

The stats JSON comes from spiders/stats.py, the progress lines from
spiders/progress.py; settings from the source and the environment are made here.
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
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from spiders.stats import summary  # noqa: E402

EXIT_BUSY = 4


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
    """The crawl's own settings, applied over spiders.settings.

    The source's politeness (delay, concurrency) is set by NewsSpider.from_crawler,
    so `scrapy crawl news -a source=NAME` gets it too; the page limit is not a
    setting: the spider's scope gate enforces source.max_pages (--max-pages replaces it).
    """
    settings = {
        "NEWSARCHIVE_SPOOL": str(spool),
        "NEWSARCHIVE_SOURCE": source.name,
        "NEWSARCHIVE_PROGRESS": progress,
        "NEWSARCHIVE_SEEN": seen,
    }
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
    # Scrapy filters below LOG_LEVEL in its handler, with its loggers at DEBUG, so a record is
    # still built for each "Crawled" and "Scraped" line; logger levels drop them unmade.
    for name in ("", "scrapy"):
        logging.getLogger(name).setLevel(settings.get("LOG_LEVEL"))
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
