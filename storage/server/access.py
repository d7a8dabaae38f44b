"""Who may read what `serve` serves: loopback by default, a token or an explicit --public beyond it.

    exposure(host, token, public)   the decision `serve` takes before it binds (BadInput if refused)
    TokenGate(app, token)           ASGI middleware: every request carries the token, or gets 401

The token is accepted as `Authorization: Bearer TOKEN`, as the cookie this
middleware sets, or once as `?token=TOKEN`: that request is answered with a
redirect to the same URL without the token and the cookie (HttpOnly,
SameSite=Strict), so a browser needs the token only in the first link.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse

from storage.errors import BadInput

COOKIE = "newsarchive_token"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: reachable from this machine only."""
    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def exposure(host: str, token: str | None, public: bool) -> str | None:
    """None for a loopback address; otherwise what serving there means, in one line
    (BadInput when neither a token nor --public was given)."""
    if is_loopback(host):
        return None
    if token:
        return f"listening on {host}: every request needs the token (Authorization: Bearer, or ?token= once)"
    if public:
        return (f"PUBLIC: listening on {host} without a token; anyone who can reach this address can read "
                "the whole archive")
    raise BadInput(f"--host {host} makes the archive reachable from other machines: give --token SECRET "
                   "(or NEWSARCHIVE_SERVE_TOKEN) to require it, or --public to serve it to anyone")


def _cookie_value(token: str) -> str:
    # the cookie is not the token itself, so it cannot be replayed as a bearer header elsewhere
    return hmac.new(token.encode("utf-8"), b"newsarchive reading room", hashlib.sha256).hexdigest()


class TokenGate:
    """ASGI middleware: answer 401 to every HTTP request without the token."""

    def __init__(self, app, token: str):
        if not token:
            raise ValueError("TokenGate needs a token")
        self.app = app
        self.token = token
        self.cookie = _cookie_value(token)

    def _bearer_ok(self, request: Request) -> bool:
        scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())

    def _cookie_ok(self, request: Request) -> bool:
        value = request.cookies.get(COOKIE)
        return bool(value) and hmac.compare_digest(value.encode(), self.cookie.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self._bearer_ok(request) or self._cookie_ok(request):
            await self.app(scope, receive, send)
            return
        given = request.query_params.get("token")
        if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            rest = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "token"]
            target = request.url.path + ("?" + urlencode(rest) if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, self.cookie, httponly=True, samesite="strict", path="/")
        else:
            response = PlainTextResponse(
                "this archive needs a token: send Authorization: Bearer TOKEN, or open the link with ?token=TOKEN\n",
                status_code=401, headers={"WWW-Authenticate": 'Bearer realm="newsarchive"'})
        await response(scope, receive, send)
