"""Clean article text: charset decoding, the plain-text form and its metadata.

Pure functions with no state beyond imports, so `extract_article` can run in a
process pool, both while crawling and when re-deriving text from WARCs.

    decode_html(body, content_type) -> str
    extract_article(body, url=..., ...) -> Article(text, metadata)
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urljoin

import charset_normalizer
import trafilatura

from storage.errors import PageError

__all__ = ["Article", "ExtractionError", "decode_html", "extract_article"]

EXTRACTOR_VERSION = getattr(trafilatura, "__version__", "unknown")


class ExtractionError(PageError):
    """A page that yields no article: one line saying why, with the URL."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # one line, whatever the URL holds


@dataclass
class Article:
    text: str  # the whole .txt file: header, blank line, paragraphs
    metadata: dict = field(default_factory=dict)  # the .json document


# --------------------------------------------------------------------------
# Charset decoding
# --------------------------------------------------------------------------

# Labels that browsers (WHATWG Encoding) decode with a wider codec than the
# name says; pages labelled with the narrow name use the wider one in practice.
_BROWSER_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030",
    "iso-8859-1": "windows-1252", "latin-1": "windows-1252", "latin1": "windows-1252",
    "us-ascii": "windows-1252", "ascii": "windows-1252", "iso-8859-9": "windows-1254",
    "iso-8859-11": "windows-874", "tis-620": "windows-874",
    "ks_c_5601-1987": "euc-kr", "big5": "big5hkscs", "x-sjis": "shift_jis",
    # A byte document cannot really be UTF-16 when its <meta> was readable as ASCII.
    "utf-16": "utf-8", "utf-16le": "utf-8", "utf-16be": "utf-8",
    "x-user-defined": "windows-1252",
}

_META_SCAN_BYTES = 16384  # browsers look at 1024; real pages put <meta> later
_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_SINGLE_BYTE_FALLBACK = "windows-1252"


def _c1_fallback(err: UnicodeDecodeError):
    # Bytes a windows-125x table leaves undefined: browsers map them to the
    # same code point (C1 controls); never U+FFFD.
    return "".join(chr(b) for b in err.object[err.start:err.end]), err.end


def _cp1252_fallback(err: UnicodeDecodeError):
    # Mixed pages: UTF-8 with stray Latin-1/windows-1252 bytes (templates
    # pasted together). Decode just the bad bytes as windows-1252.
    bad = err.object[err.start:err.end]
    return bad.decode("windows-1252", errors="newsarchive-c1"), err.end


codecs.register_error("newsarchive-c1", _c1_fallback)
codecs.register_error("newsarchive-cp1252", _cp1252_fallback)


def _codec_name(label: str | None) -> str | None:
    """A Python codec for a charset label, with browser aliases; None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _BROWSER_ALIASES.get(label, label)
    try:
        name = codecs.lookup(_PYTHON_NAMES.get(label, label)).name
    except LookupError:
        return None
    # Normalise Python's names back to the web's labels for the metadata.
    name = {"cp1250": "windows-1250", "cp1251": "windows-1251", "cp1252": "windows-1252",
            "cp1253": "windows-1253", "cp1254": "windows-1254", "cp1255": "windows-1255",
            "cp1256": "windows-1256", "cp1257": "windows-1257", "cp1258": "windows-1258",
            "cp874": "windows-874", "latin_1": "windows-1252", "ascii": "windows-1252",
            "iso8859-1": "windows-1252"}.get(name, name)
    name = name.replace("_", "-")
    return _BROWSER_ALIASES.get(name, name)


def _charset_from_header(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _HEADER_CHARSET.search(content_type)
    return m.group(1) if m else None


def _charset_from_meta(body: bytes) -> str | None:
    m = _META_CHARSET.search(body[:_META_SCAN_BYTES])
    return m.group(1).decode("ascii", "replace") if m else None


def _utf8_shape(body: bytes) -> tuple[int, int]:
    """(valid multi-byte sequences, invalid bytes) when read as UTF-8."""
    text = body.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd")
    invalid = replaced - body.count(b"\xef\xbf\xbd")
    # non-ASCII characters other than U+FFFD, counted in C (a Python loop over
    # every character cost ~13 ms on a 170 KB page)
    multibyte = len(text) - len(text.encode("ascii", "ignore")) - replaced
    return multibyte, invalid


def _decode_not_quite_utf8(body: bytes) -> tuple[str, str]:
    """Bytes that are not valid UTF-8 though declared (or guessed) so."""
    multibyte, invalid = _utf8_shape(body)
    if multibyte >= invalid:
        # Mostly UTF-8 with a few stray legacy bytes: keep the UTF-8 and
        # read only the strays as windows-1252 (detectors misjudge these).
        return body.decode("utf-8", errors="newsarchive-cp1252"), "utf-8"
    return _detect(body)


# Encodings web pages actually use; detectors otherwise pick exotic ones
# (hp-roman8, cp775) for Latin text whose markup is all ASCII.
_WEB_ENCODINGS = [
    "utf_8", "cp1252", "cp1250", "iso8859_2", "cp1251", "koi8_r", "cp1253", "cp1254",
    "cp1255", "cp1256", "cp1257", "cp1258", "cp874", "gb18030", "big5", "shift_jis",
    "euc_jp", "euc_kr",
]
# What browsers fall back to for a page's language when nothing is declared.
_LANGUAGE_ENCODINGS = {
    **dict.fromkeys(("pl", "cs", "sk", "hu", "hr", "sl", "ro", "bs"), ("iso8859-2", "windows-1250")),
    **dict.fromkeys(("ru", "uk", "bg", "be", "mk", "sr"), ("windows-1251", "koi8-r")),
    "zh": ("gb18030", "big5hkscs"), "ja": ("shift-jis", "euc-jp"), "ko": ("euc-kr",),
    "el": ("windows-1253",), "tr": ("windows-1254",), "he": ("windows-1255",),
    "ar": ("windows-1256",), "fa": ("windows-1256",), "lt": ("windows-1257",),
    "lv": ("windows-1257",), "et": ("windows-1257",), "vi": ("windows-1258",), "th": ("windows-874",),
}
_LANG_ATTR = re.compile(rb"""<html[^>]*?\blang\s*=\s*["']?([A-Za-z]{2,3})""", re.IGNORECASE)
_DETECTION_SLACK = 0.01  # chaos scores this close are a tie
_LENIENT_CHAOS_THRESHOLD = 0.5  # charset_normalizer's default is 0.2


def _page_language(body: bytes) -> str | None:
    m = _LANG_ATTR.search(body[:_META_SCAN_BYTES])
    return m.group(1).decode("ascii").lower() if m else None


def _detect(body: bytes) -> tuple[str, str]:
    """Guess an undeclared legacy charset; ties go to the page language's usual one."""
    results = list(charset_normalizer.from_bytes(body, cp_isolation=_WEB_ENCODINGS))
    if not results:
        # charset_normalizer drops a codec when any one of its sample chunks is messy
        # beyond the threshold: on a short page one chunk of names or figures can
        # drop them all, the right one included, though its mean chaos is nil.
        results = list(charset_normalizer.from_bytes(
            body, cp_isolation=_WEB_ENCODINGS, threshold=_LENIENT_CHAOS_THRESHOLD))
    codec = _SINGLE_BYTE_FALLBACK
    if results:
        lowest = min(r.chaos for r in results)
        tied = [name for r in results if r.chaos <= lowest + _DETECTION_SLACK
                for name in [_codec_name(r.encoding)] if name]
        codec = tied[0] if tied else codec
        lang = _page_language(body)
        preferred = _LANGUAGE_ENCODINGS.get(lang, ("windows-1252",)) if lang else ("windows-1252",)
        if lang in ("pl", "cs", "sk", "hu", "hr", "sl", "ro", "bs") and re.search(rb"[\x80-\x9f]", body):
            preferred = ("windows-1250",)  # iso-8859-2 has no printable bytes there
        for name in preferred:
            if name in tied:
                codec = name
                break
    return _decode_with(body, codec), codec


# Web labels (what the metadata says) Python knows under another name only.
_PYTHON_NAMES = {"windows-874": "cp874"}


def _decode_with(body: bytes, codec: str) -> str:
    codec = _PYTHON_NAMES.get(codec, codec)
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        # Single-byte tables: map undefined bytes like browsers do;
        # multi-byte codecs: mark the broken sequence and go on.
        single = codec.startswith(("windows-", "iso8859", "koi8", "mac-", "cp"))
        return body.decode(codec, errors="newsarchive-c1" if single else "replace")


def _decode(body: bytes, content_type: str | None) -> tuple[str, str, str]:
    """(text, codec used, where it came from: bom|http|meta|detected)."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(codec, errors="replace"), codec, "bom"
    for source, label in (("http", _charset_from_header(content_type)), ("meta", _charset_from_meta(body))):
        codec = _codec_name(label)
        if codec is None:
            continue
        if codec == "utf-8":
            try:
                return body.decode("utf-8"), codec, source
            except UnicodeDecodeError:
                text, used = _decode_not_quite_utf8(body)
                return text, used, "detected"
        if codec in ("windows-1252",) and body.isascii() is False:
            # A legacy default label (often a server's) on a page that is
            # valid UTF-8: the bytes win, as no Latin text is valid UTF-8 by chance.
            try:
                return body.decode("utf-8"), "utf-8", "detected"
            except UnicodeDecodeError:
                pass
        return _decode_with(body, codec), codec, source
    try:
        return body.decode("utf-8"), "utf-8", "detected"
    except UnicodeDecodeError:
        pass
    multibyte, invalid = _utf8_shape(body)
    if multibyte > 2 * invalid:
        return body.decode("utf-8", errors="newsarchive-cp1252"), "utf-8", "detected"
    text, codec = _detect(body)
    return text, codec, "detected"


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Decode an HTML body as a browser would: BOM, HTTP charset, <meta>, then detection.

    A page declaring UTF-8 that is not valid UTF-8 is decoded as UTF-8 with its
    stray bytes read as windows-1252, or by detection when it is not UTF-8 at all.
    """
    return _decode(body, content_type)[0]


# --------------------------------------------------------------------------
# Metadata the extractor does not give in the form we need
# --------------------------------------------------------------------------

_PUBLISHED_XPATHS = (
    '//meta[@property="article:published_time"]/@content',
    '//meta[@name="article:published_time"]/@content',
    '//meta[@itemprop="datePublished"]/@content',
    '//*[@itemprop="datePublished"]/@datetime',
    '//meta[@name="date"]/@content',
    '//meta[@name="dc.date.issued"]/@content',
    '//meta[@name="DC.date.issued"]/@content',
)
_ISO_DATE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})")


def _jsonld_objects(tree) -> list[dict]:
    found: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            found.append(node)
            for key in ("@graph", "mainEntity", "mainEntityOfPage"):
                walk(node.get(key))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        try:
            walk(json.loads(script))
        except (ValueError, RecursionError):
            continue  # broken JSON-LD is common; the meta tags may still help
    return found


def _page_facts(tree, url: str) -> dict:
    """Published date as written, canonical URL and language, read from the page head."""
    facts: dict = {}
    published = next((v.strip() for xp in _PUBLISHED_XPATHS for v in tree.xpath(xp) if v.strip()), None)
    modified = None
    for obj in _jsonld_objects(tree):
        if published is None and isinstance(obj.get("datePublished"), str) and obj["datePublished"].strip():
            published = obj["datePublished"].strip()
        if modified is None and isinstance(obj.get("dateModified"), str) and obj["dateModified"].strip():
            modified = obj["dateModified"].strip()
    if modified is None:
        modified = next((v.strip() for v in tree.xpath('//meta[@property="article:modified_time"]/@content') if v.strip()), None)
    facts["date_published"] = published
    facts["date_modified"] = modified
    canonical = next((h.strip() for h in tree.xpath('//link[@rel="canonical"]/@href') if h.strip()), None)
    if canonical is None:
        canonical = next((h.strip() for h in tree.xpath('//meta[@property="og:url"]/@content') if h.strip()), None)
    facts["canonical_url"] = urljoin(url, canonical) if canonical else None
    lang = next((v.strip() for v in tree.xpath("/html/@lang | /html/@xml:lang",
                                                namespaces={"xml": "http://www.w3.org/XML/1998/namespace"}) if v.strip()), None)
    if lang is None:
        lang = next((v.strip() for v in tree.xpath('//meta[@property="og:locale"]/@content') if v.strip()), None)
    facts["language"] = lang.replace("_", "-") if lang else None
    return facts


# --------------------------------------------------------------------------
# The plain-text form
# --------------------------------------------------------------------------

# Whole lines that are page furniture, not article text (compared casefolded).
_BOILERPLATE_LINES = {
    "none", "null", "undefined", "nan", "share", "share this", "share this article",
    "share on facebook", "share on twitter", "share on x", "tweet", "print", "email",
    "e-mail", "advertisement", "advertising", "anzeige", "werbung", "publicité",
    "read more", "read more:", "weiterlesen", "mehr lesen", "subscribe", "sign up",
    "comments", "loading...", "loading…", "skip to content", "skip to main content",
    "related articles", "related stories", "more stories", "you may also like",
    "follow us", "back to top", "close", "menu", "search",
}
_LOGO_LINE = re.compile(r"^[\w .,&'’:-]{0,60}\blogo$", re.IGNORECASE)
_COOKIE_LINE = re.compile(
    r"\bcookies?\b.*\b(accept|consent|agree|akzeptier|zustimm|einverstanden|privacy|datenschutz)"
    r"|\b(accept|consent|agree|akzeptier|zustimm)\w*\b.*\bcookies?\b",
    re.IGNORECASE,
)
_ONLY_SYMBOLS = re.compile(r"^[\W_]+$")
_SPACES = re.compile(r"\s+")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


def _normalise_space(line: str) -> str:
    # NFC so combining sequences compare equal; NBSP and friends count as spaces.
    return _SPACES.sub(" ", unicodedata.normalize("NFC", line).translate(_INVISIBLE)).strip()


def _is_boilerplate(line: str) -> bool:
    lowered = line.casefold()
    if lowered in _BOILERPLATE_LINES or _ONLY_SYMBOLS.match(line):
        return True
    if _LOGO_LINE.match(line):
        return True
    return len(line) < 400 and bool(_COOKIE_LINE.search(line))


def _comparable(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


def _paragraphs(raw_text: str, title: str | None) -> list[str]:
    paragraphs = []
    for raw in raw_text.splitlines():
        line = _normalise_space(raw)
        if line and not _is_boilerplate(line):
            paragraphs.append(line)
    while paragraphs and title and _comparable(paragraphs[0]) == _comparable(title):
        paragraphs.pop(0)  # the headline (h1, or repeated by a teaser) is already the title line
    return paragraphs


def _byline(author: str | None, date: str | None) -> str:
    parts = []
    if author:
        parts.append(f"By {author}")
    if date:
        parts.append(f"date {date}")
    return " · ".join(parts)


_CJK = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af"
_WORDS = re.compile(f"[{_CJK}]|[^\\s{_CJK}]*\\w[^\\s{_CJK}]*")


def _word_count(text: str) -> int:
    # Words as `wc -w` sees them (Russia's, live-broadcast: one each), except
    # scripts written without spaces, which count one word per character.
    return len(_WORDS.findall(text))


def _one_line(text: str, limit: int = 200) -> str:
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------
# The extraction
# --------------------------------------------------------------------------

_HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xml", "text/xml")
_BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b")


def _check_html(body: bytes, url: str, content_type: str | None) -> None:
    if not body or not body.strip():
        raise ExtractionError(f"empty body: {url}")
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime and mime not in _HTML_TYPES:
        raise ExtractionError(f"not HTML ({mime}): {url}")
    if body.lstrip()[:8].startswith(_BINARY_MAGIC) or body[:4096].count(b"\x00") > 16:
        raise ExtractionError(f"not HTML (binary content): {url}")


def extract_article(
    body: bytes,
    *,
    url: str,
    content_type: str | None = None,
    fetched_at: str | None = None,
    hints: dict | None = None,
    capture: dict | None = None,
    include_tables: bool = True,
    min_words: int = 10,
    favor_precision: bool = False,
    on_parsed: Callable[[Any], None] | None = None,
) -> Article:
    """Turn one HTML response body into the plain-text form and its metadata.

    `body` has its content-encoding removed. `hints` ({"title", "date"} from a
    news sitemap or feed) fill what the page does not say. Raises
    ExtractionError (one line, with the URL) when there is no article.
    `on_parsed` is called with the lxml tree as soon as the page is parsed,
    before extraction changes anything, so the caller can read the same tree
    (spiders.pagereader takes the page's links from it: one parse a page).
    """
    _check_html(body, url, content_type)
    html, charset, charset_source = _decode(body, content_type)
    if html.count("\ufffd") > max(50, len(html) // 100):
        raise ExtractionError(f"undecodable bytes (charset {charset}): {url}")
    hints = hints or {}
    try:
        tree = trafilatura.load_html(html)
        if tree is None:
            raise ExtractionError(f"not parseable as HTML: {url}")
        if on_parsed is not None:
            on_parsed(tree)
        facts = _page_facts(tree, url)
        doc = trafilatura.bare_extraction(
            tree,
            url=url,
            with_metadata=True,
            include_comments=False,
            include_tables=include_tables,
            favor_precision=favor_precision,
            date_extraction_params={"original_date": True, "extensive_search": True},
        )
    except ExtractionError:
        raise
    except Exception as exc:  # lxml/trafilatura on hostile input: a recorded error, not a crash
        raise ExtractionError(f"extraction failed ({type(exc).__name__}: {_one_line(str(exc), 120)}): {url}") from None
    if doc is None or not (doc.text or "").strip():
        raise ExtractionError(f"no article text found in {url}")

    title = _normalise_space(doc.title or "") or _normalise_space(hints.get("title") or "") or None
    author = _normalise_space((doc.author or "").replace(";", ",")) or None
    published = facts["date_published"] or (hints.get("date") or None)
    date = None
    # Declared dates (page, then news sitemap/feed) before trafilatura's
    # heuristic one, which can fall back to a footer's copyright year.
    for candidate in (facts["date_published"], hints.get("date"), doc.date):
        m = _ISO_DATE.match(candidate or "")
        if m:
            date = m.group(1)
            break

    paragraphs = _paragraphs(doc.text, title)
    body_text = "\n\n".join(paragraphs)
    words = _word_count(body_text)
    if words < min_words:
        raise ExtractionError(f"no article text found in {url} ({words} words)")

    header = [title or "(untitled)"]
    byline = _byline(author, date)
    if byline:
        header.append(byline)
    header.append(url)
    text = "\n".join(header) + "\n\n" + body_text + "\n"

    metadata = {
        "title": title,
        "author": author,
        "date": date,
        "date_published": published,
        "date_modified": facts["date_modified"],
        "url": url,
        "canonical_url": facts["canonical_url"] or (doc.url if doc.url and doc.url != url else None),
        "sitename": _normalise_space(doc.sitename or "") or doc.hostname or None,
        "language": facts["language"] or doc.language or None,
        "description": _normalise_space(doc.description or "") or None,
        "fetched_at": fetched_at,
        "capture": dict(capture) if capture else None,
        "extractor": {"name": "trafilatura", "version": EXTRACTOR_VERSION},
        "charset": charset,
        "charset_source": charset_source,
        "word_count": words,
    }
    return Article(text=text, metadata=metadata)
