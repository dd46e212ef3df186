"""The runner honours the step it runs in: nothing starts once cancelled, a cancel stops the
running command's whole group at once and raises WorkCancelled, the step's deadline (a cleanup
bound) stops a command and says so, and every wait is wrapped in blocking()."""

from __future__ import annotations

import logging
import threading
import time

import psutil
import pytest
from host_support import FakeJournal, FakeStep, own_children, wait_for, wait_gone, written

from sfpy.host.runner import NOT_STARTED, ShellRunner
from sfpy.host.work import WorkCancelled, activate

LOG = logging.getLogger("sfpy.test.host")


@pytest.fixture(autouse=True)
def no_leftover_children():
    before = own_children()
    yield
    assert wait_for(lambda: not own_children() - before, 3), "a child was left behind"


def run_in_thread(target):
    """Run ``target`` in a thread; returns (thread, outcome dict with result or error)."""
    outcome: dict = {}

    def body():
        try:
            outcome["result"] = target()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error
        outcome["ended"] = time.monotonic()

    thread = threading.Thread(target=body)
    thread.start()
    return thread, outcome


def test_a_cancel_stops_the_whole_group_at_once_and_raises_work_cancelled(tmp_path):
    runner = ShellRunner(LOG, grace=5.0)
    step = FakeStep()

    def start():
        with activate(step):
            return runner.run("sleep 30 & echo $! > bg; sleep 30", cwd=str(tmp_path),
                              label="startScript")

    thread, outcome = run_in_thread(start)
    assert wait_for(lambda: step.blocked() and written(tmp_path / "bg"))
    background = int((tmp_path / "bg").read_text())
    leader = int(step.events[-1][1].split("pid ")[1].rstrip(")"))
    cancelled = time.monotonic()
    step.cancel("Timeout fired")
    thread.join(10)
    assert outcome["ended"] - cancelled < 1.0, "the cancel waited for the command"
    assert isinstance(outcome.get("error"), WorkCancelled)
    assert "Timeout fired" in str(outcome["error"])
    assert wait_gone(leader) and wait_gone(background)
    result = runner.history[-1]
    assert result.cancelled and not result.ok
    assert result.describe().startswith(f"startScript (pid {leader}) was stopped")


def test_a_cancel_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path):
    runner = ShellRunner(LOG, grace=0.3)
    step = FakeStep()

    def start():
        with activate(step):
            return runner.run("trap '' TERM; touch ready; sleep 30", cwd=str(tmp_path))

    thread, outcome = run_in_thread(start)
    assert wait_for(lambda: step.blocked() and (tmp_path / "ready").exists())
    cancelled = time.monotonic()
    step.cancel()
    thread.join(10)
    assert outcome["ended"] - cancelled < 0.3 + 1.0
    assert isinstance(outcome.get("error"), WorkCancelled)
    assert runner.history[-1].exit_code == -9


def test_nothing_starts_in_a_cancelled_step(tmp_path):
    journal = FakeJournal()
    runner = ShellRunner(LOG, journal=journal)
    step = FakeStep()
    step.cancel("terminated")
    with activate(step), pytest.raises(WorkCancelled, match="terminated"):
        runner.run(["touch", str(tmp_path / "made")])
    assert not (tmp_path / "made").exists()
    assert journal.calls == [] and step.events == []


def test_the_deadline_of_a_step_stops_a_command_and_says_so():
    runner = ShellRunner(LOG, grace=0.5)
    step = FakeStep(deadline=time.monotonic() + 0.5, bound=0.5)
    began = time.monotonic()
    with activate(step):
        result = runner.run_script("sleep 30", label="terminateScript")
    assert time.monotonic() - began < 0.5 + 1.5
    assert result.bounded and not result.timed_out and not result.ok
    assert result.describe() == (f"terminateScript (pid {result.pid}) was stopped after its "
                                 "cleanup bound of 0.5 s")
    assert wait_gone(result.pid)


def test_without_a_known_bound_the_text_gives_the_time_waited():
    runner = ShellRunner(LOG, grace=0.5)
    step = FakeStep(deadline=time.monotonic() + 0.3)
    with activate(step):
        result = runner.run(["sleep", "30"], label="terminateScript")
    assert result.bounded
    assert "was stopped at its cleanup bound (after 0." in result.describe()


def test_a_shorter_timeout_than_the_deadline_is_a_timeout_not_the_bound():
    runner = ShellRunner(LOG, grace=0.5)
    step = FakeStep(deadline=time.monotonic() + 30, bound=30)
    with activate(step):
        result = runner.run(["sleep", "30"], timeout=0.2)
    assert result.timed_out and not result.bounded


def test_a_command_after_the_deadline_is_not_started(tmp_path):
    runner = ShellRunner(LOG)
    step = FakeStep(deadline=time.monotonic() - 1, bound=60)
    with activate(step):
        result = runner.run(["touch", str(tmp_path / "made")], label="terminateScript")
    assert result.exit_code == NOT_STARTED and result.bounded and result.pid is None
    assert "was not started" in result.describe()
    assert not (tmp_path / "made").exists()


def test_every_wait_is_wrapped_in_blocking_in_order_with_label_and_pid():
    runner = ShellRunner(LOG)
    step = FakeStep()
    seen_running: list[bool] = []
    original = step.blocking

    def observing(what, on_cancel=None):
        # started and not yet reaped (a zombie is fine: the wait reaps it)
        seen_running.append(psutil.pid_exists(int(what.split("pid ")[1].rstrip(")"))))
        return original(what, on_cancel)

    step.blocking = observing  # type: ignore[method-assign]
    with activate(step):
        first = runner.run(["true"], label="deployScript")
        second = runner.run(["echo", "x"])
    assert step.events == [
        ("block", f"deployScript true (pid {first.pid})"),
        ("unblock", f"deployScript true (pid {first.pid})"),
        ("block", f"echo x (pid {second.pid})"),
        ("unblock", f"echo x (pid {second.pid})"),
    ]
    assert all(seen_running)  # blocking began once the command was started, before its end


def test_waiting_for_a_busy_serial_shell_is_blocking_and_cancellable():
    runner = ShellRunner(LOG, grace=0.5)  # one command at a time
    holder = FakeStep()
    waiter = FakeStep()

    def hold():
        with activate(holder):
            return runner.run(["sleep", "30"])

    def wait():
        with activate(waiter):
            return runner.run(["true"], label="startScript")

    first, first_outcome = run_in_thread(hold)
    assert wait_for(holder.blocked)
    second, second_outcome = run_in_thread(wait)
    assert wait_for(waiter.blocked)
    assert waiter.events[-1] == ("block", "waiting for the shell to run startScript")
    waiter.cancel("terminated")
    second.join(5)
    assert isinstance(second_outcome.get("error"), WorkCancelled)
    holder.cancel()
    first.join(5)
    assert isinstance(first_outcome.get("error"), WorkCancelled)
    assert runner.run(["true"]).ok  # the shell's lock was not left taken
