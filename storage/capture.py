"""One type for a capture everywhere: the index, the catalog, retrieval and the server.

A `Capture` is one archived HTTP response (or a revisit record standing for
one): where its record lives (WARC key, offset, length) and what the index
says of it. A `TextRecord` is the `conversion` record holding the clean text
of a capture. Field names are defined here once; `list --json`, the CDX
server and the catalog all read them from these classes.
"""

from __future__ import annotations

from storage.times import timestamp_to_datetime, timestamp_to_http_date, timestamp_to_iso_date
from storage.values import Value

REVISIT_MIME = "warc/revisit"

# `list --json`: the contract fields in this order (README), then record_id.
CONTRACT_FIELDS = ("timestamp", "url", "status", "mime", "digest", "warc", "offset", "length", "text")

# The Wayback CDX server's default fields, in its order (and pywb's).
CDX_FIELDS = ("urlkey", "timestamp", "url", "mime", "status", "digest", "length", "offset", "filename")


class Capture(Value):
    """Immutable (storage/values.py). Fields, in order:

    urlkey      str   SURT key (storage.urls.url_key)
    timestamp   str   14 digits, UTC (the record's WARC-Date)
    url         str
    status      int | None   HTTP status; None for records without one
    mime        str | None   Content-Type's media type, or warc/revisit
    digest      str | None   payload digest, as in WARC-Payload-Digest
    warc        str   archive key of the WARC file
    offset      int   of the record's gzip member in the file
    length      int   of that member
    record_id   str | None = None   WARC-Record-ID
    source      str | None = None   the source whose crawl made it
    text        bool = False        clean text exists (for a revisit: its original's)
    warc_date   str | None = None   the record's WARC-Date exactly (None in indexes made before it was kept)
    """

    __slots__ = ("urlkey", "timestamp", "url", "status", "mime", "digest", "warc", "offset", "length",
                 "record_id", "source", "text", "warc_date")
    DEFAULTS = {"record_id": None, "source": None, "text": False, "warc_date": None}

    @property
    def is_revisit(self) -> bool:
        return self.mime == REVISIT_MIME

    @property
    def datetime(self):
        return timestamp_to_datetime(self.timestamp, tz_aware=True)

    @property
    def http_date(self) -> str:
        return timestamp_to_http_date(self.timestamp)

    @property
    def iso_date(self) -> str:
        return timestamp_to_iso_date(self.timestamp)

    def as_json(self) -> dict:
        """The capture as `list --json` prints it: the contract fields, then record_id."""
        out = {name: getattr(self, name) for name in CONTRACT_FIELDS}
        out["record_id"] = self.record_id
        return out

    def cdx_fields(self) -> dict[str, str]:
        """The capture in the CDX server's dialect: every field a string, '-' when unknown."""
        return {
            "urlkey": self.urlkey,
            "timestamp": self.timestamp,
            "url": self.url,
            "mime": self.mime or "-",
            "status": str(self.status) if self.status is not None else "-",
            "digest": self.digest or "-",
            "length": str(self.length),
            "offset": str(self.offset),
            "filename": self.warc,
        }

    def with_text(self, text: bool) -> "Capture":
        return self.replace(text=text)


class TextRecord(Value):
    """A `conversion` record: the clean text of the capture whose record it refers to.

    refers_to (WARC-Record-ID of the response record), record_id, url, timestamp,
    digest, warc (archive key of the text WARC), offset, length.
    """

    __slots__ = ("refers_to", "record_id", "url", "timestamp", "digest", "warc", "offset", "length")


def field_names(cls) -> tuple[str, ...]:
    return cls.field_names()


def as_dict(record) -> dict:
    return record.as_dict()
