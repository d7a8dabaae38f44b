"""The reading room over real HTTP on 127.0.0.1: /api/ (search with the command line's
filters, counts, articles, captures, diffs, sources, the OpenAPI document), the HTML
pages (escaped, no asset from elsewhere), the sandboxed replay and the token gate.
The archive is tests/fixtures_reading.py's: four languages, crawled twice."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from html.parser import HTMLParser
from urllib.parse import quote, urlencode

import pytest

from fixtures_reading import ARTICLES, BRIDGE_LATER
from serving import serving
from storage.archive import open_archive
from storage.server import create_app
from storage.server.access import exposure, is_loopback
from storage.errors import BadInput

EVERY = "seagrass OR ferry OR Hafenrat OR bearings OR совет OR 海草 OR lifeboat"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def fetch(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with OPENER.open(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def get_json(base, path, **params):
    query = urlencode([(k, x) for k, v in params.items() for x in (v if isinstance(v, list) else [v])])
    status, headers, body = fetch(f"{base}{path}" + (f"?{query}" if query else ""))
    assert headers["Content-Type"].startswith("application/json"), (status, body[:200])
    return status, json.loads(body)


@pytest.fixture(scope="module")
def room(reading_archive):
    with serving(create_app(open_archive(str(reading_archive.path)))) as base:
        yield base


def keys(archive, results) -> set[str]:
    by_url = {url: key for key, url in archive.urls.items()}
    return {by_url[r["url"]] for r in results}


def test_api_search_answers_what_the_command_line_does(room, reading_archive):
    for query, args, params in [
        ('"seagrass restoration"', [], {}),
        ("climat* NOT ferry", [], {}),
        ("气候", [], {}),
        ("восстановл*", [], {}),
        (EVERY, ["--source", "world"], {"source": "world"}),
        (EVERY, ["--from", "2024-05-14", "--to", "2024-05-14"], {"from": "2024-05-14", "to": "2024-05-14"}),
        (EVERY, ["--lang", "de"], {"lang": "de"}),
        (EVERY, ["--sort", "oldest", "--limit", "3"], {"sort": "oldest", "limit": "3"}),
    ]:
        cli = json.loads(reading_archive.cli("search", query, *args, "--json", check=True).stdout)
        status, api = get_json(room, "/api/search", q=query, **params)
        assert status == 200
        assert api["total"] == cli["total"], query
        assert [r["url"] for r in api["results"]] == [r["url"] for r in cli["results"]], query
        assert [r["snippet"] for r in api["results"]] == [r["snippet"] for r in cli["results"]]
    status, api = get_json(room, "/api/search", q=EVERY, source=["harbour", "world"])
    assert api["total"] == len(ARTICLES)
    hit = get_json(room, "/api/search", q="气候")[1]["results"][0]
    assert hit["links"]["article"] == "/article?" + urlencode({"url": reading_archive.urls["haicao"]})
    assert [hit["snippet"][a:b] for a, b in hit["highlights"]] == ["气候"]


def test_api_counts_per_day(room):
    status, out = get_json(room, "/api/search/counts", q=EVERY, by="day")
    assert status == 200 and out["by"] == "day" and out["total"] == 7
    assert out["counts"] == [{"period": "2024-05-13", "count": 2}, {"period": "2024-05-14", "count": 2},
                             {"period": "2024-05-15", "count": 2}, {"period": "2024-05-16", "count": 1}]
    assert get_json(room, "/api/search/counts", q="climat*", by="week")[1]["counts"] == [
        {"period": "2024-05-13", "count": 2}]
    # without by, a short span is counted per day
    assert get_json(room, "/api/search/counts", q=EVERY, source="world")[1]["by"] == "day"


def test_api_errors_are_one_line_json(room):
    for params, status, needle in [({"q": '"open'}, 400, "a double quote is not closed"),
                                   ({"q": "x", "from": "soon"}, 400, "not a time"),
                                   ({"q": "x", "sort": "random"}, 400, "sort must be one of"),
                                   ({"q": "x", "limit": "0"}, 400, "limit must be between")]:
        got, body = get_json(room, "/api/search", **params)
        assert got == status and needle in body["error"] and "\n" not in body["error"]
    got, body = get_json(room, "/api/article", url="http://127.0.0.1:1/never")
    assert got == 404 and body["error"].startswith("no capture of http://127.0.0.1:1/never")
    got, body = get_json(room, "/api/article")
    assert got == 400 and body["error"] == "the url parameter is required"


def test_api_article_text_metadata_and_captures(room, reading_archive):
    url = reading_archive.urls["bridge"]
    status, a = get_json(room, "/api/article", url=url)
    assert status == 200 and a["url"] == url and a["title"] == "Harbour bridge to close for repairs"
    assert a["versions"] == 2 and len(a["captures"]) == 2
    assert [c["version"] for c in a["captures"]] == [1, 2] and all(c["changed"] for c in a["captures"])
    assert a["capture"]["timestamp"] == a["captures"][-1]["timestamp"]  # default: the newest
    assert BRIDGE_LATER[2] in a["text"] and a["plain"]["paragraphs"][-1] == BRIDGE_LATER[2]
    assert a["metadata"]["date_published"] == "2024-05-15T07:30:00+00:00" and a["metadata"]["language"] == "en"
    first = a["captures"][0]["timestamp"]
    older = get_json(room, "/api/article", url=url, at=first)[1]
    assert older["capture"]["timestamp"] == first and "two weeks" in older["text"] and "shuttle" not in older["text"]
    # an unchanged article: the second capture is a revisit with the same text version
    caps = get_json(room, "/api/captures", url=reading_archive.urls["sovet"])[1]["captures"]
    assert [(c["revisit"], c["version"], c["changed"]) for c in caps] == [(False, 1, True), (True, 1, False)]


def test_api_diff_between_the_two_captures(room, reading_archive):
    url = reading_archive.urls["bridge"]
    status, d = get_json(room, "/api/diff", url=url)
    assert status == 200
    assert d["summary"] == {"same": 3, "added": 1, "removed": 1, "changed": 1}  # title, byline, buses: same
    ops = [(c["op"], c.get("old"), c.get("new")) for c in d["changes"]]
    assert ("added", None, BRIDGE_LATER[2]) in ops
    assert ("removed", ARTICLES["bridge"][6][2], None) in ops
    changed = next(c for c in d["changes"] if c["op"] == "changed")
    assert changed["old"] == ARTICLES["bridge"][6][0] and changed["new"] == BRIDGE_LATER[0]
    segments = [(s["op"], s["text"]) for s in changed["segments"]]
    assert ("removed", "two") in segments and ("added", "three") in segments
    assert d["from"]["timestamp"] < d["to"]["timestamp"]
    # the other way round: what was added is removed
    back = get_json(room, "/api/diff", url=url, **{"from": d["to"]["timestamp"], "to": d["from"]["timestamp"]})[1]
    assert back["summary"] == {"same": 3, "added": 1, "removed": 1, "changed": 1}
    assert ("removed", BRIDGE_LATER[2], None) in [(c["op"], c.get("old"), c.get("new")) for c in back["changes"]]
    same = get_json(room, "/api/diff", url=reading_archive.urls["seagrass"])[1]
    assert same["summary"]["added"] == same["summary"]["removed"] == same["summary"]["changed"] == 0


def test_api_sources_runs_and_errors(room, reading_archive):
    status, out = get_json(room, "/api/sources")
    rows = {r["name"]: r for r in out["sources"]}
    assert set(rows) == {"harbour", "world"}
    assert rows["harbour"]["articles"] == 5 and rows["world"]["articles"] == 2
    assert rows["world"]["captures"] >= 4  # two articles twice (and the sitemap, robots.txt)
    status, s = get_json(room, "/api/sources/harbour")
    assert status == 200 and len(s["runs"]) == 2
    assert all(r["status"] == "ok" and r["verdict"] is None for r in s["runs"])
    assert s["runs"][0]["started"] > s["runs"][1]["started"]  # newest first
    assert s["runs"][1]["articles"] == 5 and s["runs"][0]["articles"] == 1  # only the bridge changed
    assert s["runs"][0]["revisits"] == 6  # 4 unchanged articles, robots.txt, the sitemap
    # per day, each article once: the 5 of the first crawl (the changed bridge again only if the
    # second crawl fell on the next UTC day)
    days = s["archived_per_day"]
    assert sum(d["count"] for d in days) == (5 if len(days) == 1 else 6)
    assert isinstance(s["errors_by_kind"], dict)
    got, body = get_json(room, "/api/sources/nosuch")
    assert got == 404 and "no source named 'nosuch'" in body["error"]


def test_openapi_document_describes_the_api(room):
    status, doc = get_json(room, "/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {"/api/search", "/api/search/counts", "/api/article", "/api/captures",
                                 "/api/diff", "/api/sources", "/api/sources/{name}"}
    params = {p["name"] for p in doc["paths"]["/api/search"]["get"]["parameters"]}
    assert params == {"q", "source", "from", "to", "lang", "limit", "offset", "sort"}
    status, headers, body = fetch(room + "/api/")
    assert status == 200 and b"GET /api/diff" in body


class Page(HTMLParser):
    """Every element and attribute of a page, and its text."""

    def __init__(self, body: bytes):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(body.decode("utf-8"))

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag):
        return [a for t, a in self.tags if t == tag]


def assert_local_only(page: Page):
    """No script, style, image or frame from anywhere but this server, and no inline script."""
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            if value and tag in ("script", "link", "img", "iframe"):
                assert value.startswith("/") or value.startswith("data:"), (tag, value)
    assert all(a.get("src") for a in page.all("script")), "inline scripts"


def test_pages_escape_what_archived_pages_say(room, reading_archive):
    status, headers, body = fetch(room + "/?" + urlencode({"q": "lifeboat raffle"}))
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    page = Page(body)
    assert_local_only(page)
    assert len(page.all("script")) == 1 and page.all("script")[0]["src"] == "/static/room.js"
    assert not page.all("b") and not page.all("img")  # the title's <b> and the text's <img> are text
    text = "".join(page.text)
    assert '<script>alert("title")</script> Harbour <b>gala</b>' in text
    assert "<img src=x onerror=alert(1)>" in text
    assert b"&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in body
    status, headers, body = fetch(room + "/article?" + urlencode({"url": reading_archive.urls["gala"]}))
    page = Page(body)
    assert status == 200 and len(page.all("script")) == 1 and not page.all("img") and not page.all("b")
    assert "<img src=x onerror=alert(1)> into the raffle form" in "".join(page.text)
    assert page.all("title") and '<script>alert("title")</script>' in "".join(page.text)


def test_search_page_shows_results_counts_and_pages(room, reading_archive):
    status, _, body = fetch(room + "/?" + urlencode({"q": EVERY, "limit": "3"}))
    page = Page(body)
    text = "".join(page.text)
    assert status == 200 and "7 articles matching" in text
    assert len([a for a in page.all("a") if a.get("href", "").startswith("/article?")]) >= 3
    assert "page 1 of 3" in text and any(a.get("rel") == "next" for a in page.all("a"))
    assert page.all("svg") and "Matching articles per day" in text
    assert [o.get("value") for o in page.all("option") if o.get("value") in ("harbour", "world")] == ["harbour", "world"]
    status, _, body = fetch(room + "/?" + urlencode({"q": '"open'}))
    assert status == 200 and "a double quote is not closed" in "".join(Page(body).text)


def test_article_diff_replay_and_source_pages(room, reading_archive):
    url = reading_archive.urls["bridge"]
    status, _, body = fetch(room + "/article?" + urlencode({"url": url}))
    page = Page(body)
    text = "".join(page.text)
    assert status == 200 and BRIDGE_LATER[2] in text and "text version 2" in text
    assert len([1 for t, a in page.tags if t == "circle"]) == 2
    status, _, body = fetch(room + "/article/diff?" + urlencode({"url": url}))
    assert status == 200 and b"<del>two</del><ins>three</ins>" in body
    added = re.search(rb'<li class="added"><span class="label">added</span> <ins class="para">(.*?)</ins>', body)
    assert added and added.group(1).decode() == BRIDGE_LATER[2]
    assert b'<li class="removed"><span class="label">removed</span> <del class="para">Cyclists may' in body
    status, _, body = fetch(room + "/article/replay?" + urlencode({"url": url}))
    frames = Page(body).all("iframe")
    assert status == 200 and len(frames) == 1
    assert frames[0]["sandbox"] == "" and frames[0]["src"].startswith("/sandbox/")
    assert frames[0]["title"].startswith("Archived page")
    status, _, body = fetch(room + "/sources/harbour")
    assert status == 200 and "Last runs" in "".join(Page(body).text)
    status, _, body = fetch(room + "/article?" + urlencode({"url": "http://127.0.0.1:1/never"}))
    assert status == 404 and "no capture of" in "".join(Page(body).text)


def test_sandbox_serves_the_archived_page_sandboxed(room, reading_archive):
    url = reading_archive.urls["bridge"]
    caps = get_json(room, "/api/captures", url=url)[1]["captures"]
    ts = caps[0]["timestamp"]
    status, headers, body = fetch(f"{room}/sandbox/{ts}/{url}")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    csp = headers["Content-Security-Policy"]
    assert csp.startswith("sandbox;") and "default-src 'none'" in csp and "allow-scripts" not in csp
    assert re.search(rb'<head><base href="/web/' + ts.encode() + rb'id_/http://127\.0\.0\.1:\d+/harbour/', body)
    assert b"two weeks" in body and b"shuttle" not in body
    status, headers, _ = fetch(f"{room}/sandbox/{ts[:8]}/{url}")  # not a capture's time: the nearest
    assert status == 302 and headers["Location"].startswith("/sandbox/2")
    status, _, body = fetch(f"{room}/sandbox/{ts}/http://127.0.0.1:1/never")
    assert status == 404


def test_static_files_and_nothing_outside_the_archive(room):
    status, headers, body = fetch(room + "/static/room.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    for path in ("/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/../../archive.py"):
        status, _, body = fetch(room + path)
        assert status == 404 and b"import" not in body
    req = urllib.request.Request(room + "/api/search?q=x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        OPENER.open(req, timeout=10)
    assert err.value.code == 405


def test_a_token_is_needed_on_every_request_when_given(reading_archive):
    app = create_app(open_archive(str(reading_archive.path)), token="s3cret-token")
    with serving(app) as base:
        for path in ("/", "/api/search?q=climate", "/web/timemap/link/" + reading_archive.urls["seagrass"],
                     "/static/room.css", "/cdx?url=" + quote(reading_archive.urls["seagrass"])):
            status, headers, _ = fetch(base + path)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer"), path
        assert fetch(base + "/api/search?q=climate", {"Authorization": "Bearer wrong"})[0] == 401
        status, _, body = fetch(base + "/api/search?q=climate", {"Authorization": "Bearer s3cret-token"})
        assert status == 200 and json.loads(body)["total"] == 1
        # a link with ?token= once: a cookie, and the same URL without the token
        status, headers, _ = fetch(base + "/?q=climate&token=s3cret-token")
        assert status == 303 and headers["Location"] == "/?q=climate"
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "s3cret-token" not in cookie
        status, _, body = fetch(base + "/?q=climate", {"Cookie": cookie.split(";")[0]})
        assert status == 200 and b"seagrass" in body
        assert fetch(base + "/?q=climate&token=nope")[0] == 401
        assert fetch(base + "/", {"Cookie": "newsarchive_token=forged"})[0] == 401


def test_serve_beyond_loopback_needs_a_token_or_public():
    # the decision itself (tests never listen beyond loopback)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("localhost")
    assert is_loopback("127.5.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")
    assert exposure("127.0.0.1", None, False) is None
    with pytest.raises(BadInput, match="--host 0.0.0.0 makes the archive reachable from other machines"):
        exposure("0.0.0.0", None, False)
    assert "every request needs the token" in exposure("0.0.0.0", "t", False)
    assert exposure("0.0.0.0", None, True).startswith("PUBLIC: listening on 0.0.0.0 without a token")


def test_serve_command_refuses_other_hosts_without_token_before_listening(reading_archive):
    from test_cli_support import assert_one_line_error

    result = reading_archive.cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert_one_line_error(result, "--host 0.0.0.0 makes the archive reachable", "--token", "--public")
