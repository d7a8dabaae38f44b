"""Page requisites (spiders/requisites.py): what a page needs is found, judged and archived.

The finders and the guards' decisions are tested directly; the rest by real
crawls (`python -m spiders.crawl`, then `newsarchive crawl`) of a site on
127.0.0.1 with a "CDN" on another port called localhost, a bait server on
127.0.0.2 that no source names (tests/hostile_site.py) and a scripted DNS name
that resolves to the bait.
"""

from __future__ import annotations

import json
import re

import pytest
from scrapy.http import HtmlResponse

from fixtures_hostile import check_archive
from hostile_site import HTML, article_html
from siteserver import Route, SiteServer
from spiders.guard import AddressGuard, Scope
from spiders.requisites import css_requisites, html_requisites
from spiders.seen import SeenCaptures
from spiders.sources import SourcesError, Source, load_sources
from test_cli_support import cli_env, run

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
       b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")


# --------------------------------------------------------------------------- finding them


def test_html_requisites_finds_stylesheets_images_scripts_and_css_urls():
    body = b"""<html><head><base href="http://site.test/news/">
    <link rel="stylesheet" href="/static/site.css"><link rel="alternate stylesheet" href="/alt.css">
    <link rel="icon" href="/favicon.ico"><link rel="preload" as="font" href="/f/serif.woff2" crossorigin>
    <link rel="alternate" type="application/rss+xml" href="/rss.xml"><link rel="canonical" href="/a.html">
    <script src="app.js"></script><script>var x = 1;</script>
    <style>@import url("print.css"); .hero { background: url(img/hero.jpg) }</style></head>
    <body style="background-image: url('/img/paper.png')">
    <img src="photo.jpg" srcset="photo-640.jpg 640w, photo-1280.jpg 1280w">
    <picture><source srcset="wide.webp 1x, wide@2x.webp 2x"><img src="wide.jpg"></picture>
    <img src="data:image/png;base64,AAAA"><video poster="/v/poster.jpg"></video>
    <img src="photo.jpg"><a href="/next.html">next</a></body></html>"""
    response = HtmlResponse("http://site.test/news/a.html", body=body, encoding="utf-8")
    found = html_requisites(response)
    assert found == [
        ("http://site.test/static/site.css", "stylesheet"),
        ("http://site.test/favicon.ico", "image"),
        ("http://site.test/f/serif.woff2", "font"),
        ("http://site.test/news/photo.jpg", "image"),
        ("http://site.test/news/photo-640.jpg", "image"),
        ("http://site.test/news/wide.webp", "image"),
        ("http://site.test/news/wide.jpg", "image"),
        ("data:image/png;base64,AAAA", "image"),  # found; the middleware never requests it
        ("http://site.test/v/poster.jpg", "image"),
        ("http://site.test/news/app.js", "script"),
        ("http://site.test/news/print.css", "stylesheet"),
        ("http://site.test/news/img/hero.jpg", "image"),
        ("http://site.test/img/paper.png", "image"),
    ]
    # no pages: links, feeds, canonical and alternate stylesheets are not requisites
    assert not {u for u, _ in found} & {"http://site.test/next.html", "http://site.test/rss.xml",
                                        "http://site.test/a.html", "http://site.test/alt.css"}


def test_css_requisites_reads_imports_fonts_and_images_as_css_says():
    css = """@charset "utf-8";
    @import "reset.css" screen; @import url(theme/dark.css);
    /* url(commented-out.png) */
    @font-face { font-family: Body; src: url("../fonts/body.woff2") format("woff2"), url(../fonts/body.ttf); }
    @media (min-width: 40em) { .masthead { background: #fff url('../img/rule.png') repeat-x; } }
    .icon::before { content: "url(not-a-url.png)"; background-image: image-set(url(i.png) 1x, url(i2.png) 2x); }
    """.encode("utf-8")
    found = css_requisites(css, "http://cdn.test/css/site.css", encoding="utf-8")
    assert found == [
        ("http://cdn.test/css/reset.css", "stylesheet"),
        ("http://cdn.test/css/theme/dark.css", "stylesheet"),
        ("http://cdn.test/fonts/body.woff2", "font"),
        ("http://cdn.test/fonts/body.ttf", "font"),
        ("http://cdn.test/img/rule.png", "image"),
        ("http://cdn.test/css/i.png", "image"),
        ("http://cdn.test/css/i2.png", "image"),
    ]
    # a stylesheet in another charset, said by its @charset rule
    latin = '@charset "iso-8859-1"; .caf\xe9 { background: url(caf\xe9.png) }'.encode("iso-8859-1")
    assert css_requisites(latin, "http://cdn.test/") == [("http://cdn.test/caf\xe9.png", "image")]


# --------------------------------------------------------------------------- the guards' decisions


def _source(**kw) -> Source:
    return Source(name="s", start_urls=("http://127.0.0.1:8000/",), **kw)


def test_the_requisite_scope_adds_requisite_hosts_for_requisites_only():
    source = _source(requisite_hosts=("cdn.example.net", "localhost"))
    pages, requisites = Scope(source), Scope(source, requisites=True)
    assert requisites.refusal("https://cdn.example.net/site.css") is None
    assert requisites.refusal("http://www.cdn.example.net/a.png") is None  # www. or not, as for pages
    assert requisites.refusal("http://localhost:9/app.js") is None
    assert requisites.refusal("http://127.0.0.1:8000/static/site.css") is None  # the source's own host
    # a page is never fetched from a requisite host
    assert pages.refusal("https://cdn.example.net/index.html").kind == "off-scope"
    # an unlisted host, other schemes and credentials: refused for requisites as for pages
    assert requisites.refusal("http://tracker.example.org/pixel.gif").kind == "off-scope"
    assert requisites.refusal("http://127.0.0.2:8000/bait.png").kind == "off-scope"
    assert requisites.refusal("file:///etc/passwd").kind == "bad-scheme"
    assert requisites.refusal("ftp://cdn.example.net/a.png").kind == "bad-scheme"
    assert requisites.refusal("http://user:pw@cdn.example.net/a.png").kind == "bad-url"


def test_the_address_guard_refuses_private_addresses_for_requisite_hosts_by_name():
    """A listed requisite host's name never earns a private address through DNS; the guard
    is asked directly (nothing connects anywhere)."""
    guard = AddressGuard(Source(name="s", start_urls=("https://news.example.com/",),
                                requisite_hosts=("cdn.example.net", "localhost", "10.1.2.3")))
    assert guard.refusal("cdn.example.net", "93.184.216.34") is None  # public: allowed
    for ip in ("10.0.0.7", "192.168.1.1", "127.0.0.1", "172.16.0.1", "fd00::1", "::ffff:10.0.0.7"):
        refusal = guard.refusal("cdn.example.net", ip)
        assert refusal is not None and refusal.kind == "blocked-address", ip
        assert "cdn.example.net resolves to" in refusal.message
    for ip in ("169.254.169.254", "fd00:ec2::254", "0.0.0.0"):  # never, listed or not
        assert guard.refusal("cdn.example.net", ip).kind == "blocked-address"
        assert guard.refusal(ip, ip).kind == "blocked-address"
    assert guard.refusal("localhost", "127.0.0.1") is None  # listed localhost: loopback
    assert guard.refusal("10.1.2.3", "10.1.2.3") is None  # a listed IP literal is named by the source
    assert guard.refusal("10.1.2.4", "10.1.2.4").kind == "blocked-address"
    unlisted = AddressGuard(Source(name="s", start_urls=("https://news.example.com/",)))
    assert unlisted.refusal("localhost", "127.0.0.1").kind == "blocked-address"
    assert unlisted.refusal("10.1.2.3", "10.1.2.3").kind == "blocked-address"


def test_sources_toml_checks_requisite_hosts_and_max_requisites(tmp_path):
    def load(extra: str):
        path = tmp_path / "sources.toml"
        path.write_text(f'[[source]]\nname = "s"\nstart_urls = ["http://127.0.0.1:8000/"]\n{extra}\n')
        return load_sources(path)["s"]

    source = load('requisite_hosts = ["cdn.example.net", "localhost"]\nmax_requisites = 12')
    assert source.requisite_hosts == ("cdn.example.net", "localhost") and source.requisite_budget == 12
    assert load("max_pages = 50").requisite_budget == 200  # default: 4 a page
    assert load("max_requisites = 0").requisite_budget == 0
    assert load("recheck = 0").requisite_recheck == 24 and load("recheck = 72").requisite_recheck == 72
    for bad, said in [('["https://cdn.example.net/"]', "the host alone: 'cdn.example.net'"),
                      ('["cdn.example.net:8080"]', "no port"), ('["*.example.net"]', "no wildcards"),
                      ('["metadata.google.internal"]', "metadata"), ('"cdn.example.net"', "a list of host names")]:
        with pytest.raises(SourcesError, match=re.escape(said)):
            load(f"requisite_hosts = {bad}")
    with pytest.raises(SourcesError, match="an integer >= 0"):
        load("max_requisites = -1")


def test_seen_requisites_are_due_again_only_after_the_requisite_recheck():
    from datetime import datetime, timezone

    now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
    seen = SeenCaptures({"http://s/a.css": {"url": "http://s/a.css", "timestamp": "20261202000000", "status": 200},
                         "http://s/gone.png": {"url": "http://s/gone.png", "timestamp": "20261202000000",
                                               "status": 404}})
    assert not seen.requisite_due("http://s/a.css", 24, now)
    assert not seen.requisite_due("http://s/gone.png", 24, now)  # missing stays missing: not asked again
    assert seen.requisite_due("http://s/a.css", 12, now)
    assert seen.requisite_due("http://s/new.png", 24, now)


# --------------------------------------------------------------------------- real crawls


class RequisiteSite:
    """A listing and two articles on the hostile site's 127.0.0.1, a CDN on localhost:PORT2."""

    def __init__(self, site):
        self.site = site
        self.cdn = SiteServer({}).start()
        c = self.cdn_base = self.cdn.url("", host="localhost")
        bait = site.bait.url("/")  # 127.0.0.2, on the site's port: no source names it
        port = site.port
        self.css = (f'@import "print.css"; body {{ font-family: Georgia, serif }}\n'
                    f'@font-face {{ font-family: Body; src: url("{c}/fonts/body.woff2") format("woff2") }}\n'
                    f'.masthead {{ background: url({c}/img/rule.png) }} .bait {{ background: url({bait}bait.png) }}\n'
                    f'.x {{ background: url(data:image/gif;base64,R0lGOD) }}').encode()
        self.site_files = {"/static/site.css": Route(self.css, headers=[("Content-Type", "text/css")]),
                           "/static/print.css": Route(b"@media print { nav { display: none } }",
                                                      headers=[("Content-Type", "text/css")]),
                           "/js/app.js": Route(b"document.body.className = 'js';",
                                               headers=[("Content-Type", "text/javascript")])}
        self.cdn_files = {"/img/photo.png": Route(PNG, headers=[("Content-Type", "image/png")]),
                          "/img/photo@2x.png": Route(PNG + b"2x", headers=[("Content-Type", "image/png")]),
                          "/img/rule.png": Route(PNG + b"rule", headers=[("Content-Type", "image/png")]),
                          "/fonts/body.woff2": Route(b"wOF2 not really a font", headers=[("Content-Type", "font/woff2")]),
                          "/cdn-page.html": Route(b"<html><body>a page on the CDN</body></html>", headers=HTML),
                          # a requisite that redirects to a host no source names (the bait)
                          "/img/moved.png": Route(b"", status=302, headers=[("Location", f"{bait}moved.png")])}
        self.cdn.routes.update(self.cdn_files)
        for path, route in self.site_files.items():
            site.add(path, route)
        head = ('<link rel="stylesheet" href="/static/site.css"><script src="/js/app.js"></script>'
                f'<link rel="stylesheet" href="{c}/missing.css">')
        extra = (f'<img src="{c}/img/photo.png" srcset="{c}/img/photo.png 1x, {c}/img/photo@2x.png 2x">'
                 f'<img src="{bait}bait.png"><img src="http://cdn.hostile.test:{port}/img/evil.png">'
                 '<img src="file:///etc/passwd"><img src="data:image/png;base64,iVBORw0KGgo=">'
                 f'<img src="{c}/img/moved.png"><img src="/video/poster.jpg">'
                 f'<a href="{c}/cdn-page.html">the CDN has pages too</a>')
        self.articles = []
        for i in range(2):
            path = f"/news/story-{i}"
            body = article_html(f"Story {i}", extra=extra).replace(b"</head>", head.encode() + b"</head>")
            site.add(path, Route(body, headers=HTML))
            self.articles.append(site.url(path))
        site.add("/", Route(f"<html><head>{head}</head><body><h1>Home</h1><a href='/news/story-0'>0</a>"
                            f"<a href='/news/story-1'>1</a></body></html>".encode(), headers=HTML))

    def sources_toml(self, hosts=("localhost", "cdn.hostile.test"), **extra) -> str:
        """cdn.hostile.test only with the scripted DNS (RESOLVER): no lookup may leave loopback."""
        return self.site.sources_toml(requisite_hosts=list(hosts), deny=["/video/"], **extra)

    @property
    def dns(self) -> dict:
        # the listed host's DNS points at the bait: the address guard must refuse it by its address
        return {"HOSTILE_DNS": json.dumps({"cdn.hostile.test": ["127.0.0.2"], "localhost": ["127.0.0.1"]})}

    def requisite_paths(self) -> list[str]:
        """Requisite requests the two servers received (the CDN's robots.txt aside)."""
        return ([p for p in self.site.server.fetched_paths() if p in self.site_files]
                + [p for p in self.cdn.fetched_paths() if p != "/robots.txt"])

    def stop(self):
        self.cdn.stop()


@pytest.fixture
def requisite_site(hostile_site):
    made = RequisiteSite(hostile_site)
    yield made
    made.stop()


RESOLVER = {"DNS_RESOLVER": "hostile_dns.ScriptedResolver"}


def test_a_crawl_archives_requisites_once_byte_for_byte_and_only_in_scope(requisite_site, hostile_crawl):
    site = requisite_site
    crawl = hostile_crawl(site.site, site.sources_toml(), settings=RESOLVER, env=site.dns)
    check_archive(crawl, site.site, good=site.articles)  # bait untouched, valid WARCs, bounded memory

    # every in-scope requisite of the three pages, once, though all three link site.css and app.js
    # (of a srcset, the first candidate only: photo@2x.png is not fetched)
    wanted = {"/static/site.css", "/static/print.css", "/js/app.js", "/img/photo.png",
              "/img/rule.png", "/fonts/body.woff2", "/missing.css", "/img/moved.png"}
    fetched = site.requisite_paths()
    assert sorted(fetched) == sorted(wanted), fetched
    assert "/cdn-page.html" not in site.cdn.fetched_paths()  # a requisite host's pages are not crawled

    # stored byte for byte as response records, as pages are
    responses = crawl.responses()
    for path, route in site.site_files.items():
        assert responses[site.site.url(path)][2] == route.body
    for path, route in site.cdn_files.items():
        if path in wanted:
            headers, status, payload = responses[site.cdn_base + path]
            assert status == route.status and payload == route.body and headers["WARC-Type"] == "response"
    assert responses[site.cdn_base + "/missing.css"][1] == 404

    # the listed name that resolves to the bait: refused by the address guard, counted
    assert crawl.errors.get("blocked-address", 0) >= 1, crawl.errors  # its robots.txt may be counted too
    samples = crawl.samples("blocked-address")
    assert samples and all(s["url"].startswith("http://cdn.hostile.test:") and "127.0.0.2" in s["message"]
                           for s in samples), samples

    # the redirect to the bait: archived (the 302), not followed, a refusal as a page's would be
    (moved,) = crawl.samples("off-scope")
    assert moved["url"] == site.site.bait.url("/moved.png") and crawl.errors["off-scope"] == 1
    # the source's deny regexes hold for requisites too
    assert "/video/poster.jpg" not in site.site.server.fetched_paths()

    # counted apart from pages: never pages, never articles, no text
    req = crawl.stats["requisites"]
    assert req["archived"] == len(wanted) and req["failed"] == {"http-4xx": 1}
    assert req["not_fetched"]["denied"] == 2  # the poster on both articles
    assert req["not_fetched"]["off-scope"] >= 2  # the bait's two (img, css url()) and others
    assert req["not_fetched"]["duplicate"] >= 4
    assert "bad-scheme" in req["not_fetched"]  # file:/// on the pages; data: is not even counted
    assert crawl.stats["articles"] == 2 and len(crawl.articles()) == 2
    assert sum(crawl.stats["status_counts"].values()) == crawl.stats["pages"]
    page_urls = {site.site.url(p) for p in ("/", "/robots.txt", "/news/story-0", "/news/story-1")}
    assert crawl.stats["pages"] == len(page_urls) + 1  # and the CDN's robots.txt (a 404)
    assert "http-4xx" not in crawl.errors  # the missing stylesheet is the requisites' failure, not the run's
    conversions = [h for h, _, _ in crawl.records() if h["WARC-Type"] == "conversion"]
    assert conversions == []  # conversion records live in the text WARC ...
    texts = {a["url"] for a in crawl.articles()}
    assert texts == set(site.articles)  # ... and only for the two articles


def test_max_requisites_is_a_budget_per_run(requisite_site, hostile_crawl):
    site = requisite_site
    crawl = hostile_crawl(site.site, site.sources_toml(max_requisites=3), settings=RESOLVER, env=site.dns)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    assert len(site.requisite_paths()) == 3  # requisite requests the servers saw (retries aside: none here)
    req = crawl.stats["requisites"]
    assert req["archived"] == 3 and req["not_fetched"]["budget"] >= 1
    assert crawl.stats["articles"] == 2  # pages never pay for requisites

    none = hostile_crawl(site.site, site.sources_toml(max_requisites=0), settings=RESOLVER, env=site.dns)
    assert none.returncode == 0 and none.stats["requisites"]["archived"] == 0
    assert len(site.requisite_paths()) == 3  # nothing more was fetched
    assert none.stats["articles"] == 2


def test_archived_requisites_are_not_fetched_again_and_are_captures_but_never_pages(requisite_site, tmp_path):
    """Two `newsarchive crawl` runs into one archive, articles re-checked every run (recheck = 0):
    the second run fetches the articles again but none of their requisites. In the archive the
    requisites are captures (list, /cdx and the WACZ index have them), never articles or pages."""
    site = requisite_site
    sources = tmp_path / "sources.toml"
    sources.write_text(site.sources_toml(hosts=["localhost"], recheck=0))  # the system's DNS: localhost only
    archive = tmp_path / "archive"
    env = cli_env(tmp_path)
    for n in range(2):
        mark_site, mark_cdn = len(site.site.server.fetched_paths()), len(site.cdn.fetched_paths())
        done = run("crawl", "hostile", "--sources", sources, "--archive", archive, "--no-prefect",
                   cwd=tmp_path, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        fetched = site.site.server.fetched_paths()[mark_site:] + site.cdn.fetched_paths()[mark_cdn:]
        assert {"/news/story-0", "/news/story-1"} <= set(fetched)
        requisites = [p for p in fetched if p in site.site_files or p in site.cdn_files]
        said = done.stdout + done.stderr
        if n == 0:
            assert len(requisites) == 7, requisites
            assert "requisites (hostile): 8 archived (stylesheets, images, fonts, scripts), failed: http-4xx 1" \
                in said, said[-2000:]
        else:
            assert requisites == [], requisites  # archived an instant ago: not fetched again
            assert "0 archived (stylesheets, images, fonts, scripts), 5 archived recently, not fetched again" \
                in said, said[-2000:]  # site.css, app.js, missing.css, photo.png, moved.png: the pages' own

    from storage.archive import open_archive

    found = open_archive(str(archive))
    css = found.list(site.site.url("/static/site.css"))
    assert len(css) == 1 and css[0].status == 200 and not css[0].text
    assert found.payload(css[0]) == site.css
    photo = found.list(site.cdn_base + "/img/photo.png")
    assert len(photo) == 1 and photo[0].mime == "image/png"
    # search and the WACZ page list hold the articles only
    hits = run("search", "Story", "--archive", archive, "--json", cwd=tmp_path, env=env)
    assert hits.returncode == 0, hits.stderr
    assert {h["url"] for h in json.loads(hits.stdout)["results"]} <= set(site.articles)
    wacz = tmp_path / "h.wacz"
    made = run("export", "--wacz", "--source", "hostile", "-o", wacz, "--archive", archive, cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    import zipfile

    with zipfile.ZipFile(wacz) as zf:
        pages = [json.loads(line) for line in zf.read("pages/pages.jsonl").splitlines()[1:]]
        index = zf.read("indexes/index.cdx").decode()
    assert {p["url"] for p in pages} == set(site.articles)
    assert f'"url": "{site.cdn_base}/img/photo.png"' in index
    assert f'"url": "{site.site.url("/static/site.css")}"' in index
