"""Articles per second of a whole crawl, next to trafilatura alone on all cores; memory over time.

    .venv/bin/python benchmarks/bench_pipeline.py [--articles 1000] [--memory-articles 4000] [--quick]

1. baseline: trafilatura alone (decode_html + bare_extraction, as bench_extraction.py
   times it) and extract_article, over the same N pages in a warmed
   ProcessPoolExecutor of os.cpu_count() workers -> articles/s.
2. pipeline: a real crawl (flows.pipeline.run_crawl -> `python -m spiders.crawl`)
   of a generated site of N articles (tests/newssite.py's routes, one news
   sitemap entry per article, depth 0, delay 0), then index + manifest + upload
   into a temporary folder archive, each step timed. The site is served from a
   separate process (pre-built response bytes, asyncio) whose CPU time is
   measured and reported: on a small machine it competes with the crawl.
3. memory: RSS (and PSS) of the crawl process tree (Scrapy main process,
   forkserver, extraction workers), sampled from /proc during a longer crawl.

Everything talks to 127.0.0.1 only, and every phase has a time bound. Prints a
table and writes benchmarks/results/pipeline-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from pagesets import available, default_set  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------- the site

class _StubServer:
    """Stands in for tests/siteserver.py SiteServer while tests/newssite.py builds routes."""

    def __init__(self, port: int):
        self.port = port
        self.routes: dict = {}

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"http://{host or '127.0.0.1'}:{self.port}{path}"


def _response_bytes(route) -> bytes:
    from http.client import responses

    lines = [f"HTTP/1.1 {route.status} {route.reason or responses.get(route.status, 'OK')}"]
    lines += [f"{n}: {v}" for n, v in route.headers]
    lines += [f"Content-Length: {len(route.body)}", "Connection: keep-alive", "", ""]
    return "\r\n".join(lines).encode("latin-1") + route.body


def serve(n_articles: int, lifetime: float, page_set: str) -> None:
    """Serve the generated site of n_articles on 127.0.0.1; print the port; stop after `lifetime` s.

    Responses are built once per distinct page file and then sent as bytes, so the
    server costs little CPU per request (it is measured anyway).
    """
    from newssite import _build_generated
    from pagesets import load_pages

    pages = [p for p in load_pages(page_set) if p.kind == "article"]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        cache: dict = {}
        routes_box: list = []

        def respond(path: str) -> bytes:
            routes = routes_box[0]
            page = routes.pages.get(path) if path not in routes.fixed else None
            key = path if path in routes.fixed else ("page", id(page)) if page is not None else ("404",)
            data = cache.get(key)
            if data is None:
                from siteserver import Route
                route = routes[path] if key != ("404",) else Route(b"not found", status=404,
                                                                    headers=[("Content-Type", "text/plain")])
                data = cache[key] = _response_bytes(route)
            return data

        class Http(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                self.buf = b""

            def data_received(self, data):
                self.buf += data
                while b"\r\n\r\n" in self.buf:
                    head, self.buf = self.buf.split(b"\r\n\r\n", 1)
                    parts = head.split(b"\r\n", 1)[0].split(b" ")
                    path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
                    self.transport.write(respond(path))

        server = await loop.create_server(Http, "127.0.0.1", 0, backlog=256)
        port = server.sockets[0].getsockname()[1]
        site = _build_generated(_StubServer(port), _StubServer(port), n_articles, pages=pages)
        routes_box.append(site.routes)
        print(port, flush=True)
        await asyncio.sleep(lifetime)  # bounded: the server always stops by itself
        server.close()

    asyncio.run(main())


class SiteProcess:
    def __init__(self, n_articles: int, lifetime: float, page_set: str):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]))
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(n_articles), "--lifetime", str(lifetime),
                                      "--pages", page_set],
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.proc.kill()
            raise RuntimeError(f"site server did not start: {line!r}")
        self.port = int(line)
        self.base = f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return _proc_cpu(self.proc.pid) or 0.0

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


# --------------------------------------------------------------------------- /proc

def _proc_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _tree(root: int) -> list[int]:
    kids, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def _rss_pss(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
    except OSError:
        try:
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except OSError:
            pass
    return rss, pss


def _is_crawl(pid: int) -> bool:
    try:
        return b"spiders.crawl" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class TreeSampler(threading.Thread):
    """Every `interval` s: RSS/PSS of the crawl process (a child of ours running spiders.crawl) and its tree."""

    def __init__(self, progress: dict, interval: float = 0.5):
        super().__init__(daemon=True, name="rss-sampler")
        self.progress = progress
        self.interval = interval
        self.samples: list[dict] = []
        self.cpu: dict[int, float] = {}  # pid -> last CPU seconds seen
        self.roles: dict[int, str] = {}
        self.stop_event = threading.Event()
        self.own_cpu = 0.0
        self.t0 = time.perf_counter()

    def run(self) -> None:
        try:
            self._sample()
        finally:
            self.own_cpu = time.thread_time()  # the sampler's own cost, taken out of the parent's CPU

    def _sample(self) -> None:
        crawl = None
        while not self.stop_event.wait(self.interval):
            if crawl is None or not Path(f"/proc/{crawl}").exists():
                crawl = next((p for p in _children().get(os.getpid(), []) if _is_crawl(p)), None)
                if crawl is None:
                    continue
            tree = _tree(crawl)
            main_rss = main_pss = tree_rss = tree_pss = 0
            for pid in tree:
                rss, pss = _rss_pss(pid)
                tree_rss += rss
                tree_pss += pss
                if pid == crawl:
                    main_rss, main_pss = rss, pss
                cpu = _proc_cpu(pid)
                if cpu is not None:
                    self.cpu[pid] = cpu
                    self.roles.setdefault(pid, "main" if pid == crawl else "workers")
            self.samples.append({"t": round(time.perf_counter() - self.t0, 2), "procs": len(tree),
                                 "articles": self.progress.get("articles", 0), "pages": self.progress.get("pages", 0),
                                 "main_rss": main_rss, "main_pss": main_pss, "tree_rss": tree_rss, "tree_pss": tree_pss})

    def cpu_by_role(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, cpu in self.cpu.items():
            out[self.roles[pid]] = out.get(self.roles[pid], 0.0) + cpu
        return {k: round(v, 1) for k, v in out.items()}

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)


# --------------------------------------------------------------------------- baseline

_PAGES: list[tuple[bytes, str, str]] = []


def _load_pages(page_set: str) -> list[tuple[bytes, str, str]]:
    """The generated site's article bodies in its own order: (body, content_type, url) per distinct file."""
    from pagesets import load_pages

    pages = sorted((p for p in load_pages(page_set) if p.kind == "article"), key=lambda p: p.file)
    return [(p.body, p.content_type, p.url) for p in pages]


def _init_worker(page_set: str) -> None:
    _PAGES[:] = _load_pages(page_set)


def _trafilatura_alone(i: int) -> int:
    import trafilatura

    from spiders.extraction import decode_html

    body, ctype, url = _PAGES[i % len(_PAGES)]
    doc = trafilatura.bare_extraction(decode_html(body, ctype), url=url, with_metadata=True, include_comments=False)
    return 1 if doc and doc.text else 0


def _extract_article(i: int) -> int:
    from spiders.extraction import ExtractionError, extract_article

    body, ctype, url = _PAGES[i % len(_PAGES)]
    try:
        extract_article(body, url=url, content_type=ctype)
        return 1
    except ExtractionError:
        return 0


def baseline(n: int, workers: int, fn, timeout: float, page_set: str) -> dict:
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(page_set,)) as pool:
        list(pool.map(fn, range(workers * 4)))  # import and load in every worker before timing
        pids = list(pool._processes)  # the workers' CPU time, read from /proc, is independent of other load
        cpu0 = sum(_proc_cpu(p) or 0 for p in pids)
        start = time.perf_counter()
        done = sum(pool.map(fn, range(n), chunksize=4, timeout=timeout))
        wall = time.perf_counter() - start
        cpu = sum(_proc_cpu(p) or 0 for p in pids) - cpu0
    return {"pages": n, "with_text": done, "seconds": round(wall, 2), "pages_per_s": round(n / wall, 1),
            "cpu_ms_per_page": round(1000 * cpu / n, 1)}


# --------------------------------------------------------------------------- pipeline

def _sources_toml(base: str, n: int, concurrency: int) -> str:
    return "\n".join([
        "[[source]]", 'name = "bench"', f"sitemaps = ['{base}/sitemap_index.xml']", "allow = ['/news/']",
        "depth = 0", f"max_pages = {n + 100}", "delay = 0", f"concurrency = {concurrency}", ""])


def pipeline(n: int, *, concurrency: int, timeout: float, workdir: Path, sample: bool, page_set: str) -> dict:
    from flows import pipeline as fp

    site = SiteProcess(n, lifetime=timeout + 60, page_set=page_set)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        sources = workdir / "sources.toml"
        sources.write_text(_sources_toml(site.base, n, concurrency), encoding="utf-8")
        spool, archive = workdir / "spool", workdir / "archive"
        progress = {"articles": 0, "pages": 0, "first_article": None, "last_article": None}

        def on_event(event: dict) -> None:
            now = time.perf_counter()
            if event.get("event") == "page":
                progress["pages"] += 1
            elif event.get("event") == "article":
                progress["articles"] += 1
                progress["first_article"] = progress["first_article"] or now
                progress["last_article"] = now

        sampler = TreeSampler(progress)
        server_cpu0 = site.cpu_seconds()
        self_cpu0 = sum(os.times()[:2])
        sampler.start()
        start = time.perf_counter()
        try:
            stats = fp.run_crawl("bench", sources_file=sources, spool=spool, timeout=timeout, on_event=on_event)
        finally:
            crawl_s = time.perf_counter() - start
            sampler.stop()
        server_cpu = site.cpu_seconds() - server_cpu0
        self_cpu = sum(os.times()[:2]) - self_cpu0 - sampler.own_cpu
    finally:
        site.stop()

    # index, manifest, upload, catalog: the steps flows.pipeline.run_source chains after the crawl
    steps: dict[str, float] = {}
    post_error = None
    try:
        for name, step in (("index", lambda: fp.index_spool(spool)),
                           ("upload", lambda: (fp.write_manifest(spool, stats, source="bench"), fp.upload(spool, str(archive)))),
                           ("catalog", lambda: fp.update_catalog(str(archive)))):
            t = time.perf_counter()
            step()
            steps[name] = time.perf_counter() - t
    except Exception as exc:  # report the crawl numbers even when a later step breaks
        post_error = f"{type(exc).__name__}: {exc}"
        print(f"  index/upload failed: {post_error}", flush=True)
    index_s, upload_s, catalog_s = (steps.get(k, 0.0) for k in ("index", "upload", "catalog"))

    articles = int(stats.get("articles") or 0)
    steady = None
    if progress["first_article"] and progress["last_article"] and articles > 10:
        steady = (progress["articles"] - 1) / (progress["last_article"] - progress["first_article"])
    cpu = sampler.cpu_by_role()
    per = lambda sec: round(1000 * sec / articles, 1) if articles and sec is not None else None  # noqa: E731
    cpu_ms = {"crawl_main": per(cpu.get("main")), "extraction_workers": per(cpu.get("workers")),
              "site_server": per(server_cpu), "parent": per(self_cpu)}
    cpu_ms["total"] = round(sum(v for v in cpu_ms.values() if v), 1)
    out = {
        "articles": articles, "pages": stats.get("pages"), "errors": stats.get("errors"),
        "crawl_seconds": round(crawl_s, 2),
        "crawl_articles_per_s": round(articles / crawl_s, 1),
        "steady_articles_per_s": round(steady, 1) if steady else None,
        "post_crawl_error": post_error,
        "index_seconds": round(index_s, 2), "upload_seconds": round(upload_s, 2), "catalog_seconds": round(catalog_s, 2),
        "index_upload_articles_per_s": None if post_error else round(articles / (index_s + upload_s + catalog_s), 1),
        "end_to_end_articles_per_s": None if post_error else round(articles / (crawl_s + index_s + upload_s + catalog_s), 1),
        "cpu_seconds": {"crawl_main": cpu.get("main"), "extraction_workers": cpu.get("workers"),
                        "site_server": round(server_cpu, 2), "parent": round(self_cpu, 1)},
        "cpu_ms_per_article": cpu_ms,
    }
    if sample:
        out["memory"] = memory_summary(sampler.samples, articles)
    return out


def memory_summary(samples: list[dict], articles: int) -> dict:
    mb = 1024 * 1024
    if not samples:
        return {}
    lo, hi = 0.25 * articles, 0.95 * articles
    steady = [s for s in samples if lo <= s["articles"] <= hi]

    def slope(key: str) -> float | None:  # MB per 1000 articles, least squares over the steady part
        if len(steady) < 4 or steady[-1]["articles"] == steady[0]["articles"]:
            return None
        xs = [s["articles"] / 1000 for s in steady]
        ys = [s[key] / mb for s in steady]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        den = sum((x - mx) ** 2 for x in xs)
        return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den, 2) if den else None

    out = {"samples": len(samples), "interval_s": 0.5}
    for key in ("main_rss", "tree_rss", "tree_pss"):
        out[key] = {"peak_mb": round(max(s[key] for s in samples) / mb, 1),
                    "steady_median_mb": round(statistics.median(s[key] for s in steady) / mb, 1) if steady else None,
                    "growth_mb_per_1000": slope(key)}
    # a coarse series for the README / plots: about 40 points
    step = max(1, len(samples) // 40)
    out["series"] = [{"t": s["t"], "articles": s["articles"], "main_rss_mb": round(s["main_rss"] / mb, 1),
                      "tree_rss_mb": round(s["tree_rss"] / mb, 1), "tree_pss_mb": round(s["tree_pss"] / mb, 1)}
                     for s in samples[::step]]
    return out


# --------------------------------------------------------------------------- main

def machine() -> dict:
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        import scrapy
        import trafilatura
        info["trafilatura"] = trafilatura.__version__
        info["scrapy"] = scrapy.__version__
    except ImportError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000, help="articles for baseline and pipeline (default 1000)")
    parser.add_argument("--memory-articles", type=int, default=4000,
                        help="articles of the long crawl sampled for memory (0: skip; default 4000)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument("--quick", action="store_true", help="300 articles, memory crawl of 1000")
    parser.add_argument("--timeout", type=float, default=None,
                        help="bound on each crawl and baseline, seconds (default 120 + 0.5 s per article)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results/pipeline-<UTC>.json)")
    parser.add_argument("--pages", choices=available(), default=default_set(),
                        help="page set the generated site reuses: shared (the 107 real evaluation pages, "
                             "when ../shared/testdata is there; the default then) or corpus (tests/data)")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=600, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.lifetime, args.pages)
        return 0
    if args.quick:
        args.articles, args.memory_articles = 300, 1000 if args.memory_articles else 0

    if args.timeout is None:
        args.timeout = 120 + 0.5 * max(args.articles, args.memory_articles)
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    cores = os.cpu_count() or 1
    n = args.articles
    info = machine()
    print(f"pipeline benchmark: {n} articles ({args.pages} pages), {cores} cores, load average {info['load_average']}", flush=True)

    rows = []
    base = baseline(n, cores, _trafilatura_alone, args.timeout, args.pages)
    rows.append({"what": "trafilatura alone, all cores", **base})
    print(f"  baseline trafilatura alone: {base['pages_per_s']} pages/s", flush=True)
    ours = baseline(n, cores, _extract_article, args.timeout, args.pages)
    rows.append({"what": "extract_article, all cores", **ours})
    print(f"  extract_article alone:      {ours['pages_per_s']} pages/s", flush=True)

    work = Path(tempfile.mkdtemp(prefix="newsarchive-bench-"))
    try:
        run = pipeline(n, concurrency=args.concurrency, timeout=args.timeout, workdir=work / "run", sample=False,
                       page_set=args.pages)
        print(f"  pipeline crawl:             {run['crawl_articles_per_s']} articles/s", flush=True)
        memory = None
        if args.memory_articles:
            memory = pipeline(args.memory_articles, concurrency=args.concurrency, timeout=args.timeout,
                              workdir=work / "memory", sample=True, page_set=args.pages)
            print(f"  memory crawl ({args.memory_articles}):        {memory['crawl_articles_per_s']} articles/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    alone = base["pages_per_s"]
    ratios = {
        "crawl_vs_trafilatura_alone": round(run["crawl_articles_per_s"] / alone, 2),
        "steady_vs_trafilatura_alone": round((run["steady_articles_per_s"] or 0) / alone, 2),
        "end_to_end_vs_trafilatura_alone": round((run["end_to_end_articles_per_s"] or 0) / alone, 2),
        "crawl_vs_extract_article_alone": round(run["crawl_articles_per_s"] / ours["pages_per_s"], 2),
        # CPU per article, alone vs in the crawl: the wall-clock ratio to expect when the
        # machine is otherwise idle and everything is CPU bound (immune to other load)
        "cpu_alone_vs_cpu_crawl": round(ours["cpu_ms_per_page"] / run["cpu_ms_per_article"]["total"], 2),
        "target": 0.85,
    }
    info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]

    print()
    print(f"{'what':<44}{'articles':>9}{'seconds':>9}{'per s':>8}{'vs alone':>10}{'CPU ms/art':>12}")
    for r in rows:
        print(f"{r['what']:<44}{r['pages']:>9}{r['seconds']:>9}{r['pages_per_s']:>8}{r['pages_per_s'] / alone:>10.2f}"
              f"{r['cpu_ms_per_page']:>12}")
    for label, r, key, secs in (
            ("pipeline: crawl+WARC+extraction", run, "crawl_articles_per_s", run["crawl_seconds"]),
            ("pipeline: same, first..last article", run, "steady_articles_per_s", None),
            ("pipeline: index+manifest+upload+catalog", run, "index_upload_articles_per_s",
             run["index_seconds"] + run["upload_seconds"] + run["catalog_seconds"]),
            ("pipeline: end to end", run, "end_to_end_articles_per_s", None)):
        rate = r[key] or 0
        cpu = run["cpu_ms_per_article"]["total"] if key == "crawl_articles_per_s" else ""
        print(f"{label:<44}{r['articles']:>9}{'' if secs is None else round(secs, 1):>9}{rate:>8}{rate / alone:>10.2f}"
              f"{cpu:>12}")
    c = run["cpu_ms_per_article"]
    print(f"CPU ms per article in the crawl: Scrapy main {c['crawl_main']}, extraction workers {c['extraction_workers']}, "
          f"site server {c['site_server']}, parent (reads progress) {c['parent']}")
    if memory:
        m = memory["memory"]
        print(f"memory, crawl of {memory['articles']} articles ({memory['crawl_articles_per_s']} articles/s):")
        for key, label in (("main_rss", "Scrapy process RSS"), ("tree_rss", "process tree RSS"), ("tree_pss", "process tree PSS")):
            v = m[key]
            print(f"  {label:<20} peak {v['peak_mb']} MB, steady median {v['steady_median_mb']} MB, "
                  f"growth {v['growth_mb_per_1000']} MB / 1000 articles")
    print(f"ratio crawl / trafilatura alone: {ratios['crawl_vs_trafilatura_alone']} "
          f"(first..last article {ratios['steady_vs_trafilatura_alone']}; by CPU per article, "
          f"extract_article alone / crawl: {ratios['cpu_alone_vs_cpu_crawl']}; target {ratios['target']})")

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or ROOT / "benchmarks" / "results" / f"pipeline-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "pipeline", "when": stamp, "page_set": args.pages, "articles": n, "concurrency": args.concurrency,
                               "machine": info, "baseline": rows, "pipeline": run, "ratios": ratios,
                               "memory_run": memory}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
