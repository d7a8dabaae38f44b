"""Live progress of a crawl on the terminal, and the run summary table.

`CrawlProgress` receives the pipeline's progress events
(`{"event": "page", "url", "status", "bytes", "article"}` and
`{"event": "article", "url", "title"}`, optionally with `"source"`) from any
thread. On a terminal it draws a live display (pages, articles, bytes, the
current URL); otherwise (a log file, CI, a pipe) it writes one plain line per
event, so nothing depends on cursor movement.

`summary_table(summaries)` turns run summaries (the crawl stats: pages,
articles, bytes, errors by kind, files written) into a rich Table;
`print_summary` prints it with the files written and sample errors.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from typing import Any, Iterable, Mapping

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


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


def as_dict(summary: Any) -> dict:
    """A run summary as a plain dict, whatever shape the pipeline returned."""
    if summary is None:
        return {}
    if isinstance(summary, Mapping):
        return dict(summary)
    for method in ("to_dict", "as_dict", "model_dump", "dict"):
        fn = getattr(summary, method, None)
        if callable(fn):
            try:
                value = fn()
            except TypeError:
                continue
            if isinstance(value, Mapping):
                return dict(value)
    if dataclasses.is_dataclass(summary) and not isinstance(summary, type):
        return dataclasses.asdict(summary)
    if hasattr(summary, "__dict__"):
        return {k: v for k, v in vars(summary).items() if not k.startswith("_")}
    return {"value": summary}


def _errors_total(errors: Any) -> int:
    if isinstance(errors, Mapping):
        return sum(int(v) for v in errors.values() if isinstance(v, (int, float)))
    if isinstance(errors, (list, tuple)):
        return len(errors)
    if isinstance(errors, (int, float)):
        return int(errors)
    return 0


def _errors_text(errors: Any) -> str:
    if isinstance(errors, Mapping):
        if not errors:
            return "0"
        return "\n".join(f"{kind} {count}" for kind, count in sorted(errors.items()))
    if isinstance(errors, (list, tuple)):
        return str(len(errors))
    return str(errors or 0)


def summary_failed(summary: Mapping) -> bool:
    """Did this run fail as a whole (not: did some pages fail)?"""
    status = str(summary.get("status") or summary.get("state") or "").lower()
    if status in {"failed", "failure", "error", "crashed"}:
        return True
    if summary.get("error") or summary.get("failed") or summary.get("verdict"):
        return True
    return False


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
            prefix = f"[{source}] " if source else ""
            self.console.print(Text(prefix + line), soft_wrap=True)

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


# -- summary -----------------------------------------------------------------

def _written(files: Iterable[Any]) -> list[str]:
    """The keys of the files a run wrote (entries are keys, or dicts with "key")."""
    keys = []
    for f in files:
        if isinstance(f, Mapping):
            if f.get("this_run", True):
                keys.append(str(f.get("key")))
        else:
            keys.append(str(f))
    return keys


def summary_table(summaries: Iterable[Any], title: str = "Crawl summary") -> Table:
    rows = [as_dict(s) for s in summaries]
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("source", style="bold")
    table.add_column("status")
    table.add_column("pages", justify="right")
    table.add_column("articles", justify="right")
    table.add_column("bytes", justify="right")
    table.add_column("errors")
    table.add_column("files", justify="right")
    totals = {"pages": 0, "articles": 0, "bytes": 0, "errors": 0, "files": 0}
    for s in rows:
        failed = summary_failed(s)
        files = s.get("files") or []
        nfiles = len(_written(files)) if isinstance(files, (list, tuple)) else int(files or 0)
        status = "failed" if failed else str(s.get("status") or "ok")
        table.add_row(
            str(s.get("source") or "-"),
            Text(status, style="red" if failed else "green"),
            str(s.get("pages", 0) or 0),
            str(s.get("articles", 0) or 0),
            human_bytes(s.get("bytes") or 0),
            Text(_errors_text(s.get("errors")), style="red" if _errors_total(s.get("errors")) else ""),
            str(nfiles),
        )
        totals["pages"] += int(s.get("pages") or 0)
        totals["articles"] += int(s.get("articles") or 0)
        totals["bytes"] += int(s.get("bytes") or 0)
        totals["errors"] += _errors_total(s.get("errors"))
        totals["files"] += nfiles
    if len(rows) > 1:
        table.add_section()
        table.add_row("total", "", str(totals["pages"]), str(totals["articles"]), human_bytes(totals["bytes"]),
                      str(totals["errors"]), str(totals["files"]), style="bold")
    return table


def print_summary(summaries: Iterable[Any], console: Console | None = None, max_files: int = 12) -> None:
    """The summary table, then the files written and sample errors of each run."""
    console = console or Console(stderr=True, highlight=False)
    rows = [as_dict(s) for s in summaries]
    console.print(summary_table(rows))
    for s in rows:
        name = s.get("source") or ""
        files = _written(s.get("files") or []) if isinstance(s.get("files"), (list, tuple)) else []
        if files:
            order = {"warc": 0, "indexes": 1, "articles": 2, "runs": 3}
            files = sorted(files, key=lambda k: (order.get(k.split("/", 1)[0], 9), k))
            where = f" in {s['archive']}" if s.get("archive") else ""
            console.print(Text(f"files written ({name}){where}:", style="bold"), soft_wrap=True)
            for key in list(files)[:max_files]:
                console.print(Text(f"  {key}"), soft_wrap=True)
            if len(files) > max_files:
                console.print(Text(f"  … and {len(files) - max_files} more", style="dim"))
        if s.get("skipped_seen") or s.get("revisits"):
            console.print(Text(f"incremental ({name}): {s.get('skipped_seen') or 0} archived articles skipped "
                               f"(not due for a re-check), {s.get('revisits') or 0} unchanged pages "
                               f"archived as revisits"), soft_wrap=True)
        samples = s.get("error_samples") or []
        if samples:
            console.print(Text(f"sample errors ({name}):", style="bold"))
            for e in samples[:5]:
                if isinstance(e, Mapping):
                    console.print(Text(f"  {e.get('kind', '')}  {e.get('url', '')}  {e.get('message', '')}".rstrip()),
                                  soft_wrap=True)
                else:
                    console.print(Text(f"  {e}"), soft_wrap=True)

