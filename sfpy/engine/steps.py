"""Hook steps: the engine's side of :mod:`sfpy.host.work` (long work off the lifecycle lock).

Every hook call (deploy, start, terminate, …) is a :class:`HookStep`, made current for the
thread while the hook runs. Work that blocks wraps the wait in :meth:`HookStep.blocking`:

* the application's lifecycle lock is released for the wait and taken back afterwards, so
  the rest of the application goes on (siblings' long work, timers, termination requests,
  liveness); the hook's own Python code never runs while another hook's does;
* the wait is shown as the component's activity (:class:`Activity`, listed by
  :meth:`sfpy.engine.process.Process.activities`);
* a termination, a Timeout or a liveness failure that reaches the component *cancels* its
  steps: the ``on_cancel`` callbacks stop the work (a process group), and the hook gets
  :class:`~sfpy.host.work.WorkCancelled` from the next thing it runs;
* a terminate step has a *deadline*, the component's cleanup bound (``terminateTimeout``
  seconds, else the process's ``terminate_timeout``, 60 s by default), which the command
  runner applies to every command of that step.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfpy.engine.lifecycle import LifecycleLock
    from sfpy.engine.prim import Prim


@dataclass(frozen=True)
class Activity:
    """Long work in progress: ``what`` (``mkfs.ext4 (pid 4242)``) in ``phase`` of the
    component ``path``, blocking since ``since`` (``time.monotonic()``)."""

    path: str
    phase: str
    what: str
    since: float


class HookStep:
    """One hook call of one component (implements :class:`sfpy.host.work.Step`)."""

    __slots__ = (
        "component",
        "phase",
        "lock",
        "thread",
        "reason",
        "_cancelled",
        "_callbacks",
        "_event",
        "_deadline",
        "_bound",
    )

    def __init__(
        self, component: Prim, phase: str, lock: LifecycleLock, bound: float | None = None
    ) -> None:
        self.component = component
        self.phase = phase
        self.lock = lock
        self.thread = threading.get_ident()
        self.reason = ""
        self._cancelled = False
        self._callbacks: list[Callable[[], None]] = []
        self._event: threading.Event | None = None
        self._deadline: float | None = None
        #: Seconds every command of this step may take in all (terminate: the cleanup bound).
        self._bound = bound

    # -- sfpy.host.work.Step --------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def bound(self) -> float | None:
        """The cleanup bound in seconds (terminate steps), for messages; None: no bound."""
        return self._bound

    @property
    def deadline(self) -> float | None:
        if self._bound is None:
            return None
        if self._deadline is None:
            self._deadline = time.monotonic() + self._bound
        return self._deadline

    @contextlib.contextmanager
    def blocking(self, what: str, on_cancel: Callable[[], None] | None = None) -> Iterator[None]:
        process = self.component.sf_process()
        activity = Activity(self.component.sf_complete_name(), self.phase, what, time.monotonic())
        lock = self.lock
        if on_cancel is not None:
            if self._cancelled:
                _call_soon(on_cancel)
            else:
                self._callbacks.append(on_cancel)
        if process is not None:
            process.activity_changed(activity, True)
        saved = lock.release_all() if lock.held() else None
        try:
            yield
        finally:
            if saved is not None:
                lock.restore(saved)
            if on_cancel is not None and on_cancel in self._callbacks:
                self._callbacks.remove(on_cancel)
            if process is not None:
                process.activity_changed(activity, False)

    def wait_cancelled(self, timeout: float) -> bool:
        if self._cancelled:
            return True
        if self._event is None:
            self._event = threading.Event()
            if self._cancelled:  # cancelled between the check and the event's creation
                return True
        return self._event.wait(max(0.0, timeout))

    # -- the engine's side ----------------------------------------------------------------------
    def cancel(self, reason: str) -> None:
        """Cancel the step: the callbacks of the waits in progress run (each in a thread of
        its own, so the terminating thread never waits for a process group to die)."""
        if self._cancelled:
            return
        self.reason = reason
        self._cancelled = True
        if self._event is not None:
            self._event.set()
        for callback in list(self._callbacks):
            _call_soon(callback)

    def within(self, root: Prim) -> bool:
        """Is this step's component ``root`` or below it?"""
        node: Any = self.component
        while node is not None:
            if node is root:
                return True
            node = node.sf_parent()
        return False

    def __repr__(self) -> str:
        return f"<HookStep {self.component.sf_complete_name()} {self.phase}>"


def _call_soon(callback: Callable[[], None]) -> None:
    def run() -> None:
        try:
            callback()
        except Exception:  # noqa: BLE001 - a failed stop is seen by the waiting thread
            import logging

            logging.getLogger("sfpy.engine").exception("cancelling long work failed")

    threading.Thread(target=run, name="sfpy-cancel", daemon=True).start()
