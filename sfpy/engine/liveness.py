"""Liveness: a parent pings its started children every ``sfLivenessDelay`` seconds.

Each component resolves ``sfLivenessDelay`` (seconds; 0 = off) and ``sfLivenessFactor``
ATTRIB-style when it has started (its own attribute, else its parent's, …, else the
process's defaults). Its parent — the process for an application root — then pings it:

* the ``ping`` hook returns: alive (the miss count goes back to 0);
* it raises :class:`~sfpy.engine.errors.PingMissed` (no answer: a remote handle timed out,
  or the component cannot tell yet): a miss; ``sfLivenessFactor`` misses in a row fail;
* it raises anything else: a failed ping, at once.

A failure terminates the *child* abnormally with a record naming it ("liveness failure: …");
its parent then terminates with that record as for any child termination (or a workflow
container decides otherwise). So a dead child is noticed within ``delay`` (failed ping) or
``delay × factor`` (missed pings) seconds.

Cost: one scheduler timer per (watcher, delay) pair, not per component; a round takes the
application's lifecycle lock once per child with ``try_acquire`` and skips a child whose
application is busy running a hook (busy is alive). Ping hooks run in the scheduler thread
and must be quick.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from sfpy.engine.errors import PingMissed
from sfpy.engine.prim import _ENDING, State, describe_exception
from sfpy.engine.termination import TerminationRecord

if TYPE_CHECKING:
    from sfpy.engine.prim import Prim
    from sfpy.engine.scheduler import Scheduler, Timer


class _Group:
    __slots__ = ("delay", "members", "timer")

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.members: dict[Prim, list[int]] = {}  # target -> [misses, factor]
        self.timer: Timer | None = None


class LivenessMonitor:
    """The children one watcher (a Compound or the process) pings, grouped by delay."""

    __slots__ = ("watcher", "scheduler", "groups", "_lock", "_stopped")

    def __init__(self, watcher: Any, scheduler: Scheduler) -> None:
        self.watcher = watcher
        self.scheduler = scheduler
        self.groups: dict[float, _Group] = {}
        self._lock = threading.Lock()
        self._stopped = False

    def watch(self, target: Prim, delay: float, factor: int) -> None:
        if delay <= 0:
            return
        with self._lock:
            if self._stopped:
                return
            for existing in self.groups.values():
                existing.members.pop(target, None)
            group = self.groups.get(delay)
            if group is None:
                group = self.groups[delay] = _Group(delay)
                group.timer = self.scheduler.call_every(delay, self._round, group)
            group.members[target] = [0, factor]

    def unwatch(self, target: Prim) -> None:
        with self._lock:
            for group in self.groups.values():
                group.members.pop(target, None)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for group in self.groups.values():
                if group.timer is not None:
                    group.timer.cancel()
            self.groups.clear()

    def watched(self) -> list[Prim]:
        with self._lock:
            return [target for group in self.groups.values() for target in group.members]

    # -- the scheduler's side -------------------------------------------------------------------
    def _round(self, group: _Group) -> None:
        with self._lock:
            members = list(group.members.items())
            if not members:
                if group.timer is not None:
                    group.timer.cancel()
                if self.groups.get(group.delay) is group:
                    del self.groups[group.delay]
                return
        failures: list[tuple[Prim, str]] = []
        gone: list[Prim] = []
        for target, entry in members:
            state = target.state
            if state in _ENDING:
                gone.append(target)
                continue
            if state is not State.STARTED:
                continue
            lock = target.sf_lifecycle
            if lock is None or not lock.try_acquire():
                continue  # busy running a hook: alive
            try:
                if target.state is not State.STARTED:
                    continue
                lock.hook_depth += 1
                try:
                    target.sf_ping(self.watcher)
                finally:
                    lock.hook_depth -= 1
            except PingMissed as error:
                entry[0] += 1
                if entry[0] >= entry[1]:
                    failures.append(
                        (
                            target,
                            f"missed {entry[0]} pings in a row ({group.delay:g}s apart): "
                            f"{describe_exception(error)}",
                        )
                    )
            except Exception as error:  # noqa: BLE001 - any failure of a ping is a liveness failure
                failures.append((target, f"ping failed: {describe_exception(error)}"))
            else:
                entry[0] = 0
            finally:
                lock.release()
        if gone or failures:
            with self._lock:
                for target in gone:
                    group.members.pop(target, None)
                for target, _ in failures:
                    group.members.pop(target, None)
        for target, why in failures:
            lock = target.sf_lifecycle
            if lock is not None:
                lock.submit(partial(self.sf_fail, target, why))

    def sf_fail(self, target: Prim, why: str) -> None:
        if target.state in _ENDING:
            return
        watcher = self.watcher
        name = watcher.sf_complete_name() if hasattr(watcher, "sf_complete_name") else str(watcher)
        target.sf_terminate_now(
            TerminationRecord.abnormal(
                f"liveness failure: {name} pinging {target.sf_complete_name()}: {why}",
                id=target.sf_complete_name(),
            ),
            notify=True,
        )
