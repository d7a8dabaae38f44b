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
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders

from flows import pipeline
from spiders.warcfiles import RotatingWarcWriter, record_builder
from storage import layout
from storage.recovery import LOCK_NAME, SourceBusy, SpoolLock, recover_spool

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


def recover(spool):
    """Recovery as a run does it: under the spool's lock."""
    with SpoolLock(spool) as lock:
        return recover_spool(lock)


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


def request_for(builder, i: int, response):
    """The request record of page i, linked to its response (or revisit) as the capture links them."""
    req_bytes = b"GET /p%d HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n" % i
    return builder.create_warc_record(f"http://127.0.0.1:9/p{i}", "request", payload=io.BytesIO(req_bytes),
                                      length=len(req_bytes),
                                      warc_headers_dict={"WARC-Concurrent-To":
                                                         response.rec_headers.get_header("WARC-Record-ID")})


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
            written = writer.write_group([resp, request_for(builder, i, resp)])
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
        report = recover(spool)
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
    report = recover(tmp_path)
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
    recover(tmp_path)
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
    report = recover(tmp_path)
    assert sorted(k for k, _ in report.removed) == [f"{key}.json.open", f"{key}.txt.open"]
    assert all("reextract" in why for _, why in report.removed)
    assert (tmp_path / f"{key}.txt").read_bytes() == b"whole"
    assert (tmp_path / "notes.open").exists()


def test_recovery_is_idempotent_and_a_clean_spool_is_untouched(tmp_path):
    path, ends = write_pairs(tmp_path, 2)
    path.write_bytes(path.read_bytes()[:-5])
    first = recover(tmp_path)
    assert len(first.salvaged) == 1
    assert not recover(tmp_path)  # nothing left to do


# --------------------------------------------------------------------------- lock

HOLDER = """
import sys
from storage.recovery import SpoolLock
SpoolLock(sys.argv[1], "t").acquire()
print("locked", flush=True)
sys.stdin.read()  # hold the lock until killed, however long the test takes
"""


def test_a_live_holder_blocks_recovery_and_its_death_frees_the_lock(tmp_path):
    path, _ = write_pairs(tmp_path, 2)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stdin=subprocess.PIPE,
                              text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SourceBusy) as info:
            SpoolLock(tmp_path, "t").acquire()
        assert str(info.value) == f"source t is being crawled by another process (pid {holder.pid})"
        with pytest.raises(SourceBusy, match=rf"is being crawled by another process \(pid {holder.pid}\)"):
            pipeline.archive_spool(tmp_path, str(tmp_path / "archive"))
        assert path.exists()  # untouched while the holder lives
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel dropped the lock with the process: the WARC is recovered now, under its final name
    key = path.relative_to(tmp_path).as_posix()[: -len(layout.OPEN_SUFFIX)]
    assert recover(tmp_path).keys == [key] and (tmp_path / key).is_file() and not path.exists()


def test_the_lock_is_taken_once_and_leaves_a_clean_spool(tmp_path):
    import threading

    torn, ends = write_pairs(tmp_path, 3)
    data = torn.read_bytes()
    torn.write_bytes(data[:ends[-1] - 7])  # the last pair cut short
    key = torn.relative_to(tmp_path).as_posix()[: -len(layout.OPEN_SUFFIX)]
    with SpoolLock(tmp_path, "t") as held:
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(SourceBusy):  # not even this process takes it twice
            SpoolLock(tmp_path, "t").acquire()
        errors = []

        def other_thread():
            try:
                SpoolLock(tmp_path).acquire()
            except SourceBusy as exc:
                errors.append(exc)

        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert len(errors) == 1  # another thread is refused
        report = recover_spool(held)  # the holder recovers: the two whole pairs, under the final name
        assert report.keys == [key] and (tmp_path / key).read_bytes() == data[:ends[1]]
    assert not (tmp_path / LOCK_NAME).exists()  # a spool left clean
    with pytest.raises(RuntimeError, match="lock held"):
        recover_spool(SpoolLock(tmp_path))  # recovery without the lock is refused
    SpoolLock(tmp_path).acquire().release()  # free again


# --------------------------------------------------------------------------- end to end

def _whole_responses(path: Path) -> int:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    return sum(r["type"] == "request" for r in tolerant_records(data))  # a request closes a pair


def test_sigkilled_crawl_is_salvaged_archived_and_cataloged(make_news_site, tmp_path):
    from storage.archive import open_archive

    site = make_news_site(n_articles=3000)
    sources = site.write_sources(tmp_path, delay=0.05, concurrency=1, depth=1, max_pages=3000)
    archive = tmp_path / "archive"
    spool = pipeline.source_spool(str(archive), "testnews")
    env = {k: v for k, v in os.environ.items() if k not in ("NEWSARCHIVE_SOURCES", "NEWSARCHIVE_SPOOL")}
    env["PYTHONPATH"] = str(ROOT)
    crawl = subprocess.Popen([sys.executable, "-m", "spiders.crawl", "--source", "testnews", "--sources",
                              str(sources), "--spool", str(spool)], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300  # a bound on waiting, not a speed target
        while time.monotonic() < deadline and crawl.poll() is None:
            opened = [p for p in spool.rglob("*.warc.gz.open") if not p.name.endswith(".text.warc.gz.open")]
            if opened and _whole_responses(opened[0]) >= 25:
                break
            time.sleep(0.1)
        assert crawl.poll() is None, "the crawl ended before it could be killed"

        # while it lives: a second run of the source is refused, in one line, naming the crawl's pid
        second = subprocess.run([str(BIN / "newsarchive"), "crawl", "testnews", "--no-prefect", "--sources",
                                 str(sources), "--archive", str(archive)], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=400)
        assert second.returncode != 0
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert lines[-1] == (f"newsarchive: error: source testnews is being crawled by another process "
                             f"(pid {crawl.pid})"), second.stderr
        assert "Traceback" not in second.stderr and "error" not in "".join(lines[:-1]).lower()
        with pytest.raises(SourceBusy):
            pipeline.archive_spool(spool, str(archive))
    finally:
        crawl.send_signal(signal.SIGKILL)
        crawl.wait()
    assert crawl.returncode == -signal.SIGKILL

    # what the dead crawl left, read tolerantly: the oracle
    left = {p.relative_to(spool).as_posix()[: -len(layout.OPEN_SUFFIX)]: p.read_bytes()
            for p in spool.rglob("*.warc.gz.open")}
    capture_keys = [k for k in left if not k.endswith(".text.warc.gz")]
    assert capture_keys
    before = {k: paired(tolerant_records(data)) for k, data in left.items()}
    before_ids = {r["id"] for recs in before.values() for r in recs if r["type"] != "warcinfo"}
    before_responses = {r["id"]: r for k in capture_keys for r in before[k] if r["type"] == "response"}
    assert len(before_responses) >= 25

    summary = pipeline.run_source("testnews", sources_file=sources, archive=str(archive), max_pages=3)
    assert sorted(summary.recovered) == sorted(k for k in left if before[k][1:])
    assert not list(spool.rglob("*.open"))

    warcs = sorted(p for p in (archive / "warc").rglob("*.warc.gz"))
    warcio_check(warcs)  # every WARC in the archive is valid and reads through
    after = {p.relative_to(archive).as_posix(): read_all(p) for p in warcs}
    for key in capture_keys:  # salvaged: exactly the whole pairs written before the kill
        assert [r["id"] for r in after[key]][1:] == [r["id"] for r in before[key]][1:]
        assert [r["body"] for r in after[key]] == [r["body"] for r in before[key]]
    after_ids = {r["id"] for recs in after.values() for r in recs}
    assert before_ids <= after_ids  # nothing whole was lost
    salvaged_responses = [r for k in capture_keys for r in after[k] if r["type"] == "response"]
    assert len(salvaged_responses) == len(before_responses)
    for recs in after.values():  # every response has its request, in the same file
        requests_to = {r["to"] for r in recs if r["type"] == "request"}
        assert all(r["id"] in requests_to for r in recs if r["type"] == "response")
    responses = {r["id"] for recs in after.values() for r in recs if r["type"] == "response"}
    assert all(r["refers"] in responses for recs in after.values() for r in recs if r["type"] == "conversion")

    catalog = open_archive(str(archive))
    for rid, rec in before_responses.items():
        assert rid in {c.record_id for c in catalog.list(rec["url"])}, rec["url"]
    manifests = list((archive / "runs").rglob("*.json"))
    assert manifests and any('"recovered"' in m.read_text() for m in manifests)


def test_upload_command_salvages_indexes_and_archives_a_killed_crawls_leftovers(tmp_path):
    """`newsarchive upload` after a crash: the torn WARC is salvaged, indexed, archived, listed."""
    from test_cli_support import cli_env, run

    archive = tmp_path / "archive"
    spool = tmp_path / "spool"
    torn, ends = write_pairs(spool / "t", 6)
    with open(torn, "r+b") as fh:  # killed in the middle of the last pair
        fh.truncate(ends[-2] + (ends[-1] - ends[-2]) // 2)
    env = cli_env(tmp_path, NEWSARCHIVE_SPOOL=str(spool))
    result = run("upload", "--archive", str(archive), cwd=tmp_path, env=env, check=True)
    assert "uploaded" in result.stdout

    warcs = sorted(archive.glob("warc/t/*/*/*/*.warc.gz"))
    assert len(warcs) == 1 and not list(spool.rglob("*.warc.gz*"))
    warcio_check(warcs)
    assert _whole_responses(warcs[0]) == 5  # every whole pair, none of the torn one
    assert list(archive.glob("indexes/t/*/*/*/*.cdxj"))
    listed = run("list", "http://127.0.0.1:9/p4", "--json", "--archive", str(archive), cwd=tmp_path, env=env,
                 check=True)
    captures = json.loads(listed.stdout)
    assert [c["status"] for c in captures] == [200] and captures[0]["warc"].startswith("warc/t/")
    missing = run("list", "http://127.0.0.1:9/p5", "--archive", str(archive), cwd=tmp_path, env=env)
    assert missing.returncode != 0


def test_crawl_stops_cleanly_when_the_process_that_started_it_dies(make_news_site, tmp_path):
    """A cancelled run (its process killed) leaves no orphan crawl: the crawl stops as on
    SIGTERM, closes its WARCs (final names, valid) and releases the spool."""
    site = make_news_site(n_articles=3000)
    sources = site.write_sources(tmp_path, delay=0.05, concurrency=1, depth=1, max_pages=3000)
    spool = tmp_path / "spool" / "testnews"
    env = {k: v for k, v in os.environ.items() if k not in ("NEWSARCHIVE_SOURCES", "NEWSARCHIVE_SPOOL")}
    env["PYTHONPATH"] = str(ROOT)
    # the "run": a parent that starts the crawl as flows.pipeline does, prints its pid, and waits
    starter = ("import subprocess, sys\n"
               "p = subprocess.Popen([sys.executable, '-m', 'spiders.crawl', '--source', 'testnews',"
               f" '--sources', {str(sources)!r}, '--spool', {str(spool)!r}, '--stop-with-parent'],"
               " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
               "print(p.pid, flush=True)\n"
               "p.wait()\n")
    parent = subprocess.Popen([sys.executable, "-c", starter], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    crawl_pid = int(parent.stdout.readline())
    try:
        deadline = time.monotonic() + 300  # a bound on waiting, not a speed target
        while time.monotonic() < deadline:
            opened = [p for p in spool.rglob("*.warc.gz.open") if not p.name.endswith(".text.warc.gz.open")]
            if opened and _whole_responses(opened[0]) >= 10:
                break
            time.sleep(0.1)
        assert opened, "the crawl wrote nothing"
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 180  # a bound on waiting, not a speed target
    while Path(f"/proc/{crawl_pid}").exists() and time.monotonic() < deadline:
        state = Path(f"/proc/{crawl_pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            break
        time.sleep(0.2)
    state = Path(f"/proc/{crawl_pid}/stat").read_text().rsplit(")", 1)[1].split()[0] \
        if Path(f"/proc/{crawl_pid}").exists() else "gone"
    assert state in ("Z", "gone"), "the crawl outlived the process that started it"
    assert not list(spool.rglob("*.open")), "the crawl did not close its files"
    warcs = sorted(spool.rglob("*.warc.gz"))
    assert warcs
    warcio_check(warcs)
    recover(spool)  # and the spool lock is free again


def test_revisit_pairs_are_kept_like_response_pairs(tmp_path):
    """An incremental crawl writes revisit + request pairs: salvage keeps them and what follows."""
    builder = record_builder()
    writer = RotatingWarcWriter(tmp_path, "t", warcinfo={"software": "test"})
    ids = []
    for i in range(4):
        url = f"http://127.0.0.1:9/p{i}"
        http = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
        if i == 1:  # unchanged since an earlier capture: no payload block
            first = builder.create_revisit_record(
                url, "sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", url, "2026-01-01T00:00:00Z",
                http_headers=StatusAndHeaders("200 OK", [("Content-Type", "text/plain")], protocol="HTTP/1.1"))
        else:
            body = b"body %d" % i
            first = builder.create_warc_record(url, "response", payload=io.BytesIO(http + body),
                                               length=len(http) + len(body))
        req = request_for(builder, i, first)
        writer.write_group([first, req])
        ids += [first.rec_headers.get_header("WARC-Record-ID"), req.rec_headers.get_header("WARC-Record-ID")]
    path = tmp_path / (writer.current_key + layout.OPEN_SUFFIX)
    writer._fh.close()  # the crawl "dies" after its last whole pair

    recover(tmp_path)
    final = path.with_name(path.name[: -len(layout.OPEN_SUFFIX)])
    warcio_check([final])
    assert [r["id"] for r in read_all(final)][1:] == ids  # every pair, the revisit's and those after it
