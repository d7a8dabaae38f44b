"""Peak memory of a crawl's whole process tree (the crawl, the forkserver, the extraction workers).

How: a thread reads /proc every 20 ms for each process in the tree (children
found through /proc/PID/task/TID/children) and keeps, per process, the
kernel's own high-water mark of its resident set (VmHWM in /proc/PID/status).
A high-water mark never misses a spike, however short, that happened before
it was read (only a process's last 20 ms can escape); the per-process peaks
are then summed. A child caught between fork and exec (the forkserver, the
resource tracker, a helper command being started) is a copy of the crawl
sharing all its pages: not counted until it runs a program of its own.

`peak_mb` (that sum) is an upper bound of the tree's real peak: the processes
need not peak at the same moment, and pages shared copy-on-write between the
forkserver and its workers are counted in each. It is what the tests assert
(under 768 MB), so a pass is a pass for certain. `rss_peak_mb` is the largest
sum of resident sets seen at one sampling instant: a lower bound. A memory
cgroup's max_usage_in_bytes would be the exact tree peak, but it also counts
the page cache of every WARC the crawl writes, and needs root and cgroup v1.

(wait4's ru_maxrss is no help: under gVisor it reports the largest child the
caller ever waited for, not this one.)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

MB = 1024 * 1024


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            kids += [int(k) for k in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except (OSError, ValueError):
            pass
    return kids


def tree(root: int) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(_children(pid))
    return out


def _status_kb(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) in kB; (0, 0) for a process gone."""
    hwm = rss = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return hwm, rss


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _role(cmdline: bytes) -> str:
    """What a process of the tree is, from its command line (for the report)."""
    cmd = cmdline.replace(b"\0", b" ").decode(errors="replace")
    for marker, role in (("spiders.crawl", "crawl"), ("forkserver", "forkserver"),
                         ("resource_tracker", "resource-tracker")):
        if marker in cmd:
            return role
    return "worker" if "multiprocessing" in cmd else cmd[:40]


def find_crawl(parent: int) -> int | None:
    """The `python -m spiders.crawl` process among the descendants of `parent`."""
    for pid in tree(parent)[1:]:
        try:
            if b"spiders.crawl" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


class TreeMemory(threading.Thread):
    """Sample the tree under `root` (a pid), or under the crawl started by this process."""

    def __init__(self, root: int | None = None, interval: float = 0.02):
        super().__init__(daemon=True, name="tree-memory")
        self.root = root
        self.interval = interval
        self.hwm_kb: dict[int, int] = {}
        self.rss_peak_kb = 0
        self.samples = 0
        self.names: dict[int, str] = {}
        self.cmds: dict[int, bytes] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            root = self.root if self.root is not None else find_crawl(os.getpid())
            if root is not None:
                total = 0
                root_cmd = _cmdline(root)
                for pid in tree(root):
                    hwm, rss = _status_kb(pid)
                    if not hwm:
                        continue
                    cmd = _cmdline(pid)
                    if pid != root and cmd == root_cmd:
                        continue  # a fork of the crawl before its exec: the crawl's own pages, shared
                    if self.cmds.get(pid) != cmd:
                        # new, or it has exec'd since: a child seen between fork and exec is a
                        # copy of its parent sharing every page, its VmHWM is the parent's
                        self.cmds[pid], self.hwm_kb[pid], self.names[pid] = cmd, hwm, _role(cmd)
                    else:
                        self.hwm_kb[pid] = max(self.hwm_kb[pid], hwm)
                    total += rss
                self.rss_peak_kb = max(self.rss_peak_kb, total)
                self.samples += 1
            self._done.wait(self.interval)

    def finish(self) -> dict:
        self._done.set()
        self.join(timeout=10)
        return self.report()

    def report(self) -> dict:
        main = self.root if self.root is not None else min(self.hwm_kb, default=None)
        return {"peak_mb": round(sum(self.hwm_kb.values()) / 1024, 1),
                "rss_peak_mb": round(self.rss_peak_kb / 1024, 1),
                "main_mb": round(self.hwm_kb.get(main, 0) / 1024, 1),
                "others_mb": sorted(((round(v / 1024, 1), self.names.get(k, "?")) for k, v in self.hwm_kb.items()
                                     if k != main), reverse=True),
                "processes": len(self.hwm_kb), "samples": self.samples}
