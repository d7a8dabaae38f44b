"""The one exception family of newsarchive.

Every error newsarchive means a person to read derives from NewsarchiveError:
its message is one line, and the class carries what the command line exits
with and what the HTTP server answers. The command line (flows/cli) and the
server (storage/server) each catch NewsarchiveError in one place; anything
else reaching them is a bug and is reported as one.

It lives in storage/ because storage is the bottom layer: spiders and flows
import it, storage imports nothing of theirs.

    NewsarchiveError             exit 1, HTTP 500
    ├── BadInput                 exit 2, HTTP 400   sources file, URL, time, key, option
    ├── NotFound                 exit 1, HTTP 404   no such capture, text, object
    ├── StorageError             exit 1, HTTP 502   a backend, the catalog, an index, a spool
    │   ├── ObjectExistsError    (storage.backends) archived objects are never replaced
    │   └── BackendUnavailableError                 the whole backend is unusable: stop trying
    ├── Busy                     exit 75, HTTP 409  another process runs this source now
    ├── CrawlError               exit 1             a crawl could not run, or mostly failed
    ├── OrchestrationError       exit 1             Prefect: server unreachable, deploy failed
    └── PageError                                   one page (feed, article) could not be read;
                                                    recorded under a kind, never ends a crawl
"""

from __future__ import annotations


class NewsarchiveError(Exception):
    """A failure described in one line; subclasses say how to exit and answer."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: object = ""):
        text = " ".join(str(message).split())
        super().__init__(text or type(self).__name__)


class BadInput(NewsarchiveError, ValueError):
    """Something the user gave is wrong (a file, URL, time, name or option)."""

    exit_code = 2
    http_status = 400


class NotFound(NewsarchiveError):
    """No such capture, text, metadata or object."""

    http_status = 404


class StorageError(NewsarchiveError):
    """Reading or writing the archive, its catalog, an index or the spool failed."""

    http_status = 502


class Busy(NewsarchiveError):
    """Another process is running this source right now; try again later."""

    exit_code = 75  # EX_TEMPFAIL
    http_status = 409


class CrawlError(NewsarchiveError):
    """A crawl could not run (bad input, site unreachable) or mostly failed.

    `stats` carries what the crawl counted before it failed (its stats JSON), if anything.
    """

    def __init__(self, message: object = "", *, stats: dict | None = None):
        super().__init__(message)
        self.stats = stats


class OrchestrationError(NewsarchiveError):
    """Prefect could not be reached or refused what was asked (deploy, worker, runs)."""

    http_status = 503


class PageError(NewsarchiveError):
    """One page could not be read (a feed, an article); recorded, the crawl goes on."""
