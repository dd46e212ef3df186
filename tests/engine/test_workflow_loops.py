"""Loops run in constant memory: a Repeat holds only the iteration in progress.

A Repeat may run for weeks (``repeat -1``), so a finished iteration must leave nothing behind:
not its attribute in the Repeat, not a cancelled timer in the scheduler's heap, not a
liveness monitor, not a stack frame. Each test counts what is alive while the loop runs
(live :class:`Prim` objects after a collection, the scheduler's heap, the stack depth at
which each iteration starts) and checks that it does not grow with the count.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sfpy.engine import Prim, Process, TerminationRecord, register
from sfpy.engine.registry import unregister
from sfpy.engine.scheduler import Scheduler
from sfpy.language import load

PROBE = "test.loops.Probe"

HEADER = """
#include "org/smartfrog/components.sf"
#include "org/smartfrog/sfcore/workflow/components.sf"
Probe extends Prim { sfClass "test.loops.Probe"; }
"""


class Samples:
    """What the probes saw: how many ran, and at every ``every``-th one the number of live
    Prim objects, the traced memory, and the stack depth its start ran at."""

    def __init__(self) -> None:
        self.count = 0
        self.every = 1000
        self.depths: dict[int, set[int]] = {}  # thread -> the depths seen in it
        self.live: list[int] = []
        self.traced: list[int] = []
        self.lock = threading.Lock()


SAMPLES = Samples()


def stack_depth() -> int:
    depth = 0
    frame: Any = sys._getframe(1)
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


def no_recursion(samples: Samples) -> bool:
    assert samples.depths, "no sample"
    # Recursion would give every iteration a deeper stack: thousands of depths. Without it a
    # thread starts iterations from one of a few fixed call sites (the deploying pass, a
    # lifecycle checkpoint, the lifecycle worker's loop), each at its own constant depth.
    assert all(
        len(depths) <= 4 and max(depths) - min(depths) <= 10
        for depths in samples.depths.values()
    ), samples.depths
    return True


def live_prims() -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if isinstance(item, Prim))


class Probe(Prim):
    """An empty action: counts itself, samples every ``every``-th time, then ends normally
    (at once, or from a timer when ``viaTimer`` is true: through the lifecycle worker)."""

    def start(self) -> None:
        samples = SAMPLES
        with samples.lock:
            samples.count += 1
            number = samples.count
        if number % samples.every == 0:
            samples.depths.setdefault(threading.get_ident(), set()).add(stack_depth())
            samples.live.append(live_prims())
            if tracemalloc.is_tracing():
                samples.traced.append(tracemalloc.get_traced_memory()[0])
        if self._sf_context.get("viaTimer") is True:
            self.schedule(0, self.sf_terminate, TerminationRecord.normal("probe done"))
        else:
            self.sf_terminate(TerminationRecord.normal("probe done"))


@pytest.fixture
def samples() -> Iterator[Samples]:
    global SAMPLES
    SAMPLES = Samples()
    register(PROBE, Probe)
    yield SAMPLES
    unregister(PROBE)


@pytest.fixture
def loop(tmp_path) -> Iterator[Callable[[str], Process]]:
    """Deploy ``sfConfig`` text (after HEADER) in a thread of its own (a forever loop never
    returns from its deployment); the Process is shut down afterwards."""
    made: list[tuple[Process, threading.Thread]] = []

    def deploy(text: str) -> Process:
        path = tmp_path / "loop.sf"
        path.write_text(HEADER + text, encoding="utf-8")
        description = load(str(path))
        process = Process("loops")
        thread = threading.Thread(target=process.deploy, args=(description, "loop"), daemon=True)
        thread.start()
        made.append((process, thread))
        return process

    yield deploy
    for process, thread in made:
        process.shutdown(timeout=30)
        thread.join(30)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def wait_terminated(process: Process, timeout: float = 300) -> TerminationRecord:
    app = wait_for(lambda: process.application("loop"), 30, "the loop to be deployed")
    record = app.wait_terminated(timeout)
    assert record is not None, "the loop did not end"
    return record


def test_a_repeat_of_20000_empty_actions_holds_only_the_running_iteration(samples, loop):
    samples.every = 4000
    baseline = live_prims()
    tracemalloc.start()
    try:
        process = loop("sfConfig extends Repeat { repeat 20000; action extends Probe; }")
        app = wait_for(lambda: process.application("loop"), 30, "the loop to be deployed")
        record = wait_terminated(process)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record.is_normal and record.description == "Repeat finished after 20000 runs"
    assert samples.count == 20000 and len(samples.live) == 5
    # The Repeat, the probe that is running and the one that just ended (still on the
    # stack that creates the next): the same at the 4,000th and the 20,000th.
    assert max(samples.live) <= baseline + 3, samples.live
    # Memory does not grow with the count (before: about 4.5 kB per finished iteration,
    # 90 MB for these 20,000).
    assert samples.traced[-1] - samples.traced[0] < 256 * 1024, samples.traced
    assert peak < 16 * 2**20, peak
    # No recursion: in each thread that runs the loop, every iteration starts at one depth.
    assert no_recursion(samples)
    assert not [name for name in app.sf_attributes() if name.startswith("running_")]


def test_repeat_forever_holds_one_iteration_and_releases_it_when_terminated(samples, loop):
    samples.every = 500
    baseline = live_prims()
    process = loop("sfConfig extends Repeat { repeat -1; action extends Probe; }")
    app = wait_for(lambda: process.application("loop"), 30, "the loop to be deployed")
    wait_for(lambda: samples.count >= 5000, 120, "5,000 iterations")
    app.sf_terminate(TerminationRecord.normal("enough"))
    record = app.wait_terminated(30)
    assert record is not None and record.is_normal and record.description == "enough"
    assert max(samples.live) <= baseline + 3, samples.live
    assert no_recursion(samples)
    # Terminated: the Repeat (held here) keeps the iteration it ended with, as a Compound
    # keeps its terminated children's attributes; all the earlier ones are gone.
    del record
    assert live_prims() <= baseline + 2
    assert len([name for name in app.sf_attributes() if name.startswith("running_")]) == 1


def test_deploying_a_forever_loop_of_instant_actions_returns(samples, tmp_path):
    """Iterations that end at once must not keep the deploying thread for ever: deploy
    returns (so ``sfrun --terminate-after`` and a daemon's deploy call work) and the loop
    goes on."""
    register(PROBE, Probe)
    path = tmp_path / "loop.sf"
    path.write_text(
        HEADER + "sfConfig extends Repeat { repeat -1; action extends Probe; }", encoding="utf-8"
    )
    process = Process("loops")
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(process.deploy(load(str(path)), "loop")), daemon=True
    )
    try:
        thread.start()
        thread.join(30)
        assert result, "deploy did not return"
        app = result[0]
        running = samples.count
        wait_for(lambda: samples.count > running + 1000, 30, "the loop to go on")
        app.sf_terminate(TerminationRecord.normal("enough"))
        record = app.wait_terminated(30)
        assert record is not None and record.description == "enough"
    finally:
        process.shutdown(timeout=10)
        thread.join(10)


def test_iterations_with_timers_and_liveness_leave_nothing_in_the_scheduler(samples, loop):
    """Each iteration is a Timeout (a 60 s timer, cancelled when its action ends) around a
    Sequence (a Compound whose children are pinged: a liveness timer, cancelled when it
    ends). Cancelled timers wait in the scheduler's heap until they come due: they must
    neither keep their iteration alive nor pile up."""
    samples.every = 500
    baseline = live_prims()
    process = loop(
        "sfConfig extends Repeat { repeat 3000; sfLivenessDelay 30;\n"
        "  action extends Timeout { time 60000; action extends Sequence { a extends Probe; } }\n"
        "}"
    )
    record = wait_terminated(process)
    assert record.is_normal, record
    assert samples.count == 3000
    # The Repeat, the running iteration's Timeout, Sequence and Probe, and the three of the
    # iteration that just ended (still on the stack that creates the next one).
    assert max(samples.live) <= baseline + 7, samples.live
    assert process.scheduler.pending() < 200
    assert no_recursion(samples)


def test_iterations_ended_from_the_lifecycle_worker_do_not_nest(samples, loop):
    """An action that ends from a timer: the next iteration is created in the lifecycle
    worker thread, which must loop, not recurse."""
    samples.every = 100
    process = loop(
        "sfConfig extends Repeat { repeat 1000; action extends Probe { viaTimer true; } }"
    )
    record = wait_terminated(process)
    assert record.is_normal, record
    assert samples.count == 1000
    assert no_recursion(samples)


def test_a_finished_iteration_is_gone_from_the_repeat_once_the_next_one_runs(tmp_path):
    """A Repeat of long-lived actions: while iteration N runs, only ``running_N`` is an
    attribute of the Repeat."""
    register(PROBE, Probe)
    path = tmp_path / "loop.sf"
    path.write_text(
        HEADER + "sfConfig extends Repeat { repeat 3; action extends DoNothing { time 60000; } }",
        encoding="utf-8",
    )
    process = Process("loops")
    try:
        app = process.deploy(load(str(path)), "loop")
        for n in range(3):
            child = wait_for(lambda n=n: app.sf_context().get(f"running_{n}"), 10, f"running_{n}")
            assert [name for name in app.sf_attributes() if name.startswith("running_")] == [
                f"running_{n}"
            ]
            child.sf_terminate(TerminationRecord.normal("next"))
            wait_for(lambda c=child: c.sf_is_terminated, 10, "the iteration to end")
        record = app.wait_terminated(10)
        assert record is not None and record.is_normal
    finally:
        process.shutdown(timeout=10)
        unregister(PROBE)


# -- the scheduler ------------------------------------------------------------------------------
class _Target:
    def run(self) -> None:  # pragma: no cover - never called: the timer is cancelled
        raise AssertionError("a cancelled timer ran")


def test_a_cancelled_timer_lets_go_of_its_callback_at_once():
    scheduler = Scheduler("test")
    try:
        target = _Target()
        gone = weakref.ref(target)
        timer = scheduler.call_later(3600, target.run)
        repeating = scheduler.call_every(3600, target.run)
        del target
        assert gone() is not None  # held by the timers
        timer.cancel()
        repeating.cancel()
        gc.collect()
        assert gone() is None
    finally:
        scheduler.stop()


def test_the_heap_is_compacted_when_most_timers_are_cancelled_and_the_rest_still_run():
    scheduler = Scheduler("test")
    ran: list[int] = []
    try:
        keep = [scheduler.call_later(0.2 + i / 100, ran.append, i) for i in range(5)]
        for _ in range(1000):
            scheduler.call_later(3600, ran.append, -1).cancel()
        assert scheduler.pending() < 200
        wait_for(lambda: len(ran) == 5, 10, "the timers left to run")
        assert ran == [0, 1, 2, 3, 4]
        assert all(not timer.cancelled for timer in keep)
    finally:
        scheduler.stop()
