"""Process groups: every command sfpy runs on a host is the leader of a group of its own.

A command is started in a new session (``start_new_session=True``), so its pid is also its
process group id and everything it forks stays in that group unless it leaves on purpose.
Stopping a command therefore means stopping its *group*: SIGTERM to the group, a grace
period, then SIGKILL; members left behind by a leader that already exited (``sleep 60 &``)
are stopped the same way. Every leader is reaped by whoever started it.

The registry (:func:`register`/:func:`unregister`) knows every group this OS process started
and has not seen end. :func:`stop_all_groups` is what a command does when it must leave now
(a second Ctrl-C): it stops them all at once and says which it had to stop. An ``atexit``
hook does the same as a last resort, since groups in sessions of their own outlive us.

psutil does the process-table work (who is still in a group, creation times).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

#: Seconds between SIGTERM and SIGKILL when a process group is stopped.
DEFAULT_GRACE = 5.0
_POLL = 0.02


@dataclass
class Group:
    """A running group this OS process started: its leader and how it reads in a report."""

    process: subprocess.Popen
    description: str

    @property
    def pgid(self) -> int:
        return self.process.pid


_groups: dict[int, Group] = {}
_groups_lock = threading.Lock()


def register(process: subprocess.Popen, description: str) -> None:
    """Remember a group just started (``process`` is its leader)."""
    with _groups_lock:
        _groups[process.pid] = Group(process, description)


def unregister(process: subprocess.Popen) -> None:
    """Forget a group once it is gone (or handed to someone else to stop)."""
    with _groups_lock:
        group = _groups.get(process.pid)
        if group is not None and group.process is process:
            del _groups[process.pid]


def running_groups() -> list[Group]:
    """The registered groups, oldest first."""
    with _groups_lock:
        return list(_groups.values())


def creation_time(pid: int) -> float | None:
    """When process ``pid`` was created (seconds since 1970, as psutil reports it): with the
    pid it identifies a process even after the pid was reused. None if it is gone."""
    import psutil  # here: a command that only checks a description never needs it

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def group_members(pgid: int) -> list[psutil.Process]:
    """The processes of group ``pgid`` that still run. Zombies do not count: an orphan is
    reaped by init whenever init gets to it, but it no longer runs."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []
    import psutil

    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                continue
            if os.getpgid(process.pid) == pgid:
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return members


def group_alive(pgid: int) -> bool:
    """Does group ``pgid`` still have a running member?"""
    return bool(group_members(pgid))


def signal_group(pgid: int, number: int) -> bool:
    """Send signal ``number`` to group ``pgid``; False when there is no such group."""
    try:
        os.killpg(pgid, number)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop_group(process: subprocess.Popen, grace: float = DEFAULT_GRACE) -> bool:
    """SIGTERM to the group of ``process`` (its leader), SIGKILL after ``grace`` seconds,
    reap the leader, then stop what was left in the group. Safe when everything already
    exited. True when the group is gone."""
    pgid = process.pid
    if process.poll() is None:
        signal_group(pgid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            signal_group(pgid, signal.SIGKILL)
            process.wait()
    return stop_leftovers(pgid, grace)


def stop_leftovers(pgid: int, grace: float = DEFAULT_GRACE) -> bool:
    """Processes still in group ``pgid`` after its leader exited: SIGTERM, then SIGKILL
    after ``grace``. True when the group is gone."""
    if not group_alive(pgid):
        return True
    signal_group(pgid, signal.SIGTERM)
    if _wait_group_gone(pgid, grace):
        return True
    signal_group(pgid, signal.SIGKILL)
    return _wait_group_gone(pgid, 1.0)


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


class Escalation:
    """Stopping a group without waiting for it (a cancel arrives on another thread, which
    must not block): SIGTERM now, SIGKILL after ``grace`` unless :meth:`cancel` came first
    (the waiting thread saw the group end and reaped it)."""

    def __init__(self, process: subprocess.Popen, grace: float) -> None:
        self.process = process
        self._timer = threading.Timer(grace, self._kill)
        self._timer.daemon = True
        self._lock = threading.Lock()
        self._done = False
        self.started = False

    def start(self) -> None:
        with self._lock:
            if self.started or self._done:  # once; never after the group was seen to end
                return
            self.started = True
            signal_group(self.process.pid, signal.SIGTERM)
            self._timer.start()

    def _kill(self) -> None:
        with self._lock:
            if not self._done:
                signal_group(self.process.pid, signal.SIGKILL)

    def cancel(self) -> None:
        with self._lock:
            self._done = True
            self._timer.cancel()


def stop_all_groups(grace: float = DEFAULT_GRACE) -> list[str]:
    """Stop every registered group still running, all at once: SIGTERM to each, up to
    ``grace`` seconds for them all, SIGKILL to the rest, reap the leaders. Returns one line
    per group it had to stop (``pid 4242: mkfs.ext4 /dev/loop0``), oldest first."""
    with _groups_lock:
        groups = list(_groups.values())
        _groups.clear()
    stopped = []
    for group in groups:
        if group.process.poll() is None or group_alive(group.pgid):
            stopped.append(group)
            signal_group(group.pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for group in stopped:
        while group_alive(group.pgid) and time.monotonic() < deadline:
            group.process.poll()
            time.sleep(_POLL)
    for group in stopped:
        if group_alive(group.pgid):
            signal_group(group.pgid, signal.SIGKILL)
        try:
            group.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
    return [f"pid {group.pgid}: {group.description}" for group in stopped]


@atexit.register
def _stop_everything_at_exit() -> None:
    """Last resort when the Python process exits with groups still running (an application
    nobody terminated): they run in sessions of their own, so nothing else would stop them."""
    try:
        stop_all_groups(1.0)
    except Exception:  # noqa: BLE001 - exiting anyway
        pass


__all__ = [
    "DEFAULT_GRACE",
    "Escalation",
    "Group",
    "creation_time",
    "group_alive",
    "group_members",
    "register",
    "running_groups",
    "signal_group",
    "stop_all_groups",
    "stop_group",
    "stop_leftovers",
    "unregister",
]
