"""Edge cases of the printers: Java's float digits at the extremes, lone surrogates, no sfConfig."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfpy.language import parse_text, resolve
from sfpy.language.errors import DescriptionError
from sfpy.language.model import ComponentDescription, Double, Long, SourcePosition
from sfpy.language.unparse import from_json, java_double, java_float, to_json, to_sf

# -- Float.toString / Double.toString (JDK 19+ shortest form) ---------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.4028234663852886e38, "3.4028235E38"),  # Float.MAX_VALUE
        (-3.4028234663852886e38, "-3.4028235E38"),
        (3.3e38, "3.3E38"),
        (1.401298464324817e-45, "1.4E-45"),  # Float.MIN_VALUE (Java's digits, not 1.0E-45)
        (1e-45, "1.4E-45"),  # rounds to Float.MIN_VALUE
        (3 * 2.0**-149, "4.2E-45"),  # one digit would do; Java picks the closest of two
        (2.0**-126, "1.1754944E-38"),  # Float.MIN_NORMAL
        (1e-50, "0.0"),  # below half of Float.MIN_VALUE
        (1e10, "1.0E10"),
        (0.1, "0.1"),
        (3.40282356e38, "3.4028235E38"),  # above MAX_VALUE but rounds down to it
        (1e39, "Infinity"),  # what a Java Float holds (the parser refuses such literals)
    ],
)
def test_java_float_extremes(value: float, text: str) -> None:
    assert java_float(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5e-324, "4.9E-324"),  # Double.MIN_VALUE
        (1e-323, "9.9E-324"),  # 2 × MIN_VALUE: closest of the one- and two-digit forms
        (1.7976931348623157e308, "1.7976931348623157E308"),  # Double.MAX_VALUE
        (2.2250738585072014e-308, "2.2250738585072014E-308"),  # Double.MIN_NORMAL
        (2e23, "2.0E23"),  # old JDKs printed 2.0000000000000004E23
        (0.001, "0.001"),
        (1e7, "1.0E7"),
    ],
)
def test_java_double_extremes(value: float, text: str) -> None:
    assert java_double(value) == text


def _single(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=0x7F7FFFFF))
def test_float_digits_read_back_as_the_same_float(bits: int) -> None:
    """Every finite positive float (subnormals included) prints digits that read back exactly."""
    value = _single(bits)
    text = java_float(value)
    assert _single(struct.unpack("<I", struct.pack("<f", float(text)))[0]) == value


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=5e-324, allow_infinity=False, allow_nan=False))
def test_double_digits_are_the_shortest(value: float) -> None:
    text = java_double(value)
    assert float(text) == value
    digits = text.split("E")[0].replace(".", "").replace("-", "").strip("0")
    shortest = repr(value).split("e")[0].replace(".", "").strip("0")
    if len(shortest) >= 2:
        assert len(digits) == len(shortest)
    else:  # one digit would do: Java may use two to come closer
        assert len(digits) <= 2


@pytest.mark.parametrize("literal", ["3.3e38", "1.4e-45", "4.9e-324D", "1.7976931348623157e308D"])
def test_extreme_literals_print_and_read_back(literal: str) -> None:
    printed = to_sf(resolve(parse_text(f"sfConfig extends {{ a {literal}; }}", "n.sf")))
    again = to_sf(resolve(parse_text(f"sfConfig extends {{ {printed} }}", "again.sf")))
    assert printed == again


# -- lone surrogates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("\ud800", "\\uD800"),
        ("\udfff", "\\uDFFF"),
        ("\ude00\ud83d", "\\uDE00\\uD83D"),  # a pair the wrong way round: two lone halves
        ("\U0001f600\ud800", "\\uD83D\\uDE00\\uD800"),
    ],
)
def test_lone_surrogate_prints_as_java_escape_and_reads_back(text: str, written: str) -> None:
    cd = ComponentDescription()
    cd.put("a", text)
    printed = to_sf(cd)
    assert printed == f'a "{written}";\n'
    printed.encode("ascii")
    back = resolve(parse_text(f"sfConfig extends {{\n{printed}}}\n", "half.sf"))
    assert back.attributes["a"] == text


@pytest.mark.parametrize("text", ["\ud800", "\udfff", "\ude00\ud83d", "x\ud800y\U0001f600"])
def test_lone_surrogate_survives_the_json_form(text: str) -> None:
    cd = ComponentDescription()
    cd.put(text, text)
    document = to_json(cd)
    document.encode("utf-8")  # the wire form must be encodable
    back = from_json(document)
    assert back.attributes == {text: text}


# -- a file without sfConfig names the file ----------------------------------------------------


def test_missing_sfconfig_error_has_roots_position() -> None:
    root = ComponentDescription(position=SourcePosition("empty.sf", 1, 1))
    with pytest.raises(DescriptionError) as info:
        resolve(root)
    assert info.value.position == SourcePosition("empty.sf", 1, 1)
    assert str(info.value).startswith("empty.sf:1:1: error: Unresolved Reference: HERE sfConfig")


def test_missing_sfconfig_error_falls_back_to_first_attribute() -> None:
    root = ComponentDescription()
    root.put("a", 1, position=SourcePosition("only.sf", 2, 3))
    root.put("b", 2, position=SourcePosition("only.sf", 5, 1))
    with pytest.raises(DescriptionError) as info:
        resolve(root)
    assert info.value.position == SourcePosition("only.sf", 2, 3)


def test_resolve_passes_phases_through() -> None:
    root = parse_text("sfConfig extends { a 1; b Double; } Double 2.5D;", "p.sf")
    only_sfconfig = resolve(root, phases=["sfConfig"])
    assert only_sfconfig.attributes["a"] == 1
    # without the link phase the reference stays a reference
    assert not isinstance(only_sfconfig.attributes["b"], Double)
    full = resolve(parse_text("sfConfig extends { a 1L; }", "q.sf"))
    assert full.attributes["a"] == Long(1)
