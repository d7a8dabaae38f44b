"""pywb, the reference replay tool, on our archive: `newsarchive pywb` writes its
collection (config.yaml and one sorted index of the replayable captures; the
archive itself is its archive_paths), and pywb replays what the sites served.

Two archives: the curated loopback news site (gzip, chunked, redirects, many
charsets) crawled once, and the demo site crawled twice (revisits).
"""

from __future__ import annotations

import gzip
import re

import pytest
import yaml

from fixtures_replay import http_get
from flows import pipeline
from storage import cdxj
from storage.archive import open_archive
from storage.pywb import write_collection
from test_cli_support import cli_env, run


@pytest.fixture(scope="module")
def crawled_archive(news_site, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pywb")
    sources = news_site.write_sources(tmp, depth=1)
    archive = tmp / "archive"
    pipeline.run_source("testnews", sources_file=sources, archive=str(archive), spool=tmp / "spool")
    return archive


@pytest.fixture
def news_pywb(crawled_archive, start_pywb, tmp_path):
    write_collection(open_archive(str(crawled_archive)), tmp_path / "pywb", collection="news")
    return start_pywb(tmp_path / "pywb")


def test_pywb_replays_articles_byte_for_byte(news_pywb, news_site, crawled_archive):
    gzip_path = news_site.special["gzip"]
    archive = open_archive(str(crawled_archive))
    captured = [a for a in news_site.articles if archive.list(news_site.url(a["path"]))]
    checked = 0
    for article in captured:
        status, headers, body = http_get(f"{news_pywb}/news/id_/{news_site.url(article['path'])}")
        assert status == 200, f"pywb could not replay {article['path']}: HTTP {status}"
        sent = news_site.routes[article["path"]].body
        if headers.get("Content-Encoding") == "gzip" or article["path"] == gzip_path:
            sent = gzip.decompress(sent) if sent[:2] == b"\x1f\x8b" else sent
            body = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        assert body == sent, f"pywb replayed other bytes for {article['path']}"
        checked += 1
    assert checked == len(captured) >= 10


def test_pywb_lists_one_capture_per_response_in_its_cdx_api(news_pywb, news_site):
    article = news_site.articles[0]
    status, _, body = http_get(f"{news_pywb}/news/cdx?url={news_site.url(article['path'])}&output=json")
    assert status == 200 and b'"status": "200"' in body
    assert b"text/plain" not in body  # the article's clean text is not a capture


def test_newsarchive_pywb_writes_a_collection_pywb_replays(replay_archive, start_pywb, tmp_path):
    """`newsarchive pywb --archive A -o DIR`, then pywb's `wayback` in DIR: one memento per
    HTML capture in its TimeMap (no text/plain twin), and the article replays, rewritten
    (links into the archive) and as stored (id_), original and revisit alike."""
    out = tmp_path / "pywb-home"
    done = run("pywb", "--archive", replay_archive.path, "-o", out, cwd=tmp_path, env=cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["collections"]["web"]["archive_paths"] == str(replay_archive.path) + "/"
    lines = (out / "indexes" / "index.cdxj").read_text().splitlines()
    assert lines == sorted(lines, key=str.encode) and len(lines) == 2 * 23
    assert not [f for _, _, f in map(cdxj.parse_line, lines) if not cdxj.replayable(f)]
    assert not list(replay_archive.path.glob("**/config.yaml"))  # nothing written into the archive

    base = start_pywb(out)
    archive = open_archive(str(replay_archive.path))
    articles = [line.split('"url": "')[1].split('"')[0] for line in lines if "/2024/05/" in line]
    assert len(set(articles)) == 6
    for url in sorted(set(articles)):
        captures = archive.list(url)
        status, _, body = http_get(f"{base}/web/timemap/link/{url}")
        assert status == 200
        mementos = re.findall(r'<([^>]+)>; rel="memento"; datetime="([^"]+)"', body.decode())
        assert [d for _, d in mementos] == [c.http_date for c in captures] and len(captures) == 2

    url = replay_archive.article
    original, revisit = archive.list(url)
    for capture in (original, revisit):
        status, headers, body = http_get(f"{base}/web/{capture.timestamp}id_/{url}")
        assert status == 200 and body == archive.payload(original)
        status, headers, body = http_get(f"{base}/web/{capture.timestamp}/{url}")
        assert status == 200 and headers["Memento-Datetime"] == capture.http_date
        page = body.decode()
        assert "Seagrass meadows return to the bay" in page
        hrefs = re.findall(r'href="([^"]+)"', page)
        assert f'/web/{capture.timestamp}cs_/{replay_archive.base}/static/site.css' in hrefs
        assert f"/web/{capture.timestamp}/{replay_archive.base}/section/local/" in hrefs
        assert not [h for h in hrefs if h.startswith(replay_archive.base)]  # nothing points at the live site
