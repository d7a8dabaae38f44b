"""What the archive already holds of a source: the dedupe state of an incremental crawl.

Before a crawl, the pipeline exports from the archive's catalog the latest
capture of each URL of the source into a JSON lines file (`--seen FILE`), so
any machine with access to the archive crawls a source as incrementally as
the one that crawled it last. One object per line:

    {"url", "timestamp" (14 digits, newest capture of any kind), "status", "mime",
     "digest", "record_id", "warc", "date"}   # the last four: newest capture with a payload

`date` is that capture's WARC-Date exactly as its record has it (a revisit's
WARC-Refers-To-Date must equal it); archives indexed before the index kept it
give the 14-digit timestamp instead, which is all that is known of them.

The spider skips article URLs archived with a 2xx status unless a re-check is
due (`recheck` hours), and page requisites archived with any status less than
Source.requisite_recheck hours ago (spiders/requisites.py); the capture
middleware writes a `revisit` record when a re-fetched payload has the digest
of the last capture with a payload.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from datetime import datetime, timedelta, timezone

logger = logging.getLogger(__name__)


def payload_digest(body: bytes) -> str:
    """The WARC-Payload-Digest warcio writes for ``body`` (sha1, base32)."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


def _timestamp_datetime(ts: str) -> datetime | None:
    try:
        return datetime.strptime(ts[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None


def warc_date(date: str) -> str | None:
    """The WARC-Date of a seen entry's `date`: a WARC-Date (ISO 8601) stays exactly as
    it is; a bare 14-digit timestamp (older indexes) becomes one of second precision."""
    if date and "T" in date:
        return date
    when = _timestamp_datetime(date)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


class SeenCaptures:
    """URL -> the archive's latest capture of it (see the module docstring)."""

    def __init__(self, entries: dict[str, dict] | None = None):
        self.entries = entries or {}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, url: str) -> dict | None:
        return self.entries.get(url)

    @classmethod
    def load(cls, path: str | os.PathLike | None) -> "SeenCaptures":
        """Read the file (absent or unreadable: nothing seen, a full crawl)."""
        entries: dict[str, dict] = {}
        if not path:
            return cls(entries)
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(entry, dict) and isinstance(entry.get("url"), str):
                        entries[entry["url"]] = entry
        except OSError as exc:
            logger.warning("cannot read the seen captures %s (crawling everything): %s", path, exc)
        return cls(entries)

    def archived_ok(self, url: str) -> dict | None:
        """The entry of ``url`` when its newest capture answered 2xx."""
        entry = self.entries.get(url)
        status = entry.get("status") if entry else None
        if isinstance(status, int) and 200 <= status < 300:
            return entry
        return None

    def due(self, url: str, recheck_hours: float, now: datetime | None = None) -> bool:
        """True when ``url`` should be fetched: new, not archived 2xx, or its last
        capture is ``recheck_hours`` old (0: always)."""
        entry = self.archived_ok(url)
        if entry is None or recheck_hours <= 0:
            return True
        last = _timestamp_datetime(entry.get("timestamp") or "")
        if last is None:
            return True
        now = now or datetime.now(timezone.utc)
        return now - last >= timedelta(hours=recheck_hours)

    def requisite_due(self, url: str, recheck_hours: float, now: datetime | None = None) -> bool:
        """True when the requisite ``url`` should be fetched: the archive has no capture of it
        (of any status: a missing image stays missing) newer than ``recheck_hours``."""
        entry = self.entries.get(url)
        last = _timestamp_datetime((entry or {}).get("timestamp") or "")
        if last is None:
            return True
        now = now or datetime.now(timezone.utc)
        return now - last >= timedelta(hours=recheck_hours)

    def revisit_of(self, url: str, digest: str) -> dict | None:
        """The entry a new capture of ``url`` with payload ``digest`` repeats, if any."""
        entry = self.entries.get(url)
        if entry and entry.get("digest") == digest and entry.get("record_id") and entry.get("date"):
            return entry
        return None


def write_seen(entries, path: str | os.PathLike) -> int:
    """Write catalog entries (dicts) as JSON lines; returns how many."""
    n = 0
    tmp = f"{path}.open"
    with open(tmp, "w", encoding="utf-8") as fh:
        for entry in entries:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n
