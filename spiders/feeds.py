"""RSS 2.0 / RSS 1.0 / Atom feeds and XML sitemaps: the links they list, with hints.

Pure functions over the bytes a site served. Hostile or broken XML never
raises anything but FeedError, and entity expansion and network access are off
(no XXE, no billion laughs). Dates are ISO 8601 as published (offset kept).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from lxml import etree

from storage.errors import PageError

__all__ = ["Entry", "FeedError", "parse_xml_index", "parse_feed", "parse_sitemap", "sniff_kind"]

# A gzipped sitemap may expand to this much at most (the sitemaps.org limit is 50 MB).
MAX_XML_BYTES = 64 * 1024 * 1024


class FeedError(PageError):
    """Not a feed or sitemap we can read; one-line message."""


@dataclass(frozen=True)
class Entry:
    url: str
    title: str | None = None
    date: str | None = None

    @property
    def hints(self) -> dict:
        return {k: v for k, v in (("title", self.title), ("date", self.date)) if v}


@dataclass
class XmlIndex:
    kind: str  # "rss", "atom", "rdf", "urlset", "sitemapindex"
    entries: list[Entry] = field(default_factory=list)

    @property
    def is_sitemap_index(self) -> bool:
        return self.kind == "sitemapindex"


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _parse(body: bytes) -> etree._Element:
    if body[:2] == b"\x1f\x8b":  # a .xml.gz served without Content-Encoding
        from scrapy.utils.gz import gunzip

        try:
            body = gunzip(body, max_size=MAX_XML_BYTES)
        except Exception as e:  # truncated, too big, not gzip after all
            raise FeedError(f"bad gzip body: {e}") from None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as e:
        raise FeedError(f"not XML: {e}") from None
    if root is None:
        raise FeedError("not XML: empty document")
    return root


def sniff_kind(root: etree._Element) -> str:
    name = _local(root.tag).lower()
    if name in ("rss", "feed", "urlset", "sitemapindex"):
        return "atom" if name == "feed" else name
    if name == "rdf":
        return "rdf"
    raise FeedError(f"not a feed or sitemap (root element <{_local(root.tag)}>)")


def parse_xml_index(body: bytes, base_url: str) -> XmlIndex:
    """A feed or a sitemap, told apart by its root element."""
    root = _parse(body)
    kind = sniff_kind(root)
    if kind in ("urlset", "sitemapindex"):
        return XmlIndex(kind, _sitemap_entries(root, base_url))
    return XmlIndex(kind, _feed_entries(root, kind, base_url))


def parse_feed(body: bytes, base_url: str) -> list[Entry]:
    index = parse_xml_index(body, base_url)
    if index.kind not in ("rss", "atom", "rdf"):
        raise FeedError(f"not a feed (a {index.kind})")
    return index.entries


def parse_sitemap(body: bytes, base_url: str) -> XmlIndex:
    index = parse_xml_index(body, base_url)
    if index.kind not in ("urlset", "sitemapindex"):
        raise FeedError(f"not a sitemap (a {index.kind} feed)")
    return index


def _children(elem, name: str):
    return [c for c in elem if _local(c.tag) == name]


def _text(elem, name: str) -> str | None:
    for c in _children(elem, name):
        text = "".join(c.itertext()).strip()
        if text:
            return " ".join(text.split())
    return None


def _iso_date(text: str | None) -> str | None:
    """RFC 822 (RSS) or ISO 8601 (Atom, sitemaps) -> ISO 8601; unknown forms kept as given."""
    if not text:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return text  # a day only: no invented midnight
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).isoformat()
    except (TypeError, ValueError, IndexError):
        return text


def _http_url(base: str, href: str | None) -> str | None:
    if not href or not href.strip():
        return None
    url = urljoin(base, href.strip())
    return url if url.startswith(("http://", "https://")) else None


def _feed_entries(root, kind: str, base_url: str) -> list[Entry]:
    entries = []
    items = root.iter("{*}item") if kind in ("rss", "rdf") else root.iter("{*}entry")
    for item in items:
        if kind == "atom":
            url = _atom_link(item, base_url)
            date = _text(item, "published") or _text(item, "updated")
        else:
            url = _http_url(base_url, _text(item, "link"))
            guid = _children(item, "guid")
            if url is None and guid and guid[0].get("isPermaLink", "true").lower() != "false":
                url = _http_url(base_url, _text(item, "guid"))
            date = _text(item, "pubDate") or _text(item, "date")  # dc:date in RSS 1.0
        if url:
            entries.append(Entry(url, _text(item, "title"), _iso_date(date)))
    return entries


def _atom_link(entry, base_url: str) -> str | None:
    base = urljoin(base_url, entry.get("{http://www.w3.org/XML/1998/namespace}base") or "")
    links = _children(entry, "link")
    for link in links:  # the alternate link is the article; others are enclosures, comments...
        if link.get("rel", "alternate") == "alternate":
            return _http_url(base, link.get("href"))
    return None


def _sitemap_entries(root, base_url: str) -> list[Entry]:
    entries = []
    for node in root:
        if _local(node.tag) not in ("url", "sitemap"):
            continue
        url = _http_url(base_url, _text(node, "loc"))
        if not url:
            continue
        title = date = None
        for news in _children(node, "news"):  # Google news sitemap extension
            title = _text(news, "title")
            date = _iso_date(_text(news, "publication_date"))
        entries.append(Entry(url, title, date))
    return entries
