"""One crawl of one source, step by step, without Prefect.

The data flow (docs/ARCHITECTURE.md):

    recover        make final what a crawl killed earlier left (`.open` files:
                   whole records and pairs kept, torn tails cut; storage/recovery.py)
    export_seen    the archive's catalog (synced) -> SPOOL/.seen.jsonl, the latest
                   capture per URL of the source: what makes the crawl incremental
                   on any machine (no archive or catalog yet: a full crawl)
    run_crawl      the crawl subprocess (`python -m spiders.crawl`): fetch, and
                   extraction inside it (the spider's item pipeline sends every
                   article to a process pool), into the source's spool folder
    index_spool    a CDXJ index beside every finished WARC that lacks one
    write_manifest the run manifest (runs/SOURCE/Y/M/D/RUN_ID.json)
    upload         finished files -> archive, verified, then removed from the spool
                   (leftovers of earlier runs go too)
    update_catalog the archive's catalog ingests the new indexes
    summarize      pages, articles, bytes, errors by kind, files and archive keys

`run_source` chains them; `flows/crawl.py` wraps each step in a Prefect task.

The spool lock (storage/recovery.py, SPOOL/.lock): run_source holds it for the
whole run and hands it to the crawl subprocess, which keeps it while it lives;
run_crawl, index_spool and upload take it too when called alone (the Prefect
tasks), and index_spool recovers the spool before indexing. A second run of the
same source on this machine gets SourceBusy, one line naming the holder's pid.
Nothing here imports Prefect, so the CLI and tests can run a crawl directly.

Progress: the crawl subprocess prints one JSON object per page/article on
stdout; `run_crawl` passes each to its `on_event` callback and to the
process-wide sink set with `set_event_sink` (the CLI draws its progress display
from it while a Prefect flow runs in the same process).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from storage import layout

log = logging.getLogger("newsarchive.pipeline")

Event = dict[str, Any]
EventCallback = Callable[[Event], None]

# Exit codes of `python -m spiders.crawl` (docs/ARCHITECTURE.md).
EXIT_OK, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_BUSY = 0, 2, 3, 4


class CrawlError(Exception):
    """The crawl subprocess failed; str() is its one-line reason."""

    def __init__(self, message: str, *, source: str | None = None, exit_code: int | None = None,
                 stats: dict | None = None):
        super().__init__(message)
        self.source = source
        self.exit_code = exit_code
        self.stats = stats


class SourceBusy(CrawlError):
    """Another process is crawling this source into the same spool (it holds the spool lock)."""


class UploadError(Exception):
    """Some finished files could not be uploaded; they stay in the spool."""


class CrawlFailed(Exception):
    """The crawl ran but mostly failed (nothing fetched, or more errors than pages)."""


# --------------------------------------------------------------------------- events

_sink_lock = threading.Lock()
_event_sink: EventCallback | None = None


def set_event_sink(callback: EventCallback | None) -> EventCallback | None:
    """Send every crawl progress event in this process to `callback` (None: stop).

    Returns the previous sink so callers can restore it. The sink is called from
    the thread reading the crawl's output; it must be thread-safe and quick.
    """
    global _event_sink
    with _sink_lock:
        previous, _event_sink = _event_sink, callback
    return previous


def emit(event: Event) -> None:
    """Deliver one event to the process-wide sink (errors in the sink are logged, not raised)."""
    sink = _event_sink
    if sink is not None:
        try:
            sink(event)
        except Exception:  # a broken display must not break a crawl
            log.exception("progress sink failed")


# --------------------------------------------------------------------------- locations

def default_archive() -> str:
    return os.environ.get("NEWSARCHIVE_ARCHIVE") or "./archive"


def default_sources_file() -> str:
    from spiders.sources import default_sources_path

    return str(default_sources_path())


def source_spool(archive: str, source: str) -> Path:
    """The spool folder of one source: `spool_dir_for(archive)/SOURCE`.

    Each source has its own spool, so runs of different sources never upload
    or delete each other's files; runs of the same source never overlap (the
    flows hold a per-source concurrency limit). Keys inside are archive keys.
    """
    from storage.spool import spool_dir_for

    path = Path(spool_dir_for(archive)) / layout.safe_source(source)
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- crawl

def _crawl_command(source: str, sources_file: str | os.PathLike, spool: str | os.PathLike,
                   stats_out: str, max_pages: int | None, lock_fd: int | None = None,
                   seen: str | os.PathLike | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "spiders.crawl", "--source", source, "--sources", str(sources_file),
           "--spool", str(spool), "--stats-out", stats_out, "--progress", "--stop-with-parent"]
    if seen is not None:
        cmd += ["--seen", str(seen)]
    if lock_fd is not None:
        cmd += ["--lock-fd", str(lock_fd)]
    if max_pages is not None:
        cmd += ["--max-pages", str(int(max_pages))]
    return cmd


def lock_spool(spool: str | os.PathLike, source: str | None = None):
    """Take the spool lock (re-entrant in this thread); SourceBusy if another process holds it.

    Use as a context manager; `.fd` can be handed to a crawl subprocess.
    """
    from storage.recovery import SpoolBusy, SpoolLock

    lock = SpoolLock(spool, source)
    try:
        return lock.acquire()
    except SpoolBusy as exc:
        raise SourceBusy(str(exc), source=exc.source, exit_code=4) from None


def recover(spool: str | os.PathLike, source: str | None = None):
    """Make final the `.open` files a dead crawl left (storage.recovery.recover_spool).

    Returns the RecoveryReport; raises SourceBusy while a live crawl holds the spool.
    """
    from storage.recovery import recover_spool

    with lock_spool(spool, source):
        return recover_spool(spool, source=source)


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def run_crawl(source_name: str, *, sources_file: str | os.PathLike, spool: str | os.PathLike,
              max_pages: int | None = None, on_event: EventCallback | None = None,
              on_log: Callable[[str], None] | None = None, timeout: float | None = None,
              lock: Any = None, seen: str | os.PathLike | None = None) -> dict:
    """Crawl one source into `spool` in a subprocess; return its stats dict.

    Fetching and extraction both happen inside the subprocess (Scrapy's
    reactor cannot restart in one process and wants the main thread). Each
    `--progress` line is parsed and passed to `on_event` and the event sink,
    tagged with `"source"`; stderr lines (the crawl's log) go to `on_log`.
    Raises CrawlError with the subprocess's one-line message for bad input
    (exit 2) or an unreachable site (exit 3), and for any other failure;
    SourceBusy when another process holds the spool lock. The subprocess gets
    the spool lock's descriptor (`lock`, or one taken here) and shares it.
    `seen` is the file `export_seen` wrote (None: a full crawl).
    """
    layout.safe_source(source_name)
    spool = Path(spool)
    spool.mkdir(parents=True, exist_ok=True)
    fd, stats_out = tempfile.mkstemp(prefix=f"crawl-{source_name}-", suffix=".stats.json")
    os.close(fd)
    os.unlink(stats_out)  # the crawl writes it; absent means it never got that far
    env = dict(os.environ)
    root = str(_project_root())
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    own_lock = None
    if lock is None:
        try:
            lock = own_lock = lock_spool(spool, source_name)
        except BaseException:
            Path(stats_out).unlink(missing_ok=True)
            raise
    cmd = _crawl_command(source_name, sources_file, spool, stats_out, max_pages, lock.fd, seen)
    log.debug("running %s", " ".join(cmd))
    tail: deque[str] = deque(maxlen=40)

    def read_stderr(stream) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            tail.append(line)
            if on_log is not None:
                try:
                    on_log(line)
                except Exception:
                    pass

    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                encoding="utf-8", errors="replace", env=env, cwd=root, bufsize=1,
                                pass_fds=(lock.fd,))
        err_thread = threading.Thread(target=read_stderr, args=(proc.stderr,), daemon=True)
        err_thread.start()
        timer = None
        if timeout is not None:
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
        try:
            for raw in proc.stdout:
                line = raw.strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    tail.append(line)  # not a progress line; keep it for the error message
                    continue
                if not isinstance(event, dict):
                    continue
                event.setdefault("source", source_name)
                if on_event is not None:
                    try:
                        on_event(event)
                    except Exception:
                        log.exception("on_event callback failed")
                emit(event)
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        err_thread.join(timeout=10)
        stats = _read_stats(stats_out)
    finally:
        Path(stats_out).unlink(missing_ok=True)
        if own_lock is not None:
            own_lock.release()

    if code == EXIT_OK and stats is not None:
        stats.setdefault("source", source_name)
        return stats
    last = next((l.strip() for l in reversed(tail) if l.strip()), "")
    if last.lower().startswith("error: "):
        last = last[len("error: "):]
    if code == EXIT_BUSY:
        raise SourceBusy(last or f"source {source_name} is being crawled by another process",
                         source=source_name, exit_code=code)
    if code in (EXIT_BAD_INPUT, EXIT_UNREACHABLE):
        message = last or ("bad input" if code == EXIT_BAD_INPUT else "nothing could be fetched")
    elif code == EXIT_OK:
        message = "crawl finished without writing its stats"
    else:
        message = f"crawl process failed (exit {code})" + (f": {last}" if last else "")
    raise CrawlError(f"{source_name}: {message}", source=source_name, exit_code=code, stats=stats)


SEEN_NAME = ".seen.jsonl"  # a dot file: never uploaded


def export_seen(archive: str, source: str, spool: str | os.PathLike) -> Path | None:
    """Write the archive's latest capture per URL of `source` (from its catalog,
    synced first) to SPOOL/.seen.jsonl for the crawl's `--seen`; return the path.

    None when there is nothing to read yet (no archive folder) or the catalog
    cannot be read (logged): the crawl is then a full one, never a failed one.
    """
    from spiders.seen import write_seen
    from storage.archive import open_archive

    path = Path(spool) / SEEN_NAME
    path.unlink(missing_ok=True)  # never a stale state from an earlier run
    if "://" not in archive and not Path(archive).is_dir():
        return None
    try:
        catalog = open_archive(archive).catalog
        n = write_seen(catalog.latest_per_url(layout.safe_source(source)), path)
    except Exception as exc:  # a crawl must not fail for want of its dedupe state
        log.warning("%s: cannot read what the archive holds (crawling everything): %s", source, exc)
        path.unlink(missing_ok=True)
        return None
    log.info("%s: %d URLs already archived", source, n)
    return path


def _read_stats(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------- index / manifest

def _finished_files(spool: Path, top: str) -> Iterable[tuple[Path, str]]:
    base = spool / top
    if not base.is_dir():
        return
    for path in sorted(base.rglob("*")):
        if path.is_file() and not path.name.endswith(layout.OPEN_SUFFIX) and not path.name.startswith("."):
            yield path, path.relative_to(spool).as_posix()


def index_spool(spool: str | os.PathLike) -> list[str]:
    """Write a CDXJ index for each finished WARC in the spool that has none yet.

    First, under the spool lock (SourceBusy while a crawl is writing), the
    `.open` files of a crawl that died are recovered (see `recover`; logged).
    Returns the index keys written. A WARC that cannot be indexed is logged
    and left for the next run (it is still uploaded, and `newsarchive reindex`
    can index it later).
    """
    with lock_spool(spool):
        recover(spool)
        return _index_finished(Path(spool))


def _index_finished(spool: Path) -> list[str]:
    from storage.cdxj import write_index

    written: list[str] = []
    for path, key in _finished_files(spool, "warc"):
        if not key.endswith(".warc.gz"):
            continue
        try:
            index_key = layout.index_key(key)
        except layout.UnsafeKeyError:
            log.warning("not indexing %s: not an archive WARC key", key)
            continue
        if (spool / index_key).exists():
            continue
        try:
            write_index(path, key, spool)
        except Exception as exc:  # a damaged WARC must not stop the others
            log.warning("could not index %s: %s", key, exc)
            continue
        written.append(index_key)
    return written


def write_manifest(spool: str | os.PathLike, stats: Mapping[str, Any], *, source: str,
                   run_id: str | None = None) -> str:
    """Write the run manifest (every file of the run with size and sha256, and
    the stats) into the spool; return its key (runs/SOURCE/Y/M/D/RUN_ID.json)."""
    from storage.manifest import build_manifest

    spool = Path(spool)
    run_id = layout.safe_part(run_id or uuid.uuid4().hex)
    now = datetime.now(timezone.utc)
    keys = set()
    for key in stats.get("files") or []:
        keys.add(key)
        if key.startswith("warc/") and key.endswith(".warc.gz"):
            try:
                keys.add(layout.index_key(key))
            except layout.UnsafeKeyError:
                pass
    present = sorted(k for k in keys if (spool / k).is_file())
    manifest = build_manifest(run_id, source, stats.get("started") or now, stats.get("finished") or now,
                              dict(stats), present, spool)
    return manifest["key"]


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# --------------------------------------------------------------------------- upload / catalog

def upload(spool: str | os.PathLike, archive: str):
    """Upload every finished file of the spool (this run's and leftovers) to the archive.

    Returns storage.spool's UploadReport. Raises UploadError (files stay in the
    spool) when any file failed, so a retry or the next run sends them again.
    """
    from storage.backends import open_backend
    from storage.spool import upload_spool

    with lock_spool(spool):  # never while a crawl writes into it
        report = upload_spool(Path(spool), open_backend(archive))
    failed = _report_failures(report)
    if failed:
        first = failed[0]
        raise UploadError(f"upload to {archive} failed for {len(failed)} file(s), kept in the spool {spool}: {first}")
    return report


def update_catalog(archive: str) -> Any:
    """Let the archive's catalog ingest the indexes it has not seen yet.

    Returns the catalog's sync report, or None when a folder archive does not
    exist yet (nothing was ever uploaded to it)."""
    from storage.archive import open_archive

    if "://" not in archive and not Path(archive).is_dir():
        return None
    return open_archive(archive, sync=False).sync()


def _report_list(report: Any, *names: str) -> list:
    for name in names:
        value = report.get(name) if isinstance(report, Mapping) else getattr(report, name, None)
        if value is not None:
            return list(value)
    return []


def _report_failures(report: Any) -> list[str]:
    items = _report_list(report, "failed", "errors")
    out = []
    for item in items:
        if isinstance(item, (tuple, list)) and len(item) == 2:
            out.append(f"{item[0]}: {item[1]}")
        elif isinstance(item, Mapping):
            out.append(f"{item.get('key', '?')}: {item.get('message') or item.get('error', '')}")
        else:
            out.append(str(item))
    return out


def _report_uploaded(report: Any) -> list[str]:
    keys = _report_list(report, "uploaded") + _report_list(report, "existing", "already", "skipped")
    return sorted({k if isinstance(k, str) else getattr(k, "key", str(k)) for k in keys})


def archive_ref(archive: str, key: str) -> str:
    """Where a key lives: the file path of a folder archive, or s3://bucket/prefix/key."""
    if archive.startswith("s3://"):
        return archive.rstrip("/") + "/" + key
    return str(Path(archive).resolve() / key)


# --------------------------------------------------------------------------- verdict / summary

def error_total(stats: Mapping[str, Any]) -> int:
    return sum(int(v) for v in (stats.get("errors") or {}).values())


def pages_ok(stats: Mapping[str, Any]) -> int:
    counts = stats.get("status_counts")
    if isinstance(counts, Mapping) and counts:
        return sum(int(n) for code, n in counts.items() if str(code)[:1] in ("2", "3"))
    return int(stats.get("pages") or 0)


def assess(stats: Mapping[str, Any]) -> str | None:
    """None when the crawl is acceptable, else a one-line reason it mostly failed.

    Dead links (4xx) are the site's own and are archived like any page; a run
    fails when the site could not be fetched: network errors and 5xx answers
    outnumbering the pages that came back.
    """
    from spiders.kinds import REFUSALS  # requests the crawl refused to make: no failed fetches

    source = stats.get("source", "crawl")
    errors = stats.get("errors") or {}
    failures = sum(int(n) for kind, n in errors.items() if not kind.startswith("http-4") and kind not in REFUSALS)
    ok = pages_ok(stats)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(errors.items()))
    if int(stats.get("pages") or 0) == 0 or ok == 0:
        return f"{source}: no page fetched" + (f" ({kinds})" if kinds else "")
    if failures > ok:
        return f"{source}: crawl mostly failed: {failures} failed fetches against {ok} pages fetched ({kinds})"
    return None


def summarize(stats: Mapping[str, Any] | None, report: Any = None, *, archive: str | None = None,
              failure: str | None = None, recovered: Any = None) -> dict:
    """A run summary: counts, errors by kind, every file with its archive key, and markdown."""
    stats = dict(stats or {})
    uploaded = set(_report_uploaded(report)) if report is not None else set()
    written = set(stats.get("files") or [])
    files = []
    for key in sorted(written | uploaded):
        entry = {"key": key, "archived": key in uploaded, "this_run": key in written}
        entry["archive_key"] = archive_ref(archive, key) if (archive and key in uploaded) else None
        files.append(entry)
    summary = {
        "source": stats.get("source"),
        "started": stats.get("started"),
        "finished": stats.get("finished"),
        "pages": int(stats.get("pages") or 0),
        "articles": int(stats.get("articles") or 0),
        "bytes": int(stats.get("bytes") or 0),
        "errors": dict(sorted((stats.get("errors") or {}).items())),
        "error_total": error_total(stats),
        "error_samples": list(stats.get("error_samples") or [])[:10],
        "status_counts": dict(stats.get("status_counts") or {}),
        "skipped_seen": int(stats.get("skipped_seen") or 0),
        "revisits": int(stats.get("revisits") or 0),
        "files": files,
        "archive": archive,
        "failed": _report_failures(report) if report is not None else [],
        "verdict": failure if failure is not None else (assess(stats) if stats else None),
        # WARCs salvaged from crawls that were killed (this run's or an earlier one's)
        "recovered": _recovered_keys(recovered if recovered is not None else stats.get("recovered")),
    }
    summary["markdown"] = summary_markdown(summary)
    return summary


def _recovered_keys(recovered: Any) -> list[str]:
    if not recovered:
        return []
    if hasattr(recovered, "keys") and not isinstance(recovered, Mapping):
        return list(recovered.keys)  # a RecoveryReport
    if isinstance(recovered, Mapping):
        recovered = recovered.get("salvaged") or []
    return [r["key"] if isinstance(r, Mapping) else str(r) for r in recovered]


def summary_table(summary: Mapping[str, Any]) -> list[dict]:
    """Rows for a table artifact: one per file written or archived, with its archive key."""
    rows = []
    for f in summary["files"]:
        rows.append({"file": f["key"], "kind": _kind(f["key"]), "archive_key": f["archive_key"] or "(not archived)"})
    return rows


def _kind(key: str) -> str:
    try:
        return layout.kind_of(key)
    except Exception:
        return key.split("/", 1)[0]


def summary_markdown(summary: Mapping[str, Any]) -> str:
    src = summary.get("source") or "?"
    lines = [f"# Crawl of `{src}`", ""]
    if summary.get("verdict"):
        lines += [f"**Failed:** {summary['verdict']}", ""]
    lines += [
        "| pages | articles | bytes | errors |",
        "|---:|---:|---:|---:|",
        f"| {summary['pages']} | {summary['articles']} | {summary['bytes']} | {summary['error_total']} |",
        "",
    ]
    if summary.get("skipped_seen") or summary.get("revisits"):
        lines += [f"Incremental: {summary.get('skipped_seen', 0)} archived articles skipped (not due for a "
                  f"re-check), {summary.get('revisits', 0)} unchanged pages archived as revisits.", ""]
    if summary["errors"]:
        lines += ["## Errors by kind", "", "| kind | count |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in summary["errors"].items()]
        lines.append("")
        samples = summary.get("error_samples") or []
        if samples:
            lines += ["Samples:", ""]
            for s in samples[:5]:
                lines.append(f"- `{s.get('kind')}` {s.get('url')}: {s.get('message')}")
            lines.append("")
    files = summary["files"]
    lines += [f"## Files ({len(files)})", "", "| file | kind | archive key |", "|---|---|---|"]
    for f in files:
        lines.append(f"| `{f['key']}` | {_kind(f['key'])} | {f['archive_key'] or '(not archived)'} |")
    if summary.get("recovered"):
        lines += ["", f"## Recovered from a killed crawl ({len(summary['recovered'])})", ""]
        lines += [f"- `{k}`" for k in summary["recovered"]]
    if summary.get("failed"):
        lines += ["", "## Upload failures", ""] + [f"- {m}" for m in summary["failed"]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- whole run

def run_source(source_name: str, *, sources_file: str | os.PathLike | None = None, archive: str | None = None,
               max_pages: int | None = None, on_event: EventCallback | None = None,
               run_id: str | None = None, spool: str | os.PathLike | None = None) -> dict:
    """The whole data flow of one crawl, without Prefect; returns the summary.

    Files already in the spool (an earlier run that could not upload) are
    indexed and uploaded too; `.open` files of a crawl that was killed (an
    earlier one, or this run's own) are recovered first and listed in the
    summary and manifest stats as "recovered". The spool lock is held
    throughout (shared with the crawl subprocess). Raises SourceBusy (another
    process crawls this source; nothing touched), CrawlError (crawl could not
    run; leftovers are still uploaded first), UploadError (files stay in the
    spool) or CrawlFailed (the crawl mostly failed; what it fetched is archived).
    """
    archive = archive or default_archive()
    sources_file = str(sources_file or default_sources_file())
    spool = Path(spool) if spool is not None else source_spool(archive, source_name)
    crawl_error: CrawlError | None = None
    stats: dict | None = None
    with lock_spool(spool, source_name) as lock:
        recovered = recover(spool, source_name)  # a crawl killed earlier
        seen = export_seen(archive, source_name, spool)
        try:
            stats = run_crawl(source_name, sources_file=sources_file, spool=spool, max_pages=max_pages,
                              on_event=on_event, lock=lock, seen=seen)
        except CrawlError as exc:
            crawl_error = exc
        recovered.extend(recover(spool, source_name))  # this crawl, if it was killed
        index_spool(spool)
        if stats is not None:
            if recovered:
                stats["recovered"] = recovered.as_dict()["salvaged"]
            write_manifest(spool, stats, source=source_name, run_id=run_id)
        report = upload(spool, archive)
    update_catalog(archive)
    if crawl_error is not None:
        crawl_error.summary = summarize(stats or {"source": source_name}, report,  # type: ignore[attr-defined]
                                        archive=archive, failure=str(crawl_error), recovered=recovered)
        raise crawl_error
    summary = summarize(stats, report, archive=archive, recovered=recovered)
    if summary["verdict"]:
        err = CrawlFailed(summary["verdict"])
        err.summary = summary  # type: ignore[attr-defined]
        raise err
    return summary
