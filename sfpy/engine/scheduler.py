"""One timer thread per process for liveness pings and component timers.

SmartFrog starts a LivenessSender thread per application root; with thousands of components
that is wasteful. Here every timed thing in a process (liveness rounds, workflow delays and
timeouts) is an entry in one heap served by one thread. Callbacks run in that thread and must
be quick: anything that runs component hooks is handed to the application's lifecycle
worker (see :mod:`sfpy.engine.lifecycle`), never run here.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("sfpy.engine.scheduler")


def _nothing(*args: Any) -> None:
    """What a cancelled timer would call."""


class Timer:
    """A scheduled call; :meth:`cancel` makes sure it does not run (again)."""

    __slots__ = ("when", "interval", "callback", "args", "cancelled", "_scheduler")

    def __init__(
        self,
        scheduler: Scheduler,
        when: float,
        interval: float | None,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        self._scheduler = scheduler
        self.when = when
        self.interval = interval
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Make sure it does not run (again). The callback and its arguments are let go at
        once: a cancelled timer waits in the heap until it comes due (or a compaction), and
        must not keep a terminated component alive meanwhile (a loop of short iterations,
        each cancelling a 15 s liveness timer, would otherwise hold thousands of them)."""
        self._scheduler._cancel(self)

    def __repr__(self) -> str:
        every = f" every {self.interval}s" if self.interval else ""
        return f"<Timer {getattr(self.callback, '__qualname__', self.callback)}{every}>"


class Scheduler:
    """A heap of timers served by one daemon thread, started on first use."""

    def __init__(self, name: str = "sfpy-scheduler") -> None:
        self.name = name
        self._heap: list[tuple[float, int, Timer]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._cancelled = 0  # cancelled timers still in the heap

    # -- scheduling -------------------------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run ``callback(*args)`` once, ``delay`` seconds from now."""
        return self._push(Timer(self, time.monotonic() + max(delay, 0.0), None, callback, args))

    def call_every(
        self, interval: float, callback: Callable[..., Any], *args: Any, first: float | None = None
    ) -> Timer:
        """Run ``callback(*args)`` every ``interval`` seconds (first after ``first``, default
        ``interval``). The period does not drift; rounds missed while the thread was busy
        are skipped, not run in a burst."""
        if interval <= 0:
            raise ValueError("interval must be positive")
        delay = interval if first is None else max(first, 0.0)
        return self._push(Timer(self, time.monotonic() + delay, interval, callback, args))

    def _push(self, timer: Timer) -> Timer:
        with self._condition:
            if self._stopped:
                raise RuntimeError("scheduler stopped")
            heapq.heappush(self._heap, (timer.when, next(self._counter), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            elif self._heap[0][2] is timer:
                self._condition.notify()
        return timer

    def _cancel(self, timer: Timer) -> None:
        with self._condition:
            if timer.cancelled:
                return
            timer.cancelled = True
            timer.callback = _nothing
            timer.args = ()
            self._cancelled += 1
            heap = self._heap
            # Compact when most of the heap is cancelled timers: linear, and rare enough
            # that a cancel stays O(1) on average.
            if self._cancelled > 64 and self._cancelled * 2 > len(heap):
                heap[:] = [entry for entry in heap if not entry[2].cancelled]
                heapq.heapify(heap)
                self._cancelled = 0

    def stop(self) -> None:
        """Stop the thread; pending timers are dropped."""
        with self._condition:
            self._stopped = True
            self._heap.clear()
            self._cancelled = 0
            self._condition.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def pending(self) -> int:
        """How many timers wait (cancelled ones included until they are dropped)."""
        with self._condition:
            return len(self._heap)

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        heap = self._heap
        while True:
            with self._condition:
                while True:
                    if self._stopped:
                        return
                    if not heap:
                        self._condition.wait()
                        continue
                    when, _, timer = heap[0]
                    if timer.cancelled:
                        heapq.heappop(heap)
                        self._cancelled = max(self._cancelled - 1, 0)
                        continue
                    now = time.monotonic()
                    if when > now:
                        self._condition.wait(when - now)
                        continue
                    heapq.heappop(heap)
                    if timer.interval is not None:
                        next_when = when + timer.interval
                        if next_when <= now:  # fell behind: skip the missed rounds
                            next_when = now + timer.interval
                        timer.when = next_when
                        heapq.heappush(heap, (next_when, next(self._counter), timer))
                    callback, args = timer.callback, timer.args  # as one: cancel clears both
                    break
            try:
                callback(*args)
            except Exception:  # noqa: BLE001 - a broken callback must not stop every timer
                log.exception("timer callback %r failed", timer)
