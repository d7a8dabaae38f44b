"""pywb, the reference replay tool, reads our archive as it is.

A crawl of the loopback news site goes into a folder archive; pywb (installed
by `make test` into a venv of its own, see DEVELOPERS.md) is then pointed at
that archive: our own CDXJ indexes, and the WARC keys they name resolved
against the archive root. It must replay the article bytes the site served.
"""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from flows import pipeline
from storage.archive import open_archive

PYWB_BIN = os.environ.get("NEWSARCHIVE_PYWB")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> tuple[int, bytes, dict]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


@pytest.fixture(scope="module")
def crawled_archive(news_site, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pywb")
    sources = news_site.write_sources(tmp, depth=1)
    archive = tmp / "archive"
    pipeline.run_source("testnews", sources_file=sources, archive=str(archive), spool=tmp / "spool")
    return archive


@pytest.fixture(scope="module")
def pywb(crawled_archive, tmp_path_factory):
    if not PYWB_BIN or not Path(PYWB_BIN, "wayback").exists():
        pytest.skip("pywb not installed: run through `make test` (NEWSARCHIVE_PYWB points at its venv)")
    home = tmp_path_factory.mktemp("pywb-home")
    # One sorted index made of our per-WARC CDXJ files; their `filename` is the
    # archive key, so archive_paths is simply the archive root.
    lines = sorted(line for path in crawled_archive.glob("indexes/**/*.cdxj")
                   for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    (home / "index.cdxj").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (home / "config.yaml").write_text(
        "collections:\n"
        "  news:\n"
        f"    index_paths: {home / 'index.cdxj'}\n"
        f"    archive_paths: {crawled_archive}/\n", encoding="utf-8")
    port = free_port()
    log = open(home / "wayback.log", "wb")
    proc = subprocess.Popen([str(Path(PYWB_BIN, "wayback")), "--bind", "127.0.0.1", "-p", str(port)],
                            cwd=home, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                fetch(base + "/")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("pywb did not start:\n" + (home / "wayback.log").read_text())
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_pywb_replays_articles_byte_for_byte(pywb, news_site, crawled_archive):
    gzip_path = news_site.special["gzip"]
    archive = open_archive(str(crawled_archive))
    captured = [a for a in news_site.articles if archive.list(news_site.url(a["path"]))]
    checked = 0
    for article in captured:
        status, body, headers = fetch(f"{pywb}/news/id_/{news_site.url(article['path'])}")
        assert status == 200, f"pywb could not replay {article['path']}: HTTP {status}"
        sent = news_site.routes[article["path"]].body
        if headers.get("Content-Encoding") == "gzip" or article["path"] == gzip_path:
            sent = gzip.decompress(sent) if sent[:2] == b"\x1f\x8b" else sent
            body = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        assert body == sent, f"pywb replayed other bytes for {article['path']}"
        checked += 1
    assert checked == len(captured) >= 10


def test_pywb_lists_captures_in_its_cdx_api(pywb, news_site):
    article = news_site.articles[0]
    status, body, _ = fetch(f"{pywb}/news/cdx?url={news_site.url(article['path'])}&output=json")
    assert status == 200 and b'"status": "200"' in body


def test_exported_wacz_validates_and_replays_in_pywb(crawled_archive, news_site, tmp_path):
    """`newsarchive export --wacz` output passes py-wacz's validator and pywb replays from it."""
    if not PYWB_BIN or not Path(PYWB_BIN, "wacz").exists():
        pytest.skip("py-wacz not installed: run through `make test` (NEWSARCHIVE_PYWB points at its venv)")
    from storage.wacz import export_wacz

    wacz = tmp_path / "testnews.wacz"
    export_wacz(open_archive(str(crawled_archive)), "testnews", since=None, until=None, out_path=wacz)
    check = subprocess.run([str(Path(PYWB_BIN, "wacz")), "validate", "-f", str(wacz)],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr

    home = tmp_path / "pywb-wacz"
    home.mkdir()
    manager = str(Path(PYWB_BIN, "wb-manager"))
    subprocess.run([manager, "init", "fromwacz"], cwd=home, check=True, capture_output=True, timeout=120)
    added = subprocess.run([manager, "add", "--unpack-wacz", "fromwacz", str(wacz)], cwd=home, capture_output=True, text=True,
                           timeout=300)
    assert added.returncode == 0, added.stdout + added.stderr
    port = free_port()
    proc = subprocess.Popen([str(Path(PYWB_BIN, "wayback")), "--bind", "127.0.0.1", "-p", str(port)],
                            cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        article = next(a for a in news_site.articles
                       if a["path"] not in (news_site.special["gzip"],) and
                       open_archive(str(crawled_archive)).list(news_site.url(a["path"])))
        url = f"http://127.0.0.1:{port}/fromwacz/id_/{news_site.url(article['path'])}"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body, _ = fetch(url)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        assert status == 200
        assert body == news_site.routes[article["path"]].body
    finally:
        proc.terminate()
        proc.wait(timeout=20)
