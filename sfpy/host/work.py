"""Long work: the seam between whoever runs a step (the engine, during a component's hook) and
the host layer (which runs the commands).

A ``mkfs`` or a VM boot takes seconds to minutes. While a hook waits for such work, the rest
of its application must go on (siblings under a ``Parallel`` run theirs, a ``Timeout`` fires,
liveness pings the others, a termination request is heard), and the wait must be cancellable.
The engine puts a :class:`Step` in :data:`current_step` for the duration of every hook; code
that blocks asks it::

    step = current_step()
    process = subprocess.Popen(argv, start_new_session=True)
    with step.blocking(f"{argv[0]} (pid {process.pid})", on_cancel=stop_the_group):
        process.wait(timeout=step.remaining(timeout))
    step.check()            # raises WorkCancelled when the step was cancelled meanwhile

Outside a hook (a test, a plain script) :data:`NO_STEP` stands in: it never releases
anything, is never cancelled and has no bound. This module imports nothing from sfpy's
engine; the engine implements :class:`Step`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Protocol, runtime_checkable

from sfpy.errors import SfpyError


class WorkCancelled(SfpyError):
    """The step this work belonged to was cancelled (a termination, a Timeout, a liveness
    failure); the work was stopped and the step must end now."""


@runtime_checkable
class Step(Protocol):
    """What a blocking piece of work asks of the step it runs in."""

    @property
    def cancelled(self) -> bool:
        """True once the step was cancelled; blocking work stops as soon as it can."""
        ...

    @property
    def reason(self) -> str:
        """Why the step was cancelled ("" while it is not)."""
        ...

    @property
    def deadline(self) -> float | None:
        """``time.monotonic()`` by which all work of this step must have ended (a cleanup
        bound), or None for no bound."""
        ...

    def blocking(
        self, what: str, on_cancel: Callable[[], None] | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Wrap a wait: the application is free for other hooks meanwhile, and ``what``
        (``mkfs.ext4 (pid 4242)``) is shown as this component's activity. ``on_cancel`` is
        called once, from another thread, if the step is cancelled during the wait (at once
        if it already was): it must make the wait end (stop the process group)."""
        ...

    def wait_cancelled(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking early when cancelled; True if cancelled.
        For polling loops inside :meth:`blocking` (a boot that is waited for)."""
        ...


class _NoStep:
    """Outside any hook: nothing to release, never cancelled, no bound."""

    cancelled = False
    reason = ""
    deadline = None

    @contextlib.contextmanager
    def blocking(self, what: str, on_cancel: Callable[[], None] | None = None) -> Iterator[None]:
        yield

    def wait_cancelled(self, timeout: float) -> bool:
        time.sleep(max(0.0, timeout))
        return False


#: The null step, used where no engine step is active.
NO_STEP: Step = _NoStep()

#: The calling thread's step (the engine sets it around every hook; read it with
#: :func:`current_step`).
CURRENT_STEP: ContextVar[Step | None] = ContextVar("sfpy_current_step", default=None)


def current_step() -> Step:
    """The step the calling thread is in (:data:`NO_STEP` outside a hook)."""
    return CURRENT_STEP.get() or NO_STEP


@contextlib.contextmanager
def activate(step: Step) -> Iterator[Step]:
    """Make ``step`` the calling thread's current step for the ``with`` block (the engine
    does this around every hook)."""
    token = CURRENT_STEP.set(step)
    try:
        yield step
    finally:
        CURRENT_STEP.reset(token)


def remaining(step: Step, timeout: float | None) -> float | None:
    """The time a wait may take: ``timeout`` (None: unbounded), shortened to the step's
    deadline. Never negative."""
    deadline = step.deadline
    if deadline is None:
        return timeout
    left = max(0.0, deadline - time.monotonic())
    return left if timeout is None else min(timeout, left)


def check(step: Step) -> None:
    """Raise :class:`WorkCancelled` if ``step`` was cancelled."""
    if step.cancelled:
        raise WorkCancelled(step.reason or "cancelled")


__all__ = [
    "CURRENT_STEP",
    "NO_STEP",
    "Step",
    "WorkCancelled",
    "activate",
    "check",
    "current_step",
    "remaining",
]
