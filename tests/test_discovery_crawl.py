"""A real crawl of a small news site on 127.0.0.1: what gets fetched, what is an article.

The site has robots.txt (a Disallow and a Sitemap: line), a sitemap index ->
Google news sitemap, RSS and Atom feeds, a homepage with section pages, links
and a redirect to a second server reached as http://localhost:PORT, and
denied paths. The second server's request log proves nothing off-site was
fetched; the first's proves what was.
"""

from collections import Counter

import pytest

from siteserver import Route, SiteServer
from spiders.sources import Source

HTML = [("Content-Type", "text/html; charset=utf-8")]
XML = [("Content-Type", "application/xml")]


def page(title: str, *links: str) -> Route:
    anchors = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    body = f"<html><head><title>{title}</title></head><body><h1>{title}</h1><ul>{anchors}</ul>" \
           f"<p>Some text of {title}.</p></body></html>"
    return Route(body.encode(), headers=HTML)


def news_site(off: SiteServer):
    """Routes of the main site; `off` is the other host (localhost:PORT)."""
    offsite = off.url("/", host="localhost").rstrip("/")

    def routes(path: str, server: SiteServer):
        here = server.url("/").rstrip("/")
        table = {
            "/robots.txt": Route(f"User-agent: *\nDisallow: /private/\n\nSitemap: {here}/sitemap_index.xml\n".encode(),
                                 headers=[("Content-Type", "text/plain")]),
            "/sitemap_index.xml": Route(f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{here}/news-sitemap.xml</loc></sitemap>
  <sitemap><loc>{offsite}/sitemap.xml</loc></sitemap>
</sitemapindex>""".encode(), headers=XML),
            "/news-sitemap.xml": Route(f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>{here}/2024/05/01/sitemap-story</loc>
    <news:news><news:publication><news:name>Test</news:name><news:language>en</news:language></news:publication>
      <news:publication_date>2024-05-01T08:00:00+02:00</news:publication_date>
      <news:title>Sitemap «story» title</news:title></news:news></url>
  <url><loc>{here}/private/secret-story</loc></url>
  <url><loc>{here}/video/clip-1</loc></url>
</urlset>""".encode(), headers=XML),
            "/rss.xml": Route(f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Test news</title><link>{here}/</link>
  <item><title>RSS story</title><link>{here}/2024/05/02/rss-story#comments</link>
    <pubDate>Thu, 02 May 2024 10:30:00 GMT</pubDate></item>
  <item><title>Elsewhere</title><link>{offsite}/2024/05/02/offsite-story</link></item>
</channel></rss>""".encode(), headers=[("Content-Type", "application/rss+xml")]),
            "/atom.xml": Route(f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Test</title>
  <entry><title>Atom story</title><link rel="alternate" href="/2024/05/03/atom-story"/>
    <link rel="enclosure" href="/media/atom.mp3"/>
    <published>2024-05-03T09:00:00Z</published></entry>
</feed>""".encode(), headers=[("Content-Type", "application/atom+xml")]),
            "/": page("Home", "/section/world", "/section/sport", "/2024/05/04/home-story",
                      "/video/live", "/private/staff", f"{offsite}/offsite-page", "/go-away",
                      "/about#team", "/about", "/2024/05/06/gone", "/old-video"),
            "/section/world": page("World", "/2024/05/05/world-story", "/section/world/page2", "/"),
            "/section/world/page2": page("World 2", "/section/world/page3"),
            "/section/world/page3": page("World 3"),
            "/section/sport": page("Sport", "/2024/05/04/home-story"),
            "/about": page("About us"),
            "/old-video": Route(b"", status=301, headers=[("Location", "/video/moved")]),
            "/go-away": Route(b"", status=302, headers=[("Location", f"{offsite}/redirected")]),
            "/2024/05/01/sitemap-story": page("Sitemap story"),
            "/2024/05/02/rss-story": page("RSS story"),
            "/2024/05/03/atom-story": page("Atom story"),
            "/2024/05/04/home-story": page("Home story", "/2024/05/04/related"),
            "/2024/05/04/related": page("Related story", "/2024/05/04/too-deep"),
            "/2024/05/05/world-story": page("World story"),
            "/private/secret-story": page("Secret"),
            "/private/staff": page("Staff"),
            "/video/clip-1": page("Clip"),
            "/video/live": page("Live"),
        }
        return table.get(path)

    return routes


@pytest.fixture(scope="module")
def crawled(tmp_path_factory, crawl_runner):
    with SiteServer(lambda p, s: page("Off-site " + p)) as off, SiteServer(news_site(off)) as site:
        here = site.url("/").rstrip("/")
        source = Source(
            name="test-news",
            start_urls=(here + "/",),
            feeds=(here + "/rss.xml", here + "/atom.xml"),
            allow=(r"/\d{4}/\d{2}/\d{2}/",),
            deny=(r"/video/",),
            depth=2, max_pages=100, delay=0.0, concurrency=4,
        )
        result = crawl_runner(source, tmp_path_factory.mktemp("crawl"))
        yield here, result, site.fetched_paths(), off.fetched_paths()


def test_robots_txt_is_fetched_once_and_obeyed(crawled):
    here, result, fetched, _ = crawled
    assert fetched.count("/robots.txt") == 1
    assert not [p for p in fetched if p.startswith("/private/")]
    assert result.stats.get("robotstxt/forbidden") == 2  # one from the sitemap, one from the homepage


def test_robots_sitemap_line_leads_through_the_index_to_the_news_sitemap(crawled):
    here, result, fetched, _ = crawled
    assert "/sitemap_index.xml" in fetched and "/news-sitemap.xml" in fetched
    assert here + "/2024/05/01/sitemap-story" in result.urls


def test_denied_urls_are_never_fetched_not_even_through_a_redirect(crawled):
    _, _, fetched, _ = crawled
    assert "/old-video" in fetched  # redirects to /video/moved
    assert not [p for p in fetched if p.startswith("/video/")]


def test_nothing_off_site_is_fetched_not_even_through_a_redirect(crawled):
    here, result, fetched, off_fetched = crawled
    assert "/go-away" in fetched  # the redirect itself is on-site and was fetched
    assert off_fetched == []  # links, feed entries, a sitemap and a redirect pointed there
    assert not [u for u in result.urls if not u.startswith(here)]


def test_no_url_is_requested_twice(crawled):
    _, _, fetched, _ = crawled
    assert {p: n for p, n in Counter(fetched).items() if n > 1} == {}
    assert not [p for p in fetched if "#" in p]


def test_links_are_followed_to_depth_and_no_further(crawled):
    _, _, fetched, _ = crawled
    assert "/section/world/page2" in fetched  # two hops from the homepage
    assert "/section/world/page3" not in fetched  # three
    assert "/2024/05/04/related" in fetched  # an article is a link source within depth
    assert "/2024/05/04/too-deep" not in fetched


def test_articles_come_from_feeds_sitemaps_and_allow_matches(crawled):
    here, result, _, _ = crawled
    expected = {here + p for p in (
        "/2024/05/01/sitemap-story", "/2024/05/02/rss-story", "/2024/05/03/atom-story",
        "/2024/05/04/home-story", "/2024/05/04/related", "/2024/05/05/world-story")}
    assert result.urls == expected  # no homepage, sections, about page, feeds or sitemaps
    assert len(result.items) == len(expected)


def test_article_items_carry_the_response(crawled):
    here, result, _, _ = crawled
    item = result.item(here + "/2024/05/05/world-story")
    assert item["kind"] == "article"
    assert item["status"] == 200
    assert item["content_type"] == "text/html; charset=utf-8"
    assert "<h1>World story</h1>" in item["body"]


def test_news_sitemap_and_feed_hints_are_carried(crawled):
    here, result, _, _ = crawled
    assert result.item(here + "/2024/05/01/sitemap-story")["hints"] == {
        "title": "Sitemap «story» title", "date": "2024-05-01T08:00:00+02:00"}
    assert result.item(here + "/2024/05/02/rss-story")["hints"] == {
        "title": "RSS story", "date": "2024-05-02T10:30:00+00:00"}
    assert result.item(here + "/2024/05/03/atom-story")["hints"] == {
        "title": "Atom story", "date": "2024-05-03T09:00:00+00:00"}
    assert result.item(here + "/2024/05/04/home-story")["hints"] == {}


def test_http_errors_are_counted_not_extracted(crawled):
    here, result, fetched, _ = crawled
    assert "/2024/05/06/gone" in fetched
    assert here + "/2024/05/06/gone" not in result.urls
    # and the redirect off-site (/go-away) is counted as refused; off-site links and feed entries are not failures
    assert result.errors() == {"http-4xx": 1, "off-scope": 1}
    samples = {s["kind"]: s for s in result.error_samples}
    assert samples["http-4xx"] == {"url": here + "/2024/05/06/gone", "kind": "http-4xx", "message": "HTTP 404"}
    assert samples["off-scope"]["url"].endswith("/redirected") and "not one of the source's hosts" \
        in samples["off-scope"]["message"]


def test_without_robots_obey_the_spider_still_reads_sitemap_lines(crawl):
    """With ROBOTSTXT_OBEY off nothing else fetches robots.txt: the spider does, once."""
    with SiteServer(lambda p, s: page("Off")) as off, SiteServer(news_site(off)) as site:
        here = site.url("/").rstrip("/")
        result = crawl(Source(name="no-robots", feeds=(here + "/atom.xml",), delay=0.0), {"ROBOTSTXT_OBEY": False})
        fetched = site.fetched_paths()
    assert fetched.count("/robots.txt") == 1
    assert here + "/2024/05/01/sitemap-story" in result.urls  # via robots.txt -> index -> news sitemap
    assert "/private/secret-story" in fetched  # not obeying is the user's explicit choice
