"""A small HTTP/1.1 server for a static news site on loopback.

Serves the test suite's sites (the demo site has its own small server in flows/demo_site.py).
Each route fixes the exact status line, header lines (repeated ones included)
and body bytes, optionally sent chunked, so tests can compare what a crawl
archived with exactly what was sent. Every request is logged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    reason: str | None = None  # None: the standard phrase
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunked: bool = False  # send with Transfer-Encoding: chunked instead of Content-Length


@dataclass
class LoggedRequest:
    method: str
    path: str  # path with query, as sent on the request line
    headers: list[tuple[str, str]]


class SiteServer:
    """Serve `routes` (path with query -> Route) on 127.0.0.1 in a thread.

    `routes` may also be a callable taking (path, server) and returning a Route
    or None, for sites that compute pages (e.g. with the server's own port).
    """

    def __init__(self, routes: dict[str, Route] | Callable[[str, "SiteServer"], Route | None], host: str = "127.0.0.1", port: int = 0):
        self.routes = routes
        self.requests: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def host(self) -> str:
        return self.httpd.server_address[0]

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def route_for(self, path: str) -> Route | None:
        if callable(self.routes):
            return self.routes(path, self)
        return self.routes.get(path)

    def fetched_paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def start(self) -> "SiteServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="siteserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "SiteServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "newsarchive-siteserver"

            def log_message(self, format, *args):  # quiet: the request log is kept in memory
                pass

            def do_HEAD(self):
                self._serve(send_body=False)

            def do_GET(self):
                self._serve(send_body=True)

            def _serve(self, send_body: bool):
                with server._lock:
                    server.requests.append(LoggedRequest(self.command, self.path, list(self.headers.items())))
                route = server.route_for(self.path)
                if route is None:
                    route = Route(b"<html><body><h1>Not found</h1></body></html>", status=404,
                                  headers=[("Content-Type", "text/html; charset=utf-8")])
                self.send_response_only(route.status, route.reason)
                for name, value in route.headers:
                    self.send_header(name, value)
                if route.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if not send_body:
                    return
                if route.chunked:
                    body = route.body
                    for start in range(0, len(body), 1000):
                        piece = body[start:start + 1000]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.wfile.write(route.body)

        return Handler
