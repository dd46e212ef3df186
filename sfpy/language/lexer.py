"""A fast lexer for lark, built from the terminals that ``sf.lark`` declares.

lark's own basic lexer tries terminals one by one for every token; profiling showed it was a
third of the parse time. This lexer compiles the grammar's terminals (the grammar stays the
single source of truth) into one alternation matched once per token, and gives JavaCC's
behaviour where it matters: keywords are words that match exactly, longer symbols win over
their prefixes, and a terminal's priority breaks ties (``|]`` over ``||``).

It also refuses absurd nesting while it scans, before anything could recurse on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lark import Token
from lark.exceptions import UnexpectedCharacters
from lark.lexer import Lexer, PatternStr

from sfpy.language.errors import DescriptionError
from sfpy.language.model import SourcePosition

MAX_NESTING = 200
OPENERS = frozenset({"_LBRACE", "LBRACKET", "VSTART", "LPAR"})
CLOSERS = frozenset({"_RBRACE", "_RBRACKET", "_VEND", "_RPAR"})
MULTI_LINE = frozenset({"MLSTRING", "BYTEARRAY"})


class SfLexer(Lexer):
    """lark custom lexer (interface 0: ``lex(text)`` yields tokens)."""

    __future_interface__ = 0

    def __init__(self, lexer_conf) -> None:  # noqa: ANN001 - lark's LexerConf
        terminals = list(lexer_conf.terminals)
        ignore = set(lexer_conf.ignore)
        word = next(t for t in terminals if t.name == "WORD")
        word_re = re.compile(word.pattern.to_regexp())
        self.keywords = {
            t.pattern.value: t.name
            for t in terminals
            if isinstance(t.pattern, PatternStr) and word_re.fullmatch(t.pattern.value)
        }
        matched = [t for t in terminals if t.name not in ignore and t.pattern.value not in self.keywords]
        # Priority first; then patterns before plain strings; longer strings before their prefixes.
        matched.sort(
            key=lambda t: (-t.priority, isinstance(t.pattern, PatternStr), -len(t.pattern.value))
        )
        skipped = [t for t in terminals if t.name in ignore]
        # One match per token: the ignored text before it (whitespace, comments) is a prefix.
        # sf.lark ignores whitespace one character at a time, so "(?:…)*" cannot backtrack
        # exponentially; a grammar change that adds "+" there would bring that back.
        ignored = "|".join(t.pattern.to_regexp() for t in skipped)
        groups = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in matched)
        # Possessive "*+": never give back part of a comment to the token after it.
        self.pattern = re.compile(f"(?:{ignored})*+(?:{groups})")
        self.trailing = re.compile(f"(?:{ignored})*+")
        self.filename = "<string>"
        self.open_braces: list[Token] = []
        self.stray_braces: list[Token] = []

    def lex(self, text: str) -> Iterator[Token]:  # type: ignore[override]  # interface 0
        match = self.pattern.match
        count, rindex = text.count, text.rindex
        keywords = self.keywords
        opened = self.open_braces = []
        stray = self.stray_braces = []
        depth = 0
        position = 0
        line = 1
        line_start = 0
        end = len(text)
        while position < end:
            found = match(text, position)
            if found is None:
                trailing = self.trailing.match(text, position)  # matches, if only ""
                skipped_to = trailing.end() if trailing else position
                line, line_start = _advance(text, position, line, line_start, skipped_to)
                position = skipped_to
                if position >= end:
                    return
                raise UnexpectedCharacters(text, position, line, position - line_start + 1, state=None)
            kind = found.lastgroup or ""  # every alternative is a named group
            start = found.start(kind)
            if start > position:  # skipped whitespace and comments (inlined: hot path)
                newlines = count("\n", position, start)
                if newlines:
                    line += newlines
                    line_start = rindex("\n", position, start) + 1
            value = found.group(kind)
            position = found.end()
            if kind == "WORD":
                kind = keywords.get(value, "WORD")
            token = Token(kind, value, start, line, start - line_start + 1)
            if kind in OPENERS:
                depth += 1
                if kind == "_LBRACE":
                    opened.append(token)
                if depth > MAX_NESTING:
                    raise DescriptionError(
                        f"nesting deeper than {MAX_NESTING} levels; sfpy refuses such descriptions",
                        position=SourcePosition(self.filename, line, start - line_start + 1),
                    )
            elif kind in CLOSERS:
                depth -= 1
                if kind == "_RBRACE":
                    if opened:
                        opened.pop()
                    else:
                        stray.append(token)
            elif kind in MULTI_LINE and "\n" in value:
                line += value.count("\n")
                line_start = start + value.rindex("\n") + 1
            yield token


def _advance(text: str, position: int, line: int, line_start: int, stop: int) -> tuple[int, int]:
    """Line number and line start after the skipped text ``text[position:stop]``."""
    newlines = text.count("\n", position, stop)
    if newlines:
        return line + newlines, text.rindex("\n", position, stop) + 1
    return line, line_start
