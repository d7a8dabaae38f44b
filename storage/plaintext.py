"""The plain-text form of an article, read back: its title line, byline, URL and paragraphs.

    Title of the article
    By Author · date 2024-05-13          (optional)
    https://example.com/2024/05/13/story

    First paragraph.

    Second paragraph.

(spiders/extraction.py writes it; README "The plain-text form".) Search indexes
the paragraphs, and the reading room compares two captures paragraph by paragraph.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlainText:
    title: str
    byline: str | None
    url: str | None
    paragraphs: tuple[str, ...]

    @property
    def body(self) -> str:
        return "\n\n".join(self.paragraphs)


def split_plain_text(text: str) -> PlainText:
    head, _, body = (text or "").replace("\r\n", "\n").partition("\n\n")
    lines = [line.strip() for line in head.split("\n") if line.strip()]
    title = lines[0] if lines else ""
    url = lines[-1] if len(lines) >= 2 and "://" in lines[-1] else None
    byline = lines[1] if len(lines) >= 3 or (len(lines) == 2 and url is None) else None
    paragraphs = tuple(p.strip() for p in body.split("\n\n") if p.strip())
    return PlainText(title, byline, url, paragraphs)
