"""Addresses outside the public internet, and the cloud metadata services: facts, no I/O.

    address_category(ip)     "loopback", "private", "link-local", ..., a metadata service | None (public)
    metadata_refusal(host)   a one-line reason a host is never crawled, even when a source names it
    ip_literal(host)         the address when a host is an IP literal

Used by sources.toml's checks (spiders/sources.py) and by the address guard
(spiders/guard.py), which decides per source what to refuse.
"""

from __future__ import annotations

import ipaddress

def ip_literal(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address when `host` is an IP literal (as urlsplit gives it: IPv6 without brackets)."""
    try:
        return ipaddress.ip_address((host or "").strip("[]").split("%", 1)[0])
    except ValueError:
        return None


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud and container metadata services: they hand out credentials to whoever
# asks from inside the machine. Never fetched, whatever a source says.
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"): "cloud metadata service (AWS, GCP, Azure, OpenStack, DigitalOcean...)",
    ipaddress.ip_address("169.254.170.2"): "AWS ECS task metadata",
    ipaddress.ip_address("169.254.170.23"): "AWS EKS pod identity",
    ipaddress.ip_address("169.254.0.23"): "Tencent Cloud metadata",
    ipaddress.ip_address("100.100.100.200"): "Alibaba Cloud metadata",
    ipaddress.ip_address("192.0.0.192"): "Oracle Cloud metadata",
    ipaddress.ip_address("168.63.129.16"): "Azure WireServer",
    ipaddress.ip_address("fd00:ec2::254"): "AWS metadata (IPv6)",
    ipaddress.ip_address("fd00:ec2::23"): "AWS EKS pod identity (IPv6)",
    ipaddress.ip_address("fd20:ce::254"): "GCP metadata (IPv6)",
}
METADATA_HOSTS = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog",  # GCP
    "instance-data", "instance-data.ec2.internal",  # AWS
    "metadata.azure.internal",  # Azure
    "metadata.tencentyun.com",  # Tencent
    "metadata.platformequinix.com", "metadata.packet.net",  # Equinix Metal
    "rancher-metadata",  # Rancher
})

# (network, category), checked in order; the first match names the address.
_V4 = [
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "shared (carrier-grade NAT)"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
    ("192.0.2.0/24", "reserved (documentation)"),
    ("198.51.100.0/24", "reserved (documentation)"),
    ("203.0.113.0/24", "reserved (documentation)"),
    ("198.18.0.0/15", "reserved (benchmarking)"),
    ("192.88.99.0/24", "reserved (6to4 relay)"),
    ("240.0.0.0/4", "reserved"),  # 255.255.255.255 (broadcast) included
]
_V6 = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
    ("64:ff9b:1::/48", "private (local NAT64)"),
    ("100::/64", "reserved (discard)"),
    ("2001:db8::/32", "reserved (documentation)"),
    ("3fff::/20", "reserved (documentation)"),
    ("2001::/32", "reserved (Teredo)"),
    ("2001::/23", "reserved (IETF protocol assignments)"),
    ("::/96", "reserved (IPv4-compatible)"),
]
_NETWORKS = [(ipaddress.ip_network(net), what) for net, what in _V4 + _V6]
# IPv6 forms that carry an IPv4 address a gateway would connect to
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_6TO4 = ipaddress.ip_network("2002::/16")


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _6TO4:
        return ip.sixtofour
    return None


def unmapped(ip: IPAddress) -> IPAddress:
    """The same socket address: ::ffff:a.b.c.d is a.b.c.d (6to4 and NAT64 go elsewhere: a gateway)."""
    return (ip.ipv4_mapped if ip.version == 6 else None) or ip


def address_category(ip: IPAddress | str) -> str | None:
    """Why an address is outside the public internet ("loopback", "private",
    "cloud metadata service ...", ...), or None for a public address."""
    ip = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    inner = embedded_ipv4(ip)
    if inner is not None:
        return address_category(inner)
    if ip in METADATA_ADDRESSES:
        return METADATA_ADDRESSES[ip]
    for net, what in _NETWORKS:
        if ip.version == net.version and ip in net:
            return what
    if not ip.is_global:  # whatever IANA lists as special that the table above missed
        return "reserved"
    return None


def is_metadata_address(ip: IPAddress | str) -> bool:
    ip = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    inner = embedded_ipv4(ip)
    return (inner or ip) in METADATA_ADDRESSES


def metadata_refusal(host: str | None) -> str | None:
    """A one-line reason when `host` (a name or an IP literal) is a cloud metadata
    service or the unspecified address: never crawled, not even when named."""
    name = (host or "").lower().rstrip(".")
    ip = ip_literal(name)
    if ip is not None:
        if is_metadata_address(ip):
            return f"{name} is a {address_category(ip)} address, never crawled"
        if address_category(ip) == "unspecified":
            return f"{name} is the unspecified address, not a web host"
        return None
    if name in METADATA_HOSTS or name.endswith(".metadata.google.internal"):
        return f"{name} is a cloud metadata host, never crawled"
    return None
