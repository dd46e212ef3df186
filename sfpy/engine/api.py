"""The component author's façade: everything a component needs, and nothing of the engine's
insides. sfpy's own components import from here too.

    from sfpy.engine.api import Prim, TerminationRecord, register, current_step

    class Touch(Prim):
        def start(self) -> None:
            Path(self.sf_string("file")).touch()

    register("example.Touch", Touch)

Hooks, the lock discipline and the long-work contract: docs/engine.md.
"""

from __future__ import annotations

from sfpy.engine.compound import Compound
from sfpy.engine.errors import (
    EngineError,
    LifecycleError,
    LivenessError,
    PingMissed,
    ResolutionError,
)
from sfpy.engine.prim import ABSENT, Prim, State, describe_exception
from sfpy.engine.registry import register
from sfpy.engine.scheduler import Timer
from sfpy.engine.termination import TerminationRecord
from sfpy.engine.workflow import EventCompound, record_description
from sfpy.host.work import WorkCancelled, check, current_step, remaining

__all__ = [
    "ABSENT",
    "Compound",
    "EngineError",
    "EventCompound",
    "LifecycleError",
    "LivenessError",
    "PingMissed",
    "Prim",
    "ResolutionError",
    "State",
    "TerminationRecord",
    "Timer",
    "WorkCancelled",
    "check",
    "current_step",
    "describe_exception",
    "record_description",
    "register",
    "remaining",
]
