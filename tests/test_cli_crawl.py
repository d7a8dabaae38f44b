"""Crawl the test news site with `newsarchive crawl` into a folder, then read it back with
`list`, `get`, `serve`, `reindex`, as a user would.

The read tests share fixtures_crawled.crawled_folder: two crawls (without Prefect, for speed)
of the same site into one archive, so each page has two captures for `get --at` and the
second is a revisit. What holds on S3 too is tested once for both in test_read_back.py.
One test crawls through the Prefect flow.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import subprocess
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fixtures_crawled import DEPTH, captures, cli
from test_cli_support import assert_one_line_error, cli_env, newsarchive_bin, run

# The commands under test run these: a broken import fails the module here, loudly.
import flows.pipeline  # noqa: E402,F401
import storage.archive  # noqa: E402,F401


@pytest.fixture
def crawled(crawled_folder):
    """This module reads the folder archive only (fixtures_crawled.crawled would be both)."""
    return crawled_folder


def test_crawl_prints_a_summary_table(news_site, crawled):
    out = crawled["first"].stdout
    lines = out.splitlines()
    header = next(l for l in lines if "source" in l and "pages" in l)
    columns = [c.strip() for c in re.split(r"[│┃]", header)[1:-1]]
    assert columns == ["source", "status", "pages", "articles", "bytes", "errors", "files"]
    row = dict(zip(columns, (c.strip() for c in re.split(r"[│┃]", next(l for l in lines if "testnews" in l))[1:-1])))
    assert row["source"] == "testnews" and row["status"] == "ok"
    # every request the site answered, robots.txt too: pages, and the pages' requisites (its
    # stylesheet, images...), which the summary counts on a line of their own
    requisites = int(re.search(r"^requisites \(testnews\): (\d+) archived", out, re.M).group(1))
    assert requisites > 0 and int(row["pages"]) + requisites == crawled["first_requests"]
    assert int(row["articles"]) == len(news_site.listed) + 1  # + the query-string listing under /news/
    assert row["errors"].startswith("http-4xx ")  # the deleted story (and dead links) counted by kind
    deleted = news_site.url(news_site.special["not_found"])
    assert re.search(rf"^\s+http-4xx\s+{re.escape(deleted)}\s+HTTP 404$", out, re.M), out  # and named
    assert "warc/testnews/" in out  # files written are named
    # off a terminal, progress comes as plain lines on stderr
    assert "page" in crawled["first"].stderr and news_site_url_in(crawled["first"].stderr)


def news_site_url_in(text: str) -> bool:
    return "http://127.0.0.1:" in text


def test_list_shows_the_unchanged_second_capture_as_a_revisit(news_site, crawled):
    rows = captures(crawled, news_site.article("harbour-ferries")["url"])
    assert [r["mime"] for r in rows] == ["text/html", "warc/revisit"]
    assert rows[0]["timestamp"] < rows[1]["timestamp"] and rows[1]["digest"] == rows[0]["digest"]
    assert all((crawled["archive"] / r["warc"]).is_file() for r in rows)


def test_list_table_shows_each_capture(news_site, crawled):
    url = news_site.article("harbour-ferries")["url"]
    rows = captures(crawled, url)
    result = cli(crawled, "list", url)
    assert result.returncode == 0, result.stderr
    for row in rows:
        assert row["timestamp"] in result.stdout
    assert "2 captures" in result.stdout


def test_get_as_json_has_metadata_and_text(news_site, crawled):
    article = news_site.article("harbour-ferries")
    meta = json.loads(cli(crawled, "get", article["url"], "--as", "json").stdout)
    assert meta["url"] == article["url"]
    assert meta["text"] == cli(crawled, "get", article["url"], "--as", "text").stdout


def test_get_as_warc_is_the_record(news_site, crawled):
    from warcio.archiveiterator import ArchiveIterator

    article = news_site.article("harbour-ferries")
    first, second = captures(crawled, article["url"])
    data = cli(crawled, "get", article["url"], "--at", first["timestamp"], "--as", "warc", text=False).stdout
    assert data[:2] == b"\x1f\x8b"  # one gzip member, as stored
    records = list(ArchiveIterator(io.BytesIO(data)))
    assert len(records) == 1
    assert records[0].rec_type == "response"
    assert records[0].rec_headers.get_header("WARC-Target-URI") == article["url"]
    # the unchanged second capture is a revisit record referring to the first
    data = cli(crawled, "get", article["url"], "--as", "warc", text=False).stdout
    records = list(ArchiveIterator(io.BytesIO(data)))
    assert len(records) == 1 and records[0].rec_type == "revisit"
    assert records[0].rec_headers.get_header("WARC-Refers-To") == first["record_id"]


def _warc_date(crawled, url: str, at: str) -> str:
    from warcio.archiveiterator import ArchiveIterator

    result = cli(crawled, "get", url, "--at", at, "--as", "warc", text=False)
    assert result.returncode == 0, result.stderr.decode()
    rec = next(iter(ArchiveIterator(io.BytesIO(result.stdout))))
    return rec.rec_headers.get_header("WARC-Date")


def _iso(ts: str, shift: float = 0) -> str:
    when = datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc) + timedelta(seconds=shift)
    return when.isoformat().replace("+00:00", "Z")


def test_get_at_picks_the_nearest_capture(news_site, crawled):
    url = news_site.article("harbour-ferries")["url"]
    old, new = (r["timestamp"] for r in captures(crawled, url))
    gap = (datetime.strptime(new, "%Y%m%d%H%M%S") - datetime.strptime(old, "%Y%m%d%H%M%S")).total_seconds()

    def stamp(warc_date: str) -> str:
        return re.sub(r"\D", "", warc_date)[:14]

    assert stamp(_warc_date(crawled, url, old)) == old  # 14 digits, exact
    assert stamp(_warc_date(crawled, url, new)) == new
    assert stamp(_warc_date(crawled, url, _iso(old, gap * 0.25))) == old  # ISO 8601, nearer the first
    assert stamp(_warc_date(crawled, url, _iso(new, -gap * 0.25))) == new
    assert stamp(_warc_date(crawled, url, "2000-01-01")) == old  # long before: the oldest
    assert stamp(_warc_date(crawled, url, "2999-01-01T00:00:00+02:00")) == new


def test_get_text_of_a_page_that_is_not_an_article(news_site, crawled):
    result = cli(crawled, "get", news_site.url("/"), "--as", "text")
    line = assert_one_line_error(result)
    assert "--as html" in line
    html = cli(crawled, "get", news_site.url("/"), "--as", "html", text=False)
    assert html.returncode == 0 and html.stdout == news_site.page_bytes("/")


def test_reindex_rebuilds_the_catalog(news_site, crawled):
    url = news_site.article("harbour-ferries")["url"]
    before = captures(crawled, url)
    result = cli(crawled, "reindex")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert captures(crawled, url) == before


def test_serve_answers_memento_timemaps(news_site, crawled):
    url = news_site.article("harbour-ferries")["url"]
    proc = subprocess.Popen([newsarchive_bin(), "serve", "--archive", str(crawled["archive"]), "--port", "0"],
                            cwd=crawled["tmp"], env=crawled["env"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        base = f"http://127.0.0.1:{match.group(1)}"
        with urllib.request.urlopen(f"{base}/web/timemap/link/{url}", timeout=30) as resp:
            assert resp.status == 200
            timemap = resp.read().decode()
        for row in captures(crawled, url):
            assert row["timestamp"] in timemap
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_max_pages_limits_the_crawl(news_site, tmp_path):
    env = cli_env(tmp_path)
    sources = news_site.write_sources(tmp_path, depth=DEPTH)
    result = run("crawl", "testnews", "--sources", sources, "--archive", tmp_path / "archive", "--max-pages", "3",
                 "--no-prefect", cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    row = next(l for l in result.stdout.splitlines() if "testnews" in l)
    pages = int(re.findall(r"\d+", row.split("testnews", 1)[1])[0])
    # stopped early: Scrapy lets requests already in flight finish, so a few more may come in
    assert 1 <= pages <= 3 + 8
    assert "articles" in result.stdout


@pytest.mark.prefect_server
def test_crawl_through_prefect_lands_in_its_history(news_site, tmp_path):
    env = cli_env(tmp_path)
    sources = news_site.write_sources(tmp_path, depth=DEPTH)
    archive = tmp_path / "archive"
    result = run("crawl", "testnews", "--sources", sources, "--archive", archive,
                 cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "testnews" in result.stdout and "pages" in result.stdout
    # the run is in Prefect's history (the temporary server's database in PREFECT_HOME)
    db = Path(env["PREFECT_HOME"]) / "prefect.db"
    assert db.is_file()
    with sqlite3.connect(db) as conn:
        runs = conn.execute("select name, state_type from flow_run").fetchall()
    assert ("crawl-testnews", "COMPLETED") in runs
    # and the archive answers like after any crawl
    url = news_site.article("harbour-ferries")["url"]
    listed = run("list", url, "--json", "--archive", archive, cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1


def test_reextract_rederives_the_text_without_fetching(news_site, crawled, tmp_path):
    article = news_site.article("harbour-ferries")
    fetched_before = len(news_site.server.fetched_paths())
    out = tmp_path / "texts"
    result = cli(crawled, "reextract", "--out", out, "--url", article["url"], "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert len(news_site.server.fetched_paths()) == fetched_before  # nothing fetched
    texts = sorted(out.glob("*.txt"))
    assert len(texts) == 1  # one per capture with a payload (the second is a revisit)
    archived = cli(crawled, "get", article["url"], "--as", "text").stdout
    again = texts[-1].read_text(encoding="utf-8")
    assert again.partition("\n\n")[2] == archived.partition("\n\n")[2]  # the same body
    assert article["url"] in again.partition("\n\n")[0]
    meta = json.loads(texts[-1].with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["url"] == article["url"]


def test_reextract_of_missing_archive_is_one_line(tmp_path):
    env = cli_env(tmp_path)
    result = run("reextract", "--archive", tmp_path / "none", "--out", tmp_path / "out", cwd=tmp_path, env=env)
    assert_one_line_error(result, "none")


def test_demo_crawls_and_prints_an_article(tmp_path):
    env = cli_env(tmp_path)
    result = run("demo", "--archive", "demo-out", "--no-prefect", cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "try next" in result.stderr
    url = re.search(r"newsarchive list (\S+) --archive demo-out", result.stderr).group(1)
    header, _, body = result.stdout.partition("\n\n")
    assert header.splitlines()[-1] == url and body.strip()
    # the printed text is what `get --as text` prints, and the suggested commands work
    again = run("get", url, "--as", "text", "--archive", "demo-out", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == result.stdout
    listed = run("list", url, "--archive", "demo-out", "--json", cwd=tmp_path, env=env)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1


def test_export_wacz_of_the_crawled_source(crawled, tmp_path):
    import zipfile
    out = tmp_path / "testnews.wacz"
    result = cli(crawled, "export", "--wacz", "--source", "testnews", "-o", out)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert "datapackage.json" in names and "indexes/index.cdx" in names
        assert any(n.startswith("archive/") and n.endswith(".warc.gz") for n in names)
    # a range with no captures, and an unknown source, are one-line errors
    empty = cli(crawled, "export", "--wacz", "--source", "testnews", "--to", "2001-01-01", "-o", tmp_path / "e.wacz")
    assert_one_line_error(empty, "testnews")
    assert_one_line_error(cli(crawled, "export", "--wacz", "--source", "nosuch", "-o", tmp_path / "n.wacz"), "nosuch")
    assert_one_line_error(cli(crawled, "export", "--wacz", "--source", "testnews", "--from", "soon",
                              "-o", tmp_path / "s.wacz"), "soon")


@pytest.mark.prefect_server
def test_failed_crawl_through_prefect_is_one_error_line_without_traceback(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sources = tmp_path / "sources.toml"
    sources.write_text(f"[[source]]\nname = \"gone\"\nstart_urls = [\"http://127.0.0.1:{port}/\"]\ndelay = 0\n",
                       encoding="utf-8")
    env = cli_env(tmp_path)
    result = run("crawl", "gone", "--sources", sources, "--archive", tmp_path / "archive", cwd=tmp_path, env=env,
                 timeout=600)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr  # Prefect's run log keeps its messages, not its tracebacks
    errors = [l for l in result.stderr.splitlines() if l.startswith("newsarchive: error:")]
    assert len(errors) == 1 and "gone" in errors[0]
