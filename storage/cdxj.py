"""CDXJ index of one WARC, in the format pywb and cdxj-indexer share.

Each line is ``SURTKEY TIMESTAMP {json}`` with cdxj-indexer's standard fields
(url, mime, status, digest, length, offset, filename) written by cdxj-indexer's
own indexer class, so the standard part is byte-for-byte what
``cdxj-indexer --sort`` writes. Extras that pywb ignores ride along:
``record_id`` (WARC-Record-ID) and ``warc_date`` (the record's WARC-Date exactly,
which the 14-digit timestamp cuts to seconds: a revisit's WARC-Refers-To-Date
must repeat it) on every line, and ``refers_to`` on ``conversion`` records (the
clean text of a response), which are indexed with mime ``text/plain``.
``filename`` is the WARC's archive key, not its base name.

Conversion records live only in text WARCs, so their lines live only in the
text WARCs' own index files, apart from the capture lines. They are not
replayable: every index handed to a replay tool (pywb's collection index, the
WACZ's, the CDX server's answers) is made of ``replayable()`` lines only, and
the catalog keeps them in its ``texts`` table, linked to the capture they
were extracted from by ``refers_to``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from storage import layout
from storage.errors import StorageError


class CDXJError(StorageError):
    """A line that is not ``KEY TIMESTAMP {json}`` (one-line message)."""


def index_warc(path: str | os.PathLike, filename: str) -> list[str]:
    """Sorted CDXJ lines (each ending in a newline) of the WARC at ``path``;
    ``filename`` (the archive key) goes into each line's ``filename`` field."""
    # cdxj-indexer (and pkg_resources, through pyamf) costs ~0.3 s to import:
    # imported by the commands that index, not by every reader of this module
    from storage.cdxjindexer import ArchiveIndexer

    out = io.StringIO()
    with open(path, "rb") as fh:
        ArchiveIndexer(out, [fh], filename).index_into(out)
    return out.getvalue().splitlines(keepends=True)



def write_index(warc_path: str | os.PathLike, warc_key: str, spool: str | os.PathLike) -> Path:
    """Index the WARC at ``warc_path`` (archive key ``warc_key``) into the spool
    at ``layout.index_key(warc_key)``. Written to a temporary name and renamed,
    so an upload never sees half an index. Returns the index path."""
    key = layout.index_key(warc_key)
    target = Path(spool) / key
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = index_warc(warc_path, warc_key)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=layout.OPEN_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(lines)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def parse_line(line: str) -> tuple[str, str, dict]:
    """``(urlkey, timestamp, fields)`` of one CDXJ line."""
    try:
        urlkey, timestamp, rest = line.strip().split(" ", 2)
        fields = json.loads(rest)
    except ValueError:
        raise CDXJError(f"not a CDXJ line: {line[:80]!r}") from None
    if not isinstance(fields, dict) or not timestamp.isdigit():
        raise CDXJError(f"not a CDXJ line: {line[:80]!r}")
    return urlkey, timestamp, fields


def iter_lines(text: str | bytes) -> Iterator[tuple[str, str, dict]]:
    """Parsed lines of an index file's content, skipping blanks and ``!meta`` lines."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    for line in text.splitlines():
        if line.strip() and not line.startswith("!"):
            yield parse_line(line)


def is_text(fields: dict) -> bool:
    """A conversion record's line (clean text, linked to its capture by ``refers_to``)."""
    return "refers_to" in fields


def replayable(fields: dict) -> bool:
    """A line a replay tool may serve: anything but a conversion record."""
    return not is_text(fields)


def format_line(urlkey: str, timestamp: str, fields: dict) -> str:
    return f"{urlkey} {timestamp} {json.dumps(fields)}\n"


def index_spool(spool: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Write the CDXJ index of every finished WARC in the spool that has none yet.

    Returns (index keys written, ["KEY: reason" for WARCs that could not be
    indexed]); a damaged WARC does not stop the others (it is still uploaded,
    and `newsarchive reindex` can index it later).
    """
    from storage.spool import finished_files

    spool = Path(spool)
    written, failed = [], []
    for key in finished_files(spool):
        if not (key.startswith("warc/") and key.endswith(".warc.gz")):
            continue
        index_key = layout.index_key(key)
        if (spool / index_key).exists():
            continue
        try:
            write_index(spool / key, key, spool)
        except Exception as exc:  # warcio raises assorted errors on a damaged file
            failed.append(f"{key}: {exc}")
            continue
        written.append(index_key)
    return written, failed
