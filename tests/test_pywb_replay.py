"""pywb, the reference replay tool, reads our archive as it is.

A crawl of the loopback news site goes into a folder archive; pywb (installed
by `make test` into a venv of its own, see DEVELOPERS.md) is then pointed at
that archive: our own CDXJ indexes, and the WARC keys they name resolved
against the archive root. It must replay the article bytes the site served.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from flows import pipeline
from loopback import listening_port
from storage.archive import open_archive

ROOT = Path(__file__).resolve().parent.parent


def pywb_tool(name: str) -> str:
    """A command of the pywb venv: $NEWSARCHIVE_PYWB (`make test` sets it), else the checkout's .venv-pywb/bin.
    Missing, the test fails: it says how to get it rather than skip."""
    where = Path(os.environ.get("NEWSARCHIVE_PYWB") or ROOT / ".venv-pywb" / "bin")
    tool = where / name
    if not tool.exists():
        pytest.fail(f"{tool} not found: run `make test` once (it installs pywb and py-wacz into .venv-pywb), "
                    f"or point NEWSARCHIVE_PYWB at a venv's bin folder that has them", pytrace=False)
    return str(tool)


def start_wayback(home: Path, collection: str, log) -> tuple[subprocess.Popen, str]:
    """pywb's `wayback` in `home` on a port of its choosing; (process, base URL) once it serves `collection`.

    It also opens a port for its internal warcserver: the front end is the one whose
    page lists the collection."""
    proc = subprocess.Popen([pywb_tool("wayback"), "--bind", "127.0.0.1", "-p", "0"], cwd=home, stdout=log,
                            stderr=subprocess.STDOUT)

    def front_end(port: int) -> bool:
        try:
            status, body, _ = fetch(f"http://127.0.0.1:{port}/")
        except OSError:
            return False
        return status == 200 and b"<html" in body.lower() and collection.encode() in body

    try:
        port = listening_port(proc, timeout=120, log=Path(log.name) if hasattr(log, "name") else None, accept=front_end)
    except BaseException:
        proc.terminate()
        proc.wait(timeout=30)
        raise
    return proc, f"http://127.0.0.1:{port}"


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
    with open(home / "wayback.log", "wb") as log:
        proc, base = start_wayback(home, "news", log)
        try:
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


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
    from storage.wacz import export_wacz

    wacz = tmp_path / "testnews.wacz"
    export_wacz(open_archive(str(crawled_archive)), "testnews", since=None, until=None, out_path=wacz)
    check = subprocess.run([pywb_tool("wacz"), "validate", "-f", str(wacz)],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr

    home = tmp_path / "pywb-wacz"
    home.mkdir()
    manager = pywb_tool("wb-manager")
    subprocess.run([manager, "init", "fromwacz"], cwd=home, check=True, capture_output=True, timeout=120)
    added = subprocess.run([manager, "add", "--unpack-wacz", "fromwacz", str(wacz)], cwd=home, capture_output=True, text=True,
                           timeout=300)
    assert added.returncode == 0, added.stdout + added.stderr
    with open(home / "wayback.log", "wb") as log:
        proc, base = start_wayback(home, "fromwacz", log)
    try:
        article = next(a for a in news_site.articles
                       if a["path"] not in (news_site.special["gzip"],) and
                       open_archive(str(crawled_archive)).list(news_site.url(a["path"])))
        status, body, _ = fetch(f"{base}/fromwacz/id_/{news_site.url(article['path'])}")
        assert status == 200
        assert body == news_site.routes[article["path"]].body
    finally:
        proc.terminate()
        proc.wait(timeout=30)
