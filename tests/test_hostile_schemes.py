"""Only http and https are fetched: file:, ftp:, s3:, gopher: and data: URLs, wherever they come
from (links, robots.txt Sitemap: lines, sitemap and feed entries), are refused and counted."""

from siteserver import Route

from fixtures_hostile import check_archive
from hostile_site import XML, page


def test_links_sitemaps_and_feeds_to_other_schemes_are_refused_and_counted(hostile_site, hostile_crawl):
    site = hostile_site
    secret = site.canary_file
    bait = site.bait
    good = site.articles("", 3)
    bad_links = [f"file://127.0.0.1{secret}", f"file://{secret}", f"file:///{secret}", f"FILE://localhost{secret}",
                 f"ftp://127.0.0.2:{bait.port}/pub/x", "s3://newsarchive-bait/key", f"gopher://127.0.0.2:{bait.port}/",
                 "data:text/html,<p>inline</p>"]
    site.add("/", page("Home", *good[:1], "/section", "/private/page", *bad_links))
    site.add("/private/page", page("Never fetched: robots.txt forbids it"))
    site.add("/section", page("Section", *bad_links[:2]))
    site.add("/robots.txt", Route(
        (f"User-agent: *\nDisallow: /private/\n"
         f"Sitemap: file://127.0.0.1{secret}\nSitemap: s3://newsarchive-bait/sitemap.xml\n"
         f"Sitemap: ftp://127.0.0.2:{bait.port}/sitemap.xml\nSitemap: {bait.url('/sitemap.xml')}\n"
         f"Sitemap: /sitemap.xml\n").encode(), headers=[("Content-Type", "text/plain")]))
    site.add("/sitemap.xml", Route(
        ("<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
         f"<url><loc>{site.url(good[1])}</loc></url><url><loc>file://{secret}</loc></url>"
         f"<url><loc>ftp://127.0.0.2:{bait.port}/a</loc></url><url><loc>{bait.url('/news/b')}</loc></url>"
         "</urlset>").encode(), headers=XML))
    site.add("/rss.xml", Route(
        (f"<rss><channel><item><title>Good</title><link>{site.url(good[2])}</link></item>"
         f"<item><title>Local</title><link>file://127.0.0.1{secret}</link></item>"
         f"<item><title>S3</title><link>s3://newsarchive-bait/k</link></item></channel></rss>").encode(),
        headers=[("Content-Type", "application/rss+xml")]))
    run = hostile_crawl(site, site.sources_toml(feeds=[site.url("/rss.xml")]))
    check_archive(run, site)
    # links: 5 on the homepage (Scrapy's LinkExtractor itself drops all but http, https, file and
    # ftp: the s3:, gopher: and data: links are never followed nor counted), 2 on the section page;
    # then 3 Sitemap: lines, 2 sitemap entries, 2 feed items
    assert run.errors.get("bad-scheme") == 5 + 2 + 3 + 2 + 2, run.errors
    assert run.errors.get("off-scope") == 1  # the bait's sitemap in robots.txt
    sample = run.samples("bad-scheme")[0]
    assert "only http and https" in sample["message"]
    # robots.txt refusals have a count of their own, which counts nothing else
    assert "/private/page" not in site.hits
    assert "'newsarchive/dropped/robots_txt': 1," in run.stderr and "newsarchive/dropped/ignored" not in run.stderr
