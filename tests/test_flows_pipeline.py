"""flows/pipeline.py without Prefect: a whole run on the test news site, crawl errors, verdicts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from flows import crawler, pipeline
from flows.summary import RunSummary, assess
from storage.cdxj import index_spool
from storage.errors import CrawlError
from storage.recovery import SpoolLock
from storage.backends import ObjectInfo
from storage.spool import UploadReport


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file())


def test_run_source_archives_captures_text_and_streams_progress(news_site, tmp_path, spool_dir):
    # all of depth 1, uncapped: the pages reached do not depend on which response came first
    sources = news_site.write_sources(tmp_path, depth=1)
    archive = tmp_path / "archive"
    seen: list[dict] = []
    sink_seen: list[dict] = []
    lock = threading.Lock()

    def sink(event):
        with lock:
            sink_seen.append(event)

    previous = crawler.set_event_sink(sink)
    try:
        summary = pipeline.run_source("testnews", sources_file=sources, archive=str(archive),
                                      on_event=seen.append)
    finally:
        crawler.set_event_sink(previous)

    assert summary.verdict is None
    # every listed article, and the query-string listing the homepage links (it is under /news/ too)
    assert summary.articles == len(news_site.listed) + 1 and summary.pages > summary.articles
    warcs = _files(archive / "warc" / "testnews", "*.warc.gz")
    assert warcs, "no WARC in the archive"
    assert _files(archive / "indexes" / "testnews", "*.cdxj"), "no CDXJ index in the archive"
    texts = _files(archive / "articles" / "testnews", "*.txt")
    assert len(texts) == summary.articles
    first = texts[0].read_text(encoding="utf-8").splitlines()
    assert first[0].strip() and any(line.startswith(news_site.base_url) for line in first[:4])
    assert _files(archive / "runs" / "testnews", "*.json"), "no run manifest"
    # every file the summary lists was archived, and is in the archive under its key
    assert summary.files and all(f.archived for f in summary.files), summary.files
    for f in summary.files:
        assert Path(f.archive_ref).is_file() and Path(f.archive_ref) == archive.resolve() / f.key
    assert "| pages | articles | bytes | errors |" in summary.markdown()
    # the spool keeps nothing finished once uploaded
    assert not [p for p in spool_dir.rglob("*") if p.is_file() and not p.name.endswith(".open")]
    # progress: the callback and the process-wide sink saw the same page events, tagged with the source
    pages = [e for e in seen if e.get("event") == "page"]
    assert len(pages) == summary.pages
    assert all(e["source"] == "testnews" for e in seen)
    assert [e for e in sink_seen if e.get("event") == "page"] == pages


def test_run_crawl_unknown_source_is_one_line_error(news_sources_file, tmp_path):
    with SpoolLock(tmp_path / "spool") as lock, pytest.raises(CrawlError) as err:
        crawler.run_crawl("nosuchsource", sources_file=news_sources_file, lock=lock)
    message = str(err.value)
    assert message.startswith("nosuchsource: unknown source 'nosuchsource' in ") and "\n" not in message


def test_unreachable_site_fails_with_the_crawls_reason(tmp_path, spool_dir, closed_port_url):
    sources = tmp_path / "sources.toml"
    sources.write_text(f'[[source]]\nname = "broken"\nstart_urls = ["{closed_port_url}"]\n')
    summary = pipeline.run_source("broken", sources_file=sources, archive=str(tmp_path / "archive"))
    assert summary.failed and summary.pages == 0
    assert summary.verdict.startswith("broken: nothing could be fetched") and "\n" not in summary.verdict


def test_assess_names_mostly_failed_crawls():
    assert assess("s", {"pages": 10, "errors": {"http-404": 2}}) is None
    assert assess("s", {"pages": 0, "errors": {"dns": 3}}) == "s: no page fetched (dns 3)"
    verdict = assess("s", {"pages": 5, "status_counts": {"200": 2, "500": 3}, "errors": {"http-500": 3}})
    assert verdict == "s: crawl mostly failed: 3 failed fetches against 2 pages fetched (http-500 3)"
    # dead links are the site's own: archived, counted, but no reason to fail the run
    assert assess("s", {"pages": 50, "status_counts": {"200": 5, "404": 45}, "errors": {"http-4xx": 45}}) is None
    assert "mostly failed" in assess("s", {"pages": 50, "status_counts": {"200": 5},
                                           "errors": {"http-4xx": 40, "timeout": 6}})


def test_summarize_lists_files_with_archive_keys(tmp_path):
    stats = {"source": "s", "pages": 3, "articles": 1, "bytes": 1234, "errors": {"timeout": 1},
             "files": ["warc/s/2024/01/02/a.warc.gz", "articles/s/2024/01/02/x.txt"]}
    uploaded = ["warc/s/2024/01/02/a.warc.gz", "articles/s/2024/01/02/x.txt", "indexes/s/2024/01/02/a.warc.gz.cdxj"]
    report = UploadReport(uploaded=[ObjectInfo(k, 1) for k in uploaded])
    summary = RunSummary.build("s", stats, report, archive=str(tmp_path))
    keys = {f.key: f for f in summary.files}
    assert set(keys) == set(uploaded)
    assert keys["warc/s/2024/01/02/a.warc.gz"].archive_ref == str(tmp_path.resolve() / "warc/s/2024/01/02/a.warc.gz")
    assert keys["warc/s/2024/01/02/a.warc.gz"].this_run and not keys["indexes/s/2024/01/02/a.warc.gz.cdxj"].this_run
    assert summary.errors == {"timeout": 1} and summary.error_total == 1 and summary.verdict is None
    s3 = RunSummary.build("s", stats, report, archive="s3://bucket/news")
    assert {f.archive_ref for f in s3.files} == {f"s3://bucket/news/{k}" for k in uploaded}
    assert RunSummary.from_dict(s3.as_dict()) == s3  # it travels as a Prefect result and back


def test_failed_upload_keeps_the_spool_and_says_so(tmp_path):
    key = "articles/s/2024/01/02/20240102030405-0123456789abcdef.txt"
    spool = tmp_path / "spool"
    archive = tmp_path / "archive"
    (spool / key).parent.mkdir(parents=True)
    (spool / key).write_text("the text this run extracted\n", encoding="utf-8")
    (archive / key).parent.mkdir(parents=True)
    (archive / key).write_text("something else already archived under that key\n", encoding="utf-8")

    with SpoolLock(spool) as lock, pytest.raises(pipeline.UploadError) as err:
        pipeline.upload(lock, str(archive))
    assert "kept in the spool" in str(err.value) and "\n" not in str(err.value)
    assert err.value.report.failed and err.value.report.failed[0][0] == key
    recovered, report = pipeline.archive_spool(spool, str(archive))  # the sequence reports it, keeps the file
    assert recovered == [] and report.uploaded == [] and [k for k, _ in report.failed] == [key]
    assert (spool / key).read_text(encoding="utf-8") == "the text this run extracted\n"
    assert (archive / key).read_text(encoding="utf-8").startswith("something else")


def test_leftovers_of_an_earlier_run_are_indexed_and_uploaded(news_site, news_sources_file, tmp_path):
    # an earlier run crawled into the spool but never uploaded (e.g. the machine went down)
    spool = tmp_path / "spool"
    with SpoolLock(spool) as lock:
        stats = crawler.run_crawl("testnews", sources_file=news_sources_file, lock=lock, max_pages=5)
    left = [k for k in stats["files"] if k.startswith("warc/")]
    assert left
    archive = tmp_path / "archive"
    recovered, report = pipeline.archive_spool(spool, str(archive))
    uploaded = {o.key for o in report.uploaded}
    assert recovered == [] and report.failed == []
    assert set(left) <= uploaded and {f"indexes/{k[5:]}.cdxj" for k in left} <= uploaded
    assert all((archive / k).is_file() for k in left)
    assert index_spool(spool) == ([], [])  # nothing left to index
