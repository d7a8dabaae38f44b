"""Signed S3 reads over a plain socket, for the look-ups boto3 is too slow to start for.

boto3 and its client cost ~0.4 s to import and build, ten times a ranged read
on a local S3 server. `DirectS3.from_environment` answers only when boto3
would be configured from what it can read cheaply and exactly:

- credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN
  or AWS_SECURITY_TOKEN) in the environment, botocore's first provider; else the
  profile's static keys in the shared credentials file, when the profile (in
  both files) holds nothing but those keys, `region` and `output`;
- the region: AWS_DEFAULT_REGION, else the profile's `region`;
- the endpoint: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, plain http (a local
  S3-compatible server: moto, MinIO), path-style addressing as S3Backend uses
  for such servers; no proxy variable set.

Anything else (SSO, assume-role, credential_process, instance metadata, https,
a proxy, an expiring credential, FIPS or dual-stack endpoints, endpoint settings
in the config file) gives
None and S3Backend uses boto3 as always. A request that does not come back 2xx
is not interpreted here either: S3Backend repeats it through boto3, so errors,
retries and messages stay boto3's; the one exception is S3's own 404 NoSuchKey,
which S3Backend turns into the ObjectNotFoundError boto3's answer would give. Requests are signed with AWS Signature
Version 4 (tests/test_s3direct.py compares with botocore's signer).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import socket
import threading
import time
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_ENDPOINT = re.compile(r"^http://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?/?$")
_PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_KEY_FIELDS = {"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_security_token"}
_PLAIN_CONFIG_FIELDS = {"region", "output"}
_LIST_KEY = re.compile(rb"<Contents>.*?<Key>(.*?)</Key>.*?</Contents>", re.S)
_TRUNCATED = re.compile(rb"<IsTruncated>\s*true\s*</IsTruncated>", re.I)
_NEXT_TOKEN = re.compile(rb"<NextContinuationToken>(.*?)</NextContinuationToken>", re.S)
_ENTITY = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|amp|lt|gt|quot|apos);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
TIMEOUT = 60.0


class Refused(Exception):
    """The server did not answer 2xx (or not in HTTP/1.1 we read): let boto3 ask."""


class NoSuchKey(Exception):
    """404 with S3's NoSuchKey: the one failure a read meets often (an article without a .json)."""


class Credentials:
    def __init__(self, access_key: str, secret_key: str, token: str | None = None):
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token

    def __repr__(self) -> str:  # never the secret
        return f"Credentials({self.access_key!r}, ***)"


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _uri_encode(text: str, safe: str = "-_.~") -> str:
    return quote(text, safe=safe)


def signed_headers(method: str, host: str, path: str, query: dict[str, str], headers: dict[str, str],
                   credentials: Credentials, region: str, when: float | None = None) -> dict[str, str]:
    """``headers`` plus x-amz-date, x-amz-content-sha256, the session token and Authorization:
    AWS Signature Version 4 for service s3, empty payload, every header given signed."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if when is None else when))
    out = dict(headers)
    out["host"] = host
    out["x-amz-date"] = stamp
    out["x-amz-content-sha256"] = EMPTY_SHA256
    if credentials.token:
        out["x-amz-security-token"] = credentials.token
    names = sorted(name.lower() for name in out)
    lowered = {name.lower(): " ".join(str(value).split()) for name, value in out.items()}
    canonical_query = "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query.items()))
    canonical = "\n".join([method, _uri_encode(path, safe="/-_.~"), canonical_query,
                           "".join(f"{name}:{lowered[name]}\n" for name in names), ";".join(names), EMPTY_SHA256])
    scope = f"{stamp[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = _sign(("AWS4" + credentials.secret_key).encode("utf-8"), stamp[:8])
    for part in (region, "s3", "aws4_request"):
        key = _sign(key, part)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return out


# --------------------------------------------------------------------------- configuration

def _profile_name(environ) -> tuple[str, bool]:
    for name in ("AWS_DEFAULT_PROFILE", "AWS_PROFILE"):  # botocore's order
        if environ.get(name):
            return environ[name], True
    return "default", False


def _read_ini(path: str) -> dict[str, dict[str, str]] | None:
    """The sections of an AWS shared file; None when it cannot be read plainly."""
    try:
        fh = open(path, encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError:
        return None
    import configparser  # only when there is a file to read

    parser = configparser.RawConfigParser()
    try:
        with fh:
            parser.read_file(fh)
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    return {name: dict(parser.items(name)) for name in parser.sections()}


def _config_profile(sections: dict, profile: str) -> dict | None:
    for name in ((f"profile {profile}", "default") if profile == "default" else (f"profile {profile}",)):
        if name in sections:
            return sections[name]
    return None


def _files(environ) -> tuple[str, str]:
    home = os.path.expanduser("~")
    return (os.path.expanduser(environ.get("AWS_CONFIG_FILE") or os.path.join(home, ".aws", "config")),
            os.path.expanduser(environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(home, ".aws", "credentials")))


def settings_from(environ) -> tuple[Credentials, str, str, int] | None:
    """(credentials, region, endpoint host, port) exactly as boto3 would find them, or None."""
    if any(environ.get(name) for name in _PROXY_VARIABLES):
        return None
    if any(environ.get(name) for name in ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CREDENTIAL_EXPIRATION",
                                          "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT",
                                          "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
                                          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                          "AWS_CONTAINER_CREDENTIALS_FULL_URI")):
        return None
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or ""
    m = _ENDPOINT.match(endpoint)
    if m is None:
        return None
    host, port = m.group(1), int(m.group(2) or 80)
    if host.lower().endswith((".amazonaws.com", ".amazonaws.com.cn")):
        return None  # AWS itself: boto3's virtual-host addressing, not the path style used here
    profile, named = _profile_name(environ)
    config_path, credentials_path = _files(environ)
    config = _read_ini(config_path)
    stored = _read_ini(credentials_path)
    if config is None or stored is None:
        return None
    in_config = _config_profile(config, profile)
    in_credentials = stored.get(profile)
    if named and in_config is None and in_credentials is None:
        return None  # boto3 says the profile does not exist
    merged = {**(in_config or {}), **(in_credentials or {})}  # botocore merges them so
    if set(merged) - _PLAIN_CONFIG_FIELDS - _KEY_FIELDS:
        return None  # roles, SSO, processes, endpoints, S3 options: boto3 reads those
    access_key = environ.get("AWS_ACCESS_KEY_ID", "")
    if access_key:
        secret = environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not secret:
            return None  # boto3's own error
        token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None
        credentials = Credentials(access_key, secret, token)
    else:
        if in_config and set(in_config) & _KEY_FIELDS:
            return None  # keys in the config file come after other providers in botocore's chain
        fields = in_credentials or {}
        if not fields.get("aws_access_key_id") or not fields.get("aws_secret_access_key"):
            return None
        credentials = Credentials(fields["aws_access_key_id"], fields["aws_secret_access_key"],
                                  fields.get("aws_session_token") or fields.get("aws_security_token") or None)
    region = environ.get("AWS_DEFAULT_REGION") or merged.get("region")
    if not region:
        return None
    return credentials, region, host, port


# --------------------------------------------------------------------------- requests

class DirectS3:
    """GET requests to one bucket on one endpoint, on a kept-alive connection per thread
    (the catalog's search update reads texts from eight threads)."""

    def __init__(self, bucket: str, credentials: Credentials, region: str, host: str, port: int):
        self.bucket = bucket
        self.credentials = credentials
        self.region = region
        self.host = host.strip("[]")
        self.port = port
        self.host_header = host if port == 80 else f"{host}:{port}"
        self._local = threading.local()

    @classmethod
    def from_environment(cls, bucket: str, environ=None) -> "DirectS3 | None":
        found = settings_from(os.environ if environ is None else environ)
        return cls(bucket, *found) if found else None

    @property
    def _sock(self) -> socket.socket | None:
        return getattr(self._local, "sock", None)

    @_sock.setter
    def _sock(self, sock: socket.socket | None) -> None:
        self._local.sock = sock

    def close(self) -> None:
        """Close this thread's connection."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """The object (or bytes first..last of it); Refused unless 200/206."""
        headers = {"range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else {}
        status, body = self._request(f"/{self.bucket}/{key}", {}, headers)
        if status == 404 and b"<Code>NoSuchKey</Code>" in body:
            raise NoSuchKey(key)
        if status not in (200, 206):
            raise Refused(status)
        return body

    def list(self, prefix: str, page_size: int = 1000) -> list[str]:
        """Every key under ``prefix`` (ListObjectsV2, ``page_size`` a page), in the server's order."""
        keys: list[str] = []
        token = None
        while True:
            query = {"list-type": "2", "prefix": prefix, "max-keys": str(page_size)}
            if token is not None:
                query["continuation-token"] = token
            status, body = self._request(f"/{self.bucket}", query, {})
            if status != 200:
                raise Refused(status)
            keys += [_xml_text(k) for k in _LIST_KEY.findall(body)]
            if not _TRUNCATED.search(body):
                return keys
            found = _NEXT_TOKEN.search(body)
            if found is None:
                raise Refused("a truncated listing without a continuation token")
            token = _xml_text(found.group(1))

    def _request(self, path: str, query: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes]:
        signed = signed_headers("GET", self.host_header, path, query, headers, self.credentials, self.region)
        target = _uri_encode(path, safe="/-_.~")
        if query:
            target += "?" + "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query.items()))
        head = f"GET {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signed.items()) + "\r\n"
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more on a new one
            fresh = self._sock is None
            try:
                if fresh:
                    # the host as bytes: a str would load the idna codec to encode it
                    self._sock = socket.create_connection((self.host.encode("ascii"), self.port),
                                                          timeout=TIMEOUT)
                self._sock.sendall(head.encode("utf-8"))
                return self._response()
            except (ConnectionError, _Closed):
                self.close()
                if fresh:
                    raise Refused("connection failed") from None
            except (OSError, ValueError):
                self.close()
                raise Refused("connection failed") from None
        raise Refused("connection failed")

    def _response(self) -> tuple[int, bytes]:
        reader = _Reader(self._sock)
        status_line = reader.line()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or parts[0] != b"HTTP/1.1" or not parts[1].isdigit():
            self.close()
            raise Refused("not an HTTP/1.1 answer")
        headers: dict[bytes, bytes] = {}
        while line := reader.line():
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = reader.chunked()
        elif headers.get(b"content-length", b"").isdigit():
            body = reader.exactly(int(headers[b"content-length"]))
        else:
            self.close()
            raise Refused("an answer without a length")
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return int(parts[1]), body


class _Closed(Exception):
    """The connection ended before a whole answer."""


class _Reader:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise _Closed()
        self.buffer += data

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > 65536:
                raise ValueError("header line too long")
            self._fill()
        line, self.buffer = self.buffer[:end], self.buffer[end + 2:]
        return line

    def exactly(self, n: int) -> bytes:
        chunks, have = [self.buffer[:n]], len(self.buffer[:n])
        self.buffer = self.buffer[n:]
        while have < n:
            data = self.sock.recv(min(1 << 20, n - have))
            if not data:
                raise _Closed()
            chunks.append(data)
            have += len(data)
        return b"".join(chunks)

    def chunked(self) -> bytes:
        out = []
        while True:
            size = int(self.line().split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self.line():  # trailers, then the blank line
                    pass
                return b"".join(out)
            out.append(self.exactly(size))
            if self.line():
                raise ValueError("chunk without its CRLF")


def _xml_text(raw: bytes) -> str:
    def entity(m: re.Match) -> str:
        name = m.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _ENTITIES[name]

    return _ENTITY.sub(entity, raw.decode("utf-8"))
