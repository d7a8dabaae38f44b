"""The crawl subprocess: `python -m spiders.crawl`, its progress events and exit codes.

Scrapy's reactor cannot restart in one process and wants the main thread, so
every crawl runs in a subprocess, from the command line and from Prefect
alike. It prints one JSON object per page and per article on stdout
(`--progress`); `run_crawl` hands each to its `on_event` callback and to the
process-wide sink set with `set_event_sink` (the command line draws its live
display from it while a Prefect flow runs in the same process). Its log
(stderr) goes to `on_log`; its last line is the reason when it fails.

The subprocess shares the run's spool lock (its descriptor is passed on) and
is started with `--stop-with-parent`, so it never outlives the run.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any, Callable

from storage import layout
from storage.errors import CrawlError
from storage.recovery import SourceBusy, SpoolLock

log = logging.getLogger("newsarchive.crawl")

Event = dict[str, Any]
EventCallback = Callable[[Event], None]

# Exit codes of `python -m spiders.crawl` (docs/ARCHITECTURE.md).
EXIT_OK, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_BUSY = 0, 2, 3, 4

PROJECT_ROOT = Path(__file__).resolve().parent.parent

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


def _deliver(event: Event, on_event: EventCallback | None) -> None:
    for callback in (on_event, _event_sink):
        if callback is not None:
            try:
                callback(event)
            except Exception:  # a broken display must not break a crawl
                log.exception("progress callback failed")


def crawl_command(source: str, sources_file: str | os.PathLike, spool: str | os.PathLike, stats_out: str, *,
                  lock_fd: int, max_pages: int | None = None, seen: str | os.PathLike | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "spiders.crawl", "--source", source, "--sources", str(sources_file),
           "--spool", str(spool), "--stats-out", stats_out, "--progress", "--stop-with-parent",
           "--lock-fd", str(lock_fd)]
    if seen is not None:
        cmd += ["--seen", str(seen)]
    if max_pages is not None:
        cmd += ["--max-pages", str(int(max_pages))]
    return cmd


def run_crawl(source: str, *, sources_file: str | os.PathLike, lock: SpoolLock, max_pages: int | None = None,
              seen: str | os.PathLike | None = None, on_event: EventCallback | None = None,
              on_log: Callable[[str], None] | None = None) -> dict:
    """Crawl `source` into the locked spool in a subprocess; return its stats dict.

    Raises CrawlError with the subprocess's one-line reason (bad input, site
    unreachable, or any other failure) and SourceBusy when another process
    holds the spool (it never does: the run holds the lock it passes on).
    """
    layout.safe_source(source)
    fd, stats_out = tempfile.mkstemp(prefix=f"crawl-{source}-", suffix=".stats.json")
    os.close(fd)
    os.unlink(stats_out)  # the crawl writes it; absent means it never got that far
    env = dict(os.environ)
    root = str(PROJECT_ROOT)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = crawl_command(source, sources_file, lock.spool, stats_out, lock_fd=lock.fd, max_pages=max_pages,
                        seen=seen)
    log.debug("running %s", " ".join(cmd))
    tail: deque[str] = deque(maxlen=40)

    def read_stderr(stream) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            if line.strip():
                tail.append(line)
                if on_log is not None:
                    on_log(line)

    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                encoding="utf-8", errors="replace", env=env, cwd=root, bufsize=1,
                                pass_fds=(lock.fd,))
        err_thread = threading.Thread(target=read_stderr, args=(proc.stderr,), daemon=True)
        err_thread.start()
        try:
            for raw in proc.stdout:
                try:
                    event = json.loads(raw)
                except ValueError:
                    if raw.strip():
                        tail.append(raw.strip())  # not a progress line; keep it for the error message
                    continue
                if isinstance(event, dict):
                    event.setdefault("source", source)
                    _deliver(event, on_event)
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err_thread.join(timeout=10)
        stats = _read_stats(stats_out)
    finally:
        Path(stats_out).unlink(missing_ok=True)

    if code == EXIT_OK and stats is not None:
        stats.setdefault("source", source)
        return stats
    last = next((line.strip() for line in reversed(tail) if line.strip()), "")
    last = last[len("error: "):] if last.lower().startswith("error: ") else last
    if code == EXIT_BUSY:
        raise SourceBusy(source, None)
    if code in (EXIT_BAD_INPUT, EXIT_UNREACHABLE):
        message = last or ("bad input" if code == EXIT_BAD_INPUT else "nothing could be fetched")
    elif code == EXIT_OK:
        message = "crawl finished without writing its stats"
    else:
        message = f"crawl process failed (exit {code})" + (f": {last}" if last else "")
    raise CrawlError(f"{source}: {message}", stats=stats)


def _read_stats(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
