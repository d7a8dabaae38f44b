"""`newsarchive serve` replays pages rewritten by pywb, the ecosystem's replay engine,
run as its own process that starts and stops with the server.

In headless Chromium a replayed demo article loads through our server, its links
lead into the archive, and no request leaves the replay origin. Without pywb,
serve says so once and /web/TIMESTAMP/URL serves the archived payload. pywb is
never left running: not after SIGTERM, not after SIGKILL.
"""

from __future__ import annotations

import re
import signal
import time

import pytest

from fixtures_replay import alive, http_get

HEADLINE = "Seagrass meadows return to the bay after a decade"


@pytest.fixture(scope="module")
def served(replay_archive, serve_archive, pywb_bin):
    return serve_archive(replay_archive.path, pywb=pywb_bin)


def wait_gone(pid: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@pytest.mark.parametrize("when", ["first", "second"])
def test_a_replayed_article_loads_rewritten_and_stays_in_the_archive(replay_archive, served, page, when,
                                                                     artifacts_dir):
    base, ts, site = served.base, getattr(replay_archive, when), replay_archive.base
    served.pywb_pid  # pywb runs (serve said so)
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    answer = page.goto(f"{base}/web/{ts}/{replay_archive.article}", wait_until="load")
    assert answer.status == 200 and answer.headers["memento-datetime"]
    assert page.locator("h1").inner_text() == HEADLINE
    # the archived stylesheet (a capture too) came rewritten into the archive and applies
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).fontFamily") == "Georgia, serif"
    page.screenshot(path=str(artifacts_dir / f"serve-pywb-{when}.png"))
    # every link of the page's HTML leads into the archive, at the page's time
    raw = answer.text()
    hrefs = [h for h in re.findall(r'<a [^>]*href="([^"]+)"', raw) if not h.startswith("mailto:")]
    assert len(hrefs) >= 15
    assert all(h.startswith(("/web/", f"{base}/web/")) for h in hrefs), [h for h in hrefs if "/web/" not in h]
    assert any("social.example" in h for h in hrefs)  # an off-site link too
    # following one (the section page, also archived) replays it, still in the archive
    page.get_by_role("link", name="Local", exact=True).first.click()
    page.wait_for_load_state("load")
    assert page.url.startswith(f"{base}/web/") and page.url.endswith(f"{site}/section/local/")
    assert "Local" in page.locator("h1").inner_text()
    # nothing was asked of the live site or any other origin: only of the replay origin
    assert requested and all(url.startswith(base + "/") for url in requested), \
        [url for url in requested if not url.startswith(base + "/")]
    assert page.refused == []


def test_the_page_carries_the_full_memento_link_set_and_no_live_headers(replay_archive, served):
    base, url = served.base, replay_archive.article
    status, headers, body = http_get(f"{base}/web/{replay_archive.first}/{url}")
    assert status == 200 and b"wombat" in body  # pywb's rewriting
    links = headers["Link"]
    for rel in ("original", "timegate", "timemap", "first memento", "memento", "next memento", "last memento"):
        assert f'rel="{rel}"' in links, rel
    assert headers["X-Archive-Orig-Cache-Control"] == "max-age=60" and "Cache-Control" not in headers
    # our own routes stay ours: the payload as stored, the text, the TimeMap
    status, headers, body = http_get(f"{base}/web/{replay_archive.second}id_/{url}")
    assert status == 200 and HEADLINE.encode() in body and b"wombat" not in body
    status, _, body = http_get(f"{base}/web/{replay_archive.second}text_/{url}")
    assert status == 200 and body.decode().startswith(HEADLINE)
    status, headers, _ = http_get(f"{base}/web/{url}")
    assert status == 302 and headers["Location"] == f"{base}/web/{replay_archive.second}/{url}"


def test_without_pywb_serve_says_so_once_and_serves_payloads(replay_archive, serve_archive, tmp_path):
    empty = tmp_path / "no-pywb"
    empty.mkdir()
    served = serve_archive(replay_archive.path, pywb=empty)
    base = served.base
    status, headers, body = http_get(f"{base}/web/{replay_archive.first}/{replay_archive.article}")
    sent = http_get(f"{base}/web/{replay_archive.first}id_/{replay_archive.article}")[2]
    assert status == 200 and body == sent and b"wombat" not in body and HEADLINE.encode() in body
    assert headers["Memento-Datetime"]
    said = [line for line in served.lines if "no rewritten replay" in line]
    assert len(said) == 1 and str(empty) in said[0]
    assert not [line for line in served.lines if "pywb (pid" in line]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_pywb_never_outlives_serve(replay_archive, serve_archive, pywb_bin, how):
    served = serve_archive(replay_archive.path, pywb=pywb_bin)
    pid = served.pywb_pid
    assert alive(pid)
    served.stop(how)
    assert wait_gone(pid), f"pywb (pid {pid}) still runs after serve got {how.name}"


def test_pywb_sees_captures_that_arrive_while_serving(replay_archive, pywb_bin, tmp_path):
    """A crawl finishing while serve runs: the next request after the catalog's sync
    replays the new capture through pywb (its index is written again)."""
    import shutil

    from serving import serving
    from storage.archive import open_archive
    from storage.server import create_app
    from storage.server.replay import PywbReplay

    later = {f.key for f in replay_archive.runs[1].files}
    copy = tmp_path / "archive"
    for path in replay_archive.path.rglob("*"):
        key = path.relative_to(replay_archive.path).as_posix()
        if path.is_file() and key not in later and key != "catalog.sqlite":
            (copy / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, copy / key)
    archive = open_archive(str(copy))
    said = []
    replay = PywbReplay(archive, pywb_bin / "wayback", say=said.append)
    url = f"/web/{replay_archive.second}/{replay_archive.article}"
    with serving(create_app(archive, sync_interval=0, replay=replay)) as base:
        assert replay.running and said and "pywb (pid" in said[0]
        status, headers, _ = http_get(base + url)
        assert status == 200 and headers["Memento-Datetime"] == http_date(replay_archive.first)  # the nearest
        for key in sorted(later):  # the second crawl arrives: WARCs first, then indexes, as uploads go
            (copy / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(replay_archive.path / key, copy / key)
        deadline = time.monotonic() + 120  # the index is rewritten in the background
        while True:
            status, headers, body = http_get(base + url)
            if headers.get("Memento-Datetime") == http_date(replay_archive.second) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 200 and headers["Memento-Datetime"] == http_date(replay_archive.second)
        assert HEADLINE.encode() in body and b"wombat" in body
        pid = replay.pid
    assert not replay.running and wait_gone(pid)  # stopped with the app


def http_date(ts: str) -> str:
    from warcio.timeutils import timestamp_to_http_date

    return timestamp_to_http_date(ts)



def test_an_s3_archive_replays_rewritten_through_pywb(crawled_s3, news_site, serve_archive, pywb_bin):
    """pywb reads the WARCs from the bucket itself (boto3 in its venv, the same AWS_* settings)."""
    served = serve_archive(crawled_s3["location"], pywb=pywb_bin, env=crawled_s3["env"])
    served.pywb_pid  # pywb runs for an S3 archive too (serve said so)
    article = news_site.article("harbour-ferries")
    status, headers, _ = http_get(f"{served.base}/web/{article['url']}")  # the TimeGate
    assert status == 302
    ts = re.fullmatch(rf"{re.escape(served.base)}/web/(\d{{14}})/{re.escape(article['url'])}", headers["Location"])[1]
    status, headers, body = http_get(headers["Location"])
    assert status == 200 and headers["Memento-Datetime"] and b"wombat" in body  # rewritten by pywb
    hrefs = re.findall(r'<a [^>]*href="([^"]+)"', body.decode("utf-8", "replace"))
    links = [h for h in hrefs if h.startswith(("http://", "https://", "/"))]  # not #anchors or mailto:
    assert len(links) >= 10 and all(h.startswith(("/web/", f"{served.base}/web/")) for h in links), links
    status, _, stored = http_get(f"{served.base}/web/{ts}id_/{article['url']}")
    assert status == 200 and stored == news_site.page_bytes(article["path"])
