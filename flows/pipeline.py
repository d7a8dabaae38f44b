"""One run of a source, written once as a sequence of steps, with or without Prefect.

    recover       make final what a crawl killed earlier left (`.open` files)
    export_seen   the archive's catalog -> SPOOL/.seen.jsonl: what the archive holds
                  of the source, so the crawl is incremental on any machine
    fetch         the crawl subprocess: fetch and extraction, into the spool
    recover       this run's own crawl, if it was killed
    index         a CDXJ index beside every finished WARC
    manifest      the run manifest (runs/SOURCE/Y/M/D/RUN_ID.json)
    upload        finished files -> archive, verified, then removed from the spool
    catalog       the archive's catalog ingests the new indexes

`run_source` runs them under the source's spool lock, taken once (SourceBusy,
one line naming the holder, when another process runs the source on this
machine) and shared with the crawl subprocess; the kernel drops it when they
die, so a killed run never blocks the next one. `archive_spool` is the tail
of the sequence (recover, index, upload, catalog) that `newsarchive upload`
runs on what earlier runs left.

Each step is a plain function; a `Steps` object decides how it runs:
`Steps()` calls it once, `flows.crawl.PrefectSteps` runs it as a Prefect task
with the retries named on the step. Nothing here imports Prefect.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from flows.crawler import EventCallback, run_crawl
from flows.summary import RunSummary
from storage import layout
from storage.archive import default_location, is_folder_archive, open_archive
from storage.cdxj import index_spool
from storage.errors import CrawlError, StorageError
from storage.manifest import write_run_manifest
from storage.recovery import RecoveryReport, SourceBusy, SpoolLock, recover_spool
from storage.spool import UploadReport, spool_dir_for, upload_spool
from storage.backends import open_backend

log = logging.getLogger("newsarchive.pipeline")

SEEN_NAME = ".seen.jsonl"  # a dot file: never uploaded


class UploadError(StorageError):
    """Some finished files could not be uploaded; they stay in the spool."""

    def __init__(self, message: str, report: UploadReport):
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------- how steps run

@dataclass(frozen=True)
class StepOptions:
    name: str
    retries: int = 0
    retry_delays: tuple[int, ...] = ()


def step(name: str, *, retries: int = 0, retry_delays: tuple[int, ...] = ()):
    """Mark a function as a step of the sequence (its name and retry policy)."""
    def mark(fn: Callable) -> Callable:
        fn.step = StepOptions(name, retries, retry_delays)
        return fn
    return mark


class Steps:
    """Runs each step directly, once (retrying is a scheduler's business)."""

    def __call__(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- the steps

@step("recover")
def recover(lock: SpoolLock) -> list[str]:
    """Make final the `.open` files a dead crawl left; return the WARC keys salvaged."""
    report: RecoveryReport = recover_spool(lock)
    if report.salvaged:
        log.warning("%s: recovered %d file(s) a killed crawl left in the spool", lock.source, len(report.salvaged))
    return report.keys


@step("export-seen")
def export_seen(archive: str, source: str, spool: Path) -> Path | None:
    """Write the archive's latest capture per URL of `source` to SPOOL/.seen.jsonl
    for the crawl's `--seen`; return the path.

    None when there is nothing to read yet (no archive) or the catalog cannot be
    read (logged): the crawl is then a full one, never a failed one.
    """
    from spiders.seen import write_seen

    path = Path(spool) / SEEN_NAME
    path.unlink(missing_ok=True)  # never a stale state from an earlier run
    if "://" not in archive and not is_folder_archive(archive):
        return None
    try:
        with open_archive(archive) as opened:
            n = write_seen(opened.catalog.latest_per_url(source), path)
    except Exception as exc:  # a crawl must not fail for want of its dedupe state
        log.warning("%s: cannot read what the archive holds (crawling everything): %s", source, exc)
        path.unlink(missing_ok=True)
        return None
    log.info("%s: %d URLs already archived", source, n)
    return path


@step("fetch")
def fetch(source: str, sources_file: str, lock: SpoolLock, max_pages: int | None, seen: Path | None,
          on_event: EventCallback | None = None) -> dict:
    """Crawl the source into its spool (fetch + extraction, in a subprocess); its stats."""
    stats = run_crawl(source, sources_file=sources_file, lock=lock, max_pages=max_pages, seen=seen,
                      on_event=on_event, on_log=_crawl_log)
    log.info("%s: %s pages, %s articles, %s bytes, %s errors", source, stats.get("pages"),
             stats.get("articles"), stats.get("bytes"), sum((stats.get("errors") or {}).values()))
    return stats


def _crawl_log(line: str) -> None:
    log.log(logging.WARNING if (" ERROR" in line or " CRITICAL" in line) else logging.DEBUG, "%s", line)


@step("index")
def index(lock: SpoolLock) -> list[str]:
    """A CDXJ index beside every finished WARC of the spool that lacks one."""
    written, failed = index_spool(lock.spool)
    for problem in failed:
        log.warning("could not index %s", problem)
    return written


@step("manifest")
def manifest(lock: SpoolLock, stats: dict, source: str, run_id: str) -> str:
    return write_run_manifest(lock.spool, stats, source=source, run_id=run_id)


@step("upload", retries=3, retry_delays=(5, 30, 120))
def upload(lock: SpoolLock, archive: str) -> UploadReport:
    """Upload every finished file of the spool; UploadError (retried) if any failed."""
    report = upload_spool(lock.spool, open_backend(archive))
    log.info("archived %d file(s) to %s", len(report.uploaded), archive)
    if report.failed:
        key, why = report.failed[0]
        raise UploadError(f"upload to {archive} failed for {len(report.failed)} file(s), kept in the spool "
                          f"{lock.spool}: {key}: {why}", report)
    return report


@step("catalog", retries=2, retry_delays=(5,))
def update_catalog(archive: str) -> None:
    """Let the archive's catalog ingest the indexes it has not seen yet."""
    if "://" in archive or is_folder_archive(archive):
        with open_archive(archive, sync=False) as opened:
            opened.sync()


# --------------------------------------------------------------------------- the sequence

def run_source(source: str, *, sources_file: str | os.PathLike | None = None, archive: str | None = None,
               max_pages: int | None = None, run_id: str | None = None, spool: str | os.PathLike | None = None,
               on_event: EventCallback | None = None, steps: Steps = Steps(), notes: list[str] = ()) -> RunSummary:
    """The whole data flow of one crawl; returns its summary (`verdict` says if it failed).

    Files left in the spool by earlier runs are indexed and uploaded too. Raises
    SourceBusy (another process runs this source here; nothing touched).
    """
    from spiders.sources import default_sources_path

    archive = archive or default_location()
    sources_file = str(sources_file or default_sources_path())
    spool = Path(spool) if spool is not None else source_spool(archive, source)
    run_id = run_id or uuid.uuid4().hex
    stats: dict | None = None
    failure: str | None = None
    notes = list(notes)
    with SpoolLock(spool, source) as lock:
        if lock.stale_pid is not None:
            notes.append(stale_lock_note(lock))
        recovered = steps(recover, lock)  # a crawl of this source killed earlier
        seen = steps(export_seen, archive, source, spool)
        try:
            stats = steps(fetch, source, sources_file, lock, max_pages, seen, on_event)
        except CrawlError as exc:
            stats, failure = exc.stats, str(exc)
        recovered += steps(recover, lock)  # this run's own crawl, if it was killed
        if stats is not None and recovered:
            stats["recovered"] = recovered
        report = _archive(lock, archive, steps, manifest_of=(stats, source, run_id) if stats else None)
    notes += _catalog_after(report, archive, steps)
    return RunSummary.build(source, stats, report, archive=archive, failure=failure, recovered=recovered,
                            notes=notes)


def stale_lock_note(lock: SpoolLock) -> str:
    return (f"found a stale spool lock in {lock.spool}: pid {lock.stale_pid} died holding it (a killed run); "
            f"cleared; this run salvages and archives what it left")


def archive_spool(spool: str | os.PathLike, archive: str, *, steps: Steps = Steps()) -> tuple[list[str], UploadReport]:
    """Send what earlier runs left in one source's spool; (WARCs recovered, upload report)."""
    with SpoolLock(spool) as lock:
        if lock.stale_pid is not None:
            log.warning("%s", stale_lock_note(lock))
        recovered = steps(recover, lock)
        report = _archive(lock, archive, steps)
    for note in _catalog_after(report, archive, steps):
        log.warning("%s", note)
    return recovered, report


def _catalog_after(report: UploadReport, archive: str, steps: Steps) -> list[str]:
    """Catalog what was uploaded. The catalog is derived data (every read syncs it
    again), so a failure here is a note for the summary, not a failed run."""
    if not report.uploaded:
        return []
    try:
        steps(update_catalog, archive)
    except StorageError as exc:
        return [f"the catalog was not updated ({exc}); the next read of the archive does it"]
    return []


def _archive(lock: SpoolLock, archive: str, steps: Steps, manifest_of: tuple | None = None) -> UploadReport:
    steps(index, lock)  # this run's WARCs, and any left over from earlier runs
    if manifest_of is not None:
        steps(manifest, lock, *manifest_of)
    try:
        return steps(upload, lock, archive)
    except UploadError as exc:  # after the step's retries: the files stay in the spool
        return exc.report


# --------------------------------------------------------------------------- spool folders

def source_spool(archive: str, source: str) -> Path:
    """The spool folder of one source: `spool_dir_for(archive)/SOURCE`.

    Each source has its own spool, so runs of different sources never upload
    or delete each other's files; keys inside are archive keys.
    """
    path = spool_dir_for(archive) / layout.safe_source(source)
    path.mkdir(parents=True, exist_ok=True)
    return path


def source_spools(archive: str) -> list[Path]:
    """The spool folders of every source that has one (for `newsarchive upload`)."""
    root = spool_dir_for(archive)
    if not root.is_dir():
        return []
    return [c for c in sorted(root.iterdir())
            if c.is_dir() and not c.is_symlink() and layout.SOURCE_NAME.match(c.name) and c.name not in layout.KINDS]


@dataclass
class Leftovers:
    """What `newsarchive upload` found in the spool and did with it."""

    spool: Path
    exists: bool
    recovered: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key or source, one-line reason)


def archive_leftovers(archive: str) -> Leftovers:
    """Send what earlier runs left in every source's spool; a busy source is a failure, the others still go."""
    result = Leftovers(spool_dir_for(archive), spool_dir_for(archive).is_dir())
    for spool in source_spools(archive):
        try:
            recovered, report = archive_spool(spool, archive)
        except SourceBusy as exc:
            result.failed.append((spool.name, str(exc)))
            continue
        result.recovered += recovered
        result.uploaded += [info.key for info in report.uploaded]
        result.failed += report.failed
    return result
