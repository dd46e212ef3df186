"""The type phase: extends, overlay order, tags, sfFinal/sfOverride, cycles, limits."""

from __future__ import annotations

import importlib
import time

import pytest

from sfpy.language import parse_text
from sfpy.language.errors import DescriptionError
from sfpy.language.model import ComponentDescription, Reference, RefPart
from sfpy.language.resolve import resolve

resolve_module = importlib.import_module("sfpy.language.resolve")


def run(text: str) -> ComponentDescription:
    return resolve(parse_text(text, "test.sf"))


def fails(text: str) -> DescriptionError:
    with pytest.raises(DescriptionError) as caught:
        run(text)
    return caught.value


def test_prototypes_overlay_left_to_right_and_body_last() -> None:
    cfg = run(
        "A extends { a 1; b 2; }\nB extends { b 3; c 4; }\nsfConfig extends A, B { c 5; d 6; }\n"
    )
    assert list(cfg.attributes.items()) == [("a", 1), ("b", 3), ("c", 5), ("d", 6)]


def test_overridden_attributes_keep_their_first_position() -> None:
    cfg = run("T extends { x 1; y 2; }\nsfConfig extends T { y 3; x 4; z 5; }\n")
    assert list(cfg.attributes.items()) == [("x", 4), ("y", 3), ("z", 5)]


def test_nested_descriptions_are_replaced_not_merged() -> None:
    cfg = run(
        "T extends { inner extends { p 10; q 20; } }\n"
        "sfConfig extends T { inner extends { q 30; } }\n"
    )
    assert list(cfg["inner"].attributes.items()) == [("q", 30)]


def test_tags_are_united_through_extends() -> None:
    cfg = run("T extends { [t1] a 1; }\nsfConfig extends T { [t2] a 2; }\n")
    assert cfg["a"] == 2
    assert cfg.tags["a"] == {"t1", "t2"}


def test_each_extension_gets_its_own_copy() -> None:
    cfg = run(
        "T extends { inner extends { v 1; } }\nsfConfig extends { a extends T; b extends T; }\n"
    )
    assert cfg["a"]["inner"] is not cfg["b"]["inner"]
    assert cfg["a"]["inner"]["v"] == 1 and cfg["b"]["inner"]["v"] == 1


def test_prototype_reference_starts_at_the_extending_description() -> None:
    cfg = run("sfConfig extends {\n  foo extends { v 1; }\n  x extends PARENT:foo;\n}\n")
    assert cfg["x"]["v"] == 1


def test_nearest_prototype_wins() -> None:
    cfg = run(
        "foo extends { v 1; }\nsfConfig extends {\n  foo extends { v 2; }\n  x extends foo;\n}\n"
    )
    assert cfg["x"]["v"] == 2


def test_prototype_resolved_after_the_body_was_merged() -> None:
    """SmartFrog merges ``extends T {body}`` from the right: T is looked up with the body in place."""
    cfg = run("T extends { w 0; }\nsfConfig extends T { T extends { z 1; } }\n")
    assert list(cfg.attributes) == ["z", "T"]


def test_chained_templates() -> None:
    cfg = run(
        "A extends { a 1; }\nB extends A { b 2; }\nC extends B { c 3; a 10; }\nsfConfig extends C;\n"
    )
    assert list(cfg.attributes.items()) == [("a", 10), ("b", 2), ("c", 3)]


def test_data_description_stays_data() -> None:
    cfg = run("sfConfig extends { d extends DATA { x 1; } l extends LAZY { y 2; } }\n")
    assert cfg["d"].eager is False and cfg["l"].eager is False
    assert cfg["d"]["x"] == 1


def test_templates_outside_sfconfig_are_type_resolved_too() -> None:
    error = fails("Bad extends Nope;\nsfConfig extends { a 1; }\n")
    assert error.phase == "type"
    assert "Nope" in error.message
    assert error.position is not None and (error.position.line, error.position.column) == (1, 13)
    assert error.path == "Bad"


def test_unresolved_prototype_error_suggests_a_name() -> None:
    error = fails("Prim extends { a 1; }\nsfConfig extends Prin;\n")
    assert "did you mean 'Prim'?" in error.message


def test_a_broken_template_is_reported_once_not_in_every_user() -> None:
    error = fails(
        "A extends Missing;\nB extends A;\nsfConfig extends { x extends B; y extends A; }\n"
    )
    assert error.all() == [error]
    assert "Missing" in error.message


def test_independent_type_errors_are_all_reported() -> None:
    error = fails("A extends NoSuch1;\nB extends NoSuch2;\nsfConfig extends {}\n")
    assert [e.phase for e in error.all()] == ["type", "type"]
    assert "NoSuch1" in error.message and "NoSuch2" in error.more[0].message


def test_extending_a_value_that_is_not_a_description() -> None:
    error = fails("p 2;\nsfConfig extends { x extends p; }\n")
    assert error.phase == "type"
    assert "not a component description" in error.message and "java.lang.Integer" in error.message


def test_sffinal_may_not_be_overridden() -> None:
    error = fails("T extends { [sfFinal] port 80; }\nsfConfig extends T { port 81; }\n")
    assert error.phase == "type"
    assert "sfFinal" in error.message and "port" in error.message
    assert error.position is not None and error.position.line == 2


def test_sffinal_may_be_inherited_unchanged() -> None:
    cfg = run("T extends { [sfFinal] port 80; }\nsfConfig extends T { other 1; }\n")
    assert cfg["port"] == 80 and cfg.tags["port"] == {"sfFinal"}


def test_sfoverride_must_override_something() -> None:
    error = fails("T extends { a 1; }\nsfConfig extends T { [sfOverride] b 2; }\n")
    assert error.phase == "type" and "sfOverride" in error.message and "'b'" in error.message
    cfg = run("T extends { a 1; }\nsfConfig extends T { [sfOverride] a 2; }\n")
    assert cfg["a"] == 2


@pytest.mark.parametrize(
    "text",
    [
        "a extends b;\nb extends a;\nsfConfig extends a;\n",
        "sfConfig extends {\n  link extends link;\n}\n",
        "Recursion extends { recursion extends Recursion; }\nsfConfig extends Recursion;\n",
        "sfConfig extends { u extends sfConfig:u { v 1; } }\n",
    ],
)
def test_cyclic_extends_is_an_error_with_its_path(text: str) -> None:
    started = time.monotonic()
    error = fails(text)
    assert time.monotonic() - started < 2
    assert error.phase == "type"
    assert error.message.startswith("cyclic extends: ")
    assert error.all() == [error]


def test_cycle_message_names_both_prototypes() -> None:
    error = fails("a extends b;\nb extends a;\nsfConfig extends { x 1; }\n")
    assert "a extends b" in error.message and "b extends a" in error.message


def test_long_prototype_chain_resolves() -> None:
    text = (
        "".join(f"t{n} extends t{n + 1};\n" for n in range(300))
        + "t300 extends { x 1; }\nsfConfig extends t0;\n"
    )
    assert list(run(text).attributes.items()) == [("x", 1)]


def test_a_three_thousand_prototype_chain_resolves() -> None:
    root = ComponentDescription()
    for n in range(3000):  # t0 extends t1 extends t2 …: each needs the next one resolved first
        cd = ComponentDescription()
        cd.prototypes = [Reference((RefPart("ATTRIB", f"t{n + 1}"),))]
        root.put(f"t{n}", cd)
    last = ComponentDescription()
    last.put("x", 1)
    root.put("t3000", last)
    cfg = ComponentDescription()
    cfg.prototypes = [Reference((RefPart("ATTRIB", "t0"),))]
    root.put("sfConfig", cfg)
    assert resolve(root).attributes == {"x": 1}


def test_extends_amplification_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve_module, "MAX_COPIED_ATTRIBUTES", 10_000)
    lines = ["L0 extends DATA { " + " ".join(f"x{i} {i};" for i in range(10)) + " }"]
    for level in range(1, 9):
        lines.append(
            f"L{level} extends DATA {{ "
            + " ".join(f"c{i} extends L{level - 1};" for i in range(10))
            + " }"
        )
    lines.append("sfConfig extends L8;")
    started = time.monotonic()
    error = fails("\n".join(lines) + "\n")
    assert time.monotonic() - started < 2
    assert error.phase == "type" and "too large" in error.message


def test_apply_bodies_are_type_resolved() -> None:
    cfg = run(
        "T extends { v 2; }\n"
        'sfConfig extends { x APPLY { sfFunctionClass "org.smartfrog.sfcore.languages.sf.functions.Vector"; '
        "b extends T; } }\n"
    )
    assert cfg["x"][0]["v"] == 2


def test_type_resolution_is_idempotent() -> None:
    root = parse_text("T extends { a 1; }\nsfConfig extends T { b 2; }\n", "test.sf")
    phase = resolve_module._TypePhase(root)
    phase.run()
    first = root.copy()
    resolve_module._TypePhase(root).run()
    assert root == first
