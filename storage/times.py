"""Times as users write them, as 14-digit WARC timestamps (UTC).

`TIME` on the command line, `--from`/`--to`, `Accept-Datetime` and the CDX
server's `from`/`to`/`closest` all go through `parse_time`. Accepted forms:

    2024, 202405, 20240502, ... 20240502120000   WARC timestamps, 4 to 14 digits
    2024-05, 2024-05-02, 2024-05-02T12:00, 2024-05-02T12:00:00+02:00   ISO 8601
    Thu, 02 May 2024 12:00:00 GMT                 RFC 1123 (HTTP dates)

A partial time means the start of its period, or its end where a range ends
(`period_end("2024-05")` is the last second of May). Naive times are UTC.
Formatting follows warcio.timeutils (written here: see below).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from storage.errors import BadInput

# warcio.timeutils' conventions, written here so that a look-up does not import
# warcio (~0.1 s: its package imports fsspec); tests/test_times.py holds them
# equal to warcio's on every length of input.
PAD_14_DOWN = "10000101000000"
PAD_6_UP = "299912"
_FIELDS = ((0, 4, 1900, 2999), (4, 6, 1, 12), (6, 8, 1, None), (8, 10, 0, 23), (10, 12, 0, 59), (12, 14, 0, 59))
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def pad_timestamp(digits: str, pad: str = PAD_6_UP) -> str:
    """``digits`` completed from ``pad`` to ``pad``'s length (never shortened)."""
    return digits + pad[len(digits):] if len(digits) < len(pad) else digits


def _days_in(year: int, month: int) -> int:
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return _MONTH_DAYS[month - 1] + leap


def timestamp_to_datetime(timestamp: str, tz_aware: bool = False) -> datetime:
    """A WARC timestamp as a datetime: a missing or unreadable field is its largest value,
    an out-of-range one is clamped (``2014`` -> the last second of 2014)."""
    timestamp = pad_timestamp(timestamp)
    values: list[int] = []
    for start, end, low, high in _FIELDS:
        if high is None:
            high = _days_in(values[0], values[1])
        value = high
        if len(timestamp) >= end:
            try:
                value = min(max(int(timestamp[start:end]), low), high)
            except ValueError:
                pass
        values.append(value)
    return datetime(*values, tzinfo=timezone.utc if tz_aware else None)


def datetime_to_timestamp(when: datetime) -> str:
    return when.strftime("%Y%m%d%H%M%S")


def timestamp_to_iso_date(timestamp: str) -> str:
    return timestamp_to_datetime(timestamp).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp_to_http_date(timestamp: str) -> str:
    """RFC 7231's IMF-fixdate, in English whatever the locale."""
    when = timestamp_to_datetime(timestamp)
    return (f"{_DAY_NAMES[when.weekday()]}, {when.day:02d} {_MONTH_NAMES[when.month - 1]} {when.year:04d} "
            f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} GMT")

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
        from email.utils import parsedate_to_datetime  # only for HTTP dates: ~15 ms to import

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
