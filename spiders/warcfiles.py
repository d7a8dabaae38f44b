"""RotatingWarcWriter: WARC/1.1 files, one gzip member per record, rotation by size.

A file is written as SPOOL/<key>.open and renamed to SPOOL/<key> when closed,
so the spool uploader never sees a half-written file. Records are written in
groups (a request and its response, or one conversion record): a group never
spans two files, and the file is flushed after each group so a killed crawl
keeps every group it wrote. Nothing is held in memory beyond one record.

Each record is one gzip member compressed at `gzip_level` (default 6, zlib's
and gzip(1)'s own default). warcio always uses level 9, which on real news
pages costs 2.9 ms CPU a page against 1.8 ms at 6 for 0.7 % more bytes
(benchmarks/README.md): the largest single cost of the crawl process after
parsing. The records' bytes are the same whatever the level; only the
compressed members differ.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

from warcio.recordbuilder import RecordBuilder
from warcio.timeutils import iso_date_to_datetime
from warcio.warcwriter import WARCWriter

from storage import layout

WARC_VERSION = "1.1"
FORMAT = "WARC File Format 1.1"
CONFORMS_TO = "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"
DEFAULT_MAX_SIZE = 1024 ** 3
DEFAULT_GZIP_LEVEL = 6


@dataclass(frozen=True)
class Written:
    """Where one record went: the file's archive key and the gzip member's span."""

    key: str
    offset: int
    length: int
    record_id: str
    date: str


class GzipMember:
    """A file-like that compresses what is written into one gzip member, ended by flush().

    warcio writes a record to its output and flushes once at the record's end
    (as it does with its own level-9 wrapper), so each record is one member.
    """

    def __init__(self, out, level: int):
        self.out = out
        self.level = level
        self._compressor = None

    def write(self, data: bytes) -> None:
        if self._compressor is None:
            self._compressor = zlib.compressobj(self.level, zlib.DEFLATED, zlib.MAX_WBITS + 16)
        self.out.write(self._compressor.compress(data))

    def flush(self) -> None:
        if self._compressor is not None:
            self.out.write(self._compressor.flush())
            self._compressor = None
        self.out.flush()


class LeveledWARCWriter(WARCWriter):
    """warcio's WARCWriter, each record a gzip member at our compression level."""

    def __init__(self, filebuf, *, gzip_level: int = DEFAULT_GZIP_LEVEL, **kwargs):
        super().__init__(filebuf, gzip=False, **kwargs)
        self.member = GzipMember(filebuf, gzip_level)

    def write_record(self, record, params=None):
        self._write_warc_record(self.member, record)  # ends with member.flush(): the member is closed


def record_builder() -> RecordBuilder:
    """Builds records for our writers (WARC/1.1: microsecond WARC-Date)."""
    return RecordBuilder(warc_version=WARC_VERSION)


def warc_date_to_datetime(date: str) -> datetime:
    return layout.utc(iso_date_to_datetime(date))


class RotatingWarcWriter:
    """Append record groups to SPOOL/warc/SOURCE/Y/M/D/NAME(.text).warc.gz files."""

    def __init__(self, spool: str | os.PathLike, source: str, *, warcinfo: dict[str, str],
                 prefix: str | None = None, max_size: int = DEFAULT_MAX_SIZE, text: bool = False,
                 host: str | None = None, on_close: Callable[[str], None] | None = None,
                 gzip_level: int = DEFAULT_GZIP_LEVEL):
        self.spool = Path(spool)
        self.source = layout.safe_source(source)
        self.prefix = layout.safe_part(prefix or f"newsarchive-{source}")
        self.max_size = max_size
        self.text = text
        self.host = layout.safe_host_label(host)
        self.warcinfo = warcinfo
        self.on_close = on_close
        self.gzip_level = gzip_level
        self.closed_keys: list[str] = []
        self._serial = 0
        self._key: str | None = None
        self._fh = None
        self._writer: WARCWriter | None = None

    @property
    def current_key(self) -> str | None:
        return self._key

    def write_group(self, records: Iterable) -> list[Written]:
        """Write records into one file (opening one if needed); rotate after, past max_size."""
        if self._fh is None:
            self._open()
        assert self._fh is not None and self._writer is not None and self._key is not None
        written = []
        for record in records:
            start = self._fh.tell()
            self._writer.write_record(record)
            end = self._fh.tell()
            headers = record.rec_headers
            written.append(Written(self._key, start, end - start,
                                   headers.get_header("WARC-Record-ID"), headers.get_header("WARC-Date")))
        # flush per group: a killed crawl keeps every complete pair on disk
        self._fh.flush()
        # rotate after the group, never inside it: files may pass max_size by one group
        if self._fh.tell() >= self.max_size:
            self.close()
        return written

    def close(self) -> None:
        if self._fh is None:
            return
        key = self._key
        self._fh.close()
        self._fh = self._writer = None
        self._key = None
        final = self.spool / key
        os.replace(str(final) + layout.OPEN_SUFFIX, final)
        self.closed_keys.append(key)
        if self.on_close:
            self.on_close(key)

    def _open(self) -> None:
        created = layout.utc()
        self._serial += 1
        name = layout.warc_filename(self.prefix, created, self._serial, self.host, text=self.text)
        key = layout.warc_key(self.source, created, name)
        path = self.spool / (key + layout.OPEN_SUFFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        # exclusive create: two writers must never share a file
        self._fh = open(path, "xb")
        self._writer = LeveledWARCWriter(self._fh, gzip_level=self.gzip_level, warc_version=WARC_VERSION)
        self._key = key
        self._writer.write_record(self._writer.create_warcinfo_record(name, self.warcinfo))
        self._fh.flush()
