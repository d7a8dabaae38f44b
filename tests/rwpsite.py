"""ReplayWeb.page (the npm release's ui.js and sw.js) embedded in a page served from 127.0.0.1.

    folder = build_rwp_site(tmp, node_modules, {"news.wacz": path})
    with serving(rwp_app(folder)) as base:
        page.goto(embed_url(base, "/news.wacz", url, ts))
        frame = wait_for_replay(page)      # the archived page's frame, or AssertionError with why

Layout, as ReplayWeb.page's embed expects it: the page loads /ui.js; the
<replay-web-page> element registers /replay/sw.js (scope /replay/) and frames
/replay/?source=... , which the service worker answers. On a fresh profile the
frame can load before the worker controls /replay/: replay/index.html (served
only then) waits for the worker and reloads. WACZ files are read with ranged
GETs (Starlette's static files answer Range).
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlencode

EMBED_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>replay</title>
<script src="/ui.js"></script>
<style>html, body { margin: 0; height: 100%; } replay-web-page { height: 100vh; display: block; }</style>
</head><body>
<replay-web-page id="rwp" replayBase="/replay/" embed="replayonly"></replay-web-page>
<script>
  const p = new URLSearchParams(location.search), el = document.getElementById("rwp");
  for (const k of ["source", "url", "ts"]) if (p.get(k)) el.setAttribute(k, p.get(k));
</script>
</body></html>
"""
FIRST_VISIT = """<!doctype html><meta charset="utf-8"><title>starting replay</title>
<script>navigator.serviceWorker.ready.then(() => setTimeout(() => location.reload(), 50));</script>
"""
FAILURES = re.compile(r"Archived Page Not Found|Unexpected Loading Error|is not valid JSON|could not be loaded")


def build_rwp_site(folder: Path, node_modules: Path, waczs: dict[str, Path]) -> Path:
    package = node_modules / ".replaywebpage" / "package"
    (folder / "replay").mkdir(parents=True, exist_ok=True)
    shutil.copy(package / "ui.js", folder / "ui.js")
    shutil.copy(package / "ui.js", folder / "replay" / "ui.js")  # the worker's index page asks for it here
    shutil.copy(package / "sw.js", folder / "replay" / "sw.js")
    (folder / "index.html").write_text(EMBED_PAGE, encoding="utf-8")
    (folder / "replay" / "index.html").write_text(FIRST_VISIT, encoding="utf-8")
    for name, path in waczs.items():
        shutil.copy(path, folder / name)
    return folder


def rwp_app(folder: Path):
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    return Starlette(routes=[Mount("/", StaticFiles(directory=folder, html=True))])


def embed_url(base: str, source: str, url: str, ts: str) -> str:
    return f"{base}/index.html?{urlencode({'source': source, 'url': url, 'ts': ts})}"


def wait_for_replay(page, expect: str, timeout: float = 90.0):
    """The frame showing the archived page once its text contains `expect`; AssertionError
    naming ReplayWeb.page's error message (Not Found, loading error) or a timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.wait_for_timeout(250)  # Playwright handles events only while it runs
        for frame in page.frames:
            try:
                failure = frame.get_by_text(FAILURES)  # pierces ReplayWeb.page's open shadow roots
                if failure.count():
                    raise AssertionError(f"ReplayWeb.page says: {failure.first.inner_text()[:200]!r} "
                                         f"(frame {frame.url[:120]})")
                if "/replay/w/" in frame.url and "mp_/" in frame.url:
                    body = frame.evaluate("document.body ? document.body.innerText : ''")
                    if expect in body:
                        return frame
            except AssertionError:
                raise
            except Exception:  # a frame detached while we looked
                continue
    raise AssertionError(f"no replayed page containing {expect!r} within {timeout:.0f} s; "
                         f"frames: {[f.url[:100] for f in page.frames]}")
