"""The command line's surface: help, sources, and errors a user meets first.

Everything runs the installed `newsarchive` as a subprocess.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from loopback import closed_port
from test_cli_support import ROOT, assert_one_line_error, cli_env, run

COMMANDS = ["crawl", "sources", "list", "get", "search", "serve", "pywb", "reindex", "reextract", "upload", "export",
            "deploy", "worker", "demo"]


@pytest.fixture
def env(tmp_path):
    return cli_env(tmp_path)


def test_top_level_help_names_every_command(tmp_path, env):
    result = run("--help", cwd=tmp_path, env=env)
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
    assert "NEWSARCHIVE_ARCHIVE" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command, tmp_path, env):
    result = run(command, "--help", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert f"usage: newsarchive {command}" in result.stdout
    assert "examples:" in result.stdout
    assert f"newsarchive {command}" in result.stdout.split("examples:", 1)[1]


def test_help_does_not_import_prefect_or_scrapy(tmp_path, env):
    code = ("import sys\nfrom flows.cli import main\n"
            "for c in %r:\n"
            "    try:\n        main([c, '--help'])\n    except SystemExit:\n        pass\n"
            "heavy = sorted(m for m in ('prefect', 'scrapy', 'boto3', 'trafilatura') if m in sys.modules)\n"
            "print('heavy=' + ','.join(heavy))\n") % (COMMANDS,)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "heavy="


def test_no_command_shows_help_and_fails(tmp_path, env):
    result = run(cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "COMMAND" in result.stderr


def test_unknown_command_is_one_line(tmp_path, env):
    assert_one_line_error(run("fetch", cwd=tmp_path, env=env), "fetch")


def test_bad_option_value_is_one_line(tmp_path, env):
    assert_one_line_error(run("crawl", "x", "--max-pages", "lots", cwd=tmp_path, env=env), "--max-pages")


# --- sources -------------------------------------------------------------------

def test_sources_lists_the_test_source(news_site, news_sources_file, tmp_path, env):
    result = run("sources", "--sources", news_sources_file, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "testnews" in result.stdout
    assert "127.0.0.1" in result.stdout  # the host the source may reach

    as_json = run("sources", "--sources", news_sources_file, "--json", cwd=tmp_path, env=env)
    rows = json.loads(as_json.stdout)
    assert [r["name"] for r in rows] == ["testnews"]
    assert rows[0]["hosts"] == ["127.0.0.1"]
    assert len(rows[0]["feeds"]) == 2 and len(rows[0]["sitemaps"]) == 2 and len(rows[0]["start_urls"]) == 1
    assert rows[0]["requisite_hosts"] == [] and rows[0]["max_requisites"] == 4 * rows[0]["max_pages"]


def test_sources_shows_the_hosts_requisites_may_come_from(news_site, tmp_path, env):
    sources = news_site.write_sources(tmp_path, requisite_hosts=["cdn.example.net"], max_requisites=7)
    result = run("sources", "--sources", sources, cwd=tmp_path, env=env)
    assert result.returncode == 0 and "requisites: cdn.example.net" in result.stdout, result.stdout
    row, = json.loads(run("sources", "--sources", sources, "--json", cwd=tmp_path, env=env).stdout)
    assert row["requisite_hosts"] == ["cdn.example.net"] and row["max_requisites"] == 7


def test_sources_file_from_environment(news_sources_file, tmp_path):
    env = cli_env(tmp_path, NEWSARCHIVE_SOURCES=str(news_sources_file))
    result = run("sources", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "testnews" in result.stdout


def test_sources_default_is_sources_toml_in_the_current_folder(news_site, tmp_path, env):
    news_site.write_sources(tmp_path, name="here")
    result = run("sources", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "here" in result.stdout


def test_missing_sources_file_is_one_line(tmp_path, env):
    assert_one_line_error(run("sources", "--sources", tmp_path / "nope.toml", cwd=tmp_path, env=env), "nope.toml")
    assert_one_line_error(run("crawl", "x", "--sources", tmp_path / "nope.toml", cwd=tmp_path, env=env), "nope.toml")


@pytest.mark.parametrize("content, needle", [
    ("[[source]\nname = 'x'\n", "TOML"),
    ("[[source]]\nname = 'Bad Name'\nstart_urls = ['http://127.0.0.1/']\n", "Bad Name"),
    ("[[source]]\nname = 'x'\nstart_urls = ['http://127.0.0.1/']\nmax_pages = 'many'\n", "max_pages"),
    ("[[source]]\nname = 'x'\n", "start_urls"),
])
def test_invalid_sources_file_is_one_line(content, needle, tmp_path, env):
    bad = tmp_path / "bad.toml"
    bad.write_text(content, encoding="utf-8")
    line = assert_one_line_error(run("sources", "--sources", bad, cwd=tmp_path, env=env), "bad.toml")
    assert needle.lower() in line.lower()
    assert_one_line_error(run("crawl", "--all", "--sources", bad, "--no-prefect", cwd=tmp_path, env=env), "bad.toml")


def test_crawl_unknown_source_is_one_line(news_sources_file, tmp_path, env):
    result = run("crawl", "nosuchsite", "--sources", news_sources_file, "--no-prefect", cwd=tmp_path, env=env)
    line = assert_one_line_error(result, "nosuchsite")
    assert "testnews" in line  # it says which sources there are
    assert not (tmp_path / "archive").exists()


def test_crawl_needs_names_or_all(news_sources_file, tmp_path, env):
    assert_one_line_error(run("crawl", "--sources", news_sources_file, cwd=tmp_path, env=env), "--all")
    assert_one_line_error(run("crawl", "testnews", "--all", "--sources", news_sources_file, cwd=tmp_path, env=env),
                          "--all")


def test_crawl_of_unreachable_site_fails_in_one_line(tmp_path, env):
    sources = tmp_path / "sources.toml"
    with closed_port() as port:
        sources.write_text(f"[[source]]\nname = \"gone\"\nstart_urls = [\"http://127.0.0.1:{port}/\"]\n"
                           f"delay = 0\n", encoding="utf-8")
        result = run("crawl", "gone", "--sources", sources, "--archive", tmp_path / "archive", "--no-prefect",
                     cwd=tmp_path, env=env, timeout=300)
    line = assert_one_line_error(result, "gone", whole=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout


# --- archive reads that find nothing ----------------------------------------

def test_list_and_get_of_unknown_url_are_one_line(tmp_path, env):
    archive = tmp_path / "archive"
    archive.mkdir()
    url = "http://127.0.0.1:9/news/never-crawled.html"
    assert_one_line_error(run("list", url, "--archive", archive, cwd=tmp_path, env=env), url)
    assert_one_line_error(run("list", url, "--archive", archive, "--json", cwd=tmp_path, env=env), url)
    for form in ("text", "html", "raw", "warc", "json"):
        assert_one_line_error(run("get", url, "--as", form, "--archive", archive, cwd=tmp_path, env=env), url)


def test_missing_archive_is_one_line(tmp_path, env):
    result = run("list", "http://127.0.0.1:9/x", "--archive", tmp_path / "no-archive", cwd=tmp_path, env=env)
    assert_one_line_error(result, "no-archive")


def test_archive_from_environment(tmp_path):
    env = cli_env(tmp_path, NEWSARCHIVE_ARCHIVE=str(tmp_path / "env-archive"))
    assert_one_line_error(run("list", "http://127.0.0.1:9/x", cwd=tmp_path, env=env), "env-archive")


def test_get_with_bad_time_is_one_line(tmp_path, env):
    archive = tmp_path / "archive"
    archive.mkdir()
    assert_one_line_error(run("get", "http://127.0.0.1:9/x", "--at", "last tuesday", "--archive", archive,
                              cwd=tmp_path, env=env), "last tuesday")
    assert_one_line_error(run("get", "http://127.0.0.1:9/x", "--as", "pdf", cwd=tmp_path, env=env), "pdf")


def test_upload_with_empty_spool_says_so(tmp_path, env):
    archive = tmp_path / "archive"
    archive.mkdir()
    spool = tmp_path / "spool"  # NEWSARCHIVE_SPOOL (cli_env): not made yet
    result = run("upload", "--archive", archive, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", f"nothing to upload: the spool {spool} does not exist\n")
    assert not spool.exists() and list(archive.iterdir()) == []  # nothing created anywhere

    spool.mkdir()  # there, but empty
    result = run("upload", "--archive", archive, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"uploaded 0 files from {spool} to {archive}\n" and result.stderr == ""
    assert list(archive.iterdir()) == []


def test_deploy_without_a_prefect_server_is_one_line(news_sources_file, tmp_path, env):
    result = run("deploy", "--sources", news_sources_file, cwd=tmp_path, env=env, timeout=120)
    assert_one_line_error(result, "PREFECT_API_URL")


def test_serve_on_a_busy_port_is_one_line(tmp_path, env):
    archive = tmp_path / "archive"
    archive.mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--archive", archive, "--port", port, cwd=tmp_path, env=env, timeout=60)
    assert_one_line_error(result, str(port))
