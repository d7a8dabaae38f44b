"""The kinds a crawl counts its failures under (stats `newsarchive/errors/<kind>`).

Each reaches the stats JSON ("errors", "error_samples"), and from there the
run summary, the manifest and the Prefect artifact. No Scrapy here: the flows
read it too.
"""

ERROR_KINDS = {
    # fetched, but the answer was not a page
    "http-3xx": "a redirect that was not followed (HTTP 3xx)",
    "http-4xx": "the site answered 4xx",
    "http-5xx": "the site answered 5xx",
    # the network
    "dns": "the host name does not resolve",
    "timeout": "no complete answer within DOWNLOAD_TIMEOUT",
    "connection": "connection refused, reset or closed before the answer was complete",
    "tls": "the TLS handshake failed",
    "data-loss": "the body was shorter than announced",
    # limits: the response is archived as received, not read
    "too-large": "larger than the parse limits (or than DOWNLOAD_MAXSIZE: then not archived)",
    "decompression-limit": "its Content-Encoding decodes past NEWSARCHIVE_MAX_DECODED_BYTES",
    "bad-encoding": "not valid data for its Content-Encoding",
    "redirect-limit": "more redirects in a row than REDIRECT_MAX_TIMES",
    "redirect-loop": "a redirect back to a URL already on its chain",
    # refused before anything was sent (REFUSALS)
    "off-scope": "a redirect, refresh or robots.txt Sitemap: line to a host the source does not name",
    "bad-scheme": "not http or https (file:, ftp:, s3:, data:...)",
    "bad-url": "not a usable URL (no host, a user name or password in it)",
    "blocked-address": "the host is (or resolves to) an address outside the public internet the source "
                       "does not name, or a cloud metadata service",
    # reading
    "bad-feed": "a feed or sitemap that cannot be read",
    "extraction": "no article text could be extracted",
    "other": "anything else",
}

# Requests the crawl refused to make: its own line holding, not the site failing,
# so they never make a run count as failed (storage.runs.assess, which the summary uses).
from storage.runs import REFUSALS  # noqa: E402,F401  (defined beside the run verdict; named here with the kinds)
