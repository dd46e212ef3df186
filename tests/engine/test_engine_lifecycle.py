"""Lifecycle: build, deploy-all, start-all, reverse-order termination, failures half-way,
termination records travelling up, detaching, and lifecycle under concurrency."""

from __future__ import annotations

import threading

import engine_components
import pytest
from engine_components import COMPOUND, cd

from sfpy.engine import (
    Compound,
    DeploymentError,
    LifecycleError,
    Prim,
    State,
    TerminationRecord,
)

REC = "test.Recorder"


def tree() -> object:
    """sfConfig { a; b { c; d }; e } with recording components."""
    return cd(
        "test.RecorderCompound",
        a=cd(REC),
        b=cd("test.RecorderCompound", c=cd(REC), d=cd(REC)),
        e=cd(REC),
    )


def test_every_component_is_deployed_before_any_is_started(process, journal):
    process.deploy(tree())
    events = [event for event, _ in journal]
    assert events == ["deploy"] * 6 + ["start"] * 6
    assert [path for _, path in journal[:6]] == [
        "sfConfig",
        "sfConfig:a",
        "sfConfig:b",
        "sfConfig:b:c",
        "sfConfig:b:d",
        "sfConfig:e",
    ]
    assert [path for _, path in journal[6:]] == [path for _, path in journal[:6]]


def test_children_terminate_in_reverse_order_before_their_parent(process, journal):
    app = process.deploy(tree())
    journal.clear()
    app.sf_terminate(TerminationRecord.normal("done"))
    assert app.wait_terminated(5) is not None
    assert journal == [
        ("terminate", "sfConfig:e"),
        ("terminate", "sfConfig:b:d"),
        ("terminate", "sfConfig:b:c"),
        ("terminate", "sfConfig:b"),
        ("terminate", "sfConfig:a"),
        ("terminate", "sfConfig"),
    ]
    assert app.state is State.TERMINATED
    assert process.applications() == {}


def test_states_are_timestamped_in_order(process):
    app = process.deploy(cd(REC))
    app.sf_terminate()
    app.wait_terminated(5)
    times = [app.state_times[s] for s in State]
    assert times == sorted(times)


def test_a_failing_deploy_terminates_what_was_deployed_with_their_cleanup(process, journal):
    description = cd(
        COMPOUND,
        first=cd(REC),
        second=cd(REC),
        third=cd(REC, failIn="deploy"),
        fourth=cd(REC),
    )
    with pytest.raises(DeploymentError) as failure:
        process.deploy(description)
    record = failure.value.record
    assert record.type == "abnormal"
    assert record.id == "sfConfig:third"
    assert "deploy failed" in record.description and "refused by third" in record.description
    # nothing started; the three whose deploy ran are cleaned up in reverse order; the
    # fourth never deployed, so it has nothing to clean up
    assert journal == [
        ("deploy", "sfConfig:first"),
        ("deploy", "sfConfig:second"),
        ("deploy", "sfConfig:third"),
        ("terminate", "sfConfig:third"),
        ("terminate", "sfConfig:second"),
        ("terminate", "sfConfig:first"),
    ]
    assert process.applications() == {}


def test_a_failing_start_terminates_everything_with_the_failing_path(process, journal):
    description = cd(COMPOUND, a=cd(REC), b=cd(COMPOUND, c=cd(REC, failIn="start")), d=cd(REC))
    with pytest.raises(DeploymentError) as failure:
        process.deploy(description)
    assert failure.value.record.id == "sfConfig:b:c"
    assert "start failed" in str(failure.value)
    assert str(failure.value).startswith("sfConfig:b:c: ")
    terminated = [path for event, path in journal if event == "terminate"]
    assert terminated == ["sfConfig:d", "sfConfig:b:c", "sfConfig:a"]
    assert ("start", "sfConfig:d") not in journal


def test_a_failing_terminate_hook_does_not_stop_termination(process, journal):
    app = process.deploy(cd(COMPOUND, a=cd(REC), b=cd(REC, failIn="terminate"), c=cd(REC)))
    app.sf_terminate()
    record = app.wait_terminated(5)
    assert record is not None and record.is_normal
    assert [p for e, p in journal if e == "terminate"] == ["sfConfig:c", "sfConfig:b", "sfConfig:a"]
    assert [path for path, _ in process.cleanup_failures] == ["sfConfig:b"]


def test_a_child_termination_travels_up_with_the_first_components_name(process):
    app = process.deploy(
        cd(
            COMPOUND,
            keep=cd(REC),
            inner=cd(COMPOUND, worker=cd("test.SelfTerminating", after=0.05, abnormal=True)),
        )
    )
    record = app.wait_terminated(5)
    assert record is not None
    assert record.type == "abnormal"
    assert record.id == "sfConfig:inner:worker"
    assert record.description == "it broke"
    assert app.sf_resolve("inner").termination_record == record
    assert app.sf_resolve("keep").termination_record == record


def test_a_normal_child_termination_terminates_the_compound_normally(process):
    app = process.deploy(cd(COMPOUND, worker=cd("test.SelfTerminating", after=0.0), other=cd(REC)))
    record = app.wait_terminated(5)
    assert record is not None and record.is_normal
    assert record.id == "sfConfig:worker"


def test_quiet_termination_does_not_terminate_the_parent(process):
    app = process.deploy(cd(COMPOUND, a=cd(REC), b=cd(REC)))
    b = app.sf_resolve("b")
    b.sf_terminate_quietly(TerminationRecord.abnormal("quietly"))
    assert b.wait_terminated(5) is not None
    assert process.wait_idle(5)  # the parent has done whatever it was going to do about b
    assert app.state is State.STARTED
    assert b not in app.sf_children()


def test_a_detached_child_no_longer_terminates_its_former_parent(process):
    app = process.deploy(cd(COMPOUND, a=cd(REC), b=cd(REC, sfProcessComponentName="freed")))
    b = app.sf_resolve("b")
    b.sf_detach()
    assert b.sf_parent() is None
    assert not app.sf_has_attribute("b")
    assert process.application("freed") is b
    assert b.sf_complete_name() == "freed"
    b.sf_terminate(TerminationRecord.abnormal("gone"))
    assert b.wait_terminated(5).type == "abnormal"
    assert process.wait_idle(5)
    assert app.state is State.STARTED
    assert process.application("freed") is None


def test_sf_should_terminate_ends_a_finished_workflow_prim(process, journal):
    app = process.deploy(
        cd(COMPOUND, job=cd("test.Finisher", sfShouldTerminate=True), other=cd(REC))
    )
    record = app.wait_terminated(5)
    assert record is not None and record.is_normal and record.id == "sfConfig:job"
    # the finisher terminated after its start hook returned, not inside it
    assert journal.index(("start", "sfConfig:job")) < journal.index(("terminate", "sfConfig:job"))


def test_without_sf_should_terminate_a_finished_prim_keeps_running(process):
    app = process.deploy(cd(COMPOUND, job=cd("test.Finisher")))
    assert process.wait_idle(5)
    assert app.sf_resolve("job").state is State.STARTED


def test_a_container_can_override_child_termination(process, journal):
    description = cd(
        COMPOUND,
        seq=cd(
            "test.Sequential",
            one=cd("test.Finisher", sfShouldTerminate=True),
            two=cd("test.Finisher", sfShouldTerminate=True),
        ),
    )
    app = process.deploy(description)
    record = app.wait_terminated(5)
    assert record is not None and record.is_normal
    assert record.description == "sequence done" and record.id == "sfConfig:seq"
    starts = [p for e, p in journal if e == "start"]
    assert starts == ["sfConfig:seq:one", "sfConfig:seq:two"]


def test_a_child_created_at_run_time_that_fails_is_cleaned_up_and_reported(process, journal):
    app = process.deploy(cd(COMPOUND, holder=cd(COMPOUND)))
    holder = app.sf_resolve("holder")
    with pytest.raises(LifecycleError) as failure:
        holder.sf_create_new_child("late", cd(REC, failIn="start"))
    assert failure.value.path == "sfConfig:holder:late"
    assert ("terminate", "sfConfig:holder:late") in journal
    assert holder.sf_children() == [] and not holder.sf_has_attribute("late")
    assert app.state is State.STARTED


def test_hooks_of_one_application_never_overlap_when_a_child_ends_during_start(process, journal):
    """A started child terminates itself from its own thread while a sibling's start hook is
    still running: the termination waits for that hook, then terminates the compound."""
    description = cd(
        COMPOUND,
        quick=cd("test.SelfTerminating", afterGate=True, abnormal=True),
        slow=cd(REC, holdForRequest=True),
        never=cd(REC),
    )
    with pytest.raises(DeploymentError) as failure:
        process.deploy(description)
    assert failure.value.record.id == "sfConfig:quick"
    assert engine_components.overlaps() == 0
    # slow's start ran to its end before the termination began; never was not started
    assert journal.index(("start", "sfConfig:slow")) < journal.index(("terminate", "sfConfig:slow"))
    assert ("start", "sfConfig:never") not in journal
    assert ("terminate", "sfConfig:never") in journal


def test_terminate_from_many_threads_runs_termination_once(process, journal):
    app = process.deploy(cd(COMPOUND, a=cd(REC), b=cd(REC)))
    threads = [
        threading.Thread(
            target=app.sf_resolve(name).sf_terminate, args=(TerminationRecord.abnormal(f"by {i}"),)
        )
        for i in range(10)
        for name in ("a", "b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    record = app.wait_terminated(5)
    assert record is not None and record.type == "abnormal"
    assert sorted(p for e, p in journal if e == "terminate") == ["sfConfig:a", "sfConfig:b"]
    assert engine_components.overlaps() == 0


def test_a_hook_that_terminates_its_own_application_is_not_re_entered(process, journal):
    class Stopper(Prim):
        def start(self) -> None:
            self.sf_resolve("ROOT").sf_terminate(TerminationRecord.normal("stop now"))
            journal.append(("start-end", self.sf_complete_name()))

        def terminate(self, record) -> None:  # noqa: ANN001
            journal.append(("terminate", self.sf_complete_name()))

    from sfpy.engine import register

    register("test.Stopper", Stopper)
    app = process.deploy(cd(COMPOUND, stopper=cd("test.Stopper"), after=cd(REC)))
    assert app.state is State.TERMINATED and app.termination_record.is_normal
    assert journal.index(("start-end", "sfConfig:stopper")) < journal.index(
        ("terminate", "sfConfig:stopper")
    )


def test_lifecycle_calls_out_of_order_are_harmless(process):
    app = process.deploy(cd(COMPOUND, a=cd(REC)))
    app.sf_terminate()
    app.wait_terminated(5)
    # a terminated component cannot create children, and terminating again does nothing
    with pytest.raises(LifecycleError):
        app.sf_create_new_child("x", cd(REC))
    app.sf_terminate(TerminationRecord.abnormal("again"))
    assert process.wait_idle(5)
    assert app.termination_record.is_normal


def test_compound_is_a_prim_and_knows_its_children(process):
    app = process.deploy(tree())
    assert isinstance(app, Compound) and isinstance(app, Prim)
    assert [c.sf_name for c in app.sf_children()] == ["a", "b", "e"]
    assert app.sf_resolve("b:c").sf_parent() is app.sf_resolve("b")
    assert app.sf_resolve("b:c").sf_root() is app
