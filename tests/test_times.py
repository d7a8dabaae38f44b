"""storage/times.py's WARC timestamp conventions are warcio.timeutils' own.

They are written in storage/ so that a look-up does not import warcio; these
tests hold them equal to warcio's for every length of input, clamped and
unreadable fields included.
"""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from warcio import timeutils

from storage import times

DIGITS = st.text(alphabet="0123456789", max_size=16)
ANY = st.text(alphabet="0123456789-+ xZ", max_size=16)


@settings(max_examples=2000)
@given(st.one_of(DIGITS, ANY))
def test_timestamp_to_datetime_is_warcios(value):
    for aware in (False, True):
        assert times.timestamp_to_datetime(value, aware) == timeutils.timestamp_to_datetime(value, aware)


@settings(max_examples=1000)
@given(DIGITS)
def test_formats_are_warcios(value):
    assert times.timestamp_to_iso_date(value) == timeutils.timestamp_to_iso_date(value)
    assert times.timestamp_to_http_date(value) == timeutils.timestamp_to_http_date(value)
    for pad in (times.PAD_14_DOWN, times.PAD_6_UP):
        assert times.pad_timestamp(value, pad) == timeutils.pad_timestamp(value, pad)


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(2999, 12, 31)))
def test_datetime_to_timestamp_is_warcios(when):
    assert times.datetime_to_timestamp(when) == timeutils.datetime_to_timestamp(when)
    aware = when.replace(tzinfo=timezone.utc)
    assert times.datetime_to_timestamp(aware) == timeutils.datetime_to_timestamp(aware)


def test_known_values():
    assert times.timestamp_to_datetime("2024") == datetime(2024, 12, 31, 23, 59, 59)
    assert times.timestamp_to_datetime("202402") == datetime(2024, 2, 29, 23, 59, 59)
    assert times.timestamp_to_http_date("20131226095010") == "Thu, 26 Dec 2013 09:50:10 GMT"
    assert times.timestamp_to_iso_date("20131226095010") == "2013-12-26T09:50:10Z"
