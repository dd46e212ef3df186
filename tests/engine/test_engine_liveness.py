"""Liveness: parents ping started children every sfLivenessDelay seconds; a failed ping
terminates within one delay, sfLivenessFactor missed pings within delay × factor."""

from __future__ import annotations

import threading
import time

from engine_components import COMPOUND, cd

from sfpy.engine import State

SLACK = 1.10  # the "+10%"


def started_at(component) -> float:
    return component.state_times[State.STARTED]


def test_a_failed_ping_terminates_the_compound_abnormally_within_the_delay(process):
    delay = 0.4
    app = process.deploy(
        cd(
            COMPOUND,
            sfLivenessDelay=delay,
            ok=cd("test.Recorder"),
            watched=cd("test.Pinged", pingMode="fail"),
        )
    )
    watched = app.sf_resolve("watched")
    record = app.wait_terminated(5)
    assert record is not None
    assert record.type == "abnormal"
    assert record.id == "sfConfig:watched"
    assert "liveness failure" in record.description
    assert "the thing it watches is gone" in record.description
    elapsed = watched.state_times[State.TERMINATED] - started_at(watched)
    assert elapsed <= delay * SLACK


def test_factor_missed_pings_terminate_within_delay_times_factor(process):
    delay, factor = 0.3, 3
    app = process.deploy(
        cd(
            COMPOUND,
            sfLivenessDelay=delay,
            sfLivenessFactor=factor,
            watched=cd("test.Pinged", pingMode="miss"),
        )
    )
    watched = app.sf_resolve("watched")
    record = app.wait_terminated(5)
    assert record is not None and record.type == "abnormal"
    assert f"missed {factor} pings" in record.description
    assert watched.pings == factor
    elapsed = watched.state_times[State.TERMINATED] - started_at(watched)
    assert delay * (factor - 1) <= elapsed <= delay * factor * SLACK


def test_an_answer_resets_the_missed_count(process):
    # pings 1-2 answer, then misses: a failure needs `factor` misses *in a row*
    delay, factor = 0.15, 2
    app = process.deploy(
        cd(
            COMPOUND,
            sfLivenessDelay=delay,
            sfLivenessFactor=factor,
            watched=cd("test.Pinged", pingMode="miss", failAfter=2),
        )
    )
    watched = app.sf_resolve("watched")
    assert app.wait_terminated(5) is not None
    assert watched.pings == 2 + factor


def test_healthy_children_are_pinged_every_delay_and_keep_running(process):
    delay = 0.1
    app = process.deploy(
        cd(
            COMPOUND,
            sfLivenessDelay=delay,
            a=cd("test.Pinged"),
            b=cd(COMPOUND, c=cd("test.Pinged")),
        )
    )
    time.sleep(0.55)
    assert app.state is State.STARTED
    for name in ("a", "b:c"):
        pinged = app.sf_resolve(name)
        assert 3 <= pinged.pings <= 7
        gaps = [b - a for a, b in zip(pinged.ping_times, pinged.ping_times[1:], strict=False)]
        assert all(delay * 0.5 < gap < delay * 3 for gap in gaps)


def test_liveness_off_with_zero_delay(process):
    app = process.deploy(
        cd(COMPOUND, sfLivenessDelay=0, watched=cd("test.Pinged", pingMode="fail"))
    )
    assert process.scheduler.pending() == 0  # no liveness timer at all: nothing can ping later
    assert app.state is State.STARTED
    assert app.sf_resolve("watched").pings == 0


def test_a_child_can_set_its_own_delay(process):
    app = process.deploy(
        cd(
            COMPOUND,
            sfLivenessDelay=100,
            fast=cd("test.Pinged", sfLivenessDelay=0.1, pingMode="fail"),
            slow=cd("test.Pinged"),
        )
    )
    record = app.wait_terminated(2)
    assert record is not None and record.id == "sfConfig:fast"
    assert app.sf_resolve("slow").pings == 0


def test_one_scheduler_thread_for_many_components(process):
    before = threading.active_count()
    children = {f"p{i}": cd("test.Pinged") for i in range(300)}
    app = process.deploy(cd(COMPOUND, sfLivenessDelay=0.05, **children))
    pinged = [app.sf_resolve(f"p{i}") for i in range(300)]
    deadline = time.monotonic() + 10
    while not all(p.pings >= 2 for p in pinged) and time.monotonic() < deadline:
        assert threading.active_count() <= before + 2  # the scheduler (+ a passing worker)
        time.sleep(0.01)
    assert threading.active_count() <= before + 2
    assert all(p.pings >= 2 for p in pinged)
    # one timer per (parent, delay), not one per component
    assert process.scheduler.pending() <= 3


def test_a_terminated_child_is_no_longer_pinged(process):
    app = process.deploy(
        cd(COMPOUND, sfLivenessDelay=0.05, a=cd("test.Pinged"), b=cd("test.Pinged"))
    )
    a, b = app.sf_resolve("a"), app.sf_resolve("b")
    a.sf_terminate_quietly()
    a.wait_terminated(2)
    count = a.pings
    # three more liveness rounds of the parent (its sibling is pinged in each), then look
    rounds = b.pings + 3
    deadline = time.monotonic() + 10
    while b.pings < rounds and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b.pings >= rounds
    assert a.pings == count
    assert app.state is State.STARTED
