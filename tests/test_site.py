"""The test and demo sites serve what they claim: crawl tests rely on it."""

from __future__ import annotations

import codecs
import gzip
import http.client
import re
import tomllib
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest


NS = {
    "sm": "http://www.sitemaps.org/schemas/sitemap/0.9",
    "news": "http://www.google.com/schemas/sitemap-news/0.9",
    "atom": "http://www.w3.org/2005/Atom",
}


def fetch(url: str, method: str = "GET"):
    """One raw request: (status, header list with repeats, body bytes as sent; no decoding, no redirects)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""))
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def header(headers, name):
    values = [v for n, v in headers if n.lower() == name.lower()]
    return values[0] if values else None


def links(body: bytes) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', body.decode("utf-8")))


def test_robots_forbids_private_and_names_sitemap_index(news_site):
    status, headers, body = fetch(news_site.url("/robots.txt"))
    assert status == 200 and header(headers, "Content-Type").startswith("text/plain")
    text = body.decode()
    assert "Disallow: /private/" in text
    assert f"Sitemap: {news_site.url('/sitemap_index.xml')}" in text
    assert all(p.startswith("/private/") for p in news_site.forbidden)
    # the forbidden page is linked from the homepage, so a crawl must decide not to go there
    assert news_site.forbidden[0] in links(news_site.routes["/"].body)


def test_sitemap_index_leads_to_news_sitemap_with_dates_and_titles(news_site):
    index = ET.fromstring(fetch(news_site.url("/sitemap_index.xml"))[2])
    locs = [e.text for e in index.findall("sm:sitemap/sm:loc", NS)]
    assert locs == [news_site.url("/news-sitemap.xml")]
    news = ET.fromstring(fetch(locs[0])[2])
    urls = news.findall("sm:url", NS)
    expected = {a["url"]: a for a in news_site.articles if "news_sitemap" in a["found_in"]}
    assert {u.find("sm:loc", NS).text for u in urls} == set(expected)
    for u in urls:
        article = expected[u.find("sm:loc", NS).text]
        assert u.find("news:news/news:publication_date", NS).text == f"{article['date']}T08:30:00+01:00"
        assert u.find("news:news/news:title", NS).text == article["title"]
        assert u.find("news:news/news:publication/news:language", NS).text == article["language"]
    plain = ET.fromstring(fetch(news_site.url("/sitemap.xml"))[2])
    assert {e.text for e in plain.findall("sm:url/sm:loc", NS)} == {
        a["url"] for a in news_site.articles if "sitemap" in a["found_in"]}


def test_rss_and_atom_parse_and_list_articles(news_site):
    rss = ET.fromstring(fetch(news_site.url("/rss.xml"))[2])
    assert rss.tag == "rss" and rss.get("version") == "2.0"
    items = rss.findall("channel/item")
    assert {i.findtext("link") for i in items} == {a["url"] for a in news_site.articles if "rss" in a["found_in"]}
    assert all(i.findtext("pubDate") for i in items)
    atom = ET.fromstring(fetch(news_site.url("/atom.xml"))[2])
    entries = atom.findall("atom:entry", NS)
    assert {e.find("atom:link", NS).get("href") for e in entries} == {
        a["url"] for a in news_site.articles if "atom" in a["found_in"]}


def test_every_article_is_linked_and_some_only_by_links(news_site):
    linked = set()
    for path in ["/"] + [p for p in news_site.routes if p.startswith("/section/")] + [news_site.special["query"]]:
        linked |= {urlsplit(h)._replace(scheme="", netloc="").geturl() for h in links(news_site.routes[path].body)}
    for a in news_site.articles:
        assert a["path"] in linked or a.get("redirect_from") in linked, a["path"]
        assert re.search("/news/", a["path"])
    assert any(a["found_in"] == ["links"] for a in news_site.articles)


def test_articles_are_served_with_their_charset_declared_as_claimed(news_site):
    assert {a["declared"] for a in news_site.articles} == {"header", "meta", "both", "header-over-meta", "none", "bom"}
    assert {"windows-1250", "windows-1251", "windows-1252", "iso-8859-1", "iso-8859-2", "gb2312", "utf-8"} <= {
        a["charset"] for a in news_site.articles}
    assert any(a["page"].stray for a in news_site.articles)
    for a in news_site.articles:
        status, headers, body = fetch(a["url"])
        assert status == 200
        ctype = header(headers, "Content-Type")
        assert ctype == a["content_type"]
        page = news_site.page_bytes(a["path"])
        assert page == a["page"].body  # the corpus page, byte for byte
        assert (gzip.decompress(body) if a["gzip"] else body) == page
        in_meta = re.search(rb"<meta[^>]*charset=[\"']?([A-Za-z0-9_-]+)", page, re.I)
        in_meta = in_meta.group(1).decode().lower() if in_meta else None
        in_header = re.search(r"charset=([\w-]+)", ctype)
        in_header = in_header.group(1).lower() if in_header else None
        said = {"header": (a["charset"], None), "meta": (None, a["charset"]), "both": (a["charset"], a["charset"]),
                "header-over-meta": (a["charset"], "utf-8"),  # the page's own meta lies
                "none": (None, None)}
        if a["declared"] == "bom":
            assert page.startswith(codecs.BOM_UTF8) and in_header != "utf-8"  # the BOM overrules the header
        else:
            assert (in_header, in_meta) == said[a["declared"]], a["file"]
        # strict: the bytes are what the corpus says they are, and give the text it was written as
        assert a["page"].decode_as_described(page) == a["page"].expected_html
        assert a["with"] and a["without"]


def test_gzip_article_decompresses_to_the_page(news_site):
    path = news_site.special["gzip"]
    status, headers, body = fetch(news_site.url(path))
    assert header(headers, "Content-Encoding") == "gzip"
    assert int(header(headers, "Content-Length")) == len(body) == len(news_site.routes[path].body)
    page = gzip.decompress(body)
    assert page.startswith(b"<!DOCTYPE") or b"<html" in page[:500]
    assert news_site.article(path)["with"][0].split()[0].encode() in page


def test_chunked_cookies_redirects_and_errors(news_site):
    status, headers, body = fetch(news_site.url(news_site.special["chunked"]))
    assert header(headers, "Transfer-Encoding") == "chunked" and header(headers, "Content-Length") is None
    assert body == news_site.routes[news_site.special["chunked"]].body

    status, headers, _ = fetch(news_site.url("/"))
    assert [n for n, _ in headers].count("Set-Cookie") == 3

    status, headers, _ = fetch(news_site.url(news_site.special["redirect"]))
    assert status == 301 and header(headers, "Location") == news_site.article("harbour-ferries")["url"]
    status, headers, _ = fetch(news_site.url(news_site.special["offsite_redirect"]))
    location = header(headers, "Location")
    assert status == 302 and urlsplit(location).hostname == "localhost" and location in news_site.offsite_urls
    assert fetch(location)[0] == 200  # the other host really answers, so a crawl that strays would be seen

    assert fetch(news_site.url(news_site.special["not_found"]))[0] == 404
    assert fetch(news_site.url(news_site.special["server_error"]))[0] == 500
    status, headers, body = fetch(news_site.url(news_site.special["pdf"]))
    assert header(headers, "Content-Type") == "application/pdf" and body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")
    assert fetch(news_site.url(news_site.special["query"]))[0] == 200
    home = links(news_site.routes["/"].body)
    assert news_site.special["video"] in home and set(news_site.offsite_urls) <= home


def test_sources_toml_names_the_site(news_site, news_sources_file):
    src = tomllib.loads(news_sources_file.read_text())["source"][0]
    assert src["name"] == "testnews" and src["start_urls"] == [news_site.url("/")]
    assert src["delay"] == 0 and src["concurrency"] == 8
    assert all(re.search(rx, a["path"]) for rx in src["allow"] for a in news_site.articles)
    assert re.search(src["deny"][0], news_site.special["video"])
    other = tomllib.loads(news_site.sources_toml("other", feeds=None, allow=[r"/\d{4}/"]))["source"][0]
    assert "feeds" not in other and other["allow"] == [r"/\d{4}/"] and other["name"] == "other"


def test_generated_site_serves_every_article(make_news_site):
    site = make_news_site(n_articles=2500)
    assert len(site.articles) == 2500
    index = ET.fromstring(fetch(site.url("/sitemap_index.xml"))[2])
    listed = set()
    for loc in index.findall("sm:sitemap/sm:loc", NS):
        listed |= {e.text for e in ET.fromstring(fetch(loc.text)[2]).findall("sm:url/sm:loc", NS)}
    assert listed == {a["url"] for a in site.articles}
    for a in site.articles[::499]:
        status, headers, body = fetch(a["url"])
        assert status == 200 and header(headers, "Content-Type") == a["content_type"]
        assert body == a["page"].body


# ---------------------------------------------------------------- the demo site

def test_demo_site_feed_sitemap_and_robots_name_its_real_address(demo_site):
    from flows.demo_site import demo_articles

    base = demo_site.url("").rstrip("/")
    article_urls = {a["url"] for a in demo_articles(demo_site)}
    assert len(article_urls) == 6
    rss = ET.fromstring(fetch(base + "/rss.xml")[2])
    assert {i.findtext("link") for i in rss.findall("channel/item")} == article_urls
    news = ET.fromstring(fetch(base + "/news-sitemap.xml")[2])
    assert {e.text for e in news.findall("sm:url/sm:loc", NS)} == article_urls
    assert all(e.text for e in news.findall("sm:url/news:news/news:publication_date", NS))
    assert f"Sitemap: {base}/news-sitemap.xml" in fetch(base + "/robots.txt")[2].decode()
    for path, route in demo_site.routes.items():
        assert b"{base}" not in route.body, path
    home = links(demo_site.routes["/"].body)
    assert {urlsplit(u).path for u in article_urls} <= home and "/section/local/" in home


def test_demo_articles_carry_metadata_and_russian_is_windows_1251_in_header_only(demo_site):
    from flows.demo_site import demo_articles

    for a in demo_articles(demo_site):
        status, headers, body = fetch(a["url"])
        assert status == 200 and header(headers, "Content-Type") == f"text/html; charset={a['charset']}"
        text = body.decode(a["charset"])
        assert 'property="article:published_time"' in text and 'name="author"' in text
        assert len(re.findall(r"<p>", text)) >= 4
    ru = [a for a in demo_articles(demo_site) if a["charset"] == "windows-1251"]
    assert len(ru) == 1
    body = fetch(ru[0]["url"])[2]
    assert b"charset" not in body.split(b"</head>")[0].lower()  # only the header says it
    assert "туман" in body.decode("windows-1251")
    with pytest.raises(UnicodeDecodeError):  # the Russian page is not UTF-8
        body.decode("utf-8")


def test_demo_sources_toml_reaches_articles_not_listings(demo_site):
    from flows.demo_site import demo_articles, demo_sources_toml

    src = tomllib.loads(demo_sources_toml(demo_site))["source"]
    assert [s["name"] for s in src] == ["demo"]
    allow = src[0]["allow"]
    assert all(any(re.search(rx, a["url"]) for rx in allow) for a in demo_articles(demo_site))
    assert not any(re.search(rx, demo_site.url(p)) for rx in allow for p in ("/", "/section/local/", "/rss.xml"))


def test_pdf_behind_a_download_url_and_non_articles_under_news(news_site):
    path = news_site.special["pdf_download"]
    status, headers, body = fetch(news_site.url(path))
    assert status == 200 and header(headers, "Content-Type") == "application/pdf" and body.startswith(b"%PDF-")
    assert "attachment" in header(headers, "Content-Disposition")
    article_paths = {a["path"] for a in news_site.articles}
    assert path in news_site.allowed_non_articles and not article_paths & set(news_site.allowed_non_articles)
    assert all(p.startswith("/news/") for p in news_site.allowed_non_articles)


def test_demo_site_has_no_dead_links(demo_site):
    # the demo should end with zero errors, so every on-site link leads somewhere
    disallowed = ("/account/", "/newsletter/")
    for path, route in demo_site.routes.items():
        if not path.endswith((".html", "/")):
            continue
        for href in links(route.body.decode("utf-8", "replace").encode()):
            parts = urlsplit(href)
            if parts.scheme in ("mailto", "https") or href.startswith(disallowed) or parts.netloc not in ("", f"127.0.0.1:{demo_site.port}"):
                continue
            assert parts.path in demo_site.routes, f"{path} links to missing {href}"
