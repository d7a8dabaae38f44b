"""Archive keys: where each kind of file lives, built only from safe parts.

The same relative keys are used in the local spool and in the archive (folder
or bucket), so uploading is copying a file to its own path. No key is ever
built from raw URL text: URLs become a hash, names are checked against a
strict alphabet, so nothing can escape the archive root.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from storage.errors import BadInput
from storage.times import datetime_to_timestamp

SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

OPEN_SUFFIX = ".open"  # a file still being written; never uploaded

KINDS = ("warc", "indexes", "articles", "runs")


class UnsafeKeyError(BadInput):
    """A key part that could escape the archive root or is not a plain name."""


def safe_part(part: str) -> str:
    if not SAFE_PART.match(part) or ".." in part:
        raise UnsafeKeyError(f"unsafe name in archive key: {part!r}")
    return part


def safe_source(name: str) -> str:
    if not SOURCE_NAME.match(name):
        raise UnsafeKeyError(f"source name must match [a-z0-9-]+: {name!r}")
    return name


def safe_host_label(host: str | None = None) -> str:
    """This machine's host name reduced to the safe alphabet (for WARC file names)."""
    if not host:
        import socket  # only to name a new file: a read never needs it

        host = socket.gethostname() or "localhost"
    label = re.sub(r"[^A-Za-z0-9.-]+", "-", host).strip(".-") or "localhost"
    return label[:63]


def utc(when: datetime | None = None) -> datetime:
    when = when or datetime.now(timezone.utc)
    return when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)


def date_folder(when: datetime) -> str:
    when = utc(when)
    return f"{when:%Y/%m/%d}"


def warc_timestamp(when: datetime | None = None) -> str:
    """14-digit WARC/CDX timestamp, UTC."""
    return datetime_to_timestamp(utc(when))


def file_timestamp(when: datetime | None = None) -> str:
    """17-digit timestamp (with milliseconds) used in WARC file names."""
    when = utc(when)
    return f"{when:%Y%m%d%H%M%S}{when.microsecond // 1000:03d}"


def url_hash(url: str) -> str:
    import hashlib  # here: a look-up of a page's HTML never names an article file

    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:16]


def warc_filename(prefix: str, created: datetime, serial: int, host: str, text: bool = False) -> str:
    """PREFIX-TIMESTAMP-SERIAL-HOST.warc.gz (or .text.warc.gz for text WARCs)."""
    suffix = ".text.warc.gz" if text else ".warc.gz"
    return safe_part(f"{prefix}-{file_timestamp(created)}-{serial:05d}-{host}{suffix}")


def warc_key(source: str, created: datetime, filename: str) -> str:
    return f"warc/{safe_source(source)}/{date_folder(created)}/{safe_part(filename)}"


def index_key(warc_key_: str) -> str:
    """The CDXJ index that sits beside a WARC: indexes/SOURCE/Y/M/D/NAME.cdxj."""
    parts = warc_key_.split("/")
    if len(parts) != 6 or parts[0] != "warc":
        raise UnsafeKeyError(f"not a WARC key: {warc_key_!r}")
    source, y, m, d, name = parts[1:]
    return f"indexes/{safe_source(source)}/{y}/{m}/{d}/{safe_part(name)}.cdxj"


def article_key(source: str, fetched: datetime, url: str, ext: str) -> str:
    if ext not in ("txt", "json"):
        raise UnsafeKeyError(f"article files are .txt or .json, not {ext!r}")
    name = f"{warc_timestamp(fetched)}-{url_hash(url)}.{ext}"
    return f"articles/{safe_source(source)}/{date_folder(fetched)}/{name}"


def run_key(source: str, started: datetime, run_id: str) -> str:
    return f"runs/{safe_source(source)}/{date_folder(started)}/{safe_part(run_id)}.json"


def check_key(key: str) -> str:
    """Validate a relative key from anywhere (listing, manifest): plain parts only."""
    parts = key.split("/")
    if not parts or parts[0] not in KINDS:
        raise UnsafeKeyError(f"unknown archive key: {key!r}")
    for part in parts:
        safe_part(part)
    return key


def check_prefix(prefix: str) -> str:
    """Validate a listing prefix: "" (everything), or the start of a key.

    The last part may be partial ("warc/news/2024/0"), the others must be
    plain parts, so a prefix can never point above the archive root.
    """
    if prefix == "":
        return prefix
    parts = prefix.split("/")
    if parts[0] not in KINDS and not (len(parts) == 1 and any(k.startswith(parts[0]) for k in KINDS)):
        raise UnsafeKeyError(f"unknown archive key prefix: {prefix!r}")
    for part in parts[:-1]:
        safe_part(part)
    if parts[-1]:
        safe_part(parts[-1])
    return prefix


def kind_of(key: str) -> str:
    """What an archive key holds: warc, text-warc, index, text, metadata or run."""
    top = check_key(key).split("/")[0]
    if top == "warc":
        return "text-warc" if key.endswith(".text.warc.gz") else "warc"
    if top == "indexes":
        return "index"
    if top == "articles":
        return "text" if key.endswith(".txt") else "metadata"
    return "run"
