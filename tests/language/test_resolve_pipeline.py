"""The pipeline (phaseList, sfConfig, user phases) and reference parts with outside values."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from sfpy.language import parse_text
from sfpy.language.errors import DescriptionError
from sfpy.language.model import (
    ComponentDescription,
    Double,
    Long,
    Reference,
    RefPart,
)
from sfpy.language.references import (
    MISSING,
    DescriptionContext,
    LazyReferenceError,
    Resolver,
    constant_value,
    resolve_reference,
    set_property,
)
from sfpy.language.resolve import register_phase_action, resolve


def run(text: str, **kwargs: Any) -> ComponentDescription:
    return resolve(parse_text(text, "test.sf"), **kwargs)


def fails(text: str, **kwargs: Any) -> DescriptionError:
    with pytest.raises(DescriptionError) as caught:
        run(text, **kwargs)
    return caught.value


# ---- phases ------------------------------------------------------------------------------------


def test_phase_list_is_read_and_removed() -> None:
    root = run(
        'phaseList [|"type", "place", "function"|];\nT extends { a 1; }\nsfConfig extends T;\n'
    )
    # Without the sfConfig phase the result is the whole ROOT (minus phaseList).
    assert "phaseList" not in root and root["sfConfig"]["a"] == 1


def test_phase_list_must_be_a_primitive_vector() -> None:
    error = fails('phaseList ["type", "link"];\nsfConfig extends {}\n')
    assert "phaseList must be a primitive vector" in error.message
    assert error.position is not None and error.position.line == 1


def test_phases_argument_overrides_the_default() -> None:
    root = run("sfConfig extends { a b; b 1; }\n", phases=["type", "sfConfig"])
    assert isinstance(root["a"], Reference)


def test_unknown_phase_is_an_error() -> None:
    error = fails('phaseList [|"type", "lnik"|];\nsfConfig extends {}\n')
    assert "unknown phase 'lnik'" in error.message and "did you mean 'link'?" in error.message


def test_user_phase_runs_registered_actions_bottom_up() -> None:
    seen: list[str] = []

    def mark(cd: ComponentDescription, parent: ComponentDescription | None, key: Any) -> None:
        seen.append(str(key))
        cd.remove("phase.mark")
        cd.put("marked", True)

    register_phase_action("example.Mark", mark)
    cfg = run(
        'phaseList [|"type", "mark", "sfConfig", "link"|];\n'
        'M extends { phase.mark "example.Mark"; }\n'
        "sfConfig extends { outer extends M { inner extends M; } }\n"
    )
    assert cfg["outer"]["marked"] is True and cfg["outer"]["inner"]["marked"] is True
    assert seen.index("inner") < seen.index("outer")


def test_unknown_phase_action_class() -> None:
    error = fails('sfConfig extends { f extends { phase.function "com.example.Nope"; } }\n')
    assert error.phase == "function" and "com.example.Nope" in error.message


def test_missing_sfconfig_uses_smartfrogs_words() -> None:
    error = fails("Template extends { a 1; }\n")
    assert error.phase == "sfConfig"
    assert error.message.startswith("Unresolved Reference: HERE sfConfig, Reference not found")
    assert "did you mean 'sfconfig'?" in fails("sfconfig extends {}\n").message


def test_sfconfig_must_be_a_description() -> None:
    error = fails('sfConfig "hello";\n')
    assert error.message == (
        "The sfConfig attribute of a SmartFrog description must be a Component Description, "
        "found a class java.lang.String"
    )
    assert error.phase == "sfConfig"


def test_sfconfig_may_be_a_link() -> None:
    cfg = run("T extends { a 1; }\nsfConfig T;\n")
    assert cfg["a"] == 1


def test_errors_render_without_traceback() -> None:
    error = fails("sfConfig extends {\n  a nosuch;\n}\n")
    text = error.render()
    assert text.startswith("test.sf:2:5: error: unresolved reference nosuch")
    assert "Traceback" not in text


def test_big_description_resolves_quickly() -> None:
    lines = [
        "Node extends {",
        '  sfClass "x.Y";',
        "  port 80;",
        '  host "h";',
        "  size (port * 2);",
        '  name ("n" ++ host);',
        '  disk extends { path "/a"; sz 10; }',
        "}",
        "sfConfig extends {",
    ]
    for i in range(2000):
        lines += [
            f"  n{i} extends Node {{",
            f"    port {i};",
            f"    other PARENT:n{max(i - 1, 0)}:port;",
            "    flag (port > 10);",
            f"    v [port, {i}];",
            "    disk:sz 20;",
            "  }",
        ]
    lines.append("}")
    root = parse_text("\n".join(lines) + "\n", "big.sf")
    started = time.monotonic()
    cfg = resolve(root)
    assert time.monotonic() - started < 5  # about 0.5 s on a quiet machine
    assert cfg["n1999"]["size"] == 3998 and cfg["n1999"]["other"] == 1998
    assert cfg["n5"]["disk"]["sz"] == 20 and cfg["n5"]["v"] == [5, 5]


# ---- reference parts -----------------------------------------------------------------------------


def test_property_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFPY_PROPERTIES", '-Dsite=lab "-Dmotd=hello all" answer=42')
    cfg = run(
        "sfConfig extends {\n  s PROPERTY site;\n  m PROPERTY motd;\n  a IPROPERTY answer;\n  sep PROPERTY file.separator;\n}\n"
    )
    assert (cfg["s"], cfg["m"], cfg["a"], cfg["sep"]) == ("lab", "hello all", 42, "/")
    set_property("site", "override")
    try:
        assert run("sfConfig extends { s PROPERTY site; }\n")["s"] == "override"
    finally:
        set_property("site", None)


def test_missing_property_is_an_error() -> None:
    error = fails("sfConfig extends { s PROPERTY no.such.property; }\n")
    assert "system property 'no.such.property' is not set" in error.message


def test_lazy_property_stays_for_run_time() -> None:
    cfg = run('sfConfig extends { p (LAZY PROPERTY "java.home" ++ "/bin/"); }\n')
    assert cfg["p"].lazy


def test_environment_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFPY_TEST_VALUE", "17")
    cfg = run(
        "sfConfig extends { s ENVPROPERTY SFPY_TEST_VALUE; i IENVPROPERTY SFPY_TEST_VALUE; }\n"
    )
    assert cfg["s"] == "17" and cfg["i"] == 17
    monkeypatch.delenv("SFPY_TEST_VALUE")
    assert (
        "environment variable"
        in fails("sfConfig extends { s ENVPROPERTY SFPY_TEST_VALUE; }\n").message
    )


def test_constants() -> None:
    cfg = run(
        'sfConfig extends {\n  i CONSTANT "java.lang.Integer.MAX_VALUE";\n  l CONSTANT "java.lang.Long.MIN_VALUE";\n'
        '  t CONSTANT "java.lang.Boolean.TRUE";\n  s CONSTANT "java.io.File.separator";\n}\n'
    )
    assert cfg["i"] == 2147483647 and type(cfg["i"]) is int
    assert cfg["l"] == Long(-(2**63)) and type(cfg["l"]) is Long
    assert cfg["t"] is True and cfg["s"] == "/"
    assert type(constant_value("java.lang.Math.PI")) is Double and math.isclose(
        constant_value("java.lang.Math.PI"), math.pi
    )


def test_unknown_constants_fail_as_smartfrog_does() -> None:
    assert fails('sfConfig extends { c CONSTANT "no.such.class"; }\n').message.startswith(
        "Class not found: no.such"
    )
    assert fails('sfConfig extends { c CONSTANT "java.lang.Integer.NOPE"; }\n').message.startswith(
        "Field not found: NOPE"
    )
    cfg = run('sfConfig extends { c LAZY CONSTANT "no.such.class"; }\n')
    assert cfg["c"].lazy


# ---- the resolver as the engine will use it --------------------------------------------------------


class _Node:
    """A stand-in for a live component: attributes, a parent, nothing else."""

    def __init__(self, parent: _Node | None = None, **attributes: Any) -> None:
        self.parent = parent
        self.attributes = attributes


class _LiveContext(DescriptionContext):
    def lookup(self, node: Any, name: Any, first: bool) -> Any:
        if isinstance(node, _Node):
            return node.attributes.get(name, MISSING)
        return super().lookup(node, name, first)

    def parent(self, node: Any) -> Any:
        return node.parent

    def is_node(self, value: Any) -> bool:
        return isinstance(value, _Node) or super().is_node(value)

    def names(self, node: Any) -> Any:
        return node.attributes.keys() if isinstance(node, _Node) else super().names(node)


def test_runtime_resolution_follows_lazy_references_through_a_custom_tree() -> None:
    root = _Node()
    app = _Node(root, port=80)
    child = _Node(app, link=Reference((RefPart("ATTRIB", "port"),), lazy=True))
    root.attributes["app"] = app
    app.attributes["child"] = child
    lazy = Reference((RefPart("HERE", "link"),), lazy=True)
    with pytest.raises(LazyReferenceError):
        Resolver(_LiveContext()).resolve(lazy, child)
    assert Resolver(_LiveContext(), runtime=True).resolve(lazy, child) == 80
    app.attributes["port"] = 81  # run time: re-read every time
    assert resolve_reference(lazy, child, _LiveContext(), runtime=True) == 81
    assert (
        resolve_reference(
            Reference((RefPart("ROOT"), RefPart("HERE", "app"), RefPart("HERE", "port"))),
            child,
            _LiveContext(),
        )
        == 81
    )


def test_runtime_function_evaluation_leaves_the_application_unchanged() -> None:
    cfg = run("sfConfig extends {\n  w LAZY v;\n  v 2;\n  f (w + 1);\n}\n")
    apply = cfg["f"]
    resolver = Resolver(runtime=True)
    assert resolver.evaluate(apply, cfg) == 3
    cfg.attributes["v"] = 10
    assert Resolver(runtime=True).evaluate(apply, cfg) == 11
    assert apply.description["unique" + str(_first_unique(apply))].lazy


def _first_unique(apply: Any) -> int:
    for key in apply.description.attributes:
        if key.startswith("unique"):
            return int(key[6:])
    raise AssertionError("no parameter")


def test_runtime_assertion_check() -> None:
    cfg = run(
        '#include "org/smartfrog/components.sf"\nsfConfig extends {\n  w LAZY v;\n  v 1;\n  a extends Assertions { ok (w > 0); }\n}\n'
    )
    assertion = cfg["a"]
    assert assertion.lazy
    assert Resolver(runtime=True).evaluate_assertion(assertion, cfg) is assertion
    cfg.attributes["v"] = 0
    with pytest.raises(DescriptionError) as caught:
        Resolver(runtime=True).evaluate_assertion(assertion, cfg)
    assert "ok: evaluates to false" in caught.value.message
