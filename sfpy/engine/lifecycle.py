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

Only the deploying thread, the lifecycle worker and the few blocking calls
(``sf_detach``, ``sf_create_new_child`` from outside a hook) wait for a lifecycle lock, and
none of them holds another lifecycle lock that someone else waits for. What a hook must not do: wait for another thread that itself needs
a lifecycle step of the same application to finish (it would wait until the hook returns).
Subtrees that are detached keep their application's lock; that only serialises more.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

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
