"""The link phase: eager references, sharing, lazy propagation, TBD, cycles, error reports."""

from __future__ import annotations

import time

import pytest

from sfpy.language import parse_text
from sfpy.language.errors import DescriptionError
from sfpy.language.functions import reset_state
from sfpy.language.model import (
    NULL,
    ApplyReference,
    ComponentDescription,
    Reference,
    RefPart,
)
from sfpy.language.resolve import resolve


def run(text: str) -> ComponentDescription:
    return resolve(parse_text(text, "test.sf"))


def fails(text: str) -> DescriptionError:
    with pytest.raises(DescriptionError) as caught:
        run(text)
    return caught.value


def ref(*names: str, lazy: bool = False) -> Reference:
    parts = [RefPart("ATTRIB" if i == 0 else "HERE", n) for i, n in enumerate(names)]
    return Reference(parts, lazy=lazy)


def test_references_are_replaced_by_their_values() -> None:
    cfg = run(
        "top 5;\nsfConfig extends {\n  a 1;\n  b a;\n  c ROOT:top;\n  d top;\n  e THIS:a;\n}\n"
    )
    assert [cfg[k] for k in "abcde"] == [1, 1, 5, 5, 1]


def test_link_chaining_continues_inside_the_linked_value() -> None:
    cfg = run(
        "sfConfig extends {\n  x extends { a 1; w extends { b 7; } }\n  y x;\n  z y:w:b;\n}\n"
    )
    assert cfg["z"] == 7


def test_attrib_moves_up_when_the_rest_fails() -> None:
    cfg = run("a extends { b 1; }\nsfConfig extends {\n  a extends {}\n  c a:b;\n}\n")
    assert cfg["c"] == 1


def test_link_to_a_description_resolves_it_where_it_was_written() -> None:
    cfg = run(
        "here 1;\nFoo extends { v here; }\nsfConfig extends {\n  here 2;\n  y Foo;\n  x extends Foo;\n}\n"
    )
    assert cfg["y"]["v"] == 1
    assert cfg["x"]["v"] == 2


def test_result_shares_nothing_and_has_no_parent() -> None:
    cfg = run("sfConfig extends {\n  a extends { v 1; }\n  b a;\n}\n")
    assert cfg.parent is None
    assert cfg["a"] is not cfg["b"] and cfg["a"] == cfg["b"]
    assert cfg["b"].parent is cfg


def test_parent_inside_an_operator_is_the_holder() -> None:
    cfg = run("sfConfig extends {\n  x 1;\n  y (PARENT:x + 1);\n}\n")
    assert cfg["y"] == 2


def test_lazy_reference_stays() -> None:
    cfg = run("sfConfig extends {\n  a LAZY b;\n  b 1;\n}\n")
    assert cfg["a"] == ref("b", lazy=True)


def test_laziness_propagates_to_links_functions_and_vectors() -> None:
    cfg = run(
        "sfConfig extends {\n"
        "  y LAZY x0;\n"
        "  e y;\n"
        "  f (y + 1);\n"
        "  v [1, y];\n"
        "  h extends { k y; }\n"
        "}\n"
    )
    assert cfg["e"] == ref("y", lazy=True)
    assert isinstance(cfg["f"], ApplyReference) and cfg["f"].lazy
    vector = cfg["v"]
    assert isinstance(vector, ApplyReference) and vector.lazy
    values = [v for k, v in vector.description.attributes.items() if k != "sfFunctionClass"]
    assert values == [1, ref("y", lazy=True)]
    assert cfg["h"]["k"] == ref("y", lazy=True)


def test_eager_parameters_are_resolved_inside_a_lazy_application() -> None:
    cfg = run(
        'values extends { a "a"; c "c"; }\n'
        'sfConfig extends {\n  p "value";\n  handlers [values:a, LAZY p, values:c];\n}\n'
    )
    body = cfg["handlers"].description.attributes
    assert list(body.values()) == [
        "org.smartfrog.sfcore.languages.sf.functions.Vector",
        "a",
        ref("p", lazy=True),
        "c",
    ]


def test_function_results_are_values_evaluated_once_per_place() -> None:
    reset_state()
    cfg = run(
        '#include "org/smartfrog/functions.sf"\nsfConfig extends {\n  x extends next;\n  y extends x;\n  z x;\n}\n'
    )
    assert (cfg["x"], cfg["y"], cfg["z"]) == (0, 1, 0)


def test_optional_reference_defaults() -> None:
    cfg = run(
        "sfConfig extends {\n  a OPTIONAL (99) nosuch;\n  b OPTIONAL nosuch2;\n  c OPTIONAL (1) d;\n  d 5;\n}\n"
    )
    assert (cfg["a"], cfg["b"], cfg["c"]) == (99, NULL, 5)


def test_data_reference_is_the_value() -> None:
    cfg = run("sfConfig extends {\n  d DATA a:b;\n}\n")
    assert cfg["d"] == Reference([RefPart("ATTRIB", "a"), RefPart("HERE", "b")], data=True)


def test_sflocal_is_visible_only_to_a_first_part() -> None:
    cfg = run(
        "sfConfig extends {\n  one extends { [sfLocal] foo 1; bar foo; inner extends { baz foo; } }\n}\n"
    )
    assert cfg["one"]["bar"] == 1 and cfg["one"]["inner"]["baz"] == 1
    assert (
        fails("sfConfig extends {\n  one extends { [sfLocal] foo 1; }\n  x one:foo;\n}\n").phase
        == "link"
    )


def test_sftemp_attributes_are_dropped_after_use() -> None:
    cfg = run("sfConfig extends {\n  [sfTemp] t 1;\n  u t;\n}\n")
    assert list(cfg.attributes.items()) == [("u", 1)]


def test_tbd_in_sfconfig_is_an_error_but_fine_in_templates() -> None:
    error = fails("T extends { port TBD; }\nsfConfig extends T;\n")
    assert error.phase == "link" and "still TBD" in error.message and error.path == "sfConfig:port"
    assert run("T extends { port TBD; }\nsfConfig extends T { port 80; }\n")["port"] == 80


def test_unresolved_reference_error_says_where_and_suggests() -> None:
    error = fails("sfConfig extends {\n  disk 1;\n  size dsik;\n}\n")
    assert error.phase == "link"
    assert error.path == "sfConfig:size"
    assert error.position is not None and (error.position.line, error.position.column) == (3, 8)
    assert "dsik" in error.message and "did you mean 'disk'?" in error.message
    assert "during link resolution" in error.render()


def test_independent_link_errors_come_together() -> None:
    error = fails("sfConfig extends {\n  a nosuch1;\n  b 1;\n  c nosuch2;\n}\n")
    assert [e.path for e in error.all()] == ["sfConfig:a", "sfConfig:c"]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("sfConfig extends {\n  link link;\n}\n", ["sfConfig:link"]),
        ("sfConfig extends {\n  link PARENT:sfConfig:link;\n}\n", ["sfConfig:link"]),
        (
            "sfConfig extends {\n  component1 extends { attr ATTRIB component2:attr; }\n"
            "  component2 extends { attr ATTRIB component1:attr; }\n}\n",
            ["component1:attr", "component2:attr"],
        ),
        (
            "sfConfig extends {\n  a extends { x b; }\n  b extends { y a; }\n}\n",
            ["sfConfig:a", "infinite"],
        ),
        ("sfConfig extends {\n  me THIS;\n}\n", ["sfConfig:me"]),
        ("sfConfig extends {\n  a (b + 1);\n  b (a + 1);\n}\n", ["sfConfig:a", "sfConfig:b"]),
    ],
)
def test_cycles_are_one_error_with_their_path(text: str, needles: list[str]) -> None:
    started = time.monotonic()
    error = fails(text)
    assert time.monotonic() - started < 2
    assert error.phase == "link" and "cyclic" in error.message
    assert error.all() == [error], error.render()
    for needle in needles:
        assert needle in error.message


def test_long_link_chain_resolves_in_linear_time() -> None:
    body = "".join(f"  a{n} a{n + 1};\n" for n in range(1500)) + "  a1500 42;\n"
    started = time.monotonic()
    cfg = run("sfConfig extends {\n" + body + "}\n")
    assert time.monotonic() - started < 5
    assert cfg["a0"] == 42 and cfg["a1499"] == 42


def test_a_five_thousand_link_chain_resolves() -> None:
    """Long chains are resolved a bounded number of steps deep at a time (no recursion limit)."""
    root = ComponentDescription()
    cfg = ComponentDescription()
    root.put("sfConfig", cfg)
    for n in range(5000):
        cfg.put(f"a{n}", ref(f"a{n + 1}"))
    cfg.put("a5000", 42)
    result = resolve(root)
    assert all(result.attributes[f"a{n}"] == 42 for n in range(5001))


def test_deep_nesting_is_resolved_without_recursion_errors() -> None:
    root = ComponentDescription()
    root.put("top", 1)
    current = ComponentDescription()
    root.put("sfConfig", current)
    for _ in range(3000):
        inner = ComponentDescription()
        current.put("v", ref("top"))
        current.put("x", inner)
        current = inner
    cfg = resolve(root)
    node = cfg
    for _ in range(3000):
        assert node["v"] == 1
        node = node["x"]


def test_eager_host_reference_needs_run_time() -> None:
    error = fails("sfConfig extends {\n  h HOST localhost:rootProcess;\n}\n")
    assert error.phase == "link" and "run time" in error.message
    cfg = run("sfConfig extends {\n  h LAZY HOST localhost:rootProcess;\n}\n")
    assert isinstance(cfg["h"], Reference) and cfg["h"].lazy


def test_links_inside_data_descriptions_are_resolved() -> None:
    cfg = run("sfConfig extends {\n  a 1;\n  d extends DATA { b a; }\n}\n")
    assert cfg["d"]["b"] == 1 and cfg["d"].eager is False


@pytest.mark.parametrize(
    "text",
    [
        "sfConfig extends {\n  x nowhere;\n  y x;\n  z y;\n}\n",
        "sfConfig extends {\n  z y;\n  y x;\n  x nowhere;\n}\n",
        "sfConfig extends {\n  x (nowhere + 1);\n  y x;\n  v [x, 2];\n}\n",
    ],
)
def test_a_broken_link_is_reported_once_where_it_is_written(text: str) -> None:
    error = fails(text)
    assert error.all() == [error], error.render()
    assert "nowhere" in error.message
    assert error.path is not None and error.path.startswith("sfConfig:x")


def test_optional_link_to_a_broken_attribute_takes_its_default_and_the_break_is_reported() -> None:
    error = fails("sfConfig extends {\n  a OPTIONAL (1) b;\n  b nosuch;\n}\n")
    assert error.all() == [error] and error.path == "sfConfig:b"
