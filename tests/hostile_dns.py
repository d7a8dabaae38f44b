"""A scripted DNS for crawls in tests: `-s DNS_RESOLVER=hostile_dns.ScriptedResolver`.

Scrapy's own resolver class with the answers a test wants, so host names can
point at loopback addresses the test chooses, and change their answer the
way a rebinding attacker's DNS does. The script comes from the environment:

    HOSTILE_DNS='{"hostile.test": ["127.0.0.1"], "rebind.test": ["127.0.0.1", "127.0.0.2"]}'

The n-th lookup of a name gets the n-th answer (the last one repeats). A
name not in the script fails to resolve: nothing here ever asks a real DNS
server (tests talk only to loopback). Lookups are logged to HOSTILE_DNS_LOG.
"""

from __future__ import annotations

import json
import os

from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer
from twisted.internet.error import DNSLookupError


class ScriptedResolver(CachingThreadedResolver):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.script = {k.lower(): list(v) for k, v in json.loads(os.environ.get("HOSTILE_DNS") or "{}").items()}
        self.asked: dict[str, int] = {}

    def getHostByName(self, name: str, timeout=()):
        name = name.lower()
        n = self.asked[name] = self.asked.get(name, 0) + 1
        log = os.environ.get("HOSTILE_DNS_LOG")
        if log:
            with open(log, "a") as fh:
                fh.write(f"{name}\n")
        answers = self.script.get(name)
        if not answers:
            return defer.fail(DNSLookupError(f"{name} is not in the test's DNS script"))
        return defer.succeed(answers[min(n, len(answers)) - 1])
