"""What a failed fetch was: a stable kind (stats key newsarchive/errors/<kind>,
spiders/kinds.py lists them) and a sentence a person can read, never a Twisted repr.
"""

from __future__ import annotations

from typing import Any

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    NotSupported,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import error as twisted_errors

from spiders.guard import Refused


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc`, what it was raised from, and the failures a Twisted ResponseFailed holds."""
    out, todo = [], [exc]
    while todo and len(out) < 10:
        e = todo.pop(0)
        out.append(e)
        todo += [getattr(r, "value", r) for r in getattr(e, "reasons", None) or ()]
        if e.__cause__ is not None:
            todo.append(e.__cause__)
    return out


def error_kind(failure_or_exc: Any) -> str:
    """A short, stable name for why a fetch failed (stats key newsarchive/errors/<kind>)."""
    exc = getattr(failure_or_exc, "value", failure_or_exc)
    if isinstance(exc, Refused):
        return exc.kind
    if isinstance(exc, HttpError):
        return status_kind(exc.response.status)
    if isinstance(exc, (CannotResolveHostError, twisted_errors.DNSLookupError)):
        return "dns"
    if isinstance(exc, (DownloadTimeoutError, twisted_errors.TimeoutError, twisted_errors.TCPTimedOutError)):
        return "timeout"
    if isinstance(exc, DownloadCancelledError):
        return "too-large"  # Scrapy cancels a download only past DOWNLOAD_MAXSIZE
    if isinstance(exc, NotSupported):
        return "bad-scheme"  # no download handler: only http(s) have one
    if isinstance(exc, ResponseDataLossError):
        return "data-loss"
    names = " ".join(type(e).__module__ + "." + type(e).__name__ for e in _causes(exc))
    if "SSL" in names or "TLS" in names:
        return "tls"
    if isinstance(exc, (DownloadFailedError, DownloadConnectionRefusedError, twisted_errors.ConnectError, twisted_errors.ConnectionLost,
                        twisted_errors.ConnectionDone, ConnectionError)) or "ResponseNeverReceived" in names \
            or "ResponseFailed" in names:
        return "connection"
    return "other"


def describe_failure(failure_or_exc: Any) -> str:
    """Why a fetch failed, in words (no Twisted reprs), for error samples and the log."""
    exc = getattr(failure_or_exc, "value", failure_or_exc)
    causes = _causes(exc)
    kinds = {type(e) for e in causes}
    names = {t.__name__ for t in kinds}

    def has(*types) -> bool:
        return any(issubclass(t, types) for t in kinds)

    first = " ".join(str(exc).split())
    if isinstance(exc, Refused):
        return exc.message
    kind = error_kind(exc)
    if kind == "timeout":
        return f"no complete answer in time (DOWNLOAD_TIMEOUT): {first}" if first else "no complete answer in time"
    if kind == "dns":
        return f"the host name does not resolve: {first}" if first else "the host name does not resolve"
    if kind == "too-large":
        return "the body is larger than DOWNLOAD_MAXSIZE: not downloaded"
    if kind == "bad-scheme":
        return f"no download handler for this scheme (only http and https are fetched): {first}"
    if kind == "data-loss":
        return "the connection closed before the whole body (as announced) arrived"
    if has(DownloadConnectionRefusedError, twisted_errors.ConnectionRefusedError):
        return "connection refused"
    if has(twisted_errors.ConnectError) and not has(twisted_errors.ConnectionLost, twisted_errors.ConnectionDone):
        return f"could not connect: {' '.join(str(causes[-1]).split())}"
    before_answer = "ResponseNeverReceived" in names
    if has(twisted_errors.ConnectionDone):
        return ("the server closed the connection without answering" if before_answer
                else "the server closed the connection before the response was complete")
    if has(twisted_errors.ConnectionLost, ConnectionError):
        return ("the connection was reset before the server answered" if before_answer
                else "the connection was reset while the response was read")
    if kind == "tls":
        return "the TLS handshake failed"
    readable = [" ".join(str(e).split()) for e in causes if str(e) and not str(e).startswith("[<")]
    return (readable[0] if readable else type(exc).__name__)[:300]


def status_kind(status: int) -> str:
    return f"http-{status // 100}xx"
