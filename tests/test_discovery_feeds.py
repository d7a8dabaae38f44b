"""Feeds and sitemaps as sites really serve them: the links they list, titles and dates."""

import gzip

import pytest

from spiders.feeds import Entry, FeedError, parse_feed, parse_sitemap, parse_xml_index

BASE = "https://news.example/feeds/main.xml"


def test_rss2_links_titles_and_dates():
    body = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>X</title>
<item><title> Caf\xe9   closes </title><link>/2024/01/02/cafe</link><pubDate>Tue, 02 Jan 2024 07:05:00 +0100</pubDate></item>
<item><title>Guid only</title><guid>https://news.example/2024/01/03/guid</guid><dc:date>2024-01-03T10:00:00Z</dc:date></item>
<item><title>Not a permalink</title><guid isPermaLink="false">tag:123</guid></item>
<item><title>Script</title><link>javascript:alert(1)</link></item>
<item><title>Odd date</title><link>https://news.example/odd</link><pubDate>sometime yesterday</pubDate></item>
</channel></rss>"""
    assert parse_feed(body, BASE) == [
        Entry("https://news.example/2024/01/02/cafe", "Café closes", "2024-01-02T07:05:00+01:00"),
        Entry("https://news.example/2024/01/03/guid", "Guid only", "2024-01-03T10:00:00+00:00"),
        Entry("https://news.example/odd", "Odd date", "sometime yesterday"),  # kept as published
    ]


def test_atom_alternate_links_resolved_against_xml_base():
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom">
<entry xml:base="https://news.example/world/"><title type="html">Atom &amp; more</title>
  <link rel="enclosure" href="pic.jpg"/><link href="story-1"/><updated>2024-02-01T12:00:00+05:30</updated></entry>
<entry><title>Published wins</title><link rel="alternate" type="text/html" href="https://news.example/s2"/>
  <published>2024-02-02T00:00:00Z</published><updated>2024-02-03T00:00:00Z</updated></entry>
<entry><title>No link</title></entry>
</feed>"""
    assert parse_feed(body, BASE) == [
        Entry("https://news.example/world/story-1", "Atom & more", "2024-02-01T12:00:00+05:30"),
        Entry("https://news.example/s2", "Published wins", "2024-02-02T00:00:00+00:00"),
    ]


def test_rss1_rdf_items():
    body = b"""<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<item rdf:about="https://news.example/r1"><title>R1</title><link>https://news.example/r1</link></item></rdf:RDF>"""
    assert parse_feed(body, BASE) == [Entry("https://news.example/r1", "R1", None)]


def test_news_sitemap_hints_and_a_gzipped_index():
    urlset = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:n="http://www.google.com/schemas/sitemap-news/0.9">
<url><loc> https://news.example/a </loc><lastmod>2024-03-01</lastmod>
  <n:news><n:publication_date>2024-03-01</n:publication_date><n:title>A title</n:title></n:news></url>
<url><loc>https://news.example/b</loc></url></urlset>"""
    index = parse_sitemap(urlset, BASE)
    assert index.kind == "urlset"
    assert index.entries == [Entry("https://news.example/a", "A title", "2024-03-01"), Entry("https://news.example/b")]
    assert index.entries[0].hints == {"title": "A title", "date": "2024-03-01"}
    assert index.entries[1].hints == {}

    sitemapindex = gzip.compress(b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>https://news.example/s1.xml.gz</loc></sitemap></sitemapindex>""")
    nested = parse_sitemap(sitemapindex, BASE)
    assert nested.is_sitemap_index and nested.entries == [Entry("https://news.example/s1.xml.gz")]


@pytest.mark.parametrize("body, message", [
    (b"<html><body>Not a feed</body></html>", "not a feed or sitemap (root element <html>)"),
    (b"", "not XML"),
    (b"\x1f\x8b\x08\x00garbage", "bad gzip body"),
    (b"just text", "not XML"),
])
def test_what_is_not_a_feed_is_one_clear_error(body, message):
    with pytest.raises(FeedError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_xml_index(body, BASE)


def test_feed_and_sitemap_parsers_refuse_each_other():
    with pytest.raises(FeedError, match="not a feed"):
        parse_feed(b"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'/>", BASE)
    with pytest.raises(FeedError, match="not a sitemap"):
        parse_sitemap(b"<rss><channel/></rss>", BASE)


def test_external_entities_are_never_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = f"""<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>
<rss><channel><item><title>&x;</title><link>https://news.example/x</link></item></channel></rss>""".encode()
    entries = parse_feed(body, BASE)
    assert [e.url for e in entries] == ["https://news.example/x"]
    assert "TOP-SECRET" not in (entries[0].title or "")
