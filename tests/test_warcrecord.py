"""storage/warcrecord.py reads a record as warcio does, or leaves it to warcio.

Compared on every record of a real crawl's WARCs (the test news site crawled
into a folder, revisits included), on hand-made records of the shapes the
direct reader must not guess at, and on chunked bodies (hypothesis).
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import ChunkedDataReader

from storage.warcrecord import _Unsure, dechunked, parse_record, read_record


def warcio_view(data: bytes):
    """What Archive used to take from warcio for a record: type, headers, HTTP head, payload."""
    for rec in ArchiveIterator(io.BytesIO(data)):
        http = rec.http_headers
        return (rec.rec_type, list(rec.rec_headers.headers),
                None if http is None else (http.protocol, http.statusline, list(http.headers)),
                rec.raw_stream.read())
    return None


def our_view(rec):
    http = rec.http_headers
    return (rec.rec_type, list(rec.rec_headers.headers),
            None if http is None else (http.protocol, http.statusline, list(http.headers)), rec.raw)


def members(path: Path):
    """(offset, length) of each record's gzip member, as the index has them."""
    with open(path, "rb") as fh:
        it = ArchiveIterator(fh)
        for rec in it:
            rec.raw_stream.read()
            yield it.get_record_offset(), it.get_record_length()


def test_every_record_of_a_crawl_reads_as_warcio_reads_it(crawled_folder):
    warcs = sorted(crawled_folder["archive"].rglob("*.warc.gz"))
    assert warcs
    direct, kinds = 0, set()
    for path in warcs:
        blob = path.read_bytes()
        for offset, length in members(path):
            data = blob[offset:offset + length]
            expected = warcio_view(data)
            assert our_view(parse_record(data)) == expected, (path.name, offset)
            try:
                read_record(data)
                direct += 1
                kinds.add(expected[0])
            except _Unsure:
                pass
    # responses, revisits and conversion records (what get reads) take the direct way
    assert {"response", "revisit", "conversion"} <= kinds, kinds
    assert direct > 100


def gz(data: bytes) -> bytes:
    return gzip.compress(data, 6)


def record(headers: bytes, block: bytes, *, length: int | None = None, version: bytes = b"WARC/1.1") -> bytes:
    declared = len(block) if length is None else length
    return (version + b"\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.com/a\r\n"
            + headers + b"Content-Length: " + str(declared).encode() + b"\r\n\r\n" + block + b"\r\n\r\n")


HTTP = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"

SHAPES = {
    "plain": gz(record(b"", HTTP)),
    "folded http header": gz(record(b"", b"HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nContent-Length: 5\r\n\r\nhello")),
    "nameless http line": gz(record(b"", b"HTTP/1.1 200 OK\r\nnonsense\r\nContent-Length: 5\r\n\r\nhello")),
    "latin-1 http header": gz(record(b"", b"HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\n\r\nhello")),
    "bare LF": gz(record(b"", b"HTTP/1.1 200 OK\nContent-Type: text/html\n\nhello")),
    "HTTP/2 status": gz(record(b"", b"HTTP/2 200\r\n\r\nhello")),
    "lower-case protocol": gz(record(b"", b"http/1.1 404 Not Found\r\n\r\n")),
    "no HTTP head end": gz(record(b"", b"HTTP/1.1 200 OK\r\nContent-Type: text/html")),
    "trailing spaces": gz(record(b"WARC-X: y  \t\r\n", b"HTTP/1.1 200 OK  \r\nA:   b  \r\n\r\nhello")),
    "short block": gz(record(b"", HTTP, length=len(HTTP) + 50)),
    "long length": gz(record(b"", HTTP, length=10)),
    "no content length": gz(b"WARC/1.1\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.com/a\r\n\r\n" + HTTP),
    "odd content length": gz(record(b"", HTTP).replace(b"Content-Length: ", b"Content-Length: +", 1)),
    "angle-bracket uri": gz(record(b"", HTTP).replace(b"http://example.com/a", b"<http://example.com/a>")),
    "uri with a space": gz(record(b"", HTTP).replace(b"http://example.com/a", b"http://example.com/a b")),
    "dns uri": gz(record(b"", HTTP).replace(b"http://example.com/a", b"dns:example.com")),
    "WARC/1.0": gz(record(b"", HTTP, version=b"WARC/1.0")),
    "WARC/0.18": gz(record(b"", HTTP, version=b"WARC/0.18")),
    "conversion": gz(record(b"", b"clean text\n").replace(b"response", b"conversion", 1)),
    "empty revisit": gz(record(b"", b"").replace(b"response", b"revisit", 1)),
    "not gzip": record(b"", HTTP),
    "two members": gz(record(b"", HTTP)) + gz(record(b"", HTTP)),
    "cut member": gz(record(b"", HTTP))[:-12],
    "folded warc header": gz(record(b"WARC-X: a\r\n b\r\n", HTTP)),
    "latin-1 warc header": gz(record(b"WARC-X: \xe9\r\n", HTTP)),
}


def outcome(read):
    try:
        return "ok", read()
    except Exception as exc:  # noqa: BLE001 - both sides must fail alike
        return "error", type(exc).__name__


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_unusual_records_read_as_warcio_reads_them(shape):
    data = SHAPES[shape]
    ours = outcome(lambda: our_view(parse_record(data)))
    theirs = outcome(lambda: warcio_view(data))
    if theirs[0] == "error":
        assert ours[0] == "error", (shape, ours)
    else:
        assert ours == theirs, shape


def test_the_common_shapes_are_read_without_warcio():
    for shape in ("plain", "bare LF", "trailing spaces", "short block", "long length", "WARC/1.0", "conversion",
                  "empty revisit", "lower-case protocol", "dns uri"):
        read_record(SHAPES[shape])  # raises _Unsure if it would hand them to warcio


def chunked_body(chunks: list[bytes], extension: bool, ending: bytes) -> bytes:
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(c), b";x=1" if extension else b"", c) for c in chunks if c)
    return out + ending


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=5), st.booleans(),
       st.sampled_from([b"0\r\n\r\n", b"0\r\n", b"0\r\nTrailer: x\r\n\r\n", b"", b"zz\r\n", b"5\r\nab"]),
       st.sampled_from([b"", b"garbage", b"\r\n"]))
def test_dechunked_is_warcios_dechunking(chunks, extension, ending, prefix):
    raw = prefix + chunked_body(chunks, extension, ending)
    try:
        expected = ChunkedDataReader(io.BytesIO(raw), raise_exceptions=True).read()
    except Exception:
        expected = raw
    assert dechunked(raw) == expected


def test_a_record_warcio_reads_gets_the_same_content():
    text = gz(record(b"", b"clean text\n").replace(b"response", b"conversion", 1))
    assert parse_record(text).content() == b"clean text\n"
    body = zlib.compress(b"hello")
    coded = gz(record(b"", b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\n\r\n" + body))
    theirs = next(iter(ArchiveIterator(io.BytesIO(coded)))).content_stream().read()
    assert parse_record(coded).content() == theirs == b"hello"
