"""storage/s3direct.py: S3 reads without boto3, only where boto3 would be configured the same.

The signature is compared with botocore's own S3 signer on the same requests at a
fixed time; the settings it accepts (and the many it leaves to boto3) are checked
as decisions; the requests themselves run against moto's server on 127.0.0.1 in
tests/test_retrieval_archive.py, tests/test_storage_backends.py and test_e2e_s3.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from storage import s3direct
from storage.s3direct import Credentials, DirectS3, settings_from, signed_headers

WHEN = dt.datetime(2026, 12, 2, 5, 30, 15, tzinfo=dt.timezone.utc)


def botocore_authorization(monkeypatch, url: str, headers: dict, credentials: Credentials, region: str) -> dict:
    import botocore.auth

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: WHEN)
    request = AWSRequest(method="GET", url=url, headers=dict(headers))
    S3SigV4Auth(BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token), "s3",
                region).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////session+token="])
@pytest.mark.parametrize("path, query, extra", [
    ("/bucket/archive/warc/news/2024/05/01/newsarchive-news-20240501-00000-host.warc.gz", {},
     {"range": "bytes=1000-1049"}),
    ("/bucket/a-b_c.d~e/indexes/x.cdxj", {}, {}),
    ("/bucket", {"list-type": "2", "prefix": "archive/indexes/", "max-keys": "1000"}, {}),
    ("/bucket", {"list-type": "2", "prefix": "a b/c+d=e", "max-keys": "5",
                 "continuation-token": "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="}, {}),
])
@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1"])
def test_signature_is_botocores(monkeypatch, token, path, query, extra, region):
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    host = "127.0.0.1:9000"
    ours = signed_headers("GET", host, path, query, extra, credentials, region, when=WHEN.timestamp())
    target = s3direct._uri_encode(path, safe="/-_.~")
    if query:
        target += "?" + "&".join(f"{s3direct._uri_encode(k)}={s3direct._uri_encode(v)}" for k, v in sorted(query.items()))
    theirs = botocore_authorization(monkeypatch, f"http://{host}{target}", extra, credentials, region)
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["x-amz-date"] == theirs["X-Amz-Date"] and ours["x-amz-content-sha256"] == theirs["X-Amz-Content-SHA256"]
    assert ours.get("x-amz-security-token") == theirs.get("X-Amz-Security-Token")


ENV = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret",
       "AWS_DEFAULT_REGION": "us-east-1"}


def env(tmp_path, **changes) -> dict:
    out = dict(ENV, AWS_CONFIG_FILE=str(tmp_path / "config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"))
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def test_environment_settings_are_read(tmp_path):
    credentials, region, host, port = settings_from(env(tmp_path, AWS_SESSION_TOKEN="tok"))
    assert (credentials.access_key, credentials.secret_key, credentials.token) == ("key", "secret", "tok")
    assert (region, host, port) == ("us-east-1", "127.0.0.1", 9000)
    assert settings_from(env(tmp_path, AWS_ENDPOINT_URL=None, AWS_ENDPOINT_URL_S3="http://localhost"))[2:] == (
        "localhost", 80)
    assert settings_from(env(tmp_path, AWS_SESSION_TOKEN=None, AWS_SECURITY_TOKEN="old"))[0].token == "old"


def test_static_keys_of_the_profile_are_read(tmp_path):
    (tmp_path / "credentials").write_text("[default]\naws_access_key_id = fkey\naws_secret_access_key = fsecret\n"
                                          "[other]\naws_access_key_id = okey\naws_secret_access_key = osecret\n")
    (tmp_path / "config").write_text("[default]\nregion = eu-west-1\n[profile other]\nregion = eu-north-1\n")
    base = env(tmp_path, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_DEFAULT_REGION=None)
    credentials, region, _, _ = settings_from(base)
    assert (credentials.access_key, credentials.secret_key, region) == ("fkey", "fsecret", "eu-west-1")
    credentials, region, _, _ = settings_from(dict(base, AWS_PROFILE="other"))
    assert (credentials.access_key, region) == ("okey", "eu-north-1")
    # the environment's keys come first in botocore's chain, as here
    assert settings_from(dict(base, AWS_ACCESS_KEY_ID="e", AWS_SECRET_ACCESS_KEY="s"))[0].access_key == "e"


@pytest.mark.parametrize("changes, config, why", [
    ({"AWS_ENDPOINT_URL": None}, "", "no endpoint: AWS itself"),
    ({"AWS_ENDPOINT_URL": "https://127.0.0.1:9000"}, "", "https"),
    ({"AWS_ENDPOINT_URL": "http://s3.eu-west-1.amazonaws.com"}, "", "AWS over http"),
    ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000/base"}, "", "an endpoint with a path"),
    ({"HTTP_PROXY": "http://proxy:3128"}, "", "a proxy"),
    ({"AWS_SECRET_ACCESS_KEY": None}, "", "half the keys: boto3's error"),
    ({"AWS_DEFAULT_REGION": None}, "", "no region"),
    ({"AWS_CREDENTIAL_EXPIRATION": "2026-12-02T06:00:00Z"}, "", "expiring keys"),
    ({"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "", "endpoint settings ignored"),
    ({"AWS_USE_FIPS_ENDPOINT": "true"}, "", "FIPS (boto3 refuses it with a custom endpoint)"),
    ({"AWS_USE_DUALSTACK_ENDPOINT": "true"}, "", "dual-stack"),
    ({"AWS_WEB_IDENTITY_TOKEN_FILE": "/tmp/token"}, "", "web identity"),
    ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/creds"}, "", "container credentials"),
    ({"AWS_PROFILE": "missing"}, "", "a profile that does not exist"),
    ({}, "[default]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = x\n", "assume-role"),
    ({}, "[default]\nsso_session = s\n", "SSO"),
    ({}, "[default]\ncredential_process = /bin/creds\n", "a credential process"),
    ({}, "[default]\nendpoint_url = http://other:1\n", "an endpoint in the config file"),
    ({}, "[default]\ns3 =\n  addressing_style = virtual\n", "S3 options"),
    ({}, "[default]\nca_bundle = /etc/ca.pem\n", "a CA bundle"),
    ({}, "[default\nbroken", "a config file that does not parse"),
])
def test_everything_else_is_left_to_boto3(tmp_path, changes, config, why):
    if config:
        (tmp_path / "config").write_text(config)
    assert settings_from(env(tmp_path, **changes)) is None, why


def test_keys_only_in_the_config_file_are_left_to_boto3(tmp_path):
    (tmp_path / "config").write_text("[default]\naws_access_key_id = k\naws_secret_access_key = s\n")
    assert settings_from(env(tmp_path, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)) is None


def test_a_server_that_is_not_there_is_refused_for_boto3_to_report(tmp_path):
    from loopback import closed_port

    direct = DirectS3("bucket", Credentials("k", "s"), "us-east-1", "127.0.0.1", closed_port())
    with pytest.raises(s3direct.Refused):
        direct.get("key")


def test_listing_text_is_unescaped():
    assert s3direct._xml_text(b"a&amp;b&lt;&#x41;&#66;") == "a&b<AB"
