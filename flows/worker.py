"""`newsarchive worker`: a Prefect process worker that stops cleanly.

    run_worker(pool, limit, name)   run `prefect worker start` until it exits or a signal comes

The process worker alone stops badly: on SIGTERM or SIGINT it SIGKILLs its
flow-run processes, which then never report a final state (they stay Running
for good, and their concurrency leases outlive them), and a wrapper that
merely forwards the signal leaves the worker orphaned if it is killed itself.
So the worker runs as our child, in its own session, killed by the kernel if
this process dies (PR_SET_PDEATHSIG: its flow runs, in sessions of their own,
then finish by themselves), and on SIGTERM, SIGINT or SIGHUP this process:

1. SIGSTOPs the worker, so it takes no new run and kills none;
2. SIGTERMs the process group of each flow run (the worker starts each run in
   its own session): Prefect's engine reports the run Crashed ("Execution was
   aborted by a termination signal"), the run's concurrency slots are released
   on the way out, and its crawl subprocess (same group) stops and closes its
   WARCs;
3. SIGKILLs what is left of those groups after RUN_GRACE seconds;
4. SIGCONTs and SIGINTs the worker, and SIGKILLs its group after WORKER_GRACE
   seconds (its first signal is sometimes lost);

then exits with 128 + the signal's number. Everything is gone within
RUN_GRACE + WORKER_GRACE seconds (25).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from flows.deploy import DEFAULT_POOL, REPO_DIR, ensure_pool, prefect_cmd, prefect_env

RUN_GRACE = 15.0
WORKER_GRACE = 10.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def worker_command(pool: str = DEFAULT_POOL, limit: int | None = None, name: str | None = None) -> list[str]:
    cmd = prefect_cmd() + ["worker", "start", "--pool", pool, "--type", "process"]
    if limit is not None:
        cmd += ["--limit", str(int(limit))]
    if name:
        cmd += ["--name", name]
    return cmd


def run_worker(pool: str = DEFAULT_POOL, limit: int | None = None, name: str | None = None) -> int:
    """Run a process worker for `pool` in the foreground; its exit code, or 128+signal
    when stopped by a signal. Flow runs start in the checkout (the deployments' pull
    step), in this Python environment; `limit` caps the runs it takes at once."""
    from flows.prefect_api import die_with_this_process, require_api

    require_api()
    ensure_pool(pool)
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _frame: received.append(signum)) for s in STOP_SIGNALS}
    try:
        worker = subprocess.Popen(worker_command(pool, limit, name), cwd=REPO_DIR, env=prefect_env(),
                                  stdin=subprocess.DEVNULL, start_new_session=True,
                                  preexec_fn=die_with_this_process(signal.SIGKILL))
        while not received:
            try:
                return worker.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
        for s in STOP_SIGNALS:  # one orderly stop; it ends within RUN_GRACE + WORKER_GRACE
            signal.signal(s, signal.SIG_IGN)
        stop(worker, received[0])
        return 128 + received[0]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def stop(worker: subprocess.Popen, signum: int) -> None:
    """Stop the worker and its flow runs (steps 1-4 of the module docstring)."""
    def say(message: str) -> None:
        print(f"newsarchive worker: {message}", file=sys.stderr, flush=True)

    try:
        os.kill(worker.pid, signal.SIGSTOP)
    except ProcessLookupError:
        pass
    groups = flow_run_groups(worker.pid)
    say(f"{signal.Signals(signum).name}: stopping {len(groups)} flow run(s), then the worker")
    for group in groups:
        _killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + RUN_GRACE
    while any(group_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.2)
    for group in groups:
        if group_alive(group):
            say(f"flow run process group {group} still running after {RUN_GRACE:g} s: killing it")
            _killpg(group, signal.SIGKILL)
    try:
        os.kill(worker.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
    _killpg(worker.pid, signal.SIGINT)
    try:
        worker.wait(WORKER_GRACE)
    except subprocess.TimeoutExpired:
        _killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    say("stopped")


def _killpg(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stat(pid: str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, ...]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def flow_run_groups(worker_pid: int) -> set[int]:
    """Process groups of the worker's live children other than its own group: its flow runs."""
    groups = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields and fields[0] != "Z" and int(fields[1]) == worker_pid:
                groups.add(int(fields[2]))
    groups.discard(worker_pid)  # the worker leads its own group (start_new_session)
    return groups


def group_alive(group: int) -> bool:
    """Has the group a member that is not a zombie? (a zombie leader keeps killpg(g, 0) working)"""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields and fields[0] != "Z" and int(fields[2]) == group:
                return True
    return False
