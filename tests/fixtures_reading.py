"""A small multi-language news site, crawled twice into one archive, for search and the reading room
(a pytest plugin, loaded by conftest.py).

reading_site     session: the site on 127.0.0.1 (tests/siteserver.py routes): two sources,
                 "harbour" (English, German, an article that changes between the crawls, one
                 whose title and text carry HTML and script) and "world" (Russian, Chinese)
reading_archive  session: the folder archive after two real crawls (`newsarchive crawl --all
                 --no-prefect`, the second with recheck = 0 so every article is fetched again;
                 unchanged ones become revisits), with what the runs' own catalog step indexed

The pages are our own (written here), so what each query must find is known exactly.
"""

from __future__ import annotations

import html
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from siteserver import Route, SiteServer
from test_cli_support import cli_env, run

HTML = "text/html; charset=utf-8"

# key: (source, path, lang, published, author, title, paragraphs)
ARTICLES = {
    "seagrass": ("harbour", "/harbour/2024/05/13/seagrass-plan.html", "en", "2024-05-13T09:00:00+02:00", "Ines Varga",
                 "Harbour council approves seagrass restoration plan", [
                     "The harbour council voted on Monday to fund a seagrass restoration plan for the inner bay, "
                     "after divers counted new shoots across four hectares of the seabed.",
                     "Marine biologists said the meadows store carbon and shelter young fish, and that climate "
                     "change makes the warm shallows harder to restore every summer.",
                     "The plan sets aside money for five years of monitoring and a volunteer diving programme "
                     "run from the old pilot station."]),
    "ferry": ("harbour", "/harbour/2024/05/14/ferry-timetable.html", "en", "2024-05-14T08:00:00+01:00", "Tomas Reyes",
              "Ferry timetable cut as crew shortage bites", [
                  "The island ferry will sail four times a day instead of six from June, the operator said, "
                  "because it cannot hire enough qualified crew for the summer season.",
                  "Commuters said the climatic conditions on the crossing were never the problem; staffing was, "
                  "and it has been for three winters in a row.",
                  "The operator will meet passenger groups next week to discuss a winter timetable and cheaper "
                  "season tickets for islanders."]),
    "flood": ("harbour", "/harbour/2024/05/14/hochwasserschutz.html", "de", "2024-05-14T10:00:00+02:00", "Lukas Brenner",
              "Hafenrat beschließt Schutz gegen Überschwemmung", [
                  "Der Hafenrat hat am Dienstag beschlossen, die Kaimauer um einen halben Meter zu erhöhen, "
                  "um die Altstadt künftig vor Überschwemmung zu schützen.",
                  "Die Arbeiten sollen im Herbst beginnen und zwei Jahre dauern; der Fährverkehr läuft in "
                  "dieser Zeit ohne Einschränkungen weiter.",
                  "Fachleute warnen, dass der Klimawandel an dieser Küste häufigere und höhere Sturmfluten "
                  "bringen wird als bisher angenommen."]),
    "bridge": ("harbour", "/harbour/2024/05/15/bridge-repairs.html", "en", "2024-05-15T07:30:00+00:00", "Maren Holt",
               "Harbour bridge to close for repairs", [
                   "The harbour bridge will close for two weeks in June while engineers replace its worn bearings.",
                   "Buses will use the ring road instead, adding about ten minutes to most journeys across town "
                   "during the morning rush.",
                   "Cyclists may still cross on the footway during the day, the council said, but not after dark."]),
    "gala": ("harbour", "/harbour/2024/05/16/gala-night.html", "en", "2024-05-16T19:00:00+02:00", "Anna Sokolova",
             '<script>alert("title")</script> Harbour <b>gala</b> night raises funds for the lifeboat', [
                 "Guests were told to type <img src=x onerror=alert(1)> into the raffle form, a prank the "
                 "organisers later called harmless but silly.",
                 "The evening raised enough money to refit the lifeboat's engine and to train two new volunteer "
                 "crews before the autumn storms arrive."]),
    "sovet": ("world", "/world/2024/05/13/morskaya-trava.html", "ru", "2024-05-13T12:00:00+03:00", "Анна Соколова",
              "Городской совет утвердил план восстановления морской травы", [
                  "Городской совет в понедельник утвердил план восстановления морской травы во внутренней бухте "
                  "после того, как водолазы насчитали новые побеги.",
                  "Биологи говорят, что луга морской травы накапливают углерод и защищают молодую рыбу от "
                  "хищников в тёплые месяцы.",
                  "Изменение климата делает тёплое мелководье всё труднее для восстановления, предупреждают учёные."]),
    "haicao": ("world", "/world/2024/05/15/haicao-jihua.html", "zh", "2024-05-15T10:00:00+08:00", "李明",
               "市议会批准海草恢复计划", [
                   "市议会周一投票批准了内湾的海草恢复计划，潜水员在四公顷的海床上发现了新芽。",
                   "海洋生物学家表示，我们讨论了气候变化的问题，海草草甸能够储存碳并庇护幼鱼。",
                   "该计划为五年的监测和志愿潜水项目预留了资金，项目将从旧领航站开始。"]),
}

# The bridge article as the second crawl finds it: one paragraph changed, one removed, one added.
BRIDGE_LATER = [
    "The harbour bridge will close for three weeks in June while engineers replace its worn bearings and "
    "repaint the span.",
    "Buses will use the ring road instead, adding about ten minutes to most journeys across town "
    "during the morning rush.",
    "A free shuttle boat will run every twenty minutes between the two quays while the bridge is shut.",
]

# What an archived page may try when replayed (the bridge article carries it): scripts,
# an image on the live site's own host, one on the internet. None of it may happen.
HOSTILE = ('<script>document.title = "pwned"; try {{ top.document.title = "pwned" }} catch (e) {{}}; '
           'fetch("/pwned-by-replay")</script>'
           '<img src="http://127.0.0.1:{port}/leak.gif" alt=""><img src="https://tracker.invalid/pixel.gif" alt="">')


def article_page(key: str, paragraphs: list[str] | None = None, port: int = 0) -> bytes:
    source, path, lang, published, author, title, body = ARTICLES[key]
    paragraphs = paragraphs if paragraphs is not None else body
    e = html.escape
    extra = HOSTILE.format(port=port) if key == "bridge" else ""
    return (f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f'<meta property="article:published_time" content="{published}">'
            f'<meta name="author" content="{e(author)}">'
            f'</head><body><header><nav><a href="/">Home</a> <a href="/{source}/">Section</a></nav></header>'
            f'<main><article><h1>{e(title)}</h1><p class="byline">By {e(author)}</p>'
            + "".join(f"<p>{e(p)}</p>" for p in paragraphs)
            + f'</article></main>{extra}<footer><p>The Port Alder Test Courier</p></footer></body></html>\n'
            ).encode("utf-8")


@dataclass
class ReadingSite:
    server: SiteServer
    routes: dict[str, Route]
    urls: dict[str, str] = field(default_factory=dict)  # article key -> URL

    def url(self, path: str) -> str:
        return self.server.url(path)

    def sources_toml(self, recheck: int = 24) -> str:
        out = []
        for name in ("harbour", "world"):
            out += ["[[source]]", f'name = "{name}"', f"sitemaps = ['{self.url(f'/{name}/sitemap.xml')}']",
                    f"allow = ['/{name}/\\d{{4}}/']", "depth = 0", "delay = 0", "concurrency = 4",
                    f"recheck = {recheck}", ""]
        return "\n".join(out)

    def change_bridge(self) -> None:
        path = ARTICLES["bridge"][1]
        self.routes[path] = Route(article_page("bridge", BRIDGE_LATER, self.server.port),
                                  headers=[("Content-Type", HTML)])


def _sitemap(urls: list[str]) -> bytes:
    body = "".join(f"<url><loc>{html.escape(u)}</loc></url>\n" for u in urls)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            + body + "</urlset>\n").encode("utf-8")


@pytest.fixture(scope="session")
def reading_site():
    routes: dict[str, Route] = {}
    server = SiteServer(routes).start()
    site = ReadingSite(server, routes)
    try:
        routes["/robots.txt"] = Route(b"User-agent: *\nAllow: /\n", headers=[("Content-Type", "text/plain")])
        for key, (source, path, *_rest) in ARTICLES.items():
            routes[path] = Route(article_page(key, port=server.port), headers=[("Content-Type", HTML)])
            site.urls[key] = server.url(path)
        for name in ("harbour", "world"):
            urls = [site.urls[k] for k, a in ARTICLES.items() if a[0] == name]
            routes[f"/{name}/sitemap.xml"] = Route(_sitemap(urls), headers=[("Content-Type", "application/xml")])
        yield site
    finally:
        server.stop()


@dataclass
class ReadingArchive:
    path: Path
    workdir: Path
    env: dict
    site: ReadingSite
    indexed_after_first: set[str]  # article URLs the first run's catalog step made searchable
    indexed_after_second: dict[str, int]  # word -> articles matching it, straight after the second run

    @property
    def urls(self) -> dict[str, str]:
        return self.site.urls

    def cli(self, *args, **kwargs):
        return run(*args, "--archive", self.path, cwd=self.workdir, env=self.env, **kwargs)


def _searchable(catalog: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)


@pytest.fixture(scope="session")
def reading_archive(reading_site, tmp_path_factory) -> ReadingArchive:
    work = tmp_path_factory.mktemp("reading")
    env = cli_env(work, XDG_CACHE_HOME=str(work / "cache"))
    archive = work / "archive"
    sources = work / "sources.toml"

    sources.write_text(reading_site.sources_toml(), encoding="utf-8")
    first = run("crawl", "--all", "--sources", sources, "--archive", archive, "--no-prefect",
                cwd=work, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    # what the run's own last step (the catalog) indexed, read without syncing anything
    with _searchable(archive / "catalog.sqlite") as db:
        indexed_first = {row[0] for row in db.execute("SELECT url FROM articles")}

    time.sleep(1.1)  # WARC timestamps have whole seconds: the second capture is later
    reading_site.change_bridge()
    sources.write_text(reading_site.sources_toml(recheck=0), encoding="utf-8")
    second = run("crawl", "--all", "--sources", sources, "--archive", archive, "--no-prefect",
                 cwd=work, env=env, timeout=600)
    assert second.returncode == 0, second.stderr
    with _searchable(archive / "catalog.sqlite") as db:
        indexed_second = {word: db.execute("SELECT count(*) FROM article_text WHERE article_text MATCH ?",
                                           (word,)).fetchone()[0] for word in ("shuttle", "cyclists", "seagrass")}
    return ReadingArchive(archive, work, env, reading_site, indexed_first, indexed_second)
