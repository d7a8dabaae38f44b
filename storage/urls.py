"""URL keys: the SURT canonical form that pywb and cdxj-indexer sort by.

One URL key per page however it was written: scheme, ``www.``, a default port,
a fragment, letter case and the order of query parameters do not split a URL's
captures. Search ranges follow pywb's CDX server (exact, prefix, host, domain).
"""

from __future__ import annotations

import re

import surt

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
    try:
        return surt.surt(normalize_input(url))
    except URLError:
        raise
    except Exception as exc:  # surt raises assorted errors on garbage
        raise URLError(f"not a URL: {url!r} ({exc})") from None


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
