"""Fakes for the host-layer tests: a Step implementing :class:`sfpy.host.work.Step`, a journal
implementing :class:`sfpy.host.runner.JournalLike`, and waiting for conditions."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import psutil


class FakeStep:
    """A step as the engine makes one: records every blocking/unblocking in order, can be
    cancelled from another thread (calling the current wait's ``on_cancel``), and may carry a
    deadline (and the ``bound`` it came from)."""

    def __init__(self, deadline: float | None = None, bound: float | None = None) -> None:
        self._cancelled = threading.Event()
        self._reason = ""
        self.deadline = deadline
        if bound is not None:
            self.bound = bound
        self.events: list[tuple[str, str]] = []
        self._on_cancel: Callable[[], None] | None = None
        self._lock = threading.Lock()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def reason(self) -> str:
        return self._reason

    @contextlib.contextmanager
    def blocking(self, what: str, on_cancel: Callable[[], None] | None = None) -> Iterator[None]:
        with self._lock:
            self.events.append(("block", what))
            self._on_cancel = on_cancel
            already = self.cancelled
        if already and on_cancel is not None:
            on_cancel()
        try:
            yield
        finally:
            with self._lock:
                self._on_cancel = None
                self.events.append(("unblock", what))

    def wait_cancelled(self, timeout: float) -> bool:
        return self._cancelled.wait(timeout)

    def cancel(self, reason: str = "terminated by a test") -> None:
        with self._lock:
            self._reason = reason
            self._cancelled.set()
            callback = self._on_cancel
        if callback is not None:
            callback()

    def blocked(self) -> bool:
        with self._lock:
            return bool(self.events) and self.events[-1][0] == "block"


class FakeJournal:
    """Records every call; ``on_done`` may look at the world when an entry is closed."""

    def __init__(self, on_done: Callable[[int, dict[str, Any]], None] | None = None) -> None:
        self.calls: list[tuple[str, Any, ...]] = []
        self.entries: dict[int, dict[str, Any]] = {}
        self.on_done = on_done
        self._lock = threading.Lock()

    def add(self, kind: str, owner: str, data: Mapping[str, Any]) -> int:
        with self._lock:
            entry = len(self.entries) + 1
            self.entries[entry] = {"kind": kind, "owner": owner, **data, "done": False}
            self.calls.append(("add", entry, kind, owner, dict(data)))
            return entry

    def tag(self, entry: int) -> str:
        return f"test-run/{entry}"

    def update(self, entry: int, data: Mapping[str, Any]) -> None:
        with self._lock:
            self.entries[entry].update(data)
            self.calls.append(("update", entry, dict(data)))

    def done(self, entry: int) -> None:
        if self.on_done is not None:
            self.on_done(entry, dict(self.entries[entry]))
        with self._lock:
            self.entries[entry]["done"] = True
            self.calls.append(("done", entry))

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    return wait_for(lambda: not running(pid), timeout)


def own_children() -> set[int]:
    return {child.pid for child in psutil.Process(os.getpid()).children(recursive=True)}


def written(path) -> bool:
    """``path`` holds a whole line (``echo $! > path`` creates the file before writing it)."""
    try:
        return path.read_text().endswith("\n")
    except FileNotFoundError:
        return False

