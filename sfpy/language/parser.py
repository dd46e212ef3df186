"""Text to raw description: lark's LALR parser builds the model while it parses (no tree).

The grammar is data (``sf.lark``). This module adds what a grammar cannot say: how values are
built (SmartFrog's desugaring of operators, vectors and conditionals into function
descriptions), where include files are found, the limits that keep hostile input harmless,
and error messages a person can act on — one per mistake, resuming after each.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from sfpy.language import tablecache
from sfpy.language.errors import DescriptionError
from sfpy.language.lexer import SfLexer
from sfpy.language.model import (
    ATTRIB,
    HERE,
    NULL,
    TBD,
    ApplyReference,
    AssertReference,
    ByteArray,
    ComponentDescription,
    Double,
    Long,
    Reference,
    RefPart,
    SourcePosition,
    copy_value,
)

# Limits: a description larger or deeper than this is refused (exit 3), never half-parsed.
MAX_TOTAL_BYTES = 8 * 1024 * 1024
MAX_REPORTED_ERRORS = 10
RECOVERY_MAX_BYTES = 1024 * 1024  # resume after errors only in files up to this size
MAX_INCLUDE_DEPTH = 50
INTEGER_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)
FLOAT_MAX_EXCLUSIVE = 3.4028235677973366e38  # Java rounds a Float literal to Infinity from here

FUNCTION_PHASE = "org.smartfrog.sfcore.languages.sf.ConstructFunction"
FUNCTIONS_PACKAGE = "org.smartfrog.sfcore.languages.sf.functions."

NARY_OPERATORS = {
    "PLUS": "Sum",
    "STAR": "Product",
    "CONCAT": "Concatenate",
    "APPEND": "Append",
    "AND": "And",
    "OR": "Or",
    "XOR": "Xor",
    "IMPLIES": "Implies",
}
BINARY_OPERATORS = {
    "EQ": "EQ",
    "NE": "NE",
    "GE": "GE",
    "LE": "LE",
    "GT": "GT",
    "LT": "LT",
    "MINUS": "Minus",
    "SLASH": "Divide",
    "PERCENT": "Mod",
}

# How each terminal is named in messages: what a user would type, never lark's names.
TERMINAL_NAMES = {
    "WORD": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "MLSTRING": "a ##multi-line string#",
    "BYTEARRAY": "a #HEX#…# byte array",
    "_LBRACE": "'{'",
    "_RBRACE": "'}'",
    "LBRACKET": "'['",
    "_RBRACKET": "']'",
    "VSTART": "'[|'",
    "_VEND": "'|]'",
    "LPAR": "'('",
    "_RPAR": "')'",
    "_COLON": "':'",
    "_COMMA": "','",
    "_SEMI": "';'",
    "UNIQUE": "'--'",
    "PLUS": "'+'",
    "STAR": "'*'",
    "CONCAT": "'++'",
    "APPEND": "'<>'",
    "AND": "'&&'",
    "OR": "'||'",
    "XOR": "'x|'",
    "IMPLIES": "'->'",
    "EQ": "'=='",
    "NE": "'!='",
    "GE": "'>='",
    "LE": "'<='",
    "GT": "'>'",
    "LT": "'<'",
    "MINUS": "'-'",
    "SLASH": "'/'",
    "PERCENT": "'%'",
    "NOT": "'!'",
    "INCLUDE": "'#include'",
    "INCLUDE_OPT": "'#include?'",
    "CODEBASE": "'#codebase'",
    "$END": "end of file",
}
VALUE_STARTERS = {
    "NUMBER", "STRING", "MLSTRING", "WORD", "TRUE", "FALSE", "NULL", "TBD", "LBRACKET",
    "VSTART", "LPAR", "LAZY", "DATA", "OPTIONAL", "APPLY", "ASSERT", "IF", "SWITCH", "ROOT",
    "PARENT", "THIS", "PROCESS", "ATTRIB", "HERE", "HOST", "PROPERTY", "BYTEARRAY",
}  # fmt: skip


ATTRIBUTE_STARTERS = {"WORD", "STRING", "UNIQUE", "LBRACKET", "INCLUDE", "INCLUDE_OPT", "CODEBASE"}


def _terminal_name(name: str) -> str:
    if name in TERMINAL_NAMES:
        return TERMINAL_NAMES[name]
    if name.isupper() and name.isalpha():
        keyword = {"TRUE": "true", "FALSE": "false", "EXTENDS": "extends"}.get(name, name)
        return f"'{keyword}'"
    return name.lower()


def describe_expected(names: Iterable[str]) -> str:
    """Turn lark's expected-terminal set into words, grouping the many ways to start a value."""
    names = set(names)
    words: list[str] = []
    if len(names & VALUE_STARTERS) >= 6:
        words.append("a value")
        if "EXTENDS" in names:
            words.append("'extends'")
        names -= VALUE_STARTERS | {"EXTENDS", "IENVPROPERTY", "ENVPROPERTY", "IPROPERTY", "CONSTANT"}
    if ATTRIBUTE_STARTERS <= names:
        words.append("an attribute")
        names -= ATTRIBUTE_STARTERS | {"_SEMI"}
    words += sorted({_terminal_name(n) for n in names if n.isupper()})
    if len(words) > 8:
        return ", ".join(words[:7]) + ", …"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    if token.type in ("WORD",):
        return f"name '{token}'"
    if token.type == "NUMBER":
        return f"number '{token}'"
    if token.type in ("STRING", "MLSTRING"):
        text = str(token)
        return f"string {text[:30]}{'…' if len(text) > 30 else ''}"
    return f"'{token}'"


# ---- values built while parsing ------------------------------------------------------------


@dataclass(slots=True)
class _Attribute:
    key: Any
    value: Any
    tags: frozenset[str]
    position: SourcePosition


@dataclass(slots=True)
class _Splice:
    """The attributes of an included file, spliced in where the ``#include`` stood."""

    attributes: list[_Attribute]


@dataclass(slots=True)
class _Name:
    key: Any
    position: SourcePosition


class _Tags(frozenset):
    pass


class _LimitExceeded(DescriptionError):
    """A size limit was passed: the description is refused as a whole, at once."""


class _BarePart(RefPart):
    """A reference part written as a bare WORD: ATTRIB in first position, HERE later."""

    __slots__ = ()


_ESCAPES = {"n": "\n", "t": "\t", "b": "\b", "r": "\r", "f": "\f"}
_ESCAPE_RE = re.compile(r"\\([0-3][0-7][0-7]|.)", re.DOTALL)
_UNICODE_ESCAPE_RE = re.compile(r"(?<!\\)((?:\\\\)*)\\u+([0-9a-fA-F]{4})")


def unescape(text: str) -> str:
    """SmartFrog's ``fixEscapes``: ``\\n \\t \\b \\r \\f``, octal ``\\101``, else the character."""
    if "\\" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 3:
            return chr(int(code, 8))
        return _ESCAPES.get(code, code)

    return _ESCAPE_RE.sub(replace, text)


def _number(text: str) -> Any:
    """A number token as SmartFrog types it; values outside Java's ranges are refused."""
    suffix = text[-1]
    if suffix in "lL":
        value = int(text[:-1])
        if not LONG_RANGE[0] <= value <= LONG_RANGE[1]:
            raise ValueError(f"{text} is outside the range of a Long (64 bits)")
        return Long(value)
    if suffix in "dD":
        double = float(text[:-1])
        if double in (float("inf"), float("-inf")):
            raise ValueError(f"{text} is outside the range of a Double")
        return Double(double)
    if suffix in "fF" or any(c in text for c in ".eE"):
        single = float(text[:-1] if suffix in "fF" else text)
        if abs(single) >= FLOAT_MAX_EXCLUSIVE:
            raise ValueError(f"{text} is outside the range of a Float: write {text.rstrip('fF')}D for a Double")
        return single
    value = int(text)
    if not INTEGER_RANGE[0] <= value <= INTEGER_RANGE[1]:
        raise ValueError(f"{text} is outside the range of an Integer (32 bits): write {text}L for a Long")
    return value


def _byte_array(text: str, position: SourcePosition) -> ByteArray:
    kind = text[1:4]
    digits = re.sub(r"\s+", "", text[5:-1])
    try:
        if kind == "HEX":
            return ByteArray(bytes.fromhex(digits))
        if kind == "B64":
            return ByteArray(base64.b64decode(digits, validate=True))
        base = {"DEC": 10, "OCT": 8, "BIN": 2}[kind]
        number = int(digits, base) if digits else 0
        return ByteArray(number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big") if digits else b"")
    except ValueError as error:
        raise DescriptionError(f"malformed #{kind}# byte array: {error}", position=position) from None


class _Builder(Transformer):
    """Callbacks run by the LALR parser as it reduces each rule (``Lark(transformer=…)``)."""

    def __init__(self, parser: _Parser) -> None:
        super().__init__(visit_tokens=False)
        self.parser = parser

    def _pos(self, token: Token) -> SourcePosition:
        return self.parser.position(token.line or 0, token.column or 0)

    # -- files and attribute lists ---------------------------------------------------------
    def start(self, children: list) -> ComponentDescription:
        return self._description(children[0], SourcePosition(self.parser.filename, 1, 1))

    def wrapped_file(self, children: list) -> ComponentDescription:
        return self._description(children[1], self._pos(children[0]))

    def empty_list(self, children: list) -> list:
        return []

    def append_item(self, children: list) -> list:
        items = children[0]
        items.append(children[1])
        return items

    def attr_list(self, children: list) -> list:  # ``attr_list ;``
        return children[0]

    def _description(self, items: list, position: SourcePosition | None) -> ComponentDescription:
        cd = ComponentDescription(position=position)
        attributes, tags, positions = cd.attributes, cd.tags, cd.positions
        for item in self._flatten(items):
            key, value = item.key, item.value
            attributes[key] = value
            if item.tags:
                tags.setdefault(key, set()).update(item.tags)
            if key not in positions:
                positions[key] = item.position
            if type(value) is ComponentDescription:
                value.parent = cd
        return cd

    @staticmethod
    def _flatten(items: list) -> Iterable[_Attribute]:
        for item in items:
            if type(item) is _Splice:
                yield from item.attributes
            else:
                yield item

    def include(self, children: list) -> _Splice:
        keyword = children[-2]
        path = children[-1]
        optional = keyword.type == "INCLUDE_OPT"
        position = self._pos(keyword)
        codebase = children[1] if children[0].type == "CODEBASE" else None
        return _Splice(self.parser.include(path, optional, position, codebase))

    def attribute(self, children: list) -> _Attribute:
        if len(children) == 3:
            tags, name, value = children
        else:
            tags, (name, value) = _Tags(), children
        return _Attribute(name.key, value, tags, name.position)

    def tags(self, children: list) -> _Tags:
        return _Tags(children[1:])

    def tag(self, children: list) -> str:
        token = children[0]
        if token.type == "WORD":
            return str(token)
        return _string_value(token)

    def placement(self, children: list) -> _Name:
        parts = tuple(RefPart(HERE, str(part.key)) for part in children)
        return _Name(Reference(parts, position=children[0].position), children[0].position)

    def name_part(self, children: list) -> _Name:
        token = children[0]
        if token.type == "UNIQUE":
            key = self.parser.unique_name()
        elif token.type == "WORD":
            key = str(token)
        else:
            key = _string_value(token)
        return _Name(key, self._pos(token))

    def null_value(self, children: list) -> Any:
        return NULL

    # -- components ------------------------------------------------------------------------
    def component(self, children: list) -> ComponentDescription:
        extends = children[0]
        prototypes = children[-1]
        eager = not any(type(c) is Token and c.type in ("DATA", "LAZY") for c in children[1:-1])
        cd = ComponentDescription(eager=eager, position=self._pos(extends))
        if len(prototypes) == 1 and type(prototypes[0]) is ComponentDescription:
            body = prototypes[0]
            cd.attributes, cd.tags, cd.positions = body.attributes, body.tags, body.positions
            for value in cd.attributes.values():
                if type(value) is ComponentDescription:
                    value.parent = cd
        else:
            cd.prototypes = [p for p in prototypes if p is not NULL]
            for p in cd.prototypes:
                if type(p) is ComponentDescription:
                    p.parent = cd
        return cd

    def prototypes(self, children: list) -> list:
        return children

    def null_prototype(self, children: list) -> Any:
        return NULL

    def body(self, children: list) -> ComponentDescription:
        return self._description(children[0], None)

    # -- expressions -----------------------------------------------------------------------
    def parenthesised(self, children: list) -> Any:
        return children[1]

    def single(self, children: list) -> Any:
        return children[0]

    def unary(self, children: list) -> ComponentDescription:
        return self._function("Not", [("data", children[1])], self._pos(children[0]))

    def nary(self, children: list) -> ComponentDescription:
        operands = children[0::2]
        operators = children[1::2]
        first = operators[0]
        for other in operators[1:]:
            if other.type != first.type:
                raise DescriptionError(
                    f"'{first}' and '{other}' in one pair of parentheses: SmartFrog operators have "
                    f"no precedence, so group them, e.g. (a {first} (b {other} c))",
                    position=self._pos(other),
                )
        params = [(self.parser.unique_name(), operand) for operand in operands]
        return self._function(NARY_OPERATORS[first.type], params, self._pos(first))

    def binary(self, children: list) -> ComponentDescription:
        left, operator, right = children
        return self._function(
            BINARY_OPERATORS[operator.type], [("left", left), ("right", right)], self._pos(operator)
        )

    def vector(self, children: list) -> ComponentDescription:
        params = [(self.parser.unique_name(), value) for value in children[1:]]
        return self._function("Vector", params, self._pos(children[0]))

    def if_then_else(self, children: list) -> ComponentDescription:
        _, condition, _, then, _, otherwise, _ = children
        cd = self._function("IfThenElse", [], self._pos(children[0]))
        for key, value in (("if", condition), ("then", then), ("else", otherwise)):
            cd.put(key, value)
        return cd

    def switch(self, children: list) -> ComponentDescription:
        position = self._pos(children[0])
        rest = children[1:-1]
        params: list[tuple[str, Any]] = []
        if rest and type(rest[0]) is ComponentDescription:
            params.extend(rest[0].attributes.items())
            rest = rest[1:]
        for index, at in enumerate(range(0, len(rest), 4)):
            params.append((f"IF{index}", rest[at + 1]))
            params.append((f"THEN{index}", rest[at + 3]))
        return self._function("Switch", params, position)

    @staticmethod
    def _function(name: str, params: Sequence[tuple[Any, Any]], position: SourcePosition) -> ComponentDescription:
        cd = ComponentDescription(position=position)
        for key, value in params:
            cd.put(key, value)
        cd.attributes["phase.function"] = FUNCTION_PHASE
        cd.attributes["sfFunctionClass"] = FUNCTIONS_PACKAGE + name
        return cd

    # -- references ------------------------------------------------------------------------
    def reference(self, children: list) -> Any:  # ``LAZY x``
        return children[1].with_flags(lazy=True)

    def optional_link(self, children: list) -> Reference:  # ``OPTIONAL (default) x``
        link = children[-1]
        default = children[2] if len(children) > 2 else NULL
        return link.with_flags(optional=True, default=default)

    def apply(self, children: list) -> ApplyReference:
        return ApplyReference(children[1], position=self._pos(children[0]))

    def assertion(self, children: list) -> AssertReference:
        return AssertReference(children[1], position=self._pos(children[0]))

    def link_ref(self, children: list) -> Reference:
        parts = []
        for index, (part, _) in enumerate(children):
            if type(part) is _BarePart:
                part = RefPart(HERE if index else ATTRIB, part.name)
            parts.append(part)
        return Reference(tuple(parts), position=children[0][1])

    def ref_part(self, children: list) -> tuple[RefPart, SourcePosition]:
        token = children[0]
        position = self._pos(token)
        if len(children) == 2:
            return RefPart(token.type, children[1]), position
        if token.type == "WORD":
            return _BarePart(ATTRIB, str(token)), position  # ATTRIB first, HERE later
        return RefPart(token.type), position

    def name(self, children: list) -> str:
        token = children[0]
        return str(token) if token.type == "WORD" else _string_value(token)

    # -- primitives ------------------------------------------------------------------------
    def primitive(self, children: list) -> Any:
        token = children[0]
        if type(token) is str:  # already a string value
            return token
        kind = token.type
        if kind == "NUMBER":
            try:
                return _number(str(token))
            except ValueError as error:
                raise DescriptionError(str(error), position=self._pos(token)) from None
        if kind == "TRUE":
            return True
        if kind == "FALSE":
            return False
        if kind == "NULL":
            return NULL
        if kind == "TBD":
            return TBD
        if kind == "BYTEARRAY":
            return _byte_array(str(token), self._pos(token))
        raise AssertionError(kind)

    def string(self, children: list) -> str:
        return _string_value(children[0])

    def primitive_vector(self, children: list) -> list:
        return children[1:]

    def data_reference(self, children: list) -> Any:
        return children[1].with_flags(data=True)


def _string_value(token: Token) -> str:
    text = str(token)
    if token.type == "MLSTRING":
        return unescape(text[2:-1])
    return unescape(text[1:-1])


# ---- the parser front door ---------------------------------------------------------------


class _Driver:
    """Runs lark's LALR tables with a lean loop.

    lark computes the tables and the rule callbacks (which drop punctuation and inline
    ``?rules``); this loop only replaces lark's per-token bookkeeping (token comparisons and
    assertions that cost a third of the parse time on large files). Errors are raised as
    lark's own UnexpectedToken, so messages are built the same way.
    """

    def __init__(self, lark: Lark) -> None:
        parser = lark.parser.parser.parser
        table = parser.parse_table
        callbacks = parser.callbacks
        # Each action is (next_state,) for a shift, (size, rule name, callback) for a reduce.
        self.states: dict[int, dict[str, tuple]] = {}
        for state, actions in table.states.items():
            row: dict[str, tuple] = {}
            for symbol, (action, arg) in actions.items():
                if action.name == "Shift":
                    row[str(symbol)] = (arg,)
                    continue
                callback = callbacks[arg]
                if _passes_child_through(arg, callback):
                    callback = None  # a ``?rule`` of one symbol: its value is that symbol's
                row[str(symbol)] = (len(arg.expansion), str(arg.origin.name), callback)
            self.states[state] = row
        self.start = table.start_states["start"]
        self.end = table.end_states["start"]

    def parse(self, tokens: Iterator[Token], text: str) -> Any:
        states = self.states
        state_stack = [self.start]
        value_stack: list[Any] = []
        push_state, push_value = state_stack.append, value_stack.append
        for token in tokens:
            kind = token.type
            while True:
                action = states[state_stack[-1]].get(kind)
                if action is None:
                    raise self._unexpected(token, state_stack)
                if len(action) == 1:
                    push_state(action[0])
                    push_value(token)
                    break
                size, origin, callback = action  # reduce, inlined: this loop is the hot path
                if callback is None:
                    state_stack.pop()
                    push_state(states[state_stack[-1]][origin][0])
                    continue
                if size == 1:
                    children = [value_stack.pop()]
                    state_stack.pop()
                elif size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                push_value(callback(children))
                push_state(states[state_stack[-1]][origin][0])
        line = text.count("\n") + 1
        end = Token("$END", "", len(text), line, len(text) - (text.rfind("\n") + 1) + 1)
        while True:
            action = states[state_stack[-1]].get("$END")
            if action is None or len(action) == 1:
                raise self._unexpected(end, state_stack)
            self._reduce(action, state_stack, value_stack)
            if state_stack[-1] == self.end:
                return value_stack[-1]

    def _reduce(self, action: tuple, state_stack: list[int], value_stack: list[Any]) -> None:
        size, origin, callback = action
        if callback is None:
            state_stack.pop()
            state_stack.append(self.states[state_stack[-1]][origin][0])
            return
        if size:
            children = value_stack[-size:]
            del state_stack[-size:]
            del value_stack[-size:]
        else:
            children = []
        value_stack.append(callback(children))
        state_stack.append(self.states[state_stack[-1]][origin][0])

    def _unexpected(self, token: Token, state_stack: list[int]) -> UnexpectedToken:
        """lark's error, listing only the terminals that would really have been accepted."""
        # Terminals only: lark's rule names (``__vector_star_6``) are never shown to a user.
        candidates = [s for s in self.states[state_stack[-1]] if s.isupper()]
        expected = {s for s in candidates if self._accepts(state_stack, s)}
        return UnexpectedToken(token, expected or set(candidates), state=None)

    def _accepts(self, state_stack: list[int], symbol: str) -> bool:
        stack = list(state_stack)
        while True:
            action = self.states[stack[-1]].get(symbol)
            if action is None:
                return False
            if len(action) == 1 or (symbol == "$END" and stack[-1] == self.end):
                return True
            size, origin, _ = action
            if size:
                del stack[-size:]
            stack.append(self.states[stack[-1]][origin][0])
            if symbol == "$END" and stack[-1] == self.end:
                return True


def _passes_child_through(rule: Any, callback: Any) -> bool:
    """True for lark's ExpandSingleChild on a one-symbol rule whose symbol is kept."""
    if type(callback).__name__ != "ExpandSingleChild" or len(rule.expansion) != 1:
        return False
    symbol = rule.expansion[0]
    return not (symbol.is_term and (symbol.filter_out or str(symbol.name).startswith("_")))


_LOCK = threading.RLock()
_LARK: Lark | None = None
_BUILDER: _Builder | None = None
_LEXER: SfLexer | None = None
_DRIVER: _Driver | None = None


def _machinery() -> tuple[_Driver, _Builder, SfLexer]:
    """The parser of the process (LALR tables, rule callbacks, lexer), built on first use."""
    global _LARK, _BUILDER, _LEXER, _DRIVER
    if _LARK is None:
        builder = _Builder(_Parser.__new__(_Parser))
        grammar = resources.files("sfpy.language").joinpath("sf.lark").read_text(encoding="utf-8")
        def build() -> Lark:
            return Lark(grammar, parser="lalr", lexer=SfLexer, transformer=builder,
                        maybe_placeholders=False)

        # the tables come from a per-user cache when it holds them (see tablecache)
        lark = tablecache.load_or_build(grammar, build, lexer=SfLexer, transformer=builder)
        _LEXER = lark.parser.lexer.lexer
        _LARK, _BUILDER, _DRIVER = lark, builder, _Driver(lark)
    assert _BUILDER is not None and _LEXER is not None and _DRIVER is not None
    return _DRIVER, _BUILDER, _LEXER


class _Parser:
    """State of one top-level parse: include search path, files read, unique-name counter."""

    def __init__(self, include_dirs: Sequence[str | os.PathLike[str]]) -> None:
        # uniqueN names are numbered per top-level parse (they need only be unique within
        # one description), so the same text always gives the same names, in any thread.
        self.unique_counter = 0
        self.include_dirs = [Path(d) for d in include_dirs]
        env = os.environ.get("SFPY_PATH", "")
        self.env_dirs = [Path(d) for d in env.split(os.pathsep) if d]
        self.filename = "<string>"
        self.stack: list[Path] = []
        self.total_bytes = 0
        self.cache: dict[Path, tuple[list[_Attribute], int]] = {}
        # Include problems are recorded here and parsing goes on, so each is reported once.
        self.include_errors: list[DescriptionError] = []
        # Columns written before each \\uHHHH escape expanded on a line: {line: [(column, shift)]}.
        self.column_shifts: dict[int, list[tuple[int, int]]] = {}

    def position(self, line: int, column: int) -> SourcePosition:
        """A position in the current file as written (before \\u escapes were expanded)."""
        shifts = self.column_shifts.get(line)
        if shifts:
            column += sum(shift for at, shift in shifts if at < column)
        return SourcePosition(self.filename, line, column)

    def unique_name(self) -> str:
        self.unique_counter += 1
        return f"unique{self.unique_counter}"

    # -- include files ---------------------------------------------------------------------
    def find_include(self, name: str, codebase: Sequence[Path] = ()) -> Path | None:
        candidates: list[Path] = [d / name.lstrip("/") for d in codebase]
        plain = Path(name)
        if plain.is_absolute():
            candidates.append(plain)
        relative = name.lstrip("/")
        if self.stack:
            candidates.append(self.stack[-1].parent / relative)
        candidates += [d / relative for d in self.include_dirs]
        candidates += [d / relative for d in self.env_dirs]
        candidates.append(Path(str(resources.files("sfpy.descriptions"))) / relative)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        return None

    def include(
        self, name: str, optional: bool, position: SourcePosition, codebase: str | None = None
    ) -> list[_Attribute]:
        """The attributes of an included file; a problem is recorded and nothing is spliced."""
        try:
            return self._include(name, optional, position, codebase)
        except _LimitExceeded:
            raise  # the whole description is refused: no point parsing on
        except DescriptionError as error:
            if error.position is None:
                error.position = position
            self.include_errors.append(error)
            return []

    def _include(
        self, name: str, optional: bool, position: SourcePosition, codebase: str | None
    ) -> list[_Attribute]:
        folders: list[Path] = []
        for entry in (codebase or "").split():
            if "://" in entry or entry.endswith(".jar"):
                raise DescriptionError(
                    f'#codebase "{entry}": sfpy includes descriptions only from local folders, '
                    f'so "{name}" cannot be included from it',
                    position=position,
                )
            folders.append(Path(entry))
        path = self.find_include(name, folders)
        if path is None:
            if optional:
                return []
            searched = ["the including file's folder", *(str(d) for d in self.include_dirs)]
            if self.env_dirs:
                searched.append("SFPY_PATH")
            searched.append("sfpy's descriptions")
            raise DescriptionError(
                f'include file "{name}" not found (searched {", ".join(searched)})', position=position
            )
        real = path.resolve()
        if real in self.stack:
            cycle = " -> ".join(p.name for p in self.stack[self.stack.index(real) :]) + f" -> {path.name}"
            raise DescriptionError(f"include cycle: {cycle}", position=position)
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            chain = " -> ".join(p.name for p in self.stack[:3]) + " -> … -> " + path.name
            raise DescriptionError(
                f"includes nested more than {MAX_INCLUDE_DEPTH} files deep ({chain}); sfpy's limit",
                position=position,
            )
        cached = self.cache.get(real)
        if cached is None:
            before = self.total_bytes
            root = self.parse_path(path, real)
            attributes = [
                _Attribute(k, v, frozenset(root.tags.get(k, ())), root.positions.get(k, position))
                for k, v in root.attributes.items()
            ]
            # Each splice costs what the file and its includes cost, so repeated includes of
            # includes cannot multiply a small text into an enormous description.
            cached = self.cache[real] = (attributes, self.total_bytes - before)
        else:
            self._charge(cached[1], position)
        return [_Attribute(a.key, copy_value(a.value), a.tags, a.position) for a in cached[0]]

    def _charge(self, size: int, position: SourcePosition) -> None:
        self.total_bytes += size
        if self.total_bytes > MAX_TOTAL_BYTES:
            raise _LimitExceeded(
                f"description too large: more than {MAX_TOTAL_BYTES // (1024 * 1024)} MiB with its "
                "includes (sfpy's limit; an included file counts each time it is included)",
                position=position,
            )

    def parse_path(self, path: Path, real: Path | None = None) -> ComponentDescription:
        suffix = path.name.rsplit(".", 1)[-1] if "." in path.name else "sf"
        if suffix != "sf":
            raise DescriptionError(
                f"{path.name}: sfpy reads SmartFrog descriptions (.sf files); '.{suffix}' names another language",
                position=SourcePosition(str(path), 1, 1),
                source_line="",
            )
        text = self.read(path)
        self.stack.append(real or path.resolve())
        outer = self.filename
        try:
            return self.parse(text, str(path))
        finally:
            self.stack.pop()
            self.filename = outer

    def read(self, path: Path) -> str:
        """The file's text: regular files only, never more than the size limit is read."""
        try:
            if path.is_dir():
                raise DescriptionError(f"{path} is a directory, not a description file")
            # Check before opening: opening a named pipe would wait for a writer.
            if not stat.S_ISREG(path.stat().st_mode):
                raise DescriptionError(f"{path} is not a regular file (a pipe or a device?)")
            with path.open("rb") as handle:
                data = handle.read(MAX_TOTAL_BYTES - self.total_bytes + 1)
        except OSError as error:
            raise DescriptionError(f"cannot read {path}: {error.strerror or error}") from None
        self._charge(len(data), SourcePosition(str(path), 1, 1))
        if b"\0" in data[:8192]:
            raise DescriptionError(
                "binary file, not a description", position=SourcePosition(str(path), 1, 1), source_line=""
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data.count(b"\n", 0, error.start) + 1
            column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
            raise DescriptionError(
                "not UTF-8 text (description files are read as UTF-8)",
                position=SourcePosition(str(path), line, column),
                source_line="",
            ) from None

    # -- parsing with error recovery -------------------------------------------------------
    def parse(self, text: str, filename: str) -> ComponentDescription:
        written = text
        outer_shifts = self.column_shifts
        self.column_shifts = {}
        if "\\u" in text:
            text = self._expand_unicode_escapes(text)
        try:
            return self._parse(text, written, filename)
        finally:
            self.column_shifts = outer_shifts

    def _expand_unicode_escapes(self, text: str) -> str:
        """Java reads ``\\uHHHH`` anywhere in a file as the character; columns stay as written."""
        pieces: list[str] = []
        last = 0
        shift_total: dict[int, int] = {}
        for match in _UNICODE_ESCAPE_RE.finditer(text):
            start = match.start() + len(match.group(1))
            pieces.append(text[last:start])
            pieces.append(chr(int(match.group(2), 16)))
            line = text.count("\n", 0, start) + 1
            written_column = start - (text.rfind("\n", 0, start) + 1) + 1
            shifted = shift_total.get(line, 0)
            self.column_shifts.setdefault(line, []).append((written_column - shifted, match.end() - start - 1))
            shift_total[line] = shifted + match.end() - start - 1
            last = match.end()
        pieces.append(text[last:])
        expanded = "".join(pieces)
        # \uD83D\uDE00 is one character, as in Java; a lone surrogate stays as it is.
        return expanded.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")

    def _parse(self, text: str, written: str, filename: str) -> ComponentDescription:
        driver, builder, lexer = _machinery()
        errors: list[DescriptionError] = []
        current = text
        while True:
            outer_parser, outer_file = builder.parser, lexer.filename
            builder.parser = self
            self.filename = lexer.filename = filename
            try:
                result = driver.parse(lexer.lex(current), current)
                if not errors:
                    return result
                break
            except UnexpectedInput as error:
                found = self._convert(error, current, filename, lexer)
            except DescriptionError as error:
                if isinstance(error, _LimitExceeded):
                    raise
                if error.position is None or error.position.file != filename:
                    raise  # from an include file, or about the file as a whole
                found = error
            finally:
                builder.parser, lexer.filename = outer_parser, outer_file
                self.filename = filename
            errors.append(found)
            if len(errors) >= MAX_REPORTED_ERRORS or len(current) > RECOVERY_MAX_BYTES:
                break
            if found.message.startswith(("nesting deeper", "unexpected end of file")):
                break
            blanked = _skip_statement(current, found.position, lexer)
            if blanked is None or blanked == current:
                break
            current = blanked
        lines = written.splitlines()
        for each in errors:
            position = each.position
            if position is not None and position.file == filename and each._source_line is None:
                if 0 < position.line <= len(lines):
                    each._source_line = lines[position.line - 1]
        first = errors[0]
        seen = {(first.position, first.message)}
        for other in errors[1:]:
            if (other.position, other.message) not in seen:
                first.more.append(other)
                seen.add((other.position, other.message))
        raise first

    def _convert(
        self, error: UnexpectedInput, text: str, filename: str, lexer: SfLexer
    ) -> DescriptionError:
        open_braces = lexer.open_braces
        position = self.position(error.line if error.line > 0 else 1, error.column if error.column > 0 else 1)
        if isinstance(error, UnexpectedCharacters):
            at = error.pos_in_stream or 0  # always set by the lexer
            char = text[at] if at < len(text) else ""
            message = f"unexpected character {char!r}"
            if char == '"':
                message = "unterminated string, or an escape SmartFrog does not know (\\n \\t \\b \\r \\f \\\\ \\' \\\" \\ooo)"
            elif char == "#":
                message = "unexpected '#': expected #include, #include?, #codebase, a ##multi-line string# or a #HEX#…# byte array"
            elif char == "/" and text.startswith("/*", at):
                message = "unterminated /* comment"
            return DescriptionError(message, position=position)
        if isinstance(error, UnexpectedEOF) or (
            isinstance(error, UnexpectedToken) and error.token.type == "$END"
        ):
            if open_braces and "_RBRACE" in error.expected:
                brace = open_braces[-1]
                message = (
                    f"unexpected end of file: the '{{' at line {brace.line} column {brace.column} "
                    "is not closed"
                )
            else:
                message = f"unexpected end of file; expected {describe_expected(error.expected)}"
            return DescriptionError(message, position=position)
        assert isinstance(error, UnexpectedToken)
        token = error.token
        expected_names = set(error.accepts or error.expected)
        if {"DATA", "NULL", "_LBRACE", "ROOT"} <= expected_names and "NUMBER" not in expected_names:
            expected = "a prototype after 'extends': a reference, '{' or NULL"
            if token.type == "_SEMI":
                expected += " (an empty description is written 'extends {}')"
        else:
            expected = describe_expected(expected_names)
        message = f"unexpected {_describe_token(token)}; expected {expected}"
        if token.type == "SLASH" and text.startswith("/*", token.start_pos):
            message = "unterminated /* comment"
        if token.type == "_RBRACE" and token in lexer.stray_braces:
            message = "unexpected '}': there is no open '{' for it to close"
        operators = set(BINARY_OPERATORS) | set(NARY_OPERATORS)
        if (
            token.type in operators
            and not expected_names & operators
            and not message.startswith("unterminated")
        ):
            if "_RBRACKET" in expected_names:
                message += (
                    f"; an operator inside a vector needs parentheses: "
                    f"[(a {token} b), …], not [a {token} b, …]"
                )
            else:
                message += f"; an operator needs parentheses around it: (a {token} b)"
        if token.type == "_RBRACE" and "_SEMI" in expected_names and token not in lexer.stray_braces:
            before = _end_of_previous(text, token.start_pos)
            if before is not None:
                line, column = before
                message = (
                    f"missing ';' or value after {_previous_word(text, token.start_pos)!r} "
                    "(before the '}' that closes its description)"
                )
                position = self.position(line, column)
        if token.type == "NUMBER" and str(token).startswith("-") and error.expected & operators:
            message += f" ('{token}' is read as a negative number: write '- {str(token)[1:]}')"
        return DescriptionError(message, position=position)


def _end_of_previous(text: str, offset: int) -> tuple[int, int] | None:
    """(line, column) just after the last character written before ``offset``, skipping blanks
    (a mistake at the end of a statement is shown there, not at the next line's brace)."""
    end = offset
    while end > 0 and text[end - 1] in " \t\r\n":
        end -= 1
    if end == 0 or "/" in text[end - 1 : offset] or "\n" not in text[end:offset]:
        return None  # on the same line (the caret is close already) or after a comment
    line = text.count("\n", 0, end) + 1
    column = end - (text.rfind("\n", 0, end) + 1) + 1
    return line, column


def _previous_word(text: str, offset: int) -> str:
    head = text[:offset].rstrip()
    start = len(head)
    while start > 0 and not head[start - 1].isspace() and head[start - 1] not in ";{}":
        start -= 1
    return head[start:] or head[-1:]


def _skip_statement(text: str, position: SourcePosition | None, lexer: SfLexer) -> str | None:
    """Blank out the statement around an error, up to the next ';' or '}', to look for more.

    Newlines are kept so every later position stays right.
    """
    if position is None:
        return None
    offset = _offset_of(text, position.line, position.column)
    boundaries: list[tuple[int, int, str]] = []
    try:
        for token in lexer.lex(text):
            if token.type in ("_SEMI", "_LBRACE", "_RBRACE") and token.start_pos is not None:
                boundaries.append((token.start_pos, token.start_pos + 1, token.type))
    except (UnexpectedInput, DescriptionError):
        # Lexing stops at a bad character: find the statement's end in the raw text.
        ends = [i for i in (text.find(";", offset + 1), text.find("}", offset + 1)) if i >= 0]
        if ends:
            end = min(ends)
            boundaries.append((end, end + 1, "_SEMI" if text[end] == ";" else "_RBRACE"))
    start = 0
    for _begin, end, _ in boundaries:
        if end <= offset:
            start = end
        else:
            break
    stop = None
    for begin, end, kind in boundaries:
        if begin >= offset and begin > start:
            if kind == "_SEMI":
                stop = end
            elif begin > offset or text[start:offset].strip():
                stop = begin  # keep the '}' so braces stay balanced
            else:
                stop = begin + 1  # a stray '}' is the mistake itself
            break
    if stop is None:
        # No statement end after it: skip to the end of the line (or the offending character).
        newline = text.find("\n", offset)
        stop = len(text) if newline < 0 else newline
        if stop <= offset:
            stop = offset + 1
    if stop <= start:
        return None
    region = text[start:stop]
    blank = "".join(c if c in "\n\r" else " " for c in region)
    return text[:start] + blank + text[stop:]


def _offset_of(text: str, line: int, column: int) -> int:
    offset = 0
    for _ in range(line - 1):
        found = text.find("\n", offset)
        if found < 0:
            return len(text)
        offset = found + 1
    return min(offset + column - 1, len(text))


def _run(parser: _Parser, parse: Callable[[], ComponentDescription]) -> ComponentDescription:
    """Run a top-level parse; report include problems and syntax errors together, each once."""
    errors: list[DescriptionError] = []
    try:
        result = parse()
    except DescriptionError as error:
        errors = error.all()
        error.more = []
    else:
        if not parser.include_errors:
            return result
    unique: dict[tuple, DescriptionError] = {}
    for each in parser.include_errors + errors:
        unique.setdefault((each.position, each.message), each)
    ordered = sorted(
        unique.values(),
        key=lambda e: (e.position is not None, e.position.line if e.position else 0, e.position.column if e.position else 0),
    )
    first, *rest = ordered
    first.more = rest
    raise first


def parse_text(
    text: str, filename: str = "<string>", include_dirs: Sequence[str | os.PathLike[str]] = ()
) -> ComponentDescription:
    """Parse description text into the raw ROOT description (see sfpy.language)."""
    with _LOCK:
        parser = _Parser(include_dirs)
        if filename != "<string>":
            parser.stack.append(Path(filename).resolve())
        else:
            parser.stack.append(Path.cwd() / filename)
        if len(text.encode("utf-8", errors="replace")) > MAX_TOTAL_BYTES:
            raise DescriptionError(
                f"description too large: more than {MAX_TOTAL_BYTES // (1024 * 1024)} MiB (sfpy's limit)"
            )
        return _run(parser, lambda: parser.parse(text, filename))


def parse_file(path: str | os.PathLike[str], include_dirs: Sequence[str | os.PathLike[str]] = ()) -> ComponentDescription:
    """Parse a description file and its includes into the raw ROOT description."""
    file = Path(path)
    with _LOCK:
        parser = _Parser(include_dirs)
        if not file.exists():
            raise DescriptionError(f"{path}: no such file")
        return _run(parser, lambda: parser.parse_path(file))
