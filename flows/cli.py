"""The `newsarchive` command line.

Every command has `--help` with examples. Imports of the heavy parts (Prefect,
Scrapy, boto3, the storage facade) happen inside the commands, so `--help` and
argument errors are fast.

Errors are one line on stderr and a non-zero exit, never a traceback: the
project's own error types (bad sources file, storage, not found, ...) are
reported with their message; anything unexpected as one line with a hint to
rerun with `--debug` (or `NEWSARCHIVE_DEBUG=1`) for the traceback.

Exit codes: 0 success; 1 an error (or a crawl that failed); 2 bad usage;
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

PROG = "newsarchive"
DEBUG_HINT = "rerun with --debug (or NEWSARCHIVE_DEBUG=1) for the traceback"


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


# --- defaults ---------------------------------------------------------------

def default_archive() -> str:
    return os.environ.get("NEWSARCHIVE_ARCHIVE") or "./archive"


def default_sources() -> str:
    return os.environ.get("NEWSARCHIVE_SOURCES") or "./sources.toml"


def debug_enabled(args: argparse.Namespace | None = None) -> bool:
    if args is not None and getattr(args, "debug", False):
        return True
    return os.environ.get("NEWSARCHIVE_DEBUG", "").strip().lower() not in {"", "0", "false", "no", "off"}


# --- argument parsing ---------------------------------------------------------

class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and a pointer to --help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the traceback of unexpected errors (also NEWSARCHIVE_DEBUG=1)")


def _add_archive(p: argparse.ArgumentParser) -> None:
    p.add_argument("--archive", "-a", metavar="A", default=None,
                   help="archive: a folder or s3://bucket/prefix (default: $NEWSARCHIVE_ARCHIVE or ./archive)")


def _add_sources(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sources", "-s", metavar="FILE", default=None,
                   help="sources file (default: $NEWSARCHIVE_SOURCES or ./sources.toml)")


def _sub(subs, name: str, help: str, description: str, examples: str) -> argparse.ArgumentParser:
    p = subs.add_parser(name, help=help, description=description,
                        epilog="examples:\n" + examples.rstrip(), formatter_class=_Formatter)
    _add_common(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        formatter_class=_Formatter,
        description="Crawl news sites into WARC files and clean article text; "
                    "keep them in a folder or S3; get any snapshot of any URL back.",
        epilog="""examples:
  newsarchive demo                               try it on the bundled demo site
  newsarchive sources                            the sites in ./sources.toml
  newsarchive crawl example --max-pages 50       crawl one source into ./archive
  newsarchive list https://example.com/2024/05/story
  newsarchive get https://example.com/2024/05/story --as text
  newsarchive serve --port 8080                  Memento / wayback API on 127.0.0.1

environment:
  NEWSARCHIVE_ARCHIVE   default archive (./archive); a folder or s3://bucket/prefix
  NEWSARCHIVE_SOURCES   default sources file (./sources.toml)
  NEWSARCHIVE_DEBUG=1   tracebacks for unexpected errors
  AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...   S3 endpoint and credentials

Run 'newsarchive COMMAND --help' for the options and examples of each command.""",
    )
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the traceback of unexpected errors (also NEWSARCHIVE_DEBUG=1)")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # crawl
    p = _sub(subs, "crawl", "crawl sources into the archive",
             "Crawl one or more sources (or all) into the archive. Runs the Prefect flow\n"
             "crawl-source locally, so manual crawls appear in Prefect's run history (with no\n"
             "PREFECT_API_URL set, Prefect starts a temporary local server, ~10 s). Shows live\n"
             "progress on stderr and a summary table at the end; exits 1 if a crawl failed.",
             """  newsarchive crawl example
  newsarchive crawl example other --max-pages 20
  newsarchive crawl --all --sources sites.toml --archive s3://bucket/news
  newsarchive crawl example --no-prefect        same pipeline, without Prefect""")
    p.add_argument("names", nargs="*", metavar="SOURCE", help="source names from the sources file")
    p.add_argument("--all", action="store_true", help="crawl every source in the sources file")
    _add_sources(p)
    _add_archive(p)
    p.add_argument("--max-pages", type=_positive_int, metavar="N", default=None,
                   help="stop each source after N pages (default: the source's max_pages)")
    p.add_argument("--no-prefect", action="store_true",
                   help="run the pipeline directly, without Prefect (no run history)")
    p.set_defaults(func=cmd_crawl)

    # sources
    p = _sub(subs, "sources", "list the sources in a sources file",
             "Check a sources file and show its sources: hosts, how many feeds, sitemaps and\n"
             "start URLs each has, and the schedule deployments use.",
             """  newsarchive sources
  newsarchive sources --sources sites.toml""")
    _add_sources(p)
    p.add_argument("--json", action="store_true", help="print the sources as JSON")
    p.set_defaults(func=cmd_sources)

    # list
    p = _sub(subs, "list", "list the captures of a URL",
             "List every capture of URL in the archive, oldest first.",
             """  newsarchive list https://example.com/2024/05/story
  newsarchive list https://example.com/2024/05/story --json | jq '.[-1].timestamp'""")
    p.add_argument("url", metavar="URL")
    _add_archive(p)
    p.add_argument("--json", action="store_true",
                   help="a JSON array, one object per capture: timestamp, url, status, mime, digest, "
                        "warc, offset, length, text")
    p.set_defaults(func=cmd_list)

    # get
    p = _sub(subs, "get", "print one capture of a URL",
             "Print the capture of URL nearest to TIME (the latest without --at) to stdout.\n"
             "  text  the article's plain-text form (default)\n"
             "  json  its metadata, with the text\n"
             "  html  the body as served, content-encoding (gzip, ...) removed\n"
             "  raw   the payload exactly as stored\n"
             "  warc  the WARC record itself",
             """  newsarchive get https://example.com/2024/05/story
  newsarchive get https://example.com/2024/05/story --at 2024-05-01T12:00:00Z --as html > story.html
  newsarchive get https://example.com/2024/05/story --at 20240501120000 --as warc > story.warc.gz""")
    p.add_argument("url", metavar="URL")
    p.add_argument("--at", metavar="TIME", default=None,
                   help="ISO 8601 or 14-digit timestamp; the nearest capture is returned (default: latest)")
    p.add_argument("--as", dest="form", choices=["text", "json", "html", "raw", "warc"], default="text",
                   help="what to print (default: text)")
    _add_archive(p)
    p.set_defaults(func=cmd_get)

    # serve
    p = _sub(subs, "serve", "serve the archive over HTTP (Memento, wayback URLs, CDX API)",
             "Serve the archive read-only: /web/timemap/link/URL, /web/URL (TimeGate),\n"
             "/web/TIMESTAMPid_/URL, /web/TIMESTAMPtext_/URL and /cdx?url=URL&output=json.",
             """  newsarchive serve
  newsarchive serve --archive s3://bucket/news --host 0.0.0.0 --port 8080
  curl http://127.0.0.1:8080/web/timemap/link/https://example.com/2024/05/story""")
    _add_archive(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8080, help="port (default: 8080; 0 picks a free one)")
    p.set_defaults(func=cmd_serve)

    # reindex
    p = _sub(subs, "reindex", "rebuild the catalog from the indexes in storage",
             "Rebuild the archive's catalog from the CDXJ indexes in storage (for example after\n"
             "copying WARCs and indexes in by hand, or if the catalog was lost).",
             """  newsarchive reindex
  newsarchive reindex --archive s3://bucket/news""")
    _add_archive(p)
    p.set_defaults(func=cmd_reindex)

    # reextract
    p = _sub(subs, "reextract", "re-derive article text from archived WARCs (no fetching)",
             "Run text extraction again over archived captures, without fetching anything:\n"
             "after an extractor upgrade, or to get text for pages the crawl did not treat as\n"
             "articles. Reads WARC files from the archive (or the files given with --warc) and\n"
             "writes .txt and .json files into --out.",
             """  newsarchive reextract --out texts/
  newsarchive reextract --source example --out texts/
  newsarchive reextract --url https://example.com/2024/05/story --out texts/
  newsarchive reextract --warc crawl.warc.gz --out texts/
Files are named TIMESTAMP-URLHASH.txt/.json, as in the archive's articles/ folder.""")
    _add_archive(p)
    p.add_argument("--out", "-o", metavar="DIR", required=True, help="folder for the .txt and .json files")
    p.add_argument("--source", metavar="NAME", default=None, help="only WARCs of this source")
    p.add_argument("--url", dest="urls", action="append", metavar="URL", default=None,
                   help="only this URL (repeatable)")
    p.add_argument("--warc", dest="warcs", action="append", metavar="FILE", default=None,
                   help="a local WARC file instead of the archive's (repeatable)")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="extraction processes (default: all cores)")
    p.set_defaults(func=cmd_reextract)

    # upload
    p = _sub(subs, "upload", "send what the spool holds to the archive",
             "Upload every finished file in the local spool to the archive, verify it, and only\n"
             "then remove it from the spool (a crawl does this itself; use this after a failed\n"
             "upload). The spool is $NEWSARCHIVE_SPOOL or the archive's own spool folder.",
             """  newsarchive upload
  newsarchive upload --archive s3://bucket/news""")
    _add_archive(p)
    p.set_defaults(func=cmd_upload)

    # export
    p = _sub(subs, "export", "export captures as a WACZ file",
             "Write the captures of one source (optionally within a time range) as a WACZ\n"
             "package that ReplayWeb.page and pywb open.",
             """  newsarchive export --wacz --source example -o example.wacz
  newsarchive export --wacz --source example --from 2024-05 --to 2024-05 -o may.wacz
A bare date or partial timestamp in --to covers its whole period (2024-05: all of May).""")
    p.add_argument("--wacz", action="store_true", help="WACZ format (the only one, for now)")
    p.add_argument("--source", metavar="NAME", required=True, help="the source to export")
    p.add_argument("--from", dest="start", metavar="T", default=None, help="captures at or after T")
    p.add_argument("--to", dest="end", metavar="T", default=None, help="captures at or before T")
    _add_archive(p)
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="the .wacz file to write")
    p.set_defaults(func=cmd_export)

    # deploy
    p = _sub(subs, "deploy", "create the Prefect deployments (schedules) for the sources",
             "Register one scheduled deployment of crawl-source per source (its `schedule`) in\n"
             "the Prefect server at PREFECT_API_URL, in a work pool; run `newsarchive worker`\n"
             "to execute them.",
             """  PREFECT_API_URL=http://127.0.0.1:4200/api newsarchive deploy
  newsarchive deploy --sources sites.toml --pool news""")
    _add_sources(p)
    _add_archive(p)
    p.add_argument("--pool", default="newsarchive", help="work pool name (default: newsarchive)")
    p.set_defaults(func=cmd_deploy)

    # worker
    p = _sub(subs, "worker", "run a Prefect worker that executes scheduled crawls",
             "Start a process worker for the work pool; it runs the scheduled crawls.",
             """  newsarchive worker
  newsarchive worker --pool news --name w1 --limit 1""")
    p.add_argument("--pool", default="newsarchive", help="work pool name (default: newsarchive)")
    p.add_argument("--name", default=None, help="worker name shown on its runs (default: Prefect picks one)")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="at most N crawls at once in this worker")
    p.set_defaults(func=cmd_worker)

    # demo
    p = _sub(subs, "demo", "crawl the bundled demo news site and show what was archived",
             "Start the bundled demo news site on 127.0.0.1, crawl it into ./demo-archive,\n"
             "print one archived article's clean text, and suggest commands to try next.",
             """  newsarchive demo
  newsarchive demo --archive /tmp/demo --no-prefect""")
    p.add_argument("--archive", "-a", metavar="A", default="./demo-archive",
                   help="where to archive the demo crawl (default: ./demo-archive)")
    p.add_argument("--no-prefect", action="store_true", help="crawl without Prefect")
    p.set_defaults(func=cmd_demo)

    return parser


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {value!r}")
    return n


def _port(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value!r}")
    return n


# --- output helpers -----------------------------------------------------------

def _console(stderr: bool = False):
    """A rich console; off a terminal, tables keep their natural width (no wrapping at 80)."""
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 10_000
    return Console(stderr=stderr, highlight=False, width=width)


def _info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _write_bytes(data: bytes) -> None:
    out = sys.stdout.buffer
    out.write(data)
    out.flush()


def _archive_location(args) -> str:
    return getattr(args, "archive", None) or default_archive()


def _sources_path(args) -> Path:
    if getattr(args, "sources", None):
        return Path(args.sources)
    env = os.environ.get("NEWSARCHIVE_SOURCES")
    if env:
        return Path(env)
    try:
        from spiders.sources import default_sources_path
        return Path(default_sources_path())
    except ImportError:
        return Path(default_sources())


def _one_line(message: Any) -> str:
    text = " ".join(str(message).split())
    return text or "(no message)"


# --- sources ------------------------------------------------------------------

def _load_sources(path: Path) -> dict:
    from spiders.sources import load_sources
    return load_sources(path)


def _source_hosts(src) -> list[str]:
    hosts = getattr(src, "hosts", None)
    if callable(hosts):
        hosts = hosts()
    if hosts:
        return sorted(hosts)
    from urllib.parse import urlsplit
    found: set[str] = set()
    for attr in ("start_urls", "feeds", "sitemaps"):
        for url in getattr(src, attr, None) or []:
            host = urlsplit(url).netloc
            if host:
                found.add(host)
    return sorted(found)


def _source_dict(src) -> dict:
    return {
        "name": src.name,
        "hosts": _source_hosts(src),
        "start_urls": list(getattr(src, "start_urls", None) or []),
        "feeds": list(getattr(src, "feeds", None) or []),
        "sitemaps": list(getattr(src, "sitemaps", None) or []),
        "schedule": getattr(src, "schedule", None),
        "max_pages": getattr(src, "max_pages", None),
    }


def cmd_sources(args) -> int:
    path = _sources_path(args)
    sources = _load_sources(path)
    rows = [_source_dict(s) for s in sources.values()]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    from rich.table import Table
    table = Table()
    for name, justify in (("name", "left"), ("hosts", "left"), ("feeds", "right"), ("sitemaps", "right"),
                          ("start", "right"), ("max pages", "right"), ("schedule", "left")):
        table.add_column(name, justify=justify)
    for r in rows:
        table.add_row(r["name"], ", ".join(r["hosts"]), str(len(r["feeds"])), str(len(r["sitemaps"])),
                      str(len(r["start_urls"])), str(r["max_pages"] if r["max_pages"] is not None else "-"),
                      r["schedule"] or "-")
    console = _console()
    console.print(f"{len(rows)} source{'s' if len(rows) != 1 else ''} in {path}", soft_wrap=True)
    if rows:
        console.print(table)
    return 0


# --- crawl --------------------------------------------------------------------

def _select_sources(args) -> tuple[Path, list[str]]:
    if args.all and args.names:
        raise CLIError("give source names or --all, not both", 2)
    if not args.all and not args.names:
        raise CLIError("name at least one source to crawl, or use --all (see 'newsarchive sources')", 2)
    path = _sources_path(args)
    sources = _load_sources(path)
    if args.all:
        names = list(sources)
        if not names:
            raise CLIError(f"{path}: no sources to crawl")
        return path, names
    unknown = [n for n in args.names if n not in sources]
    if unknown:
        known = ", ".join(sorted(sources)) or "none"
        what = "unknown source" if len(unknown) == 1 else "unknown sources"
        raise CLIError(f"{what} {', '.join(repr(u) for u in unknown)} in {path} (known: {known})", 2)
    names = list(dict.fromkeys(args.names))
    return path, names


def _prepare_prefect_env() -> None:
    """Before Prefect is imported (unless the user chose otherwise): no telemetry, and time for a temporary
    server's first start (it creates its database; Prefect's default 20 s is
    short on a fresh or busy machine)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # nor the client's usage data


def run_crawls(names: Sequence[str], sources_path: Path, archive: str, max_pages: int | None,
               use_prefect: bool, progress_title: str = "crawling") -> list[dict]:
    """Crawl `names` one after another with a progress display; return their summaries.

    A source that fails does not stop the others: its summary says
    `"status": "failed"` and carries the one-line reason in `"error"`.
    """
    from flows import progress as progress_mod

    if use_prefect:
        _prepare_prefect_env()
    from flows import pipeline

    summaries: list[dict] = []
    display = progress_mod.CrawlProgress(title=progress_title)
    previous = pipeline.set_event_sink(display.handle)
    try:
        with display:
            for name in names:
                summaries.append(_crawl_one(name, sources_path, archive, max_pages, use_prefect))
    finally:
        pipeline.set_event_sink(previous)
    return summaries


def _crawl_errors() -> tuple[type[BaseException], ...]:
    from flows import pipeline
    found = [getattr(pipeline, n) for n in ("CrawlError", "UploadError", "CrawlFailed") if hasattr(pipeline, n)]
    return tuple(found) + _known_errors()


def _crawl_one(name: str, sources_path: Path, archive: str, max_pages: int | None, use_prefect: bool) -> dict:
    from flows.progress import as_dict

    try:
        if use_prefect:
            from flows.crawl import crawl_source  # configures Prefect's logging
            with _quiet_prefect_tracebacks():
                result = crawl_source(source=name, sources_file=str(sources_path), archive=archive,
                                      max_pages=max_pages)
        else:
            from flows.pipeline import run_source
            result = run_source(name, sources_file=str(sources_path), archive=archive, max_pages=max_pages)
    except _crawl_errors() as exc:
        summary = as_dict(getattr(exc, "summary", None) or getattr(exc, "stats", None) or {})
        summary.update(source=name, status="failed", error=_one_line(exc))
        return summary
    summary = as_dict(result)
    summary.setdefault("source", name)
    return summary


class _quiet_prefect_tracebacks:
    """While a flow runs from the command line, Prefect's own log lines keep
    their message but lose the traceback (unless --debug): the CLI reports the
    failure itself, in one line."""

    def __enter__(self):
        import logging
        self._filter = _StripTraceback()
        self._handlers = []
        if debug_enabled():
            return self
        names = [""] + [n for n in logging.root.manager.loggerDict if n == "prefect" or n.startswith("prefect.")]
        for name in names:
            for handler in logging.getLogger(name).handlers:
                if handler not in self._handlers:
                    handler.addFilter(self._filter)
                    self._handlers.append(handler)
        return self

    def __exit__(self, *exc):
        for handler in self._handlers:
            handler.removeFilter(self._filter)


class _StripTraceback:
    def filter(self, record) -> bool:
        if record.exc_info or record.exc_text:
            record.exc_info = None
            record.exc_text = None
        msg = record.getMessage()
        if "Traceback (most recent call last)" in msg:
            record.msg = msg.split("Traceback (most recent call last)")[0].rstrip() or "flow run failed"
            record.args = ()
        return True


def _crawl_archive(location: str) -> str:
    """The archive a crawl writes to, as an absolute location (crawls run in
    other folders and processes); a folder archive is created if missing."""
    if location.startswith("s3://"):
        return location
    path = Path(location).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create the archive folder {path}: {exc.strerror or exc}") from None
    return str(path)


def cmd_crawl(args) -> int:
    sources_path, names = _select_sources(args)
    sources_path = sources_path.resolve()
    archive = _crawl_archive(_archive_location(args))
    summaries = run_crawls(names, sources_path, archive, args.max_pages, use_prefect=not args.no_prefect)
    return _report_crawls(summaries, archive)


def _report_crawls(summaries: list[dict], archive: str, console=None) -> int:
    from flows.progress import print_summary, summary_failed
    failed = [s for s in summaries if summary_failed(s)]
    ran = [s for s in summaries if not summary_failed(s) or s.get("pages")]
    if ran:
        print_summary(summaries, console=console or _console())
    for s in failed:
        print(f"{PROG}: error: {s.get('error') or s.get('source', '') + ': crawl failed'}", file=sys.stderr)
    if failed:
        return 1
    _info(f"archived into {archive}")
    return 0


# --- archive reads ------------------------------------------------------------

def _open_archive(location: str):
    from storage.archive import open_archive
    return open_archive(location)


def _capture_dict(c: Any) -> dict:
    from flows.progress import as_dict
    return as_dict(c)


def cmd_list(args) -> int:
    archive = _open_archive(_archive_location(args))
    captures = [_capture_dict(c) for c in archive.list(args.url)]
    if not captures:
        raise CLIError(f"no captures of {args.url} in {_archive_location(args)}")
    if args.json:
        print(json.dumps(captures, indent=2, ensure_ascii=False))
        return 0
    from rich.table import Table
    table = Table()
    for col, justify in (("timestamp", "left"), ("status", "right"), ("mime", "left"), ("length", "right"),
                         ("text", "left"), ("warc", "left")):
        table.add_column(col, justify=justify)
    for c in captures:
        table.add_row(str(c.get("timestamp", "")), str(c.get("status", "")), str(c.get("mime", "")),
                      str(c.get("length", "")), "yes" if c.get("text") else "no", str(c.get("warc", "")))
    console = _console()
    console.print(f"{len(captures)} capture{'s' if len(captures) != 1 else ''} of {args.url}", soft_wrap=True)
    console.print(table)
    return 0


def render_capture(archive, url: str, at: str | None, form: str) -> bytes:
    """The bytes `get` prints: the same path for the command and the demo."""
    from storage.archive import NotFound
    try:
        return archive.get(url, at, as_=form)
    except NotFound as exc:
        if form in ("text", "json") and str(exc).startswith("no text"):
            raise CLIError(f"{exc} (it was not extracted as an article; try --as html)") from None
        raise


def cmd_get(args) -> int:
    if args.at:
        from storage.archive import parse_time
        parse_time(args.at)  # a bad time is reported before any lookup
    archive = _open_archive(_archive_location(args))
    data = render_capture(archive, args.url, args.at, args.form)
    _write_bytes(data)
    return 0


# --- serve, reindex, upload, export ------------------------------------------

def cmd_serve(args) -> int:
    from storage.server import make_server
    location = _archive_location(args)
    archive = _open_archive(location)
    try:
        server = make_server(archive, args.host, args.port)
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    _info(f"serving {location} at http://{shown}:{port}/web/  (Ctrl-C to stop)")
    _info(f"  try: curl http://{shown}:{port}/web/timemap/link/URL")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        _info("stopped")
    finally:
        server.server_close()
    return 0


def cmd_reindex(args) -> int:
    location = _archive_location(args)
    archive = _open_archive(location)
    result = archive.reindex()
    _info(f"rebuilt the catalog of {location}" + (f": {_describe(result)}" if result is not None else ""))
    return 0


def _describe(result: Any) -> str:
    from flows.progress import as_dict
    d = as_dict(result)
    parts = [f"{v} {k}" for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ", ".join(parts) if parts else str(result)


def _spool_roots(spool: Path) -> list[Path]:
    """The folders of the spool that hold archive keys.

    Crawls spool into a folder per source (SPOOL/SOURCE/warc/..., see
    flows.pipeline.source_spool), so each source's folder is uploaded on its
    own; the spool itself only when archive keys sit at its top (warc/, ...).
    """
    from storage import layout
    children = [c for c in sorted(spool.iterdir()) if c.is_dir() and not c.is_symlink()]
    roots = [c for c in children if c.name not in layout.KINDS and layout.SOURCE_NAME.match(c.name)]
    if any(c.name in layout.KINDS for c in children) or not roots:
        roots.insert(0, spool)
    return roots


def cmd_upload(args) -> int:
    from storage.backends import open_backend
    from storage.spool import spool_dir_for, upload_spool
    location = _archive_location(args)
    spool = Path(spool_dir_for(location))
    if not spool.exists():
        _info(f"nothing to upload: the spool {spool} does not exist")
        return 0
    backend = open_backend(location)
    uploaded: list = []
    failed: list = []
    from flows.pipeline import SourceBusy, index_spool, lock_spool, update_catalog
    for root in _spool_roots(spool):
        try:
            with lock_spool(root, root.name):  # never while a crawl of that source writes into it
                # what a killed crawl left is salvaged, and WARCs without an index get one,
                # so the upload leaves the archive as a finished run would
                index_spool(root)
                report = upload_spool(root, backend)
        except SourceBusy as exc:
            failed.append((root.name, str(exc)))
            continue
        uploaded += list(report.uploaded)
        failed += list(report.failed)
    n_up, n_fail = len(uploaded), len(failed)
    if uploaded:
        update_catalog(location)
    print(f"uploaded {n_up} file{'s' if n_up != 1 else ''} from {spool} to {location}")
    if n_fail:
        for key, err in failed[:10]:
            _info(f"  failed: {key}: {err}")
        raise CLIError(f"{n_fail} file{'s' if n_fail != 1 else ''} could not be uploaded; they stay in {spool}")
    return 0


def cmd_export(args) -> int:
    if not args.wacz:
        raise CLIError("choose an export format: --wacz", 2)
    from storage.archive import parse_time
    for value in (args.start, args.end):
        if value:
            parse_time(value)  # a bad time is one line before anything is read
    from storage.wacz import export_wacz
    archive = _open_archive(_archive_location(args))
    report = export_wacz(archive, args.source, since=args.start, until=args.end, out_path=Path(args.output))
    captures = getattr(report, "captures", None)
    pages = getattr(report, "pages", None)
    size = getattr(report, "bytes", None)
    from flows.progress import human_bytes
    print(f"wrote {getattr(report, 'path', args.output)}: {captures} captures, {pages} pages, "
          f"{len(getattr(report, 'warcs', []) or [])} WARC files, {human_bytes(size)}")
    return 0


# --- reextract ----------------------------------------------------------------

def cmd_reextract(args) -> int:
    from spiders.reextract import reextract_warc
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = failed = 0
    errors: dict[str, int] = {}
    for path, key in _warcs_for_reextract(args):
        for result in reextract_warc(path, workers=args.workers, urls=args.urls, warc_key=key):
            if result.ok:
                _write_article(out, result)
                written += 1
            else:
                failed += 1
                kind = (result.error or "error").split(":", 1)[0][:60]
                errors[kind] = errors.get(kind, 0) + 1
    print(f"wrote {written} article{'s' if written != 1 else ''} into {out}"
          + (f"; {failed} page{'s' if failed != 1 else ''} without article text" if failed else ""))
    for kind, count in sorted(errors.items(), key=lambda kv: -kv[1])[:5]:
        _info(f"  {count} × {kind}")
    if args.urls and written == 0:
        raise CLIError(f"no article text re-derived for {', '.join(args.urls)}")
    return 0


def _warcs_for_reextract(args) -> Iterable[tuple[Path, str]]:
    """(local file, archive key) of each capture WARC to read."""
    if args.warcs:
        for w in args.warcs:
            p = Path(w)
            if not p.is_file():
                raise CLIError(f"no such WARC file: {w}")
            yield p, p.name
        return
    from storage.backends import open_backend
    from storage import layout
    location = _archive_location(args)
    if not location.startswith("s3://") and not Path(location).is_dir():
        raise CLIError(f"no archive at {location} (not a folder)")
    if args.source:
        layout.safe_source(args.source)
    backend = open_backend(location)
    prefix = f"warc/{args.source}/" if args.source else "warc/"
    keys = sorted(k for k in backend.list(prefix) if k.endswith(".warc.gz") and not k.endswith(".text.warc.gz"))
    if not keys:
        raise CLIError(f"no capture WARCs under {prefix} in {location}")
    if not location.startswith("s3://"):
        for key in keys:
            yield Path(location) / key, key
        return
    import tempfile
    with tempfile.TemporaryDirectory(prefix="newsarchive-reextract-") as tmp:
        for key in keys:
            local = Path(tmp) / Path(key).name
            with backend.open_stream(key) as src, open(local, "wb") as dst:
                import shutil
                shutil.copyfileobj(src, dst, 1024 * 1024)
            try:
                yield local, key
            finally:
                local.unlink(missing_ok=True)


def _write_article(out: Path, result: Any) -> None:
    """TIMESTAMP-URLHASH.txt and .json, named as the archive names articles."""
    from storage import layout
    article = result.article
    stamp = re.sub(r"\D", "", str(result.date or ""))[:14] or "00000000000000"
    name = f"{stamp}-{layout.url_hash(result.url)}"
    (out / f"{name}.txt").write_text(article.text, encoding="utf-8")
    (out / f"{name}.json").write_text(json.dumps(article.metadata, indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")


# --- deploy, worker -----------------------------------------------------------

def cmd_deploy(args) -> int:
    _prepare_prefect_env()
    path = _sources_path(args).resolve()
    _load_sources(path)  # a bad file is one clear line before Prefect starts
    from flows.deploy import deploy
    archive = args.archive or os.environ.get("NEWSARCHIVE_ARCHIVE")
    if archive and not archive.startswith("s3://"):
        archive = str(Path(archive).expanduser().resolve())
    result = deploy(sources_file=str(path), pool=args.pool, archive=archive) or {}
    names = list(result.get("deployments") or [])
    schedules = result.get("schedules") or {}
    where = f" at {result['api_url']}" if result.get("api_url") else ""
    print(f"work pool {args.pool!r} (process): {'created' if result.get('pool_created') else 'already there'}")
    print(f"deployed {len(names)} deployment{'s' if len(names) != 1 else ''}{where}:")
    width = max((len(n) for n in names), default=0)
    for name in names:
        when = ", ".join(schedules.get(name) or []) or "no schedule: runs when triggered"
        print(f"  {name:<{width}}  {when}")
    limits = result.get("limits") or []
    if limits:
        print(f"concurrency limits (one run of a source at a time): {', '.join(limits)}")
    if result.get("prefect_file"):
        print(f"definitions written to {result['prefect_file']}")
    sources = [n for n in names if n.startswith("crawl-source/")]
    _info("next: start a worker (several, on this or other machines, to crawl sources at once):")
    _info(f"  newsarchive worker --pool {args.pool}")
    _info("then wait for the schedules, or trigger a run now:")
    _info(f"  prefect deployment run '{sources[0] if sources else 'crawl-source/SOURCE'}'")
    _info("  prefect deployment run 'crawl-all/all'")
    return 0


def cmd_worker(args) -> int:
    _prepare_prefect_env()
    from flows.deploy import start_worker
    try:
        code = start_worker(pool=args.pool, limit=args.limit, name=args.name)
    except KeyboardInterrupt:
        _info("worker stopped")
        return 0
    return int(code or 0)


# --- demo ---------------------------------------------------------------------

def cmd_demo(args) -> int:
    import tempfile
    from flows.demo_site import demo_sources_toml, start_demo_site

    archive_location = args.archive
    server = start_demo_site()
    try:
        with tempfile.TemporaryDirectory(prefix="newsarchive-demo-") as tmp:
            sources_path = Path(tmp) / "sources.toml"
            sources_path.write_text(demo_sources_toml(server), encoding="utf-8")
            sources_path = sources_path.resolve()
            archive_location = _crawl_archive(archive_location)
            names = list(_load_sources(sources_path))
            _info(f"demo news site at {server.url('/')}; crawling it into {archive_location}")
            summaries = run_crawls(names, sources_path, archive_location, None,
                                   use_prefect=not args.no_prefect, progress_title="crawling the demo site")
    finally:
        try:
            server.stop()
        except Exception:
            pass
    code = _report_crawls(summaries, archive_location, console=_console(stderr=True))
    if code:
        return code
    archive = _open_archive(archive_location)
    url = _demo_article_url(archive, server)
    if url is None:
        raise CLIError(f"the demo crawl archived no article text in {archive_location}")
    a = args.archive
    _info("")
    _info(f"one archived article, as `newsarchive get {url} --as text --archive {a}` prints it:")
    _info("")
    sys.stdout.flush()
    _write_bytes(render_capture(archive, url, None, "text"))
    _info("")
    _info("try next (after `. .venv/bin/activate` in a checkout):")
    _info(f"  newsarchive list {url} --archive {a}")
    _info(f"  newsarchive get {url} --as html --archive {a}")
    _info(f"  newsarchive get {url} --as json --archive {a}")
    _info(f"  newsarchive serve --archive {a}     then open http://127.0.0.1:8080/web/timemap/link/{url}")
    return 0


def _demo_article_url(archive, server) -> str | None:
    """The first demo article the crawl archived clean text for."""
    from flows.demo_site import demo_articles
    for article in demo_articles(server):
        try:
            render_capture(archive, article["url"], None, "text")
        except Exception:
            continue
        return article["url"]
    return None


# --- main ---------------------------------------------------------------------

def _known_errors() -> tuple[type[BaseException], ...]:
    """The project's error types, for one-line reporting (imported only if loaded)."""
    found: list[type[BaseException]] = [CLIError]
    candidates = {
        "spiders.sources": ("SourcesError",),
        "spiders.reextract": ("ReextractError",),
        "spiders.extraction": ("ExtractionError",),
        "storage.backends": ("StorageError",),
        "storage.archive": ("NotFound", "ArchiveError"),
        "storage.catalog": ("CatalogError",),
        "storage.wacz": ("WaczError", "ExportError"),
        "storage.layout": ("UnsafeKeyError",),
        "flows.pipeline": ("CrawlError", "PipelineError"),
        "flows.crawl": ("CrawlError",),
        "flows.deploy": ("DeployError",),
    }
    for module_name, names in candidates.items():
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for name in names:
            cls = getattr(module, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found.append(cls)
    return tuple(found)


def _exit_code(exc: BaseException) -> int:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) and 0 < code < 126 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): not an error; silence the flush at exit
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 0
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes one line
        if debug_enabled(args):
            import traceback
            traceback.print_exc()
        if isinstance(exc, _known_errors()):
            print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
            return _exit_code(exc)
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in {"flows", "spiders", "storage"}:
            print(f"{PROG}: error: this command needs {exc.name}, which is not installed in this checkout",
                  file=sys.stderr)
            return 1
        if isinstance(exc, OSError) and exc.strerror:
            where = f": {exc.filename}" if exc.filename else ""
            print(f"{PROG}: error: {exc.strerror}{where}", file=sys.stderr)
            return 1
        hint = "" if debug_enabled(args) else f" ({DEBUG_HINT})"
        print(f"{PROG}: unexpected error: {type(exc).__name__}: {_one_line(exc)}{hint}", file=sys.stderr)
        return 1


def run() -> None:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
