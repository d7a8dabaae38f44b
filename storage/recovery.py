"""Crash recovery for a spool: the spool lock, and salvage of what a dead crawl left.

A crawl writes SPOOL/<key>.open files and renames them when they are closed
(spiders/warcfiles.py, spiders/pipelines.py). A crawl killed at any moment
(SIGKILL, OOM, power loss) leaves `.open` files behind. `recover_spool` makes
them final so that nothing that was written is lost and only valid WARCs go on:

- a WARC (capture or text) is scanned gzip member by member (one member per
  record); every complete member is kept, a torn trailing one is cut, and the
  file is cut further back until every request/response record has its partner
  (WARC-Concurrent-To) in the file, so pairs stay whole. What is left is read
  back with warcio (digests checked) and renamed to its final name. A WARC with
  no complete record beyond its warcinfo is removed.
- `.txt`/`.json` article files are written whole and renamed (atomic writes):
  an `.open` one never finished, and is removed. Whether the article has text
  is decided by its conversion record; `newsarchive reextract` re-derives it.

Recovery must never touch a file a live crawl is still writing. Every process
that writes or empties a spool holds `SpoolLock` (fcntl.flock on SPOOL/.lock):
a run takes it once and shares it with its crawl subprocess, which keeps it for
its whole life. The kernel drops a flock when its holder dies, even on SIGKILL,
so a lock that can be taken means nobody is writing: a killed run never blocks
the next one. A holder that lets go removes .lock (still locked; a taker checks
it locked the file that is there). The lock is taken without waiting; a held
one is `SourceBusy` with the holder's pid. A `.lock` that still names a pid
when it is taken was left by a holder that died (`SpoolLock.stale_pid`).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from storage import layout
from storage.backends import fsync_dir
from storage.errors import Busy, StorageError

log = logging.getLogger("newsarchive.recovery")

LOCK_NAME = ".lock"
QUARANTINE = ".quarantine"  # hidden: never indexed, never uploaded
_CHUNK = 1 << 16
_MAX_OUT = 1 << 20  # bytes of decompressed output per step: memory stays flat
_MAX_HEADER = 1 << 20
_PAIRED = ("request", "response", "revisit")  # a revisit stands in for a response


# --------------------------------------------------------------------------- lock

class SourceBusy(Busy):
    """Another process holds the spool's lock: it is crawling or archiving this source."""

    def __init__(self, source: str, pid: int | None):
        self.source = source
        self.pid = pid
        super().__init__(f"source {source} is being crawled by another process (pid {pid if pid else 'unknown'})")


class SpoolLock:
    """An exclusive, non-blocking flock on SPOOL/.lock, taken once per run.

    Functions that must not run beside a crawl writing into the spool
    (`recover_spool`) take the held lock as an argument, so the type says who
    may call them. `fd` may be passed to a child process (subprocess pass_fds):
    the child then shares this very lock (flock belongs to the open file), so
    it stays held while either of them lives, and the kernel drops it when the
    last of them dies, even on SIGKILL.
    """

    def __init__(self, spool: str | os.PathLike, source: str | None = None):
        self.spool = Path(spool)
        self.source = source or self.spool.name
        self.path = self.spool / LOCK_NAME
        self.fd: int | None = None
        # pid a dead holder left in .lock (a holder that lets go removes the file):
        # what the run summary reports as a stale lock found and cleared
        self.stale_pid: int | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def acquire(self) -> "SpoolLock":
        if self.fd is not None:
            raise RuntimeError("SpoolLock.acquire called twice on one object")
        self.spool.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise SourceBusy(self.source, read_lock_pid(self.spool)) from None
                raise
            # the holder before us removes the file when it lets go: make sure we
            # locked the file that is there now, not one it just unlinked
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.stale_pid = _pid_in(os.pread(fd, 64, 0))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:  # leave a clean spool; unlinked while still locked (see acquire)
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                os.unlink(self.path)
        except OSError:
            pass
        os.close(fd)  # closing the last descriptor of the open file drops the flock

    def __enter__(self) -> "SpoolLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def read_lock_pid(spool: str | os.PathLike) -> int | None:
    """The pid written into SPOOL/.lock by its holder (None if unknown)."""
    try:
        return _pid_in((Path(spool) / LOCK_NAME).read_bytes())
    except OSError:
        return None


def _pid_in(data: bytes) -> int | None:
    try:
        return int(data.split()[0])
    except (ValueError, IndexError):
        return None


def hold_inherited_lock(fd: int, spool: str | os.PathLike, source: str | None = None) -> int:
    """In a child given the parent's lock descriptor: check that it is that spool's lock, held.

    flock on the descriptor the parent locked succeeds at once (same open file);
    anything else (a stale or wrong fd, another spool) is SourceBusy or OSError.
    """
    spool = Path(spool)
    os.set_inheritable(fd, False)  # this process's own children (extraction pool) must not keep it alive
    st, want = os.fstat(fd), os.stat(spool / LOCK_NAME)
    if (st.st_dev, st.st_ino) != (want.st_dev, want.st_ino):
        raise StorageError(f"lock descriptor {fd} is not the lock of spool {spool}")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise SourceBusy(source or spool.name, read_lock_pid(spool)) from None
        raise
    return fd


# --------------------------------------------------------------------------- scanning WARCs

@dataclass
class Member:
    """One gzip member of a WARC file: where it is and the record inside."""

    offset: int
    length: int
    complete: bool  # a whole gzip member (CRC checked) holding one whole WARC record
    rec_type: str | None = None
    record_id: str | None = None
    concurrent_to: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def end(self) -> int:
        return self.offset + self.length


class _RecordReader:
    """Reads a WARC record's header from decompressed output; counts the rest."""

    def __init__(self):
        self.head = bytearray()
        self.headers: dict[str, list[str]] | None = None
        self.block = 0
        self.tail = b""
        self.problem: str | None = None

    def feed(self, data: bytes) -> None:
        if not data or self.problem:
            return
        if self.headers is None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > _MAX_HEADER:
                    self.problem = "WARC header too long"
                return
            rest = bytes(self.head[end + 4:])
            self._parse(bytes(self.head[:end]))
            self.head = bytearray()
            data = rest
        self.block += len(data)
        self.tail = (self.tail + data)[-4:]

    def _parse(self, head: bytes) -> None:
        lines = head.decode("utf-8", "replace").split("\r\n")
        if not lines[0].startswith("WARC/"):
            self.problem = "not a WARC record"
            self.headers = {}
            return
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers.setdefault(name.strip().lower(), []).append(value.strip())
        self.headers = headers

    def finish(self, member: Member) -> Member:
        h = self.headers
        if self.problem or h is None:
            member.complete, member.problem = False, self.problem or "no WARC header"
            return member
        member.rec_type = (h.get("warc-type") or [None])[0]
        member.record_id = (h.get("warc-record-id") or [None])[0]
        member.concurrent_to = tuple(h.get("warc-concurrent-to") or ())
        try:
            length = int((h.get("content-length") or [""])[0])
        except ValueError:
            member.complete, member.problem = False, "no Content-Length"
            return member
        if self.block != length + 4 or self.tail != b"\r\n\r\n" or not member.record_id:
            member.complete, member.problem = False, "record shorter or longer than its Content-Length"
        return member


def scan_members(fh: BinaryIO) -> Iterator[Member]:
    """Every gzip member of a stream, in order; the last one may be incomplete.

    Streams: reads the file in chunks and decompresses at most _MAX_OUT bytes
    at a time, keeping only each record's header. Stops after the first member
    that is not whole (torn, corrupt, or not a WARC record).
    """
    pos = 0
    data = b""
    while True:
        if not data:
            data = fh.read(_CHUNK)
            if not data:
                return
        start = pos
        d = zlib.decompressobj(wbits=31)  # gzip: header, deflate, CRC32 and size checked
        reader = _RecordReader()
        while True:
            try:
                out = d.decompress(data, _MAX_OUT)
            except zlib.error as exc:
                yield Member(start, pos - start, False, problem=f"gzip: {exc}")
                return
            rest = d.unused_data if d.eof else d.unconsumed_tail
            pos += len(data) - len(rest)
            reader.feed(out)
            if d.eof:
                data = rest
                yield reader.finish(Member(start, pos - start, True))
                break
            data = rest
            if not data and len(out) < _MAX_OUT:
                data = fh.read(_CHUNK)
                if not data:  # end of file inside the member: drain what zlib still holds
                    while not d.eof:
                        out = d.decompress(b"", _MAX_OUT)
                        if not out:
                            break
                        reader.feed(out)
                    if d.eof:
                        yield reader.finish(Member(start, pos - start, True))
                    else:
                        yield Member(start, pos - start, False, problem="torn gzip member (file ends inside it)")
                    return
        if reader.problem or not reader.headers:
            return


def whole_prefix(members: Iterator[Member]) -> tuple[list[Member], Member | None]:
    """The longest run of leading members that are complete records with every
    request/response paired (WARC-Concurrent-To, either direction) inside it.

    Returns (kept members, first member that was not complete, if any).
    """
    seen: list[Member] = []
    kept = 0
    types: dict[str, str | None] = {}  # record id -> WARC-Type
    refs: dict[str, set[str]] = {}  # record id -> ids of records that name it
    unpaired: set[str] = set()
    bad = None
    for m in members:
        if not m.complete:
            bad = m
            break
        seen.append(m)
        rid = m.record_id or ""
        types[rid] = m.rec_type
        for other in m.concurrent_to:
            refs.setdefault(other, set()).add(rid)
        if m.rec_type in _PAIRED:
            partners = {o for o in set(m.concurrent_to) | refs.get(rid, set())
                        if o != rid and types.get(o) in _PAIRED}
            if partners:
                unpaired -= partners
            else:
                unpaired.add(rid)
        if not unpaired:
            kept = len(seen)
    return seen[:kept], bad


# --------------------------------------------------------------------------- recovery

@dataclass
class Salvaged:
    key: str
    records: int  # records kept, warcinfo included
    responses: int
    conversions: int
    kept_bytes: int
    cut_bytes: int  # torn or unpaired tail removed


@dataclass
class RecoveryReport:
    salvaged: list[Salvaged] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)  # (key of the .open file, why)
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (key, why): kept aside, never uploaded

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.salvaged]

    def __bool__(self) -> bool:
        return bool(self.salvaged or self.removed or self.quarantined)

    def as_dict(self) -> dict:
        return {
            "salvaged": [vars(s).copy() for s in self.salvaged],
            "removed": [{"key": k, "reason": r} for k, r in self.removed],
            "quarantined": [{"key": k, "reason": r} for k, r in self.quarantined],
        }

    def extend(self, other: "RecoveryReport") -> "RecoveryReport":
        self.salvaged += other.salvaged
        self.removed += other.removed
        self.quarantined += other.quarantined
        return self


def validate_warc(path: str | os.PathLike) -> int:
    """Read every record with warcio, digests checked (what `warcio check` does);
    return the record count or raise StorageError.

    Payloads are read as stored, not decoded: a record's validity (framing,
    digests) does not depend on its HTTP Content-Encoding, and decoding a
    hostile page's compression bomb here would cost what the crawl refused to.
    """
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    count = 0
    try:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh, check_digests=True):
                stream = record.raw_stream
                while stream.read(_MAX_OUT):
                    pass
                if record.digest_checker.passed is False:
                    raise StorageError(f"digest mismatch: {'; '.join(map(str, record.digest_checker.problems))}")
                count += 1
    except (ArchiveLoadFailed, OSError, ValueError, EOFError, zlib.error) as exc:
        raise StorageError(f"not a valid WARC: {exc}") from None
    return count


def _quarantine(spool: Path, path: Path, key: str, why: str, report: RecoveryReport) -> None:
    target = spool / QUARANTINE / key
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    report.quarantined.append((key, why))
    log.error("recovery: %s kept aside in %s: %s", key, spool / QUARANTINE, why)


def salvage_warc(spool: Path, path: Path, report: RecoveryReport) -> None:
    """Make one WARC `.open` file final (see the module docstring)."""
    open_key = path.relative_to(spool).as_posix()
    key = open_key[: -len(layout.OPEN_SUFFIX)]
    size = path.stat().st_size
    with open(path, "rb") as fh:
        kept, bad = whole_prefix(scan_members(fh))
    if bad is not None:
        log.info("recovery: %s: %s at offset %d", open_key, bad.problem, bad.offset)
    beyond_info = [m for m in kept if m.rec_type != "warcinfo"]
    if not beyond_info:
        path.unlink()
        report.removed.append((open_key, "no complete record beyond warcinfo"))
        log.warning("recovery: removed %s: no complete record beyond warcinfo", open_key)
        return
    end = kept[-1].end
    if end < size:
        with open(path, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    try:
        count = validate_warc(path)
        if count != len(kept):
            raise StorageError(f"warcio reads {count} records where {len(kept)} were kept")
    except StorageError as exc:
        _quarantine(spool, path, key, str(exc), report)
        return
    final = spool / key
    if final.exists():
        _quarantine(spool, path, key, f"{key} already exists in the spool", report)
        return
    os.rename(path, final)
    fsync_dir(final.parent)
    s = Salvaged(key, len(kept), sum(m.rec_type == "response" for m in kept),
                 sum(m.rec_type == "conversion" for m in kept), end, size - end)
    report.salvaged.append(s)
    log.warning("recovery: salvaged %s: %d records (%d responses, %d conversions), %d bytes; cut %d bytes",
                key, s.records, s.responses, s.conversions, s.kept_bytes, s.cut_bytes)


def open_files(spool: str | os.PathLike) -> list[Path]:
    """The `.open` files of a spool (hidden folders skipped), sorted."""
    spool = Path(spool)
    found = []
    for folder, dirs, names in os.walk(spool):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / n for n in names if n.endswith(layout.OPEN_SUFFIX)]
    return sorted(found)


def recover_spool(lock: SpoolLock) -> RecoveryReport:
    """Make final what a dead crawl left in the locked spool (`.open` files); see
    the module docstring. The caller holds `lock`, so no live crawl writes there.
    Idempotent: a recovery killed midway is finished by the next one.
    """
    if not lock.held:
        raise RuntimeError("recover_spool needs the spool's lock held")
    spool = lock.spool
    report = RecoveryReport()
    for path in open_files(spool):
        open_key = path.relative_to(spool).as_posix()
        name = path.name[: -len(layout.OPEN_SUFFIX)]
        if name.endswith(".warc.gz"):
            salvage_warc(spool, path, report)
        elif name.endswith((".txt", ".json")) and open_key.startswith("articles/"):
            path.unlink()
            report.removed.append((open_key, "article file never finished (its text can be re-derived "
                                             "with newsarchive reextract)"))
            log.warning("recovery: removed unfinished %s", open_key)
        else:
            log.warning("recovery: left %s alone: not a file a crawl writes", open_key)
    return report
