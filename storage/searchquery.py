"""The search query language, parsed here and compiled to an SQLite FTS5 expression.

    climate                      a word (case and diacritics do not matter: Zurich finds Zürich)
    "sea level rise"             a phrase: the words next to each other, in this order
    climat*                      a prefix: climate, climatic, climatology, ...
    climate AND flood            both (AND is what words side by side mean anyway)
    flood OR storm               either
    climate NOT flood            the first without the second; -flood is the same
    (flood OR storm) AND coast   parentheses group
    气候                          Chinese, Japanese, Korean: found inside a sentence

AND, OR and NOT are operators only in capitals (as in FTS5); in lower case
they are words. A query is compiled by us, never passed to FTS5 as typed, so
no input can reach FTS5's own syntax: every term becomes a quoted string, and
a mistake (an unclosed quote, a lone NOT) is one line (BadInput).

Scripts written without spaces between words (Han, kana, Hangul) are indexed
as overlapping character pairs in a column of their own (`cjk`, see
storage/search.py): a term in those scripts becomes the phrase of its pairs,
which matches the characters anywhere inside a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storage.errors import BadInput

# Scripts without spaces between words: Hiragana, Katakana, CJK ideographs
# (with extension A, compatibility forms and the supplementary planes), Hangul.
CJK_CHARS = ("\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
             "\uac00-\ud7af\U00020000-\U0002fa1f")
CJK_RUN = re.compile(f"[{CJK_CHARS}]+")
_WORDISH = re.compile(r"\w")
TEXT_COLUMNS = "{title body earlier}"
CJK_COLUMN = "cjk"

OPERATORS = ("AND", "OR", "NOT")


class QueryError(BadInput):
    """A query that cannot be understood (one line, naming what is wrong)."""

    def __init__(self, message: str, query: str):
        super().__init__(f"bad query {query!r}: {message}")


@dataclass(frozen=True)
class Term:
    text: str
    phrase: bool = False  # written in double quotes
    prefix: bool = False  # ends with *


@dataclass(frozen=True)
class AllOf:  # every item matches (AND)
    items: tuple


@dataclass(frozen=True)
class AnyOf:  # at least one item matches (OR)
    items: tuple


@dataclass(frozen=True)
class Not:
    item: object


def cjk_pairs(run: str) -> list[str]:
    """The overlapping character pairs of a run of CJK characters, then its last
    character alone (so a one-character query, a prefix search, finds it at the
    end of a run too). '气候变化' -> ['气候', '候变', '变化', '化']."""
    if len(run) == 1:
        return [run]
    return [run[i:i + 2] for i in range(len(run) - 1)] + [run[-1]]


def cjk_index_text(*texts: str) -> str:
    """What the `cjk` column holds for these texts: the pairs of every CJK run."""
    out: list[str] = []
    for text in texts:
        for match in CJK_RUN.finditer(text or ""):
            out.extend(cjk_pairs(match.group()))
    return " ".join(out)


# -- lexing and parsing ----------------------------------------------------------

def _tokens(query: str) -> list[tuple]:
    out: list[tuple] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append((c,))
            i += 1
        elif c == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QueryError("a double quote is not closed", query)
            text, i = query[i + 1:end], end + 1
            prefix = i < n and query[i] == "*"
            if prefix:
                i += 1
            if text.rstrip().endswith("*"):  # "climate chan*": the last word is a prefix
                text, prefix = text.rstrip()[:-1], True
            out.append(("TERM", Term(text, phrase=True, prefix=prefix)))
        elif c == "-" and i + 1 < n and not query[i + 1].isspace() and query[i + 1] not in "-)":
            out.append(("NOT",))  # -word: NOT word
            i += 1
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in '()"':
                j += 1
            word, i = query[i:j], j
            if word in OPERATORS:
                out.append((word,))
                continue
            word = word.lstrip("+")  # +word, as web search engines take it: a required word
            prefix = word.endswith("*")
            out.append(("TERM", Term(word.rstrip("*"), prefix=prefix)))
    return out


class _Parser:
    def __init__(self, query: str):
        self.query = query
        self.tokens = _tokens(query)
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def take(self) -> tuple:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, message: str):
        raise QueryError(message, self.query)

    def parse(self):
        if not self.tokens:
            self.fail("nothing to search for")
        node = self.any()
        if self.peek() is not None:
            self.fail("a closing parenthesis has no opening one" if self.peek() == ")" else "unexpected "
                      f"{self.peek()}")
        return node

    def any(self):
        items = [self.all()]
        while self.peek() == "OR":
            self.take()
            if self.peek() in (None, ")", "OR", "AND"):
                self.fail("OR needs a term on each side")
            items.append(self.all())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def all(self):
        if self.peek() in ("OR", "AND"):
            self.fail(f"{self.peek()} needs a term on each side")
        items = [self.unary()]
        while self.peek() not in (None, ")", "OR"):
            if self.peek() == "AND":
                self.take()
                if self.peek() in (None, ")", "OR", "AND"):
                    self.fail("AND needs a term on each side")
            items.append(self.unary())
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    def unary(self):
        if self.peek() == "NOT":
            self.take()
            if self.peek() in (None, ")", "OR", "AND"):
                self.fail("NOT needs a term after it")
            return Not(self.unary())
        return self.primary()

    def primary(self):
        kind = self.peek()
        if kind == "(":
            self.take()
            if self.peek() == ")":
                self.fail("empty parentheses")
            node = self.any()
            if self.peek() != ")":
                self.fail("a parenthesis is not closed")
            self.take()
            return node
        if kind == "TERM":
            return self.take()[1]
        if kind == ")":
            self.fail("a closing parenthesis has no opening one")
        self.fail("the query ends too early")  # pragma: no cover - unary/all catch the rest


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse(query: str):
    """The query's syntax tree (Term, AllOf, AnyOf, Not); QueryError when it has none.
    Control characters count as spaces (a NUL would end FTS5's string early)."""
    parser = _Parser(_CONTROL.sub(" ", query or ""))
    parser.query = query or ""  # errors quote what was typed
    return parser.parse()


# -- compiling -------------------------------------------------------------------

def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _segments(text: str) -> list[tuple[bool, str]]:
    """(is_cjk, part) in order."""
    out, pos = [], 0
    for m in CJK_RUN.finditer(text):
        if m.start() > pos:
            out.append((False, text[pos:m.start()]))
        out.append((True, m.group()))
        pos = m.end()
    if pos < len(text):
        out.append((False, text[pos:]))
    return out


def _leaf(term: Term) -> str | None:
    parts = []
    segments = [(cjk, s) for cjk, s in _segments(term.text) if cjk or _WORDISH.search(s)]
    for n, (cjk, segment) in enumerate(segments):
        last = n == len(segments) - 1
        if cjk:
            if len(segment) == 1:  # one character: every pair starting with it, or itself alone
                parts.append(f"{CJK_COLUMN} : {_quoted(segment)} *")
            else:
                parts.append(f"{CJK_COLUMN} : {_quoted(' '.join(cjk_pairs(segment)[:-1]))}")
        else:
            parts.append(f"{TEXT_COLUMNS} : {_quoted(segment.strip())}" + (" *" if term.prefix and last else ""))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _compile(node, query: str) -> str | None:
    if isinstance(node, Term):
        return _leaf(node)
    if isinstance(node, Not):
        raise QueryError("NOT needs something to match first, as in: climate NOT flood", query)
    if isinstance(node, AnyOf):
        parts = [p for p in (_compile(item, query) for item in node.items) if p]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
    positive = [p for p in (_compile(i, query) for i in node.items if not isinstance(i, Not)) if p]
    negative = [p for p in (_negated(i, query) for i in node.items if isinstance(i, Not)) if p]
    if not positive:
        if negative:
            raise QueryError("NOT needs something to match first, as in: climate NOT flood", query)
        return None
    expr = positive[0] if len(positive) == 1 else "(" + " AND ".join(positive) + ")"
    for neg in negative:
        expr = f"({expr} NOT {neg})"
    return expr


def _negated(node: Not, query: str) -> str | None:
    if isinstance(node.item, Not):
        raise QueryError("NOT NOT is not a query", query)
    return _compile(node.item, query)


@dataclass(frozen=True)
class Query:
    text: str  # as typed
    fts: str  # the FTS5 MATCH expression
    cjk_terms: tuple[str, ...]  # CJK runs to find (and mark) in snippets ourselves

    @property
    def only_cjk(self) -> bool:
        return TEXT_COLUMNS not in self.fts


def _positive_terms(node, negated: bool = False):
    if isinstance(node, Term):
        if not negated:
            yield node
    elif isinstance(node, Not):
        yield from _positive_terms(node.item, not negated)
    else:
        for item in node.items:
            yield from _positive_terms(item, negated)


def compile_query(text: str) -> Query:
    """The FTS5 expression for a query as a person typed it (QueryError if bad)."""
    tree = parse(text)
    fts = _compile(tree, text)
    if not fts:
        raise QueryError("nothing to search for (no letters or digits)", text)
    cjk = tuple(dict.fromkeys(seg for term in _positive_terms(tree) for is_cjk, seg in _segments(term.text)
                              if is_cjk))
    return Query(text, fts, cjk)
