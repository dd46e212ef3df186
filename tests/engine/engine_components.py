"""Components the engine tests deploy (also loaded by sfrun subprocesses through PYTHONPATH).

Each records what happens to it in a shared journal: an in-memory list, and when the
component has a ``journal`` attribute (a file path) also a line in that file, so a test can
check the order of hooks across a whole tree, in this process or in an sfrun subprocess.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sfpy.engine import Compound, LivenessError, PingMissed, Prim, register
from sfpy.language.model import ComponentDescription

PRIM = "org.smartfrog.sfcore.prim.PrimImpl"
COMPOUND = "org.smartfrog.sfcore.compound.CompoundImpl"

JOURNAL: list[tuple[str, str]] = []
_journal_lock = threading.Lock()
_running = {"hooks": 0, "overlaps": 0}
#: set by a Recorder with ``holdForRequest`` when its start hook begins
GATE = threading.Event()


def note(component: Prim, event: str) -> None:
    path = component.sf_complete_name()
    with _journal_lock:
        JOURNAL.append((event, path))
    file = component.sf_resolve("ATTRIB journal", None)
    if isinstance(file, str):
        with open(file, "a", encoding="utf-8") as handle:
            handle.write(f"{event} {path}\n")


class Guarded:
    """Counts hooks running at the same time (the lifecycle lock must prevent it)."""

    def __enter__(self) -> None:
        with _journal_lock:
            _running["hooks"] += 1
            if _running["hooks"] > 1:
                _running["overlaps"] += 1

    def __exit__(self, *exc: object) -> None:
        with _journal_lock:
            _running["hooks"] -= 1


def overlaps() -> int:
    return _running["overlaps"]


def reset() -> None:
    with _journal_lock:
        JOURNAL.clear()
        GATE.clear()
        _running["hooks"] = 0
        _running["overlaps"] = 0


class Recorder(Prim):
    """Journals every hook. Attributes: ``failIn`` ("deploy"/"start"/"terminate"/"ping")
    makes that hook raise; ``sleepIn`` + ``sleep`` (seconds) make a hook slow."""

    def _hook(self, phase: str) -> None:
        with Guarded():
            note(self, phase)
            if self.sf_resolve("sleepIn", None) == phase:
                time.sleep(float(self.sf_resolve("sleep", 0.2)))
            if phase == "start" and self.sf_resolve("holdForRequest", False) is True:
                # keep this hook running until another thread has asked for a lifecycle step
                GATE.set()
                deadline = time.monotonic() + 10
                while not self._sf_lifecycle.pending() and time.monotonic() < deadline:
                    time.sleep(0.005)
                time.sleep(0.05)
            if self.sf_resolve("failIn", None) == phase:
                raise RuntimeError(f"{phase} refused by {self.sf_name}")

    def deploy(self) -> None:
        self._hook("deploy")

    def start(self) -> None:
        self._hook("start")

    def terminate(self, record) -> None:  # noqa: ANN001
        self._hook("terminate")

    def attribute_changed(self, name, old, new) -> None:  # noqa: ANN001
        note(self, f"changed:{name}")


class RecorderCompound(Compound):
    """A Compound that journals its own hooks."""

    def deploy(self) -> None:
        note(self, "deploy")

    def start(self) -> None:
        note(self, "start")

    def terminate(self, record) -> None:  # noqa: ANN001
        note(self, "terminate")


class Pinged(Prim):
    """Liveness target: ``pingMode`` "ok" (default), "fail" (raise LivenessError) or "miss"
    (raise PingMissed); ``failAfter`` pings answer normally first. Counts pings."""

    def __init__(self) -> None:
        super().__init__()
        self.pings = 0
        self.ping_times: list[float] = []

    def ping(self) -> None:
        self.pings += 1
        self.ping_times.append(time.monotonic())
        if self.pings <= int(self.sf_resolve("failAfter", 0)):
            return
        mode = self.sf_resolve("pingMode", "ok")
        if mode == "fail":
            raise LivenessError("the thing it watches is gone")
        if mode == "miss":
            raise PingMissed("no answer")


class SelfTerminating(Prim):
    """Terminates itself from another thread ``after`` seconds after start (normally, or
    abnormally with ``abnormal true``), as a component watching a process would."""

    def start(self) -> None:
        from sfpy.engine import TerminationRecord

        delay = float(self.sf_resolve("after", 0.0))
        abnormal = self.sf_resolve("abnormal", False) is True
        gated = self.sf_resolve("afterGate", False) is True

        def later() -> None:
            if gated:
                GATE.wait(10)
            time.sleep(delay)
            record = (
                TerminationRecord.abnormal("it broke")
                if abnormal
                else TerminationRecord.normal("work done")
            )
            self.sf_terminate(record)

        threading.Thread(target=later, daemon=True).start()

    def terminate(self, record) -> None:  # noqa: ANN001
        note(self, "terminate")


class Finisher(Prim):
    """Does its work in start, then honours sfShouldTerminate & co. (a workflow-enabled prim)."""

    def start(self) -> None:
        note(self, "start")
        self.sf_work_done()

    def terminate(self, record) -> None:  # noqa: ANN001
        note(self, "terminate")


class Sequential(Compound):
    """A tiny workflow container: runs its actions one after another, each created when the
    previous one terminated normally (exercises the container hooks workflows use)."""

    deploy_children_with_parent = False

    def start(self) -> None:
        self._queue = [
            (key, value)
            for key, value in self.sf_context().items()
            if isinstance(value, ComponentDescription) and value.eager
        ]
        self._next()

    def _next(self) -> None:
        from sfpy.engine import TerminationRecord

        if not self._queue:
            self.sf_terminate(TerminationRecord.normal("sequence done"))
            return
        name, description = self._queue.pop(0)
        self.sf_create_new_child(name, description)

    def child_terminated(self, child, record) -> None:  # noqa: ANN001
        if record.is_normal:
            self._next()
        else:
            super().child_terminated(child, record)


NAMES = {
    "test.Recorder": Recorder,
    "test.RecorderCompound": RecorderCompound,
    "test.Pinged": Pinged,
    "test.SelfTerminating": SelfTerminating,
    "test.Finisher": Finisher,
    "test.Sequential": Sequential,
}


def register_all() -> None:
    for name, cls in NAMES.items():
        register(name, cls)


def journal_of(path: str | Path) -> list[tuple[str, str]]:
    lines = Path(path).read_text(encoding="utf-8").splitlines() if Path(path).exists() else []
    return [tuple(line.split(" ", 1)) for line in lines]  # type: ignore[misc]


def cd(
    sf_class: str | None = COMPOUND, *, eager: bool = True, **attributes: Any
) -> ComponentDescription:
    """A resolved description built by hand: ``cd("test.Recorder", a=cd(...), size=3)``."""
    description = ComponentDescription(eager=eager)
    if sf_class is not None:
        description.put("sfClass", sf_class)
    for key, value in attributes.items():
        description.put(key, value)
    return description
