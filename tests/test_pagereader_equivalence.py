"""The single walk of a page reads what the old reader read: the same links, requisites and article.

spiders.pagereader.tree_links (in place of Scrapy's LinkExtractor) and
spiders.requisites.html_requisites (one walk instead of XPath per kind,
tinycss2 only on CSS that can name a URL) are held to the old reader kept in
tests/reader_oracle.py, on every page of the test corpus (tests/data) under
three scopes, on pages made to hit every branch (bases, broken URLs, denied
extensions, escapes in CSS, content after </html>), and through read_page
itself, whose article must be extract_article's. benchmarks/bench_reader.py
--check does the same over the real pages of ../shared/testdata.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import trafilatura
from scrapy.http import HtmlResponse

from corpus import load_corpus
from reader_oracle import old_css_requisites, old_html_requisites, old_page_links
from spiders.extraction import decode_html, extract_article
from spiders.pagereader import LinkRules, _response, link_extractor, read_page, tree_links
from spiders.requisites import css_requisites, html_requisites
from spiders.scrapy_internals import with_tree

EXTRACTOR = "spiders.extraction.extract_article"
REQUISITES = "spiders.requisites.html_requisites"
SITE = "http://127.0.0.1:8000/2026/11/story-7.html"


def _scopes(url: str):
    own = urlsplit(url).hostname
    return [
        pytest.param(SITE, LinkRules(hosts=("127.0.0.1",), requisites=REQUISITES), id="loopback-site"),
        pytest.param(url, LinkRules(deny=(r"/tag/", r"\?share=", r"/video/"), hosts=(own,), requisites=REQUISITES),
                     id="own-host-deny"),
        pytest.param(url, LinkRules(hosts=None, requisites=REQUISITES), id="no-hosts"),
    ]


def _tree(body: bytes, content_type: str | None):
    return trafilatura.load_html(decode_html(body, content_type))  # as extract_article parses it


def _old_and_new(body: bytes, url: str, content_type: str | None, rules: LinkRules):
    """(old links, old requisites), (new links, new requisites), each reader on a tree of its own."""
    old_tree, new_tree = _tree(body, content_type), _tree(body, content_type)
    old_response = with_tree(_response(body, url, content_type), old_tree)
    new_response = with_tree(_response(body, url, content_type), new_tree)
    return ((old_page_links(old_response, old_tree, rules), old_html_requisites(old_response)),
            (tree_links(new_response, new_tree, rules), html_requisites(new_response)))


CORPUS = load_corpus()
CASES = [pytest.param(page, url, rules, id=f"{page.file}-{scope.id}")
         for page in CORPUS for scope in _scopes(page.url) for url, rules in [scope.values]]


@pytest.mark.parametrize("page,url,rules", CASES)
def test_links_and_requisites_of_every_corpus_page_are_the_old_readers(page, url, rules):
    old, new = _old_and_new(page.body, url, page.content_type, rules)
    assert new == old


@pytest.mark.parametrize("page", CORPUS, ids=[p.file for p in CORPUS])
def test_requisites_of_a_page_scrapy_parsed_are_the_old_readers(page):
    """Listing pages: the spider reads requisites from Scrapy's own parse of the response."""
    response = HtmlResponse(url=page.url, body=page.body, headers={"Content-Type": page.content_type})
    again = HtmlResponse(url=page.url, body=page.body, headers={"Content-Type": page.content_type})
    assert html_requisites(response) == old_html_requisites(again)


@pytest.mark.parametrize("page,url,rules", CASES)
def test_links_of_a_page_scrapy_parsed_are_link_extractors(page, url, rules):
    """Listing pages: the spider reads links from Scrapy's own parse of the response, as the pool does."""
    response = HtmlResponse(url=url, body=page.body, headers={"Content-Type": page.content_type})
    again = HtmlResponse(url=url, body=page.body, headers={"Content-Type": page.content_type})
    expected = [link.url for link in link_extractor(rules.deny, rules.hosts).extract_links(again)]
    assert tree_links(response, response.selector.root, rules) == expected


@pytest.mark.parametrize("page", [p for p in CORPUS if p.is_article], ids=[p.file for p in CORPUS if p.is_article])
def test_read_page_gives_the_old_links_and_requisites_and_extract_articles_article(page):
    rules = LinkRules(hosts=(urlsplit(page.url).hostname,), requisites=REQUISITES)
    read = read_page(EXTRACTOR, page.body, url=page.url, content_type=page.content_type, links=rules)
    old, _ = _old_and_new(page.body, page.url, page.content_type, rules)
    assert (read.links, read.requisites) == old
    assert read.links, f"{page.file}: an article page with no links to its own site"
    assert read.error is None, read.error
    assert read.article == extract_article(page.body, url=page.url, content_type=page.content_type)


# --------------------------------------------------------------------------- pages made to hit every branch

ARTICLE_TEXT = "<p>" + " ".join(["The council met on Tuesday to discuss the harbour budget."] * 8) + "</p>"

EDGE_PAGES = {
    "links": f"""<html><head><base href="/news/"></head><body>{ARTICLE_TEXT}
        <a href="a.html">A</a><a href=" b.html#top ">B</a><a href="a.html">A again</a><area href="c.html">
        <a href="/video/1">denied</a><a href="report.PDF">pdf</a><a href="photo.jpg">jpg</a><a href="">empty</a>
        <a href="javascript:void(0)">js</a><a href="mailto:desk@127.0.0.1">mail</a><a href="ftp://127.0.0.1/f">ftp</a>
        <a href="http://[::1">broken</a><a href="http://127.0.0.1:99999/x">bad port</a>
        <a href="HTTP://127.0.0.1:8000/Upper">upper</a><a href="//127.0.0.1:8000/proto">proto</a>
        <a href="https://other.example/x">elsewhere</a><a href="https://www.127.0.0.1/www">www</a>
        <a href="/caf\u00e9 ü.html">non-ascii</a><a href="/q?a=1&amp;b=2">query</a><a>no href</a>
        <a href="/tag/x">tag</a><a href="http://user:pw@127.0.0.1/secret">userinfo</a>
        <a href="https://oth&#9;er.example/tab">tab off-site</a><a href="http://127.0.0&#10;.1:8000/nl">newline</a>
        <a href="https://other.example:">empty port</a><a href="https://OTHER.example?q">query only</a>
        <a href="https://127.0.0.1.">trailing dot</a><a href="https://www.other.example#f">www</a>
        </body></html>""",
    "after </html>": f"""<html><body>{ARTICLE_TEXT}<a href="/in.html">in</a><img src="in.png"></body></html>
        <a href="/after.html"><img src="after.png" style="background:url(after-bg.png)"></a>
        <style>.late {{ background: url(late.png) }}</style>""",
    "requisites": f"""<html><head><base href="http://127.0.0.1:8000/news/">
        <link rel="stylesheet" href="/s.css"><link rel="Alternate Stylesheet" href="/alt.css">
        <link rel="apple-touch-icon" href="/touch.png"><link rel="preload" as="FONT" href="/f.woff2">
        <link rel="preload" as="fetch" href="/data.json"><link rel="modulepreload" href="/m.js">
        <link rel="preload" as="style" href="/s.css"><link rel="stylesheet" href="">
        <link rel="icon"><script src=" app.js "></script><script src=""></script><script>var u = "url(x)";</script>
        <style>@IMPORT "print.css"; @import url(  'screen.css'  ) screen;
          @font-face {{ font-family: x; src: url(/fonts/x.woff2) format("woff2"), src("/fonts/y.ttf") }}
          @media print {{ @font-face {{ src: url(nested.woff) }} .a {{ background: URL(media.png) }} }}
          /* url(commented.png) */ .b {{ background-image: u\\72l(escaped.png) }}
          .c {{ background: url("quoted.css") }} .d {{ content: "url(in-string.png)" }}
          .e {{ background: image-set(url(set-1x.png) 1x, "set-2x.png" 2x) }} .f {{ mask: url() }}
        </style><style></style><style>.plain {{ color: red }}</style></head>
        <body style="color: red; background: url('/body.jpg')">{ARTICLE_TEXT}
        <div style="display:none">hidden</div><div style="background:url(data:image/png;base64,AAAA)"></div>
        <span style="background-image: url( spaced.png )"></span><i style="--x: u\\72l(esc.png)"></i>
        <img src="photo.jpg" srcset=" photo-640.jpg 640w, photo-1280.jpg 1280w"><img srcset="only.jpg 2x">
        <img src="   "><img><picture><source srcset="wide.webp 1x"><img src="wide.jpg"></picture>
        <video poster="/poster.jpg"><source src="clip.mp4" srcset="not-a-picture.webp"></video>
        <input type="image" src="go.png"><input type="IMAGE" src="upper.png"><input src="text.png">
        <img src="photo.jpg"></body></html>""",
}


@pytest.mark.parametrize("name", list(EDGE_PAGES))
@pytest.mark.parametrize("rules", [LinkRules(hosts=("127.0.0.1",), requisites=REQUISITES),
                                   LinkRules(deny=(r"/video/", r"/tag/"), hosts=("127.0.0.1",), requisites=REQUISITES),
                                   LinkRules(hosts=None, requisites=REQUISITES)], ids=["scope", "deny", "no-hosts"])
def test_pages_made_to_hit_every_branch_read_as_before(name, rules):
    body = EDGE_PAGES[name].encode("utf-8")
    old, new = _old_and_new(body, SITE, "text/html; charset=utf-8", rules)
    assert new == old
    read = read_page(EXTRACTOR, body, url=SITE, content_type="text/html; charset=utf-8", links=rules)
    assert (read.links, read.requisites) == old


def test_the_edge_pages_reach_the_branches_they_are_for():
    """What the readers agree on is what a user expects (so agreement is not two empty lists)."""
    rules = LinkRules(deny=(r"/video/",), hosts=("127.0.0.1",), requisites=REQUISITES)
    (links, _), _ = _old_and_new(EDGE_PAGES["links"].encode(), SITE, "text/html", rules)
    assert links[:3] == ["http://127.0.0.1:8000/news/a.html", "http://127.0.0.1:8000/news/b.html#top",
                         "http://127.0.0.1:8000/news/c.html"]
    assert not any(u.endswith(("/video/1", ".PDF", ".jpg")) or "other.example" in u for u in links)
    assert "http://127.0.0.1:8000/caf%C3%A9%20%C3%BC.html" in links
    (links, requisites), _ = _old_and_new(EDGE_PAGES["after </html>"].encode(), SITE, "text/html", rules)
    assert links == ["http://127.0.0.1:8000/in.html"]  # LinkExtractor walks the first <html> only
    assert [u.rsplit("/", 1)[1] for u, _ in requisites] == ["in.png", "after.png", "late.png", "after-bg.png"]
    _, (_, requisites) = _old_and_new(EDGE_PAGES["requisites"].encode(), SITE, "text/html", rules)
    found = {u.rsplit("/", 1)[1]: kind for u, kind in requisites}
    assert found["escaped.png"] == "image" and found["esc.png"] == "image"  # tinycss2 reads the escapes
    assert found["x.woff2"] == found["y.ttf"] == "font" and found["nested.woff"] == "font"
    assert found["print.css"] == found["screen.css"] == "stylesheet"
    assert found["go.png"] == "image" and "upper.png" not in found  # type='image' compared as XPath does: exactly
    assert "commented.png" not in found and "in-string.png" not in found and "not-a-picture.webp" not in found


@pytest.mark.parametrize("css", [
    ".a { color: red }", "", "   ", "/* nothing */", ".a { background: url(a.png) }", "@import 'x.css';",
    ".a { background: URL(a.png) }", ".b { src: SRC('f.woff') }", ".c { background: u\\72l(e.png) }",
    "@\\69mport 'esc.css';", ".d { background: url(a.png }", ".e { content: 'url(' }", "\x00url(nul.png)",
])
@pytest.mark.parametrize("declarations", [False, True], ids=["stylesheet", "style-attribute"])
def test_css_scan_with_and_without_urls_is_tinycss2s(css, declarations):
    assert css_requisites(css, "http://127.0.0.1/c/", declarations=declarations) == \
        old_css_requisites(css, "http://127.0.0.1/c/", declarations=declarations)


def test_a_style_shared_by_pages_at_other_urls_resolves_against_each_page():
    """The parsed-CSS cache keeps URLs as written: a template's <style> read on a second page
    (a cache hit) gives that page's URLs."""
    body = EDGE_PAGES["requisites"].replace('<base href="http://127.0.0.1:8000/news/">', "").encode()
    rules = LinkRules(hosts=("127.0.0.1",), requisites=REQUISITES)
    firsts = []
    for url in ("http://127.0.0.1:8000/a/one.html", "http://127.0.0.1:8000/b/c/two.html"):
        old, new = _old_and_new(body, url, "text/html", rules)
        assert new == old
        firsts.append(next(u for u, _ in new[1] if u.endswith("print.css")))
    assert firsts == ["http://127.0.0.1:8000/a/print.css", "http://127.0.0.1:8000/b/c/print.css"]


def test_the_parsed_css_kept_is_bounded_and_a_long_text_is_not_kept():
    from spiders.requisites import _ParsedCss

    kept = _ParsedCss()
    kept.MAX_CHARS, kept.MAX_TEXT = 10_000, 4_000
    texts = [f".r{i} {{ background: url(img-{i}.png) }}" + " " * 1_000 for i in range(40)]
    for css in texts:
        assert kept.references(css, False) == (((f"img-{texts.index(css)}.png"), "image"),)
    assert kept._chars <= kept.MAX_CHARS and len(kept._kept) < len(texts)
    long = ".x { background: url(long.png) }" + " " * 5_000
    assert kept.references(long, False) == (("long.png", "image"),)
    assert (long, False) not in kept._kept


def test_the_parsed_css_kept_holds_no_page_tree():
    """lxml's smart strings keep their element (and the whole page) alive: the cache keeps plain str."""
    from spiders.requisites import _CSS_TEXTS

    body = EDGE_PAGES["requisites"].encode()
    tree = _tree(body, "text/html")
    html_requisites(with_tree(_response(body, SITE, "text/html"), tree))
    assert _CSS_TEXTS._kept and all(type(css) is str for css, _ in _CSS_TEXTS._kept)
