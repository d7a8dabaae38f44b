"""Full-text search at archive scale: query latency at 100,000 articles, and what indexing adds to a crawl.

    .venv/bin/python benchmarks/bench_search.py [--articles 100000] [--crawl-articles 300] [--quick]

1. archive: a folder archive of N generated articles in five languages (en, de, fr,
   ru, zh; Zipf-distributed vocabularies, known words planted at known document
   frequencies, 5 % of the articles changed once), written as a crawl writes them:
   text WARCs of `conversion` records (warcio), their CDXJ indexes (storage.cdxj,
   as `index` does), articles/...json, and capture index lines (the capture WARCs
   themselves are not written: search never reads them).
2. index: storage.catalog.Catalog.sync of that archive (indexes ingested, then every
   text folded into the search index, as a run's catalog step does) -> wall and CPU
   seconds, CPU ms per article, index size; then one more crawl's worth of articles
   (--batch) into the full index: the CPU per article a run adds at that scale.
3. queries: each kind (rare, medium and common words, phrase, prefix, boolean,
   filtered, Cyrillic, Chinese, counts per day, browsing) several times with
   different terms, through SearchIndex.search (limit 20: count, rank, snippets,
   captures) and over HTTP (GET /api/search on 127.0.0.1, uvicorn) -> p50 / p95 ms.
4. tokenizers: the same 20,000 articles (all languages) indexed three ways: unicode61
   alone, unicode61 + the CJK character-pair column (ours), unicode61 + a trigram
   table; size, CPU per article, and what a two- and a four-character Chinese word
   find in each.
5. crawl: a real crawl of --crawl-articles generated ~45 kB article pages (bench_pipeline's
   /proc sampler) for its CPU ms per article (Scrapy + extraction workers), then the CPU
   the search index adds per article when the run's catalog step ingests it.
   Ratio target: under 5 %.

Talks only to 127.0.0.1. Writes benchmarks/results/search-<UTC>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from warcio.warcwriter import WARCWriter  # noqa: E402

from storage import cdxj, layout, urls  # noqa: E402

LANGS = [("en", 0.55), ("de", 0.15), ("fr", 0.05), ("ru", 0.12), ("zh", 0.13)]
SOURCES = [f"src-{i}" for i in range(10)]
PER_WARC = 1000
YEAR = 2024

# planted: (language, text, share of that language's articles)
PLANTED = [("en", "climate", 0.02), ("en", "seagrass", 0.0005), ("en", "sea level rise", 0.01),
           ("en", "election", 0.05), ("de", "Überschwemmung", 0.01), ("ru", "выборы", 0.03),
           ("zh", "气候", 0.02), ("zh", "气候变化", 0.01)]


# --------------------------------------------------------------------------- text

class Language:
    """A Zipf-distributed vocabulary of made-up words (or characters, for zh)."""

    def __init__(self, code: str, rng: random.Random, size: int = 40000):
        self.code = code
        if code == "zh":
            chars = [chr(0x4E00 + i) for i in range(3500)]
            rng.shuffle(chars)
            self.words = chars
        else:
            if code == "ru":
                cons, vows = "бвгдзклмнпрстфхцчшщ", "аеиоуыэюя"
            else:
                cons, vows = "bcdfghjklmnprstvwz", "aeiou" + ("äöü" if code == "de" else "éè" if code == "fr" else "")
            seen, words = set(), []
            while len(words) < size:
                n = rng.choice((1, 2, 2, 3, 3, 3, 4))
                w = "".join(rng.choice(cons) + rng.choice(vows) for _ in range(n)) + (rng.choice(cons) if rng.random() < .4 else "")
                if w not in seen:
                    seen.add(w)
                    words.append(w)
            self.words = words
        weights = [1 / (r + 1) ** 1.07 for r in range(len(self.words))]
        total = 0.0
        self.cum = []
        for w in weights:
            total += w
            self.cum.append(total)

    def sample(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cum, k=k)

    def sentence(self, rng: random.Random, k: int) -> str:
        words = self.sample(rng, k)
        if self.code == "zh":
            return "".join(words) + "。"
        return " ".join(words).capitalize() + "."

    def paragraph(self, rng: random.Random) -> str:
        if self.code == "zh":
            return "".join(self.sentence(rng, rng.randint(15, 35)) for _ in range(rng.randint(3, 6)))
        return " ".join(self.sentence(rng, rng.randint(8, 18)) for _ in range(rng.randint(3, 6)))


def make_article(i: int, rng: random.Random, langs: dict, start: datetime) -> dict:
    code = rng.choices([c for c, _ in LANGS], weights=[w for _, w in LANGS])[0]
    lang = langs[code]
    published = start + timedelta(seconds=rng.randint(0, 365 * 86400 - 1))
    captured = published + timedelta(seconds=rng.randint(600, 2 * 86400))
    source = SOURCES[i % len(SOURCES)]
    paragraphs = [lang.paragraph(rng) for _ in range(rng.randint(4, 9))]
    for lc, text, share in PLANTED:
        if lc == code and rng.random() < share:
            p = rng.randrange(len(paragraphs))
            sep = "" if code == "zh" else " "
            paragraphs[p] = paragraphs[p].rstrip("。.") + sep + text + ("。" if code == "zh" else ".")
    title = lang.sentence(rng, rng.randint(5, 10)).rstrip(".。")
    return {"i": i, "lang": code, "source": source, "published": published, "captured": captured, "title": title,
            "url": f"https://{source}.example/{published:%Y/%m/%d}/story-{i}.html", "paragraphs": paragraphs,
            "author": " ".join(langs["en"].sample(rng, 2)).title()}


def plain_text(a: dict, paragraphs: list[str]) -> str:
    return (f"{a['title']}\nBy {a['author']} · date {a['published']:%Y-%m-%d}\n{a['url']}\n\n"
            + "\n\n".join(paragraphs) + "\n")


# --------------------------------------------------------------------------- the archive

class ArchiveWriter:
    """Writes generated articles into a folder archive as a crawl's upload leaves them."""

    def __init__(self, root: Path):
        self.root = root
        self.serial = 0

    def write_batch(self, source: str, batch: list[tuple[dict, list[str], datetime]]) -> None:
        self.serial += 1
        created = batch[0][2]
        name = layout.warc_filename(f"newsarchive-{source}", created, self.serial, "bench", text=True)
        key = layout.warc_key(source, created, name)
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        capture_warc = key.replace(".text.warc.gz", ".warc.gz")
        capture_lines = []
        with open(path, "wb") as out:
            writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
            for n, (a, paragraphs, captured) in enumerate(batch):
                record_id = f"<urn:uuid:{uuid.UUID(int=random.getrandbits(128))}>"
                text = plain_text(a, paragraphs).encode("utf-8")
                date = captured.strftime("%Y-%m-%dT%H:%M:%SZ")
                rec = writer.create_warc_record(a["url"], "conversion", payload=io.BytesIO(text), length=len(text),
                                                warc_headers_dict={"Content-Type": "text/plain; charset=utf-8",
                                                                   "WARC-Date": date, "WARC-Refers-To": record_id})
                writer.write_record(rec)
                ts = captured.strftime("%Y%m%d%H%M%S")
                digest = "sha1:" + hashlib.sha1(text).hexdigest().upper()[:32]
                capture_lines.append(f"{urls.url_key(a['url'])} {ts} " + json.dumps(
                    {"url": a["url"], "mime": "text/html", "status": "200", "digest": digest, "length": "5000",
                     "offset": str(n * 5000), "filename": capture_warc, "record_id": record_id}) + "\n")
                meta = {"title": a["title"], "author": a["author"], "date": f"{a['published']:%Y-%m-%d}",
                        "date_published": a["published"].strftime("%Y-%m-%dT%H:%M:%S+00:00"), "url": a["url"],
                        "language": a["lang"], "sitename": f"{source}.example", "fetched_at": date,
                        "capture": {"warc": capture_warc, "record_id": record_id}}
                json_key = layout.article_key(source, captured, a["url"], "json")
                (self.root / json_key).parent.mkdir(parents=True, exist_ok=True)
                (self.root / json_key).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        lines = cdxj.index_warc(path, key)
        index = self.root / layout.index_key(key)
        index.parent.mkdir(parents=True, exist_ok=True)
        index.write_text("".join(lines), encoding="utf-8")
        (self.root / layout.index_key(capture_warc)).write_text("".join(sorted(capture_lines)), encoding="utf-8")


def generate(root: Path, n: int, batch_size: int, seed: int = 7) -> tuple[dict, list, list]:
    """n articles (5 % changed once later) and a last batch of `batch_size` more, written
    after the first n so it can be ingested into the full index on its own."""
    rng = random.Random(seed)
    random.seed(seed)
    langs = {code: Language(code, random.Random(seed + i)) for i, (code, _) in enumerate(LANGS)}
    start = datetime(YEAR, 1, 1, tzinfo=timezone.utc)
    writer = ArchiveWriter(root)
    items = []
    for i in range(n):
        a = make_article(i, rng, langs, start)
        items.append((a, a["paragraphs"], a["captured"]))
        if rng.random() < 0.05:  # changed later: one paragraph rewritten
            later = list(a["paragraphs"])
            later[rng.randrange(len(later))] = langs[a["lang"]].paragraph(rng)
            items.append((a, later, a["captured"] + timedelta(hours=rng.randint(3, 72))))
    by_source: dict[str, list] = {}
    for item in items:
        by_source.setdefault(item[0]["source"], []).append(item)
    for source, rows in by_source.items():
        rows.sort(key=lambda r: r[2])
        for k in range(0, len(rows), PER_WARC):
            writer.write_batch(source, rows[k:k + PER_WARC])
    extra = [make_article(n + j, rng, langs, start) for j in range(batch_size)]
    return langs, items, extra


# --------------------------------------------------------------------------- measuring

def cpu() -> float:
    t = os.times()
    return t.user + t.system


def dbstat(path: Path) -> dict:
    with sqlite3.connect(path) as db:
        rows = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
    search = sum(v for k, v in rows.items() if k.startswith(("article_text", "articles", "article_versions",
                                                               "search_indexes", "texts_by_index")))
    fts = sum(v for k, v in rows.items() if k.startswith("article_text"))
    return {"file_mb": round(path.stat().st_size / 1e6, 1), "search_tables_mb": round(search / 1e6, 1),
            "fts_mb": round(fts / 1e6, 1), "rest_mb": round((sum(rows.values()) - search) / 1e6, 1)}


def percentiles(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"n": len(s), "p50_ms": round(statistics.median(s), 1),
            "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))], 1), "max_ms": round(s[-1], 1)}


def words_by_df(db: sqlite3.Connection, lo: float, hi: float, n_docs: int, k: int, rng: random.Random,
                lang_filter: str = "ascii") -> list[str]:
    """Terms of the FTS vocabulary whose document frequency share lies in [lo, hi]."""
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, 'article_text', 'row')")
    rows = db.execute("SELECT term, doc FROM temp.vocab WHERE doc BETWEEN ? AND ? AND length(term) > 3",
                      (max(1, int(lo * n_docs)), max(1, int(hi * n_docs)))).fetchall()
    if lang_filter == "ascii":
        rows = [r for r in rows if r[0].isascii() and r[0].isalpha()]
    elif lang_filter == "cyrillic":
        rows = [r for r in rows if "а" <= r[0][0] <= "я"]
    rng.shuffle(rows)
    return [r[0] for r in rows[:k]]


def cjk_pairs_by_df(db: sqlite3.Connection, lo: float, hi: float, n_docs: int, k: int, rng) -> list[str]:
    rows = db.execute("SELECT term, doc FROM temp.vocab WHERE doc BETWEEN ? AND ? AND length(term) = 2",
                      (max(1, int(lo * n_docs)), max(1, int(hi * n_docs)))).fetchall()
    rows = [r for r in rows if all("\u4e00" <= ch <= "\u9fff" for ch in r[0])]
    rng.shuffle(rows)
    return [r[0] for r in rows[:k]]


def query_plan(catalog_path: Path, n_docs: int, repeat: int, seed: int = 11) -> list[tuple[str, str, dict]]:
    rng = random.Random(seed)
    db = sqlite3.connect(catalog_path)
    rare = words_by_df(db, 0.0005, 0.002, n_docs, repeat, rng)
    medium = words_by_df(db, 0.01, 0.05, n_docs, repeat * 3, rng)
    common = words_by_df(db, 0.3, 0.95, n_docs, repeat, rng)
    cyr = words_by_df(db, 0.002, 0.02, n_docs, repeat, rng, "cyrillic")
    pairs = cjk_pairs_by_df(db, 0.001, 0.02, n_docs, repeat, rng)
    db.close()
    plan = []
    for i in range(repeat):
        m1, m2, m3 = medium[i * 3 % len(medium)], medium[(i * 3 + 1) % len(medium)], medium[(i * 3 + 2) % len(medium)]
        month = f"{YEAR}-{rng.randint(1, 12):02d}"
        plan += [
            ("rare word", rare[i % len(rare)], {}),
            ("medium word", m1, {}),
            ("common word", common[i % len(common)], {}),
            ("phrase", '"sea level rise"' if i % 2 == 0 else f'"{m1} {m2}"', {}),
            ("prefix", m2[:4] + "*", {}),
            ("boolean", [f"{m1} AND {m2}", f"{m1} OR {m2}", f"({m1} OR {m2}) NOT {m3}", f"{m1} -{m3}"][i % 4], {}),
            ("filtered", m1, {"source": [SOURCES[i % len(SOURCES)]], "from": month, "to": month, "lang": "en"}),
            ("cyrillic", ["выборы", cyr[i % len(cyr)] if cyr else "выборы"][i % 2], {}),
            ("chinese", ["气候", "气候变化", pairs[i % len(pairs)] if pairs else "气候"][i % 3], {}),
            ("counts per day", m1, {"count": "day"}),
            ("browse (no query)", "", {"source": [SOURCES[i % len(SOURCES)]]}),
        ]
    return plan


def run_queries(index, plan) -> dict:
    from storage.search import SearchFilters

    by_kind: dict[str, list[float]] = {}
    hits: dict[str, list[int]] = {}
    for kind, q, opts in plan:  # one warm-up pass over every query, as a server would be warm
        filters = SearchFilters.from_input(opts.get("source", ()), opts.get("from"), opts.get("to"), opts.get("lang"))
        index.counts(q, filters, by="day") if "count" in opts else index.search(q, filters, limit=20)
    for kind, q, opts in plan:
        filters = SearchFilters.from_input(opts.get("source", ()), opts.get("from"), opts.get("to"), opts.get("lang"))
        t = time.perf_counter()
        if "count" in opts:
            n = sum(c for _, c in index.counts(q, filters, by="day"))
        else:
            n = index.search(q, filters, limit=20).total
        by_kind.setdefault(kind, []).append(1000 * (time.perf_counter() - t))
        hits.setdefault(kind, []).append(n)
    out = {kind: {**percentiles(ms), "median_matches": int(statistics.median(hits[kind]))}
           for kind, ms in by_kind.items()}
    out["all"] = percentiles([x for ms in by_kind.values() for x in ms])
    return out


def run_http(archive_path: Path, catalog_path: Path, plan) -> dict:
    from storage.archive import open_archive
    from storage.server import bind, create_app, server_for, url_of

    app = create_app(open_archive(str(archive_path), catalog_path=catalog_path), sync_interval=3600)
    sock = bind("127.0.0.1", 0)
    server = server_for(app, sock, log_level="warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    base = url_of(sock)
    samples: dict[str, list[float]] = {}
    try:
        for warm in (True, False):
            for kind, q, opts in plan:
                if "count" in opts:
                    path = "/api/search/counts?" + urllib.parse.urlencode({"q": q, "by": opts["count"]})
                else:
                    params = [("q", q)] + [(k, v) for k, vs in opts.items() for v in (vs if isinstance(vs, list) else [vs])]
                    path = "/api/search?" + urllib.parse.urlencode(params)
                t = time.perf_counter()
                with urllib.request.urlopen(base + path, timeout=60) as resp:
                    resp.read()
                if not warm:
                    samples.setdefault(kind, []).append(1000 * (time.perf_counter() - t))
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
    out = {kind: percentiles(ms) for kind, ms in samples.items()}
    out["all"] = percentiles([x for ms in samples.values() for x in ms])
    return out


# --------------------------------------------------------------------------- tokenizers

def tokenizers(items: list, n: int) -> dict:
    """The same n texts into three layouts; size, CPU per article, what Chinese words find."""
    from storage.plaintext import split_plain_text
    from storage.searchquery import cjk_index_text

    docs = []
    for a, paragraphs, _ in items[:n]:
        plain = split_plain_text(plain_text(a, paragraphs))
        docs.append((a["title"], plain.body))
    layouts = {
        "unicode61 alone": ["CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize='unicode61 remove_diacritics 2')"],
        "unicode61 + CJK pairs (ours)": [
            "CREATE VIRTUAL TABLE t USING fts5(title, body, cjk, tokenize='unicode61 remove_diacritics 2')"],
        "unicode61 + trigram": [
            "CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize='unicode61 remove_diacritics 2')",
            "CREATE VIRTUAL TABLE g USING fts5(body, tokenize='trigram')"],
    }
    out = {}
    tmp = Path(tempfile.mkdtemp(prefix="newsarchive-tok-"))
    try:
        for name, ddl in layouts.items():
            path = tmp / "t.sqlite"
            path.unlink(missing_ok=True)
            db = sqlite3.connect(path)
            for statement in ddl:
                db.execute(statement)
            t0 = cpu()
            with db:
                for i, (title, body) in enumerate(docs):
                    if "pairs" in name:
                        db.execute("INSERT INTO t (rowid, title, body, cjk) VALUES (?, ?, ?, ?)",
                                   (i, title, body, cjk_index_text(title, body)))
                    else:
                        db.execute("INSERT INTO t (rowid, title, body) VALUES (?, ?, ?)", (i, title, body))
                    if "trigram" in name:
                        db.execute("INSERT INTO g (rowid, body) VALUES (?, ?)", (i, body))
            spent = cpu() - t0
            rows = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
            row = {"cpu_ms_per_article": round(1000 * spent / len(docs), 3),
                   "size_mb": round(sum(rows.values()) / 1e6, 1)}
            truth = {w: sum(1 for title, body in docs if w in body or w in title) for w in ("气候", "气候变化")}
            for word in ("气候", "气候变化"):
                t = time.perf_counter()
                if "pairs" in name:
                    q = 'cjk : "' + " ".join(word[i:i + 2] for i in range(len(word) - 1)) + '"'
                    found = db.execute("SELECT count(*) FROM t WHERE t MATCH ?", (q,)).fetchone()[0]
                elif "trigram" in name:
                    found = db.execute("SELECT count(*) FROM g WHERE g MATCH ?", (f'"{word}"',)).fetchone()[0]
                    like = db.execute("SELECT count(*) FROM g WHERE body LIKE ?", (f"%{word}%",)).fetchone()[0]
                    row[f"{word} LIKE"] = like
                else:
                    found = db.execute("SELECT count(*) FROM t WHERE t MATCH ?", (f'"{word}"',)).fetchone()[0]
                row[f"{word} found"] = found
                row[f"{word} in texts"] = truth[word]
                row[f"{word} ms"] = round(1000 * (time.perf_counter() - t), 1)
            db.close()
            out[name] = row
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- a real crawl

def _boilerplate(rng: random.Random, words: Language) -> str:
    """What surrounds an article on a real news page: menus, teasers, footer, scripts, styles
    (pages of about 45 kB, so extraction works on a page shaped like a real one)."""
    menu = "".join(f'<li><a href="/section/{i}">{" ".join(words.sample(rng, 2))}</a></li>' for i in range(120))
    teasers = "".join(f'<div class="teaser"><a href="/other/{rng.randint(1, 10**6)}.html"><img src="/i/{i}.jpg" '
                      f'alt="{" ".join(words.sample(rng, 4))}"><h3>{" ".join(words.sample(rng, 7))}</h3></a>'
                      f'<p>{" ".join(words.sample(rng, 25))}</p></div>' for i in range(40))
    script = "<script>window.dataLayer = [" + ",".join(f'{{"k{i}": "{i * 7}"}}' for i in range(300)) + "];</script>"
    style = "<style>" + "".join(f".c{i} {{ margin: {i}px; color: #{i:06x}; }}" for i in range(300)) + "</style>"
    return style, script, f"<nav><ul>{menu}</ul></nav>", f"<aside>{teasers}</aside>", \
        f"<footer><ul>{menu}</ul><p>{' '.join(words.sample(rng, 60))}</p></footer>"


class BenchSite:
    """n generated article pages (English, with real-size boilerplate) and a sitemap on 127.0.0.1."""

    def __init__(self, n: int, seed: int = 5):
        from siteserver import Route, SiteServer

        rng = random.Random(seed)
        words = Language("en", random.Random(seed), size=20000)
        start = datetime(YEAR, 1, 1, tzinfo=timezone.utc)
        self.pages: dict[str, bytes] = {}
        for i in range(n):
            a = make_article(i, rng, {c: words for c, _ in LANGS}, start)
            style, script, nav, aside, footer = _boilerplate(rng, words)
            body = "".join(f"<p>{p}</p>" for p in a["paragraphs"])
            self.pages[f"/news/{i}.html"] = (
                f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{a["title"]}</title>'
                f'<meta property="article:published_time" content="{a["published"].isoformat()}">{style}</head>'
                f'<body>{nav}<main><article><h1>{a["title"]}</h1><p>By {a["author"]}</p>{body}</article></main>'
                f'{aside}{footer}{script}</body></html>').encode("utf-8")
        self.server = SiteServer(self._route)
        self.Route = Route
        self.server.start()
        locs = "".join(f"<url><loc>{self.server.url(p)}</loc></url>" for p in self.pages)
        self.sitemap = ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/'
                        f'sitemap/0.9">{locs}</urlset>').encode("utf-8")

    def _route(self, path: str, server):
        html = [("Content-Type", "text/html; charset=utf-8")]
        if path == "/robots.txt":
            return self.Route(b"User-agent: *\nAllow: /\n", headers=[("Content-Type", "text/plain")])
        if path == "/sitemap.xml":
            return self.Route(self.sitemap, headers=[("Content-Type", "application/xml")])
        body = self.pages.get(path)
        return self.Route(body, headers=html) if body is not None else None

    def sources_toml(self, n: int) -> str:
        return "\n".join(["[[source]]", 'name = "bench"', f"sitemaps = ['{self.server.url('/sitemap.xml')}']",
                          "allow = ['/news/']", "depth = 0", f"max_pages = {n + 10}", "delay = 0",
                          "concurrency = 16", ""])

    def mean_page_kb(self) -> float:
        return round(sum(map(len, self.pages.values())) / len(self.pages) / 1000, 1)


def crawl_cpu(n: int, workdir: Path) -> dict:
    """A real crawl of n articles: the crawl's CPU per article, then the search index's."""
    import bench_pipeline as bp
    from flows.crawler import run_crawl
    from storage.backends import open_backend
    from storage.catalog import Catalog
    from storage.cdxj import index_spool
    from storage.recovery import SpoolLock
    from storage.spool import upload_spool

    site = BenchSite(n)
    workdir.mkdir(parents=True, exist_ok=True)
    sources = workdir / "sources.toml"
    sources.write_text(site.sources_toml(n), encoding="utf-8")
    archive = workdir / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    backend = open_backend(str(archive))
    sampler = bp.TreeSampler({"articles": 0, "pages": 0})
    try:
        with SpoolLock(workdir / "spool" / "bench", "bench") as lock:
            sampler.start()
            try:
                stats = run_crawl("bench", sources_file=sources, lock=lock)
            finally:
                sampler.stop()
            index_spool(lock.spool)
            upload_spool(lock.spool, backend)
    finally:
        site.server.stop()
    articles = int(stats.get("articles") or 0)
    roles = sampler.cpu_by_role()
    crawl_s = (roles.get("main") or 0) + (roles.get("workers") or 0)
    catalog = Catalog(workdir / "catalog.sqlite")
    for key in sorted(backend.list("indexes/")):  # the catalog's own part of the sync, not timed
        catalog.ingest_index(key, backend.get_bytes(key))
    t0, w0 = cpu(), time.perf_counter()
    report = catalog.search.update(backend)
    spent, wall = cpu() - t0, time.perf_counter() - w0
    catalog.close()
    return {"articles": articles, "page_kb": site.mean_page_kb(), "crawl_cpu_s": round(crawl_s, 2),
            "crawl_cpu_ms_per_article": round(1000 * crawl_s / max(articles, 1), 1),
            "crawl_cpu_by_role_s": roles, "indexed": report.articles,
            "index_cpu_ms_per_article": round(1000 * spent / max(report.articles, 1), 2),
            "index_wall_ms_per_article": round(1000 * wall / max(report.articles, 1), 2),
            "share_of_crawl_cpu_pct": round(100 * spent / crawl_s, 2) if crawl_s else None}


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000, help="articles in the archive (default 100000)")
    parser.add_argument("--batch", type=int, default=1000, help="one more run's articles, ingested at scale")
    parser.add_argument("--repeat", type=int, default=12, help="queries of each kind (different terms)")
    parser.add_argument("--tokenizer-articles", type=int, default=20_000)
    parser.add_argument("--crawl-articles", type=int, default=300, help="articles of the real crawl (0: skip)")
    parser.add_argument("--quick", action="store_true", help="20000 articles, 6 queries each, crawl of 200")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated archive here")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.articles, args.repeat, args.crawl_articles = 20_000, 6, 200
        args.tokenizer_articles = min(args.tokenizer_articles, 10_000)
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    from bench_pipeline import machine

    info = machine()
    print(f"search benchmark: {args.articles} articles, {info['cores']} cores, load {info['load_average']}", flush=True)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="newsarchive-search-"))
    result: dict = {"benchmark": "search", "articles": args.articles, "machine": info}
    try:
        root = work / "archive"
        t = time.perf_counter()
        _langs, items, extra = generate(root, args.articles, args.batch)
        result["generate_seconds"] = round(time.perf_counter() - t, 1)
        result["texts"] = len(items)
        print(f"  generated {len(items)} texts of {args.articles} articles in {result['generate_seconds']} s", flush=True)

        from storage.backends import open_backend
        from storage.catalog import Catalog

        backend = open_backend(str(root))
        catalog_path = work / "catalog.sqlite"
        catalog = Catalog(catalog_path)
        t0, w0 = cpu(), time.perf_counter()
        keys = sorted(backend.list("indexes/"))
        for key in keys:
            catalog.ingest_index(key, backend.get_bytes(key))
        ingest_cpu, ingest_wall = cpu() - t0, time.perf_counter() - w0
        t0, w0 = cpu(), time.perf_counter()
        report = catalog.search.update(backend)
        index_cpu, index_wall = cpu() - t0, time.perf_counter() - w0
        t0 = time.perf_counter()
        catalog.search.optimize()
        optimize_s = time.perf_counter() - t0
        result["index"] = {
            "catalog_ingest_cpu_s": round(ingest_cpu, 1), "catalog_ingest_wall_s": round(ingest_wall, 1),
            "search_texts": report.articles, "search_cpu_s": round(index_cpu, 1), "search_wall_s": round(index_wall, 1),
            "search_cpu_ms_per_text": round(1000 * index_cpu / max(report.articles, 1), 2),
            "optimize_s": round(optimize_s, 1), **dbstat(catalog_path)}
        print(f"  indexed {report.articles} texts: {result['index']['search_cpu_ms_per_text']} CPU ms each, "
              f"{result['index']['search_tables_mb']} MB of search tables", flush=True)

        # one more run's articles into the full index (what a run's catalog step costs at scale)
        writer = ArchiveWriter(root)
        writer.serial = 90000
        for k in range(0, len(extra), PER_WARC):
            chunk = extra[k:k + PER_WARC]
            writer.write_batch(chunk[0]["source"], sorted(((a, a["paragraphs"], a["captured"]) for a in chunk),
                                                          key=lambda r: r[2]))
        new = [k for k in sorted(backend.list("indexes/")) if k not in set(keys)]
        for key in new:
            catalog.ingest_index(key, backend.get_bytes(key))
        t0 = cpu()
        more = catalog.search.update(backend)
        result["index"]["at_scale_cpu_ms_per_text"] = round(1000 * (cpu() - t0) / max(more.articles, 1), 2)
        print(f"  {more.articles} more into the full index: {result['index']['at_scale_cpu_ms_per_text']} CPU ms each",
              flush=True)

        n_docs = catalog._db().execute("SELECT count(*) FROM articles").fetchone()[0]
        plan = query_plan(catalog_path, n_docs, args.repeat)
        result["queries"] = run_queries(catalog.search, plan)
        print(f"  queries (library): p50 {result['queries']['all']['p50_ms']} ms, "
              f"p95 {result['queries']['all']['p95_ms']} ms", flush=True)
        result["http"] = run_http(root, catalog_path, plan)
        print(f"  queries (GET /api/search): p50 {result['http']['all']['p50_ms']} ms, "
              f"p95 {result['http']['all']['p95_ms']} ms", flush=True)
        catalog.close()

        result["tokenizers"] = tokenizers(items, min(args.tokenizer_articles, len(items)))
        print("  tokenizers compared", flush=True)
        if args.crawl_articles:
            result["crawl"] = crawl_cpu(args.crawl_articles, work / "crawl")
            c = result["crawl"]
            print(f"  crawl: {c['crawl_cpu_ms_per_article']} CPU ms per article; search index "
                  f"{c['index_cpu_ms_per_article']} ms ({c['share_of_crawl_cpu_pct']} %)", flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]

    print()
    print(f"{'query kind':<22}{'p50 ms':>9}{'p95 ms':>9}{'http p50':>10}{'matches':>10}")
    for kind, row in result["queries"].items():
        if kind == "all":
            continue
        print(f"{kind:<22}{row['p50_ms']:>9}{row['p95_ms']:>9}{result['http'][kind]['p50_ms']:>10}"
              f"{row['median_matches']:>10}")
    q, h = result["queries"]["all"], result["http"]["all"]
    print(f"{'all':<22}{q['p50_ms']:>9}{q['p95_ms']:>9}{h['p50_ms']:>10}   (target: p50 under 200 ms)")
    print()
    for name, row in result["tokenizers"].items():
        print(f"{name:<30} {row['size_mb']:>7} MB  {row['cpu_ms_per_article']:>7} CPU ms/article  "
              f"气候 {row['气候 found']}/{row['气候 in texts']}  气候变化 {row['气候变化 found']}/{row['气候变化 in texts']}"
              + (f"  (LIKE: {row['气候 LIKE']}, {row['气候变化 LIKE']})" if "气候 LIKE" in row else ""))
    i = result["index"]
    print(f"\nindex of {i['search_texts']} texts: {i['search_cpu_ms_per_text']} CPU ms per text "
          f"({i['at_scale_cpu_ms_per_text']} at scale), search tables {i['search_tables_mb']} MB "
          f"(FTS {i['fts_mb']} MB) of a {i['file_mb']} MB catalog")
    if "crawl" in result:
        c = result["crawl"]
        print(f"crawl of {c['articles']} articles: {c['crawl_cpu_ms_per_article']} CPU ms per article; the search "
              f"index adds {c['index_cpu_ms_per_article']} ms = {c['share_of_crawl_cpu_pct']} % (target: under 5 %)")

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    result["when"] = stamp
    out = args.out or ROOT / "benchmarks" / "results" / f"search-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
