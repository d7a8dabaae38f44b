"""The bundled demo news site that `newsarchive demo` crawls.

flows/demosite/ holds a small fictional newspaper (The Port Alder Courier):
six articles with the boilerplate real news pages carry (cookie banner, nav,
share buttons, related stories, newsletter box, footer), a homepage, two
sections, an RSS feed, a Google news sitemap and robots.txt. One article is
Russian, stored in windows-1251 and declared only in the HTTP header, as older
sites do. Feeds, sitemaps and canonical links carry `{base}`, replaced with
the server's real address when the routes are built.

`start_demo_site()` serves it on loopback (a small threaded HTTP server);
`run_demo()` is `newsarchive demo`: serve, crawl, show one archived article.
"""

from __future__ import annotations

import re
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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


@dataclass(frozen=True)
class Page:
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


class DemoSite:
    """The demo site served from memory on `host`, on a free port by default."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        site = self
        self.routes: dict[str, Page] = {}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # the crawl shows what was fetched
                pass

            def do_GET(self):
                page = site.routes.get(self.path)
                status = 200 if page else 404
                page = page or Page(b"<!doctype html><title>Not found</title><h1>Not found</h1>",
                                    [("Content-Type", "text/html; charset=utf-8")])
                self.send_response(status)
                for name, value in page.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                self.wfile.write(page.body)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://{self.httpd.server_address[0]}:{self.port}{path}"

    def start(self) -> "DemoSite":
        threading.Thread(target=self.httpd.serve_forever, name="demo-site", daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def demo_routes(base: str) -> dict[str, Page]:
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
        routes[url_path(path.name)] = Page(body, headers)
    return routes


def demo_articles(server: DemoSite) -> list[dict]:
    """The articles of the demo site: url, file and charset (for the CLI's summary and tests)."""
    return [{"url": server.url(url_path(p.name)), "file": p.name, "charset": CHARSETS.get(p.name, "utf-8")}
            for p in sorted(DEMO_DIR.glob("*.html")) if ARTICLE_FILE.fullmatch(p.name)]


def start_demo_site(host: str = "127.0.0.1", port: int = 0) -> DemoSite:
    """Start the demo site on loopback (a free port by default); stop it with .stop()."""
    server = DemoSite(host, port)
    server.routes.update(demo_routes(server.url("").rstrip("/")))  # the port is known once bound
    return server.start()


def demo_sources_toml(server: DemoSite) -> str:
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
recheck = 0            # crawled again, articles are fetched again: unchanged ones become revisits
delay = 0
concurrency = 4
"""


DEMO_PORT = 8731  # fixed, so the demo's URLs (and the README's) stay the same from run to run


def run_demo(archive: str, *, port: int = DEMO_PORT, use_prefect: bool = True, debug: bool = False) -> int:
    """`newsarchive demo`: serve the demo site on 127.0.0.1:`port`, crawl it into
    `archive`, print one article's clean text and the commands to try next; the
    exit code. Crawled again, unchanged pages are archived as revisits."""
    from flows import display, manual
    from storage.archive import open_archive
    from storage.errors import BadInput, CrawlError

    try:
        server = start_demo_site(port=port)
    except OSError as exc:
        raise BadInput(f"cannot serve the demo site on 127.0.0.1:{port}: {exc.strerror or exc} "
                       "(choose another with --port, 0 for any free one)") from None
    try:
        with tempfile.TemporaryDirectory(prefix="newsarchive-demo-") as tmp:
            sources = Path(tmp) / "sources.toml"
            sources.write_text(demo_sources_toml(server), encoding="utf-8")
            location = manual.crawl_archive(archive)
            display.info(f"demo news site at {server.url('/')}; crawling it into {location}")
            summaries = manual.crawl_sources(["demo"], sources.resolve(), location, None, use_prefect=use_prefect,
                                             title="crawling the demo site", debug=debug)
    finally:
        server.stop()
    code = display.report_crawls(summaries, location, out=display.console(stderr=True))
    if code:
        return code
    found = open_archive(location)
    texts = [a["url"] for a in demo_articles(server) if any(c.text for c in found.list(a["url"]))]
    if not texts:
        raise CrawlError(f"the demo crawl archived no article text in {location}")
    url = texts[0]
    display.info("")
    display.info(f"one archived article, as `newsarchive get {url} --as text --archive {archive}` prints it:")
    display.info("")
    sys.stdout.buffer.write(found.get(url, None, as_="text"))
    sys.stdout.buffer.flush()
    display.info("")
    display.info("try next (after `. .venv/bin/activate` in a checkout):")
    display.info(f"  newsarchive list {url} --archive {archive}")
    display.info(f"  newsarchive get {url} --as html --archive {archive}")
    display.info(f"  newsarchive get {url} --as json --archive {archive}")
    display.info(f"  newsarchive serve --archive {archive}     then open "
                 f"http://127.0.0.1:8080/web/timemap/link/{url}")
    return 0
