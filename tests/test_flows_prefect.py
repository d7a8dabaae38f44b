"""The Prefect flows under prefect_test_harness: crawl-source into a folder archive, crawl-all with a
broken site, crawl-all bounding a child by its timeout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file())


def _flow_runs_by_name() -> dict[str, list]:
    from prefect.client.orchestration import get_client

    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200, sort=FlowRunSort.ID_DESC)
    out: dict[str, list] = {}
    for run in runs:
        out.setdefault(run.name, []).append(run)
    return out


def _artifacts(key: str) -> list:
    from fixtures_prefect import read_artifacts

    return read_artifacts(key=key)


def test_crawl_source_archives_captures_text_and_publishes_artifacts(news_site, tmp_path, spool_dir):
    from flows.crawl import crawl_source

    sources = news_site.write_sources(tmp_path, depth=1)  # uncapped: the same pages whatever comes first
    archive = tmp_path / "archive"
    state = crawl_source(source="testnews", sources_file=str(sources), archive=str(archive), return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["articles"] == len(news_site.listed) + 1  # + the query-string listing under /news/

    assert _files(archive / "warc" / "testnews", "*.warc.gz")
    assert _files(archive / "indexes" / "testnews", "*.cdxj")
    texts = _files(archive / "articles" / "testnews", "*.txt")
    assert len(texts) == summary["articles"]
    assert texts[0].read_text(encoding="utf-8").strip()

    markdown = _artifacts("crawl-testnews")
    assert markdown and "# Crawl of `testnews`" in markdown[0]["data"]
    files = _artifacts("crawl-testnews-files")
    assert files
    table = files[0]["data"]
    assert "warc/testnews/" in table and str(archive.resolve()) in table
    counts = _artifacts("crawl-testnews-counts")
    assert counts and f'"pages": {summary["pages"]}' in counts[0]["data"].replace("'", '"')

    # the run let go of its guard: the source's spool lock (the only one on a temporary
    # server, which would never expire a concurrency lease of a killed run) is free again
    from storage.recovery import LOCK_NAME, SpoolLock

    spool = spool_dir / "testnews"
    assert not (spool / LOCK_NAME).exists()
    SpoolLock(spool, "testnews").acquire().release()


def test_crawl_all_one_broken_site_fails_alone(news_site, tmp_path, spool_dir, closed_port_url):
    from flows.crawl import crawl_all

    sources = tmp_path / "sources.toml"
    # depth 0: a page cap is applied as requests are scheduled, so links of a homepage parsed
    # before the feeds could take every slot; without them, 10 pages always include articles
    sources.write_text(news_site.sources_toml("goodnews", depth=0)
                       + f'\n[[source]]\nname = "broken"\nstart_urls = ["{closed_port_url}"]\n',
                       encoding="utf-8")
    archive = tmp_path / "archive"
    state = crawl_all(sources_file=str(sources), archive=str(archive), max_pages=10, return_state=True)

    assert state.is_failed()
    assert "1 of 2 source(s) failed" in state.message and "broken" in state.message
    assert "goodnews" not in state.message.split("failed:", 1)[1]

    runs = _flow_runs_by_name()
    broken, = runs["crawl-broken"]
    good, = runs["crawl-goodnews"]
    assert broken.state.is_failed() and "broken" in broken.state.message
    assert good.state.is_completed()
    # the good source was archived in full despite its broken neighbour
    assert _files(archive / "warc" / "goodnews", "*.warc.gz")
    assert _files(archive / "articles" / "goodnews", "*.txt")
    assert not (archive / "warc" / "broken").exists()
    rows = _artifacts("crawl-all")
    assert rows and "broken" in rows[0]["data"] and "COMPLETED" in rows[0]["data"]


def test_crawl_all_bounds_each_child_by_its_timeout_and_reports_it(news_site, tmp_path, spool_dir):
    from flows.crawl import crawl_all

    sources = tmp_path / "sources.toml"  # a crawl of ~30 s (a delay per page) against a 6 s bound
    sources.write_text(news_site.sources_toml("crawlslow", depth=1, delay=1.0, concurrency=1), encoding="utf-8")
    state = crawl_all(sources_file=str(sources), archive=str(tmp_path / "archive"), via="subflows",
                      timeout_minutes=0.1, return_state=True)

    assert state.is_failed()
    assert "crawlslow: timed out after 0.1 min" in state.message, state.message
    row, = json.loads(_artifacts("crawl-all")[0]["data"])
    assert row["source"] == "crawlslow" and row["state"] != "COMPLETED"
    assert row["message"] == "crawlslow: timed out after 0.1 min"
    # the crawl it started did not outlive it, and left the spool to the next run
    from storage.recovery import SpoolLock

    SpoolLock(spool_dir / "crawlslow", "crawlslow").acquire().release()
