"""Machines for the scale-out test: network namespaces and a PostgreSQL cluster.

Shared by tests/test_prefect_scaleout.py (no tests of its own). Needs root, `ip`
(iproute2) and Debian's postgresql 15 (`make setup` installs it).

    Namespaces(tag)      na-srv-TAG with a bridge (10.77.0.1/24) and one veth pair per
                         worker namespace na-wN-TAG (10.77.0.1N); nothing in the host
                         namespace, so the host's own addresses are unreachable from them
    PostgresCluster      a throw-away cluster run as the postgres user, on 127.0.0.1 of
                         the namespace it is started in
    ns_http(ns, url)     a JSON HTTP request made from inside a namespace (the test process
                         itself lives in the host namespace, where 10.77.0.1 is not srv)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SRV_ADDR = "10.77.0.1"
WORKER_ADDR = {"w1": "10.77.0.11", "w2": "10.77.0.12"}


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class Namespaces:
    def __init__(self, tag: str):
        self.srv = f"na-srv-{tag}"
        self.workers = {w: f"na-{w}-{tag}" for w in WORKER_ADDR}
        self.created: list[str] = []

    @property
    def all(self) -> list[str]:
        return [self.srv, *self.workers.values()]

    def up(self) -> "Namespaces":
        for ns in self.all:
            _ip("netns", "add", ns)
            self.created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")  # servers a process starts on 127.0.0.1 inside it
        _ip("-n", self.srv, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.srv, "addr", "add", f"{SRV_ADDR}/24", "dev", "br0")
        _ip("-n", self.srv, "link", "set", "br0", "up")
        for name, ns in self.workers.items():
            _ip("-n", self.srv, "link", "add", f"veth-{name}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", self.srv, "link", "set", f"veth-{name}", "master", "br0")
            _ip("-n", self.srv, "link", "set", f"veth-{name}", "up")
            _ip("-n", ns, "addr", "add", f"{WORKER_ADDR[name]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        return self

    def pids(self, ns: str) -> list[int]:
        done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30)
        return [int(p) for p in done.stdout.split() if p.isdigit()]

    def down(self) -> None:
        """Kill whatever still runs in them, then delete them (veths and bridge go with them)."""
        import os
        import signal

        for ns in self.created:
            for pid in self.pids(ns):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.created.clear()

    @staticmethod
    def exec(ns: str, cmd: list) -> list[str]:
        return ["ip", "netns", "exec", ns, *map(str, cmd)]


class PostgresCluster:
    """initdb + pg_ctl as the postgres user (initdb refuses root); a role and database `prefect`."""

    def __init__(self, prefix: list[str], port: int = 5432):
        self.prefix = prefix  # e.g. ["ip", "netns", "exec", NS]: where it listens on 127.0.0.1
        self.port = port
        # every parent folder must be traversable by postgres: not pytest's 0700 tmp folders
        self.root = Path(tempfile.mkdtemp(prefix="na-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.started = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://prefect:prefect@127.0.0.1:{self.port}/prefect"

    def _as_postgres(self, *cmd) -> None:
        done = subprocess.run([*self.prefix, "runuser", "-u", "postgres", "--", *map(str, cmd)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))}: {done.stdout}{done.stderr}")

    def start(self) -> "PostgresCluster":
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL 15 is not installed ({PG_BIN}): `make setup` installs Debian's "
                               f"postgresql package")
        shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        self._as_postgres(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                          "--locale=C.UTF-8")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.root / "postgres.log", "-w", "-t", "60",
                          "-o", options, "start")
        self.started = True
        self._as_postgres(PG_BIN / "psql", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", "-v",
                          "ON_ERROR_STOP=1", "-q", "-c", "CREATE ROLE prefect LOGIN PASSWORD 'prefect'",
                          "-c", "CREATE DATABASE prefect OWNER prefect")
        return self

    def log(self) -> str:
        try:
            return (self.root / "postgres.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        try:
            if self.started:
                self.started = False
                self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


_HTTP = """
import json, sys, urllib.request
url, body = sys.argv[1], sys.argv[2]
req = urllib.request.Request(url, data=None if body == "null" else body.encode(),
                             headers={"Content-Type": "application/json"}, method="GET" if body == "null" else "POST")
try:
    with urllib.request.urlopen(req, timeout=20) as resp:
        data = resp.read()
    try:
        print(json.dumps({"status": resp.status, "body": json.loads(data or b"null")}))
    except ValueError:
        print(json.dumps({"status": resp.status, "text": data.decode("utf-8", "replace")}))
except Exception as exc:
    print(json.dumps({"status": None, "error": f"{type(exc).__name__}: {exc}"}))
"""


def ns_http(ns: str, url: str, body=None) -> dict:
    """{"status", "body" (JSON) or "text"} (or {"status": None, "error"}) of GET url (POST with a
    JSON body), made from inside `ns`."""
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _HTTP, url, json.dumps(body)],
                          capture_output=True, text=True, timeout=60)
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {"status": None, "error": done.stderr.strip()[-500:]}
