"""The page reader as it was before the single walk (spiders/pagereader.py, spiders/requisites.py
at fc363f6): the oracle tests/test_pagereader_equivalence.py and benchmarks/bench_reader.py
hold the new one to. Not used by the package.

    old_page_links(response, tree, rules)   LinkExtractor over the tree, as read_page did
    old_html_requisites(response)           XPath over the whole tree, tinycss2 on every CSS text
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

import tinycss2
from scrapy.http import HtmlResponse
from scrapy.utils.response import get_base_url

from spiders.pagereader import LinkRules, link_extractor
from spiders.scrapy_internals import with_tree

_FONT = re.compile(r"\.(woff2?|ttf|otf|eot)$", re.I)
_CSS = re.compile(r"\.css$", re.I)
_PRELOAD_AS = {"style": "stylesheet", "font": "font", "script": "script", "image": "image"}


def old_page_links(response: HtmlResponse, tree, rules: LinkRules) -> list[str]:
    return [link.url for link in link_extractor(rules.deny, rules.hosts).extract_links(with_tree(response, tree))]


def _first_candidate(srcset: str) -> str | None:
    """The first URL of a srcset ("a.jpg 1x, b.jpg 2x" -> a.jpg)."""
    first = srcset.strip().split(",", 1)[0].strip()
    return first.split()[0] if first else None


def old_html_requisites(response: HtmlResponse) -> list[tuple[str, str]]:
    """(absolute URL, kind) of what the page needs, in document order, duplicates removed."""
    base = get_base_url(response)
    found: list[tuple[str, str]] = []

    def add(url: str | None, kind: str) -> None:
        if url and url.strip():
            found.append((urljoin(base, url.strip()), kind))

    for node in response.xpath("//link[@href]"):
        rel = set((node.attrib.get("rel") or "").lower().split())
        href = node.attrib.get("href")
        if "stylesheet" in rel and "alternate" not in rel:
            add(href, "stylesheet")
        elif rel & {"icon", "apple-touch-icon"}:
            add(href, "image")
        elif rel & {"preload", "modulepreload"}:
            kind = "script" if "modulepreload" in rel else _PRELOAD_AS.get((node.attrib.get("as") or "").lower())
            if kind:
                add(href, kind)
    for node in response.xpath("//img | //picture/source | //input[@type='image']"):
        add(node.attrib.get("src"), "image")
        if node.attrib.get("srcset"):
            add(_first_candidate(node.attrib["srcset"]), "image")
    for poster in response.xpath("//video/@poster").getall():
        add(poster, "image")
    for src in response.xpath("//script/@src").getall():
        add(src, "script")
    for css in response.xpath("//style/text()").getall():
        found.extend(old_css_requisites(css, base))
    for css in response.xpath("//@style").getall():
        found.extend((url, kind) for url, kind in old_css_requisites(css, base, declarations=True))
    return _unique(found)


def old_css_requisites(css: str | bytes, base_url: str, *, encoding: str | None = None,
                   declarations: bool = False) -> list[tuple[str, str]]:
    """(absolute URL, kind) of every @import and url() of a stylesheet (bytes: decoded as
    CSS says, its @charset or `encoding` from the HTTP header), or of a style="" attribute."""
    if isinstance(css, bytes):
        rules, _ = tinycss2.parse_stylesheet_bytes(css, protocol_encoding=encoding, skip_comments=True)
    elif declarations:
        rules = tinycss2.parse_blocks_contents(css, skip_comments=True)
    else:
        rules = tinycss2.parse_stylesheet(css, skip_comments=True)
    found: list[tuple[str, str]] = []

    def url_of(token) -> str | None:
        if token.type == "url":
            return token.value
        if token.type == "function" and token.lower_name in ("url", "src"):
            strings = [t for t in token.arguments if t.type == "string"]
            return strings[0].value if strings else None
        return None

    def walk(tokens, kind_in: str | None) -> None:
        for token in tokens or ():
            url = url_of(token)
            if url is not None:
                found.append((urljoin(base_url, url.strip()), kind_in or _kind_by_name(url)))
                continue
            if token.type == "at-rule":
                if token.lower_at_keyword == "import":
                    for t in token.prelude:
                        target = url_of(t) or (t.value if t.type == "string" else None)
                        if target is not None:
                            found.append((urljoin(base_url, target.strip()), "stylesheet"))
                            break
                    continue
                inner = "font" if token.lower_at_keyword == "font-face" else kind_in
                walk(token.prelude, inner)
                walk(token.content, inner)
            elif token.type == "qualified-rule":
                walk(token.prelude, kind_in)
                walk(token.content, kind_in)
            elif token.type == "declaration":
                walk(token.value, kind_in)
            elif token.type == "function" or token.type in ("() block", "[] block", "{} block"):
                walk(getattr(token, "arguments", None) or getattr(token, "content", None), kind_in)

    walk(rules, None)
    return _unique(found)


def _kind_by_name(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    return "font" if _FONT.search(path) else "stylesheet" if _CSS.search(path) else "image"


def _unique(found: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for url, kind in found:
        if url not in seen:
            seen.add(url)
            out.append((url, kind))
    return out
