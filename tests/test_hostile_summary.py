"""A hostile crawl through the whole run (flows.pipeline.run_source): every failure kind the crawl
counts reaches the run summary, its markdown (the Prefect artifact) and the run manifest."""

import gzip
import json
import socket

from flows import pipeline
from siteserver import Route

from fixtures_hostile import log_memory, readable_text
from hostile_site import HTML, HostileSite, page
from treememory import TreeMemory


def test_every_kind_reaches_the_summary_the_artifact_and_the_manifest(tmp_path):
    site = HostileSite(tmp_path / "local")
    try:
        good = site.articles("", 2)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{s.getsockname()[1]}/news/dead"
        bomb = gzip.compress(b"<html><body>" + b" " * (60 * 1024 * 1024))
        site.add("/news/bomb", Route(bomb, headers=HTML + [("Content-Encoding", "gzip")]))
        site.add("/news/big", Route(b"<html><body><p>" + b"word " * (1200 * 1024) + b"</p></body></html>", headers=HTML))
        site.add("/news/away", Route(b"", status=302, headers=[("Location", site.bait.url("/x"))]))
        site.add("/news/loop", Route(b"", status=302, headers=[("Location", "/news/loop")]))
        for i in range(25):
            site.add(f"/news/chain/{i}", Route(b"", status=302, headers=[("Location", f"/news/chain/{i + 1}")]))
        site.add("/", page("Home", *good, "/news/bomb", "/news/big", "/news/away", "/news/loop", "/news/chain/0",
                           dead, f"file://{site.canary_file}"))
        sources = tmp_path / "sources.toml"
        sources.write_text(site.sources_toml())
        archive = tmp_path / "archive"
        watch = TreeMemory()
        watch.start()
        try:
            summary = pipeline.run_source("hostile", sources_file=sources, archive=str(archive),
                                          spool=tmp_path / "spool")
        finally:
            memory = watch.finish()
            log_memory(memory)
    finally:
        site.stop()
    expected = {"bad-scheme": 1, "off-scope": 1, "decompression-limit": 1, "too-large": 1, "redirect-loop": 1,
                "redirect-limit": 1, "connection": 1}
    assert summary.errors == expected, summary.errors
    assert summary.verdict is None  # refusals and limits are no failed crawl
    assert {s["kind"] for s in summary.error_samples} == set(expected)  # a sample of each kind
    for kind, count in expected.items():
        assert f"| {kind} | {count} |" in summary.markdown(), kind  # the markdown artifact
    manifests = sorted(archive.rglob("runs/hostile/**/*.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["stats"]["errors"] == expected
    assert {s["kind"] for s in manifest["stats"]["error_samples"]} == set(expected)
    assert summary.articles == 2 and not site.bait.connections
    for path in (p for p in archive.rglob("*") if p.is_file()):
        assert site.canary.encode() not in readable_text(path), path
    assert memory["samples"] and memory["main_mb"] > 50 and memory["peak_mb"] < 768, memory


def test_a_flood_of_one_kind_never_hides_another_in_the_samples():
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    from spiders.stats import MAX_ERROR_SAMPLES, record_error, summary

    stats = MemoryStatsCollector(get_crawler())
    for i in range(500):
        record_error(stats, "http-4xx", f"http://127.0.0.1/{i}", "HTTP 404")
    for kind in ("blocked-address", "too-large", "off-scope"):
        record_error(stats, kind, f"http://127.0.0.1/{kind}", kind)
    samples = summary("s", stats.get_stats())["error_samples"]
    assert len(samples) == MAX_ERROR_SAMPLES
    assert [s["kind"] for s in samples[:4]] == ["http-4xx", "blocked-address", "too-large", "off-scope"]
    assert summary("s", stats.get_stats())["errors"]["http-4xx"] == 500


def test_refusals_never_make_a_run_fail_but_failed_fetches_still_do():
    from flows.summary import assess

    ok = {"pages": 3, "status_counts": {"200": 3}}
    assert assess("s", {**ok, "errors": {"bad-scheme": 40, "off-scope": 9, "blocked-address": 5, "bad-url": 2}}) is None
    assert "crawl mostly failed" in assess("s", {**ok, "errors": {"bad-scheme": 40, "timeout": 4}})
