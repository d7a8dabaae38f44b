"""A replayed demo article looks like the live one, in headless Chromium.

The bundled demo site (flows/demo_site.py) and its CDN (another port, called
localhost, listed in the demo source's requisite_hosts) are crawled once with
the demo's own sources.toml; `newsarchive serve` replays the article through
pywb. Compared with the live page: the article element's layout box within a
few pixels, both stylesheets applied (site.css on the site, courier.css on the
CDN, whose rule the CDN's script switches on), the masthead image loaded, and
every request of the replay on the serve origin.
"""

from __future__ import annotations

import pytest

from flows import pipeline
from flows.demo_site import demo_sources_toml
from storage.archive import open_archive

ARTICLE = "/2024/05/13/seagrass-meadows-return-to-the-bay.html"
TOLERANCE_PX = 3

# what the page looks like, read in the browser
LOOKS = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; };
  const style = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
  const mark = document.querySelector('img.logo-mark');
  return {
    article: box(document.querySelector('article.story')),
    body: box(document.querySelector('.story-body')),
    h1_font: style('h1', 'fontFamily'),
    body_width: style('body', 'maxWidth'),
    tagline: style('.tagline', 'fontStyle'),
    enhanced: document.documentElement.classList.contains('enhanced'),
    mark_src: mark.currentSrc,
    mark_loaded: mark.complete && mark.naturalWidth,
    masthead_background: style('.masthead', 'backgroundImage'),
  };
}"""


@pytest.fixture(scope="module")
def demo_archive(demo_site, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("styled")
    sources = tmp / "sources.toml"
    sources.write_text(demo_sources_toml(demo_site), encoding="utf-8")  # the demo's own source
    archive = tmp / "archive"
    summary = pipeline.run_source("demo", sources_file=sources, archive=str(archive), spool=tmp / "spool")
    assert summary.verdict is None, summary.verdict
    return archive


def _looks(page, url: str) -> dict:
    answer = page.goto(url, wait_until="load")
    assert answer.status == 200, url
    page.wait_for_load_state("networkidle")
    page.wait_for_function("document.documentElement.classList.contains('enhanced')", timeout=60_000)
    return page.evaluate(LOOKS)


def test_a_replayed_article_is_styled_like_the_live_page(demo_site, demo_archive, serve_archive, pywb_bin,
                                                        browser, artifacts_dir):
    live_url = demo_site.url(ARTICLE)
    archive = open_archive(str(demo_archive))
    (capture,) = archive.list(live_url)
    cdn = demo_site.cdn.url("").rstrip("/")
    for path in ("/css/courier.css", "/img/courier-mark.png", "/img/masthead-rule.png", "/js/enhance.js"):
        assert [c.status for c in archive.list(cdn + path)] == [200], path  # the CDN's files: captures
    served = serve_archive(demo_archive, pywb=pywb_bin)
    base = served.base

    viewport = {"width": 1280, "height": 900}
    live_context = browser.new_context(viewport=viewport)
    replay_context = browser.new_context(viewport=viewport, service_workers="block")
    requested: list[str] = []
    left: list[str] = []

    def only_the_replay_origin(route):
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:  # never sent: recorded, and the test fails below
            left.append(route.request.url)
            route.abort("blockedbyclient")

    replay_context.route("**/*", only_the_replay_origin)
    replay_context.on("request", lambda request: requested.append(request.url))
    answered: dict[str, int] = {}
    replay_context.on("response", lambda response: answered.__setitem__(response.url, response.status))
    try:
        live_page = live_context.new_page()
        live = _looks(live_page, live_url)
        live_page.screenshot(path=str(artifacts_dir / "requisites-live.png"), full_page=True)
        replay_page = replay_context.new_page()
        replayed = _looks(replay_page, f"{base}/web/{capture.timestamp}/{live_url}")
        replay_page.screenshot(path=str(artifacts_dir / "requisites-replay.png"), full_page=True)
    finally:
        live_context.close()
        replay_context.close()

    # the live page is what the comparison stands on: styled by both stylesheets, its image loaded
    assert live["h1_font"] == "Georgia, serif" and live["body_width"] == "736px"
    assert live["tagline"] == "italic" and live["enhanced"]
    assert live["mark_loaded"] == 48 and live["mark_src"].startswith(cdn + "/")
    assert "masthead-rule.png" in live["masthead_background"]

    # the replay: the same styles, from the archive
    assert replayed["h1_font"] == live["h1_font"] and replayed["body_width"] == live["body_width"]
    assert replayed["enhanced"] and replayed["tagline"] == "italic"  # the CDN's script ran, its CSS applied
    assert replayed["mark_loaded"] == 48  # the image came from the archive
    assert replayed["mark_src"].startswith(f"{base}/web/") and replayed["mark_src"].endswith(
        cdn + "/img/courier-mark.png")
    # (wombat shows scripts the original URL of a background; what was fetched shows where it came from)
    assert "masthead-rule.png" in replayed["masthead_background"]
    for path in ("/css/courier.css", "/js/enhance.js", "/img/courier-mark.png", "/img/masthead-rule.png",
                 "/static/site.css"):
        origin = cdn if path != "/static/site.css" else demo_site.url("").rstrip("/")
        fetched = [(u, status) for u, status in answered.items() if u.endswith(origin + path)]
        assert fetched and all(u.startswith(f"{base}/web/") and status == 200 for u, status in fetched), \
            (path, fetched)
    # the article's layout box where the live page has it, within a few pixels
    for name in ("article", "body"):
        for got, want in zip(replayed[name], live[name]):
            assert abs(got - want) <= TOLERANCE_PX, (name, replayed[name], live[name])

    # nothing was asked of the live site, its CDN or anywhere else: only the replay origin
    assert requested and left == [], left
    assert all(url.startswith(base + "/") for url in requested), [u for u in requested if not u.startswith(base)]
