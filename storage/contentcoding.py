"""Content-Encoding removed in bounded, streaming steps: no body decodes past a limit.

The codecs every reader of the archive shares: the crawl (spiders.decoding's
middleware, spiders.feeds, spiders.reextract) and `get --as html`
(storage.archive). Every coding (gzip, deflate, br, zstd, nested in any order)
is decoded chunk by chunk and stops as soon as the output passes the limit
given: a few hundred KB of gzip a hostile site sent may decode to gigabytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from importlib.util import find_spec

from storage.errors import PageError


# brotli and zstd are imported when a body needs them (backports.zstd alone costs ~7 ms,
# which a look-up of a gzip or plain page should not pay); find_spec only looks.
def _has(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ImportError:  # pragma: no cover - a parent package missing
        return False


def _zstd():
    try:
        from compression import zstd  # Python 3.14
    except ImportError:
        from backports import zstd
    return zstd


class _LibraryError(Exception):
    """brotli's or zstd's own error, raised again under a type this module can name
    before it has imported either library (the message and type name are kept)."""

    def __init__(self, exc: BaseException):
        super().__init__(str(exc))
        self.kind = type(exc).__name__

    def __str__(self) -> str:
        return self.args[0] or self.kind

CHUNK = 64 * 1024


class DecodeError(PageError):
    """Not valid data for its Content-Encoding (nothing could be decoded)."""


class DecodedTooLarge(PageError):
    """The decoded body passed the limit; decoding stopped there."""

    def __init__(self, limit: int, codings: list[str]):
        super().__init__(f"decodes to more than {limit} bytes ({', '.join(codings)})")
        self.limit = limit
        self.codings = codings


def _slices(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start:start + CHUNK]


def _gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """gzip, several members in a row included; a truncated stream yields what it holds."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for chunk in chunks:
        while chunk:
            out = d.decompress(chunk, CHUNK)
            chunk = d.unconsumed_tail
            if out:
                yield out
            if d.eof:
                rest = d.unused_data
                if rest[:2] != b"\x1f\x8b":
                    return  # trailing garbage after the last member: ignored, as browsers do
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                chunk = rest
    tail = d.flush()
    if tail:
        yield tail
    elif not d.eof and not d.unused_data:
        raise EOFError("the gzip stream ends early")  # a DecodeError if nothing came out at all


def _inflate(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """deflate: zlib-wrapped as the RFC says, or raw as some servers send it."""
    d = None
    for chunk in chunks:
        if d is None:
            d = zlib.decompressobj()
            try:
                d.decompress(chunk[:2], 0)  # a zlib header? otherwise raw deflate
                d = zlib.decompressobj()
            except zlib.error:
                d = zlib.decompressobj(-zlib.MAX_WBITS)
        while chunk and not d.eof:
            out = d.decompress(chunk, CHUNK)
            chunk = d.unconsumed_tail
            if out:
                yield out
        if d.eof:
            return
    if d is not None:
        tail = d.flush()
        if tail:
            yield tail
        elif not d.eof:
            raise EOFError("the deflate stream ends early")


def _unbrotli(chunks: Iterable[bytes]) -> Iterator[bytes]:
    import brotli

    try:
        yield from _unbrotli_with(brotli, chunks)
    except brotli.error as exc:
        raise _LibraryError(exc) from None


def _unbrotli_with(brotli, chunks: Iterable[bytes]) -> Iterator[bytes]:
    d = brotli.Decompressor()
    for chunk in chunks:
        out = d.process(chunk, output_buffer_limit=CHUNK)
        if out:
            yield out
        while not d.can_accept_more_data() and not d.is_finished():
            out = d.process(b"", output_buffer_limit=CHUNK)
            if not out:
                break
            yield out
        if d.is_finished():
            return
    raise EOFError("the brotli stream ends early")


def _unzstd(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """zstd, several frames in a row included."""
    zstd = _zstd()
    try:
        yield from _unzstd_with(zstd, chunks)
    except zstd.ZstdError as exc:
        raise _LibraryError(exc) from None


def _unzstd_with(zstd, chunks: Iterable[bytes]) -> Iterator[bytes]:
    d = zstd.ZstdDecompressor()
    for chunk in chunks:
        data = chunk
        while True:
            if d.eof:
                data = d.unused_data + data
                if not data:
                    break
                d = zstd.ZstdDecompressor()
            out = d.decompress(data, CHUNK)
            data = b""
            if out:
                yield out
            if d.needs_input and not d.eof:
                break
    if not d.eof:
        raise EOFError("the zstd stream ends early")


DECODERS = {"gzip": _gunzip, "x-gzip": _gunzip, "deflate": _inflate}
if _has("brotli"):
    DECODERS["br"] = _unbrotli
if _has("compression.zstd") or _has("backports.zstd"):
    DECODERS["zstd"] = _unzstd
# Asked for: only what every reader of the archive decodes too. warcio 1.8 reads
# gzip and deflate; it fails on br with the brotli 1.2 Scrapy needs and leaves zstd
# encoded, so replay and re-extraction could not read such records. br and zstd
# bodies sent unasked are still decoded here (bounded) and archived as received.
ACCEPT_ENCODING = "gzip, deflate"
_DECODE_ERRORS = (zlib.error, EOFError, _LibraryError)


def split_codings(values: Iterable[bytes | str]) -> tuple[list[str], list[str]]:
    """(codings to remove, outermost first; codings kept) from Content-Encoding header values.

    Codings apply in the order listed, so they come off from the last one; an
    unknown coding stops the decoding there (what is under it stays encoded).
    """
    listed = []
    for value in values:
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        listed += [c.strip().lower() for c in text.split(",") if c.strip() and c.strip().lower() != "identity"]
    to_decode = []
    while listed and listed[-1] in DECODERS:
        to_decode.append(listed.pop())
    return to_decode, listed


def _bounded(chunks: Iterator[bytes], limit: int, codings: list[str]) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise DecodedTooLarge(limit, codings)
        yield chunk


def decoded_chunks(body: bytes, codings: list[str], max_bytes: int) -> Iterator[bytes]:
    """`body` with `codings` (outermost first) removed, as a stream of chunks.

    Raises DecodedTooLarge once the output passes `max_bytes` (at every step:
    a nested coding is bounded too), DecodeError when not a byte decodes; a
    damaged tail after some output just ends the stream, as in browsers and Scrapy.
    """
    if not body:
        return  # an empty body (a 3xx, a 204) is empty in any coding
    stream: Iterator[bytes] = _slices(body)
    for coding in codings:
        stream = _bounded(DECODERS[coding](stream), max_bytes, codings)
    if not codings:
        stream = _bounded(stream, max_bytes, codings)
    produced = False
    try:
        for chunk in stream:
            produced = True
            yield chunk
    except _DECODE_ERRORS as exc:
        if not produced:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise DecodeError(f"not valid {'+'.join(codings)} data ({reason})") from None


def decode(body: bytes, codings: list[str], max_bytes: int) -> bytes:
    """`body` with `codings` (outermost first) removed, at most `max_bytes` of it (see decoded_chunks)."""
    return b"".join(decoded_chunks(body, codings, max_bytes))
