"""Generated hostile input (hypothesis) against the code that reads it first: the scope gate,
the URL-to-key code, Content-Encoding decoding, feeds and the extractor. Never an unexpected
exception: only the documented errors, each with a one-line message."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.test import get_crawler

from storage.contentcoding import DecodedTooLarge, DecodeError, decode, split_codings
from spiders.extraction import Article, ExtractionError, extract_article
from spiders.feeds import FeedError, XmlIndexReader
from spiders.guard import AddressGuard, Scope
from spiders.kinds import ERROR_KINDS
from spiders.news import NewsSpider
from spiders.sources import Source, host_key
from storage import layout
from storage.urls import MATCH_TYPES, URLError, search_range, url_key

SOURCE = Source(name="props", start_urls=("http://127.0.0.1:8000/", "https://www.news.example/"),
                deny=("/video/",), max_pages=50)

# URLs as hostile pages write them: odd schemes, hosts (IPv6, IDN, percent signs, userinfo),
# ports, paths and queries with anything in them
schemes = st.sampled_from(["http", "https", "HTTP", "file", "ftp", "s3", "data", "javascript", "gopher", "", "h t"])
hosts = st.one_of(
    st.sampled_from(["127.0.0.1", "www.127.0.0.1", "news.example", "WWW.NEWS.EXAMPLE.", "[::1]", "[::ffff:127.0.0.2]",
                     "[fd00:ec2::254]", "169.254.169.254", "xn--bcher-kva.example", "bücher.example", "%41.example",
                     "user:pw@news.example", "@", "[::1", "news.example:99999", "news.example:-1", "news.example:x"]),
    st.text(min_size=0, max_size=30))
paths = st.text(max_size=60)
urls = st.one_of(st.builds(lambda s, h, p: f"{s}://{h}/{p}", schemes, hosts, paths), st.text(max_size=120))


@pytest.fixture(scope="module")
def spider():
    crawler = get_crawler(NewsSpider, {"TELNETCONSOLE_ENABLED": False})
    spider = NewsSpider.from_crawler(crawler, source=SOURCE)
    crawler.spider = spider
    return spider


@settings(max_examples=400, deadline=None)
@given(urls)
def test_the_scope_gate_judges_any_url(url):
    refusal = Scope(SOURCE).refusal(url)
    assert refusal is None or (refusal.kind in ERROR_KINDS and refusal.message and "\n" not in refusal.message)
    host_key(url)  # never raises, whatever it is given


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(urls, st.integers(0, 25), st.lists(urls, max_size=3), st.booleans())
def test_the_gate_admits_or_ignores_every_request_it_is_given(spider, url, redirects, chain, article):
    try:
        request = spider._request(url, spider.parse_page, hops=1, article=article)
    except ValueError:  # Scrapy's own check of a URL: only for what the scope gate refuses anyway
        assert Scope(SOURCE).refusal(url) is not None, url
        return
    request.meta.update({"redirect_times": redirects, "redirect_urls": chain} if redirects else {})
    try:
        spider._gate(request)
    except IgnoreRequest:
        return
    assert Scope(SOURCE).refusal(request.url) is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(hosts, st.text(max_size=40)), st.ip_addresses())
def test_the_address_guard_decides_for_any_host_and_address(host, ip):
    refusal = AddressGuard(SOURCE).refusal(host, ip)
    assert refusal is None or refusal.kind == "blocked-address"


@settings(max_examples=400, deadline=None)
@given(urls, st.sampled_from(MATCH_TYPES))
def test_url_keys_are_made_or_refused_in_one_line(url, match_type):
    try:
        key = url_key(url)
        start, end = search_range(url, match_type)
    except URLError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(key, str) and start <= end


@settings(max_examples=300, deadline=None)
@given(urls, st.datetimes(timezones=st.just(timezone.utc)), st.sampled_from(["txt", "json"]))
def test_article_keys_are_safe_for_any_url(url, when, ext):
    key = layout.article_key("props", when, url, ext)
    assert layout.check_key(key) == key and ".." not in key and "//" not in key


header_values = st.one_of(
    st.lists(st.sampled_from(["gzip", "x-gzip", "deflate", "br", "zstd", "identity", "GZIP", " gzip ", "compress",
                              "", ",", "gzip;q=1"]), max_size=4).map(", ".join),
    st.text(max_size=40))


@settings(max_examples=300, deadline=None)
@given(st.lists(header_values, max_size=3), st.binary(max_size=2000))
def test_any_content_encoding_on_any_body_decodes_or_is_refused(values, body):
    to_decode, to_keep = split_codings(values)
    try:
        out = decode(body, to_decode, 1_000_000)
    except (DecodedTooLarge, DecodeError) as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(out, bytes) and len(out) <= 1_000_000


xml_bodies = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda root, items: f"<{root}>{items}</{root}>".encode(),
              st.sampled_from(["rss", "feed", "urlset", "sitemapindex", "rdf:RDF", "html"]),
              st.lists(st.builds(lambda tag, text: f"<{tag}><loc>{text}</loc><link>{text}</link>"
                                                   f"<link href='{text}'/></{tag}>",
                                 st.sampled_from(["url", "sitemap", "item", "entry", "x"]), st.text(max_size=40)),
                       max_size=5).map("".join)))


@settings(max_examples=300, deadline=None)
@given(xml_bodies, urls)
def test_feeds_and_sitemaps_read_or_say_why(body, base):
    try:
        reader = XmlIndexReader(body, base, max_bytes=100_000)
        entries = list(reader)
    except FeedError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert all("://" in e.url for e in entries)


html_bodies = st.one_of(
    st.binary(max_size=3000),
    st.text(max_size=3000).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(lambda head, paras, tail: (f"<html><head>{head}</head><body><article>{paras}</article>{tail}"
                                         f"</body></html>").encode("utf-8", "replace"),
              st.sampled_from(["", "<meta charset='gb2312'>", "<meta charset='x-nonsense'>", "<title>t</title>",
                               "<meta http-equiv='Content-Type' content='text/html; charset=utf-16'>",
                               "<script type='application/ld+json'>{\"@type\": \"NewsArticle\", \"datePublished\": "
                               "\"yesterday\"}</script>"]),
              st.lists(st.text(min_size=0, max_size=200).map(lambda t: f"<p>{t}</p>"), max_size=12).map("".join),
              st.sampled_from(["", "<div>", "</p></p></article>", "<!--", "<![CDATA[", "\x00\x00"])))
content_types = st.one_of(st.none(), st.sampled_from(["text/html", "text/html; charset=utf-8", "text/html; charset=",
                                                       "text/html; charset=\"latin1\"", "application/pdf",
                                                       "text/html; charset=x-user-defined;;", "TEXT/HTML"]),
                          st.text(max_size=60))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html_bodies, urls, content_types)
def test_the_extractor_returns_an_article_or_says_why(body, url, content_type):
    try:
        article = extract_article(body, url=url, content_type=content_type,
                                  fetched_at=datetime.now(timezone.utc).isoformat())
    except ExtractionError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(article, Article) and article.text.endswith("\n")
