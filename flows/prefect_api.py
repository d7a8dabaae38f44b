"""The Prefect API a command talks to: check that it answers, or run a temporary one.

    require_api(hint)       PREFECT_API_URL, checked to answer; else OrchestrationError (one line)
    check_api(url, hint)    GET URL/health; OrchestrationError naming the URL and what to do
    temporary_api()         with no PREFECT_API_URL: a Prefect server of this command's own
    is_temporary(url)       is this API a server that lives only as long as one process?

With no PREFECT_API_URL, Prefect itself would start a temporary server on the
first client call. We start it ourselves instead (`TemporaryServer`), because
Prefect's shares the command's stderr (its shutdown tracebacks landed there)
and outlives a killed command (nothing stops it after SIGKILL). Ours writes to
PREFECT_HOME/temporary-server.log and is killed by the kernel when the command
dies (PR_SET_PDEATHSIG). It is the same server Prefect would start (the API
app in its ephemeral mode: no scheduler, no repossessor) on the same database,
PREFECT_HOME/prefect.db, so manual runs stay in one history.

A temporary server holds concurrency leases in its own memory and never expires
them, so flows/crawl.py takes no global concurrency slot on it (see there).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from storage.errors import OrchestrationError

HEALTH_TIMEOUT = 10  # seconds for one /health request
START_TIMEOUT = 120  # a first start creates the database: 5-20 s, more on a busy machine
STOP_GRACE = 10
LOG_NAME = "temporary-server.log"
LOG_KEEP_BYTES = 5 << 20

_temporary_urls: set[str] = set()


def configured_api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def check_api(url: str, hint: str) -> None:
    """OrchestrationError (one line: the URL, why, `hint`) unless URL/health answers 200."""
    health = url.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=HEALTH_TIMEOUT) as resp:
            if resp.status == 200:
                return
            why = f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        why = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        why = getattr(reason, "strerror", None) or str(reason) or type(exc).__name__
    raise OrchestrationError(f"the Prefect API at {url} does not answer ({why}): {hint}")


SERVER_HINT = ("start the Prefect server (`prefect server start`) or set PREFECT_API_URL to one that runs "
               "(docs/prefect.md)")
CRAWL_HINT = ("start the Prefect server (`prefect server start`), set PREFECT_API_URL to one that runs, "
              "or unset it to crawl with a temporary server")


def require_api(hint: str = SERVER_HINT) -> str:
    """PREFECT_API_URL, once it answers; OrchestrationError when unset or down."""
    url = configured_api_url()
    if not url:
        raise OrchestrationError("PREFECT_API_URL is not set: start a server (`prefect server start`) and "
                                 "`export PREFECT_API_URL=http://127.0.0.1:4200/api`")
    check_api(url, hint)
    return url


def is_temporary(url: str | None) -> bool:
    """True for no API URL (Prefect would start its own temporary server), for the
    server `temporary_api` started, and for a temporary server Prefect runs in this
    process (prefect_test_harness)."""
    if not url:
        return True
    url = url.rstrip("/")
    if url in _temporary_urls:
        return True
    server_module = sys.modules.get("prefect.server.api.server")
    instances = getattr(getattr(server_module, "SubprocessASGIServer", None), "_instances", {})
    return any(getattr(s, "running", False) and s.api_url.rstrip("/") == url for s in instances.values())


# --------------------------------------------------------------------------- a server of our own

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def die_with_this_process(sig: int = signal.SIGKILL):
    """A preexec_fn for subprocess.Popen: the kernel sends the child `sig` when this
    process dies, however it dies (PR_SET_PDEATHSIG; strictly, when the thread that
    started the child ends: start such children from the main thread)."""
    parent = os.getpid()

    def set_pdeathsig() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: nobody would send the signal
            os._exit(1)
    return set_pdeathsig


class TemporaryServer:
    """Prefect's API app (ephemeral mode) on 127.0.0.1 as a child of this process.

    Its output goes to PREFECT_HOME/temporary-server.log; the kernel kills it
    when this process dies; `stop()` ends it (SIGTERM, then SIGKILL).
    """

    def __init__(self, home: Path | None = None):
        from prefect.settings import get_current_settings

        self.home = Path(home or get_current_settings().home)
        self.log_path = self.home / LOG_NAME
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.startup_seconds: float | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _spawn(self, log, listening: socket.socket) -> subprocess.Popen:
        import prefect
        from prefect.settings import get_current_settings

        env = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True),
               "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1", "PREFECT_UI_ENABLED": "0"}
        env.pop("PREFECT_API_URL", None)
        env.pop("PREFECT_LOGGING_SETTINGS_PATH", None)  # the command line's one-line console logging: not here
        cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent),
               "--factory", "prefect.server.api.server:create_app", "--fd", str(listening.fileno()),
               "--log-level", "error", "--lifespan", "on"]
        return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=self.home, pass_fds=[listening.fileno()], preexec_fn=die_with_this_process())

    def start(self, timeout: float = START_TIMEOUT) -> "TemporaryServer":
        self.home.mkdir(parents=True, exist_ok=True)
        _trim(self.log_path)
        started = time.monotonic()
        deadline = started + timeout
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} temporary server for pid {os.getpid()}\n".encode())
            log.flush()
            # The socket is bound and listening here and handed to the server (uvicorn --fd):
            # no other process can take the port between a probe and the server's bind.
            with socket.socket() as listening:
                listening.bind(("127.0.0.1", 0))
                listening.listen(128)
                self.port = listening.getsockname()[1]
                self.proc = self._spawn(log, listening)
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _healthy(self.api_url):
                    self.startup_seconds = time.monotonic() - started
                    _temporary_urls.add(self.api_url)
                    log.write(f"--- answering at {self.api_url} after {self.startup_seconds:.1f} s\n".encode())
                    return self
                time.sleep(0.2)
        if self.proc.poll() is None:  # still starting at the deadline
            self.stop()
            raise OrchestrationError(f"the temporary Prefect server did not answer within {timeout:.0f} s "
                                     f"(its log: {self.log_path})")
        raise OrchestrationError(f"the temporary Prefect server exited with code {self.proc.returncode} "
                                 f"before answering (its log: {self.log_path})")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        _temporary_urls.discard(self.api_url)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(api_url + "/health", timeout=2) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def _trim(path: Path) -> None:
    """Keep the log from growing without end: the previous one is kept as .1."""
    try:
        if path.stat().st_size > LOG_KEEP_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    except OSError:
        pass


def _drain_prefect_clients() -> None:
    """Send the logs and events still queued in this process before their server goes."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=10)
        except Exception:  # nothing queued, or the worker never started
            pass


@contextmanager
def temporary_api() -> Iterator[str]:
    """PREFECT_API_URL for the block: the configured one, checked to answer, or a
    temporary server started here and stopped at the end (killed with this process)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = configured_api_url()
    if url:
        check_api(url, CRAWL_HINT)
        yield url
        return
    server = TemporaryServer().start()
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                _drain_prefect_clients()
    finally:
        server.stop()
