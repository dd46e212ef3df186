"""The function phase and the function library, with the values SmartFrog's Java gives."""

from __future__ import annotations

import io
import math
import re
import sys

import pytest

from sfpy.language import parse_text
from sfpy.language.errors import DescriptionError
from sfpy.language.functions import JavaRandom, java_string, reset_state
from sfpy.language.model import (
    NULL,
    ApplyReference,
    AssertReference,
    ComponentDescription,
    Double,
    Long,
    Reference,
)
from sfpy.language.resolve import resolve

FUNCTIONS = '#include "org/smartfrog/functions.sf"\n'


def run(text: str) -> ComponentDescription:
    return resolve(parse_text(text, "test.sf"))


def value(expression: str, context: str = "") -> object:
    return run(f"sfConfig extends {{\n{context}\n  x {expression};\n}}\n")["x"]


def fails(text: str) -> DescriptionError:
    with pytest.raises(DescriptionError) as caught:
        run(text)
    return caught.value


def same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b


@pytest.fixture(autouse=True)
def _fresh_state() -> None:
    reset_state()


# ---- the function phase ---------------------------------------------------------------------


def test_operator_becomes_an_application_and_is_evaluated() -> None:
    assert same(value("(1 + 2)"), 3)


def test_nested_operators_are_constructed_innermost_first() -> None:
    assert same(value("((1 + 2) * (3 - 1))"), 6)


def test_nary_operators_fold_over_every_parameter() -> None:
    cfg = run(
        FUNCTIONS
        + "times10 extends product { ten 10; }\nsfConfig extends {\n  myNum extends times10 { val 34; }\n}\n"
    )
    assert same(cfg["myNum"], 340)


def test_construct_function_puts_the_class_first_and_drops_the_phase() -> None:
    cfg = run(
        FUNCTIONS + "sfConfig extends {\n  x extends sum { sfFunctionLazy true; a 1; b 2; }\n}\n"
    )
    apply = cfg["x"]
    assert isinstance(apply, ApplyReference) and apply.lazy
    assert list(apply.description.attributes) == ["sfFunctionClass", "sfFunctionLazy", "a", "b"]


def test_templates_outside_sfconfig_are_converted_but_not_evaluated() -> None:
    cfg = run('bad ("a" + 1);\nsfConfig extends { ok 1; }\n')
    assert cfg["ok"] == 1


def test_canonical_apply_and_data_apply() -> None:
    cls = '"org.smartfrog.sfcore.languages.sf.functions.Sum"'
    cfg = run(
        f"sfConfig extends {{\n  a APPLY {{ sfFunctionClass {cls}; -- 1; -- 2; }}\n  d DATA APPLY {{ sfFunctionClass {cls}; -- 1; }}\n}}\n"
    )
    assert cfg["a"] == 3
    assert isinstance(cfg["d"], ApplyReference) and cfg["d"].data


def test_unknown_function_class_is_named() -> None:
    error = fails(
        'sfConfig extends {\n  x APPLY { sfFunctionClass "com.example.Frobnicate"; a 1; }\n}\n'
    )
    assert error.phase == "link" and "com.example.Frobnicate" in error.message


def test_function_without_class_is_an_error_in_the_function_phase() -> None:
    error = fails(
        'sfConfig extends {\n  x extends { phase.function "org.smartfrog.sfcore.languages.sf.ConstructFunction"; a 1; }\n}\n'
    )
    assert error.phase == "function" and "sfFunctionClass" in error.message


def test_function_names_match_on_the_last_segment_and_template_names() -> None:
    assert value('APPLY { sfFunctionClass "my.own.package.Sum"; a 1; b 2; }') == 3
    assert value('APPLY { sfFunctionClass "concat"; a "x"; b 1; }') == "x1"


# ---- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("(1 + 2)", 3),
        ("(1 + 2L)", Long(3)),
        ("(1 + 1.5)", 2.5),
        ("(1L + 1.5D)", Double(2.5)),
        ("(1.5 + 1.5D)", Double(3.0)),
        ("(2147483647 + 1)", -2147483648),
        ("(9223372036854775807L + 1)", Long(-9223372036854775808)),
        ("(7 - 10)", -3),
        ("(6 * 7L)", Long(42)),
        ("(7 / 2)", 3),
        ("(-7 / 2)", -3),
        ("(7L / 2)", Long(3)),
        ("(7.5 / 2)", 3.75),
        ("(1 / 4.0D)", Double(0.25)),
        ("(7 % 3)", 1),
        ("(-7 % 3)", -1),
        ("(7 % -3)", 1),
        ("(0.1 + 0.2)", 0.3),
    ],
)
def test_arithmetic_follows_java_promotion(expression: str, expected: object) -> None:
    assert same(value(expression), expected)


def test_float_division_by_zero_is_infinite_and_integer_division_an_error() -> None:
    assert value("(1.5 / 0)") == math.inf
    error = fails("sfConfig extends {\n  x (1 / 0);\n}\n")
    assert "division by zero" in error.message and error.path == "sfConfig:x"


def test_non_numbers_are_refused_by_arithmetic() -> None:
    error = fails('sfConfig extends {\n  x ("a" - 1);\n}\n')
    assert "illegal numeric parameter" in error.message and "java.lang.String" in error.message


def test_mod_takes_integers_only() -> None:
    assert "integer" in fails("sfConfig extends {\n  x (7.5 % 2);\n}\n").message


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("(2 > 1L)", True),
        ("(1.5 >= 1)", True),
        ("(1 < 1)", False),
        ("(1 <= 1)", True),
        ("(1 == 1)", True),
        ("(1 == 1L)", False),
        ('("a" == "a")', True),
        ("(1.5 == 1.5D)", False),
        ("(1 != 1L)", True),
        ("([|1, 2|] == [|1, 2|])", True),
    ],
)
def test_comparisons(expression: str, expected: bool) -> None:
    assert value(expression) is expected


# ---- strings and vectors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('("a" ++ 42)', "a42"),
        ('("x" ++ 1.5)', "x1.5"),
        ('("x" ++ 240L)', "x240"),
        ('("x" ++ 1.25D)', "x1.25"),
        ('("x" ++ true)', "xtrue"),
        ('("v" ++ [|1, "a", 2L|])', "v[1, a, 2]"),
        ('("f" ++ 1e10)', "f1.0E10"),
        ('("n" ++ NULL)', "nSFNull"),
    ],
)
def test_concatenate_uses_java_tostring(expression: str, expected: str) -> None:
    assert value(expression) == expected


def test_java_string_of_floats() -> None:
    assert java_string(0.001) == "0.001"
    assert java_string(1e-4) == "1.0E-4"
    assert java_string(Double(12345678.0)) == "1.2345678E7"
    assert java_string(100.0) == "100.0"


def test_concatenate_of_one_parameter_returns_it_unchanged() -> None:
    cfg = run(FUNCTIONS + "sfConfig extends {\n  x extends concat { a 5; }\n}\n")
    assert same(cfg["x"], 5)


def test_vector_and_append() -> None:
    assert value('[1, "a", true, (1 + 1)]') == [1, "a", True, 2]
    assert value("([|1|] <> [|2, 3|])") == [1, 2, 3]
    cfg = run(
        FUNCTIONS + 'sfConfig extends {\n  x extends append { s "not a vector"; v [|1|]; }\n}\n'
    )
    assert cfg["x"] == [1]


def test_vector_of_descriptions() -> None:
    result = value("[(extends { a 1; })]")
    assert isinstance(result, list) and result[0]["a"] == 1


def test_format_string() -> None:
    cfg = run(
        FUNCTIONS
        + 'sfConfig extends {\n  m extends formatString { format "host $1 port $2 $10"; s1 "h"; s2 "50"; }\n}\n'
    )
    assert cfg["m"] == "host h port 50 h0"
    error = fails(FUNCTIONS + 'sfConfig extends {\n  m extends formatString { format "$3"; }\n}\n')
    assert "s3" in error.message


# ---- booleans and conditionals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("(true && false)", False),
        ("(true && true && true)", True),
        ("(false || true)", True),
        ("(true x| true)", False),
        ("(true x| false)", True),
        ("(true -> false)", False),
        ("(false -> false)", True),
        ("(! true)", False),
    ],
)
def test_boolean_operators(expression: str, expected: bool) -> None:
    assert value(expression) is expected


def test_boolean_operators_refuse_other_values() -> None:
    assert "illegal boolean parameter" in fails("sfConfig extends {\n  x (1 && true);\n}\n").message


def test_if_then_else_and_switch() -> None:
    assert value('IF (1 > 0) THEN "y" ELSE "n" FI') == "y"
    assert value('IF (1 < 0) THEN "y" ELSE "n" FI') == "n"
    assert value("SWITCH IF false THEN 1 IF true THEN 2 IF true THEN 3 ENDSWITCH") == 2
    assert value("SWITCH IF false THEN 1 ENDSWITCH") is NULL
    assert "illegal boolean" in fails("sfConfig extends {\n  x IF 1 THEN 2 ELSE 3 FI;\n}\n").message


# ---- stateful and environmental functions --------------------------------------------------------


def test_next_is_a_process_wide_counter_with_a_base() -> None:
    cfg = run(
        FUNCTIONS
        + "myNext extends next { base 1; }\nsfConfig extends {\n  a extends myNext;\n  b extends myNext;\n  c extends next;\n}\n"
    )
    assert (cfg["a"], cfg["b"], cfg["c"]) == (1, 2, 3)
    reset_state()
    assert run(FUNCTIONS + "sfConfig extends {\n  a extends next;\n}\n")["a"] == 0


def test_java_random_sequence() -> None:
    generator = JavaRandom(42)
    assert abs(generator.next_float() - 0.7275637) < 1e-6


def test_random_integers_in_range_and_reproducible_with_a_seed() -> None:
    text = (
        FUNCTIONS
        + "dice extends random { integer true; min 1; max 6; seed 7; }\nsfConfig extends {\n"
        + "".join(f"  t{i} extends dice;\n" for i in range(20))
        + "}\n"
    )
    first = [v for v in run(text).attributes.values()]
    reset_state()
    assert [v for v in run(text).attributes.values()] == first
    assert all(type(v) is int and 1 <= v <= 6 for v in first)


def test_random_float() -> None:
    result = run(FUNCTIONS + "sfConfig extends {\n  r extends random { seed 42; }\n}\n")["r"]
    assert type(result) is float and 0 <= result < 1


def test_date_has_java_layout() -> None:
    today = run(FUNCTIONS + "sfConfig extends {\n  today extends date;\n}\n")["today"]
    assert re.fullmatch(r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \S+ \d{4}", today), today


def test_ref_function() -> None:
    cfg = run(
        FUNCTIONS
        + 'sfConfig extends {\n  v 5;\n  a extends ref { reference "v"; }\n'
        + '  b extends ref { reference "PARENT:v"; lazy true; }\n'
        + '  c extends ref { reference "nosuch"; returnNULLOnException; }\n}\n'
    )
    assert cfg["a"] == 5
    assert isinstance(cfg["b"], Reference) and cfg["b"].lazy
    assert cfg["c"] is NULL
    error = fails(FUNCTIONS + 'sfConfig extends {\n  a extends ref { reference "nosuch"; }\n}\n')
    assert "Ref" in error.message and "nosuch" in error.message


def test_system_and_set() -> None:
    cfg = run(
        FUNCTIONS
        + "sfConfig extends {\n  s extends System { system 5; }\n"
        + "  set extends Set { setSize 3; setElem extends { a 1; } }\n}\n"
    )
    assert cfg["s"] == 5
    assert list(cfg["set"].attributes) == ["elem0", "elem1", "elem2"]
    assert cfg["set"]["elem2"]["a"] == 1


def test_userinput_without_a_terminal_takes_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("typed\n"))
    cfg = run(
        FUNCTIONS
        + 'sfConfig extends {\n  name extends userinput { prompt "name?"; default "bob"; }\n}\n'
    )
    assert cfg["name"] == "bob"
    error = fails(
        FUNCTIONS + 'sfConfig extends {\n  name extends userinput { prompt "name?"; }\n}\n'
    )
    assert error.phase == "link" and "default" in error.message


def test_userinput_reads_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("alice\n"))
    cfg = run(FUNCTIONS + 'sfConfig extends {\n  name extends userinput { prompt "name?"; }\n}\n')
    assert cfg["name"] == "alice"


def test_assertion_and_schema_descriptions_become_asserts() -> None:
    cfg = run(
        '#include "org/smartfrog/components.sf"\n'
        "sfConfig extends {\n  port 1;\n  a extends Assertions { ok (port > 0); }\n"
        "  s extends Schema { port extends Integer; }\n}\n"
    )
    assert isinstance(cfg["a"], AssertReference) and isinstance(cfg["s"], AssertReference)
