"""Peak memory of a crawl's whole process tree (the crawl, the forkserver, the extraction workers).

How: a thread reads /proc every 20 ms for each process in the tree (children
found through /proc/PID/task/TID/children) and keeps, per process, the
kernel's own high-water mark of its resident set (VmHWM in /proc/PID/status).
A high-water mark never misses a spike, however short, that happened before
it was read; the per-process peaks are then summed.

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


def _role(pid: int) -> str:
    """What a process of the tree is, from its command line (for the report)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
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
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            root = self.root if self.root is not None else find_crawl(os.getpid())
            if root is not None:
                total = 0
                for pid in tree(root):
                    hwm, rss = _status_kb(pid)
                    if hwm:
                        self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
                        if pid not in self.names:
                            self.names[pid] = _role(pid)
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
