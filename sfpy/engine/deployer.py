"""From a resolved description to a tree of (not yet deployed) components.

:func:`check_description` walks every description that will become a component — the root,
each Compound's eager description attributes, each workflow container's actions — and
reports every missing or unknown ``sfClass`` at once, before anything is created, together
with every value a component's class refuses (its classmethod
``check_values(attributes) -> [(attribute, problem), …]``, see ``docs/engine.md``).

A description without ``sfClass`` is an error, as in SmartFrog ("Unresolved Reference:
HERE sfClass", corpus test tcn28): SmartFrog's ``Prim`` template names no class, so
``sfConfig extends { … }`` or ``x extends Prim { … }`` cannot be deployed. Extend
``Compound`` or give the component its ``sfClass``.

:func:`attribute_warnings` looks for misspelled attribute names: an attribute a component's
class does not declare (``declared_attributes`` along the class's MRO, plus the names its
schemas list) but that is close to one it does (``startScrpit``: "did you mean
startScript?"). SmartFrog was silent about them; a warning costs nothing and saves a
cleanup script that never runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sfpy.engine.errors import ComponentClassError
from sfpy.engine.registry import UnknownComponentClass, lookup
from sfpy.language.model import (
    AssertReference,
    ComponentDescription,
    Reference,
    SourcePosition,
    type_name,
)

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
            problems.extend(_value_problems(cls, cd, where))
            children = cls.child_descriptions(cd)
            stack.extend((child, f"{where}:{key}") for key, child in reversed(children))
    if problems:
        raise ComponentClassError(
            problems[0].message,
            position=problems[0].position,
            path=problems[0].path,
            more=problems[1:],
        )


@dataclass(frozen=True)
class DescriptionWarning:
    """Something that is probably a mistake but does not stop a deployment."""

    message: str
    position: SourcePosition | None = None
    path: str | None = None

    def render(self) -> str:
        """``FILE:LINE:COL: warning: …`` as compilers print warnings (``warning: …`` without a place)."""
        where = f"{self.position}: " if self.position is not None else ""
        return f"{where}warning: {self.message}"

    def __str__(self) -> str:
        return self.render()


def attribute_warnings(description: ComponentDescription, path: str) -> list[DescriptionWarning]:
    """A warning for each attribute of a component's description that its class does not
    declare and that looks like a misspelling of one it does, in tree order.

    Components whose ``sfClass`` is missing or unknown are skipped (:func:`check_description`
    reports them).
    """
    warnings: list[DescriptionWarning] = []
    stack = [(description, path)]
    while stack:
        cd, where = stack.pop()
        name = cd.attributes.get("sfClass")
        try:
            cls = lookup(name) if isinstance(name, str) else None
        except UnknownComponentClass:
            cls = None
        if cls is None:
            continue
        warnings.extend(_misspellings(cd, where, cls))
        children = cls.child_descriptions(cd)
        stack.extend((child, f"{where}:{key}") for key, child in reversed(children))
    return warnings


def declared_attributes(cls: type) -> frozenset[str]:
    """The attribute names ``cls`` reads: the ``declared_attributes`` of every class in its MRO."""
    names: set[str] = set()
    for klass in cls.__mro__:
        names.update(klass.__dict__.get("declared_attributes", ()))
    return frozenset(names)


def _schema_names(cd: ComponentDescription) -> set[str]:
    """The attribute names the description's schemas list (``x extends Schema { name …; }``)."""
    names: set[str] = set()
    for value in cd.attributes.values():
        if not isinstance(value, AssertReference):
            continue
        for entry in value.description.attributes.values():
            body = getattr(entry, "description", None)
            if isinstance(body, ComponentDescription):
                entry_name = body.attributes.get("name")
                if isinstance(entry_name, str):
                    names.add(entry_name)
    return names


def _misspellings(cd: ComponentDescription, where: str, cls: type) -> Iterable[DescriptionWarning]:
    declared = declared_attributes(cls) | _schema_names(cd)
    for key, value in cd.attributes.items():
        if not isinstance(key, str) or key in declared:
            continue
        if isinstance(value, ComponentDescription) and "sfClass" in value.attributes:
            continue  # a child component: its name is the author's choice
        close = _closest(key, declared)
        if close is not None:
            yield DescriptionWarning(
                f"{where} has an attribute {key!r} that {_class_name(cls)} does not read: "
                f"did you mean {close}?",
                position=cd.positions.get(key) or cd.position,
                path=f"{where}:{key}",
            )


def _value_problems(cls: type, cd: ComponentDescription, where: str) -> list[ComponentClassError]:
    """The problems ``cls.check_values(attributes)`` finds in a description's values (a
    host name, an address, a size…): reported with the class problems, before anything is
    made. A class without the classmethod has nothing to check."""
    checker = getattr(cls, "check_values", None)
    if checker is None:
        return []
    return [
        ComponentClassError(message, position=cd.positions.get(key) or cd.position,
                            path=f"{where}:{key}")
        for key, message in checker(cd.attributes)
    ]


def _class_name(cls: type) -> str:
    return cls.__name__


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``name`` is probably a misspelling of: the same but for case, or within
    an edit distance (a swap of neighbours counts as one edit) that grows with the length,
    so that short names of one's own do not look like typos."""
    lowered = name.lower()
    best: tuple[int, str] | None = None
    for candidate in candidates:
        if candidate.lower() == lowered:
            return candidate
        shortest = min(len(name), len(candidate))
        allowed = 2 if shortest >= 6 else 1 if shortest >= 3 else 0
        if not allowed or abs(len(name) - len(candidate)) > allowed:
            continue
        distance = _edit_distance(lowered, candidate.lower(), allowed)
        if distance <= allowed and (best is None or (distance, candidate) < best):
            best = (distance, candidate)
    return best[1] if best is not None else None


def _edit_distance(a: str, b: str, bound: int) -> int:
    """Optimal string alignment distance between ``a`` and ``b`` (``bound + 1`` once past it)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, other in enumerate(b, start=1):
            cost = 0 if char == other else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) > bound:
            return bound + 1
        previous2, previous = previous, current
    return previous[-1]


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
    """Instantiate ``description``'s class (checked already) and build its subtree.

    A subtree whose ``sfProcessHost`` names another host's daemon (the process has a
    placement connector, so it is a daemon's) becomes a
    :class:`~sfpy.engine.placement.RemoteSubtree` handle instead: that daemon builds it when
    the handle's deploy pass comes. An application root is never placed (the daemon that
    got it checked that)."""
    placement = getattr(process, "placement", None)
    if placement is not None and parent is not None:
        host = description.attributes.get("sfProcessHost")
        if isinstance(host, str) and not placement.is_here(host):
            from sfpy.engine.placement import RemoteSubtree

            handle = RemoteSubtree()
            handle.sf_build(name, parent, description, process, lifecycle)
            return handle
    component = lookup(description.attributes["sfClass"])()
    component.sf_build(name, parent, description, process, lifecycle)
    return component
