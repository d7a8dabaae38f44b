"""URL keys: the SURT canonical form that pywb and cdxj-indexer sort by.

One URL key per page however it was written: scheme, ``www.``, a default port,
a fragment, letter case and the order of query parameters do not split a URL's
captures. Search ranges follow pywb's CDX server (exact, prefix, host, domain).
"""

from __future__ import annotations

import re
from urllib.parse import quote_from_bytes, unquote_to_bytes

from storage.errors import BadInput

MATCH_TYPES = ("exact", "prefix", "host", "domain")

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_COLLAPSED = re.compile(r"^(https?):/(?!/)", re.IGNORECASE)


class URLError(BadInput):
    """A URL that cannot be turned into a key (one-line message)."""


def normalize_input(url: str) -> str:
    """A URL as a user or HTTP path gives it: trimmed, with a scheme, and with the
    ``http:/host`` that some proxies collapse from ``http://host`` repaired."""
    url = (url or "").strip()
    if not url:
        raise URLError("empty URL")
    url = _COLLAPSED.sub(lambda m: m.group(1) + "://", url)
    if not _SCHEME.match(url) or url.split(":", 1)[0].lower() not in ("http", "https"):
        if "://" not in url:
            url = "http://" + url
    return url


def url_key(url: str) -> str:
    """The SURT key of a URL, e.g. ``com,example)/news/a?x=1&y=2``."""
    url = normalize_input(url)
    key = plain_surt(url)
    if key is not None:
        return key
    try:
        import surt  # ~0.3 s to import (tldextract, requests): only for URLs plain_surt leaves to it

        return surt.surt(url)
    except Exception as exc:  # surt raises assorted errors on garbage
        raise URLError(f"not a URL: {url!r} ({exc})") from None


# plain_surt: the `surt` library's key (its default canonicalizers: Google's, then the
# Internet Archive's) for the URLs a crawl archives, computed without importing it.
# It answers only where each step is certain: an http(s) URL with a host name of
# letters, digits, dots, '-' and '_' (or a plain dotted-quad address), an optional
# port, no user info, and no session-id look-alike in path or query; for anything
# else it returns None and url_key asks the library. tests/test_urls.py compares
# the two on generated URLs and the test corpus.
_SPLIT = re.compile(rb"^([a-zA-Z][a-zA-Z0-9+.-]*):(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#.*)?$", re.S)
_NETLOC = re.compile(rb"^([A-Za-z0-9._-]+)(?::([0-9]{1,5}))?:*$")
_NUMERIC_HOST = re.compile(rb"^[0-9.]+$")
_DOTTED_QUAD = re.compile(rb"^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])\.){3}"
                          rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$")
_WWW = re.compile(rb"^www[0-9]*\.")
_MULTIPLE_SCHEMES = re.compile(rb"^(?:https?://){2,}")
# every printable ASCII character but '#' and '%' stays as it is; the rest is %XX
_KEEP = bytes(range(0x21, 0x7F)).replace(b"#", b"").replace(b"%", b"")
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_SESSION_HINTS = (b"jsessionid=", b"phpsessid=", b"sid=", b"aspsessionid", b"cfid=")


def _unescaped(data: bytes) -> bytes:
    while True:  # %2541 -> %41 -> A: until nothing changes
        once = unquote_to_bytes(data)
        if once == data:
            return data
        data = once


def _escaped(data: bytes) -> bytes:
    return quote_from_bytes(data, safe=_KEEP).encode("ascii") if data else data


def _normal_path(path: bytes) -> bytes:
    """'.' segments dropped, '..' takes one back (kept at the root), empty inner segments
    dropped, the last segment kept as it is (so a trailing '/' stays)."""
    if not path:
        return b"/"
    kept: list[bytes] = []
    for segment in path.split(b"/")[1:]:
        if segment == b".":
            continue
        if segment == b".." and kept:
            kept.pop()
        else:
            kept.append(segment)
    if not kept:
        return b"/"
    return b"/" + b"".join(s + b"/" for s in kept[:-1] if s) + kept[-1]


def _sorted_query(query: bytes) -> bytes:
    pairs = sorted(tuple(arg.split(b"=", 1)) for arg in query.split(b"&"))
    return b"&".join(b"=".join(pair) for pair in pairs)


def plain_surt(url: str) -> str | None:
    """The SURT key `surt.surt(url)` gives, or None where this function is not certain."""
    try:
        data = re.sub(rb"[\n\r\t]", b"", url.encode("utf-8").strip())
    except UnicodeEncodeError:  # lone surrogates: the library says what is wrong
        return None
    if not data or data.startswith(b"filedesc") or _MULTIPLE_SCHEMES.match(data):
        return None
    m = _SPLIT.match(data)
    if m is None or m.group(1) not in _DEFAULT_PORTS or m.group(2) is None:
        return None
    scheme, netloc, path, query = m.group(1), m.group(2), m.group(3), m.group(4)
    n = _NETLOC.match(netloc)
    if n is None:
        return None
    host, port = n.group(1).lower(), n.group(2)
    port_number = int(port) if port else None
    if port_number is not None and not 0 < port_number <= 65535:
        return None
    host = host.replace(b"..", b".").strip(b".")
    if not host or (_NUMERIC_HOST.match(host) and not _DOTTED_QUAD.match(host)):
        return None  # surt reads other numeric forms (octal, one number) as addresses
    www = _WWW.match(host)
    if www:
        host = host[www.end():]
        if not host:
            return None
    path = _escaped(_normal_path(_unescaped(path))).lower()
    if b"(" in path and b".aspx" in path:
        return None  # a path session id (ASP.NET cookieless) may be stripped
    if path.endswith(b"/") and len(path) > 1:
        path = path[:-1]
    if query:
        query = _escaped(_unescaped(query)).lower()
        if any(hint in query for hint in _SESSION_HINTS):
            return None
        query = _sorted_query(query)
    key = b",".join(reversed(host.split(b".")))
    if port_number is not None and port_number != _DEFAULT_PORTS[scheme]:
        key += b":%d" % port_number
    key += b")" + path
    if query:
        key += b"?" + query
    return key.decode("utf-8")


def _inc_last_char(text: str) -> str:
    return text[:-1] + chr(ord(text[-1]) + 1)


def search_range(url: str, match_type: str = "exact") -> tuple[str, str]:
    """``(start, end)`` so that keys ``start <= key < end`` match (pywb's rules).

    ``url`` may carry pywb's shorthands: ``example.com/path/*`` for a prefix
    search and ``*.example.com`` for a domain search.
    """
    url = (url or "").strip()
    if url.endswith("*") and not url.startswith("*."):
        url, match_type = url[:-1], "prefix"
    elif url.startswith("*."):
        url, match_type = url[2:], "domain"
    if match_type not in MATCH_TYPES:
        raise URLError(f"matchType must be one of {', '.join(MATCH_TYPES)}: {match_type!r}")
    start = url_key(url)
    if match_type == "exact":
        return start, start + "!"
    if match_type == "prefix":
        if url.endswith("/") and not start.endswith("/"):
            start += "/"
        return start, _inc_last_char(start)
    host = start.split(")/", 1)[0]
    if match_type == "host":
        return host + ")/", host + "*"
    # domain: the host and every subdomain (com,example)/ ... com,example,www)/ ...)
    if "," not in host:
        return host + ",", host + "-"
    return host + ")/", host + "-"
