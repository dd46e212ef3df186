"""The engine's parts implement named contracts, and no component class can shadow them."""

from __future__ import annotations

import ast
import pathlib

import pytest

from sfpy.engine import Compound, Prim, Process, TerminationRecord, register
from sfpy.engine.contracts import ComponentParent, LifecycleChild, Navigable, ProcessServices
from sfpy.language import parse_text, resolve

ENGINE = pathlib.Path(__file__).resolve().parents[2] / "sfpy" / "engine"


def test_prim_compound_and_process_implement_their_contracts() -> None:
    process = Process("contracts")
    try:
        assert isinstance(Prim(), LifecycleChild)
        assert isinstance(Compound(), ComponentParent)
        assert isinstance(Compound(), LifecycleChild)
        assert isinstance(process, ProcessServices)
        assert isinstance(process, Navigable)
    finally:
        process.shutdown(5)


@pytest.mark.parametrize("name", ["sf_terminate_now", "_sf_state", "sf_fail", "log", "schedule"])
def test_a_component_class_cannot_take_one_of_the_engines_names(name: str) -> None:
    with pytest.raises(TypeError, match=name):
        type("Clash", (Prim,), {name: lambda self: None, "__module__": "authors.module"})


def test_hooks_and_private_names_of_authors_own_are_fine() -> None:
    class Fine(Compound):
        def start(self) -> None: ...

        def child_terminated(self, child: Prim, record: TerminationRecord) -> None: ...

        def _fail(self) -> None:  # Fail's own helper once shadowed the engine's
            ...

    assert Fine


class FailsFromATimer(Prim):
    """Its own ``_fail`` and a timer whose callback raises: the engine's failure path must
    not call the author's method (it raised TypeError when both were called ``_fail``)."""

    def start(self) -> None:
        self.schedule(0.01, self.boom)

    def boom(self) -> None:
        raise RuntimeError("timer went wrong")

    def _fail(self) -> None:
        raise AssertionError("the engine called the author's _fail")


register("test.FailsFromATimer", FailsFromATimer)


def test_a_failing_timer_terminates_the_component_abnormally_whatever_its_own_names() -> None:
    process = Process("timers")
    try:
        app = process.deploy(resolve(parse_text(
            '#include "org/smartfrog/components.sf"\n'
            'sfConfig extends Prim { sfClass "test.FailsFromATimer"; }', "t.sf")))
        record = app.wait_terminated(10)
        assert record is not None and not record.is_normal
        assert "timer went wrong" in record.description
    finally:
        process.shutdown(5)


def test_engine_modules_do_not_reach_into_other_objects_private_members() -> None:
    """Only ``self``/``cls`` may touch underscore members (the lock's own internals aside)."""
    offenders = []
    for path in sorted(ENGINE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id not in ("self", "cls", "node", "parent", "os", "sys")
            ):
                offenders.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    assert offenders == []
