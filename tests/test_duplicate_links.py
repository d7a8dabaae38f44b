"""A site whose pages all link one another: every page is fetched once, whatever order the answers come in.

The gates judge duplicates by request fingerprint; the spider drops a link it
requested already before building a Request (spiders/requested.py). Together
they must fetch each page once: links repeated on every page, a link spelled
two ways (query order, an escaped character) and a link back to the start URL.
"""

from __future__ import annotations

from hostile_site import HTML, article_html
from siteserver import Route


def test_pages_linking_one_another_are_each_fetched_once(hostile_site, hostile_crawl):
    site = hostile_site
    listings = [f"/section-{i}" for i in range(4)]
    stories = [f"/news/story-{i}" for i in range(6)]
    # every link on every page: the listings, the stories, one story spelled two more ways
    links = "".join(f'<a href="{p}">{p}</a>' for p in ["/", *listings, *stories])
    links += '<a href="/news/story-0?b=2&amp;a=1">again</a><a href="/news/story-0?a=1&amp;b=2">and again</a>'
    links += '<a href="/news/st%6Fry-1">spelled with an escape</a>'
    page = f"<html><head><title>listing</title></head><body>{links}</body></html>".encode()
    for path in ["/", *listings]:
        site.add(path, Route(page, headers=HTML))
    for path in stories:
        site.add(path, Route(article_html(f"Story {path}", extra=links), headers=HTML))
    spellings = {"/news/story-0?a=1&b=2", "/news/story-0?b=2&a=1"}
    for path in spellings:
        site.add(path, Route(article_html("Story 0 with a query", extra=links), headers=HTML))

    crawl = hostile_crawl(site, site.sources_toml(depth=3))
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    hits = {path: n for path, n in site.hits.items() if path != "/robots.txt"}
    assert all(n == 1 for n in hits.values()), hits
    assert {"/", *listings, *stories} <= set(hits), hits
    # two spellings of one URL (the same fingerprint) are one page: one of them fetched
    assert len(spellings & set(hits)) == 1, hits
    assert "/news/st%6Fry-1" not in hits, hits
    assert crawl.stats["articles"] == len([p for p in hits if p.startswith("/news/")])
    assert sum(crawl.stats["status_counts"].values()) == crawl.stats["pages"] == len(hits) + 1  # robots.txt
