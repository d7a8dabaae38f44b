"""The bundled demo news site that `newsarchive demo` crawls.

flows/demosite/ holds a small fictional newspaper (The Port Alder Courier):
six articles with the boilerplate real news pages carry (cookie banner, nav,
share buttons, related stories, newsletter box, footer), a homepage, two
sections, an RSS feed, a Google news sitemap and robots.txt. One article is
Russian, stored in windows-1251 and declared only in the HTTP header, as older
sites do. Feeds, sitemaps and canonical links carry `{base}`, replaced with
the server's real address when the routes are built.

Its CDN (demosite/cdn/: a stylesheet, the masthead images and a page script)
is a second server on another port, called `localhost`, which the demo source
lists in `requisite_hosts`, so the crawl archives what the pages need to look
styled in replay (`{cdn}` in the pages is its address).

`start_demo_site()` serves both on loopback (small threaded HTTP servers);
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
    ".js": "text/javascript",
    ".png": "image/png",
}
BINARY = {".png"}  # no charset, no {base} to replace

# demosite/cdn/ is the Courier's CDN, served on a second loopback host name (localhost) and port:
# its stylesheet, masthead images and page script, which the demo source lists in requisite_hosts.
CDN_DIR = DEMO_DIR / "cdn"
CDN_HOST = "localhost"
CDN_PATHS = {".css": "/css/", ".png": "/img/", ".js": "/js/"}
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
    """The demo site served from memory on `host`, on a free port by default; `name` is the
    host its URLs use (the CDN binds 127.0.0.1 and is called localhost)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str | None = None):
        site = self
        self.routes: dict[str, Page] = {}
        self.name = name or host
        self.cdn: DemoSite | None = None  # the CDN beside the site (start_demo_site)

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
        return f"http://{self.name}:{self.port}{path}"

    def start(self) -> "DemoSite":
        threading.Thread(target=self.httpd.serve_forever, name="demo-site", daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.cdn is not None:
            self.cdn.stop()


def _file_page(path: Path, base: str, cdn: str) -> tuple[bytes, str]:
    """(body, Content-Type) of a file: `{base}` and `{cdn}` replaced in text files."""
    ext = path.suffix
    ctype = SPECIAL_TYPES.get(path.name, CONTENT_TYPES[ext])
    if ext in BINARY:
        return path.read_bytes(), ctype
    body = path.read_bytes().replace(b"{base}", base.encode("ascii")).replace(b"{cdn}", cdn.encode("ascii"))
    return body, ctype + f"; charset={CHARSETS.get(path.name, 'utf-8')}"


def cdn_routes() -> dict[str, Page]:
    """path -> Route for the CDN's files (demosite/cdn/), cached for a year as CDNs serve them."""
    routes = {}
    for path in sorted(CDN_DIR.iterdir()):
        if path.suffix in CDN_PATHS:
            body, ctype = _file_page(path, "", "")
            routes[CDN_PATHS[path.suffix] + path.name] = Page(body, [
                ("Content-Type", ctype), ("Cache-Control", "public, max-age=31536000, immutable"),
                ("Access-Control-Allow-Origin", "*")])
    return routes


def demo_routes(base: str, cdn: str = "") -> dict[str, Page]:
    """path -> Route for every file of the demo site, `{base}` replaced with `base` and `{cdn}`
    with `cdn` (the CDN's http://localhost:PORT; both without a trailing slash)."""
    routes = {}
    for path in sorted(DEMO_DIR.iterdir()):
        ext = path.suffix
        if ext not in CONTENT_TYPES or not path.is_file():
            continue  # e.g. __pycache__, cdn/ or editor leftovers
        body, ctype = _file_page(path, base, cdn)
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


def start_demo_site(host: str = "127.0.0.1", port: int = 0, cdn_port: int = 0) -> DemoSite:
    """Start the demo site on loopback (a free port by default) and its CDN (`.cdn`, on
    127.0.0.1:`cdn_port` called localhost); stop both with .stop()."""
    cdn = DemoSite(host, cdn_port, name=CDN_HOST)
    try:
        server = DemoSite(host, port)
    except OSError:
        cdn.stop()
        raise
    server.cdn = cdn
    cdn.routes.update(cdn_routes())
    # the ports are known once bound
    server.routes.update(demo_routes(server.url("").rstrip("/"), cdn.url("").rstrip("/")))
    cdn.start()
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
requisite_hosts = ["{CDN_HOST}"]   # the Courier's CDN: its stylesheet, images and script are archived too
"""


DEMO_PORT = 8731  # fixed, so the demo's URLs (and the README's) stay the same from run to run


def run_demo(archive: str, *, port: int = DEMO_PORT, use_prefect: bool = True, debug: bool = False) -> int:
    """`newsarchive demo`: serve the demo site on 127.0.0.1:`port`, crawl it into
    `archive`, print one article's clean text and the commands to try next; the
    exit code. Crawled again, unchanged pages are archived as revisits."""
    from flows import display, manual
    from storage.archive import open_archive
    from storage.errors import BadInput, CrawlError

    cdn_port = port + 1 if 0 < port < 65535 else 0  # the CDN beside it: 8732 by default
    try:
        server = start_demo_site(port=port, cdn_port=cdn_port)
    except OSError as exc:
        raise BadInput(f"cannot serve the demo site on 127.0.0.1:{port} and its CDN on {cdn_port}: "
                       f"{exc.strerror or exc} (choose another with --port, 0 for any free one)") from None
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
