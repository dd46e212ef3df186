"""The ``started()`` hook: once, after a component's whole subtree has started, in the lock."""

from __future__ import annotations

import pytest
from engine_components import cd, note

from sfpy.engine import Compound, DeploymentError, Prim, State, TerminationRecord, register


class StartedPrim(Prim):
    def start(self) -> None:
        note(self, "start")

    def started(self) -> None:
        note(self, "started")
        assert self._sf_lifecycle is not None and self._sf_lifecycle.hook_depth > 0


class StartedCompound(Compound):
    def start(self) -> None:
        note(self, "start")

    def started(self) -> None:
        note(self, "started")
        if self.sf_resolve("failInStarted", False) is True:
            raise RuntimeError("started refused")
        action = self.sf_resolve("later", None)
        if action is not None:
            child = self.sf_create_new_child("made", action)
            note(self, f"made is {child.state.name}")


class TerminatingChild(Prim):
    """Asks its parent to terminate while starting."""

    def start(self) -> None:
        self.sf_parent().sf_terminate(TerminationRecord.normal("enough"))


@pytest.fixture(autouse=True)
def registered() -> None:
    register("test.StartedPrim", StartedPrim)
    register("test.StartedCompound", StartedCompound)
    register("test.TerminatingChild", TerminatingChild)


def test_started_runs_after_the_whole_subtree_started(process, journal):
    process.deploy(
        cd(
            "test.StartedCompound",
            a=cd("test.StartedPrim"),
            b=cd("test.StartedCompound", c=cd("test.StartedPrim")),
            d=cd("test.Recorder"),
        )
    )
    assert [(e, p) for e, p in journal if e in ("start", "started")] == [
        ("start", "sfConfig"),
        ("start", "sfConfig:a"),
        ("started", "sfConfig:a"),
        ("start", "sfConfig:b"),
        ("start", "sfConfig:b:c"),
        ("started", "sfConfig:b:c"),
        ("started", "sfConfig:b"),
        ("start", "sfConfig:d"),
        ("started", "sfConfig"),
    ]


def test_a_child_created_in_started_is_deployed_and_started_at_once(process, journal):
    app = process.deploy(cd("test.StartedCompound", later=cd("test.StartedPrim", eager=False)))
    assert ("made is STARTED", "sfConfig") in journal
    assert app.sf_resolve("made").state is State.STARTED
    assert [e for e, p in journal if p == "sfConfig"].count("started") == 1


def test_started_is_not_called_when_terminating(process, journal):
    """The parent's termination asked for while its children start is carried out first."""
    app = process.deploy(
        cd("test.StartedCompound", a=cd("test.StartedPrim"), quitter=cd("test.TerminatingChild"))
    )
    assert app.wait_terminated(5) is not None
    assert ("started", "sfConfig:a") in journal  # its subtree had started
    assert ("started", "sfConfig") not in journal


def test_a_failing_started_fails_the_deployment(process, journal):
    with pytest.raises(DeploymentError) as info:
        process.deploy(cd("test.StartedCompound", failInStarted=True))
    record = info.value.record
    assert not record.is_normal and record.id == "sfConfig"
    assert "start failed: RuntimeError: started refused" in record.description
