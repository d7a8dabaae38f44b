"""Rewritten replay for `serve`: pywb as a separate process behind our routes.

pywb (GPL) is run, never imported: its own program (``.venv-pywb/bin/wayback``,
``--pywb`` or ``$NEWSARCHIVE_PYWB``) on a loopback port, with a collection
written by storage/pywb.py into a temporary folder. `serve` starts it in the
app's lifespan and stops it there (on Ctrl-C and SIGTERM uvicorn runs the
lifespan shutdown; a try/finally around uvicorn's run would never run, as
uvicorn re-raises the signal), and the kernel stops it if `serve` is killed
outright (PR_SET_PDEATHSIG), so it is never left behind.

    /web/TIMESTAMP/URL, /web/TIMESTAMPmp_/URL, cs_, js_, im_, ...   proxied to pywb
    /pywb-static/...                                               pywb's wombat.js and friends
    /web/TIMESTAMPid_/URL, text_, /web/URL, /web/timemap/, /cdx     ours (wayback.py, cdx.py)

The request path goes through as sent (percent-escapes intact) with its Host,
so pywb writes its URLs for our address; bodies stream both ways untouched.
A page's Link header becomes ours (the full RFC 7089 set); Link values of the
archived site (pywb passes them on) become X-Archive-Orig-Link, so a preload
hint cannot send the browser to the live site. pywb's index is written again,
in the background, when a catalog sync brought new captures.

When pywb cannot be found or does not start, `serve` says so once and
/web/TIMESTAMP/URL serves the archived payload (wayback.memento).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from warcio.timeutils import datetime_to_timestamp

from storage import pywb
from storage.archive import Archive
from storage.capture import Capture
from storage.errors import BadInput, StorageError
from storage.server import wayback

log = logging.getLogger("newsarchive.serve")

STATIC_PREFIX = "pywb-static"
START_TIMEOUT = 120.0  # seconds: generous, a busy machine starts pywb slowly
STOP_TIMEOUT = 15.0
# Hop-by-hop headers belong to one connection; Content-Length is recomputed when streaming.
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "trailers", "transfer-encoding", "upgrade", "content-length", "proxy-connection"}
_OURS = {"date", "server"}  # uvicorn writes its own
_PR_SET_PDEATHSIG = 1
SPAWN_ATTEMPTS = 3
_ORIGINAL = re.compile(rb'<([^>]*)>\s*;\s*rel="original"')
PYWB_DECODES = {"gzip", "deflate", "br"}  # one layer; zstd and nested codings it passes on garbled


_libc = None


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends SIGTERM when the thread that started it
    exits (so pywb is started from the event loop's thread, never a worker thread)."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PywbReplay:
    """pywb for one archive: started by ``start()``, stopped by ``stop()`` (the lifespan)."""

    def __init__(self, archive: Archive, program: Path, *, say=log.warning):
        self.archive = archive
        self.program = Path(program)
        self.say = say  # how `serve` tells its operator (once on start)
        self.proc: subprocess.Popen | None = None
        self.base: str | None = None
        self.folder: Path | None = None
        self.index: Path | None = None
        self.client = None
        self._synced = None  # the archive's last SyncReport reflected in pywb's index
        self._stale = False  # captures arrived that pywb's index does not have yet
        self._refreshing: asyncio.Task | None = None
        self._log = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # -- lifespan --------------------------------------------------------------

    async def start(self) -> bool:
        """Write pywb's collection, start pywb, wait until it answers. False (and said
        once) when it cannot: replay then serves payloads unrewritten."""
        import httpx

        try:
            token = secrets.token_hex(8)
            await run_in_threadpool(self._prepare, token)
            self.client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=False,
                                            trust_env=False)
            for attempt in range(SPAWN_ATTEMPTS):
                self._spawn()  # here, in the event loop's thread: see _die_with_parent
                try:
                    await self._wait_ready(token)
                    break
                except RuntimeError:
                    # pywb exits at once when another process took the port we picked for it
                    # between our probe and its bind: pick another, a few times
                    if self.proc.poll() is None or attempt == SPAWN_ATTEMPTS - 1:
                        raise
                    self._log.close()
        except (StorageError, OSError, RuntimeError) as exc:
            self.say(f"pywb did not start ({exc}); /web/TIMESTAMP/URL serves archived payloads "
                     "without rewriting")
            await self.stop()
            return False
        self.say(f"rewritten replay through pywb (pid {self.proc.pid}, {self.program})")
        return True

    def _prepare(self, token: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="newsarchive-pywb-"))
        collection = pywb.write_collection(self.archive, self.folder, static_prefix=STATIC_PREFIX)
        self.index = collection.index
        self._synced = self.archive.last_sync
        # served only by our own pywb: proves the port answers with the process we started
        (self.folder / "static").mkdir()
        (self.folder / "static" / f"ready-{token}.txt").write_text(token)

    def _spawn(self) -> None:
        global _libc
        _libc = _libc or ctypes.CDLL(None, use_errno=True)  # loaded here, not in the forked child
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        self._log = open(self.folder / "wayback.log", "wb")
        # an s3:// archive is read by boto3 inside pywb's venv, with the AWS_* settings our own
        # S3 backend reads; checksums only when required, as many S3-compatible servers want
        env = {"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
               "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required", **os.environ}
        self.proc = subprocess.Popen(
            [str(self.program), "--bind", "127.0.0.1", "--port", str(port)], env=env,
            cwd=self.folder, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends it and anything it started
            preexec_fn=_die_with_parent)

    async def _wait_ready(self, token: str) -> None:
        url = f"{self.base}/{STATIC_PREFIX}/ready-{token}.txt"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"it exited with {self.proc.returncode}: {self._log_tail()}")
            try:
                answer = await self.client.get(url, timeout=5.0)
                if answer.status_code == 200 and answer.text == token:
                    return
            except Exception:  # not listening yet
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answer on {self.base} after {START_TIMEOUT:.0f} s: {self._log_tail()}")
            await asyncio.sleep(0.2)

    def _log_tail(self) -> str:
        try:
            lines = (self.folder / "wayback.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1][:200] if lines else "no output"

    async def stop(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            try:
                await self._refreshing
            except (asyncio.CancelledError, Exception):
                pass
            self._refreshing = None
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + STOP_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    # -- requests --------------------------------------------------------------

    def _refresh_index(self) -> None:
        """After a sync that brought captures, write pywb's index again in the background
        (seconds for a few hundred thousand captures: no request waits for it)."""
        report = self.archive.last_sync
        if report is self._synced:
            return
        self._synced = report
        if report is None or not report.captures:
            return
        self._stale = True
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(self._rewrite())

    async def _rewrite(self) -> None:
        while self._stale:  # captures that arrive while writing: once more after
            self._stale = False
            try:
                await run_in_threadpool(pywb.write_index, self.archive.catalog, self.index)
            except StorageError as exc:
                log.warning("pywb's index was not refreshed: %s", exc)

    async def forward(self, request: Request, path: str) -> Response:
        """Send the request to pywb as it came; pywb's answer as it comes."""
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
        headers.append(("x-forwarded-proto", request.url.scheme))
        query = request.scope.get("query_string") or b""
        target = self.base + path + ("?" + query.decode("latin-1") if query else "")
        try:
            upstream = await self.client.send(
                self.client.build_request(request.method, target, headers=headers), stream=True)
        except Exception as exc:
            raise StorageError(f"pywb did not answer: {exc}") from None
        out = [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in _HOP | _OURS]
        response = StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code,
                                     background=BackgroundTask(upstream.aclose))
        response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out]
        return response

    async def proxy(self, request: Request, ts: str, modifier: str, url: str) -> Response:
        """/web/TIMESTAMP[MODIFIER]/URL through pywb, with our Link header on the page."""
        self._refresh_index()
        raw = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        response = await self.forward(request, raw)
        try:
            found, current = await run_in_threadpool(self._served_capture, url, response.raw_headers)
            if current is not None:
                # pywb decodes the stored payload with no limit and streams it all out
                # (1 GiB from a 1 MB gzip bomb): refuse what the archive would not decode
                as_stored = f"/web/{current.timestamp}id_/{current.url}"
                codings = await run_in_threadpool(self.archive.check_decodes, current, as_stored=as_stored)
                if codings and (len(codings) > 1 or codings[0] not in PYWB_DECODES):
                    # pywb would send these bytes still encoded, with no Content-Encoding
                    raise StorageError(f"pywb cannot replay {current.url} at {current.timestamp}: its payload "
                                       f"is stored {', '.join(codings)}-encoded, and pywb decodes only one of "
                                       f"{', '.join(sorted(PYWB_DECODES))}; {as_stored} gives it as stored")
        except BaseException:
            await response.background()  # pywb's answer is not read further
            raise
        links = [v for k, v in response.raw_headers if k == b"link"]
        if not links:
            return response
        kept = [(k, v) for k, v in response.raw_headers if k != b"link"]
        own = _pywb_link(response.raw_headers)
        for value in links:
            if value is not own:  # the archived site's own Link
                kept.append((b"x-archive-orig-link", value))
            elif modifier:  # pywb's memento links of a page's resource
                kept.append((b"link", value))
        if not modifier and current is not None:
            kept.append((b"link", wayback.link_header(request, found, current).encode("latin-1")))
        response.raw_headers = kept
        return response

    def _served_capture(self, url: str, headers: list[tuple[bytes, bytes]]) -> tuple[list[Capture], Capture | None]:
        """The captures of the URL pywb answered with, and the one it served (by its
        Memento-Datetime): those of the URL asked for, else of the one pywb's own Link
        rel="original" names (its fuzzy matching answers ``?_=123`` or ``?utm_source=...``
        with the capture of the URL without them)."""
        when = next((v for k, v in headers if k == b"memento-datetime"), None)
        if not when:
            return [], None
        try:
            ts = datetime_to_timestamp(parsedate_to_datetime(when.decode("latin-1")))
        except (TypeError, ValueError):
            return [], None
        own = _pywb_link(headers)
        original = _ORIGINAL.search(own).group(1).decode("latin-1") if own else None
        found, current = [], None
        for candidate in dict.fromkeys(u for u in (url, original) if u):
            try:
                found = self.archive.captures(candidate)
            except BadInput:  # a URL our catalog cannot key: nothing to check it against
                continue
            current = next((c for c in reversed(found) if c.timestamp == ts), None)
            if current is not None:
                break
        return found, current


def _pywb_link(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """pywb's own Memento Link header: the last one naming a rel="original". pywb passes an
    archived response's Link headers on as they are, before its own, so a hostile page's
    Link can name an original too and must not be taken for pywb's."""
    return next((v for k, v in reversed(headers) if k == b"link" and _ORIGINAL.search(v)), None)


async def static(request: Request) -> Response:
    replay: PywbReplay | None = getattr(request.app.state, "replay", None)
    if replay is None or not replay.running:
        return PlainTextResponse("pywb is not running here\n", status_code=404)
    raw = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    return await replay.forward(request, raw)


routes = [Route(f"/{STATIC_PREFIX}/{{path:path}}", static, methods=["GET"])]
