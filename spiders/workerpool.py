"""The process pool that runs extraction: every core, and nothing left behind.

trafilatura runs in processes, never threads. Workers come from a forkserver,
so they never inherit the caller's threads (Twisted's reactor, Prefect's). The
forkserver itself imports nothing of ours: each worker imports the extractor
as it starts (`imports`, in parallel, before its first page). A forkserver
holding trafilatura, lxml and Scrapy kept ~55 MB resident for the whole crawl
only to save each worker a fraction of a second once (benchmarks/README.md).

A caller killed with SIGKILL cannot shut its pool down: multiprocessing's
workers would wait forever on a queue nobody feeds, and keep the forkserver
alive with them, holding memory until the machine restarts. So each worker
watches the process that started it (a pidfd, on Linux) and exits when that
process is gone.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import select
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence


def extraction_pool(workers: int | None = None, *,
                    imports: Sequence[str] = ("spiders.extraction",)) -> ProcessPoolExecutor:
    """A forkserver process pool of `workers` (default: all cores) that dies with its caller;
    each worker imports the modules `imports` as it starts."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([])
    return ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=ctx,
                               initializer=start_worker, initargs=(os.getpid(), tuple(imports)))


def start_worker(parent_pid: int, imports: Sequence[str] = ()) -> None:
    """Pool initializer: end this worker as soon as `parent_pid` has exited; import `imports`."""
    if not when_process_exits(parent_pid, lambda: os._exit(1)):
        os._exit(1)  # the caller died before this worker started
    for module in imports:
        importlib.import_module(module)


def when_process_exits(pid: int, callback: Callable[[], None]) -> bool:
    """Call `callback` from a daemon thread once process `pid` has exited.

    False when `pid` is already gone. Without pidfds (not Linux) nothing is
    watched and True is returned: the ordinary shutdown paths still apply.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):
        return True

    def watch() -> None:
        select.select([pidfd], [], [])  # readable once the process has exited
        callback()

    threading.Thread(target=watch, name=f"watch-{pid}", daemon=True).start()
    return True
