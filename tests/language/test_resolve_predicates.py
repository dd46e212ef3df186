"""Assertions and schemas: when they are checked, what they report, what stays for run time."""

from __future__ import annotations

import pytest

from sfpy.language import parse_text
from sfpy.language.errors import DescriptionError
from sfpy.language.model import AssertReference, ComponentDescription
from sfpy.language.predicates import class_matches
from sfpy.language.resolve import resolve
from sfpy.language.unparse import to_sf

COMPONENTS = '#include "org/smartfrog/components.sf"\n'
FOO_SCHEMA = COMPONENTS + (
    "fooSchema extends Schema {\n"
    '  y extends String { description "string attribute to test types and presence"; }\n'
    '  z extends Integer { description "integer attribute to test types and presence"; }\n'
    '  x extends OptionalInteger { description "optional integer attribute"; }\n'
    "}\n"
)


def run(text: str) -> ComponentDescription:
    return resolve(parse_text(text, "test.sf"))


def fails(text: str) -> DescriptionError:
    with pytest.raises(DescriptionError) as caught:
        run(text)
    return caught.value


def test_passing_dynamic_assertion_stays_for_run_time() -> None:
    cfg = run(
        COMPONENTS
        + "sfConfig extends {\n  port 80;\n  a extends Assertions { portValid (port > 0); }\n}\n"
    )
    kept = cfg["a"]
    assert isinstance(kept, AssertReference) and kept.lazy
    assert list(kept.description.attributes) == ["sfFunctionClass", "portValid"]


def test_failing_assertion_names_what_failed() -> None:
    error = fails(
        COMPONENTS
        + "sfConfig extends {\n  port -1;\n  a extends Assertions { portValid (port > 0); named true; }\n}\n"
    )
    assert error.phase == "link"
    assert "assertions have failed for: [portValid: evaluates to false]" in error.message
    assert error.path == "sfConfig:a"


def test_non_boolean_assertion_is_a_failure() -> None:
    error = fails(COMPONENTS + 'sfConfig extends {\n  a extends Assertions { odd "yes"; }\n}\n')
    assert "odd: has non-boolean class java.lang.String" in error.message


def test_sf_attributes_of_an_assertion_are_not_checked() -> None:
    cfg = run(
        COMPONENTS
        + 'sfConfig extends {\n  a extends Assertions { sfNote "not a boolean"; ok true; }\n}\n'
    )
    assert isinstance(cfg["a"], AssertReference)


def test_static_assertion_vanishes_once_checked() -> None:
    cfg = run(
        COMPONENTS
        + 'sfConfig extends {\n  v 1;\n  a extends Assertions { sfAssertionPhase "static"; ok (v == 1); }\n}\n'
    )
    assert list(cfg.attributes) == ["v"]


def test_static_assertion_cannot_use_lazy_values() -> None:
    error = fails(
        COMPONENTS
        + 'sfConfig extends {\n  v LAZY w;\n  w 1;\n  a extends Assertions { sfAssertionPhase "static"; ok v; }\n}\n'
    )
    assert "Static assertion cannot evaluate due to LAZY attributes" in error.message


def test_static_lazy_assertion_with_lazy_values_is_dropped() -> None:
    cfg = run(
        COMPONENTS
        + 'sfConfig extends {\n  v LAZY w;\n  w 1;\n  a extends Assertions { sfAssertionPhase "staticLazy"; ok v; }\n}\n'
    )
    assert "a" not in cfg


def test_dynamic_assertion_with_lazy_values_is_kept_unchecked() -> None:
    cfg = run(
        COMPONENTS
        + "sfConfig extends {\n  v LAZY w;\n  w false;\n  a extends Assertions { ok v; }\n}\n"
    )
    assert isinstance(cfg["a"], AssertReference) and cfg["a"].lazy


def test_invalid_assertion_phase() -> None:
    error = fails(
        COMPONENTS
        + 'sfConfig extends {\n  a extends Assertions { sfAssertionPhase "later"; ok true; }\n}\n'
    )
    assert "sfAssertionPhase" in error.message


def test_schema_wrong_class_message() -> None:
    error = fails(
        FOO_SCHEMA + 'sfConfig extends {\n  schema extends fooSchema;\n  y "hello";\n  z "23";\n}\n'
    )
    assert error.message == (
        "error in schema: wrong class found for attribute 'z (integer attribute to test types and "
        "presence)', expected: java.lang.Integer, found: java.lang.String"
    )
    assert error.phase == "link" and error.path == "sfConfig:schema"


def test_schema_missing_compulsory_attribute() -> None:
    error = fails(FOO_SCHEMA + "sfConfig extends {\n  schema extends fooSchema;\n  z 23;\n}\n")
    assert error.message == (
        "error in schema: non-optional attribute 'y (string attribute to test types and presence)' is missing"
    )


def test_schema_lazy_binding() -> None:
    base = (
        FOO_SCHEMA
        + 'sfConfig extends {\n  schema extends fooSchema;\n  schema:a extends String { binding "lazy"; }\n  y "hello";\n  z 23;\n'
    )
    cfg = run(base + "  a LAZY y;\n}\n")
    assert isinstance(cfg["schema"], AssertReference)
    error = fails(base + "  a y;\n}\n")
    assert error.message == "error in schema: non-reference value found for lazy attribute 'a'"


def test_schema_eager_binding_refuses_lazy_values() -> None:
    error = fails(
        COMPONENTS
        + 'S extends Schema { a extends String { binding "eager"; } }\n'
        + 'sfConfig extends {\n  s extends S;\n  a LAZY b;\n  b "x";\n}\n'
    )
    assert "reference value for non-reference eager attribute 'a'" in error.message


def test_schema_optional_and_multiple_classes() -> None:
    cfg = run(
        COMPONENTS
        + "S extends Schema { d extends Double; l extends OptionalLong; c extends OptionalCD; v extends OptionalVector; }\n"
        + "sfConfig extends {\n  s extends S;\n  d 1;\n  c extends { q 1; }\n  v [|1|];\n}\n"
    )
    text = to_sf(cfg)
    assert "s LAZY ASSERT {" in text
    assert 'name "d";' in text and "sfAssertionPhase" not in text


def test_schema_of_prim_is_static_and_vanishes() -> None:
    cfg = run(COMPONENTS + 'sfConfig extends Prim {\n  sfClass "x.Y";\n}\n')
    assert "sfPrimSchema" not in cfg
    error = fails(COMPONENTS + "sfConfig extends Prim {\n  sfClass 42;\n}\n")
    assert (
        "wrong class found for attribute 'sfClass (class that implements component)'"
        in error.message
    )


def test_schema_entry_must_be_a_schema_element() -> None:
    error = fails(COMPONENTS + "sfConfig extends {\n  s extends Schema { a 1; }\n}\n")
    assert error.phase == "function" and "Element a of schema" in error.message


def test_schema_with_unknown_class_name() -> None:
    error = fails(
        COMPONENTS + 'S extends Schema { a extends Compulsory { class "com.example.Nope"; } }\n'
        "sfConfig extends {\n  s extends S;\n  a 1;\n}\n"
    )
    assert "error checking attribute 'a'" in error.message and "com.example.Nope" in error.message


def test_dynamic_schema_keeps_its_entries_in_smartfrog_order() -> None:
    cfg = run(
        COMPONENTS
        + "S extends Schema { a extends Integer; }\nsfConfig extends {\n  s extends S;\n  a 1;\n}\n"
    )
    body = cfg["s"].description
    assert list(body.attributes) == ["a", "sfFunctionClass"]
    assert list(body["a"].description.attributes) == [
        "sfFunctionClass",
        "name",
        "optional",
        "binding",
        "class",
    ]
    assert body["a"].description["name"] == "a"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("java.lang.Integer", 1, True),
        ("java.lang.Integer", True, False),
        ("java.lang.Number", 1.5, True),
        ("java.lang.Object", None, True),
        ("java.util.Vector", [1], True),
        (
            "org.smartfrog.sfcore.componentdescription.ComponentDescription",
            ComponentDescription(),
            True,
        ),
        ("anyClass", "x", True),
    ],
)
def test_class_matches(name: str, value: object, expected: bool) -> None:
    assert class_matches(name, value) is expected
