"""URL keys: storage.urls computes the `surt` library's key itself for plain URLs.

`url_key` must give exactly the key `surt.surt` gives (the catalog's keys were
written by cdxj-indexer with it): compared here on generated URLs built from
the parts that change a key (case, www, ports, dot segments, escapes, query
order, session ids, fragments, numeric hosts) and on every URL the tests and
their corpus name. `plain_surt` may leave a URL to the library (None), never
answer differently.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import surt
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.urls import URLError, normalize_input, plain_surt, url_key

HERE = Path(__file__).resolve().parent


def library_key(url: str) -> str | None:
    try:
        return surt.surt(normalize_input(url))
    except Exception:
        return None


def ours(url: str) -> str | None:
    try:
        return url_key(url)
    except URLError:
        return None


label = st.text(alphabet="abcXYZ019-_", min_size=1, max_size=6)
hosts = st.one_of(
    st.lists(label, min_size=1, max_size=4).map(".".join),
    st.tuples(st.sampled_from(["www.", "WWW.", "www2.", "www", ".", ""]), st.lists(label, min_size=1, max_size=3).map(".".join),
              st.sampled_from(["", ".", "..", ".com", ".Co.Uk"])).map("".join),
    st.lists(st.integers(0, 300).map(str), min_size=1, max_size=5).map(".".join),
    st.sampled_from(["127.0.0.1", "010.0.0.1", "0x7f.0.0.1", "2130706433", "[::1]", "user:pw@host.com", "h%41st.com",
                     "bücher.de", "host.com:", "host.com::"]),
)
ports = st.one_of(st.just(""), st.integers(0, 70000).map(lambda p: f":{p}"), st.sampled_from([":80", ":443", ":080", ":"]))
segment = st.one_of(
    st.text(alphabet="aB9-._~!$&'()*+,;=:@", max_size=6),
    st.sampled_from([".", "..", "", "%41", "%2F", "%2e", "%25", "%252F", "%zz", "%", "ü", " ", "a b", "(S(abcdefghijklmnopqrstuvwx))",
                     "page.aspx", "INDEX.HTML", "\t", "%7E", "[x]", "\\", "|", "^"]),
)
paths = st.lists(segment, max_size=5).map(lambda parts: "".join("/" + p for p in parts))
pair = st.one_of(
    st.tuples(st.text(alphabet="aBz09_-", max_size=4), st.sampled_from(["", "=", "=1", "=B", "=%41", "=%26", "=a=b"])).map("".join),
    st.sampled_from(["jsessionid=0123456789abcdef0123456789abcdef", "PHPSESSID=0123456789abcdef0123456789abcdef",
                     "sid=x", "cfid=1&cftoken=2", "ASPSESSIONIDabcdefgh=abcdefghijklmnopqrstuvwx", "q=a b", "é=ü"]),
)
queries = st.one_of(st.just(""), st.just("?"), st.lists(pair, max_size=4).map(lambda ps: "?" + "&".join(ps)))
fragments = st.sampled_from(["", "#", "#top", "#a?b=c", "#/x/../y"])
schemes = st.sampled_from(["http://", "https://", "HTTP://", "", "http://http://", "https://http://", "ftp://", "http:/"])
urls = st.tuples(schemes, hosts, ports, paths, queries, fragments).map("".join)


@settings(max_examples=4000, deadline=None)
@given(urls)
def test_url_key_is_the_surt_librarys_key(url):
    assert ours(url) == library_key(url), url


@settings(max_examples=500, deadline=None)
@given(st.tuples(st.sampled_from(["http://", "https://"]), st.lists(st.text(alphabet="abcdef", min_size=1, max_size=8),
                                                                    min_size=2, max_size=4).map(".".join),
                 st.lists(st.text(alphabet="abcXYZ0129-_.", min_size=1, max_size=10), max_size=5).map(
                     lambda parts: "".join("/" + p for p in parts)),
                 st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=3).map(lambda k: k + "=1"), max_size=3).map(
                     lambda ps: "?" + "&".join(ps) if ps else "")).map("".join))
def test_plain_urls_are_keyed_without_the_library(url):
    # the common case (a crawl's URLs) must take the fast path, or the look-up imports surt again
    assert plain_surt(normalize_input(url)) is not None, url
    assert plain_surt(normalize_input(url)) == library_key(url)


def corpus_urls() -> list[str]:
    found: set[str] = set()
    pattern = re.compile(r"https?://[^\s\"'<>\\]+")
    for path in list(HERE.glob("*.py")) + [p for p in (HERE / "data").rglob("*") if p.is_file()]:
        try:
            text = path.read_text("utf-8", errors="replace")
        except OSError:
            continue
        found.update(m.rstrip(").,;") for m in pattern.findall(text))
    return sorted(found)


def test_the_corpus_urls_have_the_librarys_keys():
    names = corpus_urls()
    assert len(names) > 200
    fast = 0
    for url in names:
        assert ours(url) == library_key(url), url
        fast += plain_surt(normalize_input(url)) is not None
    assert fast > len(names) * 0.8  # most real URLs never need the library


@pytest.mark.parametrize("url, key", [
    ("http://www.Example.com/A/b/?z=1&a=2#x", "com,example)/a/b?a=2&z=1"),
    ("https://example.com:443/", "com,example)/"),
    ("http://example.com:8080", "com,example:8080)/"),
    ("example.com/a/../b/./c//d/", "com,example)/b/c/d"),
    ("http://x.com/%7Efoo/%2541", "com,x)/~foo/a"),
])
def test_known_keys(url, key):
    assert url_key(url) == key == library_key(url)


def test_a_url_the_library_cannot_read_is_one_bad_input():
    with pytest.raises(URLError):
        url_key("http://host.com:99999/")
