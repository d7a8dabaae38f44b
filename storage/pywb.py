"""pywb, the web-archiving ecosystem's replay engine, pointed at a newsarchive archive.

pywb reads CDXJ indexes and WARC files, but not our archive as laid out: its
``index_paths`` are not searched recursively (our indexes sit in one folder per
source and day), and the text WARCs' indexes hold conversion records, which a
replay tool must not see (each shares its response's URL and second).
``write_collection`` gives it what it needs, changing nothing in the archive:

    OUT/config.yaml             one collection (``web``: pywb's URL scheme is then ours, /web/TS/URL)
    OUT/indexes/index.cdxj      every replayable capture of the archive, one byte-sorted file

``archive_paths`` is the archive itself (a folder, or an ``s3://`` prefix, which
pywb reads with boto3): the index's ``filename`` is each WARC's archive key.
The index comes from the catalog, so it is as fresh as the last sync; write it
again after crawls (``newsarchive serve`` does so by itself).

pywb is GPL-licensed: newsarchive never imports it. It runs as its own program
(its own venv, ``.venv-pywb`` in a checkout) and is talked to over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from storage.capture import Capture
from storage.errors import BadInput, StorageError

COLLECTION = "web"
ENV_PYWB = "NEWSARCHIVE_PYWB"  # pywb's `wayback` program, or the bin folder holding it
CHECKOUT_PYWB = Path(__file__).resolve().parent.parent / ".venv-pywb" / "bin"
INDEX_NAME = "index.cdxj"


@dataclass
class PywbCollection:
    folder: Path  # run `wayback` here
    config: Path
    index: Path
    captures: int  # lines in the index


def index_line(capture: Capture) -> str:
    """The capture as a line of pywb's CDXJ (cdxj-indexer's fields)."""
    fields = {"url": capture.url, "mime": capture.mime or "-"}
    if capture.status is not None:
        fields["status"] = str(capture.status)
    if capture.digest:
        fields["digest"] = capture.digest
    fields.update(length=str(capture.length), offset=str(capture.offset), filename=capture.warc)
    return f"{capture.urlkey} {capture.timestamp} {json.dumps(fields)}\n"


def write_index(catalog, path: str | os.PathLike) -> int:
    """Write every capture in ``catalog`` (conversion records are not captures) as one
    CDXJ file sorted by bytes, as pywb's binary search needs; replaced atomically, so a
    running pywb never reads half of it. Returns the number of lines."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".open")
    except OSError as exc:
        raise StorageError(f"cannot write the pywb index {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            n, in_order = _write_lines(out, (index_line(c) for c in catalog.iter_all()))
        if not in_order:
            # The catalog's (urlkey, timestamp) order is the lines' byte order unless a
            # key holds a byte below the space that ends it (never seen): sort the lines.
            lines = sorted((index_line(c) for c in catalog.iter_all()), key=lambda line: line.encode("utf-8"))
            with open(tmp, "w", encoding="utf-8", newline="\n") as out:
                out.writelines(lines)
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write the pywb index {path}: {exc.strerror or exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return n


def _write_lines(out, lines) -> tuple[int, bool]:
    """Write ``lines``; (how many, whether they came in byte order)."""
    n, in_order, last = 0, True, ""
    for line in lines:
        in_order = in_order and line >= last  # str order is UTF-8 byte order
        last = line
        out.write(line)
        n += 1
    return n, in_order


def archive_paths(location: str) -> str:
    """pywb's ``archive_paths`` for an archive location: the prefix the WARC keys join onto."""
    if location.startswith("s3://"):
        return location.rstrip("/") + "/"
    return str(Path(location).resolve()) + "/"


def config_yaml(index_dir: Path, location: str, *, collection: str = COLLECTION,
                static_prefix: str | None = None) -> str:
    lines = [
        f"# pywb collection for the newsarchive archive at {archive_paths(location)}",
        "# written by `newsarchive pywb`; write it again after crawls to pick up new captures",
        "collections:",
        f"  {collection}:",
        f"    index_paths: {json.dumps(str(index_dir) + '/')}",
        f"    archive_paths: {json.dumps(archive_paths(location))}",
        "# /web/TIMESTAMP/URL is the rewritten page itself, not pywb's frame around it",
        "framed_replay: false",
    ]
    if static_prefix:
        lines.append(f"static_prefix: {static_prefix}")
    return "\n".join(lines) + "\n"


def write_collection(archive, out_dir: str | os.PathLike, *, collection: str = COLLECTION,
                     static_prefix: str | None = None) -> PywbCollection:
    """Write the pywb configuration for ``archive`` into ``out_dir`` (created if missing)."""
    if not collection.replace("-", "").replace("_", "").isalnum():
        raise BadInput(f"collection name must be letters, digits, - and _: {collection!r}")
    folder = Path(out_dir).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {folder}: {exc.strerror or exc}") from None
    index = folder / "indexes" / INDEX_NAME
    n = write_index(archive.catalog, index)
    config = folder / "config.yaml"
    text = config_yaml(index.parent, archive.location, collection=collection, static_prefix=static_prefix)
    try:
        config.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write {config}: {exc.strerror or exc}") from None
    return PywbCollection(folder, config, index, n)


def find_wayback(given: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """pywb's ``wayback`` program and where it was found, or (None, why not).

    ``given`` (an option) is the program or the bin folder holding it; else
    $NEWSARCHIVE_PYWB the same way; else ``.venv-pywb/bin`` of this checkout
    (what ``make test`` installs). A path given that holds no pywb is an error."""
    for label, value in (("--pywb", given), (f"${ENV_PYWB}", os.environ.get(ENV_PYWB))):
        if value:
            program = _program(Path(value))
            if program is None:
                if label == "--pywb":
                    raise BadInput(f"no pywb `wayback` program at {value}")
                return None, f"{label} names {value}, which holds no pywb `wayback` program"
            return program, f"{label} ({program})"
    program = _program(CHECKOUT_PYWB)
    if program is not None:
        return program, str(program)
    return None, (f"pywb is not installed (no {CHECKOUT_PYWB / 'wayback'}; "
                  f"give --pywb or ${ENV_PYWB}, or run `make test` once)")


def _program(path: Path) -> Path | None:
    candidate = path / "wayback" if path.is_dir() else path
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(str(candidate))
    return Path(found) if found else None
