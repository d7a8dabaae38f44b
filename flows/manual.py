"""Manual crawls: `newsarchive crawl` and `newsarchive demo`.

Sources run one after another with a live progress display, through the
`crawl-source` flow in this process (so manual crawls land in Prefect's run
history beside scheduled ones; with no PREFECT_API_URL, in PREFECT_HOME's
history, through a temporary server of the command's own) or, with
`use_prefect=False`, through the same step sequence directly. A source that fails does not stop the others: its
summary carries the one-line verdict.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Sequence

from flows import crawler, display
from flows.summary import RunSummary
from storage.errors import NewsarchiveError, StorageError

# The command line's own Prefect logging: one line per message, no tracebacks
# (the command reports a failure itself, in one line).
LOGGING_CONFIG = Path(__file__).with_name("prefect-logging.yml")


def prepare_prefect_env(*, debug: bool = False) -> None:
    """Before Prefect is imported (unless the user chose otherwise): no telemetry,
    and the command line's logging."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # nor the client's usage data
    if not debug:
        os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH", str(LOGGING_CONFIG))


def crawl_archive(location: str) -> str:
    """The archive a crawl writes to, as an absolute location (crawls run in
    other folders and processes); a folder archive is created if missing."""
    if location.startswith("s3://"):
        return location
    path = Path(location).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the archive folder {path}: {exc.strerror or exc}") from None
    return str(path)


def crawl_sources(names: Sequence[str], sources_file: Path, archive: str, max_pages: int | None, *,
                  use_prefect: bool, title: str = "crawling", debug: bool = False) -> list[RunSummary]:
    """Crawl `names` one after another with a progress display; their summaries.

    Through Prefect, the runs go to PREFECT_API_URL (OrchestrationError, one
    line, if it does not answer) or, when it is unset, to a temporary server
    this command starts and stops (flows/prefect_api.py)."""
    api = contextlib.nullcontext()
    if use_prefect:
        prepare_prefect_env(debug=debug)
        from flows.prefect_api import temporary_api

        api = temporary_api()
    summaries = []
    with api:
        progress = display.CrawlProgress(title=title)
        previous = crawler.set_event_sink(progress.handle)
        try:
            with progress:
                for name in names:
                    summaries.append(_crawl_one(name, str(sources_file), archive, max_pages, use_prefect))
        finally:
            crawler.set_event_sink(previous)
    return summaries


def _crawl_one(name: str, sources_file: str, archive: str, max_pages: int | None, use_prefect: bool) -> RunSummary:
    try:
        if use_prefect:
            from flows.crawl import crawl_source, summary_of

            state = crawl_source(source=name, sources_file=sources_file, archive=archive, max_pages=max_pages,
                                 return_state=True)
            return summary_of(state, name)
        from flows.pipeline import run_source

        return run_source(name, sources_file=sources_file, archive=archive, max_pages=max_pages)
    except NewsarchiveError as exc:  # this source could not run; the others still do
        return RunSummary(source=name, archive=archive, verdict=str(exc))
