"""Extraction processes never outlive the crawl that started them, even after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Start a pool, run a job in every worker so all are alive, print the pids of
# the pool's processes (forkserver and workers), then wait to be killed. The
# jobs meet: each waits until both workers have one (a folder of pid files), so
# both workers are surely running, however the machine schedules them.
CALLER = """
import os, sys, time
from pathlib import Path
from spiders.workerpool import extraction_pool

def pid(meeting):
    Path(meeting, str(os.getpid())).touch()
    deadline = time.monotonic() + 120  # a bound on waiting, not a speed target
    while len(os.listdir(meeting)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.getpid()

if __name__ == "__main__":
    pool = extraction_pool(2)
    workers = set(pool.map(pid, [sys.argv[1]] * 2))
    print(" ".join(map(str, sorted(workers))), flush=True)
    sys.stdin.read()
"""


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkilled_caller_leaves_no_extraction_processes(tmp_path):
    script = tmp_path / "caller.py"
    script.write_text(CALLER)
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    caller = subprocess.Popen([sys.executable, str(script), str(meeting)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        workers = {int(p) for p in caller.stdout.readline().split()}
        forkservers = children_of(caller.pid)
        assert len(workers) == 2 and forkservers, "the pool did not start both workers"
        assert all(alive(p) for p in workers | forkservers)
        caller.send_signal(signal.SIGKILL)
        caller.wait()
        deadline = time.monotonic() + 120  # a bound on waiting, not a speed target
        while any(alive(p) for p in workers | forkservers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [p for p in workers | forkservers if alive(p)]
        assert not left, f"extraction processes outlived their caller: {left}"
    finally:
        if caller.poll() is None:
            caller.kill()
