"""Loopback ports without races (Linux /proc).

closed_port()            a context: a 127.0.0.1 port that stays bound, and so unused, but never listens:
                         connections to it are refused for as long as the context lasts
listening_port(proc)     the TCP port a server we started (or one of its children) listens on:
                         start servers on port 0 and ask, instead of picking a "free" port that
                         another process may take before the server binds it
listening_ports(proc)    every such port now (a server may open more than one)
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def closed_port():
    """Yield a port on 127.0.0.1 where nothing listens; held bound so no one else can listen there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _tree(pid: int) -> set[int]:
    """pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p not in found:
            found.add(p)
            todo.extend(children.get(p, []))
    return found


def _socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def _listening(inodes: set[str]) -> list[int]:
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(set(ports))


def listening_ports(proc: subprocess.Popen) -> list[int]:
    """The TCP ports `proc` and its descendants listen on, now."""
    return _listening(_socket_inodes(_tree(proc.pid)))


def listening_port(proc: subprocess.Popen, timeout: float = 120, log: Path | None = None, accept=None) -> int:
    """Wait until `proc` or a process it started listens on a TCP port (one that `accept(port)`
    approves, if given); return that port.

    Raises RuntimeError (with the end of `log`) if the process exits first or the
    generous deadline passes: a bound on waiting, not a speed target.
    """
    deadline = time.monotonic() + timeout
    while True:
        ports = [p for p in listening_ports(proc) if accept is None or accept(p)]
        if ports:
            return ports[0]
        tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}) before listening:\n{tail}")
        if time.monotonic() > deadline:
            what = "not serving on any port it listens on" if accept else "not listening"
            raise RuntimeError(f"{proc.args[0]} {what} after {timeout}s:\n{tail}")
        time.sleep(0.2)
