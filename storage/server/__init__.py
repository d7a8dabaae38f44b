"""`newsarchive serve`: the archive over HTTP, read-only, as an ASGI app.

    app = create_app(open_archive("./archive"))    # a Starlette app
    serve(archive, host="127.0.0.1", port=8080)     # uvicorn, until interrupted

Routes live in modules by what they serve (storage/server/wayback.py: the
Memento and wayback replay routes; cdx.py: the CDX server API; replay.py:
rewritten replay through pywb, a process started and stopped in the app's
lifespan when `create_app` is given a `PywbReplay`; reading.py: the reading
room's pages at /; api.py: the same as JSON under /api/). With a `token`,
every request must carry it (access.py). Every NewsarchiveError becomes its
HTTP status with a one-line text body; anything else is a 500 that names no
internals. New indexes in the archive are picked up at most every
`sync_interval` seconds, on the request that finds the interval passed.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from storage.archive import Archive
from storage.errors import NewsarchiveError, StorageError
from storage.runs import RunHistory
from storage.server import access, api, cdx, reading, replay as replay_routes, wayback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

log = logging.getLogger("newsarchive.serve")


class _SyncCatalog:
    """ASGI middleware: before a request, ingest indexes added since the last sync
    (at most every `interval` seconds; one request syncs while the others answer)."""

    def __init__(self, app, archive: Archive, interval: float):
        self.app = app
        self.archive = archive
        self.interval = interval
        self._last = time.monotonic()
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and time.monotonic() - self._last >= self.interval:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(self._sync)
        await self.app(scope, receive, send)

    def _sync(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another request is syncing; answer from what we have
        try:
            self.archive.sync()
        except StorageError as exc:
            log.warning("sync failed: %s", exc)
        finally:
            self._last = time.monotonic()
            self._lock.release()


async def _one_line_error(request: Request, exc: NewsarchiveError) -> Response:
    return PlainTextResponse(f"{exc}\n", status_code=exc.http_status)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s: %r", request.url.path, exc)
    return PlainTextResponse("internal error\n", status_code=500)


def create_app(archive: Archive, *, sync_interval: float = 60.0, token: str | None = None,
               replay=None) -> Starlette:
    """The app; ``replay`` (a replay.PywbReplay) is started and stopped with it."""

    @asynccontextmanager
    async def lifespan(app):
        if replay is not None:
            await replay.start()
        try:
            yield
        finally:
            if replay is not None:
                await replay.stop()

    gate = [Middleware(access.TokenGate, token=token)] if token else []
    app = Starlette(
        routes=[*reading.routes, *api.routes, *wayback.routes, *cdx.routes, *replay_routes.routes],
        middleware=[*gate, Middleware(_SyncCatalog, archive=archive, interval=sync_interval)],
        exception_handlers={NewsarchiveError: _one_line_error, Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.archive = archive
    app.state.runs = RunHistory(archive.backend)
    app.state.replay = replay
    return app


def bind(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); StorageError if it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StorageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def server_for(app, sock: socket.socket, *, log_level: str = "info"):
    """A uvicorn Server for `app` on the bound socket `sock`: `.run(sockets=[sock])`."""
    import uvicorn

    # lifespan "on": the app starts and stops its replay process there
    config = uvicorn.Config(app, log_level=log_level, access_log=log_level == "info", lifespan="on")
    return uvicorn.Server(config)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
