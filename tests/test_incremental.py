"""Incremental crawls: a generated loopback site crawled several times into one archive.

Feeds, sitemaps and listings are fetched every run; archived articles only when a
re-check is due (`recheck` hours); an unchanged page becomes a WARC `revisit`
record that `get` resolves to the original payload; a changed page is archived
and extracted again. The dedupe state comes from the archive's catalog, so a
fresh catalog on another machine skips the same articles.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from siteserver import Route
from test_cli_support import cli_env, run

BIN = Path(sys.executable).parent
N_ARTICLES = 8
INDEX_PATHS = ("/rss.xml", "/atom.xml", "/sitemap_index.xml", "/news-sitemap-1.xml", "/sitemap.xml", "/",
               "/archive/page/1/")


def _crawl(tmp: Path, env: dict, sources: Path, archive: Path) -> subprocess.CompletedProcess:
    result = run("crawl", "testnews", "--sources", sources, "--archive", archive, "--no-prefect",
                 cwd=tmp, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    time.sleep(1.1)  # WARC timestamps have whole seconds: the next capture is later
    return result


def _fetched(site, since: int) -> list[str]:
    return site.server.fetched_paths()[since:]


def _texts(archive: Path) -> list[Path]:
    return sorted((archive / "articles" / "testnews").rglob("*.txt"))


def _warcs(archive: Path) -> list[Path]:
    return sorted(p for p in (archive / "warc" / "testnews").rglob("*.warc.gz") if not p.name.endswith(".text.warc.gz"))


def _records(paths, rec_type: str) -> list:
    found = []
    for path in paths:
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh):
                if rec.rec_type == rec_type:
                    found.append((rec.rec_headers, rec.content_stream().read()))
    return found


def test_second_runs_skip_archived_articles_and_write_revisits_for_unchanged_pages(make_news_site, tmp_path):
    site = make_news_site(n_articles=N_ARTICLES)
    articles = [site.url(a["path"]) for a in site.articles]
    env = cli_env(tmp_path)
    archive = tmp_path / "archive"
    sources = site.write_sources(tmp_path, depth=1)  # recheck: the default, 24 hours

    # 1. a first crawl archives and extracts every article
    first = _crawl(tmp_path, env, sources, archive)
    assert len(_texts(archive)) == N_ARTICLES, first.stdout

    # 2. the next run re-reads feeds, sitemaps and listings, and fetches no archived article
    mark = len(site.server.fetched_paths())
    second = _crawl(tmp_path, env, sources, archive)
    fetched = _fetched(site, mark)
    assert set(INDEX_PATHS) <= set(fetched)
    assert not [p for p in fetched if p.startswith("/news/")]
    assert f"{N_ARTICLES} archived articles skipped" in second.stdout + second.stderr
    assert len(_texts(archive)) == N_ARTICLES

    # 3. recheck = 0: every article is fetched again; one of them has changed on the site
    sources = site.write_sources(tmp_path, depth=1, recheck=0)
    changed = site.articles[3]
    old = site.routes[changed["path"]]
    snippet = next(w for w in changed["with"] if w.encode(changed["charset"]) in old.body)  # in its text
    correction = " Update: this story was corrected."
    new_body = old.body.replace(snippet.encode(changed["charset"]),
                                (snippet + correction).encode(changed["charset"]))
    site.routes.fixed[changed["path"]] = Route(new_body, headers=old.headers)
    mark = len(site.server.fetched_paths())
    _crawl(tmp_path, env, sources, archive)
    assert sorted(p for p in _fetched(site, mark) if p.startswith("/news/")) == sorted(a["path"] for a in site.articles)
    # a new text only for the changed article
    assert len(_texts(archive)) == N_ARTICLES + 1

    warcs = _warcs(archive)
    proc = subprocess.run([str(BIN / "warcio"), "check", "-v", *map(str, warcs)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    revisits = {h.get_header("WARC-Target-URI"): (h, body) for h, body in _records(warcs, "revisit")}
    unchanged = [u for u in articles if u != site.url(changed["path"])]
    assert set(unchanged) <= set(revisits)
    assert site.url(changed["path"]) not in revisits
    responses = {h.get_header("WARC-Record-ID"): h for h, _ in _records(warcs, "response")}
    for url in unchanged:
        headers, body = revisits[url]
        assert headers.get_header("WARC-Profile") == "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
        assert headers.get_header("WARC-Refers-To-Target-URI") == url
        original = responses[headers.get_header("WARC-Refers-To")]
        assert original.get_header("WARC-Target-URI") == url
        # the original capture's WARC-Date, exactly (WARC 1.1), fractions of a second included
        assert headers.get_header("WARC-Refers-To-Date") == original.get_header("WARC-Date")
        assert headers.get_header("WARC-Payload-Digest") == original.get_header("WARC-Payload-Digest")
        assert body == b""  # HTTP headers only, no payload block
    # every revisit has its request record
    requests = {h.get_header("WARC-Concurrent-To") for h, _ in _records(warcs, "request")}
    assert all(h.get_header("WARC-Record-ID") in requests for h, _ in revisits.values())

    # the CDXJ indexes list them as pywb does
    cdxj = "".join(p.read_text() for p in (archive / "indexes" / "testnews").rglob("*.cdxj"))
    assert '"mime": "warc/revisit"' in cdxj

    # list shows the revisit with its status and digest; get resolves it to the original payload
    url = unchanged[0]
    assert url == articles[0]
    listed = run("list", url, "--json", "--archive", archive, cwd=tmp_path, env=env, check=True)
    caps = json.loads(listed.stdout)
    assert [c["mime"] for c in caps][-1] == "warc/revisit"
    assert caps[-1]["status"] == 200 and caps[-1]["digest"] == caps[0]["digest"]
    html = run("get", url, "--at", caps[-1]["timestamp"], "--as", "html", "--archive", archive,
               cwd=tmp_path, env=env, check=True, text=False)
    assert html.stdout == site.page_bytes(site.articles[0]["path"])
    text_then = run("get", url, "--at", caps[0]["timestamp"], "--as", "text", "--archive", archive,
                    cwd=tmp_path, env=env, check=True)
    text_now = run("get", url, "--at", caps[-1]["timestamp"], "--as", "text", "--archive", archive,
                   cwd=tmp_path, env=env, check=True)
    assert text_now.stdout == text_then.stdout and text_now.stdout.strip()

    # the changed article: a full response and its new text
    url = site.url(changed["path"])
    caps = json.loads(run("list", url, "--json", "--archive", archive, cwd=tmp_path, env=env, check=True).stdout)
    assert caps[-1]["mime"] == "text/html" and caps[-1]["text"] and caps[-1]["digest"] != caps[0]["digest"]
    html = run("get", url, "--as", "html", "--archive", archive, cwd=tmp_path, env=env, check=True, text=False)
    assert html.stdout == new_body
    text = run("get", url, "--as", "text", "--archive", archive, cwd=tmp_path, env=env, check=True)
    assert snippet + correction in text.stdout


def test_a_fresh_catalog_on_another_machine_skips_the_same_articles(make_news_site, tmp_path):
    site = make_news_site(n_articles=N_ARTICLES)
    archive = tmp_path / "archive"
    sources = site.write_sources(tmp_path, depth=1)
    one = tmp_path / "one"
    one.mkdir()
    _crawl(one, cli_env(one), sources, archive)

    # another machine: its own spool and its own catalog, rebuilt from the archive's indexes
    other = tmp_path / "two"
    other.mkdir()
    env = cli_env(other, NEWSARCHIVE_CATALOG=str(other / "catalog.sqlite"))
    reindexed = run("reindex", "--archive", archive, cwd=other, env=env)
    assert reindexed.returncode == 0, reindexed.stderr
    assert (other / "catalog.sqlite").is_file()
    mark = len(site.server.fetched_paths())
    second = _crawl(other, env, sources, archive)
    fetched = _fetched(site, mark)
    assert "/rss.xml" in fetched and "/news-sitemap-1.xml" in fetched
    assert not [p for p in fetched if p.startswith("/news/")]
    assert f"{N_ARTICLES} archived articles skipped" in second.stdout + second.stderr
    assert len(_texts(archive)) == N_ARTICLES


def test_an_archived_article_is_due_again_after_recheck_hours(tmp_path):
    from datetime import datetime, timezone

    from spiders.seen import SeenCaptures, write_seen

    path = tmp_path / "seen.jsonl"
    write_seen([{"url": "http://127.0.0.1/a", "timestamp": "20260101000000", "status": 200},
                {"url": "http://127.0.0.1/gone", "timestamp": "20260101000000", "status": 404}], path)
    seen = SeenCaptures.load(path)
    at = datetime(2026, 1, 1, 23, 0, tzinfo=timezone.utc)
    assert not seen.due("http://127.0.0.1/a", 24, now=at)
    assert seen.due("http://127.0.0.1/a", 12, now=at)  # 23 hours old
    assert seen.due("http://127.0.0.1/a", 0, now=at)  # 0: every run
    assert seen.due("http://127.0.0.1/gone", 24, now=at)  # not archived with a 2xx answer
    assert seen.due("http://127.0.0.1/new", 24, now=at)
    assert SeenCaptures.load(tmp_path / "missing.jsonl").due("http://127.0.0.1/a", 24)  # no state: full crawl
