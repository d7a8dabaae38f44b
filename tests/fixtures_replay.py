"""Fixtures for the replay interop tests (a pytest plugin, loaded by conftest.py).

replay_archive  session: the bundled demo site crawled twice into one folder archive,
                `recheck = 0`, so the second run archives every unchanged page as a
                revisit; its stylesheet is a start URL, so one capture of it exists
pywb_bin        the bin folder of pywb's venv (NEWSARCHIVE_PYWB, made by `make test`)
start_pywb      factory: start_pywb(folder) runs pywb's `wayback` in a folder on a free
                loopback port and returns its base URL; stopped at teardown
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flows import pipeline
from loopback import listening_port

PYWB_ENV = "NEWSARCHIVE_PYWB"


@dataclass
class ReplayArchive:
    path: Path
    site: object  # flows.demo_site.DemoSite (stopped by its own fixture)
    base: str  # the demo site's http://127.0.0.1:PORT
    article: str  # the URL of the article the tests replay
    first: str = ""  # the 14-digit timestamps of its two captures (original, revisit)
    second: str = ""
    runs: list = field(default_factory=list)  # RunSummary of each crawl

    def url(self, path: str) -> str:
        return self.base + path


def demo_sources(base: str) -> str:
    return f"""[[source]]
name = "demo"
start_urls = ["{base}/", "{base}/static/site.css"]
feeds = ["{base}/rss.xml"]
sitemaps = ["{base}/news-sitemap.xml"]
allow = ['/\\d{{4}}/\\d{{2}}/\\d{{2}}/']
depth = 2
max_pages = 100
delay = 0
concurrency = 4
recheck = 0
"""


@pytest.fixture(scope="session")
def replay_archive(demo_site, tmp_path_factory) -> ReplayArchive:
    from storage.archive import open_archive

    tmp = tmp_path_factory.mktemp("replay")
    base = demo_site.url("").rstrip("/")
    sources = tmp / "sources.toml"
    sources.write_text(demo_sources(base), encoding="utf-8")
    archive = tmp / "archive"
    made = ReplayArchive(archive, demo_site, base, base + "/2024/05/13/seagrass-meadows-return-to-the-bay.html")
    for run in range(2):
        if run:
            # index timestamps have whole seconds: two of them between the crawls, so a time
            # strictly between an original and its revisit exists
            time.sleep(2.0)
        summary = pipeline.run_source("demo", sources_file=sources, archive=str(archive), spool=tmp / "spool")
        assert summary.verdict is None, summary.verdict
        made.runs.append(summary)
    captures = open_archive(str(archive)).list(made.article)
    assert [c.is_revisit for c in captures] == [False, True], captures
    made.first, made.second = captures[0].timestamp, captures[1].timestamp
    return made


@pytest.fixture(scope="session")
def pywb_bin() -> Path:
    value = os.environ.get(PYWB_ENV)
    path = Path(value) if value else Path(__file__).resolve().parent.parent / ".venv-pywb" / "bin"
    if not (path / "wayback").exists():
        raise RuntimeError(f"pywb missing at {path}: run the tests with `make test` (it makes .venv-pywb)")
    return path


def http_get(url: str, headers: dict | None = None, method: str = "GET", timeout: float = 60):
    """(status, headers, body) without following redirects; loopback only, no proxy."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with opener.open(request, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.fixture
def start_pywb(pywb_bin):
    started = []

    def start(folder: Path) -> str:
        """pywb's `wayback` in `folder` on a port of its choosing (no race for a "free" one); its
        base URL once its front end answers (it also opens a port for its internal warcserver)."""
        log = open(folder / "wayback.log", "wb")
        proc = subprocess.Popen([str(pywb_bin / "wayback"), "--bind", "127.0.0.1", "--port", "0"],
                                cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append((proc, log))

        def front_end(port: int) -> bool:
            try:
                status, _, body = http_get(f"http://127.0.0.1:{port}/", timeout=10)
            except OSError:
                return False
            return status == 200 and b"<html" in body.lower()

        port = listening_port(proc, timeout=120, log=folder / "wayback.log", accept=front_end)
        return f"http://127.0.0.1:{port}"

    yield start
    for proc, log in started:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


class Served:
    """`newsarchive serve` running as a user runs it: a subprocess, its stderr collected."""

    def __init__(self, proc: subprocess.Popen):
        import threading

        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 120) -> "re.Match":
        import re

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"serve never printed {pattern!r}; it printed:\n" + "\n".join(self.lines))

    @property
    def base(self) -> str:
        """Its URL, once it answers (after its lifespan started pywb)."""
        self.wait_for(r"Application startup complete")
        return self.wait_for(r"serving .* at (http://127\.0\.0\.1:\d+)/ ").group(1)

    @property
    def pywb_pid(self) -> int:
        return int(self.wait_for(r"rewritten replay through pywb \(pid (\d+)").group(1))

    def stop(self, sig=None) -> int:
        import signal as signals

        if self.proc.poll() is None:
            self.proc.send_signal(sig or signals.SIGTERM)
        return self.proc.wait(timeout=60)


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie has exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture(scope="module")
def serve_archive(tmp_path_factory):
    """serve_archive(archive, *options, pywb=PATH or None, env=None) -> Served (stopped when the module ends)."""
    from test_cli_support import cli_env, newsarchive_bin

    started = []
    tmp_path = tmp_path_factory.mktemp("serve")

    def start(archive: Path | str, *options: str, pywb: Path | None = None, env: dict | None = None) -> Served:
        # `env`: the CLI's environment (default: a clean one); TMPDIR holds pywb's folder,
        # which a SIGKILLed serve leaves behind
        env = {**(env or cli_env(tmp_path)), "TMPDIR": str(tmp_path)}
        if pywb is not None:
            env[PYWB_ENV] = str(pywb)
        proc = subprocess.Popen([newsarchive_bin(), "serve", "--archive", str(archive), "--port", "0", *options],
                                cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        served = Served(proc)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
