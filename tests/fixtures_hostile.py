"""Fixtures for the hostile-site tests (a pytest plugin, loaded by conftest.py).

hostile_site   a HostileSite (tests/hostile_site.py) on 127.0.0.1 with its bait server on 127.0.0.2
hostile_crawl  hostile_crawl(site, sources_toml, settings=..., env=...) -> HostileRun: a real
               `python -m spiders.crawl` of the site, the peak memory of its process tree measured

and `check_archive(run, site)`: what every hostile test asserts about the result (valid WARCs,
nothing from the bait or the local file anywhere, memory bounded).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from hostile_site import HostileSite
from treememory import TreeMemory

ROOT = Path(__file__).resolve().parent.parent
MAX_TREE_MB = 768  # the bound of issue 8: peak RSS of the crawl's process tree
MEMORY_LOG = Path(os.environ.get("NEWSARCHIVE_MEMORY_LOG", "")) if os.environ.get("NEWSARCHIVE_MEMORY_LOG") else None


@dataclass
class HostileRun:
    returncode: int
    spool: Path
    stats: dict
    stderr: str
    memory: dict
    files: list[Path] = field(default_factory=list)  # everything the crawl wrote

    @property
    def errors(self) -> dict:
        return self.stats.get("errors", {})

    def samples(self, kind: str) -> list[dict]:
        return [s for s in self.stats.get("error_samples", []) if s["kind"] == kind]

    def warcs(self, text: bool | None = None) -> list[Path]:
        found = sorted(self.spool.rglob("*.warc.gz"))
        if text is None:
            return found
        return [p for p in found if p.name.endswith(".text.warc.gz") == text]

    def records(self) -> list[tuple[dict, int | None, bytes]]:
        """(WARC headers, HTTP status, raw payload as stored) of every record of the capture WARCs."""
        out = []
        for path in self.warcs(text=False):
            with open(path, "rb") as fh:
                for rec in ArchiveIterator(fh):
                    status = int(rec.http_headers.get_statuscode()) if rec.http_headers and \
                        rec.rec_type == "response" else None
                    out.append((dict(rec.rec_headers.headers), status, rec.raw_stream.read()))
        return out

    def responses(self) -> dict[str, tuple[dict, int | None, bytes]]:
        return {h["WARC-Target-URI"]: (h, s, p) for h, s, p in self.records() if h["WARC-Type"] == "response"}

    def articles(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in self.spool.rglob("articles/**/*.json")]


def _read(stream, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


def run_crawl_measured(args: list[str], *, env: dict | None = None, timeout: float = 300) -> tuple[int, str, str, dict]:
    """Run `python -m spiders.crawl ARGS`; (exit code, stdout, stderr, tree memory)."""
    full_env = {k: v for k, v in os.environ.items() if k != "NEWSARCHIVE_SOURCES"}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    proc = subprocess.Popen([sys.executable, "-m", "spiders.crawl", *args], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    watch = TreeMemory(proc.pid)
    watch.start()
    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=_read, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=_read, args=(proc.stderr, err), daemon=True)]
    for r in readers:
        r.start()
    timer = threading.Timer(timeout, proc.kill)  # a hang fails the test below, it never blocks the suite
    timer.start()
    try:
        proc.wait()
    finally:
        timer.cancel()
    for r in readers:
        r.join(timeout=10)
    memory = watch.finish()
    return proc.returncode, "".join(out), "".join(err), memory


def hostile_crawl_run(site: HostileSite, sources_toml: str, tmp: Path, *, settings: dict | None = None,
                      env: dict | None = None, source: str = "hostile", timeout: float = 300) -> HostileRun:
    tmp.mkdir(parents=True, exist_ok=True)
    sources = tmp / "sources.toml"
    sources.write_text(sources_toml)
    spool, stats_out = tmp / "spool", tmp / "stats.json"
    args = ["--source", source, "--sources", str(sources), "--spool", str(spool), "--stats-out", str(stats_out)]
    for name, value in (settings or {}).items():
        args += ["-s", f"{name}={value}"]
    code, _, stderr, memory = run_crawl_measured(args, env=env, timeout=timeout)
    stats = json.loads(stats_out.read_text()) if stats_out.exists() else {}
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    log_memory(memory)
    return HostileRun(code, spool, stats, stderr, memory, files)


def log_memory(memory: dict) -> None:
    """With NEWSARCHIVE_MEMORY_LOG=FILE, append the crawl's memory figures (the peak per trap)."""
    if MEMORY_LOG is not None:
        with MEMORY_LOG.open("a") as fh:
            fh.write(json.dumps({"test": os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0], **memory}) + "\n")


def readable_text(path: Path) -> bytes:
    """A file's bytes, decompressed when gzip (WARCs: every member)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            return data
    return data


def warcio_check(paths: list[Path]) -> None:
    """warcio's checker on every file (tests/warciocheck.py: with a brotli decompressor warcio can use)."""
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "warciocheck.py"), *map(str, paths)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in paths:  # warcio check passes a file cut mid-record; gzip does not
        with gzip.open(path) as fh:
            while fh.read(1 << 20):
                pass


def check_archive(run: HostileRun, site: HostileSite, *, good: list[str] | None = None, secrets: tuple = ()) -> None:
    """What holds after every hostile crawl: it finished, nothing was taken from the bait or the local
    file, every WARC is valid, the good articles are archived and extracted, memory stayed bounded."""
    assert run.returncode == 0, run.stderr[-4000:]
    assert "Traceback" not in run.stderr, run.stderr[-4000:]
    assert site.bait.connections == [], f"the bait server was contacted: {site.bait.connections[:3]}"
    for path in run.files:
        text = readable_text(path)
        for needle in (site.canary, *secrets):
            assert needle.encode() not in text, f"{needle} found in {path}"
    for needle in (site.canary, *secrets):
        assert needle not in run.stderr, f"{needle} in the crawl log"
    warcs = run.warcs()
    assert warcs, "no WARC written"
    warcio_check(warcs)
    targets = [h["WARC-Target-URI"] for h, _, _ in run.records() if "WARC-Target-URI" in h]
    assert all(t.startswith(("http://127.0.0.1:", "http://localhost:", "http://hostile.test:",
                             "http://rebind.test:")) for t in targets), \
        [t for t in targets if not t.startswith("http://127.0.0.1:")][:5]
    assert not [t for t in targets if "@" in t.split("/")[2]], "a URL with credentials was archived"
    responses = run.responses()
    extracted = {a["url"] for a in run.articles()}
    for url in (site.good if good is None else good):
        assert url in responses, f"good article not archived: {url}"
        assert url in extracted, f"good article not extracted: {url}"
    assert run.memory["samples"] and run.memory["main_mb"] > 50, run.memory  # the tree was measured
    assert run.memory["peak_mb"] < MAX_TREE_MB, run.memory


@pytest.fixture
def hostile_site(tmp_path):
    site = HostileSite(tmp_path / "local")
    yield site
    site.stop()


@pytest.fixture
def hostile_crawl(tmp_path):
    counter = iter(range(100))

    def crawl(site: HostileSite, sources_toml: str, **kwargs) -> HostileRun:
        return hostile_crawl_run(site, sources_toml, tmp_path / f"run{next(counter)}", **kwargs)

    return crawl
