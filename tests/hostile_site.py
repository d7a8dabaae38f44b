"""A hostile news site on 127.0.0.1, a bait server on 127.0.0.2, and a canary.

`HostileSite` serves exact bytes (tests/siteserver.py) from routes a test adds:
good articles among traps (bombs, redirects, links to file: and to the bait).
`BaitServer` (127.0.0.2, an address no source names) answers any connection
with a page holding the canary and records every connection it accepts: a
crawl that touches it fails its test. The canary is also the content of a local
file that hostile links point at (`file://...`), so the canary found anywhere
in an archive means something was read that never should have been.

`TrapServer` (127.0.0.1, another port: the same named host) misbehaves at the
socket level: stalls, drips, resets, lies about the length.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from siteserver import Route, SiteServer

HTML = [("Content-Type", "text/html; charset=utf-8")]
XML = [("Content-Type", "application/xml")]

_WORDS = ("council harbour bridge funding residents evening vote budget school river engineers repair "
          "library weekend market traffic station mayor report survey families winter museum").split()


def article_html(title: str, n_paragraphs: int = 6, *, extra: str = "") -> bytes:
    """A plain news article trafilatura extracts (several sentences per paragraph)."""
    paras = []
    for i in range(n_paragraphs):
        words = [_WORDS[(i * 7 + j * 3) % len(_WORDS)] for j in range(40)]
        paras.append(f"<p>{title} paragraph {i}: " + " ".join(words).capitalize() + ".</p>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<header><a href='/'>Home</a></header><article><h1>{title}</h1>{''.join(paras)}</article>"
            f"{extra}</body></html>").encode()


def page(title: str, *links: str, extra: str = "") -> Route:
    anchors = "".join(f'<li><a href="{href}">link</a></li>' for href in links)
    return Route(f"<html><head><title>{title}</title></head><body><h1>{title}</h1><ul>{anchors}</ul>{extra}"
                 f"</body></html>".encode(), headers=HTML)


class BaitServer(socketserver.ThreadingTCPServer):
    """Any connection to 127.0.0.2 is recorded and answered with the canary."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, canary: str, host: str = "127.0.0.2", port: int = 0):
        self.canary = canary
        self.connections: list[bytes] = []  # the first bytes each client sent
        self._lock = threading.Lock()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(5)
                try:
                    data = self.request.recv(65536)
                except OSError:
                    data = b""
                with server._lock:
                    server.connections.append(data)
                body = f"<html><body><p>{server.canary}</p><a href='/more'>more</a></body></html>".encode()
                try:
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                                         b"Connection: close\r\n\r\n%s" % (len(body), body))
                except OSError:
                    pass

        super().__init__((host, port), Handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="bait")
        self._thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.2:{self.port}{path}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class TrapServer(socketserver.ThreadingTCPServer):
    """Misbehaviour at the socket level, chosen by the request path (see `_traps`)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1"):
        self.hits: list[str] = []
        self._closing = threading.Event()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                sock = self.request
                sock.settimeout(30)
                try:
                    head = sock.recv(65536)
                except OSError:
                    return
                path = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else "/"
                server.hits.append(path)
                trap = server._traps().get(path.split("?")[0])
                try:
                    if trap:
                        trap(sock)
                    else:
                        sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

        super().__init__((host, 0), Handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="traps")
        self._thread.start()

    def _wait(self, seconds: float) -> bool:
        """Sleep, unless the server is stopping; True when it is."""
        return self._closing.wait(seconds)

    def _traps(self) -> dict[str, Callable[[socket.socket], None]]:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"

        def stall(sock):  # accept, read, never answer
            self._wait(120)

        def drip(sock):  # a body one byte at a time, forever
            sock.sendall(head + b"Content-Length: 100000\r\n\r\n<html><body>")
            while not self._wait(0.3):
                sock.sendall(b"x")

        def reset(sock):  # RST instead of an answer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

        def close(sock):  # a clean close, no answer
            sock.shutdown(socket.SHUT_RDWR)

        def short(sock):  # 1000 bytes announced, 100 sent
            sock.sendall(head + b"Content-Length: 1000\r\n\r\n" + b"<p>" + b"y" * 97)
            sock.shutdown(socket.SHUT_RDWR)

        def liar(sock):  # 5 GB announced
            sock.sendall(head + b"Content-Length: 5000000000\r\n\r\n<html>")
            self._wait(5)

        def reset_mid(sock):  # headers, some body, then RST
            sock.sendall(head + b"Content-Length: 100000\r\n\r\n" + b"z" * 5000)
            time.sleep(0.05)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

        return {"/stall": stall, "/drip": drip, "/reset": reset, "/close": close, "/short": short,
                "/liar": liar, "/reset-mid": reset_mid}

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._closing.set()
        self.shutdown()
        self.server_close()


class HostileSite:
    """The site a test builds: `add(path, Route)`, `articles(prefix, n)`, then a sources.toml."""

    def __init__(self, tmp: Path):
        self.canary = f"CANARY-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True, exist_ok=True)
        self.canary_file = tmp / "local-secret.txt"
        self.canary_file.write_text(f"root:x:0:0:{self.canary}\n")
        self.routes: dict[str, Route | Callable[[int], Route]] = {}
        self.prefixes: dict[str, Callable[[str], Route | None]] = {}  # path prefix -> route maker
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self.server = SiteServer(self._route).start()
        # the bait listens on the site's port too: a host name that resolves to 127.0.0.2
        # instead of 127.0.0.1 (DNS rebinding) would reach it with the site's own URLs
        self.bait = BaitServer(self.canary, port=self.server.port)
        self.traps: TrapServer | None = None
        self.good: list[str] = []  # URLs of the good articles

    def _route(self, path: str, server) -> Route | None:
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            n = self.hits[path]
        route = self.routes.get(path)
        if route is None:
            maker = next((m for p, m in self.prefixes.items() if path.startswith(p)), None)
            return maker(path) if maker else None
        return route(n) if callable(route) else route

    def url(self, path: str = "/") -> str:
        return self.server.url(path)

    @property
    def port(self) -> int:
        return self.server.port

    def add(self, path: str, route: Route | Callable[[int], Route]) -> str:
        """Serve `route` at `path` (a callable gets the hit count: 1 on the first request)."""
        self.routes[path] = route
        return self.url(path)

    def articles(self, prefix: str, n: int = 3) -> list[str]:
        """`n` good articles under PREFIX/news/; returns their paths."""
        paths = []
        for i in range(n):
            path = f"{prefix}/news/good-{i}"
            self.add(path, Route(article_html(f"Good story {prefix} {i}"), headers=HTML))
            self.good.append(self.url(path))
            paths.append(path)
        return paths

    def trap_server(self) -> TrapServer:
        if self.traps is None:
            self.traps = TrapServer()
        return self.traps

    def sources_toml(self, start: str = "/", *, name: str = "hostile", **overrides) -> str:
        src = {"name": name, "start_urls": [self.url(start)], "allow": ["/news/"], "depth": 2,
               "max_pages": 200, "delay": 0, "concurrency": 8}
        src.update(overrides)
        lines = ["[[source]]"]
        for key, value in src.items():
            if value is None:
                continue
            if isinstance(value, str):
                lines.append(f"{key} = {_toml_str(value)}")
            elif isinstance(value, list):
                lines.append(f"{key} = [{', '.join(_toml_str(v) for v in value)}]")
            else:
                lines.append(f"{key} = {value}")
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        self.server.stop()
        self.bait.stop()
        if self.traps is not None:
            self.traps.stop()


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
