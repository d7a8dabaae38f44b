"""The scope gate's and the address guard's decisions, called directly (nothing connects anywhere)."""

import ipaddress

import pytest
from hypothesis import given, strategies as st

from spiders.addresses import address_category, is_metadata_address, metadata_refusal
from spiders.guard import (AddressGuard, Scope, redact_url,
                           strip_userinfo)
from spiders.sources import Source, SourcesError, host_key, load_sources

FORBIDDEN = {
    # IPv4
    "0.0.0.0": "unspecified", "0.1.2.3": "unspecified",
    "127.0.0.1": "loopback", "127.255.255.254": "loopback",
    "10.0.0.1": "private", "10.255.255.255": "private", "172.16.0.1": "private", "172.31.255.255": "private",
    "192.168.0.1": "private", "192.168.255.255": "private",
    "100.64.0.1": "shared (carrier-grade NAT)", "100.127.255.254": "shared (carrier-grade NAT)",
    "169.254.0.1": "link-local", "169.254.255.254": "link-local",
    "224.0.0.1": "multicast", "239.255.255.250": "multicast",
    "240.0.0.1": "reserved", "255.255.255.255": "reserved",
    "192.0.2.1": "reserved (documentation)", "198.51.100.7": "reserved (documentation)",
    "203.0.113.9": "reserved (documentation)", "198.18.0.1": "reserved (benchmarking)",
    "192.0.0.8": "reserved (IETF protocol assignments)", "192.88.99.1": "reserved (6to4 relay)",
    # IPv6
    "::": "unspecified", "::1": "loopback",
    "fe80::1": "link-local", "fc00::1": "unique-local", "fd12:3456::1": "unique-local",
    "fec0::1": "site-local (deprecated)", "ff02::1": "multicast", "ff05::2": "multicast",
    "2001:db8::1": "reserved (documentation)", "2001::1": "reserved (Teredo)", "100::1": "reserved (discard)",
    "64:ff9b:1::1": "private (local NAT64)", "::127.0.0.1": "reserved (IPv4-compatible)",
    # IPv6 forms of IPv4 addresses are judged as the IPv4 address they carry
    "::ffff:127.0.0.1": "loopback", "::ffff:10.1.1.1": "private", "64:ff9b::a00:1": "private",
    "2002:7f00:1::1": "loopback", "2002:c0a8:101::1": "private",
}
METADATA = ["169.254.169.254", "169.254.170.2", "169.254.170.23", "169.254.0.23", "100.100.100.200",
            "192.0.0.192", "168.63.129.16", "fd00:ec2::254", "fd00:ec2::23", "fd20:ce::254",
            "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "151.101.1.69", "100.63.255.255", "100.128.0.0",
          "172.15.255.255", "172.32.0.0", "192.167.255.255", "2606:4700:4700::1111", "2a00:1450:4001::1",
          "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("ip, category", sorted(FORBIDDEN.items()))
def test_every_forbidden_range_is_named(ip, category):
    assert address_category(ip) == category


@pytest.mark.parametrize("ip", METADATA)
def test_cloud_metadata_addresses_are_known(ip):
    assert is_metadata_address(ip) and address_category(ip)


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_not_forbidden(ip):
    assert address_category(ip) is None
    assert AddressGuard(Source(name="s", start_urls=("https://news.example/",))).refusal("news.example", ip) is None


def source(*urls: str) -> Source:
    return Source(name="s", start_urls=urls)


def test_only_addresses_the_source_names_are_allowed():
    guard = AddressGuard(source("http://127.0.0.1:8000/", "http://[::1]:8000/", "https://news.example/"))
    assert guard.refusal("127.0.0.1", "127.0.0.1") is None
    assert guard.refusal("127.0.0.1", "::ffff:127.0.0.1") is None  # the same address, IPv6-mapped
    assert guard.refusal("::1", "::1") is None
    refusal = guard.refusal("127.0.0.2", "127.0.0.2")
    assert refusal.kind == "blocked-address"
    assert refusal.message == "127.0.0.2 is a loopback address the source does not name: not connected to"
    for ip in FORBIDDEN:
        if ipaddress.ip_address(ip) not in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")) \
                and ip != "::ffff:127.0.0.1":
            assert guard.refusal("news.example", ip) is not None, ip


def test_a_named_host_name_never_earns_a_private_address_through_dns():
    """A site's DNS can point anywhere at any moment (rebinding): only addresses are named."""
    guard = AddressGuard(source("https://news.example/", "http://intranet.example/"))
    for ip in ("127.0.0.1", "10.0.0.5", "192.168.1.1", "fd00::5", "169.254.1.1"):
        refusal = guard.refusal("news.example", ip)
        assert refusal and refusal.message.startswith(f"news.example resolves to {ip}, which is a"), refusal
    assert guard.refusal("news.example", "93.184.216.34") is None


def test_localhost_named_allows_loopback_only():
    guard = AddressGuard(source("http://localhost:8000/"))
    assert guard.refusal("localhost", "127.0.0.1") is None and guard.refusal("localhost", "::1") is None
    assert guard.refusal("localhost", "10.0.0.1") is not None
    assert guard.refusal("other.test", "127.0.0.1") is not None


def test_metadata_and_unspecified_are_refused_even_when_named():
    # sources.toml refuses to name them (below); a Source built in code gets no further at connect time
    guard = AddressGuard(source("http://169.254.169.254/", "http://0.0.0.0:8000/", "http://[fd00:ec2::254]/"))
    for ip in ("169.254.169.254", "0.0.0.0", "fd00:ec2::254", "::ffff:169.254.169.254"):
        refusal = guard.refusal(ip, ip)
        assert refusal and "never connected to" in refusal.message, ip


def test_a_spider_without_a_source_reaches_public_addresses_only():
    guard = AddressGuard(None)
    assert guard.refusal("127.0.0.1", "127.0.0.1") is not None
    assert guard.refusal("news.example", "8.8.8.8") is None


@pytest.mark.parametrize("host", ["metadata.google.internal", "METADATA.GOOGLE.INTERNAL.", "metadata.goog",
                                  "metadata", "instance-data", "instance-data.ec2.internal", "169.254.169.254",
                                  "fd00:ec2::254", "[fd00:ec2::254]", "100.100.100.200", "0.0.0.0", "::"])
def test_metadata_hosts_are_named_as_such(host):
    assert metadata_refusal(host)


@pytest.mark.parametrize("url, message", [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata service"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal is a cloud metadata host"),
    ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254 is a AWS metadata (IPv6) address"),
    ("http://100.100.100.200/latest/", "Alibaba Cloud metadata"),
    ("http://0.0.0.0:8000/", "unspecified address"),
    ("ftp://news.example/", "is not an http(s) URL (only http and https are fetched)"),
    ("file:///etc/passwd", "is not an http(s) URL"),
])
def test_sources_file_refuses_metadata_and_other_schemes_in_one_line(tmp_path, url, message):
    path = tmp_path / "sources.toml"
    path.write_text(f'[[source]]\nname = "bad"\nstart_urls = ["{url}"]\n')
    with pytest.raises(SourcesError) as err:
        load_sources(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: source 'bad': start_urls: ") and message in text, text


def test_sources_file_refuses_credentials_without_repeating_them(tmp_path):
    path = tmp_path / "sources.toml"
    path.write_text('[[source]]\nname = "creds"\nfeeds = ["https://reader:S3CR3T-PASS@news.example/rss"]\n')
    with pytest.raises(SourcesError) as err:
        load_sources(path)
    text = str(err.value)
    assert "user name or password" in text and "S3CR3T-PASS" not in text and "reader" not in text
    assert "https://***@news.example/rss" in text
    path.write_text('[[source]]\nname = "creds"\nfeeds = "https://reader:S3CR3T-PASS@news.example/rss"\n')
    with pytest.raises(SourcesError) as err:  # a string where a list belongs: still not echoed
        load_sources(path)
    assert "S3CR3T-PASS" not in str(err.value)


def test_www_is_dropped_from_names_never_from_ip_literals():
    assert host_key("WWW.Example.COM.") == "example.com"
    assert host_key("www.127.0.0.1") == "www.127.0.0.1"  # a name that would go to DNS
    assert host_key("127.0.0.1") == "127.0.0.1"
    src = source("http://www.127.0.0.1:8000/")
    assert src.hosts == {"www.127.0.0.1"}
    assert Scope(src).refusal("http://127.0.0.1:8000/").kind == "off-scope"
    assert Scope(source("http://127.0.0.1:8000/")).refusal("http://www.127.0.0.1:8000/").kind == "off-scope"


def test_scope_refusals_say_why():
    scope = Scope(source("https://www.news.example/", "http://127.0.0.1:8000/"))
    assert scope.refusal("https://news.example/a") is None and scope.refusal("HTTP://WWW.NEWS.EXAMPLE/b") is None
    assert scope.refusal("http://127.0.0.1:9999/other-port") is None  # the host is named, any port
    cases = {
        "file:///etc/passwd": ("bad-scheme", "file: URLs are never fetched (only http and https)"),
        "FTP://news.example/x": ("bad-scheme", "ftp: URLs are never fetched"),
        "s3://bucket/key": ("bad-scheme", "s3: URLs"),
        "//news.example/x": ("bad-scheme", "URLs without a scheme"),
        "https://user:pw@news.example/": ("bad-url", "user name or password"),
        "http:///path": ("bad-url", "no host"),
        "http://news.example:99999999/": ("bad-url", "not a URL"),
        "https://cdn.news.example/a": ("off-scope", "cdn.news.example is not one of the source's hosts"),
        "https://news.example.evil.test/": ("off-scope", "not one of the source's hosts"),
        "http://127.0.0.2:8000/": ("off-scope", "127.0.0.2 is not one of"),
    }
    for url, (kind, text) in cases.items():
        refusal = scope.refusal(url)
        assert refusal is not None and refusal.kind == kind and text in refusal.message, (url, refusal)


def test_credentials_are_stripped_and_redacted():
    assert strip_userinfo("https://u:p@news.example:8443/a?b#c") == "https://news.example:8443/a?b#c"
    assert redact_url("https://u:p@news.example/a") == "https://***@news.example/a"
    assert redact_url("https://news.example/a") == "https://news.example/a"


@given(st.ip_addresses(v=4, network="10.0.0.0/8") | st.ip_addresses(v=4, network="192.168.0.0/16")
       | st.ip_addresses(v=4, network="127.0.0.0/8") | st.ip_addresses(v=4, network="169.254.0.0/16")
       | st.ip_addresses(v=6, network="fc00::/7") | st.ip_addresses(v=6, network="fe80::/10"))
def test_no_private_address_gets_through_unnamed(ip):
    refusal = AddressGuard(source("https://news.example/")).refusal("news.example", ip)
    assert refusal is not None and refusal.kind == "blocked-address"


def test_no_download_handler_but_http_and_no_proxy_in_the_project_settings():
    """Behind the gate: even a request that got past it has no way to read a local file, an FTP
    or S3 object or a data: URL, nor to go through a proxy from the environment."""
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("spiders.settings", priority="project")
    handlers = settings.getwithbase("DOWNLOAD_HANDLERS")
    assert {s: handlers[s] for s in ("file", "ftp", "s3", "data")} == dict.fromkeys(("file", "ftp", "s3", "data"))
    assert {s for s, h in handlers.items() if h} == {"http", "https"}
    middlewares = settings.getwithbase("DOWNLOADER_MIDDLEWARES")
    assert middlewares["scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware"] is None


def test_link_value_drops_exactly_the_links_the_gate_would_call_off_scope():
    """LinkExtractor's process_value: a link is dropped before it is built only when the scope
    says off-scope; anything else (in scope, or refused for another reason) reaches the spider."""
    from spiders.guard import Scope

    scope = Scope(hosts={"127.0.0.1", "example.com"})
    urls = ["http://127.0.0.1:8000/a", "https://www.example.com/x?y", "http://WWW.Example.COM.:80/",
            "http://other.org/", "http://other.org", "http://www.other.org/x#f", "http://x.example.com/",
            "https://other.org:99999/", "http://a@b.org/", "http://user:pw@example.com/", "mailto:x@y",
            "http://[::1]/", "file:///etc/passwd", "ftp://other.org/", "http://exa mple.com/", "http://:80/",
            "http://bücher.example/", "HTTPS://OTHER.ORG/PATH"]
    for url in urls:
        refusal = scope.refusal(url)
        if scope.link_value(url) is None:
            assert refusal is not None and refusal.kind == "off-scope", url
        else:
            assert scope.link_value(url) == url
            assert refusal is None or refusal.kind != "off-scope" or url == "http://bücher.example/", url
    assert [u for u in urls if scope.link_value(u) is None] == [
        "http://other.org/", "http://other.org", "http://www.other.org/x#f", "http://x.example.com/",
        "http://[::1]/", "http://exa mple.com/", "HTTPS://OTHER.ORG/PATH"]
    assert Scope(None).link_value("http://other.org/") == "http://other.org/"  # no source: any host
