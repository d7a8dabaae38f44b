"""A crawl killed at any moment loses nothing it wrote; only valid WARCs reach the archive.

Unit level: WARCs written by our own RotatingWarcWriter, cut at every byte of
their tail, are salvaged to exactly their whole pairs. End to end: a real
crawl subprocess of a big generated site on 127.0.0.1, SIGKILLed mid-crawl;
while it lives a second run of the source is refused in one line; after, the
pipeline salvages, indexes, uploads and catalogs every pair it had written.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from flows import pipeline
from spiders.warcfiles import RotatingWarcWriter, record_builder
from storage import layout
from storage.recovery import LOCK_NAME, SpoolBusy, SpoolLock, recover_spool

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


# --------------------------------------------------------------------------- helpers

def warcio_check(paths) -> None:
    """`warcio check` (digests) and a full gzip read (warcio check passes a file cut mid-record)."""
    paths = [str(p) for p in paths]
    assert paths
    proc = subprocess.run([str(BIN / "warcio"), "check", *paths], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in paths:
        with gzip.open(path) as fh:
            while fh.read(1 << 20):
                pass


def tolerant_records(data: bytes) -> list[dict]:
    """Every whole record of a possibly torn WARC.gz, read member by member; stops at the tear.

    Independent of storage.recovery: plain zlib to find members, warcio to read each one.
    """
    out, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(wbits=31)
        try:
            d.decompress(data[pos:])
        except zlib.error:
            break
        if not d.eof:
            break  # torn
        end = len(data) - len(d.unused_data)
        try:
            recs = list(ArchiveIterator(io.BytesIO(data[pos:end])))
            rec = recs[0]
            body = rec.content_stream().read()
        except Exception:
            break
        h = rec.rec_headers
        if len(recs) != 1:
            break
        out.append({"type": rec.rec_type, "id": h.get_header("WARC-Record-ID"),
                    "to": h.get_header("WARC-Concurrent-To"), "refers": h.get_header("WARC-Refers-To"),
                    "url": h.get_header("WARC-Target-URI"), "offset": pos, "end": end, "body": body})
        pos = end
    return out


def paired(records: list[dict]) -> list[dict]:
    """The records a salvage must keep: warcinfo, conversions, and requests/responses whose partner is whole."""
    ids = {r["id"] for r in records}
    named = {r["to"] for r in records if r["to"]}
    keep = []
    for r in records:
        if r["type"] == "response" and r["id"] not in named:
            continue
        if r["type"] == "request" and r["to"] not in ids:
            continue
        keep.append(r)
    return keep


def read_all(path: Path) -> list[dict]:
    return tolerant_records(path.read_bytes())


def write_pairs(spool: Path, n: int, *, text: bool = False) -> tuple[Path, list[int]]:
    """An open WARC of n exchanges as the capture middleware writes them (response, then its
    request naming it), or n conversion records; returns the .open path and each group's end."""
    builder = record_builder()
    writer = RotatingWarcWriter(spool, "t", warcinfo={"software": "test"}, text=text)
    ends = []
    for i in range(n):
        url = f"http://127.0.0.1:9/p{i}"
        body = (b"body %d " % i) * (50 + 7 * i)
        if text:
            rec = builder.create_warc_record(url, "conversion", payload=io.BytesIO(body), length=len(body),
                                             warc_headers_dict={"Content-Type": "text/plain; charset=utf-8"})
            written = writer.write_group([rec])
        else:
            http = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body)
            resp = builder.create_warc_record(url, "response", payload=io.BytesIO(http + body),
                                              length=len(http) + len(body))
            req_bytes = b"GET /p%d HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n" % i
            req = builder.create_warc_record(url, "request", payload=io.BytesIO(req_bytes), length=len(req_bytes),
                                             warc_headers_dict={"WARC-Concurrent-To":
                                                                resp.rec_headers.get_header("WARC-Record-ID")})
            written = writer.write_group([resp, req])
        ends.append(written[-1].offset + written[-1].length)
    path = spool / (writer.current_key + layout.OPEN_SUFFIX)
    writer._fh.close()  # the process "dies": no close(), no rename
    return path, ends


# --------------------------------------------------------------------------- salvage

@pytest.mark.parametrize("text", [False, True], ids=["capture", "text"])
def test_salvage_at_every_cut_keeps_exactly_the_whole_groups(tmp_path, text):
    """Cut the file at every byte of its last group (and a stride before): the result is
    always the warcinfo plus every whole group, valid, under its final name; nothing else."""
    src_spool = tmp_path / "src"
    path, ends = write_pairs(src_spool, 5, text=text)
    data = path.read_bytes()
    key = path.relative_to(src_spool).as_posix()[: -len(layout.OPEN_SUFFIX)]
    info_end = tolerant_records(data)[0]["end"]
    cuts = sorted(set(range(0, ends[-2], 61)) | set(range(ends[-2] - 3, len(data) + 1)))
    checked = []
    for n, cut in enumerate(cuts):
        spool = tmp_path / f"s{n}"
        (spool / key).parent.mkdir(parents=True)
        (spool / (key + layout.OPEN_SUFFIX)).write_bytes(data[:cut])
        report = recover_spool(spool)
        whole = [e for e in ends if e <= cut]
        assert not list(spool.rglob("*.open"))
        if not whole:
            assert not (spool / key).exists() and report.removed and not report.salvaged, cut
            continue
        final = spool / key
        assert final.read_bytes() == data[:whole[-1]], cut  # exactly the whole groups, byte for byte
        assert report.keys == [key] and report.salvaged[0].cut_bytes == cut - whole[-1]
        assert report.salvaged[0].responses == (0 if text else len(whole))
        checked.append(final)
    assert info_end < ends[0]
    warcio_check(checked[:: max(1, len(checked) // 40)] + checked[-3:])


def test_a_response_whose_request_was_torn_is_dropped(tmp_path):
    path, ends = write_pairs(tmp_path, 3)
    data = path.read_bytes()
    records = tolerant_records(data)
    lone_response_end = records[-2]["end"]  # the third response is whole, its request is not written
    path.write_bytes(data[:lone_response_end])
    report = recover_spool(tmp_path)
    final = Path(str(path)[: -len(layout.OPEN_SUFFIX)])
    kept = read_all(final)
    assert [r["type"] for r in kept] == ["warcinfo"] + ["response", "request"] * 2
    assert final.stat().st_size == ends[1] and report.salvaged[0].cut_bytes == lone_response_end - ends[1]


def test_a_corrupt_member_ends_the_salvage_there(tmp_path):
    """gzip's CRC catches damage the last bytes would not show: keep what precedes it."""
    path, ends = write_pairs(tmp_path, 4)
    data = bytearray(path.read_bytes())
    data[ends[1] + 40] ^= 0xFF  # inside the third response's member
    path.write_bytes(bytes(data))
    recover_spool(tmp_path)
    final = Path(str(path)[: -len(layout.OPEN_SUFFIX)])
    assert final.read_bytes() == bytes(data[:ends[1]])
    warcio_check([final])


def test_articles_never_finished_are_removed_and_strangers_left_alone(tmp_path):
    key = "articles/t/2024/05/01/20240501000000000-0123456789abcdef"
    for ext in ("txt", "json"):
        (tmp_path / f"{key}.{ext}.open").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{key}.{ext}.open").write_bytes(b"half")
    (tmp_path / f"{key}.txt").write_bytes(b"whole")  # finished files are not touched
    (tmp_path / "notes.open").write_bytes(b"not ours")
    report = recover_spool(tmp_path)
    assert sorted(k for k, _ in report.removed) == [f"{key}.json.open", f"{key}.txt.open"]
    assert all("reextract" in why for _, why in report.removed)
    assert (tmp_path / f"{key}.txt").read_bytes() == b"whole"
    assert (tmp_path / "notes.open").exists()


def test_recovery_is_idempotent_and_a_clean_spool_is_untouched(tmp_path):
    path, ends = write_pairs(tmp_path, 2)
    path.write_bytes(path.read_bytes()[:-5])
    first = recover_spool(tmp_path)
    assert len(first.salvaged) == 1
    assert not recover_spool(tmp_path)  # nothing left to do


# --------------------------------------------------------------------------- lock

HOLDER = """
import sys, time
from storage.recovery import SpoolLock
SpoolLock(sys.argv[1], "t").acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_live_holder_blocks_recovery_and_its_death_frees_the_lock(tmp_path):
    path, _ = write_pairs(tmp_path, 2)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SpoolBusy) as info:
            recover_spool(tmp_path, source="t")
        assert str(info.value) == f"source t is being crawled by another process (pid {holder.pid})"
        with pytest.raises(pipeline.SourceBusy, match=rf"is being crawled by another process \(pid {holder.pid}\)"):
            pipeline.upload(tmp_path, str(tmp_path / "archive"))
        assert path.exists()  # untouched while the holder lives
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert recover_spool(tmp_path).keys  # the kernel dropped the lock with the process


def test_the_lock_is_reentrant_in_one_thread_only(tmp_path):
    import threading

    with SpoolLock(tmp_path) as outer:
        with SpoolLock(tmp_path) as inner:
            assert inner.fd == outer.fd
        errors = []
        t = threading.Thread(target=lambda: errors.append(pytest.raises(SpoolBusy, SpoolLock(tmp_path).acquire)))
        t.start()
        t.join()
        assert errors
        assert recover_spool(tmp_path) is not None  # same thread: re-entered
    assert (tmp_path / LOCK_NAME).exists()
    SpoolLock(tmp_path).acquire().release()  # free again
