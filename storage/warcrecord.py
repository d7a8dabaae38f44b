"""One WARC record read from its bytes (one gzip member), without warcio.

A look-up reads exactly one record; warcio costs ~0.1 s to import (its package
imports fsspec and asyncio), more than the read itself. `read_record` parses
the records a crawl writes: a complete gzip member holding a WARC/1.0 or
WARC/1.1 record whose header lines are UTF-8 `Name: value` lines, and for
HTTP records an HTTP head of the same kind (its status line taken as it is,
as warcio's ArchiveIterator does). It gives what
warcio's ArchiveIterator gives for them (record type, WARC headers, HTTP
status line and headers, the payload bytes after the HTTP head, limited to
Content-Length). Anything else (folded or nameless header lines, other
encodings, another WARC version, a member cut short, a Target-URI warcio
would rewrite) it does not guess at: `parse_record` hands those to warcio.
tests/test_warcrecord.py compares the two on the records the tests write.
"""

from __future__ import annotations

import io
import re
import zlib

_WARC_VERSIONS = ("WARC/1.0", "WARC/1.1")
_HTTP_RECORDS = ("response", "request", "revisit")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,8})(?:;[^\r\n]*)?\r\n")


class _Unsure(Exception):
    """A shape this reader does not parse itself."""


class Headers:
    """A status line and header lines (warcio's StatusAndHeaders, as far as we read it)."""

    def __init__(self, protocol: str, statusline: str, headers: list[tuple[str, str]]):
        self.protocol = protocol
        self.statusline = statusline  # after the protocol: "200 OK"
        self.headers = headers

    def get_header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return default


class Record:
    def __init__(self, rec_type: str | None, rec_headers: Headers, http_headers: Headers | None, raw: bytes,
                 data: bytes = b""):
        self.rec_type = rec_type
        self.rec_headers = rec_headers
        self.http_headers = http_headers
        self.raw = raw  # the payload as stored: the block after the HTTP head (if any)
        self.data = data  # the gzip member it was read from

    def content(self) -> bytes:
        """What warcio's content_stream() reads: the block, or for an HTTP record its
        payload with the content-coding warcio knows removed (read by warcio)."""
        if self.http_headers is None:
            return self.raw
        from warcio.archiveiterator import ArchiveIterator

        for rec in ArchiveIterator(io.BytesIO(self.data)):
            return rec.content_stream().read()
        return b""


def _head(block: bytes, start: int, versions: tuple[str, ...] | None) -> tuple[Headers, int]:
    """The status line and header lines at ``start``; and where the block after them begins.
    ``versions``: the protocols the status line must start with (warcio checks WARC's), or
    None for HTTP, whose status line warcio's ArchiveIterator takes as it is."""
    lines: list[str] = []
    pos = start
    while True:
        end = block.find(b"\n", pos)
        end = len(block) if end < 0 else end + 1
        if end == pos:
            if not lines:
                raise EOFError  # nothing at all: warcio's own EOF case
            break  # the block ended before the blank line: warcio stops there too
        try:
            line = block[pos:end].decode("utf-8").rstrip()
        except UnicodeDecodeError:
            raise _Unsure("a header line that is not UTF-8") from None
        pos = end
        if not line:
            if not lines:
                raise _Unsure("an empty status line")
            break
        lines.append(line)
    status = lines[0]
    if versions is None:
        protocol, space, rest = status.partition(" ")
        if not space:
            raise _Unsure("a status line of one word")
        status_text = rest.strip()
    else:
        protocol, status_text = status[:8].upper(), status[8:].strip()
        if not status[:8].isascii() or protocol not in versions:
            raise _Unsure(f"status line {status[:20]!r}")
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") or ":" not in line:
            raise _Unsure("a folded or nameless header line")
        name, value = line.split(":", 1)
        headers.append((name.rstrip(" \t"), value.lstrip()))
    return Headers(protocol, status_text, headers), pos


def read_record(data: bytes) -> Record:
    """The record in ``data`` (one gzip member); raises _Unsure for what warcio must read."""
    if data[:2] != b"\x1f\x8b":
        raise _Unsure("not gzip")
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        block = inflate.decompress(data)
    except zlib.error:
        raise _Unsure("damaged gzip") from None
    if not inflate.eof or inflate.unused_data:
        raise _Unsure("not exactly one gzip member")
    try:
        warc, start = _head(block, 0, _WARC_VERSIONS)
    except EOFError:
        raise _Unsure("an empty member") from None
    rec_type = warc.get_header("WARC-Type")
    uri = warc.get_header("WARC-Target-URI")
    length = warc.get_header("Content-Length")
    if length is None or not (length.isascii() and length.isdigit()):
        raise _Unsure("no plain Content-Length")
    if uri is not None and (uri.startswith("<") or " " in uri):
        raise _Unsure("a Target-URI warcio rewrites")
    content = block[start:start + int(length)]
    http = None
    if content and rec_type in _HTTP_RECORDS:
        if uri is None:
            raise _Unsure("an HTTP record without a Target-URI")
        if uri.startswith(("http:", "https:")):
            if rec_type == "request":
                raise _Unsure("request records are not read here")  # never looked up
            http, start = _head(content, 0, None)
            content = content[start:]
    return Record(rec_type, warc, http, content, data)


def parse_record(data: bytes):
    """The record in ``data``: ours when read_record is sure of it, else warcio's
    (adapted to the same attributes). Raises whatever warcio raises on damage."""
    try:
        return read_record(data)
    except _Unsure:
        pass
    from warcio.archiveiterator import ArchiveIterator

    for rec in ArchiveIterator(io.BytesIO(data)):
        return _WarcioRecord(rec, data)
    return None


class _WarcioRecord(Record):
    """warcio's record, with Record's attributes."""

    def __init__(self, rec, data: bytes):
        super().__init__(rec.rec_type, rec.rec_headers, rec.http_headers, rec.raw_stream.read(), data)


def dechunked(raw: bytes) -> bytes:
    """``raw`` without its chunked transfer-coding, as warcio's ChunkedDataReader (raising on
    errors) reads it; as it was when it is not really chunked."""
    out, pos = [], 0
    while True:
        m = _CHUNK_SIZE.match(raw, pos)
        if m is None or m.end() - pos > 64:
            return _dechunked_by_warcio(raw)
        size = int(m.group(1), 16)
        pos = m.end()
        if size == 0:
            if raw[pos:pos + 2] != b"\r\n":
                return _dechunked_by_warcio(raw)
            return b"".join(out)
        if size > 2 ** 31 or pos + size + 2 > len(raw) or raw[pos + size:pos + size + 2] != b"\r\n":
            return _dechunked_by_warcio(raw)
        out.append(raw[pos:pos + size])
        pos += size + 2


def _dechunked_by_warcio(raw: bytes) -> bytes:
    from warcio.bufferedreaders import ChunkedDataReader

    try:
        return ChunkedDataReader(io.BytesIO(raw), raise_exceptions=True).read()
    except Exception:
        return raw
