"""Read-only HTTP API over an archive, in pywb's and the Wayback Machine's URL scheme.

    /web/timemap/link/URL      Memento TimeMap (RFC 7089, application/link-format)
    /web/timemap/json/URL      the same captures as JSON lines (pywb's CDX JSON)
    /web/URL                   TimeGate: 302 to the memento nearest Accept-Datetime
    /web/TIMESTAMPid_/URL      the archived payload as the site served it
    /web/TIMESTAMPtext_/URL    the clean text of that capture
    /web/TIMESTAMP/URL         the same as id_ (no rewriting here)
    /cdx?url=URL&matchType=&from=&to=&limit=&output=json   pywb's CDX server API

A timestamp that is not exactly a capture's redirects to the nearest capture,
as the Wayback Machine does. Standard library only: a ThreadingHTTPServer.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

from storage import urls
from storage.archive import Archive, ArchiveError, NotFound, parse_time
from storage.catalog import timestamp_datetime

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

_MEMENTO = re.compile(r"^/web/(\d{1,14})([a-z]{2,6}_)?/(.+)$", re.S)
_MODIFIERS = {None: "id_", "id_": "id_", "text_": "text_"}

# Hop-by-hop and framing headers are the connection's, not the site's.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "trailers", "transfer-encoding", "upgrade", "content-length"}
# Served as they were; everything else is kept as X-Archive-Orig-NAME (as pywb does).
_PASS_THROUGH = {"content-type", "content-encoding", "content-language", "content-disposition",
                 "last-modified", "etag", "location", "link", "vary"}

CDX_FIELDS = ("urlkey", "timestamp", "url", "mime", "status", "digest", "length", "offset", "filename")


def http_date(ts: str) -> str:
    return format_datetime(timestamp_datetime(ts), usegmt=True)


def _pad(ts: str | None, fill: str) -> str | None:
    if not ts:
        return None
    digits = re.sub(r"\D", "", ts)[:14]
    return digits + fill[len(digits):] if digits else None


def cdx_row(capture: dict) -> dict:
    """A catalog capture as pywb's CDX server writes it (strings, like the index)."""
    return {
        "urlkey": capture["urlkey"],
        "timestamp": capture["timestamp"],
        "url": capture["url"],
        "mime": capture["mime"] or "-",
        "status": str(capture["status"]) if capture["status"] is not None else "-",
        "digest": capture["digest"] or "-",
        "length": str(capture["length"]),
        "offset": str(capture["offset"]),
        "filename": capture["warc"],
    }


class _Reply(Exception):
    """Stop handling and answer with this status and one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ArchiveServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, archive: Archive, host: str, port: int, *, sync_interval: float = 60.0,
                 quiet: bool = False):
        self.archive = archive
        self.sync_interval = sync_interval
        self.quiet = quiet
        self._last_sync = time.monotonic()
        self._sync_lock = threading.Lock()
        super().__init__((host, port), ArchiveHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def maybe_sync(self) -> None:
        """Pick up indexes added since the last sync, at most every sync_interval seconds."""
        if time.monotonic() - self._last_sync < self.sync_interval:
            return
        if not self._sync_lock.acquire(blocking=False):
            return  # another request is syncing; answer from what we have
        try:
            self.archive.sync()
            self._last_sync = time.monotonic()
        except ArchiveError as exc:
            sys.stderr.write(f"newsarchive serve: sync failed: {exc}\n")
        finally:
            self._sync_lock.release()


class ArchiveHandler(BaseHTTPRequestHandler):
    server: ArchiveServer
    server_version = "newsarchive"
    protocol_version = "HTTP/1.1"

    # -- plumbing ------------------------------------------------------------

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        if not self.server.quiet:
            super().log_message(format, *args)

    @property
    def base(self) -> str:
        return f"http://{self.headers.get('Host') or self.server.url.split('//', 1)[1]}"

    def do_HEAD(self):
        self._handle(head=True)

    def do_GET(self):
        self._handle(head=False)

    def _handle(self, head: bool) -> None:
        self._head = head
        try:
            self.server.maybe_sync()
            self._route()
        except _Reply as reply:
            self._send_text(reply.status, str(reply) + "\n")
        except NotFound as exc:
            self._send_text(404, f"{exc}\n")
        except (ArchiveError, urls.URLError) as exc:
            self._send_text(400, f"{exc}\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # never a traceback to the client
            self.log_error("internal error on %s: %r", self.path, exc)
            self._send_text(500, "internal error\n")

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes = b"",
              reason: str | None = None) -> None:
        if reason:
            self.send_response(status, reason)
        else:
            self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not self._head:
            self.wfile.write(body)

    def _send_text(self, status: int, text: str, headers=(), content_type="text/plain; charset=utf-8"):
        self._send(status, [("Content-Type", content_type), *headers], text.encode("utf-8"))

    def _target(self, rest: str) -> str:
        """The archived URL at the end of a /web/ path (its query string included)."""
        if re.match(r"^https?%3a", rest, re.I):
            rest = unquote(rest)
        if not rest:
            raise _Reply(400, "no URL given: use /web/URL")
        return urls.normalize_input(rest)

    # -- routes --------------------------------------------------------------

    def _route(self) -> None:
        path = self.path
        if path.startswith("http://") or path.startswith("https://"):
            path = "/" + path.split("/", 3)[-1]  # absolute-form request target
        if path == "/" or path.startswith("/?"):
            return self._send_text(200, f"newsarchive: {self.server.archive.location}\n"
                                        "  /web/timemap/link/URL  /web/URL  /web/TIMESTAMPid_/URL  "
                                        "/web/TIMESTAMPtext_/URL  /cdx?url=URL\n")
        if path == "/cdx" or path.startswith("/cdx?"):
            return self._cdx(urlsplit(path).query)
        if path.startswith("/web/timemap/"):
            kind, _, rest = path[len("/web/timemap/"):].partition("/")
            if kind == "link":
                return self._timemap_link(self._target(rest))
            if kind == "json":
                return self._timemap_json(self._target(rest))
            raise _Reply(404, f"unknown timemap format {kind!r}: use link or json")
        match = _MEMENTO.match(path)
        if match:
            ts, modifier, rest = match.groups()
            if modifier not in _MODIFIERS:
                raise _Reply(404, f"unknown replay modifier {modifier!r}: use id_ or text_")
            return self._memento(ts, _MODIFIERS[modifier], self._target(rest))
        if path.startswith("/web/"):
            return self._timegate(self._target(path[len("/web/"):]))
        raise _Reply(404, f"not found: {path.split('?', 1)[0]}")

    def _captures(self, url: str) -> list[dict]:
        found = self.server.archive.captures(url)
        if not found:
            raise NotFound(f"no capture of {url} in {self.server.archive.location}")
        return found

    def _links(self, url: str, original: str) -> list[str]:
        return [f'<{original}>; rel="original"',
                f'<{self.base}/web/{url}>; rel="timegate"',
                f'<{self.base}/web/timemap/link/{url}>; rel="timemap"; type="application/link-format"']

    def _memento_url(self, capture: dict, modifier: str = "id_") -> str:
        return f"{self.base}/web/{capture['timestamp']}{modifier}/{capture['url']}"

    def _timemap_link(self, url: str) -> None:
        found = self._captures(url)
        original = found[-1]["url"]
        first, last = found[0]["timestamp"], found[-1]["timestamp"]
        lines = [f'<{original}>; rel="original"',
                 f'<{self.base}/web/timemap/link/{url}>; rel="self"; type="application/link-format"; '
                 f'from="{http_date(first)}"; until="{http_date(last)}"',
                 f'<{self.base}/web/{url}>; rel="timegate"']
        for i, capture in enumerate(found):
            rel = "memento"
            if i == len(found) - 1:
                rel = "last " + rel
            if i == 0:
                rel = "first " + rel
            lines.append(f'<{self._memento_url(capture)}>; rel="{rel}"; datetime="{http_date(capture["timestamp"])}"')
        self._send_text(200, ",\n".join(lines) + "\n", content_type="application/link-format")

    def _timemap_json(self, url: str) -> None:
        found = self._captures(url)
        body = "".join(json.dumps(cdx_row(c)) + "\n" for c in found)
        self._send_text(200, body, content_type="text/x-ndjson")

    def _timegate(self, url: str) -> None:
        accept = self.headers.get("Accept-Datetime")
        try:
            at = parse_time(accept) if accept else None
        except ArchiveError:
            raise _Reply(400, f"bad Accept-Datetime: {accept!r} (use an RFC 1123 date)") from None
        found = self._captures(url)
        capture = self.server.archive.nearest(url, at)
        links = self._links(url, found[-1]["url"])
        links.append(f'<{self._memento_url(capture)}>; rel="memento"; datetime="{http_date(capture["timestamp"])}"')
        self._send(302, [("Location", self._memento_url(capture)), ("Vary", "accept-datetime"),
                         ("Link", ", ".join(links)), ("Content-Type", "text/plain; charset=utf-8")])

    def _memento(self, ts: str, modifier: str, url: str) -> None:
        archive = self.server.archive
        found = self._captures(url)
        exact = [c for c in found if c["timestamp"] == ts]
        if not exact:  # not a capture's timestamp: go to the nearest one
            capture = archive.nearest(url, ts)
            self._send(302, [("Location", self._memento_url(capture, modifier)),
                             ("Content-Type", "text/plain; charset=utf-8")])
            return
        capture = exact[-1]
        memento_headers = [("Memento-Datetime", http_date(capture["timestamp"])),
                           ("Link", ", ".join(self._links(url, capture["url"])))]
        if modifier == "text_":
            text = archive.text(capture)
            return self._send_text(200, text, memento_headers)
        statusline, headers, _raw, body = archive.http_response(capture)
        code, _, reason = statusline.partition(" ")
        try:
            status = int(code)
        except ValueError:
            raise ArchiveError(f"capture of {url} at {ts} has no HTTP status") from None
        out = []
        for name, value in headers:
            lower = name.lower()
            if lower in _HOP_BY_HOP:
                continue
            if lower == "location":  # keep redirects inside the archive, at the same time
                value = f"{self.base}/web/{capture['timestamp']}id_/{urljoin(capture['url'], value)}"
            if lower in _PASS_THROUGH:
                out.append((name, value))
            else:
                out.append((f"X-Archive-Orig-{name}", value))
        self._send(status, out + memento_headers, body, reason=reason or None)

    def _cdx(self, query: str) -> None:
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        url = params.get("url")
        if not url:
            raise _Reply(400, "the url parameter is required: /cdx?url=URL")
        match_type = params.get("matchType") or params.get("matchtype") or "exact"
        try:
            limit = int(params["limit"]) if params.get("limit") else None
        except ValueError:
            raise _Reply(400, f"limit must be a number: {params['limit']!r}") from None
        sort = params.get("sort", "")
        rows = self.server.archive.catalog.captures(
            url, match_type, since=_pad(params.get("from"), "00000000000000"),
            until=_pad(params.get("to"), "99999999999999"), reverse=(sort == "reverse"),
            limit=None if sort == "closest" else limit)
        if sort == "closest" and params.get("closest"):
            target = timestamp_datetime(_pad(params["closest"], "00000101000000"))
            rows.sort(key=lambda c: abs((timestamp_datetime(c["timestamp"]) - target).total_seconds()))
            rows = rows[:limit] if limit is not None else rows
        records = [cdx_row(c) for c in rows]
        fields = [f for f in params.get("fl", "").split(",") if f] or None
        output = params.get("output", "cdxj")
        if fields:
            unknown = [f for f in fields if f not in CDX_FIELDS]
            if unknown:
                raise _Reply(400, f"unknown field(s) in fl: {', '.join(unknown)}")
        if output == "json":
            body = "".join(json.dumps({k: r[k] for k in (fields or CDX_FIELDS)}) + "\n" for r in records)
            return self._send_text(200, body, content_type="text/x-ndjson")
        if output == "text" or fields:
            body = "".join(" ".join(r[k] for k in (fields or CDX_FIELDS)) + "\n" for r in records)
            return self._send_text(200, body)
        body = "".join(
            f"{r['urlkey']} {r['timestamp']} " + json.dumps({k: r[k] for k in CDX_FIELDS[2:]}) + "\n"
            for r in records)
        self._send_text(200, body)


def make_server(archive: Archive, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                sync_interval: float = 60.0, quiet: bool = False) -> ArchiveServer:
    """A server bound to ``host:port`` (port 0: any free port); call serve_forever()."""
    try:
        return ArchiveServer(archive, host, port, sync_interval=sync_interval, quiet=quiet)
    except OSError as exc:
        raise ArchiveError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve_forever(archive: Archive, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted (Ctrl-C ends it quietly)."""
    server = make_server(archive, host, port)
    print(f"serving {archive.location} at {server.url}/web/ (Ctrl-C to stop)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
