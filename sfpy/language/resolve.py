"""The resolution phases: a raw description (the parser's ROOT) becomes the resolved sfConfig.

The phases run in the order of the top-level ``phaseList`` attribute (a primitive vector,
removed once read) or SmartFrog's default ``type, place, function, sfConfig, link``:

``type``
    Every ``extends`` in the whole tree (templates too) is merged: prototypes overlay from left
    to right, an overridden attribute keeps its first position, nested descriptions are
    replaced, not merged, tags are united. A prototype reference is resolved from the
    extending description itself. ``sfFinal`` attributes may not be overridden; an
    ``sfOverride`` attribute must override something.
``place``
    ``a:b:c value;`` moves ``value`` into ``a:b`` as ``c`` (HERE parts, relative to the
    description where it is written), pass after pass until nothing moves.
``function``
    Descriptions carrying ``phase.function`` (operators, ``[a, b]``, IF, SWITCH, function
    templates, Assertions, Schemas) become ``APPLY``/``ASSERT`` values, innermost first.
``sfConfig``
    From here on only ``sfConfig`` is worked on (its parent is still ROOT, so ATTRIB and ROOT
    references see the top-level attributes).
``link``
    One in-order walk resolves eager references, evaluates functions and checks assertions;
    whatever needs a LAZY reference becomes LAZY; TBD is an error.

Any other phase name runs the actions named by ``phase.<name>`` attributes
(:func:`register_phase_action`). At the end, SmartFrog's ``sfAsComponentDescription`` step
copies the result (no sharing left) and drops ``sfTemp`` attributes and passed static
assertions. Errors are :class:`DescriptionError` with the phase, the attribute path and the
place in the source; independent mistakes come together (``error.more``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

from sfpy.language.errors import DescriptionError, did_you_mean
from sfpy.language.functions import construct_function
from sfpy.language.model import (
    HERE,
    NULL,
    TBD,
    ApplyReference,
    ByteArray,
    ComponentDescription,
    Reference,
    RefPart,
    SourcePosition,
    copy_value,
    type_name,
)
from sfpy.language.predicates import construct_assertions, construct_schema
from sfpy.language.references import (
    MISSING,
    SOFT_DEPTH,
    TEMP,
    CycleError,
    DescriptionContext,
    LazyReferenceError,
    ResolutionError,
    Resolver,
    path_text,
    reference_text,
)

__all__ = [
    "DEFAULT_PHASES",
    "as_component_description",
    "register_phase_action",
    "resolve",
]

DEFAULT_PHASES = ("type", "place", "function", "sfConfig", "link")
SF_FINAL = "sfFinal"
SF_OVERRIDE = "sfOverride"
SF_TEMP = "sfTemp"
MAX_ERRORS = 50
MAX_COPIED = 5_000_000
MAX_COPIED_ATTRIBUTES = 1_000_000  # a "billion laughs" of nested extends stops here
MAX_PROTOTYPE_DEPTH = 1000  # x extends y, y extends z… resolved inside one another

PhaseAction = Callable[[ComponentDescription, "ComponentDescription | None", Any], None]
_PHASE_ACTIONS: dict[str, PhaseAction] = {}


def register_phase_action(class_name: str, action: PhaseAction) -> None:
    """Make ``action(cd, parent, key)`` what ``phase.<x> "…class_name"`` runs (last segment counts)."""
    _PHASE_ACTIONS[class_name.rsplit(".", 1)[-1]] = action


register_phase_action("ConstructFunction", construct_function)
register_phase_action("ConstructAssertions", construct_assertions)
register_phase_action("ConstructSchema", construct_schema)


def resolve(
    root: ComponentDescription, *, phases: list[str] | tuple[str, ...] | None = None
) -> ComponentDescription:
    """Run the phases on the parser's ROOT (consumed) and return the resolved result.

    That is ``sfConfig`` (with no parent) unless a ``phaseList`` without ``sfConfig`` says
    otherwise. ``phases`` overrides ``phaseList`` and the default.
    """
    progress = ["type"]
    try:
        return _resolve(root, phases, progress)
    except RecursionError:
        raise DescriptionError(
            "the description is nested or linked too deeply to resolve", phase=progress[0]
        ) from None


def _resolve(root: ComponentDescription, phases: Any, progress: list[str]) -> ComponentDescription:
    phase_list = _phase_list(root) if phases is None else list(phases)
    act_on = root
    for name in phase_list:
        progress[0] = name
        if name == "type":
            _TypePhase(act_on).run()
        elif name == "place":
            _place_phase(act_on)
        elif name == "sfConfig":
            act_on = _sfconfig_phase(root)
        elif name == "link":
            _link_phase(act_on)
        else:
            _action_phase(act_on, name)
    progress[0] = "link"
    return as_component_description(act_on)


def _phase_list(root: ComponentDescription) -> list[str]:
    if "phaseList" not in root.attributes:
        return list(DEFAULT_PHASES)
    value = root.attributes["phaseList"]
    position = root.positions.get("phaseList")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DescriptionError(
            "phaseList must be a primitive vector of phase names, such as "
            '[|"type", "place", "function", "sfConfig", "link"|]',
            position=position,
            phase="parse",
        )
    root.remove("phaseList")
    return list(value)


def _combine(errors: list[DescriptionError], phase: str) -> DescriptionError:
    flat: list[DescriptionError] = []
    for error in errors:
        for one in error.all():
            one.more = []
            one.phase = phase
            flat.append(one)
    first = flat[0]
    first.more = flat[1:MAX_ERRORS]
    return first


# ---------------------------------------------------------------------------------------------
# type
# ---------------------------------------------------------------------------------------------


class _Silent(ResolutionError):
    """A lookup failed only because an earlier mistake left a description unresolved."""


class _TypeContext(DescriptionContext):
    """Descriptions are type-resolved on demand as references walk into them."""

    def __init__(self, phase: _TypePhase) -> None:
        self.phase = phase

    def lookup(self, node: Any, name: Any, first: bool) -> Any:
        if isinstance(node, ComponentDescription) and node.prototypes:
            self.phase.ensure(node)
        value = super().lookup(node, name, first)
        if value is MISSING and id(node) in self.phase.failed:
            raise _Silent(f"{path_text(node)} could not be type-resolved")
        return value


class _TypeDeeper(Exception):  # noqa: N818 - not an error: a request to resolve something first
    """Prototypes nest deeper than SOFT_DEPTH: ``target`` is to be type-resolved first."""

    def __init__(self, target: ComponentDescription, via: tuple[ComponentDescription, Reference]) -> None:
        super().__init__("type resolution deferred")
        self.target = target
        self.via = via


class _TypePhase:
    def __init__(self, root: ComponentDescription) -> None:
        self.root = root
        self.errors: list[DescriptionError] = []
        self.ensuring: set[int] = set()
        self.failed: set[int] = set()
        self.finished: dict[int, bool] = {}
        self.active: dict[int, ComponentDescription] = {}
        # The descriptions being deep-resolved, each with the (extending cd, reference) that led there.
        self.chain: list[
            tuple[ComponentDescription, tuple[ComponentDescription, Reference] | None]
        ] = []
        self.keep: list[ComponentDescription] = []  # keeps ids unique while the phase runs
        self.copied = [0]  # attributes copied from prototypes, against MAX_COPIED_ATTRIBUTES
        self.depth = 0  # prototypes being resolved inside one another
        self.resolver = Resolver(_TypeContext(self))

    def run(self) -> None:
        # Prototypes are resolved inside one another up to SOFT_DEPTH deep; a deeper one is
        # deferred (_TypeDeeper): resolved first from this explicit stack, then the work that
        # needed it starts again and finds it done.
        pending: list[tuple[ComponentDescription, Any]] = [(self.root, None)]
        try:
            while pending:
                target, via = pending[-1]
                try:
                    self.deep(target, via)
                except _TypeDeeper as deeper:
                    if any(cd is deeper.target for cd, _ in pending):
                        raise self._deferred_cycle(pending, deeper) from None
                    pending.append((deeper.target, deeper.via))
                    continue
                pending.pop()
        except CycleError as error:
            self.errors.insert(0, error)
        if self.errors:
            raise _combine(self.errors, "type")

    def _deferred_cycle(self, pending: list, deeper: _TypeDeeper) -> CycleError:
        start = next(i for i, (cd, _) in enumerate(pending) if cd is deeper.target)
        steps = [
            f"{path_text(via[0])} extends {reference_text(via[1])}"
            for _, via in pending[start:]
            if via is not None
        ]
        holder, ref = deeper.via
        steps.append(f"{path_text(holder)} extends {reference_text(ref)}")
        return CycleError(
            "cyclic extends: " + " -> … -> ".join(steps),
            position=ref.position or holder.position,
            phase="type",
            path=path_text(holder),
        )

    # -- one description's own prototypes ------------------------------------------------
    def ensure(self, cd: ComponentDescription) -> bool:
        """Merge ``cd``'s prototypes into it (right to left, as SmartFrog); False if it failed."""
        if not cd.prototypes:
            return True
        key = id(cd)
        if key in self.failed:
            return False
        if key in self.ensuring:
            return True  # being merged further up: lookups see what is there so far
        self.ensuring.add(key)
        self.keep.append(cd)
        try:
            while cd.prototypes:
                proto = cd.prototypes[-1]
                if isinstance(proto, ComponentDescription):
                    ok = self._subtype(cd, proto, move=True)
                else:
                    target = self._prototype(cd, proto)
                    ok = target is not None and self._subtype(cd, target, move=False)
                if not ok:
                    self.failed.add(key)
                    return False
                cd.prototypes.pop()
            return True
        finally:
            self.ensuring.discard(key)

    def _prototype(self, cd: ComponentDescription, ref: Reference) -> ComponentDescription | None:
        try:
            target = self.resolver.resolve(ref, cd)
        except _Silent:
            return None
        except CycleError:
            raise
        except LazyReferenceError:
            self._error(f"cannot extend {reference_text(ref)}: it is a LAZY reference", cd, ref)
            return None
        except ResolutionError as error:
            self._error(
                f"cannot extend {reference_text(ref)}: {error.detail}{_include_hint(ref)}", cd, ref
            )
            return None
        if not isinstance(target, ComponentDescription):
            self._error(
                f"cannot extend {reference_text(ref)}: it is a {type_name(target)}, "
                "not a component description",
                cd,
                ref,
            )
            return None
        if self.depth >= MAX_PROTOTYPE_DEPTH:
            raise CycleError(
                f"extends nested more than {MAX_PROTOTYPE_DEPTH} deep: {path_text(cd)} extends "
                f"{reference_text(ref)}, which needs its own prototypes resolved first, and so on",
                position=ref.position or cd.position,
                phase="type",
                path=path_text(cd),
            )
        if self.depth >= SOFT_DEPTH and id(target) not in self.finished:
            raise _TypeDeeper(target, (cd, ref))
        self.depth += 1
        try:
            if not self.deep(target, (cd, ref)):
                return None
        finally:
            self.depth -= 1
        return target

    def _error(self, message: str, cd: ComponentDescription, ref: Reference | None = None) -> None:
        self.errors.append(
            DescriptionError(
                message,
                position=(ref.position if ref is not None else None) or cd.position,
                phase="type",
                path=path_text(cd),
            )
        )

    def _subtype(self, cd: ComponentDescription, proto: ComponentDescription, move: bool) -> bool:
        """SmartFrog's subtype: ``proto``'s attributes, overlaid by ``cd``'s current ones."""
        if move:
            attributes = proto.attributes
            tags = proto.tags
            positions = proto.positions
            for value in attributes.values():
                if isinstance(value, ComponentDescription):
                    value.parent = cd
        else:
            count = self.copied
            count[0] += len(proto.attributes)
            attributes = {key: _copy(value, cd, count) for key, value in proto.attributes.items()}
            if count[0] > MAX_COPIED_ATTRIBUTES:
                raise CycleError(
                    f"the description grows too large through extends: more than "
                    f"{MAX_COPIED_ATTRIBUTES:,} attributes copied from prototypes "
                    f"(the last one {path_text(proto)}, into {path_text(cd)})",
                    position=cd.position,
                    phase="type",
                    path=path_text(cd),
                )
            tags = {key: set(names) for key, names in proto.tags.items()}
            positions = dict(proto.positions)
        own_tags = cd.tags
        for key, value in cd.attributes.items():
            proto_tags = tags.get(key)
            if proto_tags and SF_FINAL in proto_tags and key in attributes:
                self.errors.append(
                    DescriptionError(
                        f"attribute {key!r} is tagged as sfFinal, it may not be overridden: "
                        f"in component {path_text(cd)}",
                        position=cd.positions.get(key) or cd.position,
                        phase="type",
                        path=path_text(cd, key),
                    )
                )
                return False
            mine = own_tags.get(key)
            if mine and SF_OVERRIDE in mine and key not in attributes:
                self.errors.append(
                    DescriptionError(
                        f"attribute {key!r} is tagged sfOverride but its prototype has no "
                        f"attribute {key!r} to override: in component {path_text(cd)}",
                        position=cd.positions.get(key) or cd.position,
                        phase="type",
                        path=path_text(cd, key),
                    )
                )
                return False
            attributes[key] = value
            if mine:
                tags.setdefault(key, set()).update(mine)
            if key in cd.positions:
                positions[key] = cd.positions[key]
        cd.attributes = attributes
        cd.tags = tags
        cd.positions = positions
        return True

    # -- a whole subtree -------------------------------------------------------------------
    def deep(
        self,
        start: ComponentDescription,
        via: tuple[ComponentDescription, Reference] | None = None,
    ) -> bool:
        """Type-resolve ``start`` and everything below it; False if anything there failed."""
        key = id(start)
        if key in self.finished:
            return self.finished[key]
        if key in self.active:
            raise self._cycle(start, via)
        stack: list[list[Any]] = []
        mark = len(self.chain)
        try:
            self._push(stack, start, via)
            self._deep(stack)
        except _TypeDeeper:
            # Deferred: forget what this walk had begun, so that it can start again.
            for cd, _ in self.chain[mark:]:
                self.active.pop(id(cd), None)
            del self.chain[mark:]
            raise
        return self.finished[key]

    def _deep(self, stack: list[list[Any]]) -> None:
        while stack:
            frame = stack[-1]
            child = next(frame[1], None)
            if child is None:
                stack.pop()
                cd = frame[0]
                self.active.pop(id(cd), None)
                self.chain.pop()
                self.finished[id(cd)] = frame[2]
                if stack and not frame[2]:
                    stack[-1][2] = False
                continue
            child_key = id(child)
            if child_key in self.finished:
                if not self.finished[child_key]:
                    frame[2] = False
                continue
            if child_key in self.active:
                raise self._cycle(child, None)
            self._push(stack, child, None)

    def _push(self, stack: list[list[Any]], cd: ComponentDescription, via: Any) -> None:
        self.active[id(cd)] = cd
        self.keep.append(cd)
        self.chain.append((cd, via))
        ok = self.ensure(cd)
        children: list[ComponentDescription] = []
        if ok:
            for value in list(cd.attributes.values()):
                if isinstance(value, ComponentDescription):
                    children.append(value)
                elif isinstance(value, ApplyReference):
                    if value.description.parent is None:
                        value.description.parent = cd  # where it will be evaluated
                    children.append(value.description)
        stack.append([cd, iter(children), ok])

    def _cycle(self, target: ComponentDescription, via: Any) -> CycleError:
        index = next((i for i, (cd, _) in enumerate(self.chain) if cd is target), 0)
        steps = [
            f"{path_text(holder)} extends {reference_text(ref)}"
            for _, edge in self.chain[index:]
            if edge is not None
            for holder, ref in [edge]
        ]
        position = None
        if via is not None:
            holder, ref = via
            position = ref.position
            relation = " (itself)" if holder is target else f", which contains {path_text(holder)}"
            steps.append(f"{path_text(holder)} extends {reference_text(ref)}{relation}")
        return CycleError(
            "cyclic extends: " + " -> ".join(steps or [path_text(target)]),
            position=position or target.position,
            phase="type",
            path=path_text(via[0]) if via is not None else path_text(target),
        )


# The include files of sfpy's library that a description most often forgets, in the order a
# hint prefers them (components.sf includes the functions and predicates).
_LIBRARY_FILES = (
    "org/smartfrog/components.sf",
    "org/smartfrog/services/shellscript/components.sf",
    "org/smartfrog/sfcore/workflow/components.sf",
)
_library_names: dict[str, str] | None = None
_library_lock = threading.Lock()


def _include_hint(ref: Reference) -> str:
    """`` (did you forget #include "…"?)`` when a one-word prototype names a template of
    sfpy's library, such as ``Compound``."""
    if len(ref.parts) != 1 or not isinstance(ref.parts[0].name, str):
        return ""
    include = _library().get(ref.parts[0].name)
    return f'; did you forget #include "{include}"?' if include else ""


def _library() -> dict[str, str]:
    """Top-level template name -> the library file that defines it (read once, on demand)."""
    global _library_names
    with _library_lock:
        if _library_names is None:
            from sfpy.language.parser import parse_file

            names: dict[str, str] = {}
            root = resources.files("sfpy.descriptions")
            for include in _LIBRARY_FILES:
                try:
                    parsed = parse_file(str(root.joinpath(include)))
                except DescriptionError:
                    continue
                for key in parsed.attributes:
                    if isinstance(key, str):
                        names.setdefault(key, include)
            _library_names = names
        return _library_names


def _copy(value: Any, parent: ComponentDescription | None, count: list[int]) -> Any:
    """``copy_value`` for the type phase's many prototype copies (the hot path of big files).

    ``count[0]`` counts the attributes copied, against the phase's budget.
    """
    kind = type(value)
    if kind is ComponentDescription:
        return _copy_description(value, parent, count)
    if kind is list:
        return [_copy(item, parent, count) for item in value]
    if isinstance(value, ApplyReference):
        return type(value)(
            _copy_description(value.description, None, count),
            lazy=value.lazy,
            data=value.data,
            position=value.position,
        )
    if isinstance(value, ComponentDescription):
        return copy_value(value, parent)
    return value


def _copy_description(
    cd: ComponentDescription, parent: ComponentDescription | None, count: list[int]
) -> ComponentDescription:
    """A copy of ``cd``'s whole subtree, made with an explicit stack (any nesting depth)."""
    top = _shell(cd, parent)
    work = [(cd, top)]
    while work:
        source, new = work.pop()
        new.prototypes = (
            [_copy(p, new, count) for p in source.prototypes] if source.prototypes else []
        )
        attributes = {}
        count[0] += len(source.attributes)
        for key, value in source.attributes.items():
            kind = type(value)
            if kind is ComponentDescription:
                child = _shell(value, new)
                work.append((value, child))
                value = child
            elif kind is list or isinstance(value, (ApplyReference, ComponentDescription)):
                value = _copy(value, new, count)
            attributes[key] = value
        new.attributes = attributes
        new.tags = (
            {key: set(names) for key, names in source.tags.items()} if source.tags else {}
        )
        new.positions = dict(source.positions)
    return top


def _shell(cd: ComponentDescription, parent: ComponentDescription | None) -> ComponentDescription:
    new = ComponentDescription.__new__(ComponentDescription)
    new.parent = parent
    new.eager = cd.eager
    new.position = cd.position
    return new


# ---------------------------------------------------------------------------------------------
# place
# ---------------------------------------------------------------------------------------------


def _descriptions(root: ComponentDescription) -> Iterator[ComponentDescription]:
    """Every description in the tree (pre-order), also under placement keys and in APPLYs."""
    stack = [root]
    while stack:
        cd = stack.pop()
        yield cd
        children = []
        for value in cd.attributes.values():
            if isinstance(value, ComponentDescription):
                children.append(value)
            elif isinstance(value, ApplyReference):
                children.append(value.description)
        stack.extend(reversed(children))


def _place_phase(root: ComponentDescription) -> None:
    """Passes over the tree until nothing more can be placed (SmartFrog's fix-point).

    Another pass is needed only when a pass placed something while something else could not
    be placed yet, or placed a description (which may hold placements of its own).
    """
    resolver = Resolver(DescriptionContext())
    while True:
        placed = placed_description = False
        pending: list[DescriptionError] = []
        for cd in _descriptions(root):
            for key in [key for key in cd.attributes if type(key) is Reference]:
                outcome = _place(resolver, cd, key, pending)
                if outcome:
                    placed = True
                    if outcome == 2:
                        placed_description = True
        if not (placed_description or (placed and pending)):
            break
    if pending:
        raise _combine(pending, "place")


def _place(resolver: Resolver, cd: ComponentDescription, key: Reference, pending: list) -> int:
    """0: not placed (yet); 1: placed; 2: placed a description."""
    name = key.parts[-1].name
    prefix = Reference(key.parts[:-1], position=key.position)
    shown = ":".join(str(p.name) for p in key.parts)
    position = key.position or cd.positions.get(key) or cd.position
    try:
        destination = resolver.resolve(prefix, cd)
    except ResolutionError as error:
        pending.append(
            DescriptionError(
                f"cannot place {shown!r} (written in {path_text(cd)}): {error.detail}",
                position=position,
                phase="place",
                path=path_text(cd),
            )
        )
        return 0
    if not isinstance(destination, ComponentDescription):
        pending.append(
            DescriptionError(
                f"cannot place {shown!r} (written in {path_text(cd)}): {reference_text(prefix)} "
                f"is a {type_name(destination)}, not a component description",
                position=position,
                phase="place",
                path=path_text(cd),
            )
        )
        return 0
    existing = destination.tags.get(name)
    if existing and SF_FINAL in existing and name in destination.attributes:
        raise DescriptionError(
            f"attribute {name!r} is tagged as sfFinal, it may not be overridden: in component "
            f"{path_text(destination)} (placed by {shown!r} in {path_text(cd)})",
            position=position,
            phase="place",
            path=path_text(destination, name),
        )
    value = cd.attributes.pop(key)
    tags = cd.tags.pop(key, None)
    where = cd.positions.pop(key, None)
    destination.attributes[name] = value
    if tags:
        destination.tags.setdefault(name, set()).update(tags)
    if where is not None:
        destination.positions[name] = where
    if isinstance(value, ComponentDescription):
        value.parent = destination
        return 2
    return 1


# ---------------------------------------------------------------------------------------------
# function (and any user phase)
# ---------------------------------------------------------------------------------------------


def _with_actions(
    root: ComponentDescription, prefix: str
) -> list[tuple[ComponentDescription, Any, Any]]:
    """(description, parent, key) for each description with a ``<prefix>…`` attribute,
    every one listed after all those inside it (the phase visits bottom-up)."""
    found: list[tuple[ComponentDescription, Any, Any]] = []
    stack: list[tuple[ComponentDescription, Any, Any]] = [(root, None, None)]
    while stack:
        item = stack.pop()
        cd = item[0]
        marked = False
        for key, value in cd.attributes.items():
            if type(value) is ComponentDescription:
                stack.append((value, cd, key))
            elif isinstance(value, ApplyReference):
                stack.append((value.description, None, None))
            elif isinstance(value, ComponentDescription):
                stack.append((value, cd, key))
            if not marked and type(key) is str and key.startswith(prefix):
                marked = True
        if marked:
            found.append(item)
    found.reverse()
    return found


def _action_phase(root: ComponentDescription, name: str) -> None:
    prefix = f"phase.{name}"
    todo = _with_actions(root, prefix)
    for cd, parent, key in todo:
        for attribute in [k for k in cd.attributes if isinstance(k, str) and k.startswith(prefix)]:
            action_name = cd.attributes.get(attribute)
            action = (
                _PHASE_ACTIONS.get(str(action_name).rsplit(".", 1)[-1])
                if isinstance(action_name, str)
                else None
            )
            if action is None:
                raise DescriptionError(
                    f"unknown phase action {action_name!r} ({attribute} in {path_text(cd)}): "
                    f"sfpy knows {', '.join(sorted(_PHASE_ACTIONS))}",
                    position=cd.positions.get(attribute) or cd.position,
                    phase=name,
                    path=path_text(cd, attribute),
                )
            try:
                action(cd, parent, key)
            except DescriptionError as error:
                error.phase = name
                error.path = error.path or path_text(cd)
                raise
    if not todo and name != "function":
        raise DescriptionError(
            f"unknown phase {name!r} in phaseList: no attribute phase.{name} names an action "
            f"for it (the built-in phases are {', '.join(DEFAULT_PHASES)})"
            + did_you_mean(name, DEFAULT_PHASES),
            phase="parse",
        )


# ---------------------------------------------------------------------------------------------
# sfConfig
# ---------------------------------------------------------------------------------------------


def _file_position(root: ComponentDescription) -> SourcePosition | None:
    """Where ROOT was written, so that an error about the whole file names the file.

    The parser gives ROOT the start of its file; a ROOT made without one falls back to
    where its first attribute was written.
    """
    if root.position is not None:
        return root.position
    return next((root.positions[k] for k in root.attributes if k in root.positions), None)


def _sfconfig_phase(root: ComponentDescription) -> ComponentDescription:
    resolver = Resolver(DescriptionContext())
    ref = Reference((RefPart(HERE, "sfConfig"),))
    position = root.positions.get("sfConfig")
    try:
        value = resolver.resolve(ref, root)
    except LazyReferenceError:
        value = root.attributes.get("sfConfig")
    except ResolutionError as error:
        if "sfConfig" in root.attributes:
            raise DescriptionError(
                f"Unresolved Reference: HERE sfConfig, {error.message}",
                position=position,
                phase="sfConfig",
            ) from None
        names = [k for k in root.attributes if isinstance(k, str)]
        hint = did_you_mean("sfConfig", names)
        close = next((name for name in names if hint == f" (did you mean '{name}'?)"), None)
        raise DescriptionError(
            "Unresolved Reference: HERE sfConfig, Reference not found"
            + (hint or " (the description to deploy is the top-level attribute sfConfig)"),
            position=root.positions.get(close) if close is not None else _file_position(root),
            phase="sfConfig",
        ) from None
    if not isinstance(value, ComponentDescription):
        raise DescriptionError(
            "The sfConfig attribute of a SmartFrog description must be a Component Description, "
            f"found a class {type_name(value)}",
            position=position,
            phase="sfConfig",
        )
    return value


# ---------------------------------------------------------------------------------------------
# link
# ---------------------------------------------------------------------------------------------


def _link_phase(act_on: ComponentDescription) -> None:
    resolver = Resolver(DescriptionContext(), memoize=True)
    try:
        errors = resolver.link_resolve(act_on)
    except CycleError as error:  # nested too deeply: one report, no more work
        errors = [error]
    if not errors:
        return
    unique: list[DescriptionError] = []
    seen: set[tuple[Any, ...]] = set()
    for each in errors:
        members = getattr(each, "members", None)
        key = ("cycle", members) if members else (each.message, each.path, each.position)
        if key in seen:
            continue
        seen.add(key)
        unique.append(each)
    raise _combine(unique, "link")


# ---------------------------------------------------------------------------------------------
# sfAsComponentDescription
# ---------------------------------------------------------------------------------------------

_PRIMITIVES = (str, int, float, bool, ByteArray, Reference)


def as_component_description(cd: ComponentDescription) -> ComponentDescription:
    """SmartFrog's ``sfAsComponentDescription``: a plain copy, nothing shared, parent None.

    Attributes tagged ``sfTemp`` and passed static assertions are dropped.
    """
    result = ComponentDescription(eager=cd.eager, position=cd.position)
    work: list[tuple[ComponentDescription, ComponentDescription]] = [(cd, result)]
    copied = 0
    while work:
        source, target = work.pop()
        copied += 1
        if copied > MAX_COPIED:
            raise DescriptionError(
                "the resolved description is too large (or infinite)", phase="link"
            )
        for key, value in source.attributes.items():
            if value is TEMP:
                continue
            tags = source.tags.get(key)
            if tags and SF_TEMP in tags:
                continue
            target.attributes[key] = _convert(value, target, work, source, key)
            if tags:
                target.tags[key] = set(tags)
            if key in source.positions:
                target.positions[key] = source.positions[key]
    return result


def _convert(
    value: Any, parent: ComponentDescription | None, work: list, source: Any, key: Any
) -> Any:
    if isinstance(value, ComponentDescription):
        new = ComponentDescription(parent=parent, eager=value.eager, position=value.position)
        work.append((value, new))
        return new
    if isinstance(value, ApplyReference):
        body = ComponentDescription(
            eager=value.description.eager, position=value.description.position
        )
        work.append((value.description, body))
        return type(value)(body, lazy=value.lazy, data=value.data, position=value.position)
    if isinstance(value, list):
        return [_convert(item, None, work, source, key) for item in value]
    if isinstance(value, _PRIMITIVES) or value is NULL or value is TBD:
        return value
    raise DescriptionError(
        f"Non-primitive value found during conversion to ComponentDescription: {value!r} "
        f"({type(value).__name__}) in {path_text(source, key)}",
        phase="link",
    )
