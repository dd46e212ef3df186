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
        groups = [f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in skipped + matched]
        self.pattern = re.compile("|".join(groups))
        self.skipped = frozenset(t.name for t in skipped)
        self.filename = "<string>"
        self.open_braces: list[Token] = []

    def lex(self, text: str) -> Iterator[Token]:
        match = self.pattern.match
        keywords = self.keywords
        skipped = self.skipped
        opened = self.open_braces = []
        depth = 0
        position = 0
        line = 1
        line_start = 0
        end = len(text)
        while position < end:
            found = match(text, position)
            if found is None:
                raise UnexpectedCharacters(
                    text, position, line, position - line_start + 1, state=None
                )
            kind = found.lastgroup
            value = found.group()
            stop = found.end()
            if kind in skipped:
                newlines = value.count("\n")
                if newlines:
                    line += newlines
                    line_start = position + value.rindex("\n") + 1
                position = stop
                continue
            if kind == "WORD":
                kind = keywords.get(value, "WORD")
            token = Token(kind, value, position, line, position - line_start + 1)
            if kind in OPENERS:
                depth += 1
                if kind == "_LBRACE":
                    opened.append(token)
                if depth > MAX_NESTING:
                    raise DescriptionError(
                        f"nesting deeper than {MAX_NESTING} levels; sfpy refuses such descriptions",
                        position=SourcePosition(self.filename, line, position - line_start + 1),
                    )
            elif kind in CLOSERS:
                depth -= 1
                if kind == "_RBRACE" and opened:
                    opened.pop()
            elif kind in MULTI_LINE and "\n" in value:
                line += value.count("\n")
                line_start = position + value.rindex("\n") + 1
            yield token
            position = stop
