"""The lock discipline: one lifecycle lock per application, and a queue in front of it.

Rule: **every hook of an application's components (deploy, start, terminate, ping,
attribute_changed, timer callbacks) and every state change runs while holding that
application's** :class:`LifecycleLock`, so hooks of one application never run at the same
time, and a termination can never overtake a start that is in progress.

* The thread that deploys an application holds its lock for the deploy and start passes and
  calls :meth:`LifecycleLock.drain` between two hooks, so requests that arrived meanwhile
  (a child terminating itself from its own thread, a liveness failure) run there, in order.
* A lifecycle request (:meth:`LifecycleLock.submit`: ``sf_terminate``, attribute change
  notices, timer callbacks) is queued. It runs at the holder's next checkpoint when no hook
  is running (so a hook is never re-entered by a request it made: ``self.sf_terminate()``
  inside ``start`` takes effect right after ``start`` returns), or else in the application's
  *lifecycle worker*, a thread started on demand that exits when the queue is empty. So
  ``sf_terminate`` never blocks and never runs hooks in a foreign thread (a process-watcher
  thread can terminate its own component without joining itself).
* The scheduler thread only *tries* the lock (:meth:`try_acquire`) for liveness rounds (a
  busy application skips a round) and hands everything else to the worker.

**Long work runs off the lock.** A hook that waits for long work (a command, a VM boot)
does so inside :meth:`sfpy.engine.steps.HookStep.blocking`, which *releases* the lock for
the wait (:meth:`LifecycleLock.release_all`) and takes it back afterwards
(:meth:`LifecycleLock.restore`). Meanwhile other threads run other hooks of the application
(siblings under a Parallel, a Timeout firing, a termination request, liveness rounds), one at
a time as always: two hooks' Python code never interleave, only their waits overlap. A
termination that reaches a component whose hook is waiting cancels that step and waits
(:meth:`LifecycleLock.wait_until`, the lock released) until the hook has returned before it
runs the terminate hook.

Only the deploying thread, the lifecycle worker and the few blocking calls
(``sf_detach``, ``sf_create_new_child`` from outside a hook) wait for a lifecycle lock, and
none of them holds another lifecycle lock that someone else waits for. What a hook must not do: wait for another thread that itself needs
a lifecycle step of the same application to finish (it would wait until the hook returns).
Subtrees that are detached keep their application's lock; that only serialises more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("sfpy.engine.lifecycle")


class LifecycleLock:
    """A re-entrant lock with a queue of deferred lifecycle requests and an on-demand worker."""

    __slots__ = (
        "name",
        "_lock",
        "_owner",
        "_depth",
        "_queue",
        "_queue_lock",
        "_worker",
        "hook_depth",
        "_draining",
        "_changed",
        "_waiters",
        "active_steps",
    )

    def __init__(self, name: str = "application") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._queue: deque[Callable[[], None]] = deque()
        self._queue_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self.hook_depth = 0  # hooks running now (only the holder changes it)
        self._draining = False
        self._changed = threading.Condition(threading.Lock())
        self._waiters = 0
        #: The hook steps in progress in any thread (see :mod:`sfpy.engine.steps`).
        self.active_steps: set[Any] = set()

    # -- the lock -------------------------------------------------------------------------------
    def held(self) -> bool:
        """True when the calling thread holds the lock."""
        return self._owner == threading.get_ident()

    def acquire(self) -> None:
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return
        self._lock.acquire()
        self._owner = me
        self._depth = 1

    def try_acquire(self) -> bool:
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return True
        if not self._lock.acquire(blocking=False):
            return False
        self._owner = me
        self._depth = 1
        return True

    def release(self) -> None:
        if self._owner != threading.get_ident():
            raise RuntimeError("lifecycle lock released by a thread that does not hold it")
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()
            if self._queue:
                self._ensure_worker()

    def release_all(self) -> tuple[int, int, bool]:
        """Release the lock completely (however deep the holder re-entered it) so other
        threads can run hooks while the holder waits; returns what :meth:`restore` needs."""
        if self._owner != threading.get_ident():
            raise RuntimeError("lifecycle lock released by a thread that does not hold it")
        saved = (self._depth, self.hook_depth, self._draining)
        self._depth = 0
        self.hook_depth = 0
        self._draining = False
        self._owner = None
        self._lock.release()
        if self._queue:
            self._ensure_worker()
        self.notify()
        return saved

    def held_by(self, thread: int | None) -> bool:
        """True when thread ``thread`` (an ident) holds the lock now."""
        return thread is not None and self._owner == thread

    def restore(self, saved: tuple[int, int, bool]) -> None:
        """Take the lock back after :meth:`release_all`, as deep as it was held."""
        self._lock.acquire()
        self._owner = threading.get_ident()
        self._depth, self.hook_depth, self._draining = saved

    def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Holder only: release the lock, wait until ``predicate()`` is true (re-checked at
        every :meth:`notify` and every 0.1 s), take the lock back. False on timeout."""
        if predicate():
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        saved = self.release_all()
        try:
            with self._changed:
                self._waiters += 1
                try:
                    while not predicate():
                        left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                        if left <= 0:
                            return False
                        self._changed.wait(left)
                finally:
                    self._waiters -= 1
            return True
        finally:
            self.restore(saved)

    def notify(self) -> None:
        """Something :meth:`wait_until` may wait for has happened (a hook returned, a
        component terminated)."""
        if self._waiters:
            with self._changed:
                self._changed.notify_all()

    def idle(self) -> bool:
        """No request queued, nobody holding the lock, no hook in progress."""
        return not self._queue and self._owner is None and not self.active_steps

    def __enter__(self) -> LifecycleLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- requests -------------------------------------------------------------------------------
    def submit(self, request: Callable[[], None]) -> None:
        """Queue a lifecycle request: the holder runs it at its next checkpoint (after the
        running hook), or the lifecycle worker does."""
        with self._queue_lock:
            self._queue.append(request)
            if self._owner != threading.get_ident():
                self._start_worker_locked()

    post = submit

    def pending(self) -> bool:
        return bool(self._queue)

    def drain(self) -> None:
        """Checkpoint: run the queued requests now, unless a hook is running or a request is
        already being run further up this thread's stack. Only the holder calls it."""
        if self._draining or self.hook_depth or self._owner != threading.get_ident():
            return
        self._draining = True
        try:
            queue = self._queue
            while queue:
                try:
                    request = queue.popleft()
                except IndexError:
                    break
                _run_request(request)
        finally:
            self._draining = False

    def _ensure_worker(self) -> None:
        with self._queue_lock:
            if self._queue:
                self._start_worker_locked()

    def _start_worker_locked(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._work, name=f"sfpy-lifecycle-{self.name}", daemon=True
            )
            self._worker.start()

    def _work(self) -> None:
        while True:
            self.acquire()
            try:
                self.drain()
            finally:
                self.release()
            with self._queue_lock:
                if not self._queue:
                    self._worker = None
                    return


def _run_request(request: Callable[[], None]) -> None:
    try:
        request()
    except Exception:  # noqa: BLE001 - one failing request must not stop the others
        log.exception("lifecycle request %r failed", request)
