"""`python -m spiders.crawl` end to end (NewsSpider, real extraction), and WARC rotation."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from fixtures_capture import ROOT, run_capture_crawl
from loopback import closed_port
from siteserver import Route, SiteServer

BIN = Path(sys.executable).parent


def crawl_cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NEWSARCHIVE_SOURCES"}
    return subprocess.run([sys.executable, "-m", "spiders.crawl", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def warcio_check(paths) -> None:
    proc = subprocess.run([str(BIN / "warcio"), "check", *map(str, paths)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in paths:  # warcio check passes a file cut mid-record; gzip does not
        with gzip.open(path) as fh:
            while fh.read(1 << 20):
                pass


def record_offsets(path: Path) -> list[tuple[str, int]]:
    """(record type, offset of its gzip member) for every record of a WARC."""
    with open(path, "rb") as fh:
        records = ArchiveIterator(fh)
        return [(rec.rec_type, records.get_record_offset()) for rec in records]


def read_records(path: Path):
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            yield rec, rec.raw_stream.read()


@pytest.fixture(scope="module")
def cli_crawl(news_site, tmp_path_factory):
    # All of depth 1, no page cap: what the crawl reaches does not depend on which response
    # is parsed first (a cap is applied as requests are scheduled, in arrival order).
    tmp = tmp_path_factory.mktemp("cli")
    sources = news_site.write_sources(tmp, delay=0, concurrency=8, depth=1)
    spool, stats_out = tmp / "spool", tmp / "stats.json"
    proc = crawl_cli("--source", "testnews", "--sources", str(sources), "--spool", str(spool),
                     "--stats-out", str(stats_out), "--progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, spool, json.loads(stats_out.read_text())


def test_cli_writes_stats_json_as_documented(cli_crawl, news_site):
    proc, spool, stats = cli_crawl
    assert set(stats) == {"source", "started", "finished", "pages", "articles", "bytes", "errors",
                          "error_samples", "files", "status_counts", "skipped_seen", "revisits", "unchanged",
                          "requisites"}
    assert stats["skipped_seen"] == stats["revisits"] == 0  # no --seen: a full crawl
    assert stats["source"] == "testnews"
    assert stats["started"] <= stats["finished"]
    # + the query-string listing the homepage links: it matches the allow regex (/news/) too
    assert stats["articles"] == len(news_site.listed) + 1 < stats["pages"]
    assert sum(stats["status_counts"].values()) == stats["pages"]  # requisites are counted apart
    assert set(stats["requisites"]) == {"archived", "revisits", "failed", "not_fetched"}
    assert stats["files"] and all((spool / key).is_file() for key in stats["files"])
    assert not list(spool.rglob("*.open"))


def test_cli_progress_lines_are_json_on_stdout(cli_crawl):
    proc, spool, stats = cli_crawl
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    pages = [e for e in events if e["event"] == "page"]
    articles = [e for e in events if e["event"] == "article"]
    assert len(pages) == stats["pages"] and len(articles) == stats["articles"]
    assert all(set(e) == {"event", "url", "status", "bytes", "article"} for e in pages)
    assert all(e["title"] for e in articles)
    assert any(e["url"].endswith("/robots.txt") for e in pages)
    assert "Traceback" not in proc.stderr and "ConnectionError" not in proc.stderr


def test_cli_articles_have_text_json_and_a_conversion_record(cli_crawl):
    proc, spool, stats = cli_crawl
    capture_warcs = [spool / k for k in stats["files"] if k.endswith(".warc.gz") and not k.endswith(".text.warc.gz")]
    text_warcs = [spool / k for k in stats["files"] if k.endswith(".text.warc.gz")]
    assert capture_warcs and text_warcs
    warcio_check(capture_warcs + text_warcs)
    responses = {rec.rec_headers.get_header("WARC-Record-ID"): rec.rec_headers
                 for warc in capture_warcs for rec, _ in read_records(warc) if rec.rec_type == "response"}
    conversions = [(rec.rec_headers, payload) for warc in text_warcs
                   for rec, payload in read_records(warc) if rec.rec_type == "conversion"]
    assert len(conversions) == stats["articles"]
    txt_keys = [k for k in stats["files"] if k.endswith(".txt")]
    texts = {(spool / k).read_bytes() for k in txt_keys}
    for headers, payload in conversions:
        refers = responses[headers.get_header("WARC-Refers-To")]
        assert headers.get_header("WARC-Target-URI") == refers.get_header("WARC-Target-URI")
        assert headers.get_header("WARC-Date") == refers.get_header("WARC-Date")
        assert headers.get_header("Content-Type") == "text/plain; charset=utf-8"
        assert payload in texts  # the record carries exactly the .txt file
    for key in txt_keys:  # metadata beside every text, describing that text and its capture
        text = (spool / key).read_text(encoding="utf-8")
        header = text.partition("\n\n")[0].splitlines()
        meta = json.loads((spool / key[:-4]).with_suffix(".json").read_text(encoding="utf-8"))
        assert (meta["title"], meta["url"]) == (header[0], header[-1])
        captured = responses[meta["capture"]["record_id"]]
        assert captured.get_header("WARC-Target-URI") == meta["url"]
        assert meta["fetched_at"] == captured.get_header("WARC-Date")
        assert meta["word_count"] >= 10 and meta["charset"] and meta["extractor"]["name"] == "trafilatura"


@pytest.mark.parametrize("problem", ["unknown", "invalid"])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, news_site, problem):
    sources = news_site.write_sources(tmp_path)
    if problem == "invalid":
        sources.write_text("[[source]]\nname = 'Bad Name!'\nstart_urls = 3\n")
    proc = crawl_cli("--source", "nosuch" if problem == "unknown" else "bad", "--sources", str(sources),
                     "--spool", str(tmp_path / "spool"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(sources) in lines[0]  # the file, and what is wrong with it
    assert ("'nosuch'" in lines[0] and "testnews" in lines[0]) if problem == "unknown" else "Bad Name" in lines[0]


def test_cli_unreachable_site_exits_3(tmp_path):
    sources = tmp_path / "sources.toml"
    with closed_port() as port:  # a loopback port nobody listens on, for the whole crawl
        sources.write_text(f"[[source]]\nname = 'gone'\nstart_urls = ['http://127.0.0.1:{port}/']\ndelay = 0\n")
        env_free = crawl_cli("--source", "gone", "--sources", str(sources), "--spool", str(tmp_path / "spool"),
                             "--stats-out", str(tmp_path / "stats.json"))
    assert env_free.returncode == 3, env_free.stderr[-2000:]
    last = env_free.stderr.strip().splitlines()[-1]
    assert last.startswith("error: nothing could be fetched") and "gone" in last
    assert json.loads((tmp_path / "stats.json").read_text())["pages"] == 0


def test_rotation_keeps_each_request_with_its_response(tmp_path):
    routes = {f"/p{i}?x={i}": Route(bytes([65 + i % 26]) * (700 + 37 * i), headers=[("Content-Type", "text/plain")])
              for i in range(20)}
    routes["/robots.txt"] = Route(b"User-agent: *\nAllow: /\n")
    max_size = 3000
    with SiteServer(routes) as site:
        result = run_capture_crawl([site.url(p) for p in routes if p != "/robots.txt"], tmp_path / "spool",
                                   settings={"NEWSARCHIVE_WARC_MAX_SIZE": max_size})
        sent = {site.url(p): r.body for p, r in routes.items()}
    assert result.returncode == 0, result.stderr[-3000:]
    warcs = sorted(result.warcs(), key=lambda w: int(w.name.split("-")[3]))
    assert sorted(int(w.name.split("-")[3]) for w in warcs) == list(range(1, len(warcs) + 1))
    warcio_check(warcs)
    seen = {}
    for n, warc in enumerate(warcs, 1):
        recs = list(read_records(warc))
        assert recs[0][0].rec_type == "warcinfo"
        ids = {r.rec_headers.get_header("WARC-Record-ID") for r, _ in recs if r.rec_type == "response"}
        for rec, payload in recs[1:]:
            if rec.rec_type == "request":
                assert rec.rec_headers.get_header("WARC-Concurrent-To") in ids  # pair in the same file
            else:
                seen[rec.rec_headers.get_header("WARC-Target-URI")] = payload
        # rotation, whatever order the responses came in: every file but the last was closed
        # by the first pair that took it past max_size, and not before
        if n < len(warcs):
            last_pair_start = [offset for kind, offset in record_offsets(warc) if kind == "response"][-1]
            assert last_pair_start < max_size <= warc.stat().st_size, warc.name
    assert seen == sent
    # 21 exchanges of several hundred bytes each cannot fit in one file of 3000
    assert sum(w.stat().st_size for w in warcs) > 2 * max_size and len(warcs) >= 2
    assert sorted(result.stats["files"]) == sorted(str(w.relative_to(result.spool)) for w in warcs)


def test_extraction_failure_is_a_recorded_error(tmp_path):
    routes = {"/robots.txt": Route(b""),
              "/good": Route(b"<html><p>fine</p></html>", headers=[("Content-Type", "text/html")]),
              "/bad": Route(b"<html>NOARTICLE</html>", headers=[("Content-Type", "text/html")])}
    with SiteServer(routes) as site:
        result = run_capture_crawl([site.url("/good"), site.url("/bad")], tmp_path / "spool",
                                   articles=[site.url("/good"), site.url("/bad")])
    assert result.returncode == 0
    assert result.stats["articles"] == 1
    assert result.stats["errors"] == {"extraction": 1}
    sample = result.stats["error_samples"][0]
    assert sample["url"].endswith("/bad") and sample["message"] == "NoArticle: no article text"
    assert len(list(result.spool.rglob("*.txt"))) == 1
    items = {i["url"].rsplit("/", 1)[1]: i for i in result.items}
    assert items["bad"]["error"] == sample["message"] and items["good"]["title"] == f"title of {items['good']['url']}"
    meta = json.loads(next(result.spool.rglob("*.json")).read_text())
    assert meta["capture"]["record_id"] == items["good"]["capture"]["record_id"]


def test_killed_crawl_keeps_every_pair_it_wrote(tmp_path):
    """SIGKILL mid-crawl: the .open file holds whole, valid pairs for every finished exchange."""
    import signal
    import threading
    import time

    release = threading.Event()
    fast = {f"/a{i}": Route(b"page %d" % i) for i in range(6)}

    def routes(path, server):
        if path == "/hang":
            release.wait(600)  # never answered while the crawl lives
            return Route(b"late")
        return fast.get(path) or (Route(b"") if path == "/robots.txt" else None)

    spool = tmp_path / "spool"
    with SiteServer(routes) as site:
        args = {"urls": [site.url(p) for p in fast] + [site.url("/hang")], "articles": [], "spool": str(spool),
                "out": str(tmp_path / "out.json"),
                # no download timeout within the test's life: /hang stays in flight until the kill
                "settings": {"DOWNLOAD_TIMEOUT": 900}}
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
        proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fixtures_capture.py"), json.dumps(args)],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300  # a bound on waiting, not a speed target
            found: set[str] = set()
            while len(found) < len(fast) + 1 and time.monotonic() < deadline:  # + robots.txt
                time.sleep(0.2)
                for open_file in spool.rglob("*.warc.gz.open"):
                    try:
                        found = {r.rec_headers.get_header("WARC-Target-URI") for r, _ in read_records(open_file)
                                 if r.rec_type == "request"}
                    except Exception:  # caught mid-write: look again
                        pass
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            release.set()
    open_files = list(spool.rglob("*.warc.gz.open"))
    assert len(open_files) == 1
    warcio_check(open_files)
    kept = {rec.rec_headers.get_header("WARC-Target-URI"): payload
            for rec, payload in read_records(open_files[0]) if rec.rec_type == "response"}
    assert {site.url(p): r.body for p, r in fast.items()}.items() <= kept.items()
    assert site.url("/hang") not in kept


def test_operator_settings_come_from_the_environment(tmp_path, news_site):
    """NEWSARCHIVE_OPERATOR, NEWSARCHIVE_USER_AGENT and NEWSARCHIVE_WARC_MAX_SIZE reach the crawl."""
    sources = news_site.write_sources(tmp_path, delay=0, concurrency=8, depth=1)
    spool = tmp_path / "spool"
    env = {k: v for k, v in os.environ.items() if k != "NEWSARCHIVE_SOURCES"}
    # A 1-byte limit: every exchange crosses it, so each one closes its file (rotation
    # happens after a group), whatever order the responses arrive in.
    env.update({"NEWSARCHIVE_OPERATOR": "Archive Desk <archive@example.org>",
                "NEWSARCHIVE_USER_AGENT": "newsarchive-test (+mailto:archive@example.org)",
                "NEWSARCHIVE_WARC_MAX_SIZE": "1"})
    before = len(news_site.server.requests)
    proc = subprocess.run([sys.executable, "-m", "spiders.crawl", "--source", "testnews", "--sources", str(sources),
                           "--spool", str(spool), "--max-pages", "8"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    requests = news_site.server.requests[before:]
    warcs = sorted(p for p in spool.rglob("*.warc.gz") if not p.name.endswith(".text.warc.gz"))
    assert len(warcs) == len(requests) >= 2  # one file per exchange: robots.txt and the pages
    warcio_check(warcs)
    for path in warcs:
        records = [rec for rec, _ in read_records(path)]
        assert [r.rec_type for r in records] == ["warcinfo", "response", "request"], path.name
        info = next(read_records(path))[1]
        assert b"operator: Archive Desk <archive@example.org>" in info
    agents = {dict(r.headers).get("User-Agent") for r in requests}
    assert agents == {"newsarchive-test (+mailto:archive@example.org)"}
