"""Our WARCs as FastWARC (a third-party reader, not warcio) reads them: every digest,
and every revisit's WARC-Refers-To* fields against the record it refers to.

The archive is the demo site crawled twice (tests/fixtures_replay.py): the second
crawl archives each unchanged page as a revisit of the first crawl's response.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3

from fastwarc.warc import ArchiveIterator, WarcRecordType

from spiders.seen import warc_date
from storage.catalog import Catalog


def _digest_ok(value: str, data: bytes) -> bool:
    algorithm, _, expected = value.partition(":")
    raw = hashlib.new(algorithm.lower().replace("-", ""), data).digest()
    return expected in (base64.b32encode(raw).decode(), raw.hex())


def read_all(archive_path):
    records = []
    for path in sorted(archive_path.glob("warc/**/*.warc.gz")):
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh, parse_http=False):
                h = rec.headers
                entry = {"type": rec.record_type, "id": h.get("WARC-Record-ID"), "date": h.get("WARC-Date"),
                         "uri": h.get("WARC-Target-URI"), "payload_digest": h.get("WARC-Payload-Digest"),
                         "headers": dict(h), "block_ok": rec.verify_block_digest(), "payload_ok": None}
                if rec.record_type == WarcRecordType.response:
                    rec.parse_http()
                    entry["payload_ok"] = rec.verify_payload_digest()
                elif rec.record_type == WarcRecordType.conversion:
                    # no HTTP inside: the payload is the block (FastWARC checks HTTP payloads only)
                    entry["payload_ok"] = _digest_ok(h.get("WARC-Payload-Digest"), rec.reader.read())
                records.append(entry)
    return records


def test_every_digest_of_every_record_checks_out(replay_archive):
    records = read_all(replay_archive.path)
    kinds = [r["type"] for r in records]
    assert kinds.count(WarcRecordType.response) == kinds.count(WarcRecordType.revisit) == 23
    assert kinds.count(WarcRecordType.conversion) == 6
    assert all(r["block_ok"] for r in records), [r["uri"] for r in records if not r["block_ok"]]
    checked = [r for r in records if r["payload_ok"] is not None]
    assert len(checked) == 23 + 6 and all(r["payload_ok"] for r in checked)


def test_revisits_refer_to_their_originals_exactly(replay_archive):
    records = read_all(replay_archive.path)
    by_id = {r["id"]: r for r in records}
    revisits = [r for r in records if r["type"] == WarcRecordType.revisit]
    assert len(revisits) == 23
    for revisit in revisits:
        h = revisit["headers"]
        original = by_id[h["WARC-Refers-To"]]
        assert original["type"] == WarcRecordType.response
        assert h["WARC-Refers-To-Target-URI"] == original["uri"] == revisit["uri"]
        assert h["WARC-Refers-To-Date"] == original["date"]  # to the microsecond, as WARC 1.1 wants
        assert "." in original["date"]  # (the crawl writes sub-second WARC-Dates, so this is a real check)
        assert h["WARC-Payload-Digest"] == original["payload_digest"]
        assert h["WARC-Profile"] == "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
    # each conversion record names the response it was extracted from, at its exact time
    for conversion in (r for r in records if r["type"] == WarcRecordType.conversion):
        response = by_id[conversion["headers"]["WARC-Refers-To"]]
        assert response["type"] == WarcRecordType.response and response["date"] == conversion["date"]


def test_seen_dates_of_older_indexes_keep_working(tmp_path):
    # a WARC-Date from the index is used as it is; a bare timestamp (indexes written before
    # they kept warc_date) still gives a valid, second-precision WARC-Date
    assert warc_date("2026-12-01T22:07:39.355744Z") == "2026-12-01T22:07:39.355744Z"
    assert warc_date("20261201220739") == "2026-12-01T22:07:39Z"
    # a catalog made before the warc_date column gets it when opened
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE captures (urlkey TEXT NOT NULL, timestamp TEXT NOT NULL, url TEXT NOT NULL, "
               "status INTEGER, mime TEXT, digest TEXT, warc TEXT NOT NULL, offset INTEGER NOT NULL, "
               "length INTEGER NOT NULL, record_id TEXT, source TEXT, index_key TEXT NOT NULL, "
               "PRIMARY KEY (warc, offset))")
    db.execute("INSERT INTO captures VALUES ('k)/', '20260101000000', 'http://k/', 200, 'text/html', "
               "'sha1:X', 'warc/s/2026/01/01/a.warc.gz', 0, 10, '<urn:uuid:1>', 's', 'i')")
    db.commit()
    db.close()
    [entry] = list(Catalog(path).latest_per_url("s"))
    assert entry["date"] == "20260101000000" and warc_date(entry["date"]) == "2026-01-01T00:00:00Z"
