"""From a resolved description to a tree of (not yet deployed) components.

:func:`check_description` walks every description that will become a component — the root,
each Compound's eager description attributes, each workflow container's actions — and
reports every missing or unknown ``sfClass`` at once, before anything is created.

A description without ``sfClass`` is an error, as in SmartFrog ("Unresolved Reference:
HERE sfClass", corpus test tcn28): SmartFrog's ``Prim`` template names no class, so
``sfConfig extends { … }`` or ``x extends Prim { … }`` cannot be deployed. Extend
``Compound`` or give the component its ``sfClass``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfpy.engine.errors import ComponentClassError
from sfpy.engine.registry import UnknownComponentClass, lookup
from sfpy.language.model import ComponentDescription, Reference, type_name

if TYPE_CHECKING:
    from sfpy.engine.compound import Compound
    from sfpy.engine.lifecycle import LifecycleLock
    from sfpy.engine.prim import Prim
    from sfpy.engine.process import Process


def check_description(description: ComponentDescription, path: str) -> None:
    """Raise :class:`ComponentClassError` (listing every problem) unless every component
    of the tree names a registered class."""
    problems: list[ComponentClassError] = []
    stack = [(description, path)]
    while stack:
        cd, where = stack.pop()
        cls = _class_of(cd, where, problems)
        if cls is not None:
            children = cls.child_descriptions(cd)
            stack.extend((child, f"{where}:{key}") for key, child in reversed(children))
    if problems:
        raise ComponentClassError(
            problems[0].message,
            position=problems[0].position,
            path=problems[0].path,
            more=problems[1:],
        )


def _class_of(
    cd: ComponentDescription, path: str, problems: list[ComponentClassError]
) -> type[Prim] | None:
    position = cd.positions.get("sfClass") or cd.position
    if "sfClass" not in cd.attributes:
        problems.append(
            ComponentClassError(
                f"{path} cannot be deployed: it has no sfClass (Unresolved Reference: HERE sfClass); "
                "extend Compound, or give it an sfClass",
                position=cd.position,
                path=path,
            )
        )
        return None
    name = cd.attributes["sfClass"]
    if isinstance(name, Reference):
        problems.append(
            ComponentClassError(
                f"sfClass of {path} must be a string written in the description, not a LAZY reference",
                position=position,
                path=path,
            )
        )
        return None
    if not isinstance(name, str):
        problems.append(
            ComponentClassError(
                f"sfClass of {path} must be a string, not a {type_name(name)}",
                position=position,
                path=path,
            )
        )
        return None
    try:
        return lookup(name)
    except UnknownComponentClass as error:
        problems.append(ComponentClassError(str(error), position=position, path=path))
        return None


def build(
    description: ComponentDescription,
    name: str,
    parent: Compound | None,
    process: Process,
    lifecycle: LifecycleLock,
) -> Prim:
    """Instantiate ``description``'s class (checked already) and build its subtree."""
    component = lookup(description.attributes["sfClass"])()
    component.sf_build(name, parent, description, process, lifecycle)
    return component
