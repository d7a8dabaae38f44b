"""The bundled demo news site that `newsarchive demo` crawls.

flows/demosite/ holds a small fictional newspaper (The Port Alder Courier):
six articles with the boilerplate real news pages carry (cookie banner, nav,
share buttons, related stories, newsletter box, footer), a homepage, two
sections, an RSS feed, a Google news sitemap and robots.txt. One article is
Russian, stored in windows-1251 and declared only in the HTTP header, as older
sites do. Feeds, sitemaps and canonical links carry `{base}`, replaced with
the server's real address when the routes are built.
"""

from __future__ import annotations

import re
from pathlib import Path

from flows.siteserver import Route, SiteServer

DEMO_DIR = Path(__file__).resolve().parent / "demosite"

# Files not in UTF-8: the charset goes in the Content-Type header only.
CHARSETS = {"2024-05-16-fog-forecast-university.html": "windows-1251"}

CONTENT_TYPES = {
    ".html": "text/html",
    ".xml": "application/xml",
    ".css": "text/css",
    ".txt": "text/plain",
}
SPECIAL_TYPES = {"rss.xml": "application/rss+xml"}

ARTICLE_FILE = re.compile(r"(\d{4})-(\d{2})-(\d{2})-([a-z0-9-]+)\.html")


def url_path(name: str) -> str:
    """The URL path a file of demosite/ is served at."""
    if name == "index.html":
        return "/"
    if m := ARTICLE_FILE.fullmatch(name):
        return f"/{m[1]}/{m[2]}/{m[3]}/{m[4]}.html"
    if m := re.fullmatch(r"section-([a-z0-9-]+)\.html", name):
        return f"/section/{m[1]}/"
    if m := re.fullmatch(r"author-([a-z0-9-]+)\.html", name):
        return f"/authors/{m[1]}/"
    if m := re.fullmatch(r"page-([a-z0-9-]+)\.html", name):
        return f"/{m[1]}/"
    if name.endswith(".css"):
        return f"/static/{name}"
    return f"/{name}"


def demo_routes(base: str) -> dict[str, Route]:
    """path -> Route for every file of the demo site, `{base}` replaced with `base` (no trailing slash)."""
    routes = {}
    for path in sorted(DEMO_DIR.iterdir()):
        ext = path.suffix
        if ext not in CONTENT_TYPES:
            continue  # e.g. __pycache__ or editor leftovers
        body = path.read_bytes().replace(b"{base}", base.encode("ascii"))
        ctype = SPECIAL_TYPES.get(path.name, CONTENT_TYPES[ext])
        ctype += f"; charset={CHARSETS.get(path.name, 'utf-8')}"
        headers = [("Content-Type", ctype), ("Cache-Control", "max-age=60")]
        if path.name == "index.html":  # a consent and a session cookie, as news homepages set
            headers += [("Set-Cookie", "consent=unset; Path=/; Max-Age=31536000; SameSite=Lax"),
                        ("Set-Cookie", "courier_session=demo; Path=/; HttpOnly")]
        routes[url_path(path.name)] = Route(body, headers=headers)
    return routes


def demo_articles(server: SiteServer) -> list[dict]:
    """The articles of the demo site: url, file and charset (for the CLI's summary and tests)."""
    return [{"url": server.url(url_path(p.name)), "file": p.name, "charset": CHARSETS.get(p.name, "utf-8")}
            for p in sorted(DEMO_DIR.glob("*.html")) if ARTICLE_FILE.fullmatch(p.name)]


def start_demo_site(host: str = "127.0.0.1", port: int = 0) -> SiteServer:
    """Start the demo site on loopback (a free port by default); stop it with .stop()."""
    server = SiteServer({}, host=host, port=port)
    server.routes.update(demo_routes(server.url("").rstrip("/")))  # the port is known once bound
    return server.start()


def demo_sources_toml(server: SiteServer) -> str:
    """sources.toml with one source, "demo", for the running demo site."""
    base = server.url("").rstrip("/")
    return f"""# The bundled demo site, served by `newsarchive demo` at {base}/
[[source]]
name = "demo"
start_urls = ["{base}/"]
feeds = ["{base}/rss.xml"]
sitemaps = ["{base}/news-sitemap.xml"]
allow = ['/\\d{{4}}/\\d{{2}}/\\d{{2}}/']
depth = 2
max_pages = 100
delay = 0
concurrency = 4
"""
