"""The engine's errors. All derive from :class:`sfpy.errors.SfpyError`.

A wrong description (an unknown or missing ``sfClass``) is a :class:`ComponentClassError`,
a :class:`~sfpy.language.errors.DescriptionError` with exit code 3: nothing was deployed.
Everything that goes wrong while running is an :class:`EngineError` (exit code 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfpy.errors import SfpyError
from sfpy.language.errors import DescriptionError

if TYPE_CHECKING:
    from sfpy.engine.termination import TerminationRecord


class EngineError(SfpyError):
    """Something failed while deploying or running components."""

    exit_code = 1


class ResolutionError(EngineError):
    """A reference could not be resolved against the live component tree."""


class LifecycleError(EngineError):
    """A component's hook raised, or a lifecycle call came in the wrong state.

    ``path`` is the complete name of the component, ``phase`` the step that failed
    (``deploy``, ``start``, ``terminate``, ``ping``…).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        phase: str | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.phase = phase
        self.cause = cause


class DeploymentError(EngineError):
    """An application failed to deploy or start; it has been terminated and cleaned up.

    ``record`` is the application's termination record, naming the first failing component.
    """

    def __init__(self, record: TerminationRecord) -> None:
        super().__init__(f"{record.id}: {record.description}")
        self.record = record


class LivenessError(EngineError):
    """Raised by a ``ping`` hook: the component is not alive (a failed ping)."""


class PingMissed(EngineError):  # noqa: N818 - SmartFrog's word for it
    """A ping got no answer (yet). ``sfLivenessFactor`` misses in a row are a liveness failure.

    Local ``ping`` hooks may raise it for "cannot tell right now"; handles to remote
    components raise it when a ping call times out.
    """


class ComponentClassError(DescriptionError):
    """A component description names no ``sfClass``, or one that is not registered.

    Found before anything is deployed; exit code 3 like every description error.
    """

    def __init__(self, message: str, **kwargs) -> None:  # noqa: ANN003 - DescriptionError's keywords
        kwargs.setdefault("phase", "deploy")
        super().__init__(message, **kwargs)

    def render_one(self) -> str:
        text = super().render_one()
        return text.replace("during deploy resolution", "checked before deployment")
