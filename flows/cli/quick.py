"""What the command line needs before (or without) click: the debug switch, the one
error handler, and `get` itself, read without click when its arguments are plain.

`newsarchive get URL` is a look-up, and most of its time used to be imports:
click alone costs ~30 ms, a third of Python's own start-up and the read
together. `parse_get` understands exactly the plain forms of `get`'s arguments
(`get URL [--at TIME] [--as FORM] [--archive A | -a A] [--debug]`, `--opt=value`
too, and `--debug` before `get`) and gives up (None) on anything else, which
click then reads as always: help, usage errors, repeated or unknown options.
tests/test_cli_quick.py runs both ways on the same arguments.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

PROG = "newsarchive"
DEBUG_HINT = "rerun with --debug (or NEWSARCHIVE_DEBUG=1) for the traceback"
FORMS = ("text", "json", "html", "raw", "warc")
DEFAULT_ARCHIVE = "./archive"

_debug = False


def _print_traceback() -> None:
    import traceback

    traceback.print_exc()


def debug_enabled() -> bool:
    return _debug or os.environ.get("NEWSARCHIVE_DEBUG", "").strip().lower() not in {"", "0", "false", "no", "off"}


def set_debug(on: bool = True) -> None:
    global _debug
    _debug = _debug or bool(on)


def reported(run: Callable[[], int]) -> int:
    """``run()``'s exit code; every error it raises becomes one line on stderr and its code."""
    from storage.errors import NewsarchiveError

    try:
        return run()
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): not an error; silence the flush at exit
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return 0
    except NewsarchiveError as exc:
        if debug_enabled():
            _print_traceback()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes one line
        if debug_enabled():
            _print_traceback()
        if isinstance(exc, OSError) and exc.strerror:
            where = f": {exc.filename}" if exc.filename else ""
            print(f"{PROG}: error: {exc.strerror}{where}", file=sys.stderr)
            return 1
        hint = "" if debug_enabled() else f" ({DEBUG_HINT})"
        message = " ".join(str(exc).split()) or "(no message)"
        print(f"{PROG}: unexpected error: {type(exc).__name__}: {message}{hint}", file=sys.stderr)
        return 1


def open_for_lookup(location: str, url: str | None = None):
    """The archive at `location`; for a look-up of `url`, a missing archive is said in its terms."""
    from storage.archive import open_archive
    from storage.errors import NotFound

    try:
        return open_archive(location)
    except NotFound as exc:
        if url is None:
            raise
        raise NotFound(f"no captures of {url}: {exc}") from None


def get(url: str, at: str | None, form: str, archive: str) -> None:
    """`newsarchive get`: the capture's bytes on stdout."""
    from storage.times import parse_time

    parse_time(at)  # a bad time is one line before any look-up
    data = open_for_lookup(archive, url).get(url, at, as_=form)
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


_VALUE_OPTIONS = {"--at": "at", "--as": "form", "--archive": "archive", "-a": "archive"}


def run_get(request: dict) -> int:
    """Run a request parse_get read (the same `get` and error handling as through click)."""
    request = dict(request)
    if request.pop("debug"):
        set_debug()
    return reported(lambda: get(**request) or 0)


def parse_get(args: Sequence[str]) -> dict | None:
    """`get`'s arguments as get()'s keywords (and ``debug``), or None for click to read."""
    args = list(args)
    debug = False
    while args and args[0] == "--debug":
        debug = True
        args.pop(0)
    if not args or args[0] != "get":
        return None
    found: dict = {}
    rest = iter(args[1:])
    for arg in rest:
        if arg == "--debug":
            debug = True
            continue
        name, eq, value = arg.partition("=")
        if name == "-a" and eq:
            return None  # `-a=X` is the archive "=X" to click
        if name in _VALUE_OPTIONS:
            if not eq:
                value = next(rest, None)
                if value is None or value.startswith("-"):
                    return None  # a missing value, or one click may read otherwise
            key = _VALUE_OPTIONS[name]
            if key in found:
                return None  # repeated: click's rules
            found[key] = value
        elif arg.startswith("-") or "url" in found:
            return None  # help, another option, `--`, or a second argument
        else:
            found["url"] = arg
    if "url" not in found or found.get("form", "text") not in FORMS:
        return None
    return {"url": found["url"], "at": found.get("at"), "form": found.get("form", "text"),
            "archive": found["archive"] if "archive" in found else (os.environ.get("NEWSARCHIVE_ARCHIVE")
                                                                     or DEFAULT_ARCHIVE),
            "debug": debug}
