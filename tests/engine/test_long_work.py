"""Long work runs off the application's lifecycle lock (sfpy.engine.steps, sfpy.host.work).

A test component, LongWork, runs a real ``sleep`` in its own process group in its start hook
(and, when asked, in its terminate hook) the way the command runner does: inside
``step.blocking`` with an ``on_cancel`` that stops the group, bounded by the step's deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any

import engine_components
import pytest
from engine_components import Guarded

from sfpy.engine import DeploymentError, Prim, Process, TerminationRecord, register
from sfpy.host.work import check, current_step, remaining
from sfpy.language import parse_text, resolve

EVENTS: list[tuple[float, str, str]] = []
_events_lock = threading.Lock()
PIDS: list[int] = []


def event(component: Prim, what: str) -> None:
    with _events_lock:
        EVENTS.append((time.monotonic(), what, component.sf_name))


def sleep_as_step(seconds: float, label: str) -> str:
    """Run ``sleep seconds`` as a step's long work; 'done', 'cancelled' or 'bounded'."""
    step = current_step()
    check(step)
    process = subprocess.Popen(["sleep", str(seconds)], start_new_session=True)
    PIDS.append(process.pid)

    def stop() -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    with step.blocking(f"{label} sleep {seconds} (pid {process.pid})", on_cancel=stop):
        try:
            process.wait(timeout=remaining(step, None))
        except subprocess.TimeoutExpired:
            stop()
            process.wait()
            return "bounded"
    check(step)
    return "done"


class LongWork(Prim):
    """start: sleep ``seconds``; terminate: sleep ``terminateSeconds`` (0: nothing)."""

    def start(self) -> None:
        with Guarded():
            event(self, "start-begin")
        try:
            sleep_as_step(self.sf_resolve("seconds"), "start")
        finally:
            with Guarded():
                event(self, "start-end")

    def terminate(self, record: TerminationRecord) -> None:
        with Guarded():
            event(self, "terminate")
        seconds = self.sf_resolve("terminateSeconds", 0)
        if seconds:
            outcome = sleep_as_step(seconds, "terminate")
            event(self, f"terminate-{outcome}")
            if outcome == "bounded":
                raise RuntimeError("terminate work stopped by its cleanup bound")

    def ping(self) -> None:
        event(self, "ping")


register("test.LongWork", LongWork)

HEADER = """
#include "org/smartfrog/components.sf"
#include "org/smartfrog/sfcore/workflow/components.sf"
Long extends Prim { sfClass "test.LongWork"; seconds 30; }
"""


def description(body: str) -> Any:
    return resolve(parse_text(HEADER + body, "long.sf"))


@pytest.fixture(autouse=True)
def fresh() -> Any:
    EVENTS.clear()
    PIDS.clear()
    engine_components.reset()
    process = Process("test")
    yield process
    process.shutdown(30)
    for pid in PIDS:  # nothing may be left running
        assert not _alive(pid), f"sleep {pid} is still running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def deploy_in_thread(process: Process, sf_config: Any) -> dict[str, Any]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["app"] = process.deploy(sf_config)
        except DeploymentError as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    outcome["thread"] = thread
    return outcome


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def times(what: str) -> dict[str, float]:
    return {name: at for at, kind, name in EVENTS if kind == what}


def test_parallel_children_do_their_long_work_at_the_same_time(fresh: Process) -> None:
    began = time.monotonic()
    app = fresh.deploy(description("""
        sfConfig extends Parallel {
          a extends Long { seconds 1.5; }  b extends Long { seconds 1.5; }
          c extends Long { seconds 1.5; }
        }"""))
    took = time.monotonic() - began
    assert set(times("start-end")) == {"a", "b", "c"}
    # Sequential would be 4.5 s; side by side about 1.5 s (generous for a loaded machine).
    assert took < 3.5, took
    assert engine_components.overlaps() == 0
    assert not app.sf_is_terminated


def test_asynchronous_parallel_children_overlap_too(fresh: Process) -> None:
    began = time.monotonic()
    fresh.deploy(description("""
        sfConfig extends Parallel { asynchCreateChild true;
          a extends Long { seconds 1.5; }  b extends Long { seconds 1.5; }
          c extends Long { seconds 1.5; }
        }"""))
    wait_for(lambda: len(times("start-end")) == 3)
    assert time.monotonic() - began < 3.5
    assert engine_components.overlaps() == 0


def test_compound_keeps_its_order_long_work_included(fresh: Process) -> None:
    fresh.deploy(description("""
        sfConfig extends Compound {
          disk extends Long { seconds 0.5; }  domain extends Long { seconds 0.1; }
        }"""))
    ends, begins = times("start-end"), times("start-begin")
    assert begins["domain"] >= ends["disk"]


def test_a_timeout_that_fires_cancels_the_start_in_progress(fresh: Process) -> None:
    began = time.monotonic()
    with pytest.raises(DeploymentError) as raised:
        fresh.deploy(description("""
            sfConfig extends Timeout { time 500; action extends Long { seconds 30; } }"""))
    assert time.monotonic() - began < 10
    record = raised.value.record
    assert not record.is_normal
    assert "timeout occurred" in record.description
    # The terminate hook ran after the start hook returned.
    order = [kind for _, kind, name in EVENTS if name == "action"]
    assert order == ["start-begin", "start-end", "terminate"]
    assert not _alive(PIDS[0])


def test_a_termination_request_cancels_a_start_in_progress(fresh: Process) -> None:
    outcome = deploy_in_thread(fresh, description("sfConfig extends Long;"))
    wait_for(lambda: fresh.activities())
    activity = fresh.activities()[0]
    assert activity.path == "sfConfig" and activity.phase == "start"
    assert "sleep 30" in activity.what
    began = time.monotonic()
    fresh.application("sfConfig").sf_terminate(TerminationRecord.normal("stop now"))
    outcome["thread"].join(10)
    assert time.monotonic() - began < 5
    assert "error" in outcome  # the start did not complete: a failed deployment
    assert "stop now" in outcome["error"].record.description
    assert fresh.wait_empty(10)
    assert not fresh.activities()


def test_liveness_keeps_pinging_others_while_one_works(fresh: Process) -> None:
    outcome = deploy_in_thread(fresh, description("""
        sfConfig extends Parallel { asynchCreateChild true;
          pinged extends Long { seconds 0.01; sfLivenessDelay 1; }
          busy extends Long { seconds 30; }
        }"""))
    wait_for(lambda: "busy" in times("start-begin") and "pinged" in times("start-end"))
    seen = times("start-begin")["busy"]
    wait_for(lambda: sum(1 for at, kind, name in EVENTS if kind == "ping" and at > seen) >= 2)
    outcome["thread"].join(10)
    fresh.terminate_all()
    assert fresh.wait_empty(10)


def test_hooks_never_interleave_while_work_overlaps(fresh: Process) -> None:
    fresh.deploy(description("""
        sfConfig extends Parallel {
          a extends Long { seconds 0.3; }  b extends Long { seconds 0.3; }
          c extends Long { seconds 0.3; }  d extends Long { seconds 0.3; }
        }"""))
    assert engine_components.overlaps() == 0


def test_cleanup_is_bounded_and_reported(fresh: Process) -> None:
    app = fresh.deploy(description("""
        sfConfig extends Long { seconds 0.01; terminateSeconds 30; terminateTimeout 0.5; }"""))
    began = time.monotonic()
    app.sf_terminate()
    assert fresh.wait_empty(10)
    assert time.monotonic() - began < 5
    assert ("terminate-bounded" in [kind for _, kind, _ in EVENTS])
    assert [path for path, _ in fresh.cleanup_failures] == ["sfConfig"]


def test_the_process_default_bound_applies_without_an_attribute() -> None:
    process = Process("bounded", terminate_timeout=0.5)
    try:
        app = process.deploy(description("""
            sfConfig extends Long { seconds 0.01; terminateSeconds 30; }"""))
        app.sf_terminate()
        assert process.wait_empty(10)
        assert process.cleanup_failures
    finally:
        process.shutdown(10)


def test_termination_waits_for_a_child_terminating_in_another_thread(fresh: Process) -> None:
    app = fresh.deploy(description("""
        sfConfig extends Compound {
          a extends Long { seconds 0.01; terminateSeconds 1; }
          b extends Long { seconds 0.01; }
        }"""))
    a = app.sf_resolve("a")
    a.sf_terminate_quietly()  # a's cleanup (1 s of work) runs in the lifecycle worker
    wait_for(lambda: any(act.phase == "terminate" for act in fresh.activities()))
    app.sf_terminate()
    record = app.wait_terminated(10)
    assert record is not None
    assert a.sf_is_terminated  # the root ended only after a's cleanup was done
    assert "terminate-done" in [kind for _, kind, name in EVENTS if name == "a"]


def test_a_lazy_value_that_cannot_be_resolved_is_an_error_not_an_absent_attribute(
    fresh: Process,
) -> None:
    app = fresh.deploy(description("""
        sfConfig extends Long { seconds 0.01; workDir "/tmp"; script LAZY wrokDir; }"""))
    assert app.sf_resolve("missing", "absent") == "absent"  # really absent: the default
    from sfpy.engine import ResolutionError

    with pytest.raises(ResolutionError, match="wrokDir"):
        app.sf_resolve("script", None)
