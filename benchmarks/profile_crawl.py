"""Where a crawl's CPU goes: py-spy over `python -m spiders.crawl` of the real-page site.

    .venv/bin/python benchmarks/profile_crawl.py [--articles 1500] [--top 25]

Serves benchmarks/realsite.py's site on 127.0.0.1, runs one crawl under
`py-spy record --subprocesses --format raw` (sampling, 100 Hz: the crawl runs
at nearly full speed) and prints, for the Scrapy process and for the
extraction workers, the share of samples per function (self) and per
function with what it calls (inclusive). The raw stacks (~10 MB) stay in
--raw (default: a file in the temporary folder; flamegraph.pl or speedscope
read them).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import realsite  # noqa: E402


def summarize(raw: Path, top: int) -> str:
    """Self and inclusive shares per function, for each process kind in the raw stacks."""
    by_kind: dict[str, tuple[collections.Counter, collections.Counter, list[int]]] = {}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        # a child's stack hangs under its parent's process frame: the last one names the process
        at = max((i for i, f in enumerate(frames) if f.startswith("process ")), default=0)
        head, frames = frames[at], frames[at:]
        kind = ("workers" if "forkserver" in head else "scrapy" if "spiders.crawl" in head else "other")
        self_c, incl_c, total = by_kind.setdefault(kind, (collections.Counter(), collections.Counter(), [0]))
        n = int(count)
        total[0] += n
        names = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")" if " (" in f else f
                 for f in frames[1:]]
        if names:
            self_c[names[-1]] += n
        for name in set(names):
            incl_c[name] += n
    out = []
    for kind, (self_c, incl_c, total) in sorted(by_kind.items()):
        out.append(f"== {kind}: {total[0]} samples")
        out.append("   self %  function")
        out += [f"   {100 * n / total[0]:5.1f}   {name}" for name, n in self_c.most_common(top)]
        out.append("   incl %  function")
        out += [f"   {100 * n / total[0]:5.1f}   {name}" for name, n in incl_c.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=1500)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pages", default=None, help="page set: shared (default when present) or corpus")
    parser.add_argument("--raw", type=Path, default=None, help="where the raw stacks go")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed (make setup installs the dev extra)")
    site = realsite.SiteProcess(realsite.Site(realsite.typical_pages(realsite.load_pages(args.pages)), args.articles))
    work = Path(tempfile.mkdtemp(prefix="profile-crawl-"))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    raw = args.raw or Path(tempfile.gettempdir()) / f"newsarchive-profile-{stamp}.txt"
    try:
        (work / "sources.toml").write_text(realsite.sources_toml(site.base))
        cmd = [py_spy, "record", "--subprocesses", "--format", "raw", "--rate", str(args.rate), "-o", str(raw),
               "--", sys.executable, "-m", "spiders.crawl", "--source", "bench", "--sources",
               str(work / "sources.toml"), "--spool", str(work / "spool"), "--stats-out", str(work / "stats.json")]
        subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600)
    finally:
        site.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(summarize(raw, args.top))
    print(f"raw stacks: {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
