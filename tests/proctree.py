"""Processes as a test sees them (Linux /proc): trees, groups, tagged environments.

Shared by the Prefect tests (no tests of its own). Every process a test starts
gets TAG_VAR=<its tag> in its environment, and children inherit it, so
`kill_tagged` finds them all at teardown, orphans included (a killed worker's
flow runs are re-parented to init), without killing anyone else's.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

TAG_VAR = "NEWSARCHIVE_TEST_TAG"


def _stat(pid: int) -> list[str] | None:
    """Fields after the command name: [state, ppid, pgrp, session, ...]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def alive(pid: int) -> bool:
    """Running, not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> list[int]:
    return [p for p in _pids() if (f := _stat(p)) and f[0] != "Z" and int(f[1]) == pid]


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children, ...)."""
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


def tagged(tag: str) -> list[int]:
    """Live processes whose environment carries TAG_VAR=tag."""
    want = f"{TAG_VAR}={tag}".encode()
    found = []
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if want in env and alive(pid):
            found.append(pid)
    return found


def kill_tagged(tag: str, grace: float = 10) -> None:
    """SIGTERM every tagged process (and its group), SIGKILL what is left after `grace` s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = tagged(tag)
        if not pids:
            return
        for pid in pids:
            try:
                fields = _stat(pid)
                if fields and int(fields[2]) == pid:  # a group leader: its whole group
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace
        while tagged(tag) and time.monotonic() < deadline:
            time.sleep(0.2)


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until none of `pids` is alive (or the deadline); the ones still alive."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)
