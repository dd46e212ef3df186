"""Properties over generated descriptions (hypothesis).

A generator writes random *valid* descriptions — nested descriptions, prototypes, every
literal type (Integer, Long, Float, Double, strings with escapes, multi-line strings, byte
arrays, both vector forms, NULL), tags, references to attributes that exist, LAZY and
OPTIONAL references, operators and IF — together with the resolved description it must give.
Then:

* the text parses and resolves to exactly that description;
* what ``to_sf`` prints parses back (inside ``sfConfig extends { … }``) to an equal description;
* the JSON form round-trips exactly, resolved and raw;
* mutating the text (a character or a token deleted, inserted or swapped) gives a result or a
  DescriptionError — never another exception — and quickly.
"""

from __future__ import annotations

import base64
import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sfpy.language import (
    NULL,
    ByteArray,
    ComponentDescription,
    DescriptionError,
    Double,
    Long,
    Reference,
    RefPart,
    load,
    parse_text,
    resolve,
)
from sfpy.language.unparse import from_json, to_json, to_sf

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    resolve(parse_text("sfConfig extends { a 1; }"))


# ---- literals: (source text, expected value) -------------------------------------------------

INT32 = st.integers(-(2**31), 2**31 - 1)


@st.composite
def integers(draw: st.DrawFn) -> tuple[str, Any]:
    n = draw(INT32)
    return str(n), n


@st.composite
def longs(draw: st.DrawFn) -> tuple[str, Any]:
    n = draw(st.integers(-(2**63), 2**63 - 1))
    return f"{n}{draw(st.sampled_from('lL'))}", Long(n)


@st.composite
def doubles(draw: st.DrawFn) -> tuple[str, Any]:
    x = draw(st.floats(allow_nan=False, allow_infinity=False))
    return f"{x!r}{draw(st.sampled_from('dD'))}", Double(x)


@st.composite
def floats(draw: st.DrawFn) -> tuple[str, Any]:
    """Float literals of at most six significant digits (a Float is 32 bits in SmartFrog)."""
    mantissa = draw(st.integers(0, 999_999))
    places = draw(st.integers(0, 6))
    digits = str(mantissa).rjust(places + 1, "0")
    text = f"{digits[:-places]}.{digits[-places:]}" if places else f"{digits}.0"
    if draw(st.booleans()):
        text += f"e{draw(st.integers(-20, 20))}"
    if draw(st.booleans()):
        text = "-" + text
    value = float(text)
    assume(1e-30 < abs(value) < 1e30 or value == 0)
    return text + draw(st.sampled_from(["", "f", "F"])), value


BOOLEANS = st.sampled_from([("true", True), ("false", False)])

_SIMPLE_ESCAPES = {"\n": "\\n", "\t": "\\t", "\b": "\\b", "\r": "\\r", "\f": "\\f", "\\": "\\\\"}
STRING_CHARS = st.characters(blacklist_categories=("Cs",), max_codepoint=0x10FFFF)


def escape_string(value: str, octal: bool, quote: str, raw_newlines: bool = False) -> str:
    """Source text for a string value, using SmartFrog's escapes (octal for Latin-1 when asked)."""
    out = []
    for c in value:
        if c == "\n" and raw_newlines:
            out.append(c)
        elif c in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[c])
        elif c == quote:
            out.append("\\" + quote)
        elif octal and ord(c) < 256 and (not c.isalnum() or ord(c) > 127):
            out.append(f"\\{ord(c):03o}")
        elif ord(c) < 32 or c == "\x7f":
            out.append(f"\\{ord(c):03o}")
        else:
            out.append(c)
    return "".join(out)


@st.composite
def strings(draw: st.DrawFn) -> tuple[str, Any]:
    value = draw(st.text(STRING_CHARS, max_size=12))
    return '"' + escape_string(value, draw(st.booleans()), '"') + '"', value


@st.composite
def multiline_strings(draw: st.DrawFn) -> tuple[str, Any]:
    value = draw(st.text(STRING_CHARS, max_size=12))
    text = escape_string(value, False, "#", raw_newlines=draw(st.booleans()))
    return "##" + text + "#", value


@st.composite
def byte_arrays(draw: st.DrawFn) -> tuple[str, Any]:
    data = draw(st.binary(max_size=12))
    form = draw(st.sampled_from(["HEX", "hex-spaced", "B64"]))
    if form == "HEX":
        return f"#HEX#{data.hex().upper()}#", ByteArray(data)
    if form == "hex-spaced":
        return "#HEX#" + " ".join(f"{b:02x}" for b in data) + "#", ByteArray(data)
    return f"#B64#{base64.b64encode(data).decode()}#", ByteArray(data)


SCALARS = st.one_of(
    integers(), longs(), floats(), doubles(), BOOLEANS, strings(), multiline_strings(),
    byte_arrays(), st.just(("NULL", NULL)),
)  # fmt: skip


@st.composite
def primitive_vectors(draw: st.DrawFn, depth: int = 0) -> tuple[str, Any]:
    element = SCALARS if depth >= 2 else st.one_of(SCALARS, primitive_vectors(depth + 1))
    items = draw(st.lists(element, max_size=4))
    return "[|" + ", ".join(t for t, _ in items) + "|]", [v for _, v in items]


PRIMITIVES = st.one_of(SCALARS, primitive_vectors())


# ---- operators over literals ------------------------------------------------------------------

SMALL = st.integers(-1000, 1000)


def _int32(n: int) -> int:
    """Java's Integer arithmetic wraps around (SmartFrog's Sum and Product of Integers too)."""
    return (n + 2**31) % 2**32 - 2**31


def _java_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _java_mod(a: int, b: int) -> int:
    return a - _java_div(a, b) * b


@st.composite
def operations(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["sum", "product", "minus", "div", "mod", "compare", "concat", "logic", "not", "if", "vector"]))
    if kind in ("sum", "product"):
        ns = draw(st.lists(SMALL, min_size=2, max_size=4))
        op = "+" if kind == "sum" else "*"
        value = _int32(sum(ns) if kind == "sum" else math.prod(ns))
        return "(" + f" {op} ".join(str(n) for n in ns) + ")", value
    if kind in ("minus", "div", "mod"):
        a, b = draw(SMALL), draw(SMALL.filter(bool))
        op, value = {"minus": ("-", a - b), "div": ("/", _java_div(a, b)), "mod": ("%", _java_mod(a, b))}[kind]
        return f"({a} {op} {b})", value
    if kind == "compare":
        a, b = draw(SMALL), draw(SMALL)
        op = draw(st.sampled_from(["==", "!=", ">", ">=", "<", "<="]))
        value = {"==": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]
        return f"({a} {op} {b})", value
    if kind == "concat":
        parts = draw(st.lists(strings(), min_size=2, max_size=3))
        return "(" + " ++ ".join(t for t, _ in parts) + ")", "".join(v for _, v in parts)
    if kind == "logic":
        bs = draw(st.lists(BOOLEANS, min_size=2, max_size=3))
        op = draw(st.sampled_from(["&&", "||"]))
        values = [v for _, v in bs]
        return "(" + f" {op} ".join(t for t, _ in bs) + ")", all(values) if op == "&&" else any(values)
    if kind == "not":
        text, value = draw(BOOLEANS)
        return f"(! {text})", not value
    if kind == "if":
        cond_text, cond = draw(BOOLEANS)
        (then_text, then), (else_text, otherwise) = draw(PRIMITIVES), draw(PRIMITIVES)
        return f"IF {cond_text} THEN {then_text} ELSE {else_text} FI", then if cond else otherwise
    items = draw(st.lists(st.one_of(SCALARS, integers()), max_size=4))
    return "[" + ", ".join(t for t, _ in items) + "]", [v for _, v in items]


# ---- whole descriptions ------------------------------------------------------------------------

NAME = st.from_regex(r"[a-z][a-zA-Z0-9_.\-@~%^&$]{0,5}", fullmatch=True).filter(
    lambda n: n not in ("extends", "true", "false") and not n.startswith(("sf", "x|"))
)
TAG = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,5}", fullmatch=True).filter(
    lambda n: n not in ("extends", "true", "false") and not n.startswith("sf")
)


@dataclass
class Scope:
    """What a description being generated may refer to: plain values only (no cycles)."""

    values: dict[str, Any] = field(default_factory=dict)  # this description's resolved values
    parent: Scope | None = None


def _quote(name: str, quoted: bool) -> str:
    return f'"{name}"' if quoted else name


@st.composite
def attribute_value(draw: st.DrawFn, scope: Scope, depth: int, templates: dict) -> tuple[str, Any, bool]:
    """(text, expected value, is_plain) for one attribute in ``scope``."""
    choices = ["primitive", "primitive", "operation"]
    if scope.values:
        choices += ["ref", "ref"]
    if scope.parent is not None and scope.parent.values:
        choices += ["parent-ref"]
    choices += ["lazy", "optional"]
    if depth < 3:
        choices += ["description", "description"]
        if templates:
            choices += ["extends-template"]
    kind = draw(st.sampled_from(choices))
    if kind == "primitive":
        text, value = draw(PRIMITIVES)
        return text, value, True
    if kind == "operation":
        text, value = draw(operations())
        return text, value, True
    if kind == "ref":
        name = draw(st.sampled_from(sorted(scope.values)))
        form = draw(st.sampled_from(["{}", "ATTRIB {}", "THIS:{}", "HERE {}"]))
        return form.format(name), scope.values[name], True
    if kind == "parent-ref":
        assert scope.parent is not None
        name = draw(st.sampled_from(sorted(scope.parent.values)))
        return f"PARENT:{name}", scope.parent.values[name], True
    if kind == "lazy":
        name = draw(NAME)
        form = draw(st.sampled_from(["plain", "parent", "root"]))
        if form == "plain":
            return f"LAZY {name}", Reference([RefPart("ATTRIB", name)], lazy=True), False
        if form == "parent":
            return f"LAZY PARENT:{name}", Reference([RefPart("PARENT"), RefPart("HERE", name)], lazy=True), False
        return f"LAZY ROOT:{name}", Reference([RefPart("ROOT"), RefPart("HERE", name)], lazy=True), False
    if kind == "optional":
        default_text, default = draw(st.one_of(integers(), strings(), BOOLEANS))
        return f"OPTIONAL ({default_text}) missing.attribute.q", default, True
    if kind == "extends-template":
        names = draw(st.lists(st.sampled_from(sorted(templates)), min_size=1, max_size=2, unique=True))
        text, cd = draw(description_body(Scope(parent=scope), depth + 1, templates, names))
        return f"extends {', '.join(names)} {text}", cd, False
    eager = draw(st.sampled_from(["", "DATA "]))
    text, cd = draw(description_body(Scope(parent=scope), depth + 1, templates, []))
    cd.eager = eager == ""
    return f"extends {eager}{text}", cd, False


@st.composite
def description_body(
    draw: st.DrawFn, scope: Scope, depth: int, templates: dict, prototypes: list[str]
) -> tuple[str, ComponentDescription]:
    """``{ … }`` and the description it resolves to (prototypes' attributes first)."""
    expected = ComponentDescription()
    for name in prototypes:  # left-to-right overlay; an overridden attribute keeps its place
        for key, value in templates[name].items():
            expected.attributes[key] = value
            scope.values[key] = value
    names = draw(st.lists(NAME, min_size=1 if depth == 0 else 0, max_size=6, unique=True))
    for name in names:  # an attribute overridden below has another value by the time links resolve
        scope.values.pop(name, None)
    lines = []
    indent = "  " * (depth + 1)
    for name in names:
        quoted = draw(st.booleans()) and draw(st.booleans())
        tags = draw(st.lists(TAG, max_size=2, unique=True)) if draw(st.booleans()) else []
        text, value, plain = draw(attribute_value(scope, depth, templates))
        tag_text = f"[{', '.join(tags)}] " if tags else ""
        terminator = "" if text.endswith("}") else ";"
        lines.append(f"{indent}{tag_text}{_quote(name, quoted)} {text}{terminator}\n")
        expected.attributes[name] = value
        if tags:
            expected.tags[name] = set(tags)
        if plain:
            scope.values[name] = value
        else:
            scope.values.pop(name, None)
    closing = "  " * depth
    return "{\n" + "".join(lines) + closing + "}", expected


@st.composite
def descriptions(draw: st.DrawFn) -> tuple[str, ComponentDescription]:
    """A whole file: a few prototypes at the top level, then sfConfig."""
    templates: dict[str, dict[str, Any]] = {}
    top = []
    for index in range(draw(st.integers(0, 2))):
        name = f"Template{index}"
        values = draw(st.dictionaries(NAME, PRIMITIVES, max_size=3))
        templates[name] = {k: v for k, (_, v) in values.items()}
        body = "".join(f"  {k} {t};\n" for k, (t, _) in values.items())
        top.append(f"{name} extends {{\n{body}}}\n")
    prototypes = draw(st.lists(st.sampled_from(sorted(templates)), max_size=2, unique=True)) if templates else []
    text, expected = draw(description_body(Scope(), 0, templates, prototypes))
    extends = f"extends {', '.join(prototypes)} " if prototypes else "extends "
    return "".join(top) + f"sfConfig {extends}{text}\n", expected


def load_text(text: str) -> ComponentDescription:
    return resolve(parse_text(text, "generated.sf"))


def show(cd: ComponentDescription) -> str:
    try:
        return to_sf(cd)
    except Exception as error:  # noqa: BLE001 - only for the failure message
        return repr(error)


# ---- the properties ------------------------------------------------------------------------------


@SETTINGS
@given(descriptions())
def test_generated_descriptions_resolve_as_expected(case: tuple[str, ComponentDescription]) -> None:
    text, expected = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.sf"
        path.write_text(text, encoding="utf-8")
        resolved = load(str(path))  # the public front door: file in, resolved sfConfig out
    assert resolved == expected, f"\n--- text\n{text}\n--- got\n{show(resolved)}\n--- expected\n{show(expected)}"


@SETTINGS
@given(descriptions())
def test_printed_form_parses_back_equal(case: tuple[str, ComponentDescription]) -> None:
    text, _ = case
    resolved = load_text(text)
    printed = to_sf(resolved)
    again = load_text("sfConfig extends {\n" + printed + "}\n")
    assert again == resolved, f"\n--- text\n{text}\n--- printed\n{printed}\n--- re-read\n{show(again)}"
    assert to_sf(again) == printed


@SETTINGS
@given(descriptions())
def test_json_round_trip_is_exact(case: tuple[str, ComponentDescription]) -> None:
    text, _ = case
    resolved = load_text(text)
    document = to_json(resolved)
    again = from_json(document)
    assert again == resolved
    assert to_json(again) == document
    assert to_sf(again) == to_sf(resolved)


@SETTINGS
@given(descriptions())
def test_json_round_trip_of_raw_descriptions(case: tuple[str, ComponentDescription]) -> None:
    """The unresolved ROOT (prototypes, references, function descriptions) keeps its form too."""
    text, _ = case
    raw = parse_text(text, "generated.sf")
    document = to_json(raw)
    again = from_json(document)
    assert to_json(again) == document
    assert resolve(again) == resolve(parse_text(text, "generated.sf"))


# Single values, many more examples: the literal forms are where printing and reading disagree.
@settings(max_examples=300, deadline=None)
@given(st.one_of(PRIMITIVES, operations()))
def test_single_values(case: tuple[str, Any]) -> None:
    text, value = case
    resolved = load_text(f"sfConfig extends {{\n  v {text};\n}}\n")
    expected = ComponentDescription()
    expected.attributes["v"] = value
    assert resolved == expected, f"{text!r} -> {resolved['v']!r}, expected {value!r}"
    printed = to_sf(resolved)
    assert load_text("sfConfig extends {\n" + printed + "}\n") == resolved, printed
    assert from_json(to_json(resolved)) == resolved


# ---- mutations -------------------------------------------------------------------------------------

MUTATION_ALPHABET = list("{}[]()|;:,\"'#/*+-<>=!&% \n\tLDf0129ax") + [
    "extends", "DATA", "LAZY", "NULL", "TBD", "PARENT", "ROOT", "ATTRIB", "HERE", "OPTIONAL",
    "APPLY", "ASSERT", "IF", "THEN", "ELSE", "FI", "SWITCH", "ENDSWITCH", "[|", "|]", "##",
    "#HEX#", "#include", "--", "x|", "\\", "\\u", "/*", "//", "sfConfig", "-1",
]  # fmt: skip
TOKEN_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|##(?:[^#\\]|\\.)*#|#[A-Z0-9]+#[^#]*#|\s+|[A-Za-z_$][\w.\-+@#~$%^&]*|-?\d[\w.]*|\[\||\|\]|.', re.S)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text, _ = draw(descriptions())
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):  # a character
            if not text:
                break
            at = draw(st.integers(0, len(text) - 1))
            how = draw(st.sampled_from(["delete", "insert", "swap", "replace"]))
            if how == "delete":
                text = text[:at] + text[at + 1 :]
            elif how == "insert":
                text = text[:at] + draw(st.sampled_from(MUTATION_ALPHABET)) + text[at:]
            elif how == "replace":
                text = text[:at] + draw(st.sampled_from(MUTATION_ALPHABET)) + text[at + 1 :]
            elif at + 1 < len(text):
                text = text[:at] + text[at + 1] + text[at] + text[at + 2 :]
        else:  # a token
            tokens = TOKEN_RE.findall(text)
            if len(tokens) < 2:
                continue
            at = draw(st.integers(0, len(tokens) - 1))
            how = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
            if how == "delete":
                del tokens[at]
            elif how == "duplicate":
                tokens.insert(at, tokens[at])
            elif how == "insert":
                tokens.insert(at, " " + draw(st.sampled_from(MUTATION_ALPHABET)) + " ")
            else:
                other = draw(st.integers(0, len(tokens) - 1))
                tokens[at], tokens[other] = tokens[other], tokens[at]
            text = "".join(tokens)
    return text


@pytest.mark.slow  # about 10 s: generating whole descriptions is what takes the time
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_descriptions_fail_cleanly(text: str) -> None:
    started = time.perf_counter()
    try:
        resolved = load_text(text)
        to_sf(resolved)
        to_json(resolved)
    except DescriptionError as error:
        message = error.render()
        assert message and "error: " in message
        assert "__ANON" not in message and "$END" not in message
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"{elapsed:.2f} s for:\n{text}"
