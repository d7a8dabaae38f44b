"""What changed between two captures of an article: paragraphs added, removed and changed.

    changes = diff_texts(old_text, new_text)    # the plain-text forms of two captures
    [c.op for c in changes]                      # 'same', 'added', 'removed', 'changed'
    changes[i].segments                          # for 'changed': words kept, added, removed

The unit is a paragraph of the plain-text form (the title line and the byline
count as paragraphs; the URL line does not). Paragraphs are aligned with
difflib; inside a replaced block, an old and a new paragraph that share most of
their words are one `changed` paragraph with a word-level diff, the others are
removed and added. Words of scripts written without spaces are compared
character by character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from storage.plaintext import split_plain_text
from storage.searchquery import CJK_CHARS

# A paragraph this similar (difflib ratio over words) to one it replaces is "changed".
SIMILAR = 0.5
_WORDS = re.compile(f"[{CJK_CHARS}]|\\w+|\\s+|[^\\w\\s]", re.UNICODE)


@dataclass
class Change:
    op: str  # same | added | removed | changed
    old: str | None = None
    new: str | None = None
    segments: list[tuple[str, str]] = field(default_factory=list)  # (same|added|removed, text), for changed

    def as_json(self) -> dict:
        out: dict = {"op": self.op}
        if self.op in ("same", "removed", "changed"):
            out["old"] = self.old
        if self.op in ("same", "added", "changed"):
            out["new"] = self.new
        if self.op == "changed":
            out["segments"] = [{"op": op, "text": text} for op, text in self.segments]
        return out


def units(text: str) -> list[str]:
    """The paragraphs compared: title line, byline, then the body's paragraphs."""
    plain = split_plain_text(text)
    head = [p for p in (plain.title, plain.byline) if p]
    return head + list(plain.paragraphs)


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    out: list[tuple[str, str]] = []

    def add(op: str, text: str) -> None:
        if not text:
            return
        if out and out[-1][0] == op:
            out[-1] = (op, out[-1][1] + text)
        else:
            out.append((op, text))

    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            add("same", "".join(a[i1:i2]))
        else:
            add("removed", "".join(a[i1:i2]))
            add("added", "".join(b[j1:j2]))
    return out


def _similarity(old: str, new: str) -> float:
    return SequenceMatcher(None, _WORDS.findall(old), _WORDS.findall(new), autojunk=False).ratio()


def _pair(old: list[str], new: list[str]) -> list[Change]:
    """A replaced block: pair paragraphs in order when they are similar enough."""
    out: list[Change] = []
    j = 0
    for i, paragraph in enumerate(old):
        best, best_at = 0.0, None
        for k in range(j, len(new)):
            score = _similarity(paragraph, new[k])
            if score > best:
                best, best_at = score, k
        if best_at is not None and best >= SIMILAR:
            out += [Change("added", new=p) for p in new[j:best_at]]
            out.append(Change("changed", old=paragraph, new=new[best_at],
                              segments=word_diff(paragraph, new[best_at])))
            j = best_at + 1
        else:
            out.append(Change("removed", old=paragraph))
    out += [Change("added", new=p) for p in new[j:]]
    return out


def diff_paragraphs(old: list[str], new: list[str]) -> list[Change]:
    out: list[Change] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            out += [Change("same", old=p, new=p) for p in old[i1:i2]]
        elif tag == "delete":
            out += [Change("removed", old=p) for p in old[i1:i2]]
        elif tag == "insert":
            out += [Change("added", new=p) for p in new[j1:j2]]
        else:
            out += _pair(old[i1:i2], new[j1:j2])
    return out


def diff_texts(old_text: str, new_text: str) -> list[Change]:
    return diff_paragraphs(units(old_text), units(new_text))


def summary(changes: list[Change]) -> dict[str, int]:
    counts = {"same": 0, "added": 0, "removed": 0, "changed": 0}
    for change in changes:
        counts[change.op] += 1
    return counts
