"""The address guard at connection time: every TCP connection the crawl opens.

The HTTP download handler (spiders.scrapy_internals.PhraseKeepingDownloadHandler)
connects through `GuardedEndpointFactory`: for each new connection the host
is resolved once (through the reactor's resolver, so DNS_RESOLVER and its cache
apply), each address is put to the source's AddressGuard (spiders.guard), and
the connection goes to an allowed address itself, never to the name again. So
what is checked is what is connected to: a DNS answer that changes between a
check and a connect (DNS rebinding) has nothing to slip through. IP-literal
hosts are checked the same way, without a lookup.

A host whose every address is refused fails with Refused("blocked-address"),
counted by the handler with the request's URL.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectError, DNSLookupError
from twisted.internet.interfaces import IResolutionReceiver, IStreamClientEndpoint
from twisted.web.error import SchemeNotSupported
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from spiders.guard import AddressGuard, Refused
from spiders.sources import ip_literal


@implementer(IResolutionReceiver)
class _Addresses:
    """Collects what a name resolves to; `done` fires with the list."""

    def __init__(self):
        self.addresses: list[str] = []
        self.done: Deferred = Deferred()

    def resolutionBegan(self, resolution) -> None:
        pass

    def addressResolved(self, address) -> None:
        self.addresses.append(address.host)

    def resolutionComplete(self) -> None:
        if not self.done.called:  # a download timeout may have cancelled the wait already
            self.done.callback(self.addresses)


@implementer(IStreamClientEndpoint)
class GuardedEndpoint:
    """Resolve, check every address, connect to the first allowed one that answers."""

    def __init__(self, reactor, host: str, port: int, guard: AddressGuard, *, timeout: float = 30,
                 bind_address=None):
        self.reactor = reactor
        self.host = host
        self.port = port
        self.guard = guard
        self.timeout = timeout
        self.bind_address = bind_address

    def _resolve(self) -> Deferred:
        receiver = _Addresses()
        self.reactor.nameResolver.resolveHostName(receiver, self.host, self.port)
        return receiver.done

    @inlineCallbacks
    def connect(self, protocolFactory):
        literal = ip_literal(self.host)
        if literal is not None:
            addresses = [literal]
        else:
            names = yield self._resolve()
            addresses = [ip for ip in map(ip_literal, names) if ip is not None]
            if not addresses:
                raise DNSLookupError(f"cannot resolve {self.host}")
        allowed, refusals = [], []
        for ip in addresses:
            refusal = self.guard.refusal(self.host, ip)
            (refusals if refusal else allowed).append(refusal or ip)
        if not allowed:
            raise Refused(refusals[0].kind, refusals[0].message)
        failure = None
        for ip in allowed:
            cls = TCP6ClientEndpoint if ip.version == 6 else TCP4ClientEndpoint
            endpoint = cls(self.reactor, str(ip), self.port, timeout=self.timeout, bindAddress=self.bind_address)
            try:
                protocol = yield endpoint.connect(protocolFactory)
            except ConnectError as exc:  # refused, unreachable, timed out: the next address
                failure = exc
                continue
            return protocol
        raise failure


@implementer(IAgentEndpointFactory)
class GuardedEndpointFactory:
    """For twisted.web.client.Agent.usingEndpointFactory: TCP (and TLS for https) through the guard."""

    def __init__(self, reactor, guard: AddressGuard, tls_policy, *, timeout: float = 30, bind_address=None):
        self.reactor = reactor
        self.guard = guard
        self.tls_policy = tls_policy
        self.timeout = timeout
        self.bind_address = bind_address

    def endpointForURI(self, uri):
        try:
            host = uri.host.decode("ascii")  # already IDNA-encoded by Scrapy and Twisted
        except UnicodeDecodeError:
            raise ValueError(f"the host {uri.host!r} is not ASCII") from None
        endpoint = GuardedEndpoint(self.reactor, host.lower(), uri.port, self.guard, timeout=self.timeout,
                                   bind_address=self.bind_address)
        if uri.scheme == b"http":
            return endpoint
        if uri.scheme == b"https":
            return wrapClientTLS(self.tls_policy.creatorForNetloc(uri.host, uri.port), endpoint)
        raise SchemeNotSupported(f"Unsupported scheme: {uri.scheme!r}")
