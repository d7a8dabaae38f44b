"""The plain-text form, its metadata, and clear errors for pages that are no articles."""

from __future__ import annotations

import json
import pickle
import re
from concurrent.futures import ProcessPoolExecutor

import pytest
import trafilatura

from spiders.extraction import Article, ExtractionError, extract_article

URL = "https://www.wionews.com/world/putin-biden?utm_source=feed"
BOILERPLATE = (
    '<p class="brand">Newsroom logo</p><p>None</p><p>Share</p>'
    "<p>We use cookies to improve your experience. By continuing you accept our use of cookies.</p>"
    "<p>Putin invites Biden to live talks over 'killer' remark</p>"
)


def _extract(html: str, **kw) -> Article:
    kw.setdefault("url", URL)
    return extract_article(html.encode("utf-8"), content_type="text/html; charset=utf-8", **kw)


def test_header_is_title_byline_url_then_blank_line(news_page):
    lines = _extract(news_page()).text.split("\n")
    assert lines[0] == "Putin invites Biden to live talks over 'killer' remark"
    assert lines[1] == "By WION Web Team · date 2021-03-19"
    assert lines[2] == URL
    assert lines[3] == ""
    assert lines[4].startswith("Russian President Vladimir Putin on March 18")


def test_byline_is_date_alone_without_author(news_page):
    lines = _extract(news_page(author=None)).text.split("\n")
    assert lines[1] == "date 2021-03-19"


def test_no_byline_line_when_neither_author_nor_date_known(news_page):
    # (no footer "Copyright 2021" either: trafilatura would guess 2021-01-01 from it)
    html = news_page(author=None, published=None).replace("Copyright 2021 WION. ", "")
    lines = _extract(html).text.split("\n")
    assert lines[1] == URL and lines[2] == ""


def test_paragraphs_separated_by_exactly_one_blank_line(news_page):
    paragraphs = [
        "First   paragraph\n with    ragged\twhitespace inside it, as CMSes write it.",
        "Second paragraph,\u00a0with a no-break space and a soft\u00adhyphen in the word.",
        "Third paragraph closes the article with a sentence that is long enough.",
    ]
    text = _extract(news_page(paragraphs=paragraphs)).text
    _, _, body = text.partition("\n\n")
    assert body == (
        "First paragraph with ragged whitespace inside it, as CMSes write it.\n\n"
        "Second paragraph, with a no-break space and a softhyphen in the word.\n\n"
        "Third paragraph closes the article with a sentence that is long enough.\n"
    )


def test_typographic_quotes_and_non_latin_scripts_kept(news_page):
    paragraphs = [
        "\u201cI want to propose to President Biden to continue our discussion,\u201d Putin said \u2014 live.",
        "Путин сказал: «Я хочу предложить президенту Байдену продолжить нашу дискуссию».",
        "普京表示，他希望两国领导人能够直接进行讨论。 وقال بوتين إنه مستعد للحوار.",
    ]
    text = _extract(news_page(paragraphs=paragraphs)).text
    for p in paragraphs:
        assert p in text


def test_boilerplate_lines_and_repeated_title_dropped(news_page):
    html = news_page(extra_article=BOILERPLATE)
    raw = trafilatura.extract(html, include_comments=False).split("\n")
    assert {"Newsroom logo", "None", "Share"} <= set(raw)  # the extractor alone keeps them
    text = _extract(html).text
    lines = text.split("\n")
    for junk in ("Newsroom logo", "None", "Share"):
        assert junk not in lines
    assert "cookies" not in text
    assert lines.count("Putin invites Biden to live talks over 'killer' remark") == 1  # the header only


def test_metadata_fields(news_page):
    capture = {"warc": "warc/wion/2021/03/19/x.warc.gz", "offset": 1234, "length": 5678,
               "record_id": "<urn:uuid:6e2f4a8c-1111-4222-8333-944455556666>"}
    article = _extract(news_page(), fetched_at="2021-03-19T12:00:00Z", capture=capture)
    meta = json.loads(json.dumps(article.metadata))  # what lands in the .json file
    assert meta["title"] == "Putin invites Biden to live talks over 'killer' remark"
    assert meta["author"] == "WION Web Team"
    assert meta["date"] == "2021-03-19"
    assert meta["date_published"] == "2021-03-19T10:20:00+05:30"
    assert meta["url"] == URL
    assert meta["canonical_url"] == "https://www.wionews.com/world/putin-biden"
    assert meta["sitename"] == "WION"
    assert meta["language"] == "en"
    assert meta["description"] == "Putin challenges Biden to a live debate."
    assert meta["fetched_at"] == "2021-03-19T12:00:00Z"
    assert meta["capture"] == capture
    assert meta["extractor"] == {"name": "trafilatura", "version": trafilatura.__version__}
    assert meta["charset"] == "utf-8"
    body = article.text.partition("\n\n")[2]
    assert meta["word_count"] == len(body.split())


def test_date_published_from_json_ld(news_page):
    jsonld = {"@context": "https://schema.org", "@graph": [
        {"@type": "WebPage", "name": "x"},
        {"@type": "NewsArticle", "headline": "x", "datePublished": "2021-03-18T23:45:00-04:00"},
    ]}
    meta = _extract(news_page(published=None, jsonld=jsonld)).metadata
    assert meta["date_published"] == "2021-03-18T23:45:00-04:00"
    assert meta["date"] == "2021-03-18"  # the date as published, not converted to UTC


def test_hints_fill_gaps_but_do_not_override(news_page):
    bare = news_page(published=None, author=None).replace("<title>", "<title data-x>")
    bare = re.sub(r"<title[^>]*>.*?</title>|<h1>.*?</h1>|<aside>.*?</aside>|<meta property=\"og:site_name\"[^>]*>",
                  "", bare, flags=re.S)
    hints = {"title": "Putin invites Biden to talks", "date": "2021-03-19T08:00:00+00:00"}
    meta = _extract(bare, hints=hints).metadata
    assert meta["title"] == "Putin invites Biden to talks"
    assert meta["date"] == "2021-03-19" and meta["date_published"] == "2021-03-19T08:00:00+00:00"
    full = _extract(news_page(), hints={"title": "Other", "date": "2020-01-01"}).metadata
    assert full["title"] != "Other" and full["date"] == "2021-03-19"


@pytest.mark.parametrize("body, content_type, message", [
    (b"", "text/html", "empty body"),
    (b"   \n\t ", "text/html", "empty body"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "application/pdf", "not HTML"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None, "not HTML"),
    (b"<html><body><nav><a href='/'>Home</a> <a href='/world'>World</a></nav></body></html>",
     "text/html", "no article text found in"),
    (bytes(range(256)) * 64, "text/html", "not parseable as HTML"),  # 16 NULs in 4 kB: not yet "binary"
    (bytes(range(128)) * 64, "text/html", "not HTML (binary content)"),
])
def test_non_articles_raise_one_line_extraction_error(body, content_type, message):
    with pytest.raises(ExtractionError) as info:
        extract_article(body, url="https://example.com/page", content_type=content_type)
    text = str(info.value)
    assert message in text and "https://example.com/page" in text and "\n" not in text


def test_deeply_nested_hostile_html_is_a_one_line_error_not_a_crash():
    body = b"<html><body>" + b"<div>" * 100_000 + b"x" + b"</div>" * 100_000 + b"</body></html>"
    with pytest.raises(ExtractionError) as info:  # one word is no article, however deep
        extract_article(body, url="https://example.com/deep")
    assert "https://example.com/deep" in str(info.value) and "\n" not in str(info.value)


def test_article_and_error_pickle_and_run_in_a_process_pool(news_page):
    body = news_page().encode("utf-8")
    with ProcessPoolExecutor(max_workers=2) as pool:
        article = pool.submit(extract_article, body, url=URL, content_type="text/html; charset=utf-8").result()
        with pytest.raises(ExtractionError, match="empty body"):
            pool.submit(extract_article, b"", url=URL).result()
    assert article == _extract(news_page())
    assert pickle.loads(pickle.dumps(article)) == article
