"""Times as users write them, as 14-digit WARC timestamps (UTC).

`TIME` on the command line, `--from`/`--to`, `Accept-Datetime` and the CDX
server's `from`/`to`/`closest` all go through `parse_time`. Accepted forms:

    2024, 202405, 20240502, ... 20240502120000   WARC timestamps, 4 to 14 digits
    2024-05, 2024-05-02, 2024-05-02T12:00, 2024-05-02T12:00:00+02:00   ISO 8601
    Thu, 02 May 2024 12:00:00 GMT                 RFC 1123 (HTTP dates)

A partial time means the start of its period, or its end where a range ends
(`period_end("2024-05")` is the last second of May). Naive times are UTC.
Formatting is warcio.timeutils' own.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from warcio.timeutils import (
    PAD_14_DOWN,
    datetime_to_timestamp,
    pad_timestamp,
    timestamp_to_datetime,
)

from storage.errors import BadInput

_PARTIAL_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_DIGITS = re.compile(r"\d{4,14}")

HINT = "use ISO 8601 like 2024-05-02T12:00:00Z, 2024-05 or a 4 to 14 digit timestamp"


def _digits(value: str) -> str | None:
    """The WARC-timestamp prefix a partial time stands for, or None for a full time."""
    text = value.strip()
    if _DIGITS.fullmatch(text):
        return text
    m = _PARTIAL_ISO.fullmatch(text)
    if m:
        return "".join(part for part in m.groups() if part)
    return None


def _check(digits: str, value: str) -> str:
    padded = pad_timestamp(digits, PAD_14_DOWN)
    try:
        datetime.strptime(padded, "%Y%m%d%H%M%S")
    except ValueError:
        raise BadInput(f"not a valid time: {value!r} ({HINT})") from None
    return padded


def parse_time(value: str | datetime | None) -> str | None:
    """A time as a 14-digit UTC timestamp: the start of a partial period."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return datetime_to_timestamp(_utc(value))
    digits = _digits(value)
    if digits is not None:
        return _check(digits, value)
    text = value.strip()
    try:
        when = datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text))
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            raise BadInput(f"not a time: {value!r} ({HINT})") from None
    return datetime_to_timestamp(_utc(when))


def period_end(value: str | datetime | None) -> str | None:
    """Like parse_time, but a partial time means the last second of its period."""
    if value is None or isinstance(value, datetime):
        return parse_time(value)
    digits = _digits(value)
    if digits is None:
        return parse_time(value)
    _check(digits, value)
    return datetime_to_timestamp(timestamp_to_datetime(digits))  # warcio pads up, month lengths known


def timestamp_datetime(timestamp: str) -> datetime:
    """A 14-digit timestamp as an aware UTC datetime."""
    return timestamp_to_datetime(timestamp, tz_aware=True)


def _utc(when: datetime) -> datetime:
    return when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)
