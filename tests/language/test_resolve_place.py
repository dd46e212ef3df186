"""The place phase: ``a:b:c value;`` placement, after typing, multi-pass, HERE-only."""

from __future__ import annotations

import pytest

from sfpy.language import parse_text
from sfpy.language.errors import DescriptionError
from sfpy.language.model import ComponentDescription, Reference
from sfpy.language.resolve import resolve


def run(text: str) -> ComponentDescription:
    return resolve(parse_text(text, "test.sf"))


def fails(text: str) -> DescriptionError:
    with pytest.raises(DescriptionError) as caught:
        run(text)
    return caught.value


def test_value_is_placed_and_the_placement_key_removed() -> None:
    cfg = run("sfConfig extends {\n  a extends { b extends { x 1; } }\n  a:b:c 42;\n}\n")
    assert list(cfg["a"]["b"].attributes.items()) == [("x", 1), ("c", 42)]
    assert not any(isinstance(key, Reference) for key in cfg.attributes)
    assert list(cfg.attributes) == ["a"]


def test_placement_overrides_in_place() -> None:
    cfg = run("sfConfig extends {\n  a extends { x 1; y 2; }\n  a:x 10;\n}\n")
    assert list(cfg["a"].attributes.items()) == [("x", 10), ("y", 2)]


def test_placing_into_a_template_does_not_reach_earlier_copies() -> None:
    cfg = run(
        "foo extends { bar extends { b 1; } }\nfoo:bar:a 42;\nsfConfig extends { f extends foo; }\n"
    )
    assert "a" not in cfg["f"]["bar"]


def test_placements_wait_for_their_destination() -> None:
    cfg = run(
        "sfConfig extends {\n  foo:bar:a 42;\n  foo:bar extends { b 34; }\n  foo extends {}\n}\n"
    )
    assert list(cfg["foo"]["bar"].attributes.items()) == [("b", 34), ("a", 42)]


def test_later_placement_of_the_same_key_wins() -> None:
    cfg = run("sfConfig extends {\n  t extends {}\n  t:a 2;\n  t:a 3;\n}\n")
    assert cfg["t"]["a"] == 3


def test_links_in_placed_values_resolve_where_they_land() -> None:
    cfg = run("sfConfig extends {\n  data 1;\n  foo2 extends { data 2; }\n  foo2:x data;\n}\n")
    assert cfg["foo2"]["x"] == 2


def test_placed_description_is_reparented() -> None:
    cfg = run("sfConfig extends {\n  q 5;\n  a extends { q 7; }\n  a:b extends { c q; }\n}\n")
    assert cfg["a"]["b"]["c"] == 7


def test_placement_keeps_its_tags() -> None:
    cfg = run("sfConfig extends {\n  a extends {}\n  [t1] a:b 1;\n}\n")
    assert cfg["a"].tags["b"] == {"t1"}


def test_placement_is_relative_to_where_it_is_written() -> None:
    error = fails("sfConfig extends {\n  A extends {\n    sfConfig:A:x true;\n  }\n}\n")
    assert error.phase == "place"
    assert "'sfConfig:A:x'" in error.message and "no attribute 'sfConfig'" in error.message
    assert error.position is not None and error.position.line == 3
    assert error.path == "sfConfig:A"


def test_unplaceable_attributes_are_all_reported() -> None:
    error = fails("sfConfig extends {\n  P:z 1;\n  Q:z 2;\n}\n")
    assert [e.phase for e in error.all()] == ["place", "place"]
    assert "'P:z'" in error.message and "'Q:z'" in error.more[0].message


def test_sffinal_attribute_cannot_be_replaced_by_placement() -> None:
    error = fails("sfConfig extends {\n  a extends { [sfFinal] b 1; }\n  a:b 2;\n}\n")
    assert error.phase == "place" and "sfFinal" in error.message


def test_final_description_can_still_receive_inner_placements() -> None:
    cfg = run("sfConfig extends {\n  [sfFinal] a extends { b 1; }\n  a:c 2;\n}\n")
    assert list(cfg["a"].attributes.items()) == [("b", 1), ("c", 2)]


def test_placing_into_a_value_that_is_not_a_description() -> None:
    error = fails("sfConfig extends {\n  a 5;\n  a:b 2;\n}\n")
    assert error.phase == "place"
    assert "not a component description" in error.message


def test_placement_into_a_schema_before_the_function_phase() -> None:
    cfg = run(
        '#include "org/smartfrog/components.sf"\n'
        "S extends Schema { x extends Integer; }\n"
        "sfConfig extends {\n  s extends S;\n  s:y extends OptionalString;\n  x 1;\n}\n"
    )
    names = list(cfg["s"].description.attributes)
    assert names[:2] == ["x", "y"]
