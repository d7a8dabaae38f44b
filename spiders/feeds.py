"""RSS 2.0 / RSS 1.0 / Atom feeds and XML sitemaps: the links they list, with hints.

Pure functions over the bytes a site served. Hostile or broken XML never
raises anything but FeedError, and entity expansion and network access are off
(no XXE, no billion laughs). Dates are ISO 8601 as published (offset kept).

Read as a stream (`XmlIndexReader`): entries come one at a time while the
document is parsed, and each is dropped from the tree once read, so a sitemap
of a million URLs costs the memory of one entry, and its reader can stop at
any point (the spider stops at max_pages). A gzipped body (a .xml.gz served
without Content-Encoding) is decoded on the way, bounded like any other body.
At most MAX_ENTRIES (the sitemaps.org limit per file) are read.

Entries are absolute URLs of any scheme (`javascript:`-like values without
`//` are not URLs and are skipped); the spider's scope gate refuses and counts
what is not http(s). The list functions (`parse_feed`, ...) keep http(s) only.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Iterator
from urllib.parse import urljoin

from lxml import etree

from storage.contentcoding import DecodedTooLarge, DecodeError, decoded_chunks
from storage.errors import PageError

__all__ = ["Entry", "FeedError", "XmlIndexReader", "parse_xml_index", "parse_feed", "parse_sitemap", "sniff_kind"]

# What a feed or sitemap may decode to by default (the sitemaps.org limit is 50 MB).
MAX_XML_BYTES = 50 * 1024 * 1024
# Entries read from one document at most (sitemaps.org: 50,000 URLs per sitemap).
MAX_ENTRIES = 50_000
# Elements one entry may hold; past that it is junk and skipped.
MAX_ENTRY_ELEMENTS = 1_000


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
    """The local name of "{namespace}name" (or of "prefix:name", an unbound prefix the parser kept)."""
    if not isinstance(tag, str):
        return ""  # a comment or processing instruction
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def sniff_kind(root: etree._Element) -> str:
    name = _local(root.tag).lower()
    if name in ("rss", "feed", "urlset", "sitemapindex"):
        return "atom" if name == "feed" else name
    if name == "rdf":
        return "rdf"
    raise FeedError(f"not a feed or sitemap (root element <{_local(root.tag)}>)")


class XmlIndexReader:
    """The entries of one feed or sitemap, parsed while they are read.

    `kind` is known on construction (FeedError if the document is not a feed or
    a sitemap); iterate for the entries. Afterwards `cut` says the document
    decoded past `max_bytes` (the entries before that point were read) and
    `overflow` that it listed more than `max_entries`.
    """

    def __init__(self, body: bytes, base_url: str, *, max_bytes: int = MAX_XML_BYTES,
                 max_entries: int = MAX_ENTRIES):
        self.base_url = base_url
        self.max_entries = max_entries
        self.overflow = False
        self.read = 0  # entries yielded so far
        gzipped = body[:2] == b"\x1f\x8b"
        self.cut = not gzipped and len(body) > max_bytes
        self._chunks = decoded_chunks(body if gzipped else body[:max_bytes], ["gzip"] if gzipped else [], max_bytes)
        self._parser = etree.XMLPullParser(events=("start", "end"), resolve_entities=False, no_network=True,
                                           recover=True, huge_tree=False)
        self._pending: deque = deque()
        self._events = self._read_events()
        self.root = None
        for event, elem in self._events:
            self._pending.append((event, elem))
            if event == "start":
                self.root = elem
                break
        if self.root is None:
            raise FeedError("not XML: no element in the document")
        self.kind = sniff_kind(self.root)

    @property
    def is_sitemap_index(self) -> bool:
        return self.kind == "sitemapindex"

    def _read_events(self):
        try:
            for chunk in self._chunks:
                try:
                    self._parser.feed(chunk)
                except etree.XMLSyntaxError:
                    break  # recover=True gives up only on hopeless input: what was read stands
                yield from self._parser.read_events()
        except DecodedTooLarge:
            self.cut = True
        except DecodeError as exc:
            if self.root is None:
                raise FeedError(f"bad gzip body: {exc}") from None
        try:
            self._parser.close()
        except etree.XMLSyntaxError:
            pass
        yield from self._parser.read_events()

    def _all_events(self):
        while self._pending:
            yield self._pending.popleft()
        yield from self._events

    def __iter__(self) -> Iterator[Entry]:
        sitemap = self.kind in ("urlset", "sitemapindex")
        wanted = ("url", "sitemap") if sitemap else ("entry",) if self.kind == "atom" else ("item",)
        depth = 0
        entry_depth = None  # depth of the entry being read, if any
        entry_size = 0
        for event, elem in self._all_events():
            if event == "start":
                depth += 1
                if entry_depth is not None:
                    entry_size += 1
                elif _local(elem.tag) in wanted and (not sitemap or depth == 2):
                    entry_depth, entry_size = depth, 0
                continue
            depth -= 1
            if entry_depth is not None and depth >= entry_depth:
                if entry_size > MAX_ENTRY_ELEMENTS:
                    elem.clear()  # a junk entry: keep none of it
                continue  # a part of the entry being read
            if entry_depth is not None:  # the entry itself ends
                entry_depth = None
                entry = None if entry_size > MAX_ENTRY_ELEMENTS else self._entry(elem)
                _drop(elem)
                if entry is not None:
                    if self.read >= self.max_entries:
                        self.overflow = True
                        return
                    self.read += 1
                    yield entry
            elif elem is not self.root:
                _drop(elem)  # not an entry: nothing to keep

    def _entry(self, elem) -> Entry | None:
        if self.kind in ("urlset", "sitemapindex"):
            url = _entry_url(self.base_url, _text(elem, "loc"))
            title = date = None
            for news in _children(elem, "news"):  # Google news sitemap extension
                title = _text(news, "title")
                date = _iso_date(_text(news, "publication_date"))
            return Entry(url, title, date) if url else None
        if self.kind == "atom":
            url = _atom_link(elem, self.base_url)
            date = _text(elem, "published") or _text(elem, "updated")
        else:
            url = _entry_url(self.base_url, _text(elem, "link"))
            guid = _children(elem, "guid")
            if url is None and guid and guid[0].get("isPermaLink", "true").lower() != "false":
                url = _entry_url(self.base_url, _text(elem, "guid"))
            date = _text(elem, "pubDate") or _text(elem, "date")  # dc:date in RSS 1.0
        return Entry(url, _text(elem, "title"), _iso_date(date)) if url else None


def _drop(elem) -> None:
    """Free an element read to its end, and the siblings before it."""
    elem.clear(keep_tail=False)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def _http_only(entries) -> list[Entry]:
    return [e for e in entries if e.url.startswith(("http://", "https://"))]


def parse_xml_index(body: bytes, base_url: str, *, max_bytes: int = MAX_XML_BYTES) -> XmlIndex:
    """A feed or a sitemap, told apart by its root element: its http(s) entries as a list."""
    reader = XmlIndexReader(body, base_url, max_bytes=max_bytes)
    return XmlIndex(reader.kind, _http_only(reader))


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


def _entry_url(base: str, href: str | None) -> str | None:
    """`href` made absolute; None when it is not a URL with a host part (javascript:, mailto:...)."""
    if not href or not href.strip():
        return None
    try:
        url = urljoin(base, href.strip())
    except ValueError:  # e.g. a bad IPv6 literal
        return None
    return url if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url) else None


def _atom_link(entry, base_url: str) -> str | None:
    try:
        base = urljoin(base_url, entry.get("{http://www.w3.org/XML/1998/namespace}base") or "")
    except ValueError:
        base = base_url
    links = _children(entry, "link")
    for link in links:  # the alternate link is the article; others are enclosures, comments...
        if link.get("rel", "alternate") == "alternate":
            return _entry_url(base, link.get("href"))
    return None
