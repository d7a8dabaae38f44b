"""The reading room in a real browser: Debian's chromium, headless, driven by Playwright
against `newsarchive serve` on 127.0.0.1 over tests/fixtures_reading.py's archive.

Searches for a phrase (by keyboard), opens the article, checks its text and its capture
timeline, compares its two captures, replays the page in its sandbox (whose scripts must not
run and whose images on other hosts must not load), and saves a screenshot of each view into
test-artifacts/, also at a phone's width. axe-core, run in each page, must report no serious
or critical violation; no request may leave loopback (page.refused).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time

import pytest
from playwright.sync_api import expect

from fixtures_reading import ARTICLES, BRIDGE_LATER
from test_cli_support import newsarchive_bin

PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="module")
def served(reading_archive):
    """`newsarchive serve --port 0` as a user runs it; its URL from the line it prints."""
    proc = subprocess.Popen([newsarchive_bin(), "serve", "--archive", str(reading_archive.path), "--port", "0"],
                            cwd=reading_archive.workdir, env=reading_archive.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120  # generous: a busy machine starts slowly
    base = None
    try:
        while base is None:
            found = [m.group(1) for m in map(re.compile(r"serving .* at (http://127\.0\.0\.1:\d+)/").search, lines) if m]
            if found:
                base = found[0]
            elif proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("newsarchive serve did not start:\n" + "".join(lines))
            else:
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def axe_problems(page, node_modules, *, frames: bool = True) -> list[dict]:
    """Serious and critical violations axe-core finds in the page as it is now."""
    page.evaluate((node_modules / "axe-core" / "axe.min.js").read_text(encoding="utf-8"))
    violations = page.evaluate(
        """async (frames) => (await axe.run(document, {iframes: frames, resultTypes: ['violations']}))
             .violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))""", frames)
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def fits_the_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_search_article_timeline_diff_and_replay_in_chromium(page, served, reading_archive, artifacts_dir,
                                                              node_modules):
    # the crawls archived the hostile page's same-host image as a requisite; from here on the
    # live site must hear nothing (the browser's requests are the ones that count)
    crawled = len(reading_archive.site.server.fetched_paths())
    sent: list[str] = []  # requests that got an answer
    page.on("requestfinished", lambda r: sent.append(r.url))
    failed: list[tuple[str, str]] = []
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # search: "/" puts the cursor in the box, a phrase, Enter
    page.goto(served + "/")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type('"worn bearings"')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/\?q=.*"))
    results = page.locator("ol.results > li")
    expect(results).to_have_count(1)
    expect(results.first.locator("h3")).to_have_text("Harbour bridge to close for repairs")
    expect(results.first.locator(".snippet mark").first).to_have_text("worn bearings")
    expect(results.first.locator(".meta")).to_contain_text("2 captures, 2 versions of the text")
    expect(page.locator("section.counts svg rect.bar")).to_have_count(1)  # one day: 2024-05-15
    page.screenshot(path=artifacts_dir / "reading-search.png", full_page=True)
    assert axe_problems(page, node_modules) == []

    # the article, opened by keyboard: its newest text and both captures on the timeline
    results.first.locator("h3 a").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/article\?url=.*"))
    expect(page.locator("h1")).to_have_text("Harbour bridge to close for repairs")
    text = page.locator("div.text")
    for paragraph in BRIDGE_LATER:
        expect(text).to_contain_text(paragraph)
    expect(text).not_to_contain_text("Cyclists may still cross")
    captures = page.locator("ol.captures > li")
    expect(captures).to_have_count(2)
    expect(captures.nth(0)).to_contain_text("text version 1")
    expect(captures.nth(1)).to_contain_text("text version 2")
    expect(page.locator("figure.timeline circle")).to_have_count(2)
    expect(page.locator("dl.metadata")).to_contain_text("2024-05-15T07:30:00+00:00")
    page.screenshot(path=artifacts_dir / "reading-article.png", full_page=True)
    assert axe_problems(page, node_modules) == []

    # the first capture's text
    captures.nth(0).locator("a").click()
    expect(page.locator("div.text")).to_contain_text(ARTICLES["bridge"][6][2])
    expect(page.locator("ol.captures > li.selected")).to_contain_text("text version 1")

    # what changed between the two captures
    page.get_by_role("link", name="Changes").click()
    page.wait_for_url(re.compile(r".*/article/diff\?.*"))
    expect(page.locator("ol.diff li.added")).to_have_text(re.compile(re.escape(BRIDGE_LATER[2])))
    expect(page.locator("ol.diff li.removed")).to_have_text(re.compile("Cyclists may still cross on the footway"))
    changed = page.locator("ol.diff li.changed")
    expect(changed).to_have_count(1)
    expect(changed.locator("del").first).to_have_text("two")
    expect(changed.locator("ins").first).to_have_text("three")
    expect(page.locator("#diff-summary")).to_contain_text("1 added, 1 removed, 1 changed")
    page.screenshot(path=artifacts_dir / "reading-diff.png", full_page=True)
    assert axe_problems(page, node_modules) == []

    # the replay: the archived page in a sandboxed frame; its scripts do not run
    page.get_by_role("link", name="Replay").click()
    page.wait_for_url(re.compile(r".*/article/replay\?.*"))
    frame = page.locator("iframe.replay")
    assert frame.get_attribute("sandbox") == ""
    inside = page.frame_locator("iframe.replay")
    expect(inside.locator("h1")).to_have_text("Harbour bridge to close for repairs")
    expect(inside.locator("article")).to_contain_text("free shuttle boat")
    expect(page).to_have_title(re.compile("^Replay: Harbour bridge"))
    page.screenshot(path=artifacts_dir / "reading-replay.png", full_page=True)
    # the archived page is the site's, not ours: axe checks the room around it
    assert axe_problems(page, node_modules, frames=False) == []
    page.goto(served + frame.get_attribute("src"))  # the frame's document on its own: sandboxed too
    expect(page.locator("h1")).to_have_text("Harbour bridge to close for repairs")
    assert page.title() == "Harbour bridge to close for repairs"

    # the archived page's script never ran (no dialog, no fetch, the titles as they were), and
    # its images on the live site's host and on the internet were stopped by the sandbox's CSP
    # before any request was sent
    site = reading_archive.site.server
    assert not dialogs
    assert not [u for u in sent if "pwned" in u or "leak.gif" in u or "tracker" in u]
    hostile = {(u, why) for u, why in failed if "leak.gif" in u or "tracker" in u}
    assert {why for _, why in hostile} == {"csp"}
    assert {u.rsplit("/", 1)[1] for u, _ in hostile} == {"leak.gif", "pixel.gif"}
    assert not [p for p in site.fetched_paths()[crawled:] if "pwned" in p or "leak.gif" in p]
    assert page.refused == []


def test_sources_pages_and_escaping_in_chromium(page, served, reading_archive, artifacts_dir, node_modules):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(served + "/?q=lifeboat+raffle")
    title = page.locator("ol.results h3")
    expect(title).to_contain_text('<script>alert("title")</script> Harbour <b>gala</b> night')
    expect(page.locator("ol.results .snippet")).to_contain_text("<img src=x onerror=alert(1)>")
    page.locator("ol.results h3 a").click()
    expect(page.locator("h1")).to_contain_text('<script>alert("title")</script>')
    assert page.locator("main img, main b").count() == 0
    page.goto(served + "/sources")
    expect(page.locator("table.sources tbody tr")).to_have_count(2)
    assert axe_problems(page, node_modules) == []
    page.get_by_role("link", name="harbour").click()
    expect(page.locator("table.runs tbody tr")).to_have_count(2)
    expect(page.locator("table.runs tbody tr").first).to_contain_text("ok")
    expect(page.locator("figure.chart rect.bar").first).to_be_attached()
    page.screenshot(path=artifacts_dir / "reading-source.png", full_page=True)
    assert axe_problems(page, node_modules) == []
    page.goto(served + "/api/")
    expect(page.locator("h2").first).to_contain_text("GET /api/")
    assert axe_problems(page, node_modules) == []
    assert not dialogs
    assert page.refused == []


def test_every_view_fits_a_phone(page, served, reading_archive, artifacts_dir, node_modules):
    from urllib.parse import urlencode

    page.set_viewport_size(PHONE)
    url = reading_archive.urls["bridge"]
    views = {"search": "/?" + urlencode({"q": "harbour OR 海草 OR совет"}),
             "article": "/article?" + urlencode({"url": url}),
             "diff": "/article/diff?" + urlencode({"url": url}),
             "replay": "/article/replay?" + urlencode({"url": url}),
             "chinese": "/article?" + urlencode({"url": reading_archive.urls["haicao"]}),
             "source": "/sources/harbour"}
    for name, path in views.items():
        page.goto(served + path)
        assert fits_the_width(page), f"{name} scrolls sideways at {PHONE['width']} px"
        page.screenshot(path=artifacts_dir / f"reading-phone-{name}.png", full_page=True)
        assert axe_problems(page, node_modules, frames=name != "replay") == [], name
    assert page.refused == []
