"""The whole pipeline against its bound and its peers, on real news pages, in one run.

    .venv/bin/python benchmarks/bench_pipeline.py              # ~10,000 pages, 100,000 captures: ~10 min idle
    .venv/bin/python benchmarks/bench_pipeline.py --smoke      # a few tens of seconds (make test runs it)
    .venv/bin/python benchmarks/bench_pipeline.py --only get   # step 5 alone: ~3 min at 100,000 captures

On one site of real news pages (benchmarks/realsite.py: ../shared/testdata
pages of typical extraction cost, each copied with its own URL and text, with
listing pages and dead links), served from its own process on 127.0.0.1:

1. bound: trafilatura alone (decode_html + bare_extraction) over every article
   page in a pool of one process per core (warmed), articles/s; and
   extract_article, what the crawl runs, on a share of them.
2. pipeline: `newsarchive crawl --no-prefect` end to end (fetch, WARC,
   extraction, index, upload into a folder archive, catalog), its process tree
   sampled from /proc: CPU seconds per process (CLI parent, Scrapy process,
   extraction workers, forkserver) and the tree's RSS, whose peak is read when
   the site has answered each of --rss-at pages (1,000 and 10,000), and its
   wall clock split at the first and last page served. Then,
   outside the timing, what it archived is checked: `warcio check` on every
   WARC, every article's stored payload against the bytes the site sent, and
   the stored text of a sample against extract_article on the same page.
3. bare Scrapy: benchmarks/bare_spider.py, the same site and links, nothing stored;
   and Scrapy's floor: benchmarks/floor_spider.py fetching the pages the
   pipeline fetched, from a list, reading nothing. bound CPU / (bound CPU + the floor's CPU per
   article) is the ceiling of pipeline / bound for any Scrapy crawl here.
4. wget: `wget --recursive --level=3 --warc-file` (Debian's wget; it asks
   for no compression, so it is sent every body as it is: with
   `--compression=auto` wget 1.21.3 followed the links of only ~55 % of the
   pages here).
5. get: an archive of --captures captures (generated WARCs, their CDXJ, the
   catalog), `get --as html` latency p50/p99 in process (Archive.get on an
   open archive) and through the CLI (a new process each time: start-up
   included), on a folder and on moto's S3 server on 127.0.0.1.

The site answers gzip to a client that accepts it, as news sites do
(`--encoding identity`: every body as it is). Everything talks to 127.0.0.1
only. Prints a table of ratios (ratios are what to compare: absolute rates
drift on a shared machine) and writes benchmarks/results/pipeline-<UTC>.json
(or --out), with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import realsite  # noqa: E402
from pagesets import available, default_set  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
BIN = Path(sys.executable).parent
SOURCE = "bench"


def machine() -> dict:
    import importlib.metadata as md

    versions = {}
    for name in ("trafilatura", "scrapy", "warcio", "lxml", "moto"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return {"python": platform.python_version(), "cores": os.cpu_count(), "platform": platform.platform(),
            "cpu": _cpu_model(), "memory_gb": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()], "versions": versions}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# --------------------------------------------------------------------------- /proc

def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _proc_kib(pid: int, name: str, field: str) -> int:
    """A `field:` line of /proc/PID/NAME, in bytes (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss(pid: int) -> int:
    return _proc_kib(pid, "status", "VmRSS:")


def _pss(pid: int) -> int:
    """Proportional set size: the process's private pages plus its share of pages it shares
    (a forked worker's copy-on-write pages, shared libraries), so a tree's sum counts each page once."""
    return _proc_kib(pid, "smaps_rollup", "Pss:")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


class TreeSampler(threading.Thread):
    """Every `interval` s: each process under `root` (CPU seconds, role) and the tree's summed RSS.

    A process's CPU is its last sample, so each is short by at most `interval`
    of CPU. The RSS peak is kept for each checkpoint: the highest sum seen
    until the site had answered that many pages, over the crawl's tree (the
    crawl process, forkserver, resource tracker, workers: what
    docs/ARCHITECTURE.md calls the crawl's memory) and with the CLI parent.
    """

    def __init__(self, root: int, site: realsite.SiteProcess, checkpoints: list[int], interval: float = 0.2):
        super().__init__(daemon=True, name="tree-sampler")
        self.root, self.site, self.interval = root, site, interval
        self.checkpoints = sorted(checkpoints)
        self.cpu: dict[int, float] = {}
        self.roles: dict[int, str] = {}
        self.peak = 0
        self.peak_at: dict[int, int] = {}
        self.peak_by_role: dict[str, int] = {}
        self.peak_at_with_cli: dict[int, int] = {}
        self.crawl_peak = 0
        self.pss_peak_at: dict[int, int] = {}  # the crawl's tree, shared pages counted once
        self.samples = 0
        self.timeline: list[tuple[float, int, float]] = []  # (time, pages served, the tree's CPU s so far)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def sample(self) -> None:
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                got = _stat(int(entry.name))
                if got is not None:
                    parents[int(entry.name)], cpu[int(entry.name)] = got
        tree, todo = [], [self.root]
        kids: dict[int, list[int]] = {}
        for pid, ppid in parents.items():
            kids.setdefault(ppid, []).append(pid)
        while todo:
            pid = todo.pop()
            if pid in cpu:
                tree.append(pid)
                todo.extend(kids.get(pid, []))
        served = self.site.served
        total = crawl = crawl_pss = 0
        by_role: dict[str, int] = {}
        for pid in tree:
            role = self.roles.get(pid) or self._role(pid, parents)
            self.roles[pid] = role
            self.cpu[pid] = cpu[pid]
            rss = _rss(pid)
            total += rss
            by_role[role] = by_role.get(role, 0) + rss
            if role != "cli":
                crawl += rss
                crawl_pss += _pss(pid)
        for role, rss in by_role.items():
            self.peak_by_role[role] = max(self.peak_by_role.get(role, 0), rss)
        self.samples += 1
        self.timeline.append((time.perf_counter(), served, sum(self.cpu.values())))
        self.peak = max(self.peak, total)
        self.crawl_peak = max(self.crawl_peak, crawl)
        for mark in self.checkpoints:
            if served <= mark:  # the crawl's tree (as docs/ARCHITECTURE.md counts it), and with the CLI
                self.peak_at[mark] = max(self.peak_at.get(mark, 0), crawl)
                self.peak_at_with_cli[mark] = max(self.peak_at_with_cli.get(mark, 0), total)
                self.pss_peak_at[mark] = max(self.pss_peak_at.get(mark, 0), crawl_pss)

    def phases(self, start: float, end: float) -> dict:
        """Wall and CPU before the first page was served, while pages were served, and after the
        last one (the CLI's index, upload and catalog), from the samples (each within `interval`)."""
        serving = [t for t, served, _ in self.timeline if served > 0]
        if not serving:
            return {}
        first = serving[0]
        last_count = self.timeline[-1][1]
        last = next(t for t, served, _ in self.timeline if served == last_count)
        cpu_at = lambda when: max((c for t, _, c in self.timeline if t <= when), default=0.0)  # noqa: E731
        total = self.timeline[-1][2]
        return {"before_first_page": {"wall_s": round(first - start, 2), "cpu_s": round(cpu_at(first), 2)},
                "serving_pages": {"wall_s": round(last - first, 2), "cpu_s": round(cpu_at(last) - cpu_at(first), 2)},
                "after_last_page": {"wall_s": round(end - last, 2), "cpu_s": round(total - cpu_at(last), 2)}}

    def _role(self, pid: int, parents: dict[int, int]) -> str:
        if pid == self.root:
            return "cli"
        cmd = _cmdline(pid)
        if "spiders.crawl" in cmd:
            return "scrapy"
        if "resource_tracker" in cmd:
            return "resource_tracker"
        if "forkserver" in cmd:
            parent_cmd = _cmdline(parents.get(pid, 0))
            return "extraction_workers" if "forkserver" in parent_cmd else "forkserver"
        return "other"

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def cpu_by_role(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, seconds in self.cpu.items():
            out[self.roles[pid]] = round(out.get(self.roles[pid], 0.0) + seconds, 2)
        return out


# --------------------------------------------------------------------------- 1. the bound

_SITE: realsite.Site | None = None


def _pool_init(site: realsite.Site) -> None:
    global _SITE
    _SITE = site


def _bound_chunk(indices: list[int]) -> float:
    start = time.process_time()
    for i in indices:
        realsite.trafilatura_alone(_SITE.article(i), f"http://127.0.0.1{realsite.ARTICLE_PATH.format(i)}",
                                   _SITE.content_type(i))
    return time.process_time() - start


def _ours_chunk(indices: list[int]) -> float:
    from spiders.extraction import ExtractionError, extract_article

    start = time.process_time()
    for i in indices:
        try:
            extract_article(_SITE.article(i), url=f"http://127.0.0.1{realsite.ARTICLE_PATH.format(i)}",
                            content_type=_SITE.content_type(i))
        except ExtractionError:
            pass
    return time.process_time() - start


def bound(site: realsite.Site, n: int, workers: int, fn) -> dict:
    """articles/s of `fn` over articles 0..n-1 on `workers` processes (forked, warmed first)."""
    chunks = [list(range(i, min(n, i + 4))) for i in range(0, n, 4)]
    with ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=_pool_init,
                             initargs=(site,)) as pool:
        list(pool.map(fn, [[i % site.articles] for i in range(workers * 3)]))  # import, caches
        start = time.perf_counter()
        cpu = sum(pool.map(fn, chunks))
        wall = time.perf_counter() - start
    return {"articles": n, "workers": workers, "wall_s": round(wall, 2), "articles_per_s": round(n / wall, 1),
            "cpu_ms_per_article": round(cpu / n * 1000, 2)}


# --------------------------------------------------------------------------- 2. the pipeline

def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    env.update(extra or {})
    return env


def pipeline(site: realsite.SiteProcess, workdir: Path, checkpoints: list[int], timeout: float) -> dict:
    sources = workdir / "sources.toml"
    sources.write_text(realsite.sources_toml(site.base, SOURCE))
    archive = workdir / "archive"
    env = _env({"NEWSARCHIVE_SPOOL": str(workdir / "spool"), "XDG_CACHE_HOME": str(workdir / "cache"),
                "COLUMNS": "120"})
    cmd = [str(BIN / "newsarchive"), "crawl", SOURCE, "--sources", str(sources), "--archive", str(archive),
           "--no-prefect"]
    site.reset()
    server_cpu = _stat(site.proc.pid)[1]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = TreeSampler(proc.pid, site, checkpoints)
    sampler.start()
    out = _drain(proc, timeout)
    wall = time.perf_counter() - start
    sampler.stop()
    server_cpu = _stat(site.proc.pid)[1] - server_cpu
    if proc.returncode != 0:
        raise RuntimeError(f"newsarchive crawl exited {proc.returncode}: {out[-600:]}")
    pages = site.served
    articles = sum(1 for _ in (archive / "articles").rglob("*.txt"))
    captures = _catalog_count(archive)
    cpu = sampler.cpu_by_role()
    return {"pages": pages, "articles": articles, "captures_in_catalog": captures, "wall_s": round(wall, 2),
            "pages_per_s": round(pages / wall, 1), "articles_per_s": round(articles / wall, 1),
            "cpu_s": cpu, "cpu_ms_per_page": {k: round(v / pages * 1000, 2) for k, v in cpu.items()},
            "cpu_ms_per_article": {k: round(v / max(articles, 1) * 1000, 2) for k, v in cpu.items()},
            "rss_peak_mb": {str(k): round(v / 2**20, 1) for k, v in sorted(sampler.peak_at.items())},
            "rss_peak_mb_with_cli": {str(k): round(v / 2**20, 1) for k, v in sorted(sampler.peak_at_with_cli.items())},
            "pss_peak_mb": {str(k): round(v / 2**20, 1) for k, v in sorted(sampler.pss_peak_at.items())},
            "rss_peak_mb_whole_crawl": round(sampler.peak / 2**20, 1),
            "rss_peak_mb_without_cli": round(sampler.crawl_peak / 2**20, 1),
            "rss_peak_mb_by_process": {k: round(v / 2**20, 1) for k, v in sorted(sampler.peak_by_role.items())},
            "warc_bytes": sum(p.stat().st_size for p in (archive / "warc").rglob("*.warc.gz")),
            "samples": sampler.samples, "output_tail": out[-400:],
            "phases": sampler.phases(start, start + wall),
            "site_server_cpu_s": round(server_cpu, 2),
            "verified": verify_archive(site, archive)}


def verify_archive(server: realsite.SiteProcess, archive: Path, texts: int = 200) -> dict:
    """What a user would check of the archive a crawl left: the WARCs pass `warcio check`,
    every article's payload is the bytes the site sent (content coding kept), and the
    stored text of `texts` articles is extract_article's text of the same page."""
    from warcio.archiveiterator import ArchiveIterator

    from spiders.extraction import extract_article

    site, base = server.site, server.base

    def story(url: str):
        """The article index I of one of the site's story URLs, else None."""
        m = realsite.ARTICLE_PATH_PATTERN.fullmatch(url[len(base):]) if url.startswith(base) else None
        return int(m.group(1)) if m else None

    warcs = sorted((archive / "warc").rglob("*.warc.gz"))
    check = subprocess.run([str(BIN / "warcio"), "check", *map(str, warcs)], capture_output=True, text=True)
    exact = differ = 0
    for path in warcs:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                i = story(record.rec_headers.get_header("WARC-Target-URI") or "")
                if record.rec_type != "response" or i is None:
                    continue
                gzipped = (record.http_headers.get_header("Content-Encoding") or "").lower() == "gzip"
                sent = site.gzipped_article(i) if gzipped else site.article(i)
                if record.raw_stream.read() == sent:
                    exact += 1
                else:
                    differ += 1
    stored = {}
    for meta in (archive / "articles").rglob("*.json"):
        i = story(json.loads(meta.read_text(encoding="utf-8")).get("url", ""))
        if i is not None:
            stored[i] = meta.with_suffix(".txt")
    sample = sorted(stored)[:: max(1, len(stored) // texts)][:texts]
    same = sum(1 for i in sample
               if stored[i].read_text(encoding="utf-8") == extract_article(
                   site.article(i), url=f"{base}{realsite.ARTICLE_PATH.format(i)}",
                   content_type=site.content_type(i)).text)
    return {"warcio_check": "ok" if check.returncode == 0 else f"exit {check.returncode}: {check.stdout[-300:]}",
            "warc_files": len(warcs), "payloads_exact": exact, "payloads_differing": differ,
            "texts_compared": len(sample), "texts_equal": same}


def write_fetched_urls(archive: Path, out: Path) -> int:
    """The URLs of every capture the crawl cataloged, in the order fetched, robots.txt aside."""
    import sqlite3

    with sqlite3.connect(archive / "catalog.sqlite") as con:
        urls = [url for (url,) in con.execute("select url from captures order by timestamp, warc, offset")
                if not url.endswith("/robots.txt")]
    out.write_text("".join(url + "\n" for url in urls), encoding="ascii")
    return len(urls)


def _catalog_count(archive: Path) -> int | None:
    import sqlite3

    db = archive / "catalog.sqlite"
    if not db.exists():
        return None
    with sqlite3.connect(db) as con:
        return con.execute("select count(*) from captures").fetchone()[0]


def _drain(proc: subprocess.Popen, timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise RuntimeError(f"{proc.args[0]} did not finish in {timeout:.0f} s")
    return out.decode("utf-8", "replace") if out else ""


# --------------------------------------------------------------------------- 3, 4. peers

def bare_scrapy(site: realsite.SiteProcess, workdir: Path, timeout: float) -> dict:
    cmd = [str(BIN / "scrapy"), "runspider", str(HERE / "bare_spider.py"), "-a", f"start={site.base}/",
           "-a", "depth=3"]
    return _peer(cmd, site, workdir, timeout)


def scrapy_floor(site: realsite.SiteProcess, workdir: Path, urls: Path, timeout: float) -> dict:
    """floor_spider.py over the pages the pipeline fetched: what Scrapy costs a fetch before any
    work of ours (robots.txt is fetched by Scrapy itself, as in the crawl)."""
    cmd = [str(BIN / "scrapy"), "runspider", str(HERE / "floor_spider.py"), "-a", f"urls={urls}"]
    return _peer(cmd, site, workdir, timeout)


def wget(site: realsite.SiteProcess, workdir: Path, timeout: float) -> dict | None:
    program = shutil.which("wget")
    if program is None:
        return None
    out = workdir / "wget"
    out.mkdir()
    cmd = [program, "--recursive", "--level=3", "--no-verbose", "--delete-after", "--no-host-directories",
           "-P", str(out / "files"), f"--warc-file={out / 'crawl'}", f"{site.base}/"]
    result = _peer(cmd, site, workdir, timeout, ok_codes=(0, 8))  # 8: some pages were 404 (the dead links)
    result["warc_bytes"] = sum(p.stat().st_size for p in out.glob("*.warc.gz"))
    result["version"] = subprocess.run([program, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return result


def _peer(cmd: list[str], site: realsite.SiteProcess, workdir: Path, timeout: float, ok_codes=(0,)) -> dict:
    site.reset()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=workdir, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = TreeSampler(proc.pid, site, [])
    sampler.start()
    out = _drain(proc, timeout)
    wall = time.perf_counter() - start
    sampler.stop()
    if proc.returncode not in ok_codes:
        raise RuntimeError(f"{Path(cmd[0]).name} exited {proc.returncode}: {out[-600:]}")
    pages = site.served
    cpu = sum(sampler.cpu.values())
    return {"pages": pages, "wall_s": round(wall, 2), "pages_per_s": round(pages / wall, 1),
            "cpu_s": round(cpu, 2), "cpu_ms_per_page": round(cpu / max(pages, 1) * 1000, 2)}


# --------------------------------------------------------------------------- 5. get latency

def build_capture_archive(folder: Path, captures: int, urls: int, per_file: int = 10_000) -> list[str]:
    """A folder archive of `captures` response records over `urls` URLs (WARCs, their CDXJ); the URLs.

    Written as a crawl's upload leaves them (warc/ and indexes/ keys); the
    catalog is built by the first open. The URLs are never fetched.
    """
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from storage import layout
    from storage.cdxj import index_warc

    from io import BytesIO

    names = [f"http://127.0.0.1:9/2026/{1 + u % 12:02d}/story-{u}.html" for u in range(urls)]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    written, serial = 0, 0
    while written < captures:
        serial += 1
        created = start + timedelta(hours=serial)
        name = layout.warc_filename(f"newsarchive-{SOURCE}", created, serial, "benchhost")
        key = layout.warc_key(SOURCE, created, name)
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            writer = WARCWriter(fh, gzip=True, warc_version="1.1")
            for c in range(written, min(captures, written + per_file)):
                u, round_ = c % urls, c // urls
                when = start + timedelta(days=round_, seconds=u)
                body = (f"<html><head><title>Story {u}</title></head><body><h1>Story {u}</h1>"
                        f"<p>Version {round_} of story {u}. " + "Lorem ipsum dolor sit amet. " * 30
                        + "</p></body></html>").encode()
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                                   ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
                record = writer.create_warc_record(
                    names[u], "response", payload=BytesIO(body), length=len(body), http_headers=http,
                    warc_headers_dict={"WARC-Date": when.strftime("%Y-%m-%dT%H:%M:%S.000000Z")})
                writer.write_record(record)
        written = min(captures, written + per_file)
        index = folder / layout.index_key(key)
        index.parent.mkdir(parents=True, exist_ok=True)
        index.write_text("".join(index_warc(path, key)))
    return names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoProcess:
    """moto's S3 server (server mode) in its own process on 127.0.0.1."""

    def __init__(self):
        self.port = _free_port()
        self.proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto_server did not start")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def _percentiles(values: list[float]) -> dict:
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(round(q * (len(values) - 1))))]  # noqa: E731
    return {"n": len(values), "p50_ms": round(pick(0.5) * 1000, 1), "p99_ms": round(pick(0.99) * 1000, 1),
            "max_ms": round(values[-1] * 1000, 1)}


def get_latency(location: str, urls: list[str], env: dict, in_process: int, cli: int) -> dict:
    from storage.archive import open_archive

    rng = random.Random(7)
    t0 = time.perf_counter()
    archive = open_archive(location)  # the first open builds the catalog
    first_open = time.perf_counter() - t0
    times = []
    for url in rng.sample(urls, min(in_process, len(urls))):
        t = time.perf_counter()
        archive.get(url, None, as_="html")
        times.append(time.perf_counter() - t)
    cli_times, cli_cpu = [], []
    for url in rng.sample(urls, min(cli, len(urls))):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        done = subprocess.run([str(BIN / "newsarchive"), "get", url, "--as", "html", "--archive", location],
                              env=env, capture_output=True, timeout=120)
        cli_times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if done.returncode != 0:
            raise RuntimeError(f"newsarchive get failed: {done.stderr.decode()[-300:]}")
    # CPU of each CLI run (user + system): what a busy machine's wall-clock times hide
    return {"first_open_s": round(first_open, 2), "in_process": _percentiles(times), "cli": _percentiles(cli_times),
            "cli_cpu": _percentiles(cli_cpu)}


def bare_python(env: dict, runs: int) -> dict:
    """`python -c pass` as often: the floor under any CLI time on this machine, measured beside it."""
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {"cli": _percentiles(times), "cli_cpu": _percentiles(cpu)}


def compile_bytecode() -> None:
    """Write the checkout's bytecode caches, as installing a package does (pip compiles what it
    installs; an editable install is compiled by its first imports unless PYTHONDONTWRITEBYTECODE
    is set, as it is on some machines, where every CLI run would compile our sources again)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", "flows", "spiders", "storage"], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)


def retrieval(workdir: Path, captures: int, urls: int, in_process: int, cli: int) -> dict:
    import boto3

    folder = workdir / "captures"
    t = time.perf_counter()
    names = build_capture_archive(folder, captures, urls)
    build_s = time.perf_counter() - t
    cache = workdir / "get-cache"
    os.environ["XDG_CACHE_HOME"] = str(cache)  # the S3 catalog's folder, ours only
    env = _env({"XDG_CACHE_HOME": str(cache)})
    compile_bytecode()
    out = {"captures": captures, "urls": urls, "build_s": round(build_s, 1),
           "bytecode_caches": "compiled (compileall) before the CLI runs",
           "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
           "python -c pass": bare_python(env, cli),
           "local": get_latency(str(folder), names, env, in_process, cli)}
    moto = MotoProcess()
    try:
        aws = {"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1"}
        os.environ.update(aws)
        env.update(aws)
        s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1")
        s3.create_bucket(Bucket="bench")
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "catalog.sqlite"):
            s3.upload_file(str(path), "bench", "archive/" + path.relative_to(folder).as_posix())
        out["s3"] = get_latency("s3://bench/archive", names, env, in_process, cli)
    finally:
        moto.stop()
    return out


# --------------------------------------------------------------------------- report

def ratios(result: dict) -> dict:
    b, p = result["bound"], result["pipeline"]
    out = {"pipeline / bound (articles/s)": p["articles_per_s"] / b["articles_per_s"],
           "extract_article / bound (articles/s)": result["extract_article"]["articles_per_s"] / b["articles_per_s"]}
    floor = result.get("scrapy_floor")
    if floor:
        # On these cores the rate is at most the cores over the CPU an article costs in all, so no
        # Scrapy crawl of the site can pass bound CPU / (bound CPU + Scrapy's own CPU an article).
        fetches_per_article = p["pages"] / max(p["articles"], 1)
        out["ceiling for any Scrapy crawl: bound / (bound + Scrapy floor), CPU"] = (
            b["cpu_ms_per_article"] / (b["cpu_ms_per_article"] + floor["cpu_ms_per_page"] * fetches_per_article))
    if result.get("bare_scrapy"):
        out["pipeline / bare Scrapy (pages/s)"] = p["pages_per_s"] / result["bare_scrapy"]["pages_per_s"]
    if result.get("wget"):
        out["pipeline / wget (pages/s)"] = p["pages_per_s"] / result["wget"]["pages_per_s"]
        if result.get("bare_scrapy"):
            out["bare Scrapy / wget (pages/s)"] = result["bare_scrapy"]["pages_per_s"] / result["wget"]["pages_per_s"]
    rss = p["rss_peak_mb"]
    if len(rss) >= 2:
        marks = sorted(rss, key=int)
        out[f"peak RSS at {marks[-1]} / at {marks[0]} pages"] = rss[marks[-1]] / max(rss[marks[0]], 1)
    return {k: round(v, 3) for k, v in out.items()}


def get_table(g: dict) -> list[str]:
    lines = [f"| get --as html, {g['captures']} captures | p50 ms | p99 ms | CPU p50 ms |", "|---|---:|---:|---:|"]
    for where in ("local", "s3"):
        if where in g:
            for how in ("in_process", "cli"):
                r = g[where][how]
                cpu = g[where].get("cli_cpu", {}).get("p50_ms", "") if how == "cli" else ""
                lines.append(f"| {where}, {how.replace('_', ' ')} ({r['n']}) | {r['p50_ms']} | {r['p99_ms']} | {cpu} |")
    floor = g.get("python -c pass")
    if floor:
        lines.append(f"| `python -c pass`, the floor ({floor['cli']['n']}) | {floor['cli']['p50_ms']} | "
                     f"{floor['cli']['p99_ms']} | {floor['cli_cpu']['p50_ms']} |")
    return lines


def table(result: dict) -> str:
    if "pipeline" not in result:  # --only get
        return "\n".join(get_table(result["retrieval"]))
    b, p = result["bound"], result["pipeline"]
    lines = ["| what | pages | articles | wall s | pages/s | articles/s |", "|---|---:|---:|---:|---:|---:|"]
    lines.append(f"| bound: trafilatura alone, {b['workers']} processes | | {b['articles']} | {b['wall_s']} | | {b['articles_per_s']} |")
    e = result["extract_article"]
    lines.append(f"| extract_article alone, {e['workers']} processes | | {e['articles']} | {e['wall_s']} | | {e['articles_per_s']} |")
    lines.append(f"| pipeline: newsarchive crawl (end to end) | {p['pages']} | {p['articles']} | {p['wall_s']} | {p['pages_per_s']} | {p['articles_per_s']} |")
    for name in ("bare_scrapy", "scrapy_floor", "wget"):
        r = result.get(name)
        if r:
            lines.append(f"| {name.replace('_', ' ')} | {r['pages']} | | {r['wall_s']} | {r['pages_per_s']} | |")
    v = p.get("verified")
    if v:
        lines.append(f"| archive checked: warcio check {v['warcio_check']} ({v['warc_files']} files), article "
                     f"payloads byte-exact {v['payloads_exact']}/{v['payloads_exact'] + v['payloads_differing']}, "
                     f"texts equal {v['texts_equal']}/{v['texts_compared']} | | | | | |")
    lines += ["", "| ratio | |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in result["ratios"].items()]
    lines += ["", "| CPU ms per page (per article) | |", "|---|---:|"]
    for role, ms in sorted(p["cpu_ms_per_page"].items()):
        lines.append(f"| {role} | {ms} ({p['cpu_ms_per_article'][role]}) |")
    lines.append(f"| bound: trafilatura alone, per article | ({b['cpu_ms_per_article']}) |")
    for name in ("bare_scrapy", "scrapy_floor", "wget"):
        r = result.get(name)
        if r:
            lines.append(f"| {name.replace('_', ' ')} | {r['cpu_ms_per_page']} |")
    if p.get("phases"):
        lines += ["", "| the pipeline's wall clock | wall s | CPU s of its tree |", "|---|---:|---:|"]
        lines += [f"| {name.replace('_', ' ')} | {v['wall_s']} | {v['cpu_s']} |" for name, v in p["phases"].items()]
        lines.append(f"| (the site's server, all along) | | {p['site_server_cpu_s']} |")
    lines += ["", "| peak RSS of the crawl's process tree (crawl, forkserver, workers) | MB | with the CLI parent "
                  "| PSS (shared pages once) |", "|---|---:|---:|---:|"]
    lines += [f"| until {k} pages | {v} | {p['rss_peak_mb_with_cli'][k]} | {p['pss_peak_mb'].get(k, '')} |"
              for k, v in p["rss_peak_mb"].items()]
    lines.append(f"| whole crawl ({p['pages']} pages) | {p['rss_peak_mb_without_cli']} | {p['rss_peak_mb_whole_crawl']} | |")
    lines += [f"| &nbsp; {role} (its own peak) | {mb} | | |" for role, mb in p["rss_peak_mb_by_process"].items()]
    if result.get("retrieval"):
        lines += [""] + get_table(result["retrieval"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=4400, help="article pages on the site (~2.3 pages each)")
    parser.add_argument("--ours", type=int, default=1000, help="articles extract_article is timed on")
    parser.add_argument("--rss-at", default="1000,10000", help="pages at which the RSS peak is read")
    parser.add_argument("--captures", type=int, default=100_000, help="captures in the get-latency archive")
    parser.add_argument("--gets", type=int, default=300, help="in-process gets per archive")
    parser.add_argument("--cli-gets", type=int, default=30, help="CLI gets per archive")
    parser.add_argument("--pages", choices=available(), default=default_set(),
                        help="page set (benchmarks/pagesets.py): shared, the real evaluation pages of "
                             "../shared/testdata (the default when present), or corpus (tests/data)")
    parser.add_argument("--encoding", choices=("gzip", "identity"), default="gzip",
                        help="gzip (the default): the site gzips HTML for clients that accept it, as news "
                             "sites' servers do; identity: every body as it is")
    parser.add_argument("--no-wget", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a small run for CI: every step, a few tens of seconds")
    parser.add_argument("--only", choices=("get",), default=None,
                        help="run one step alone: get (retrieval latency, step 5)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)
    if args.smoke:
        args.articles, args.ours, args.rss_at = 40, 20, "20,80"
        args.captures, args.gets, args.cli_gets = 2000, 50, 3
    checkpoints = [int(x) for x in args.rss_at.split(",") if x.strip()]
    workers = os.cpu_count() or 1
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_path = args.out or HERE / "results" / f"pipeline-{'smoke-' if args.smoke else ''}{stamp}.json"

    result: dict = {"benchmark": "pipeline", "when": stamp, "smoke": args.smoke, "machine_before": machine()}
    if args.only == "get":
        return _finish(result, retrieval_only(args), out_path)
    t = time.perf_counter()
    pages = realsite.typical_pages(realsite.load_pages(args.pages))
    result["site"] = {"page_set": args.pages, "base_pages": len(pages),
                      "base_page_kb_mean": round(statistics.mean(len(p.body) for p in pages) / 1024, 1),
                      "base_page_kb_median": round(statistics.median(len(p.body) for p in pages) / 1024, 1),
                      "extraction_ms_mean": round(statistics.mean(p.ms for p in pages), 1),
                      "extraction_ms_median": round(statistics.median(p.ms for p in pages), 1),
                      "calibration_s": round(time.perf_counter() - t, 1)}
    site = realsite.Site(pages, args.articles, encoding=args.encoding)
    result["site"].update(articles=args.articles, expected_pages=site.pages(), encoding=args.encoding)
    print(f"site: {args.articles} articles from {len(pages)} {args.pages} pages "
          f"(extraction {result['site']['extraction_ms_mean']} ms mean), ~{site.pages()} pages", flush=True)

    server = realsite.SiteProcess(site)
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        print("bound ...", flush=True)
        result["bound"] = bound(site, args.articles, workers, _bound_chunk)
        result["extract_article"] = bound(site, min(args.ours, args.articles), workers, _ours_chunk)
        print("pipeline ...", flush=True)
        (work / "pipeline").mkdir()
        result["pipeline"] = pipeline(server, work / "pipeline", checkpoints, args.timeout)
        fetched = work / "fetched-urls.txt"
        write_fetched_urls(work / "pipeline" / "archive", fetched)
        shutil.rmtree(work / "pipeline", ignore_errors=True)
        print("bare Scrapy ...", flush=True)
        result["bare_scrapy"] = bare_scrapy(server, work, args.timeout)
        print("Scrapy's floor ...", flush=True)
        result["scrapy_floor"] = scrapy_floor(server, work, fetched, args.timeout)
        if not args.no_wget:
            print("wget ...", flush=True)
            result["wget"] = wget(server, work, args.timeout)
    finally:
        server.stop()
    try:
        print(f"get latency ({args.captures} captures) ...", flush=True)
        result["retrieval"] = retrieval(work, args.captures, max(1, args.captures // 4), args.gets, args.cli_gets)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["ratios"] = ratios(result)
    return _finish(result, result, out_path)


def retrieval_only(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-get-"))
    try:
        print(f"get latency ({args.captures} captures) ...", flush=True)
        return {"retrieval": retrieval(work, args.captures, max(1, args.captures // 4), args.gets, args.cli_gets)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _finish(result: dict, measured: dict, out_path: Path) -> int:
    result.update(measured)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["table"] = table(result)
    print(result["table"])
    print(f"load average before {result['machine_before']['load_average']}, after {result['load_average_after']}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
