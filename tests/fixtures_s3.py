"""A real S3 API on loopback: moto's ThreadedMotoServer on 127.0.0.1.

    s3_server         the endpoint URL (str) of a fresh server for this test
    s3_server_control the same server with .stop() / .start() (same port, same
                      bucket contents) to test outages
    s3_archive        "s3://BUCKET/archive" in a new bucket; AWS_* variables
                      point boto3 at the server, and nothing at a real account
"""

from __future__ import annotations

import uuid

import pytest
from moto.server import ThreadedMotoServer


class MotoS3:
    """One moto server on 127.0.0.1 that a test can stop and start again."""

    def __init__(self, port: int = 0):
        self.port = port
        self._server: ThreadedMotoServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        # Same port on restart (port 0 only the first time), so clients that
        # were configured before the outage reach it again.
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self.port = server.get_host_and_port()[1]
        self._server = server

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        # ThreadedMotoServer.stop() only ends the serve loop; close the listening
        # socket too, or clients would hang instead of being refused.
        self._server._server.server_close()
        self._server = None



@pytest.fixture
def s3_server_control():
    server = MotoS3()
    server.start()
    # No reset at teardown: moto keeps one store for the whole test process, shared by every
    # server, so a reset would empty the session's other buckets too (fixtures_crawled's).
    # Each test makes a bucket of its own (a random name) instead.
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_server(s3_server_control) -> str:
    return s3_server_control.url


@pytest.fixture
def s3_archive(s3_server, monkeypatch, tmp_path):
    import boto3

    # Only the test server and fake credentials: never a real account or profile.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # outages fail fast in tests
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    bucket = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/archive"


def record_gets(backend) -> list[dict]:
    """Every GET the S3 backend sends from now on, on either of its ways: signed requests of
    its own (storage/s3direct.py) or boto3's GetObject. Each: path, range, status, size."""
    sent: list[dict] = []
    direct = backend._direct()
    if direct is not None:
        send = direct._request

        def request(path, query, headers):
            status, body = send(path, query, headers)
            if not query:  # a listing has a query; an object read has none
                sent.append({"path": path, "range": headers.get("range"), "status": status, "size": len(body)})
            return status, body

        direct._request = request

    def before(request, **kwargs):
        rng = request.headers.get("Range")
        sent.append({"path": request.url, "range": rng.decode("ascii") if isinstance(rng, bytes) else rng})

    def after(http_response, **kwargs):
        if sent and "size" not in sent[-1]:
            sent[-1].update(status=http_response.status_code, size=int(http_response.headers["Content-Length"]))

    backend._client.meta.events.register("before-send.s3.GetObject", before)
    backend._client.meta.events.register("after-call.s3.GetObject", after)
    return sent
