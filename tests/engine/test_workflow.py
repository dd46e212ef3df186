"""Workflow components as a user writes them (SmartFrog's templates, sfpy's classes): what
each one runs, in which order, when, and how it ends.

Every scenario below is one attribute of SCENARIOS' sfConfig; the file is resolved once per
module and each test deploys its scenario as an application of its own. Marker files are
written relative to the test's working directory (a fresh tmp_path).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sfpy.engine import DeploymentError, Prim, State, TerminationRecord
from sfpy.language import load

SCENARIOS = r"""
#include "org/smartfrog/components.sf"
#include "org/smartfrog/sfcore/workflow/components.sf"
#include "org/smartfrog/services/assertions/components.sf"
#include "org/smartfrog/services/filesystem/touchfile.sf"
#include "org/smartfrog/services/shellscript/components.sf"

Mark extends TouchFile { sfShouldTerminate true; }          // create `filename`, then end
Step extends Script { autoTerminate true; }                 // run startScript, then end
Wait extends DoNothing { time 5000; }
R extends Prim { sfClass "test.Recorder"; }                  // journals its hooks, never ends
Thrower extends ExceptionThrower { classname "org.smartfrog.sfcore.common.SmartFrogException"; }

sfConfig extends Compound {
  sequenceInOrder extends Sequence {
    a extends Step { startScript "echo a >> steps"; }
    b extends Step { startScript "sleep 0.1; echo b >> steps"; }
    c extends Step { startScript "echo c >> steps"; }
  }
  sequenceStops extends Sequence {
    a extends Step { startScript "echo a >> steps"; }
    b extends FailAbnormal { message "stop here"; }
    c extends Mark { filename "never"; }
  }
  sequenceEmpty extends Sequence {}
  sequenceStepFailsDeploy extends Sequence {
    a extends Step { startScript "echo a >> steps"; }
    b extends Thrower { throwOnDeploy true; throwOnStartup false; message "no disk"; }
  }

  parallelDeploysAllThenStartsAll extends Parallel {
    a extends R; b extends R; c extends R;
  }
  parallelEndsAfterLastChild extends Parallel {
    quick extends Fail { message "quick"; }
    slow extends DoNothing { time 300; }
  }
  parallelAbnormalChild extends Parallel {
    broken extends FailAbnormal { message "p-broke"; }
    other extends Wait;
  }
  parallelIgnoresAbnormalChild extends Parallel {
    terminateOnAbnormalChildTermination false;
    quick extends Fail { message "fine"; }
    broken extends DoNothing { time 200; terminationType "abnormal"; }
  }
  parallelAsynch extends Parallel {
    asynchCreateChild true;
    terminateOnAbnormalChildDeploy false;
    a extends Mark { filename "pa"; }
    bad extends Thrower { throwOnDeploy true; throwOnStartup false; }
    b extends Mark { filename "pb"; }
  }
  parallelEmpty extends Parallel { terminateOnEmptyDeploy true; }

  retrySucceedsOnThirdAttempt extends Retry {
    retry 3;
    action extends Step {
      startScript "n=$(cat tries 2>/dev/null || echo 0); echo $((n+1)) > tries; [ $n -ge 2 ]";
    }
  }
  retryExhausted extends Retry {
    retry 2;
    action extends FailAbnormal { message "nope"; }
  }
  retryNegative extends Retry { retry -1; action extends Wait; }

  repeatThreeTimes extends Repeat {
    repeat 3;
    action extends Step { startScript "echo x >> reps"; }
  }
  repeatStopsOnFailure extends Repeat {
    repeat 5;
    action extends Step { startScript "echo x >> reps; [ $(wc -l < reps) -lt 2 ]"; }
  }

  timeoutFires extends Timeout { time 300; action extends Wait; }
  timeoutInTime extends Timeout { time 3000; action extends DoNothing { time 100; } }
  duringEnds extends During { time 300; action extends Wait; }

  delayed extends Delay { time 400; action extends Mark { filename "delayed"; } }
  delayWithoutAction extends Delay { time 200; }

  terminatorKillsSibling extends Compound {
    victim extends Wait;
    killer extends Terminator { kill LAZY PARENT:victim; type "abnormal"; description "killed by the terminator"; }
  }
  terminatorDetachesFirst extends Compound {
    victim extends Wait { sfProcessComponentName "freed"; }
    steps extends Sequence {
      killer extends Terminator { kill LAZY PARENT:PARENT:victim; detachFirst true; description "detached then killed"; }
    }
  }
  terminatorSelfType extends Terminator { selftype "abnormal"; description "ended on purpose"; }
  terminatorBadKill extends Terminator { kill LAZY PARENT:nobody; }

  tryAbnormal extends Try {
    action extends FailAbnormal { message "boom"; }
    normal extends Mark { filename "normal-branch"; }
    abnormal extends Mark { filename "abnormal-branch"; }
  }
  tryNormal extends Try {
    action extends Fail { message "fine"; }
    normal extends Mark { filename "normal-branch"; }
    abnormal extends Mark { filename "abnormal-branch"; }
  }
  tryDeployFailure extends Try {
    action extends Thrower { throwOnDeploy true; throwOnStartup false; }
    abnormal extends Mark { filename "abnormal-branch"; }
  }
  tryWithoutBranch extends Try {
    action extends FailAbnormal { message "unhandled"; }
    normal extends Mark { filename "normal-branch"; }
  }

  doNothingAbnormal extends DoNothing { time 100; terminationType "abnormal"; }

  runLaunches extends Run { newComponentName "launched"; action extends Wait; }

  detaching extends Compound {
    keep extends Wait;
    dc extends DetachingCompound {
      child extends Wait { sfProcessComponentName "detachedChild"; }
    }
  }

  container extends Container {
    broken extends FailAbnormal { message "container child failed"; }
    done extends Fail { message "container child done"; }
  }

  finally extends Finally { action extends Mark { filename "finally-ran"; } }

  testBlockFailure extends TestBlock { action extends FailAbnormal { message "tb-failed"; } }
  testBlockNested extends Compound {
    tb extends TestBlock { action extends Fail { message "tb-ok"; } }
  }
  testBlockTimeout extends TestBlock { timeout 200; action extends Wait; }

  testCompoundExpectedFailure extends TestCompound {
    expectTerminate true; exitType "abnormal"; exitText "as expected";
    action extends FailAbnormal { message "failed as expected"; }
  }
  testCompoundUnexpectedFailure extends TestCompound {
    expectTerminate true;
    action extends FailAbnormal { message "surprise"; }
  }
  testCompoundExpectedDeployFailure extends TestCompound {
    exitType "abnormal"; exitText "SmartFrogException";
    action extends Thrower { throwOnDeploy true; throwOnStartup false; }
  }
  testCompoundTests extends TestCompound {
    action extends Wait;
    tests extends Sequence { check extends Mark { filename "tests-ran"; } }
  }

  assertFails extends Assert { equalsString1 "a"; equalsString2 "b"; }
  assertWorkflow extends AssertWorkflow { equalsString1 "same"; equalsString2 "same"; }
}
"""


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("workflow") / "scenarios.sf"
    path.write_text(SCENARIOS, encoding="utf-8")
    return dict(load(str(path)).attributes)


@dataclass
class Outcome:
    """What a deployed scenario did: its app (None when deploy failed), its final record,
    every component built (by path at construction), when deploy began."""

    app: Prim | None
    record: TerminationRecord | None
    seen: dict[str, Prim]
    began: float
    error: DeploymentError | None = None
    ended: float = field(default=0.0)

    def component(self, path: str) -> Prim:
        return self.seen[path]

    def at(self, path: str, state: State) -> float:
        """Seconds after deploy began that ``path`` reached ``state``."""
        return self.seen[path].state_times[state] - self.began


@pytest.fixture
def run(process, scenarios, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``run(name, wait=5)``: deploy scenario ``name`` as sfConfig and wait for its end
    (``wait=None``: return at once, it keeps running)."""
    monkeypatch.chdir(tmp_path)
    seen: dict[str, Prim] = {}

    def observe(component: Prim, state: State) -> None:
        if state is State.CONSTRUCTED:
            seen[component.sf_complete_name()] = component

    process.add_observer(observe)

    def deploy(name: str, wait: float | None = 5.0) -> Outcome:
        description = scenarios[name].copy()
        description.eager = True
        began = time.time()
        try:
            app = process.deploy(description, "sfConfig")
        except DeploymentError as error:
            return Outcome(None, error.record, seen, began, error, time.time())
        record = None
        if wait is not None:
            record = app.wait_terminated(wait)
            assert record is not None, f"{name} did not terminate within {wait}s"
        return Outcome(app, record, seen, began, ended=time.time())

    return deploy


def lines(path: str) -> list[str]:
    file = Path(path)
    return file.read_text().split() if file.exists() else []


# -- Sequence ----------------------------------------------------------------------------------
def test_sequence_runs_each_step_after_the_previous_one_ended(run):
    out = run("sequenceInOrder")
    assert out.record.is_normal, out.record
    assert lines("steps") == ["a", "b", "c"]
    # Steps are created at run time, once the Sequence has started, not with it.
    assert out.at("sfConfig", State.STARTED) <= out.at("sfConfig:a", State.CONSTRUCTED)
    # Each step is created only once the previous one has terminated.
    assert out.at("sfConfig:a", State.TERMINATED) <= out.at("sfConfig:b", State.CONSTRUCTED)
    assert out.at("sfConfig:b", State.TERMINATED) <= out.at("sfConfig:c", State.CONSTRUCTED)
    assert out.at("sfConfig:c", State.CONSTRUCTED) - out.at("sfConfig:b", State.DEPLOYED) >= 0.09


def test_an_abnormal_step_stops_the_sequence_with_its_record(run):
    out = run("sequenceStops")
    assert not out.record.is_normal
    assert out.record.description == "stop here"
    assert out.record.id == "sfConfig:b"
    assert lines("steps") == ["a"]
    assert "sfConfig:c" not in out.seen and not Path("never").exists()


def test_an_empty_sequence_terminates_normally(run):
    assert run("sequenceEmpty").record.is_normal


def test_a_step_failing_in_deploy_ends_the_sequence_naming_the_step(run):
    out = run("sequenceStepFailsDeploy")
    assert not out.record.is_normal
    assert out.record.id == "sfConfig:b"
    assert "deploy failed" in out.record.description
    assert "SmartFrogException: no disk" in out.record.description
    assert out.component("sfConfig:b").state is State.TERMINATED  # its cleanup ran


# -- Parallel ----------------------------------------------------------------------------------
def test_parallel_deploys_every_child_before_starting_any(run, journal):
    out = run("parallelDeploysAllThenStartsAll", wait=None)
    assert journal == [("deploy", f"sfConfig:{n}") for n in "abc"] + [
        ("start", f"sfConfig:{n}") for n in "abc"]
    assert out.app.state is State.STARTED  # children that never end: the Parallel stays
    journal.clear()
    out.app.sf_terminate(TerminationRecord.normal("test done"))
    assert out.app.wait_terminated(5) is not None
    assert journal == [("terminate", f"sfConfig:{n}") for n in "cba"]


def test_parallel_ends_normally_when_its_last_child_ended(run):
    out = run("parallelEndsAfterLastChild")
    assert out.record.is_normal
    assert out.at("sfConfig:quick", State.TERMINATED) < out.at("sfConfig:slow", State.TERMINATED)
    assert out.at("sfConfig", State.TERMINATED) >= 0.3
    assert out.at("sfConfig", State.TERMINATED) >= out.at("sfConfig:slow", State.TERMINATED)


def test_an_abnormal_child_ends_the_parallel_and_its_other_children(run):
    out = run("parallelAbnormalChild")
    assert not out.record.is_normal and out.record.description == "p-broke"
    assert out.component("sfConfig:other").state is State.TERMINATED
    assert out.ended - out.began < 2


def test_parallel_can_ignore_abnormal_children(run):
    out = run("parallelIgnoresAbnormalChild")
    assert out.record.is_normal
    assert "even though a child terminated abnormally" in out.record.description
    assert out.at("sfConfig", State.TERMINATED) >= 0.2


def test_asynchronous_parallel_creates_children_after_it_started(run):
    out = run("parallelAsynch")
    assert out.record.is_normal, out.record
    assert Path("pa").exists() and Path("pb").exists()
    assert out.at("sfConfig", State.STARTED) <= out.at("sfConfig:a", State.CONSTRUCTED)
    assert out.component("sfConfig:bad").state is State.TERMINATED


def test_an_empty_parallel_with_terminate_on_empty_deploy_ends_at_once(run):
    out = run("parallelEmpty")
    assert out.record.is_normal and out.record.description == "Parallel component is empty"


# -- Retry and Repeat --------------------------------------------------------------------------
def test_retry_runs_the_action_again_until_it_succeeds_and_counts_attempts(run):
    out = run("retrySucceedsOnThirdAttempt")
    assert out.record.is_normal, out.record
    assert Path("tries").read_text().strip() == "3"
    assert out.app.sf_resolve("count") == 3
    assert [p for p in out.seen if p.startswith("sfConfig:running_")] == [
        "sfConfig:running_0", "sfConfig:running_1", "sfConfig:running_2"]
    # One attempt at a time: each starts after the previous one ended.
    assert out.at("sfConfig:running_0", State.TERMINATED) <= out.at("sfConfig:running_1", State.CONSTRUCTED)


def test_retry_gives_up_after_retry_retries_with_the_last_record(run):
    out = run("retryExhausted")
    assert not out.record.is_normal and out.record.description == "nope"
    assert out.record.id == "sfConfig:running_2"
    assert out.component("sfConfig").sf_resolve("count") == 3


def test_a_negative_retry_fails_the_deployment(run):
    out = run("retryNegative")
    assert out.error is not None
    assert "A negative retry value is not supported" in out.record.description


def test_repeat_runs_the_action_repeat_times(run):
    out = run("repeatThreeTimes")
    assert out.record.is_normal
    assert lines("reps") == ["x", "x", "x"]
    assert "sfConfig:running_2" in out.seen and "sfConfig:running_3" not in out.seen


def test_repeat_stops_at_the_first_abnormal_end(run):
    out = run("repeatStopsOnFailure")
    assert not out.record.is_normal
    assert lines("reps") == ["x", "x"]
    assert out.record.id == "sfConfig:running_1"


# -- Timeout, During, Delay --------------------------------------------------------------------
def test_timeout_terminates_a_slow_action_and_ends_abnormally(run):
    out = run("timeoutFires")
    assert not out.record.is_normal
    assert out.record.description == "timeout occurred"
    took = out.at("sfConfig", State.TERMINATED) - out.at("sfConfig", State.STARTED)
    assert 0.28 <= took < 2.0
    assert out.component("sfConfig:action").state is State.TERMINATED


def test_timeout_ends_with_the_action_when_it_finishes_in_time(run):
    out = run("timeoutInTime")
    assert out.record.is_normal
    assert out.at("sfConfig", State.TERMINATED) < 2.0


def test_during_stops_its_action_after_time_and_ends_normally(run):
    out = run("duringEnds")
    assert out.record.is_normal
    took = out.at("sfConfig", State.TERMINATED) - out.at("sfConfig", State.STARTED)
    assert 0.28 <= took < 2.0


def test_delay_creates_its_action_after_time(run):
    out = run("delayed")
    assert out.record.is_normal
    assert Path("delayed").exists()
    waited = out.at("sfConfig:action", State.CONSTRUCTED) - out.at("sfConfig", State.STARTED)
    assert 0.38 <= waited < 2.0


def test_delay_without_action_ends_normally_after_time(run):
    out = run("delayWithoutAction")
    assert out.record.is_normal
    assert out.at("sfConfig", State.TERMINATED) - out.at("sfConfig", State.STARTED) >= 0.19


# -- Terminator, DoNothing ---------------------------------------------------------------------
def test_terminator_terminates_its_kill_target_with_type_and_description(run):
    out = run("terminatorKillsSibling")
    victim = out.component("sfConfig:victim")
    assert victim.state is State.TERMINATED
    assert victim.termination_record.type == "abnormal"
    assert victim.termination_record.description == "killed by the terminator"
    assert victim.termination_record.id == "sfConfig:killer"
    # The sibling's abnormal end took the Compound down, as any child's end does.
    assert not out.record.is_normal and out.record.description == "killed by the terminator"


def test_terminator_detach_first_keeps_the_parent_running(run):
    out = run("terminatorDetachesFirst")
    victim = out.component("sfConfig:victim")
    assert victim.state is State.TERMINATED
    assert victim.sf_name == "freed" and victim.sf_parent() is None
    assert victim.termination_record.description == "detached then killed"
    # sfConfig ended because its Sequence finished, not because of the victim.
    assert out.record.is_normal and out.record.id == "sfConfig:steps"


def test_terminator_ends_itself_with_selftype(run):
    out = run("terminatorSelfType")
    assert out.record.type == "abnormal" and out.record.description == "ended on purpose"


def test_terminator_with_an_unresolvable_kill_ends_abnormally(run):
    out = run("terminatorBadKill")
    assert not out.record.is_normal
    assert "nobody" in out.record.description


def test_do_nothing_waits_then_terminates_with_its_type(run):
    out = run("doNothingAbnormal")
    assert out.record.type == "abnormal"
    assert out.at("sfConfig", State.TERMINATED) - out.at("sfConfig", State.STARTED) >= 0.09


# -- Try ---------------------------------------------------------------------------------------
def test_try_runs_the_abnormal_branch_after_an_abnormal_end(run):
    out = run("tryAbnormal")
    assert Path("abnormal-branch").exists() and not Path("normal-branch").exists()
    assert out.record.is_normal and out.record.id == "sfConfig:abnormal"
    assert out.at("sfConfig:action", State.TERMINATED) <= out.at("sfConfig:abnormal", State.CONSTRUCTED)


def test_try_runs_the_normal_branch_after_a_normal_end(run):
    out = run("tryNormal")
    assert Path("normal-branch").exists() and not Path("abnormal-branch").exists()
    assert out.record.is_normal


def test_try_treats_a_failed_deployment_of_its_action_as_abnormal(run):
    out = run("tryDeployFailure")
    assert Path("abnormal-branch").exists()
    assert out.record.is_normal


def test_try_without_a_branch_for_the_end_ends_with_the_actions_record(run):
    out = run("tryWithoutBranch")
    assert not out.record.is_normal and out.record.description == "unhandled"
    assert not Path("normal-branch").exists()


# -- Run, DetachingCompound, Container, Finally ------------------------------------------------
def test_run_deploys_its_action_as_an_application_and_ends(run, process):
    out = run("runLaunches")
    assert out.record.is_normal
    launched = process.application("launched")
    assert launched is not None and launched.state is State.STARTED
    assert launched.sf_class_name() == "org.smartfrog.sfcore.workflow.components.DoNothing"
    launched.sf_terminate()
    assert launched.wait_terminated(5) is not None


def test_detaching_compound_detaches_itself_and_its_children(run, process):
    out = run("detaching", wait=None)
    deadline = time.monotonic() + 5
    while process.application("detachedChild") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child = process.application("detachedChild")
    assert child is not None and child.state is State.STARTED and child.sf_parent() is None
    dc = out.component("sfConfig:dc")
    assert dc.wait_terminated(5) is not None and dc.termination_record.is_normal
    # It detached itself first: its end did not take sfConfig down.
    assert out.app.state is State.STARTED
    assert [c.sf_name for c in out.app.sf_children()] == ["keep"]


def test_container_outlives_its_children(run, process):
    out = run("container", wait=None)
    broken, done = out.component("sfConfig:broken"), out.component("sfConfig:done")
    assert broken.wait_terminated(5) is not None and done.wait_terminated(5) is not None
    assert process.wait_idle(5)  # the container has reacted to both ends
    assert out.app.state is State.STARTED and out.app.sf_children() == []


def test_finally_runs_its_action_when_it_terminates(run):
    out = run("finally", wait=None)
    assert not Path("finally-ran").exists()
    out.app.sf_terminate(TerminationRecord.normal("done"))
    assert out.app.wait_terminated(5) is not None
    assert Path("finally-ran").exists()


# -- TestBlock, TestCompound, Assert -----------------------------------------------------------
def test_a_root_test_block_records_the_result_and_ends_with_the_actions_record(run):
    out = run("testBlockFailure")
    assert not out.record.is_normal and out.record.description == "tb-failed"
    app = out.component("sfConfig")
    assert app.sf_resolve("finished") is True
    assert app.sf_resolve("failed") is True and app.sf_resolve("succeeded") is False
    assert app.sf_resolve("status:errorType") == "abnormal"
    assert app.sf_resolve("status:description") == "tb-failed"


def test_a_nested_test_block_keeps_running_with_its_result(run):
    out = run("testBlockNested", wait=None)
    tb = out.component("sfConfig:tb")
    deadline = time.monotonic() + 5
    while tb.sf_resolve("finished", False) is not True and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tb.sf_resolve("succeeded") is True
    assert tb.state is State.STARTED and out.app.state is State.STARTED


def test_a_test_block_times_out_a_slow_action(run):
    out = run("testBlockTimeout")
    assert not out.record.is_normal and "timeout" in out.record.description
    assert out.component("sfConfig").sf_resolve("forcedTimeout") is True
    assert out.at("sfConfig", State.TERMINATED) < 1.5


def test_test_compound_accepts_the_expected_abnormal_end(run):
    out = run("testCompoundExpectedFailure")
    assert out.record.is_normal, out.record
    assert out.component("sfConfig").sf_resolve("succeeded") is True


def test_test_compound_fails_on_an_unexpected_end(run):
    out = run("testCompoundUnexpectedFailure")
    assert not out.record.is_normal
    assert out.component("sfConfig").sf_resolve("failed") is True


def test_test_compound_accepts_an_expected_deployment_failure(run):
    out = run("testCompoundExpectedDeployFailure")
    assert out.record.is_normal, out.record
    assert "expected exception" in out.record.description


def test_test_compound_succeeds_when_its_tests_end_normally(run):
    out = run("testCompoundTests")
    assert out.record.is_normal, out.record
    assert Path("tests-ran").exists()
    assert out.component("sfConfig:action").state is State.TERMINATED


def test_a_failing_assertion_fails_the_start(run):
    out = run("assertFails")
    assert out.error is not None
    assert 'Expected "a" actual "b"' in out.record.description


def test_an_assertion_workflow_step_ends_when_it_holds(run):
    assert run("assertWorkflow").record.is_normal
