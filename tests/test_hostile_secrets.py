"""Credentials never reach a WARC, a log, a summary or a manifest: not the crawl's environment
(AWS and Prefect keys, a proxy with a password), not a user name and password in a link or a
redirect. Fake secrets are set, then every file written and every log line is searched."""

import uuid
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from flows import pipeline
from siteserver import Route

from fixtures_hostile import check_archive, log_memory, readable_text
from hostile_site import HostileSite, XML, page
from treememory import TreeMemory


def secret_env(bait_url: str) -> dict[str, str]:
    token = uuid.uuid4().hex
    proxy = bait_url.replace("http://", f"http://proxyuser:PROXYPASS{token}@")
    return {
        "AWS_ACCESS_KEY_ID": f"AKIAHOSTILE{token[:9].upper()}", "AWS_SECRET_ACCESS_KEY": f"aws-secret-{token}",
        "AWS_SESSION_TOKEN": f"aws-session-{token}", "PREFECT_API_KEY": f"pnu_{token}",
        "http_proxy": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "ALL_PROXY": proxy,
    }


def credential_site(site: HostileSite) -> list[str]:
    """Links, a redirect and a sitemap entry with user names and passwords; returns those secrets."""
    token = uuid.uuid4().hex
    secrets = [f"LINKPASS{token}", f"REDIRPASS{token}", f"MAPPASS{token}", f"linkuser{token}"]
    good = site.articles("", 3)
    with_creds = site.url(good[1]).replace("http://", f"http://linkuser{token}:{secrets[0]}@")
    site.add("/news/redirect-creds", Route(b"", status=302, headers=[
        ("Location", site.url(good[2]).replace("http://", f"http://who:{secrets[1]}@"))]))
    site.add("/sitemap.xml", Route(
        f"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'><url><loc>"
        f"{site.url(good[2]).replace('http://', f'http://map:{secrets[2]}@')}</loc></url></urlset>".encode(),
        headers=XML))
    site.add("/", page("Home", good[0], with_creds, "/news/redirect-creds"))
    return secrets


PUBLISHERS = ("/", "/news/redirect-creds", "/sitemap.xml")  # the pages whose own bytes hold the URL secrets


def check_warc_records(paths: list[Path], site: HostileSite, url_secrets: list[str]) -> None:
    """A page's own bytes are archived as received, credentials in its links too; nothing else
    in a WARC (request records, WARC headers, other pages, text records) may hold one."""
    publishers = {site.url(p) for p in PUBLISHERS}
    seen = 0
    for path in paths:
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh):
                target = rec.rec_headers.get_header("WARC-Target-URI")
                meta = str(rec.rec_headers) + str(rec.http_headers or "")
                body = rec.raw_stream.read().decode("latin-1")
                assert not [s for s in url_secrets if s in meta.replace(str(rec.http_headers or ""), "")]
                if rec.rec_type == "response" and target in publishers:
                    seen += any(s in meta + body for s in url_secrets)
                    continue
                assert not [s for s in url_secrets if s in meta + body], (rec.rec_type, target)
    assert seen == len(PUBLISHERS)  # and the pages that published them are archived as they were


def test_no_secret_from_the_environment_or_a_url_is_sent_kept_or_logged(hostile_site, hostile_crawl):
    site = hostile_site
    secrets = credential_site(site)
    env = secret_env(site.bait.url("/"))
    run = hostile_crawl(site, site.sources_toml(sitemaps=[site.url("/sitemap.xml")]), env=env)
    check_archive(run, site, secrets=tuple(env.values()))  # anywhere; the bait is the proxy: never used either
    check_warc_records(run.warcs(), site, secrets)
    others = [p for p in run.files if not p.name.endswith(".warc.gz")]
    assert others and not [p for p in others if any(s.encode() in readable_text(p) for s in secrets)]
    assert not [s for s in secrets if s in run.stderr]
    assert run.errors == {"bad-url": 1}, run.errors  # the redirect with credentials; links are stripped
    assert run.samples("bad-url")[0]["url"] == site.url("/news/good-2").replace("http://", "http://***@")
    for logged in site.server.requests:  # what the site received
        assert not [v for _, v in logged.headers if any(s in v for s in (*secrets, *env.values()))]
        assert "Authorization" not in dict(logged.headers) and "Proxy-Authorization" not in dict(logged.headers)


def test_no_secret_reaches_the_archive_the_summary_or_the_manifest(tmp_path, monkeypatch):
    site = HostileSite(tmp_path / "local")
    try:
        secrets = credential_site(site)
        env = secret_env(site.bait.url("/"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        sources = tmp_path / "sources.toml"
        sources.write_text(site.sources_toml(sitemaps=[site.url("/sitemap.xml")]))
        logs: list[str] = []
        watch = TreeMemory()
        watch.start()
        try:
            summary = pipeline.run_source("hostile", sources_file=sources, archive=str(tmp_path / "archive"),
                                          spool=tmp_path / "spool", on_event=lambda e: logs.append(repr(e)))
        finally:
            memory = watch.finish()
            log_memory(memory)
    finally:
        site.stop()
    needles = [*secrets, *env.values()]
    written = [p for d in ("archive", "spool") for p in (tmp_path / d).rglob("*") if p.is_file()]
    assert any(p.name.endswith(".warc.gz") for p in written) and any("runs" in p.parts for p in written)
    for path in written:
        text = readable_text(path)
        assert not [s for s in env.values() if s.encode() in text], path
        if not path.name.endswith(".warc.gz") or path.name.endswith(".text.warc.gz"):
            assert not [s for s in secrets if s.encode() in text], path
    check_warc_records([p for p in written if p.name.endswith(".warc.gz")], site, secrets)
    shown = repr(summary) + summary.markdown() + repr(summary.file_rows()) + "".join(logs)
    assert not [s for s in needles if s in shown]
    assert summary.articles == 3 and not site.bait.connections
    assert memory["samples"] and memory["peak_mb"] < 768, memory
