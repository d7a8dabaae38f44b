"""Write the pages of html/ whose bytes are not the UTF-8 text we wrote: legacy charsets, a BOM, stray bytes.

    python tests/data/make_pages.py           # (re)write them from src/
    python tests/data/make_pages.py --check   # exit 1 if a committed page differs from what src/ gives

Every evaldata.json entry with a "source" is built from that UTF-8 file:

- "charset" (an encoding label: windows-1251, gb2312, ...): the whole page in that encoding;
- "bom": true: UTF-8 with a byte order mark in front;
- "stray": "windows-1252": UTF-8, except the parts between `<!-- legacy-include: windows-1252 -->`
  and `<!-- /legacy-include -->`, which are windows-1252 (a template glued to old includes).

Encoding is strict, and every result is checked to decode back to its source exactly,
so the source file is the exact text a correct decoder must produce. The tests read the
committed bytes in html/; they run this module only to check that the two agree.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
INCLUDE = re.compile(r"(<!-- legacy-include: ([\w-]+) -->.*?<!-- /legacy-include -->)", re.S)


def build(entry: dict, root: Path = HERE) -> bytes:
    """The served bytes of one page with a "source"."""
    text = (root / entry["source"]).read_text(encoding="utf-8")
    if entry.get("bom"):
        data = codecs.BOM_UTF8 + text.encode("utf-8")
    elif entry.get("stray"):
        parts = INCLUDE.split(text)  # [utf8, include, its charset, utf8, ...]
        if len(parts) < 4:
            raise ValueError(f"{entry['source']}: no legacy-include block")
        data = b"".join(part.encode(parts[i + 1] if i % 3 == 1 else "utf-8")
                        for i, part in enumerate(parts) if i % 3 != 2)
    else:
        data = text.encode(entry["charset"])
    if decoded(entry, data) != text:
        raise ValueError(f"{entry['source']}: the bytes do not decode back to the source")
    if entry["charset"] != "utf-8" or entry.get("stray"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise ValueError(f"{entry['source']}: valid UTF-8, so it would test nothing")
    return data


def decoded(entry: dict, data: bytes) -> str:
    """Decode as the page's description says it is encoded (independent of spiders.extraction)."""
    if entry.get("bom"):
        return data.decode("utf-8-sig")
    if entry.get("stray"):
        return data.decode("utf-8", errors=_reader(entry["stray"]))
    return data.decode(entry["charset"])


def _reader(charset: str) -> str:
    name = f"make-pages-{charset}"

    def handler(err: UnicodeDecodeError):
        return err.object[err.start:err.end].decode(charset), err.end

    try:
        codecs.lookup_error(name)
    except LookupError:
        codecs.register_error(name, handler)
    return name


def main(argv: list[str]) -> int:
    check = "--check" in argv
    evaldata = json.loads((HERE / "evaldata.json").read_text(encoding="utf-8"))
    stale = []
    for entry in evaldata.values():
        if "source" not in entry:
            continue
        data = build(entry)
        target = HERE / "html" / entry["file"]
        if check:
            if not target.exists() or target.read_bytes() != data:
                stale.append(entry["file"])
        else:
            target.write_bytes(data)
            print(f"{target.relative_to(HERE)}: {len(data)} bytes ({entry['charset']}"
                  f"{', BOM' if entry.get('bom') else ''}{', stray ' + entry['stray'] if entry.get('stray') else ''})")
    if stale:
        print("out of date (run python tests/data/make_pages.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
