"""SmartFrog's TerminationRecord: why a component ended, and who started the ending.

A record travels up the tree unchanged: when a child terminates, its Compound terminates
with the *same* record (unless a workflow container decides otherwise), so the application's
final record names the component that started it all (``id``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar


@dataclass(frozen=True)
class TerminationRecord:
    """``type`` is ``normal``, ``abnormal`` or ``externalReferenceDead`` (any string is allowed:
    the Try workflow dispatches on it); ``id`` is the complete name of the component that
    started the termination (filled in by the engine when left empty); ``cause`` an exception.
    """

    type: str
    description: str | None = None
    id: str | None = None
    cause: BaseException | None = None

    NORMAL: ClassVar[str] = "normal"
    ABNORMAL: ClassVar[str] = "abnormal"
    EXTERNAL_REFERENCE_DEAD: ClassVar[str] = "externalReferenceDead"

    @classmethod
    def normal(
        cls,
        description: str | None = None,
        id: str | None = None,
        cause: BaseException | None = None,
    ) -> TerminationRecord:
        return cls(cls.NORMAL, description, id, cause)

    @classmethod
    def abnormal(
        cls,
        description: str | None = None,
        id: str | None = None,
        cause: BaseException | None = None,
    ) -> TerminationRecord:
        return cls(cls.ABNORMAL, description, id, cause)

    @classmethod
    def external_reference_dead(
        cls,
        description: str | None = None,
        id: str | None = None,
        cause: BaseException | None = None,
    ) -> TerminationRecord:
        return cls(cls.EXTERNAL_REFERENCE_DEAD, description, id, cause)

    @property
    def is_normal(self) -> bool:
        return self.type == self.NORMAL

    def with_id(self, id: str) -> TerminationRecord:
        """This record with ``id`` filled in, unless it already names a component."""
        return self if self.id is not None else replace(self, id=id)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the wire and for JSON output (the cause becomes text)."""
        return {
            "type": self.type,
            "description": self.description,
            "id": self.id,
            "cause": None if self.cause is None else f"{type(self.cause).__name__}: {self.cause}",
        }

    def __str__(self) -> str:
        return (
            f"Termination Record: {self.id},  type: {self.type},  description: {self.description}"
        )
