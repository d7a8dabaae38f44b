"""A realistic news site on loopback, built from the test corpus (tests/data, our own pages).

`start_news_site()` serves 18 pages of tests/data (their exact bytes, 11 of
them not plain UTF-8) under `/news` + their original path, with the
Content-Type each page's evaldata entry gives, and around them the things
crawls meet on real sites: robots.txt, a sitemap index, a Google news sitemap,
a plain sitemap, RSS and Atom, a homepage and section pages, gzip and chunked
responses, repeated Set-Cookie headers, redirects (on-site and off-site), 404,
500, a PDF, a robots-forbidden page, a /video/ page, a query-string listing and
links to a second host (localhost:PORT2).

`start_news_site(n_articles=N)` builds a larger generated site (every article
of the corpus reused under many paths, routes computed lazily so memory stays
small) for benchmarks and longer crawls; `pages=` gives it another page set
(benchmarks pass the shared evaluation pages).

The pages keep their publishers' own links (menus, tags, related stories):
absolute ones point at their .example hosts (off-site), relative ones 404 on
this host, as after a site relaunch, so a crawl that follows links out of
articles meets dead links: count errors by `special` paths.

Everything the site serves is in `NewsSite.routes` (path with query -> Route,
the exact bytes sent), so tests can compare archives with what was sent.
"""

from __future__ import annotations

import gzip
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as xml_escape

from corpus import CorpusPage, load_corpus
from siteserver import Route, SiteServer

HTML_UTF8 = "text/html; charset=utf-8"

# The curated pages: a corpus file name (a unique part of it), where the site
# lists it besides links, and what the site does with it. How each page's
# charset is declared (HTTP header, <meta>, both, a lying <meta>, a BOM,
# nothing) is the page's own, from tests/data/evaldata.json.
CURATED = [
    # corpus file,                          feeds/sitemaps,            extras
    ("en-nextjs-metroledger",               ["news_sitemap", "rss"],   {"gzip": True}),
    ("en-liveblog-northfield",              ["news_sitemap"],          {"chunked": True}),
    ("de-typo3-stadtanzeiger",              ["news_sitemap"],          {}),   # iso-8859-1, header and meta
    ("zh-jiangnan-daily",                   ["news_sitemap"],          {}),   # gb2312, header only
    ("de-contao-heimatverein",              ["news_sitemap"],          {}),   # iso-8859-1, meta only
    ("pl-joomla-nadwislanska",              ["sitemap"],               {}),   # windows-1250, meta only
    ("pl-wiesci-rolnicze",                  ["sitemap"],               {}),   # iso-8859-2, header only
    ("de-drupal-kreisblatt",                ["sitemap"],               {}),
    ("es-table-layout-heraldo",             ["rss"],                   {}),   # iso-8859-1, header only
    ("de-tsv-rotbach",                      ["rss"],                   {}),   # windows-1252; its meta says utf-8
    ("de-magazin-autowelt",                 ["rss"],                   {}),   # windows-1252, meta only
    ("ru-bitrix-vesti-prirechya",           ["rss"],                   {}),   # windows-1251, header only
    ("en-wordpress-harbour-ferries",        ["atom"],                  {"redirect_from": "/news/top-story"}),
    ("fr-utf8-stray-cp1252",                ["atom"],                  {}),   # UTF-8 with windows-1252 includes
    ("en-aspnet-eastmere-bom",              ["atom"],                  {}),   # a BOM; the header says iso-8859-1
    ("en-ghost-civicdata-undeclared",       [],                        {}),   # UTF-8, declared nowhere
    ("es-diariodelsur",                     [],                        {}),
    ("fr-quotidien-national",               [],                        {}),
]

SECTIONS = {
    "world": ("World", ["zh-jiangnan-daily", "es-table-layout-heraldo", "es-diariodelsur", "pl-joomla-nadwislanska",
                        "pl-wiesci-rolnicze", "ru-bitrix-vesti-prirechya", "fr-quotidien-national"]),
    "germany": ("Germany", ["de-typo3-stadtanzeiger", "de-contao-heimatverein", "de-drupal-kreisblatt", "de-tsv-rotbach",
                            "de-magazin-autowelt"]),
    "local": ("Local", ["en-nextjs-metroledger", "en-aspnet-eastmere-bom", "fr-utf8-stray-cp1252",
                        "en-wordpress-harbour-ferries"]),
    "live": ("Live", ["en-liveblog-northfield", "en-ghost-civicdata-undeclared"]),
}

# Used where a page has no date of its own (sitemaps, feeds need one).
FALLBACK_DATE = "2024-03-15"


@dataclass
class NewsSite:
    server: SiteServer
    offsite: SiteServer
    base_url: str  # http://127.0.0.1:PORT (no trailing slash)
    routes: Mapping[str, Route]
    articles: list[dict]  # {path, url, original_url, file, charset, declared, content_type, with, without, ...}
    forbidden: list[str] = field(default_factory=list)  # robots.txt Disallow: these must never be fetched
    denied: list[str] = field(default_factory=list)  # matched by the default deny regexes
    special: dict[str, str] = field(default_factory=dict)  # feature -> path (gzip, chunked, cookies, ...)
    offsite_urls: list[str] = field(default_factory=list)  # linked from the site, on the other host

    @property
    def allowed_non_articles(self) -> list[str]:
        """Paths the default allow regex ('/news/') matches that are not articles: the
        query-string listing, 404, 500 and PDF download. A crawl may fetch (and try to
        extract) them; tests counting articles should expect exactly `articles`."""
        return [p for k, p in self.special.items() if k in ("query", "not_found", "server_error", "pdf", "pdf_download")]

    @property
    def listed(self) -> list[dict]:
        """The articles in a feed or sitemap: a crawl of depth 1 reaches every one of them
        (the others are linked only from section pages, one hop further)."""
        return [a for a in self.articles if a["found_in"] != ["links"]]

    @property
    def offsite_base(self) -> str:
        return self.offsite.url("", host="localhost")

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def article(self, key: str) -> dict:
        """The article whose path, url or file contains `key`."""
        hits = [a for a in self.articles if key in a["path"] or key in a["url"] or key in a["file"]]
        if len(hits) != 1:
            raise KeyError(f"{key!r} matches {len(hits)} articles")
        return hits[0]

    def page_bytes(self, path: str) -> bytes:
        """The body of `path` with its content-encoding removed (what `get --as html` should print)."""
        route = self.routes[path]
        if any(n.lower() == "content-encoding" and v == "gzip" for n, v in route.headers):
            return gzip.decompress(route.body)
        return route.body

    def sources_toml(self, name: str = "testnews", **overrides) -> str:
        """A sources.toml with one source for this site; an override of None drops the key."""
        src = {
            "name": name,
            "start_urls": [self.url("/")],
            "feeds": [self.url("/rss.xml"), self.url("/atom.xml")],
            "sitemaps": [self.url("/sitemap_index.xml"), self.url("/sitemap.xml")],
            "allow": ["/news/"],
            "deny": ["/video/"],
            "depth": 2,
            "max_pages": 1000,
            "delay": 0,
            "concurrency": 8,
        }
        src.update(overrides)
        lines = ["[[source]]"]
        for key, value in src.items():
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    def write_sources(self, tmp_path: Path, name: str = "testnews", **overrides) -> Path:
        path = Path(tmp_path) / "sources.toml"
        path.write_text(self.sources_toml(name, **overrides), encoding="utf-8")
        return path

    def stop(self) -> None:
        self.server.stop()
        self.offsite.stop()


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # literal strings keep regex backslashes readable; JSON escapes are valid TOML basic strings
        return f"'{value}'" if "'" not in value and "\n" not in value else json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to sources.toml")


# ---------------------------------------------------------------- test pages

def _original_path(url: str) -> str:
    """Path (with query) of the page's original URL."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _article(page: CorpusPage, path: str, base: str, **extra) -> dict:
    """What the site knows of an article it serves (tests compare crawls with it)."""
    art = {
        "path": path, "url": base + path, "original_url": page.url, "file": page.file, "page": page,
        "charset": page.charset, "declared": page.declared, "content_type": page.content_type,
        "language": page.language, "with": list(page.with_), "without": list(page.without), **extra,
    }
    for key in ("title", "author", "date"):
        if getattr(page, key):
            art[key] = getattr(page, key)
    return art


def corpus_articles() -> list[CorpusPage]:
    return [p for p in load_corpus() if p.is_article]


# ---------------------------------------------------------------- HTML chrome

def _page(title: str, body: str, base: str) -> bytes:
    """A listing page in the site's template: nav, cookie banner, footer (the boilerplate around links)."""
    nav = "".join(f'<li><a href="/section/{slug}/">{html.escape(name)}</a></li>' for slug, (name, _) in SECTIONS.items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} | Testnews</title>
<link rel="alternate" type="application/rss+xml" title="Testnews RSS" href="{base}/rss.xml">
<link rel="alternate" type="application/atom+xml" title="Testnews Atom" href="/atom.xml">
<link rel="stylesheet" href="/static/site.css">
</head>
<body>
<div class="cookie-banner" id="consent">We use cookies to improve your experience. <a href="/privacy">Privacy policy</a> <button>Accept all</button></div>
<header><a class="logo" href="/">Testnews</a>
<nav><ul><li><a href="/">Home</a></li>{nav}<li><a href="#main">Skip to content</a></li></ul></nav></header>
<main id="main">
<h1>{html.escape(title)}</h1>
{body}
</main>
<footer><p>&copy; 2021 Testnews Media. <a href="/about">About us</a> &middot; <a href="mailto:desk@testnews.invalid">Contact</a> &middot; <a href="javascript:void(0)">Cookie settings</a></p></footer>
</body>
</html>
""".encode("utf-8")


def _link_list(items: list[tuple[str, str]]) -> str:
    return "<ul class=\"teasers\">\n" + "\n".join(
        f'<li><a href="{html.escape(href)}">{html.escape(text)}</a></li>' for href, text in items) + "\n</ul>"


def _html_route(body: bytes, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Route:
    return Route(body, status=status, headers=[("Content-Type", HTML_UTF8)] + (headers or []))


def _iso(date: str) -> str:
    return f"{date}T08:30:00+01:00"


def _rfc822(date: str) -> str:
    return format_datetime(datetime.fromisoformat(_iso(date)))


def _news_sitemap(entries: list[dict]) -> bytes:
    urls = "".join(
        f"""<url><loc>{xml_escape(a['url'])}</loc><news:news><news:publication><news:name>Testnews</news:name>"""
        f"""<news:language>{a.get('language', 'en')}</news:language></news:publication>"""
        f"""<news:publication_date>{_iso(a.get('date', FALLBACK_DATE))}</news:publication_date>"""
        f"""<news:title>{xml_escape(a.get('title', ''))}</news:title></news:news></url>\n""" for a in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">\n' + urls + "</urlset>\n").encode("utf-8")


def _plain_sitemap(urls: list[tuple[str, str]]) -> bytes:
    body = "".join(f"<url><loc>{xml_escape(u)}</loc><lastmod>{d}</lastmod></url>\n" for u, d in urls)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            + body + "</urlset>\n").encode("utf-8")


def _sitemap_index(urls: list[str]) -> bytes:
    body = "".join(f"<sitemap><loc>{xml_escape(u)}</loc><lastmod>2021-03-15</lastmod></sitemap>\n" for u in urls)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            + body + "</sitemapindex>\n").encode("utf-8")


def _rss(base: str, entries: list[dict]) -> bytes:
    items = "".join(
        f"""<item><title>{xml_escape(a.get('title', a['path']))}</title><link>{xml_escape(a['url'])}</link>"""
        f"""<guid isPermaLink="true">{xml_escape(a['url'])}</guid><pubDate>{_rfc822(a.get('date', FALLBACK_DATE))}</pubDate>"""
        + (f"<author>desk@testnews.invalid ({xml_escape(a['author'])})</author>" if a.get("author") else "")
        + "</item>\n" for a in entries)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
<title>Testnews</title>
<link>{base}/</link>
<description>Latest stories from Testnews</description>
<language>en</language>
<atom:link href="{base}/rss.xml" rel="self" type="application/rss+xml"/>
{items}</channel>
</rss>
""".encode("utf-8")


def _atom(base: str, entries: list[dict]) -> bytes:
    items = "".join(
        f"""<entry><title>{xml_escape(a.get('title', a['path']))}</title><link rel="alternate" href="{xml_escape(a['url'])}"/>"""
        f"""<id>{xml_escape(a['url'])}</id><updated>{_iso(a.get('date', FALLBACK_DATE))}</updated>"""
        f"""<published>{_iso(a.get('date', FALLBACK_DATE))}</published>"""
        + (f"<author><name>{xml_escape(a['author'])}</name></author>" if a.get("author") else "")
        + "</entry>\n" for a in entries)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Testnews</title>
<id>{base}/</id>
<link rel="self" href="{base}/atom.xml"/>
<link rel="alternate" href="{base}/"/>
<updated>2021-03-15T08:30:00+01:00</updated>
<author><name>Testnews desk</name></author>
{items}</feed>
""".encode("utf-8")


def _robots(base: str) -> bytes:
    return f"User-agent: *\nDisallow: /private/\n\nSitemap: {base}/sitemap_index.xml\n".encode("ascii")


def minimal_pdf(text: str = "Testnews annual report 2020") -> bytes:
    """A small valid one-page PDF (xref offsets computed), for 'not HTML' handling."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# ---------------------------------------------------------------- the curated site

def _build_offsite(offsite: SiteServer, base: str) -> list[str]:
    """The other host: a few pages a crawl of the test site must never fetch."""
    obase = offsite.url("", host="localhost")
    paths = ["/", "/offers/", "/news/2021/03/partner-story.html"]
    offsite.routes.update({
        "/robots.txt": Route(b"User-agent: *\nAllow: /\n", headers=[("Content-Type", "text/plain")]),
        "/": _html_route(_page("Partner portal", _link_list([("/offers/", "Offers"), ("/news/2021/03/partner-story.html", "Partner story")]), obase)),
        "/offers/": _html_route(_page("Offers", "<p>Subscribe to our partner newsletter.</p>", obase)),
        "/news/2021/03/partner-story.html": _html_route(_page("Partner story", "<p>This page sits on another host; it matches the allow regex but is off-site.</p>"
                                                               f'<p><a href="{base}/">Back to Testnews</a></p>', obase)),
    })
    return [obase + p for p in paths]


def _build_curated(server: SiteServer, offsite: SiteServer) -> NewsSite:
    base = server.url("").rstrip("/")
    routes: dict[str, Route] = server.routes
    offsite_urls = _build_offsite(offsite, base)
    articles: list[dict] = []
    by_key: dict[str, dict] = {}
    special: dict[str, str] = {}

    for key, found_in, extras in CURATED:
        matches = [p for p in load_corpus() if key in p.file]
        if len(matches) != 1:
            raise LookupError(f"corpus page {key!r} found {len(matches)} times in tests/data")
        page = matches[0]
        path = "/news" + _original_path(page.url)
        route = Route(page.body, headers=[("Content-Type", page.content_type), ("Cache-Control", "max-age=300")])
        if extras.get("gzip"):
            route.body = gzip.compress(page.body, mtime=0)
            route.headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
            special["gzip"] = path
        if extras.get("chunked"):
            route.chunked = True
            special["chunked"] = path
        if path in routes:
            raise ValueError(f"two corpus pages at {path}")
        routes[path] = route
        art = _article(page, path, base, found_in=found_in + ["links"], gzip=bool(extras.get("gzip")),
                       chunked=bool(extras.get("chunked")))
        if "redirect_from" in extras:
            art["redirect_from"] = extras["redirect_from"]
        articles.append(art)
        by_key[key] = art

    top = by_key["en-wordpress-harbour-ferries"]

    # the homepage: three Set-Cookie headers (consent, session, A/B bucket), as news sites send
    routes["/"] = _html_route(_page("Testnews: the latest", "\n".join([
        "<section class=\"top\"><h2>Top stories</h2>",
        _link_list([(top["redirect_from"], "Top story: " + top.get("title", "")),
                    (by_key["en-nextjs-metroledger"]["path"], by_key["en-nextjs-metroledger"]["title"]),
                    (by_key["en-liveblog-northfield"]["url"], by_key["en-liveblog-northfield"]["title"]),
                    ("/news/2021/01/deleted-story.html", "A story that was taken down"),
                    ("/news/2021/02/server-error.html", "Live: election results"),
                    ("/news/2021/03/annual-report.pdf", "Our annual report (PDF)"),
                    ("/news/downloads/report?id=2020", "Download the report"),
                    ("/private/embargoed-story.html", "Embargoed: do not publish"),
                    ("/video/2021/03/highlights.html", "Video: the week in pictures"),
                    ("/go/partner-offer", "Partner offer"),
                    ("/news/search?q=a&page=2", "More stories")]),
        "</section><section><h2>Sections</h2>",
        _link_list([(f"/section/{slug}/", name) for slug, (name, _) in SECTIONS.items()]),
        "</section><aside class=\"partners\"><h2>From our partners</h2>",
        _link_list([(u, "Partner: " + u.rsplit("/", 1)[-1]) for u in offsite_urls]),
        "</aside>"]), base), headers=[
        ("Set-Cookie", "consent=pending; Path=/; Max-Age=31536000; SameSite=Lax"),
        ("Set-Cookie", "session=8f14e45fceea167a; Path=/; HttpOnly"),
        ("Set-Cookie", "ab_bucket=B; Path=/; Max-Age=86400"),
    ])
    special["cookies"] = "/"

    for slug, (name, prefixes) in SECTIONS.items():
        items = [(by_key[p]["path"], by_key[p].get("title", by_key[p]["path"])) for p in prefixes]
        routes[f"/section/{slug}/"] = _html_route(_page(name, _link_list(items), base))

    # a listing with a query string; links to the two link-only articles again
    routes["/news/search?q=a&page=2"] = _html_route(_page("Search results for \u201ca\u201d, page 2", _link_list(
        [(by_key[p]["path"], by_key[p].get("title", "")) for p in ("en-ghost-civicdata-undeclared", "es-diariodelsur",
                                                                   "fr-quotidien-national")]
        + [("/news/search?q=a&page=1", "\u2190 Previous page")]), base))
    special["query"] = "/news/search?q=a&page=2"

    routes[top["redirect_from"]] = Route(b"", status=301, headers=[("Location", top["url"]), ("Content-Type", HTML_UTF8)])
    special["redirect"] = top["redirect_from"]
    routes["/go/partner-offer"] = Route(b"", status=302, headers=[("Location", offsite_urls[1]), ("Cache-Control", "no-store")])
    special["offsite_redirect"] = "/go/partner-offer"
    routes["/news/2021/01/deleted-story.html"] = _html_route(_page("Page not found", "<p>This story is no longer available.</p>", base), status=404)
    special["not_found"] = "/news/2021/01/deleted-story.html"
    routes["/news/2021/02/server-error.html"] = Route(b"<html><body><h1>500 Internal Server Error</h1></body></html>", status=500,
                                                      headers=[("Content-Type", HTML_UTF8)])
    special["server_error"] = "/news/2021/02/server-error.html"
    routes["/news/2021/03/annual-report.pdf"] = Route(minimal_pdf(), headers=[("Content-Type", "application/pdf")])
    special["pdf"] = "/news/2021/03/annual-report.pdf"
    # the same PDF behind a download URL with no extension: crawlers that skip links by
    # extension still fetch this one, and it matches the allow regex like an article
    routes["/news/downloads/report?id=2020"] = Route(minimal_pdf(), headers=[
        ("Content-Type", "application/pdf"), ("Content-Disposition", 'attachment; filename="annual-report-2020.pdf"')])
    special["pdf_download"] = "/news/downloads/report?id=2020"
    routes["/private/embargoed-story.html"] = _html_route(_page("Embargoed", "<p>Not for publication before Monday.</p>", base))
    special["private"] = "/private/embargoed-story.html"
    routes["/video/2021/03/highlights.html"] = _html_route(_page("Video highlights", "<p><video src=\"/media/highlights.mp4\"></video></p>", base))
    special["video"] = "/video/2021/03/highlights.html"

    routes["/robots.txt"] = Route(_robots(base), headers=[("Content-Type", "text/plain; charset=utf-8")])
    routes["/sitemap_index.xml"] = Route(_sitemap_index([base + "/news-sitemap.xml"]), headers=[("Content-Type", "application/xml")])
    routes["/news-sitemap.xml"] = Route(_news_sitemap([a for a in articles if "news_sitemap" in a["found_in"]]),
                                        headers=[("Content-Type", "application/xml; charset=utf-8")])
    routes["/sitemap.xml"] = Route(_plain_sitemap([(a["url"], a.get("date", FALLBACK_DATE)) for a in articles if "sitemap" in a["found_in"]]),
                                   headers=[("Content-Type", "text/xml")])
    routes["/rss.xml"] = Route(_rss(base, [a for a in articles if "rss" in a["found_in"]]), headers=[("Content-Type", "application/rss+xml; charset=utf-8")])
    routes["/atom.xml"] = Route(_atom(base, [a for a in articles if "atom" in a["found_in"]]), headers=[("Content-Type", "application/atom+xml; charset=utf-8")])

    return NewsSite(server=server, offsite=offsite, base_url=base, routes=routes, articles=articles,
                    forbidden=[special["private"]], denied=[special["video"]], special=special, offsite_urls=offsite_urls)


# ---------------------------------------------------------------- the generated (big) site

class _LazyRoutes(Mapping):
    """path -> Route computed on access, so a site of 50,000 pages costs only its small page index."""

    def __init__(self, fixed: dict[str, Route], pages: dict[str, CorpusPage]):
        self.fixed = fixed
        self.pages = pages  # path -> the page served there

    def __getitem__(self, path: str) -> Route:
        if path in self.fixed:
            return self.fixed[path]
        page = self.pages[path]
        return Route(page.body, headers=[("Content-Type", page.content_type)])

    def __iter__(self):
        yield from self.fixed
        yield from self.pages

    def __len__(self) -> int:
        return len(self.fixed) + len(self.pages)


def _build_generated(server: SiteServer, offsite: SiteServer, n_articles: int, per_sitemap: int = 1000,
                     per_listing: int = 100, pages: Sequence[CorpusPage] | None = None) -> NewsSite:
    """`pages`: the article pages to reuse (default: the corpus's articles), anything with
    CorpusPage's url, file, body, content_type, charset, declared, language, with_, without, title, author."""
    base = server.url("").rstrip("/")
    offsite_urls = _build_offsite(offsite, base)
    sources = sorted(pages if pages is not None else corpus_articles(), key=lambda p: p.file)
    start = datetime(2021, 1, 1, tzinfo=timezone.utc)
    articles, served = [], {}
    # everything that depends only on the source page is computed once per file, not per copy
    per_file = []
    for page in sources:
        slug = re.sub(r"[^a-z0-9]+", "-", Path(page.file).stem.lower()).strip("-")[:50] or "story"
        common = _article(page, "", "", found_in=["news_sitemap", "links"])
        del common["path"], common["url"]
        common.pop("date", None)  # each copy gets a date of its own
        per_file.append((slug, page, common))
    for i in range(n_articles):
        slug, page, common = per_file[i % len(per_file)]
        day = (start + timedelta(hours=6 * i)).date().isoformat()
        path = f"/news/{day[:4]}/{day[5:7]}/{day[8:]}/{i:06d}-{slug}.html"
        served[path] = page
        articles.append({"path": path, "url": base + path, **common, "date": day})

    fixed: dict[str, Route] = {}
    sitemap_urls = []
    for n, startat in enumerate(range(0, n_articles, per_sitemap), 1):
        fixed[f"/news-sitemap-{n}.xml"] = Route(_news_sitemap(articles[startat:startat + per_sitemap]),
                                                headers=[("Content-Type", "application/xml")])
        sitemap_urls.append(f"{base}/news-sitemap-{n}.xml")
    fixed["/sitemap_index.xml"] = Route(_sitemap_index(sitemap_urls), headers=[("Content-Type", "application/xml")])
    fixed["/sitemap.xml"] = Route(_plain_sitemap([]), headers=[("Content-Type", "application/xml")])
    fixed["/robots.txt"] = Route(_robots(base), headers=[("Content-Type", "text/plain")])
    latest = articles[::-1][:50]
    fixed["/rss.xml"] = Route(_rss(base, latest), headers=[("Content-Type", "application/rss+xml")])
    fixed["/atom.xml"] = Route(_atom(base, latest), headers=[("Content-Type", "application/atom+xml")])
    n_listings = max(1, -(-n_articles // per_listing))
    for n in range(1, n_listings + 1):
        chunk = articles[(n - 1) * per_listing:n * per_listing]
        nav = [(f"/archive/page/{n + 1}/", "Older stories")] if n < n_listings else []
        fixed[f"/archive/page/{n}/"] = _html_route(_page(f"Archive, page {n}", _link_list(
            [(a["path"], a.get("title", a["path"])) for a in chunk] + nav), base))
    fixed["/"] = _html_route(_page("Testnews archive", _link_list(
        [(f"/archive/page/{n}/", f"Archive page {n}") for n in range(1, n_listings + 1)]), base))
    routes = _LazyRoutes(fixed, served)
    server.routes = routes
    return NewsSite(server=server, offsite=offsite, base_url=base, routes=routes, articles=articles,
                    offsite_urls=offsite_urls)


def start_news_site(n_articles: int | None = None, pages: Sequence[CorpusPage] | None = None) -> NewsSite:
    """Start the curated test site (n_articles=None) or a generated one with n_articles pages
    (reusing `pages`, default the corpus's articles); call .stop()."""
    server = SiteServer({}).start()
    offsite = SiteServer({}).start()
    try:
        if n_articles is None:
            return _build_curated(server, offsite)
        return _build_generated(server, offsite, n_articles, pages=pages)
    except BaseException:
        server.stop()
        offsite.stop()
        raise
