"""The pieces under the lifecycle: the scheduler, the lifecycle lock, termination records,
component timers."""

from __future__ import annotations

import threading
import time

from engine_components import COMPOUND, cd

from sfpy.engine import State, TerminationRecord
from sfpy.engine.lifecycle import LifecycleLock
from sfpy.engine.scheduler import Scheduler


def test_scheduler_runs_timers_in_time_order_and_skips_cancelled():
    scheduler = Scheduler("test")
    fired: list[str] = []
    done = threading.Event()
    try:
        scheduler.call_later(0.10, fired.append, "late")
        cancelled = scheduler.call_later(0.05, fired.append, "cancelled")
        scheduler.call_later(0.02, fired.append, "early")
        scheduler.call_later(0.15, done.set)
        cancelled.cancel()
        assert done.wait(2)
        assert fired == ["early", "late"]
    finally:
        scheduler.stop()


def test_scheduler_repeats_without_drift_in_one_thread():
    scheduler = Scheduler("test")
    times: list[float] = []
    threads: set[str] = set()

    def tick() -> None:
        times.append(time.monotonic())
        threads.add(threading.current_thread().name)

    try:
        timer = scheduler.call_every(0.05, tick)
        time.sleep(0.53)
        timer.cancel()
        count = len(times)
        # the scheduler runs timers in time order in one thread: once a timer due after two
        # more periods has run, a tick that was still coming would have run before it
        later = threading.Event()
        scheduler.call_later(0.12, later.set)
        assert later.wait(5)
        assert len(times) == count  # cancelled
        assert 8 <= count <= 11
        span = times[-1] - times[0]
        assert abs(span - 0.05 * (count - 1)) < 0.05  # the period does not accumulate drift
        assert threads == {"test"}
    finally:
        scheduler.stop()


def test_a_failing_timer_callback_does_not_stop_the_scheduler():
    scheduler = Scheduler("test")
    done = threading.Event()
    try:
        scheduler.call_later(0.01, lambda: 1 / 0)
        scheduler.call_later(0.03, done.set)
        assert done.wait(2)
    finally:
        scheduler.stop()


def test_lock_requests_from_other_threads_run_in_the_worker_serialised():
    lock = LifecycleLock("t")
    ran: list[str] = []
    with lock:
        submitter = threading.Thread(
            target=lock.submit, args=(lambda: ran.append(threading.current_thread().name),)
        )
        submitter.start()
        submitter.join(5)
        assert not submitter.is_alive() and lock.pending()  # submitted: the worker waits for us
        assert ran == []  # the holder has not reached a checkpoint
    deadline = time.monotonic() + 2
    while not ran and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran == ["sfpy-lifecycle-t"]


def test_lock_requests_by_the_holder_wait_for_the_checkpoint():
    lock = LifecycleLock("t")
    ran: list[str] = []
    with lock:
        lock.hook_depth += 1  # inside a hook
        lock.submit(lambda: ran.append("request"))
        lock.drain()  # no checkpoint while a hook runs
        assert ran == []
        lock.hook_depth -= 1
        lock.drain()
        assert ran == ["request"]


def test_termination_record_reads_like_smartfrogs():
    record = TerminationRecord.abnormal("disk full", id="sfConfig:vm1:disk")
    assert (
        str(record)
        == "Termination Record: sfConfig:vm1:disk,  type: abnormal,  description: disk full"
    )
    assert not record.is_normal and TerminationRecord.normal().is_normal
    assert record.with_id("other") is record
    assert TerminationRecord.normal("x").with_id("sfConfig").id == "sfConfig"
    assert TerminationRecord.external_reference_dead().type == "externalReferenceDead"
    as_data = TerminationRecord.abnormal("boom", cause=ValueError("bad")).to_dict()
    assert as_data == {
        "type": "abnormal",
        "description": "boom",
        "id": None,
        "cause": "ValueError: bad",
    }


def test_component_timers_run_like_hooks_and_stop_at_termination(process):
    app = process.deploy(cd(COMPOUND, a=cd("test.Recorder")))
    component = app.sf_resolve("a")
    calls: list[bool] = []
    component.schedule_every(0.03, lambda: calls.append(component._sf_lifecycle.held()))
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) >= 3 and all(calls)  # under the application's lifecycle lock
    component.sf_terminate_quietly()
    component.wait_terminated(2)
    count = len(calls)
    # a timer due after three more periods has run (timers run in time order), and what
    # it handed to the lifecycle lock is done: a tick still coming would have been seen
    later = threading.Event()
    process.scheduler.call_later(0.1, later.set)
    assert later.wait(5) and process.wait_idle(5)
    assert len(calls) == count


def test_a_failing_timer_terminates_its_component_abnormally(process):
    app = process.deploy(cd(COMPOUND, a=cd("test.Recorder")))
    app.sf_resolve("a").schedule(0.02, lambda: 1 / 0)
    record = app.wait_terminated(2)
    assert record is not None and record.type == "abnormal"
    assert record.id == "sfConfig:a"
    assert "ZeroDivisionError" in record.description
    assert app.state is State.TERMINATED


def test_wait_idle_waits_for_the_lifecycle_work_in_progress(process):
    app = process.deploy(cd(COMPOUND, a=cd("test.Recorder")))
    assert process.wait_idle(5)
    lock = app._sf_lifecycle
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(5)
        assert not process.wait_idle(0.1)  # a hook (here: a thread holding the lock) is running
        app.sf_resolve("a").sf_terminate_quietly()  # queued behind it
        release.set()
        holder.join(5)
        assert process.wait_idle(5)
        assert app.sf_resolve("a").state is State.TERMINATED  # the queued request ran first
    finally:
        release.set()
        holder.join(5)
