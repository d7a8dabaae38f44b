"""Prefect fixtures (a pytest plugin, loaded by conftest.py).

prefect_harness   session: prefect_test_harness (a temporary server and database) for flow tests
prefect_server    session: a real `prefect server start` on 127.0.0.1 with a temporary SQLite
                  database and PREFECT_HOME, its scheduler fast (SCHEDULER_SETTINGS); `.env` for
                  subprocesses, `.start(cmd)` for workers; every process started with `.env` (flow runs
                  of its workers included, orphans too) is killed at teardown
closed_port_url   http://127.0.0.1:PORT/ with nothing listening (a broken site), held for the test
spool_dir         NEWSARCHIVE_SPOOL pointed at the test's tmp_path
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from loopback import closed_port, listening_port
from proctree import TAG_VAR, descendants, kill_tagged

# Prefect's server would try to send telemetry (offline here); must be set before prefect is imported.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


# The scheduler as the notes in docs/prefect.md give it for tests: a new deployment gets its
# runs within ~5 s, and a `* * * * *` schedule only the next few (not an hour's worth).
# Server settings: they must be in the server's environment when it starts.
SCHEDULER_SETTINGS = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS": "1",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_SCHEDULED_TIME": "PT2M",
}


LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):  # a bound for a busy machine
        yield


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (a site that is down)."""
    with closed_port() as port:
        yield f"http://127.0.0.1:{port}/"


@pytest.fixture
def spool_dir(tmp_path, monkeypatch):
    path = tmp_path / "spool"
    monkeypatch.setenv("NEWSARCHIVE_SPOOL", str(path))
    return path


class PrefectServer:
    def __init__(self, home: Path):
        self.home = home
        self.port: int | None = None  # known once the server listens (it binds port 0)
        self.api_url = ""
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_CLI_PROMPT": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
            # a run held back by its deployment's concurrency limit is retried after this (default 30 s)
            "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2",
            **SCHEDULER_SETTINGS,
            # leases in PREFECT_HOME, not in the server's memory: they survive a restart (docs/prefect.md)
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": LEASE_STORAGE,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            TAG_VAR: f"prefect-server-{uuid.uuid4().hex[:12]}",  # every process started from here
        }
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], log_name: str, env: dict | None = None) -> subprocess.Popen:
        """Start a background process (own process group) logging to PREFECT_HOME/log_name."""
        log = open(self.home / log_name, "ab")
        proc = subprocess.Popen(cmd, cwd=REPO, env={**self.env, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def log(self, log_name: str) -> str:
        path = self.home / log_name
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_healthy(self, proc: subprocess.Popen, timeout: float = 180) -> None:
        """Wait until the server answers /api/health on a port it listens on (it binds port 0),
        within a generous bound (a busy machine is slow); then point clients at it."""

        def healthy(port: int) -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as resp:
                    return resp.status == 200
            except OSError:
                return False

        self.port = listening_port(proc, timeout=timeout, log=self.home / "server.log", accept=healthy)
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.env["PREFECT_API_URL"] = self.api_url

    def stop(self, procs: list[subprocess.Popen] | None = None) -> None:
        """Stop `procs` and every process below them (a worker's flow runs have process groups
        of their own): SIGTERM to each group, SIGKILL to what is left after 20 s. A group is
        signalled even when its leader has exited already: its children (a `prefect worker start`
        under `newsarchive worker`) may still run, and must not outlive the test. Without `procs`:
        every process started with this server's env, wherever it ended up (the server last)."""
        everything = procs is None
        procs = list(self.procs if procs is None else procs)
        for proc in reversed(procs):
            groups = {proc.pid} | {g for p in descendants(proc.pid) if (g := _pgid_or_none(p))}
            for group in groups:
                _signal_group(group, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
                proc.poll()  # reap the leader, so only live members keep its group
                time.sleep(0.2)
            for group in groups:
                _signal_group(group, signal.SIGKILL)
            proc.wait()
        if everything:
            kill_tagged(self.env[TAG_VAR])

    def client_settings(self):
        """Settings for an in-test Prefect client talking to this server."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        return temporary_settings({PREFECT_API_URL: self.api_url})


def _pgid_or_none(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # nobody left in it


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    server = PrefectServer(home)
    try:
        proc = server.start([str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", "0"], "server.log")
        server.wait_healthy(proc)
        yield server
    finally:
        server.stop()


def read_artifacts(key: str | None = None, flow_run_id=None) -> list[dict]:
    """Artifacts (newest first) by key and/or flow run, from the current Prefect API (plain REST)."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    body: dict = {"limit": 100, "sort": "CREATED_DESC"}
    if key:
        body["artifacts"] = {"key": {"any_": [key]}}
    if flow_run_id:
        body["flow_runs"] = {"id": {"any_": [str(flow_run_id)]}}
    resp = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/filter", json=body, timeout=30)
    resp.raise_for_status()
    return resp.json()
