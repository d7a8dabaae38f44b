"""The process pool that runs extraction: every core, and nothing left behind.

trafilatura runs in processes, never threads. Workers come from a forkserver,
so they never inherit the caller's threads (Twisted's reactor, Prefect's), and
the forkserver imports the extractor once so each worker starts ready.

A caller killed with SIGKILL cannot shut its pool down: multiprocessing's
workers would wait forever on a queue nobody feeds, and keep the forkserver
alive with them, holding memory until the machine restarts. So each worker
watches the process that started it (a pidfd, on Linux) and exits when that
process is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence


def extraction_pool(workers: int | None = None, *,
                    preload: Sequence[str] = ("spiders.extraction",)) -> ProcessPoolExecutor:
    """A forkserver process pool of `workers` (default: all cores) that dies with its caller."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    return ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=ctx,
                               initializer=exit_with_parent, initargs=(os.getpid(),))


def exit_with_parent(parent_pid: int) -> None:
    """Pool initializer: end this worker as soon as `parent_pid` has exited."""
    if not when_process_exits(parent_pid, lambda: os._exit(1)):
        os._exit(1)  # the caller died before this worker started


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
