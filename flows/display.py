"""What the command line shows: live crawl progress, the run summary, tables.

`CrawlProgress` receives the crawl's progress events
(`{"event": "page", "url", "status", "bytes", "article"}` and
`{"event": "article", "url", "title"}`, with `"source"`) from any thread. On
a terminal it draws a live display (pages, articles, bytes, the current URL);
otherwise (a log file, CI, a pipe) it writes one plain line per event, so
nothing depends on cursor movement.

The print functions render what a command hands them (run summaries,
captures, sources, a deployment) as rich tables; off a terminal tables keep
their natural width.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from typing import Any, Iterable, Mapping

from rich.console import Console, Group
from rich.control import strip_control_codes
from rich.live import Live
from rich.table import Table
from rich.text import Text

from flows.summary import RunSummary
from storage.capture import Capture


def console(stderr: bool = False) -> Console:
    """A rich console; off a terminal, tables keep their natural width (no wrapping at 80)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 10_000)


def info(message: str) -> None:
    """A line for the person at the terminal (stderr: stdout is for data)."""
    print(message, file=sys.stderr, flush=True)


class OneLineLogFilter(logging.Filter):
    """A log record as one line, its traceback dropped (flows/prefect-logging.yml)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        message = record.getMessage()
        if "Traceback (most recent call last)" in message:
            record.msg = message.split("Traceback (most recent call last)")[0].rstrip() or "run failed"
            record.args = ()
        return True


def human_bytes(n: int | float | None) -> str:
    """1234567 -> '1.2 MB' (decimal units, as download tools show them)."""
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


@dataclasses.dataclass
class _Counts:
    pages: int = 0
    articles: int = 0
    bytes: int = 0
    errors: int = 0
    current: str = ""


class CrawlProgress:
    """Draws crawl progress; feed it events with `handle(event)` from any thread."""

    def __init__(self, console: Console | None = None, live: bool | None = None, title: str = "crawling"):
        self.console = console or Console(stderr=True, highlight=False)
        self.live = self.console.is_terminal if live is None else live
        self.title = title
        self.total = _Counts()
        self.sources: dict[str, _Counts] = {}
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._started = time.monotonic()

    # -- events --------------------------------------------------------------

    def handle(self, event: Mapping[str, Any]) -> None:
        try:
            self._handle(event)
        except Exception:  # a display problem must never stop a crawl
            pass

    __call__ = handle

    def _handle(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event")
        source = str(event.get("source") or "")
        url = str(event.get("url") or "")
        with self._lock:
            counts = [self.total]
            if source:
                counts.append(self.sources.setdefault(source, _Counts()))
            if kind == "page":
                status = event.get("status")
                size = int(event.get("bytes") or 0)
                failed = isinstance(status, int) and status >= 400 or bool(event.get("error"))
                for c in counts:
                    c.pages += 1
                    c.bytes += size
                    c.errors += 1 if failed else 0
                    c.current = url
                line = f"page     {status if status is not None else '-':>3}  {human_bytes(size):>9}  {url}"
            elif kind == "article":
                for c in counts:
                    c.articles += 1
                title = str(event.get("title") or "").strip()
                line = f"article  {url}" + (f"  {title!r}" if title else "")
            elif kind == "error":
                for c in counts:
                    c.errors += 1
                line = f"error    {event.get('kind') or ''}  {url}  {event.get('message') or ''}".rstrip()
            else:
                return
        if self._live is None and not self.live:
            # A line a page, in a log or a pipe: written as Console.print(Text(...), soft_wrap=True)
            # would write it (control codes stripped, tabs expanded), without rich's rendering, which
            # cost more CPU than everything else this process does during a crawl.
            prefix = f"[{source}] " if source else ""
            with self._lock:
                self.console.file.write(strip_control_codes(prefix + line).expandtabs(8) + "\n")
                self.console.file.flush()

    # -- display -------------------------------------------------------------

    def _render(self) -> Group:
        elapsed = time.monotonic() - self._started
        t = self.total
        head = Text.assemble(
            (f"{self.title} ", "bold"),
            (f"{t.pages} pages", "cyan"), " · ",
            (f"{t.articles} articles", "green"), " · ",
            (human_bytes(t.bytes), "magenta"), " · ",
            (f"{t.errors} errors", "red" if t.errors else "dim"), " · ",
            (f"{elapsed:.0f}s", "dim"),
        )
        rows: list[Any] = [head]
        if len(self.sources) > 1:
            for name, c in self.sources.items():
                rows.append(Text(f"  {name}: {c.pages} pages, {c.articles} articles, {human_bytes(c.bytes)}", style="dim"))
        current = t.current or "starting…"
        width = max(20, self.console.width - 4)
        if len(current) > width:
            current = current[: width - 1] + "…"
        rows.append(Text(f"  {current}", style="dim", no_wrap=True, overflow="ellipsis"))
        return Group(*rows)

    def __enter__(self) -> "CrawlProgress":
        self._started = time.monotonic()
        if self.live:
            self._live = Live(console=self.console, refresh_per_second=8, transient=True,
                              redirect_stdout=False, redirect_stderr=True, get_renderable=self._render)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.__exit__(*exc)


# -- run summaries -------------------------------------------------------------

def _errors_text(errors: Mapping[str, int]) -> str:
    return "\n".join(f"{kind} {count}" for kind, count in sorted(errors.items())) if errors else "0"


def summary_table(summaries: Iterable[RunSummary], title: str = "Crawl summary") -> Table:
    rows = list(summaries)
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("source", style="bold")
    table.add_column("status")
    for name in ("pages", "articles", "bytes"):
        table.add_column(name, justify="right")
    table.add_column("errors")
    table.add_column("files", justify="right")
    for s in rows:
        table.add_row(s.source, Text("failed" if s.failed else "ok", style="red" if s.failed else "green"),
                      str(s.pages), str(s.articles), human_bytes(s.bytes),
                      Text(_errors_text(s.errors), style="red" if s.error_total else ""),
                      str(sum(f.this_run for f in s.files)))
    if len(rows) > 1:
        table.add_section()
        table.add_row("total", "", str(sum(s.pages for s in rows)), str(sum(s.articles for s in rows)),
                      human_bytes(sum(s.bytes for s in rows)), str(sum(s.error_total for s in rows)),
                      str(sum(sum(f.this_run for f in s.files) for s in rows)), style="bold")
    return table


def print_summary(summaries: Iterable[RunSummary], out: Console | None = None, max_files: int = 12) -> None:
    """The summary table, then the files written, notes and sample errors of each run."""
    out = out or console()
    rows = list(summaries)
    out.print(summary_table(rows))
    order = {"warc": 0, "indexes": 1, "articles": 2, "runs": 3}
    for s in rows:
        files = sorted((f.key for f in s.files if f.this_run), key=lambda k: (order.get(k.split("/", 1)[0], 9), k))
        if files:
            where = f" in {s.archive}" if s.archive else ""
            out.print(Text(f"files written ({s.source}){where}:", style="bold"), soft_wrap=True)
            for key in files[:max_files]:
                out.print(Text(f"  {key}"), soft_wrap=True)
            if len(files) > max_files:
                out.print(Text(f"  … and {len(files) - max_files} more", style="dim"))
        if s.skipped_seen or s.revisits:
            out.print(Text(f"incremental ({s.source}): {s.skipped_seen} archived articles skipped "
                           f"(not due for a re-check), {s.revisits} unchanged pages archived as revisits"),
                      soft_wrap=True)
        if s.requisites_line():
            out.print(Text(f"requisites ({s.source}): {s.requisites_line()}"), soft_wrap=True)
        for note in s.notes:
            out.print(Text(f"note ({s.source}): {note}"), soft_wrap=True)
        if s.recovered:
            out.print(Text(f"recovered ({s.source}) from a killed crawl: {', '.join(s.recovered)}"), soft_wrap=True)
        if s.error_samples:
            out.print(Text(f"sample errors ({s.source}):", style="bold"))
            for e in s.error_samples[:5]:
                out.print(Text(f"  {e.get('kind', '')}  {e.get('url', '')}  {e.get('message', '')}".rstrip()),
                          soft_wrap=True)


def report_crawls(summaries: list[RunSummary], archive: str, out: Console | None = None) -> int:
    """Print the summary of manual crawls and one error line per failed run; the exit code."""
    ran = [s for s in summaries if not s.failed or s.pages]
    if ran:
        print_summary(summaries, out=out)
    failed = [s for s in summaries if s.failed]
    for s in failed:
        print(f"newsarchive: error: {s.verdict}", file=sys.stderr)
    if failed:
        return 1
    info(f"archived into {archive}")
    return 0


# -- tables of what the archive and the sources file hold ------------------------

def print_captures(url: str, captures: list[Capture]) -> None:
    table = Table()
    for col, justify in (("timestamp", "left"), ("status", "right"), ("mime", "left"), ("length", "right"),
                         ("text", "left"), ("warc", "left")):
        table.add_column(col, justify=justify)
    for c in captures:
        table.add_row(c.timestamp, str(c.status if c.status is not None else ""), c.mime or "", str(c.length),
                      "yes" if c.text else "no", c.warc)
    out = console()
    out.print(f"{len(captures)} capture{'s' if len(captures) != 1 else ''} of {url}", soft_wrap=True)
    out.print(table)


def print_sources(path, rows: list[dict]) -> None:
    table = Table()
    for name, justify in (("name", "left"), ("hosts", "left"), ("feeds", "right"), ("sitemaps", "right"),
                          ("start", "right"), ("max pages", "right"), ("schedule", "left")):
        table.add_column(name, justify=justify)
    for r in rows:
        hosts = ", ".join(r["hosts"]) + (f" (+ requisites: {', '.join(r['requisite_hosts'])})"
                                         if r["requisite_hosts"] else "")
        table.add_row(r["name"], hosts, str(len(r["feeds"])), str(len(r["sitemaps"])),
                      str(len(r["start_urls"])), str(r["max_pages"]), r["schedule"] or "-")
    out = console()
    out.print(f"{len(rows)} source{'s' if len(rows) != 1 else ''} in {path}", soft_wrap=True)
    if rows:
        out.print(table)


def source_row(src) -> dict:
    """A source as `sources --json` prints it."""
    return {"name": src.name, "hosts": sorted(src.hosts), "start_urls": list(src.start_urls),
            "feeds": list(src.feeds), "sitemaps": list(src.sitemaps), "schedule": src.schedule,
            "max_pages": src.max_pages, "requisite_hosts": sorted(src.requisite_hosts),
            "max_requisites": src.requisite_budget}


def report_upload(leftovers, archive: str) -> int:
    """What `newsarchive upload` did; the exit code."""
    from storage.errors import StorageError

    if not leftovers.exists:
        info(f"nothing to upload: the spool {leftovers.spool} does not exist")
        return 0
    n = len(leftovers.uploaded)
    print(f"uploaded {n} file{'s' if n != 1 else ''} from {leftovers.spool} to {archive}")
    if leftovers.recovered:
        info(f"  recovered from a killed crawl: {', '.join(leftovers.recovered)}")
    for key, why in leftovers.failed[:10]:
        info(f"  failed: {key}: {why}")
    if leftovers.failed:
        n = len(leftovers.failed)
        raise StorageError(f"{n} file{'s' if n != 1 else ''} could not be uploaded; they stay in {leftovers.spool}")
    return 0


def report_reextract(report, out) -> None:
    print(f"wrote {report.written} article{'s' if report.written != 1 else ''} into {out}"
          + (f"; {report.failed} page{'s' if report.failed != 1 else ''} without article text"
             if report.failed else ""))
    for kind, count in sorted(report.errors.items(), key=lambda kv: -kv[1])[:5]:
        info(f"  {count} × {kind}")


def print_deployment(result: dict) -> None:
    """What `newsarchive deploy` set up, then what to do next (on stderr)."""
    names = list(result.get("deployments") or [])
    schedules = result.get("schedules") or {}
    pool = result.get("pool")
    where = f" at {result['api_url']}" if result.get("api_url") else ""
    print(f"work pool {pool!r} (process): {'created' if result.get('pool_created') else 'already there'}")
    print(f"deployed {len(names)} deployment{'s' if len(names) != 1 else ''}{where}:")
    width = max((len(n) for n in names), default=0)
    for name in names:
        when = ", ".join(schedules.get(name) or []) or "no schedule: runs when triggered"
        print(f"  {name:<{width}}  {when}")
    if result.get("limits"):
        print(f"concurrency limits (one run of a source at a time): {', '.join(result['limits'])}")
    if result.get("prefect_file"):
        print(f"definitions written to {result['prefect_file']}")
    sources = [n for n in names if n.startswith("crawl-source/")]
    info("next: start a worker (several, on this or other machines, to crawl sources at once):")
    info(f"  newsarchive worker --pool {pool}")
    info("then wait for the schedules, or trigger a run now:")
    info(f"  prefect deployment run '{sources[0] if sources else 'crawl-source/SOURCE'}'")
    info("  prefect deployment run 'crawl-all/all'")


# -- search --------------------------------------------------------------------

def _highlighted(text: str, spans, on_terminal: bool) -> Text:
    """`text` with the matched spans bold on a terminal, between ** elsewhere (pipes, files)."""
    out = Text()
    pos = 0
    for start, end in spans or []:
        out.append(text[pos:start])
        if on_terminal:
            out.append(text[start:end], style="bold reverse")
        else:
            out.append(f"**{text[start:end]}**")
        pos = end
    out.append(text[pos:])
    return out


def _when(ts: str) -> str:
    return f"{ts[0:4]}-{ts[4:6]}-{ts[6:8]} {ts[8:10]}:{ts[10:12]} UTC"


def print_search_results(found) -> None:
    """`newsarchive search` without --json: one block per article, best first."""
    out = console()
    tty = out.is_terminal
    first, last = found.offset + 1, found.offset + len(found.hits)
    what = f"{found.total} article{'s' if found.total != 1 else ''} match {found.query!r}"
    out.print(Text(what + (f" ({first}-{last})" if found.hits and (first > 1 or last < found.total) else "")),
              soft_wrap=True)
    for n, hit in enumerate(found.hits, start=first):
        out.print()
        title = _highlighted(hit.title or "(untitled)", hit.title_highlights, tty)
        out.print(Text(f"{n}. ", style="bold") + (title.copy() if tty else title), soft_wrap=True)
        dated = f"published {hit.published or hit.date}" if hit.dated_by == "published" else f"first captured {hit.date}"
        parts = [hit.source or "?", dated] + ([hit.language] if hit.language else [])
        captures = f"{len(hit.captures)} capture{'s' if len(hit.captures) != 1 else ''}"
        if hit.versions > 1:
            captures += f", {hit.versions} versions"
        parts.append(f"captured {_when(hit.timestamp)} ({captures})")
        out.print(Text("   " + " · ".join(parts), style="dim"), soft_wrap=True)
        out.print(Text(f"   {hit.url}"), soft_wrap=True)
        if hit.snippet:
            prefix = "   (in an earlier version) " if hit.matched == "earlier text" else "   "
            out.print(Text(prefix) + _highlighted(hit.snippet, hit.highlights, tty), soft_wrap=True)


def print_counts(query: str, by: str, series: list[tuple[str, int]]) -> None:
    """`newsarchive search --count-by`: one line per period, with a bar."""
    out = console()
    total = sum(n for _, n in series)
    out.print(Text(f"articles matching {query!r} per {by}: {total} in all"), soft_wrap=True)
    top = max((n for _, n in series), default=0)
    width = max((len(p) for p, _ in series), default=0)
    digits = len(str(top))
    for period, n in series:
        bar = "█" * (round(40 * n / top) if top else 0)
        out.print(Text(f"{period:<{width}}  {n:>{digits}}  {bar}".rstrip()), soft_wrap=True)
