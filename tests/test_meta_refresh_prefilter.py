"""The meta refresh pre-filter never hides a refresh tag Scrapy's own look-up would follow."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from scrapy.http import HtmlResponse
from scrapy.utils.response import get_meta_refresh

from spiders.redirects import may_hold_meta_refresh

TAG = '<meta http-equiv="Refresh" content="0; url=http://127.0.0.1/next">'


def page(filler: str, tag: str = TAG) -> str:
    return f"<html><head><title>t</title>{filler}{tag}</head><body>{filler}</body></html>"


def scrapy_finds_refresh(body: bytes, content_type: str) -> bool:
    response = HtmlResponse("http://127.0.0.1/", body=body, headers={"Content-Type": content_type})
    return get_meta_refresh(response)[1] is not None


ENCODINGS = ["utf-8", "windows-1252", "iso-8859-2", "shift_jis", "gb18030", "euc-kr", "koi8-r",
             "utf-16-le", "utf-16-be", "utf-16", "utf-32"]


FILLERS = ["", "x" * 3000, "é" * 1500, "字" * 1300, "Ж" * 2000]


def _writable(encoding: str, filler: str) -> bool:
    try:
        page(filler).encode(encoding)
        return True
    except UnicodeEncodeError:
        return False


@pytest.mark.parametrize("encoding,filler", [(e, f) for e in ENCODINGS for f in FILLERS if _writable(e, f)])
def test_a_refresh_scrapy_follows_is_never_filtered_out(encoding, filler):
    body = page(filler).encode(encoding)
    content_type = f"text/html; charset={encoding.replace('-le', 'le').replace('-be', 'be')}"
    assert scrapy_finds_refresh(body, content_type)  # within the 4096 characters Scrapy reads
    assert may_hold_meta_refresh(body)


def test_pages_without_refresh_are_filtered_out():
    assert not may_hold_meta_refresh(page("news " * 2000, tag="").encode("utf-8"))
    assert not may_hold_meta_refresh(page("", tag='<meta name="description" content="x">').encode("windows-1252"))


def test_a_refresh_past_what_scrapy_reads_is_filtered_out_as_scrapy_ignores_it():
    body = page("x" * 20_000).encode("utf-8")  # the tag after the first 4096 characters
    assert not scrapy_finds_refresh(body, "text/html; charset=utf-8")
    assert not may_hold_meta_refresh(body)


@settings(max_examples=300, deadline=None)
@given(filler=st.text(st.characters(blacklist_categories=("Cs",)), max_size=5000),
       encoding=st.sampled_from(["utf-8", "utf-16-le", "gb18030", "windows-1252"]))
def test_property_no_refresh_scrapy_would_follow_is_hidden(filler, encoding):
    body = page(filler).encode(encoding, errors="replace")
    content_type = f"text/html; charset={encoding}"
    if scrapy_finds_refresh(body, content_type):
        assert may_hold_meta_refresh(body)
