"""Attributes at run time: LAZY references resolved against the live tree on every read,
add/replace/remove with the attribute_changed hook, runtime attributes."""

from __future__ import annotations

import socket
import time

import pytest
from engine_components import COMPOUND, cd

from sfpy.engine import ABSENT, EngineError, Prim, ResolutionError
from sfpy.language.model import Long, Reference, RefPart


def lazy(*parts: str) -> Reference:
    """LAZY reference from text parts: lazy("PARENT", "disk", "path")."""
    built = []
    for part in parts:
        if part in ("PARENT", "ROOT", "THIS", "PROCESS"):
            built.append(RefPart(part))
        elif " " in part:
            kind, name = part.split(" ", 1)
            built.append(RefPart(kind, name))
        else:
            built.append(RefPart("HERE", part))
    return Reference(built, lazy=True)


def test_lazy_link_to_a_sibling_yields_the_deployed_component(process):
    app = process.deploy(
        cd(
            COMPOUND,
            myShell=cd("test.Recorder"),
            user=cd("test.Recorder", shell=lazy("ATTRIB myShell")),
        )
    )
    shell = app.sf_resolve("user").sf_resolve("shell")
    assert isinstance(shell, Prim)
    assert shell is app.sf_resolve("myShell")
    assert shell.sf_complete_name() == "sfConfig:myShell"


def test_a_runtime_change_is_seen_by_a_lazy_reader(process, journal):
    app = process.deploy(
        cd(
            COMPOUND,
            disk=cd("test.Recorder", path="/data/a.img"),
            vm=cd("test.Recorder", image=lazy("PARENT", "disk", "path")),
        )
    )
    vm = app.sf_resolve("vm")
    disk = app.sf_resolve("disk")
    assert vm.sf_resolve("image") == "/data/a.img"
    old = disk.sf_replace_attribute("path", "/data/b.img")
    assert old == "/data/a.img"
    assert vm.sf_resolve("image") == "/data/b.img"  # resolved again, not cached
    # the changed component was told (asynchronously when changed from outside a hook)
    deadline = time.monotonic() + 2
    while ("changed:path", "sfConfig:disk") not in journal and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ("changed:path", "sfConfig:disk") in journal


def test_attribute_changed_receives_old_and_new_values(process):
    seen = []

    class Watcher(Prim):
        def attribute_changed(self, name, old, new) -> None:  # noqa: ANN001
            seen.append((name, old, new))

    from sfpy.engine import register

    register("test.Watcher", Watcher)
    app = process.deploy(cd("test.Watcher", size=1))
    app.sf_add_attribute("extra", "x")
    app.sf_replace_attribute("size", 2)
    app.sf_remove_attribute("extra")
    deadline = time.monotonic() + 2
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [("extra", ABSENT, "x"), ("size", 1, 2), ("extra", "x", ABSENT)]


def test_add_refuses_an_existing_attribute_and_remove_returns_absent(process):
    app = process.deploy(cd("test.Recorder", size=1))
    with pytest.raises(EngineError, match="already present"):
        app.sf_add_attribute("size", 2)
    assert app.sf_remove_attribute("nothing") is ABSENT
    assert app.sf_resolve("size") == 1


def test_lazy_apply_is_evaluated_with_current_values(process, load_text):
    config = load_text("""
        sfConfig extends Compound {
            base extends Prim { sfClass "test.Recorder"; value 10; }
            user extends Prim {
                sfClass "test.Recorder";
                current LAZY PARENT:base:value;
                total (current + 5);
                label ("size-" ++ current);
            }
        }
    """)
    app = process.deploy(config)
    user = app.sf_resolve("user")
    assert user.sf_resolve("total") == 15
    assert user.sf_resolve("label") == "size-10"
    app.sf_resolve("base").sf_replace_attribute("value", 32)
    assert user.sf_resolve("total") == 37
    assert user.sf_resolve("label") == "size-32"


def test_reference_parts_against_the_live_tree(process, monkeypatch):
    monkeypatch.setenv("SFPY_TEST_ENV", "42")
    app = process.deploy(
        cd(
            COMPOUND,
            top="T",
            mid=cd(
                COMPOUND,
                leaf=cd(
                    "test.Recorder",
                    own="O",
                    up=lazy("ATTRIB top"),
                    root=lazy("ROOT"),
                    me=lazy("THIS"),
                    env=lazy("ENVPROPERTY SFPY_TEST_ENV"),
                    ienv=lazy("IENVPROPERTY SFPY_TEST_ENV"),
                    proc=lazy("PROCESS", "sfProcessName"),
                    chained=lazy("PARENT", "alias"),
                    missing=Reference(
                        [RefPart("HERE", "nope")], lazy=True, optional=True, default=7
                    ),
                ),
            ),
        )
    )
    leaf = app.sf_resolve("mid:leaf")
    assert leaf.sf_resolve("up") == "T"
    assert leaf.sf_resolve("root") is app
    assert leaf.sf_resolve("me") is leaf
    assert leaf.sf_resolve("env") == "42"
    assert leaf.sf_resolve("ienv") == 42
    assert leaf.sf_resolve("proc") == "testProcess"
    assert leaf.sf_resolve("missing") == 7
    assert leaf.sf_resolve("PARENT:PARENT:top") == "T"
    assert leaf.sf_resolve("PROCESS:sfConfig:mid:leaf:own") == "O"
    # link chaining: PARENT:alias is itself a LAZY link
    app.sf_resolve("mid").sf_add_attribute("alias", lazy("leaf", "own"))
    assert leaf.sf_resolve("chained") == "O"


def test_unresolvable_references_say_what_and_where(process):
    app = process.deploy(cd(COMPOUND, disk=cd("test.Recorder", size=3)))
    with pytest.raises(ResolutionError) as failure:
        app.sf_resolve("disk:siz")
    message = str(failure.value)
    assert "siz" in message and "sfConfig" in message and "did you mean 'size'" in message
    assert app.sf_resolve("disk:siz", "fallback") == "fallback"
    with pytest.raises(ResolutionError, match="no parent"):
        app.sf_resolve("PARENT")
    with pytest.raises(ResolutionError, match="HOST"):
        app.sf_resolve(Reference([RefPart("HOST", "elsewhere")], lazy=True))


def test_a_cyclic_lazy_link_is_an_error_not_a_hang(process):
    app = process.deploy(cd("test.Recorder", a=lazy("b"), b=lazy("a")))
    with pytest.raises(ResolutionError):
        app.sf_resolve("a")


def test_runtime_attributes_are_added(process):
    app = process.deploy(cd(COMPOUND, child=cd("test.Recorder")), parse_time=0.25)
    child = app.sf_resolve("child")
    assert child.sf_resolve("sfHost") == socket.gethostname()
    assert child.sf_resolve("sfProcess") == "testProcess"
    assert app.sf_resolve("sfParseTime") == Long(250)
    assert isinstance(app.sf_resolve("sfDeployTime"), Long)
    assert isinstance(app.sf_resolve("sfStartTime"), Long)


def test_liveness_defaults_come_from_the_process_through_attrib(process):
    app = process.deploy(
        cd(
            COMPOUND,
            child=cd("test.Recorder"),
            fast=cd(COMPOUND, sfLivenessDelay=3, leaf=cd("test.Recorder")),
        )
    )
    assert app.sf_resolve("child").sf_resolve("ATTRIB sfLivenessDelay") == 15
    assert app.sf_resolve("child").sf_resolve("ATTRIB sfLivenessFactor") == 2
    assert app.sf_resolve("fast:leaf").sf_resolve("ATTRIB sfLivenessDelay") == 3


def test_data_descriptions_stay_data_and_eager_ones_become_children(process):
    data = cd(None, eager=False, x=1)
    app = process.deploy(cd(COMPOUND, settings=data, child=cd("test.Recorder")))
    assert app.sf_resolve("settings") is data
    assert app.sf_resolve("settings:x") == 1
    assert [c.sf_name for c in app.sf_children()] == ["child"]
    # a Prim keeps even eager descriptions as data (only a Compound deploys children)
    leaf = process.deploy(cd("test.Recorder", nested=cd(None, y=2)), name="other")
    assert leaf.sf_resolve("nested:y") == 2
