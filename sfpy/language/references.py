"""Resolving references: SmartFrog's link semantics, shared by the phases and the engine.

A :class:`Reference` is resolved *from a place* (the description that holds it) one part at a
time (SmartFrog's ``ReferencePart.resolve``):

=================  ============================================================================
``HERE n``         attribute ``n`` of the current place (a later part cannot see ``sfLocal``
                   attributes: they are visible to the first part only)
``ATTRIB n``       like HERE, then the parent, the grandparent… (a bare first WORD is ATTRIB)
``PARENT``         the parent of the current place
``ROOT``           the top of the tree (the file's ROOT while processing a description)
``THIS``           the current place
``PROPERTY n``     a *system property* (below), as a string; ``IPROPERTY n`` parses it as a
                   primitive value (``42`` → 42, ``true`` → true, ``"x"`` → "x")
``ENVPROPERTY n``  an environment variable; ``IENVPROPERTY n`` parses it
``CONSTANT c.F``   a Java constant: ``java.lang.Integer.MAX_VALUE`` and a few others (below)
``HOST h``         the root process of host ``h`` (run time only; needs the engine)
``PROCESS``        the process the component runs in (run time only; needs the engine)
=================  ============================================================================

When a HERE/ATTRIB step finds a (non-DATA) reference, it is resolved first, from the
description that holds it (*link chaining*); a vector found that way has its references
resolved. A function application found that way is evaluated. ``OPTIONAL (d) x`` yields ``d``
(NULL when not given) when ``x`` cannot be resolved. Meeting a ``LAZY`` reference while
processing a description raises :class:`LazyReferenceError`: the phases catch it and make the
value that depends on it LAZY too (SmartFrog's *lazy propagation*).

System properties (``PROPERTY``). Python has no JVM, so sfpy offers the properties a
description can sensibly read: ``user.home``, ``user.name``, ``user.dir``, ``os.name``,
``os.arch``, ``os.version``, ``file.separator``, ``path.separator``, ``line.separator``,
``java.io.tmpdir``, ``java.home`` (Python's prefix) and ``java.version`` (Python's version).
Add or override them with ``-D``-style settings in the environment variable
``SFPY_PROPERTIES`` (shell quoting allowed: ``SFPY_PROPERTIES='-Dsite=lab "-Dmotd=hello all"'``)
or from code with :func:`set_property`.

Constants (``CONSTANT``): ``java.lang.Integer|Long|Short|Byte.MAX_VALUE/MIN_VALUE``,
``java.lang.Float|Double.MAX_VALUE/MIN_VALUE/POSITIVE_INFINITY/NEGATIVE_INFINITY/NaN``,
``java.lang.Boolean.TRUE/FALSE``, ``java.lang.Math.PI/E``, ``java.io.File.separator/
pathSeparator`` and ``java.lang.System.lineSeparator``-like ``line.separator`` are known; any
other name fails as SmartFrog fails for a class it cannot load (``Class not found: …``) or a
field it cannot find (``Field not found: …``).

Resolving against something other than a description (the engine's live component tree) goes
through a :class:`ResolverContext`: give :class:`Resolver` a context whose ``lookup``,
``parent`` and ``root`` understand your nodes (subclass :class:`DescriptionContext` and call
``super()`` for plain descriptions), and set ``runtime=True`` so LAZY references are followed
instead of being reported as lazy. Optional hooks: ``attrib_parent`` (where ATTRIB goes on
above a node, when that differs from PARENT), ``properties`` (what PROPERTY reads) and
``describe`` (how messages name a node).
"""

from __future__ import annotations

import getpass
import math
import os
import platform
import shlex
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sfpy.language.errors import DescriptionError, did_you_mean
from sfpy.language.model import (
    ATTRIB,
    CONSTANT,
    ENVPROPERTY,
    HERE,
    HOST,
    IENVPROPERTY,
    IPROPERTY,
    PARENT,
    PROCESS,
    PROPERTY,
    ROOT,
    TBD,
    THIS,
    ApplyReference,
    AssertReference,
    ComponentDescription,
    Double,
    Long,
    Reference,
    RefPart,
    SourcePosition,
    type_name,
)

__all__ = [
    "MISSING",
    "TEMP",
    "CycleError",
    "DescriptionContext",
    "LazyReferenceError",
    "ResolutionError",
    "Resolver",
    "ResolverContext",
    "constant_value",
    "path_text",
    "properties",
    "reference_text",
    "resolve_reference",
    "set_property",
]

SF_LOCAL = "sfLocal"
MAX_CHAIN_DEPTH = 2000  # nested resolutions (link chains, functions inside functions)
# The link phase resolves at most this many references inside one another by recursion; a
# deeper one is deferred: resolved first on the phase's own stack, then the work that needed
# it starts again and finds its value. So chains thousands long resolve within Python's
# default recursion limit, in any thread.
SOFT_DEPTH = 40


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What :meth:`ResolverContext.lookup` returns for a name that is not there."""


class _Temp:
    """SmartFrog's ``SFTempValue``: a value that vanishes at the end (passed static assertion)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "TEMP"


TEMP: Any = _Temp()


class ResolutionError(DescriptionError):
    """A reference (or function, or assertion) could not be resolved.

    ``detail`` is the reason without the reference in front (``no attribute 'x' in a``), for
    callers that name the reference themselves.
    """

    origin: tuple[int, Any] | None = None  # (id(holder), key) of the attribute that failed first
    # A schema check met this failure resolving the checked attribute's value: it is that
    # attribute's mistake, reported where the value is written, not the schema's.
    in_checked_value: bool = False

    def __init__(self, message: str, *, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("phase", "link")
        super().__init__(message, **kwargs)
        self.detail = detail if detail is not None else message


class _Deeper(Exception):  # noqa: N818 - not an error: a request to resolve something first
    """Resolution nests deeper than SOFT_DEPTH: ``holder[key]`` is to be resolved first.

    Not a ResolutionError, so that nothing on the way (OPTIONAL, ATTRIB's search upwards,
    a schema check) mistakes it for a failure.
    """

    def __init__(self, holder: Any, key: Any, value: Any, waiting: Iterable[Any]) -> None:
        super().__init__("resolution deferred")
        self.holder = holder
        self.key = key
        self.value = value
        self.waiting = tuple(waiting)  # the resolutions in progress that need it


class _Consequence(ResolutionError):
    """Needed an attribute whose failure is already reported: not a mistake of its own."""


class _NotFound(ResolutionError):
    """An attribute a reference names is not there.

    Failed lookups are common (OPTIONAL references, schema checks of optional attributes), so
    the message, with its path and "did you mean" hint, is only written when someone reads it.
    """

    def __init__(self, context: Any, ref: Reference, index: int, node: Any) -> None:
        self._facts: tuple[Any, ...] | None = (context, ref, index, node)
        self._message: str | None = None
        self._detail: str | None = None
        super().__init__("", detail="", position=ref.position)

    def _write(self) -> None:
        if self._facts is None:
            return
        context, ref, index, node = self._facts
        self._facts = None
        part = ref.parts[index]
        candidates: list[Any] = []
        if part.kind == ATTRIB:
            scan: Any = node
            while scan is not None:
                candidates.extend(context.names(scan))
                scan = _attrib_parent(context, scan)
        else:
            candidates.extend(context.names(node))
        hint = did_you_mean(str(part.name), [c for c in candidates if isinstance(c, str) and c != part.name])
        where = _describe(context, node)
        scope = f"{where} or its parents" if part.kind == ATTRIB else where
        detail = f"no attribute {str(part.name)!r} in {scope}{hint}"
        if (
            index
            and isinstance(node, ComponentDescription)
            and SF_LOCAL in node.tags.get(part.name, ())
        ):
            detail = f"{str(part.name)!r} in {where} is tagged sfLocal: only references written inside {where} see it"
        if self._detail is None:
            self._detail = detail
        if self._message is None:
            self._message = f"unresolved reference {reference_text(ref)}: {detail}"

    @property  # type: ignore[override]
    def message(self) -> str:
        self._write()
        return self._message or ""

    @message.setter
    def message(self, value: str) -> None:
        if value:
            self._message = value

    @property  # type: ignore[override]
    def detail(self) -> str:
        self._write()
        return self._detail or ""

    @detail.setter
    def detail(self, value: str) -> None:
        if value:
            self._detail = value

    def __str__(self) -> str:
        return self.render_one()


def _unresolved(ref: Reference, detail: str) -> ResolutionError:
    return ResolutionError(
        f"unresolved reference {reference_text(ref)}: {detail}",
        detail=detail,
        position=ref.position,
    )


class LazyReferenceError(ResolutionError):
    """Eager resolution met a LAZY reference (SmartFrog's SmartFrogLazyResolutionException).

    Not a mistake: the phases catch it and keep the value that needed it as a LAZY reference.
    """


class CycleError(ResolutionError):
    """Resolution went round in a circle; ``OPTIONAL`` does not hide it."""

    members: frozenset = frozenset()  # what the circle passes through (to report it once)


# ---------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------


def reference_text(ref: Reference) -> str:
    """SmartFrog's text for a reference (``LAZY PARENT:x``), as messages quote it."""
    from sfpy.language.unparse import reference_text as text

    try:
        return text(ref)
    except DescriptionError:
        return repr(ref)


def path_text(node: Any, key: Any = None) -> str:
    """``sfConfig:a:b`` for a description (and optionally one of its keys); ROOT is ``ROOT``."""
    names: list[str] = []
    current = node
    guard = 0
    while (
        isinstance(current, ComponentDescription) and current.parent is not None and guard < 10_000
    ):
        parent = current.parent
        name = _name_in(parent, current)
        names.append("?" if name is None else _key_text(name))
        current = parent
        guard += 1
    names.reverse()
    if key is not None:
        names.append(_key_text(key))
    return ":".join(names) if names else "ROOT"


def _name_in(parent: Any, child: ComponentDescription) -> Any:
    """The key under which ``parent`` holds ``child`` (directly or as an APPLY/ASSERT body)."""
    if not isinstance(parent, ComponentDescription):
        return None
    for key, value in parent.attributes.items():
        if value is child or (isinstance(value, ApplyReference) and value.description is child):
            return key
    return None


def _key_text(key: Any) -> str:
    if isinstance(key, Reference):
        return ":".join(str(p.name) for p in key.parts)
    return str(key)


# ---------------------------------------------------------------------------------------------
# System properties and constants
# ---------------------------------------------------------------------------------------------

_PROPERTY_OVERRIDES: dict[str, str] = {}


def _machine() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "AMD64": "amd64", "i686": "x86", "i386": "x86"}.get(machine, machine)


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database entry: fall back to the environment
        return os.environ.get("USER", "")


def properties() -> dict[str, str]:
    """The system properties ``PROPERTY`` reads (see the module docstring)."""
    values = {
        "user.home": str(Path.home()),
        "user.name": _user_name(),
        "user.dir": os.getcwd(),
        "os.name": platform.system(),
        "os.arch": _machine(),
        "os.version": platform.release(),
        "file.separator": os.sep,
        "path.separator": os.pathsep,
        "line.separator": os.linesep,
        "java.io.tmpdir": tempfile.gettempdir(),
        "java.home": sys.prefix,
        "java.version": platform.python_version(),
    }
    for item in shlex.split(os.environ.get("SFPY_PROPERTIES", "")):
        if item.startswith("-D"):
            item = item[2:]
        name, sep, value = item.partition("=")
        if name:
            values[name] = value if sep else ""
    values.update(_PROPERTY_OVERRIDES)
    return values


def set_property(name: str, value: str | None) -> None:
    """Set (or with ``None`` remove) a system property, as ``java -Dname=value`` would."""
    if value is None:
        _PROPERTY_OVERRIDES.pop(name, None)
    else:
        _PROPERTY_OVERRIDES[name] = str(value)


_CONSTANTS: dict[str, Any] = {
    "java.lang.Integer.MAX_VALUE": 2**31 - 1,
    "java.lang.Integer.MIN_VALUE": -(2**31),
    "java.lang.Integer.SIZE": 32,
    "java.lang.Long.MAX_VALUE": Long(2**63 - 1),
    "java.lang.Long.MIN_VALUE": Long(-(2**63)),
    "java.lang.Long.SIZE": 64,
    "java.lang.Short.MAX_VALUE": 2**15 - 1,
    "java.lang.Short.MIN_VALUE": -(2**15),
    "java.lang.Byte.MAX_VALUE": 127,
    "java.lang.Byte.MIN_VALUE": -128,
    "java.lang.Float.MAX_VALUE": 3.4028235e38,
    "java.lang.Float.MIN_VALUE": 1.4e-45,
    "java.lang.Float.POSITIVE_INFINITY": math.inf,
    "java.lang.Float.NEGATIVE_INFINITY": -math.inf,
    "java.lang.Float.NaN": math.nan,
    "java.lang.Double.MAX_VALUE": Double(1.7976931348623157e308),
    "java.lang.Double.MIN_VALUE": Double(5e-324),
    "java.lang.Double.POSITIVE_INFINITY": Double(math.inf),
    "java.lang.Double.NEGATIVE_INFINITY": Double(-math.inf),
    "java.lang.Double.NaN": Double(math.nan),
    "java.lang.Boolean.TRUE": True,
    "java.lang.Boolean.FALSE": False,
    "java.lang.Math.PI": Double(math.pi),
    "java.lang.Math.E": Double(math.e),
    "java.io.File.separator": os.sep,
    "java.io.File.pathSeparator": os.pathsep,
}
_KNOWN_CLASSES = frozenset(name.rsplit(".", 1)[0] for name in _CONSTANTS)


def constant_value(name: str) -> Any:
    """The value of ``CONSTANT name``; ResolutionError as SmartFrog words it otherwise."""
    if name in _CONSTANTS:
        return _CONSTANTS[name]
    class_name, dot, field = name.rpartition(".")
    if not dot or class_name not in _KNOWN_CLASSES:
        raise ResolutionError(f"Class not found: {class_name or name} (CONSTANT {name!r})")
    raise ResolutionError(f"Field not found: {field} in {class_name} (CONSTANT {name!r})")


def _parse_primitive(text: str, what: str) -> Any:
    """``IPROPERTY``/``IENVPROPERTY``: the text read as a SmartFrog primitive value."""
    from sfpy.language.parser import parse_text

    try:
        cd = parse_text(f"value {text};", f"<{what}>")
    except DescriptionError:
        raise ResolutionError(f"{what}: {text!r} is not a primitive value") from None
    value = cd.attributes.get("value", MISSING)
    if len(cd.attributes) != 1 or isinstance(
        value, (Reference, ApplyReference, ComponentDescription)
    ):
        raise ResolutionError(f"{what}: {text!r} is not a primitive value")
    return value


# ---------------------------------------------------------------------------------------------
# Where references are resolved: the resolver context
# ---------------------------------------------------------------------------------------------


@runtime_checkable
class ResolverContext(Protocol):
    """What resolution needs to know about the tree it walks (descriptions or live components)."""

    def lookup(self, node: Any, name: Any, first: bool) -> Any:
        """The value of ``name`` in ``node`` or MISSING; ``first``: the reference's first part."""

    def parent(self, node: Any) -> Any | None:
        """The node's parent, or None at the top."""

    def root(self, node: Any) -> Any:
        """The top of the tree ``node`` is in."""

    def is_node(self, value: Any) -> bool:
        """Whether a reference may continue into ``value`` (has attributes)."""

    def names(self, node: Any) -> Iterable[Any]:
        """The attribute names of ``node`` (for "did you mean" hints)."""

    def host(self, node: Any, name: str) -> Any:
        """``HOST name``: the root process of a host."""

    def process(self, node: Any) -> Any:
        """``PROCESS``: the process ``node`` lives in."""


class DescriptionContext:
    """Resolution inside a tree of :class:`ComponentDescription` (language processing)."""

    def lookup(self, node: Any, name: Any, first: bool) -> Any:
        value = node.attributes.get(name, MISSING)
        if value is not MISSING and not first:
            tags = node.tags.get(name)
            if tags and SF_LOCAL in tags:
                return MISSING
        return value

    def parent(self, node: Any) -> Any | None:
        return node.parent

    def root(self, node: Any) -> Any:
        while self.parent(node) is not None:
            node = self.parent(node)
        return node

    def is_node(self, value: Any) -> bool:
        return isinstance(value, ComponentDescription)

    def names(self, node: Any) -> Iterable[Any]:
        return node.attributes.keys() if isinstance(node, ComponentDescription) else ()

    def host(self, node: Any, name: str) -> Any:
        raise ResolutionError(
            f"'HOST {name}' can only be resolved at run time, by a daemon "
            f"(write LAZY HOST {name}… to keep it for run time)"
        )

    def process(self, node: Any) -> Any:
        raise ResolutionError(
            "'PROCESS' can only be resolved at run time (write LAZY PROCESS… to keep it for run time)"
        )

    # Optional hooks (a context that lacks them gets these defaults).
    def attrib_parent(self, node: Any) -> Any | None:
        """Where ``ATTRIB`` looks after ``node``: its parent, unless the tree goes on above
        its top for ATTRIB only (the engine: past an application root, the process)."""
        return self.parent(node)

    def properties(self, node: Any) -> dict[str, str]:
        """What ``PROPERTY`` reads from ``node``: the system properties."""
        return properties()

    def describe(self, node: Any) -> str:
        """How messages name ``node``."""
        return path_text(node) if isinstance(node, ComponentDescription) else repr(node)


def _attrib_parent(context: Any, node: Any) -> Any | None:
    hook = getattr(context, "attrib_parent", None)
    return hook(node) if hook is not None else context.parent(node)


def _properties(context: Any, node: Any) -> dict[str, str]:
    hook = getattr(context, "properties", None)
    return hook(node) if hook is not None else properties()


def _describe(context: Any, node: Any) -> str:
    hook = getattr(context, "describe", None)
    if hook is not None:
        return hook(node)
    return path_text(node) if isinstance(node, ComponentDescription) else repr(node)


# ---------------------------------------------------------------------------------------------
# The resolver
# ---------------------------------------------------------------------------------------------


class Resolver:
    """Resolves references, evaluates functions and assertions, and link-resolves descriptions.

    One instance serves one piece of work (a phase, or one run-time lookup): it keeps the
    chain of resolutions in progress so that a circle (``a b; b a;``) is reported as a cycle
    with its path instead of recursing forever.
    """

    def __init__(
        self, context: Any = None, *, runtime: bool = False, memoize: bool = False
    ) -> None:
        self.context = context if context is not None else DescriptionContext()
        self.runtime = runtime
        # memoize (the link phase): a link met while following another is replaced by its
        # value, as the walk would do when it gets there, so long chains cost linear time.
        # Only when no function or assertion ran on the way, so results are the same.
        self.memoize = memoize and not runtime
        self._evaluations = 0
        # Attributes whose failure has been reported (link phase): whatever needs them fails
        # quietly, so one broken link gives one message, where it is written.
        self._reported: set[tuple[int, Any]] = set()
        # (id(holder), key) -> (holder, key, text) for resolutions in progress, in order.
        self._active: dict[tuple[int, Any], tuple[Any, Any, Any]] = {}
        self._depth = 0
        # Descriptions being link-resolved (id -> cd) and those finished (kept alive so ids stay unique).
        self._walking: dict[int, ComponentDescription] = {}
        self._walked: dict[int, ComponentDescription] = {}
        # Deferred resolutions (link phase): (id(holder), key) -> (holder, ok, value or error).
        self._early: dict[tuple[int, Any], tuple[Any, bool, Any]] = {}
        self._nodefer = False

    # -- references --------------------------------------------------------------------------
    def resolve(self, ref: Reference, node: Any, start: int = 0) -> Any:
        """The value ``ref`` designates, starting at ``node``."""
        if ref.data:
            return ref
        if ref.lazy and start == 0 and not self.runtime:
            raise LazyReferenceError(f"{reference_text(ref)} is LAZY", position=ref.position)
        try:
            return self._walk(ref, node, start)
        except (LazyReferenceError, CycleError):
            raise
        except ResolutionError:
            if ref.optional:
                return ref.default
            raise

    def _walk(self, ref: Reference, node: Any, start: int) -> Any:
        context = self.context
        parts = ref.parts
        current = node
        for index in range(start, len(parts)):
            part = parts[index]
            kind = part.kind
            if kind == HERE:
                if not context.is_node(current):
                    raise self._not_a_node(ref, index, current)
                value = context.lookup(current, part.name, index == 0)
                if value is MISSING:
                    raise self._not_found(ref, index, current)
                current = self.chain(value, current, part.name)
            elif kind == ATTRIB:
                return self._attrib(ref, index, current)
            elif kind == PARENT:
                if not context.is_node(current):
                    raise self._not_a_node(ref, index, current)
                parent = context.parent(current)
                if parent is None:
                    raise _unresolved(ref, f"{_describe(context, current)} has no parent")
                current = parent
            elif kind == ROOT:
                current = context.root(current)
            elif kind == THIS:
                pass
            elif kind in (PROPERTY, IPROPERTY):
                values = _properties(context, current)
                if part.name not in values:
                    raise _unresolved(
                        ref,
                        f"system property {part.name!r} is not set "
                        f"(set it with SFPY_PROPERTIES='-D{part.name}=…')",
                    )
                text = values[part.name]
                current = (
                    text if kind == PROPERTY else _parse_primitive(text, f"IPROPERTY {part.name}")
                )
            elif kind in (ENVPROPERTY, IENVPROPERTY):
                variable = str(part.name)  # named kinds always have a name
                if variable not in os.environ:
                    raise _unresolved(ref, f"environment variable {variable!r} is not set")
                text = os.environ[variable]
                current = (
                    text
                    if kind == ENVPROPERTY
                    else _parse_primitive(text, f"IENVPROPERTY {part.name}")
                )
            elif kind == CONSTANT:
                try:
                    current = constant_value(str(part.name))
                except ResolutionError as error:
                    error.position = error.position or ref.position
                    raise
            elif kind in (HOST, PROCESS):
                try:
                    if kind == HOST:
                        current = context.host(current, str(part.name))
                    else:
                        current = context.process(current)
                except ResolutionError as error:
                    error.position = error.position or ref.position
                    raise
            else:
                raise ResolutionError(f"unknown reference part {kind!r} in {reference_text(ref)}")
        return current

    def _attrib(self, ref: Reference, index: int, node: Any) -> Any:
        """``ATTRIB n`` and the rest of the reference, tried here, then in each parent.

        As SmartFrog's AttribReferencePart: the search moves up not only when ``n`` is
        missing but also when the rest of the reference fails from the ``n`` found (``a:b``
        finds the nearest ``a`` that has a ``b``). A LAZY value or a cycle stops the search.
        """
        context = self.context
        if not context.is_node(node):
            raise self._not_a_node(ref, index, node)
        part = ref.parts[index]
        first = index == 0
        last = index == len(ref.parts) - 1
        failure: ResolutionError | None = None
        holder = node
        while holder is not None:
            value = context.lookup(holder, part.name, first)
            if value is not MISSING:
                try:
                    value = self.chain(value, holder, part.name)
                    return value if last else self._walk(ref, value, index + 1)
                except (LazyReferenceError, CycleError):
                    raise
                except ResolutionError as error:
                    if failure is None:
                        failure = error
            holder = _attrib_parent(context, holder)
        raise failure if failure is not None else self._not_found(ref, index, node)

    def _not_found(self, ref: Reference, index: int, node: Any) -> ResolutionError:
        return _NotFound(self.context, ref, index, node)

    def _not_a_node(self, ref: Reference, index: int, value: Any) -> ResolutionError:
        before = Reference(ref.parts[:index])
        shown = reference_text(before) if index else "the start"
        return _unresolved(
            ref,
            f"{shown} is a {type_name(value)}, not a component description, "
            f"so {_part_text(ref.parts[index])} cannot be found in it",
        )

    # -- link chaining ---------------------------------------------------------------------
    def chain(self, value: Any, holder: Any, key: Any) -> Any:
        """The value of attribute ``key`` of ``holder`` as a reference step sees it.

        References are resolved from ``holder``, applications evaluated, assertions checked,
        vectors have their references resolved; TBD is an error.
        """
        if isinstance(value, (Reference, ApplyReference)):
            if value.data:
                return value
            marker = (id(holder), key)
            if marker in self._reported:
                raise _Consequence(f"{path_text(holder, key)} could not be resolved", position=None)
            if self.memoize:
                early = self._early.get(marker)
                if early is not None:
                    if early[1]:
                        return early[2]
                    raise early[2]
                if self._depth >= SOFT_DEPTH and not self._nodefer:
                    raise _Deeper(holder, key, value, self._active)
            try:
                with self._guard(holder, key, value):
                    if isinstance(value, Reference):
                        before = self._evaluations
                        result = self.resolve(value, holder)
                    elif isinstance(value, AssertReference):
                        return self.evaluate_assertion(value, holder)
                    else:
                        return self.evaluate(value, holder)
            except (LazyReferenceError, CycleError, _Consequence) as error:
                if self.memoize:  # the link phase: it fails the same way every time
                    self._early[marker] = (holder, False, error)
                raise
            except ResolutionError as error:
                if error.origin is None:
                    error.origin = marker
                    if error.path is None:
                        error.path = path_text(holder, key)
                if self.memoize:
                    self._early[marker] = (holder, False, error)
                raise
            if (
                self.memoize
                and before == self._evaluations
                and type(result) is not ComponentDescription
                and isinstance(holder, ComponentDescription)
                and holder.attributes.get(key) is value
            ):
                holder.attributes[key] = result
            return result
        if value is TBD:
            raise ResolutionError(
                f"attribute {_key_text(key)!r} of {path_text(holder)} is still TBD (to be defined)",
                position=_position_of(holder, key),
            )
        if isinstance(value, list):
            return self._resolve_vector(value, holder, key)
        return value

    def _resolve_vector(self, vector: list, holder: Any, key: Any) -> list:
        if not any(isinstance(item, (Reference, list)) for item in vector):
            return vector
        result = []
        for item in vector:
            if isinstance(item, Reference) and not item.data:
                with self._guard(holder, key, item):
                    item = self.resolve(item, holder)
            if isinstance(item, list):
                item = self._resolve_vector(item, holder, key)
            result.append(item)
        return result

    def _guard(self, holder: Any, key: Any, value: Any) -> _Guard:
        return _Guard(self, holder, key, value)

    def _cycle(self, holder: Any, key: Any, value: Any) -> CycleError:
        marker = (id(holder), key)
        entries = list(self._active.values())
        keys = list(self._active)
        start = keys.index(marker) if marker in self._active else 0
        steps = [f"{path_text(h, k)} ({_value_text(v)})" for h, k, v in entries[start:]]
        steps.append(path_text(holder, key))
        error = CycleError(
            f"cyclic reference: {' -> '.join(steps)}",
            position=getattr(value, "position", None) or _position_of(holder, key),
            path=path_text(holder, key),
        )
        error.members = frozenset(keys[start:])
        return error

    # -- functions ---------------------------------------------------------------------------
    def evaluate(self, apply: ApplyReference, holder: Any) -> Any:
        """Evaluate a function application held by ``holder`` (SFApplyReference.resolve).

        The parameters are link-resolved in place (a LAZY APPLY keeps its resolved eager
        parameters, as SmartFrog prints it); a LAZY parameter makes the application LAZY.
        """
        from sfpy.language.functions import call_function

        if apply.data:
            return apply
        self._evaluations += 1
        if apply.lazy and not self.runtime:
            raise LazyReferenceError("function is LAZY", position=apply.position)
        comp = apply.description.copy() if self.runtime else apply.description
        comp.parent = holder
        errors = self._link_params(comp)
        if errors:
            first = errors[0]
            kind = CycleError if isinstance(first, CycleError) else ResolutionError
            raise kind(first.message, position=first.position, path=first.path, more=errors[1:])
        params: dict[Any, Any] = {}
        lazy = False
        for name, value in comp.attributes.items():
            if name == "sfFunctionClass":
                continue
            if isinstance(value, (Reference, ApplyReference)) and not value.data:
                if not value.lazy:  # failed before (and was reported then)
                    raise _Consequence("a parameter could not be resolved", position=apply.position)
                lazy = True
            params[name] = value
        if lazy:
            raise LazyReferenceError("function has a LAZY parameter", position=apply.position)
        result = call_function(comp, params, holder, self, apply.position)
        if isinstance(result, ComponentDescription):
            result.parent = None
        return result

    def evaluate_assertion(self, assertion: AssertReference, holder: Any) -> Any:
        """Check an assertion (SFAssertReference.resolve).

        Returns TEMP (a passed ``static``/``staticLazy`` assertion, or a lazy ``staticLazy``
        one: the attribute disappears) or the assertion itself as LAZY (``dynamic``: checked
        again at run time). A failed check raises ResolutionError.
        """
        from sfpy.language.functions import call_function

        if assertion.data:
            return assertion
        self._evaluations += 1
        original = assertion.description
        phase = original.attributes.get("sfAssertionPhase", "dynamic")
        if phase not in ("static", "staticLazy", "dynamic"):
            raise ResolutionError(
                f'sfAssertionPhase must be "static", "staticLazy" or "dynamic", found {phase!r}',
                position=assertion.position,
            )
        # A static assertion vanishes once checked, so it may be checked in place; any other
        # keeps its text as written, so the check works on a copy.
        comp = original if phase != "dynamic" and not self.runtime else original.copy()
        comp.parent = holder
        params: dict[Any, Any] = {}
        lazy = False
        for name in list(comp.attributes):
            if name in ("sfFunctionClass", "sfAssertionPhase"):
                continue
            try:
                value = self.chain(comp.attributes[name], comp, name)
            except ResolutionError as error:
                if not isinstance(error, LazyReferenceError):
                    if not isinstance(error, CycleError) and not error.in_checked_value:
                        error.path = None  # reported as the assertion's failure, where it is held
                        error.origin = None
                    raise
                if phase == "static" and not self.runtime:
                    raise ResolutionError(
                        "Static assertion cannot evaluate due to LAZY attributes",
                        position=assertion.position,
                    ) from None
                lazy = True
                continue
            comp.attributes[name] = value
            params[name] = value
        if lazy:
            if phase == "staticLazy":
                return TEMP
            return _as_dynamic(original, assertion)
        result = call_function(comp, params, holder, self, assertion.position)
        if result is not True:
            what = "false" if result is False else "non boolean result"
            raise ResolutionError(
                f"Assertion failure ({what}) in {path_text(holder)}", position=assertion.position
            )
        if phase == "dynamic":
            return _as_dynamic(original, assertion)
        return TEMP

    # -- link resolution of a whole description ---------------------------------------------
    def link_resolve(self, cd: ComponentDescription) -> list[DescriptionError]:
        """Resolve every eager reference in ``cd`` and below, in order (the link phase).

        A reference to a description puts that (shared) description in place and resolves
        its links where they were written; a value that needs a LAZY reference becomes LAZY.
        Returns the mistakes found (each attribute that failed), having done all it could.
        """
        errors: list[DescriptionError] = []
        if id(cd) in self._walked:
            return errors
        if id(cd) in self._walking:
            errors.append(self._walk_cycle(cd, cd.parent, None))
            return errors
        nodes: list[ComponentDescription] = [cd]
        iterators: list[Iterator[Any]] = [iter(list(cd.attributes))]
        walking = self._walking
        walking[id(cd)] = cd
        retry: Any = MISSING
        while iterators:
            key = next(iterators[-1], MISSING) if retry is MISSING else retry
            retry = MISSING
            if key is MISSING:
                done = nodes.pop()
                iterators.pop()
                walking.pop(id(done), None)
                self._walked[id(done)] = done
                continue
            node = nodes[-1]
            try:
                target = self._link_value(node, key, errors)
            except _Deeper as deeper:
                if self._depth:  # inside another resolution: the outermost walk settles it
                    for unfinished in nodes:
                        walking.pop(id(unfinished), None)
                    raise
                circle = self._settle(deeper)
                if circle is not None:
                    self._circle(node, key, errors, circle)
                    continue
                retry = key
                continue
            if target is not None:
                walking[id(target)] = target
                nodes.append(target)
                iterators.append(iter(list(target.attributes)))
        return errors

    def _circle(self, node: Any, key: Any, errors: list, circle: CycleError) -> None:
        """What is deferred goes round in a circle: resolve ``node[key]`` again without
        deferring, so the cycle is reported from there with every step; a circle too long
        for that is reported with the steps where it was deferred."""
        before = len(errors)
        self._nodefer = True
        try:
            self._link_value(node, key, errors)
        finally:
            self._nodefer = False
        found = errors[before:]
        if not any(isinstance(error, CycleError) for error in found):
            del errors[before:]
            circle.position = circle.path = None  # shown where the walk met it
            errors.append(_locate(circle, node, key, node.attributes.get(key)))
            self._reported.add((id(node), key))

    def _settle(self, first: _Deeper) -> CycleError | None:
        """Resolve deferred attributes, deepest first, on an explicit stack (see SOFT_DEPTH);
        a CycleError (not raised) when they need one another in a circle."""
        pending = [first]
        # Every resolution waiting for a deferred one, with the index of the pending entry.
        waiting: dict[tuple[int, Any], int] = dict.fromkeys(first.waiting, 0)
        while pending:
            deeper = pending[-1]
            marker = (id(deeper.holder), deeper.key)
            try:
                value = self.chain(deeper.value, deeper.holder, deeper.key)
            except _Deeper as more:
                needed = (id(more.holder), more.key)
                if needed in waiting:  # what is waiting needs itself: a circle
                    start = waiting[needed]
                    markers = [(id(d.holder), d.key) for d in pending]
                    steps = [path_text(d.holder, d.key) for d in pending[start:]]
                    steps.append(path_text(more.holder, more.key))
                    error = CycleError(  # only the deferred steps: the others in between
                        f"cyclic reference: {' -> … -> '.join(steps)}",
                        position=getattr(more.value, "position", None)
                        or _position_of(more.holder, more.key),
                        path=path_text(more.holder, more.key),
                    )
                    error.members = frozenset(markers[start:])
                    return error
                pending.append(more)
                for one in more.waiting:
                    waiting.setdefault(one, len(pending) - 1)
                continue
            except ResolutionError as error:
                self._early[marker] = (deeper.holder, False, error)
            else:
                self._early[marker] = (deeper.holder, True, value)
            pending.pop()
        return None

    def _link_params(self, comp: ComponentDescription) -> list[DescriptionError]:
        """``link_resolve`` for a function's parameters (a flat loop: this runs very often)."""
        errors: list[DescriptionError] = []
        if id(comp) in self._walked:
            return errors
        self._walking[id(comp)] = comp
        try:
            for key in list(comp.attributes):
                target = self._link_value(comp, key, errors)
                if target is not None:
                    errors.extend(self.link_resolve(target))
        finally:
            self._walking.pop(id(comp), None)
        self._walked[id(comp)] = comp
        return errors

    def _link_value(
        self, node: ComponentDescription, key: Any, errors: list
    ) -> ComponentDescription | None:
        """Link-resolve ``node[key]``; the description to walk into next, if any."""
        value = node.attributes.get(key, MISSING)
        kind = type(value)
        if kind is ComponentDescription:
            target = value
        elif isinstance(value, (Reference, ApplyReference)) and not value.data or value is TBD:
            marker = (id(node), key)
            if marker in self._reported:
                return None
            active = self._active
            try:
                if marker in active:
                    raise self._cycle(node, key, value)
                if self._depth >= MAX_CHAIN_DEPTH:
                    raise _too_deep(node, key, value)
                early = self._early.get(marker) if self.memoize else None
                if early is not None:
                    if not early[1]:
                        raise early[2]
                    result = early[2]
                    raise _Settled
                if self.memoize and self._depth >= SOFT_DEPTH and not self._nodefer:
                    raise _Deeper(node, key, value, self._active)
                active[marker] = (node, key, value)
                self._depth += 1
                try:
                    if isinstance(value, Reference):
                        result = self.resolve(value, node)
                    elif value is TBD:
                        result = self.chain(value, node, key)
                    elif isinstance(value, AssertReference):
                        result = self.evaluate_assertion(value, node)
                    else:
                        assert isinstance(value, ApplyReference)
                        result = self.evaluate(value, node)
                finally:
                    active.pop(marker, None)
                    self._depth -= 1
            except _Settled:
                pass  # resolved ahead (deferred), ``result`` holds the value
            except LazyReferenceError:
                if isinstance(value, (Reference, ApplyReference)) and not value.lazy:
                    node.attributes[key] = value.with_flags(lazy=True)
                return None
            except _TooDeep:
                raise
            except _Consequence:
                self._reported.add(marker)
                return None
            except ResolutionError as error:
                self._reported.add(marker)
                if error.origin is not None:
                    self._reported.add(error.origin)
                errors.append(_locate(error, node, key, value))
                return None
            except RecursionError:
                errors.append(
                    ResolutionError(
                        "description too deeply nested or linked to resolve",
                        position=_position_of(node, key),
                        path=path_text(node, key),
                    )
                )
                return None
            node.attributes[key] = result
            if type(result) is not ComponentDescription:
                return None
            if result.parent is None:
                result.parent = node
            target = result
        else:
            return None
        if id(target) in self._walked:
            return None
        if id(target) in self._walking:
            errors.append(self._walk_cycle(target, node, key))
            return None
        return target

    def _walk_cycle(self, target: ComponentDescription, node: Any, key: Any) -> CycleError:
        where = path_text(node, key) if key is not None else path_text(target)
        return CycleError(
            f"cyclic reference: {where} links to {path_text(target)}, which contains it "
            "(the description would be infinite)",
            position=_position_of(node, key) if key is not None else target.position,
            path=where,
        )


class _Settled(Exception):  # noqa: N818 - control flow inside _link_value only
    """The attribute was resolved ahead of the walk (deferred): its value is known."""


class _Guard:
    """Marks (holder, key) as being resolved; meeting it again is a cycle."""

    __slots__ = ("resolver", "holder", "key", "value", "marker")

    def __init__(self, resolver: Resolver, holder: Any, key: Any, value: Any) -> None:
        self.resolver = resolver
        self.holder = holder
        self.key = key
        self.value = value
        self.marker = (id(holder), key)

    def __enter__(self) -> None:
        resolver = self.resolver
        if self.marker in resolver._active:
            raise resolver._cycle(self.holder, self.key, self.value)
        if resolver._depth >= MAX_CHAIN_DEPTH:
            raise _too_deep(self.holder, self.key, self.value)
        resolver._active[self.marker] = (self.holder, self.key, self.value)
        resolver._depth += 1

    def __exit__(self, *exc: Any) -> None:
        self.resolver._active.pop(self.marker, None)
        self.resolver._depth -= 1


class _TooDeep(CycleError):
    """Resolution nested beyond MAX_CHAIN_DEPTH: reported once, the phase stops there."""


def _too_deep(holder: Any, key: Any, value: Any) -> CycleError:
    return _TooDeep(
        f"references nested more than {MAX_CHAIN_DEPTH} deep while resolving "
        f"{path_text(holder, key)} (a cycle through functions, or a very long chain)",
        position=getattr(value, "position", None) or _position_of(holder, key),
        path=path_text(holder, key),
    )


def _value_text(value: Any) -> str:
    return reference_text(value) if isinstance(value, Reference) else _short(value)


def _short(value: Any) -> str:
    if isinstance(value, ApplyReference):
        cls = value.description.attributes.get("sfFunctionClass", "?")
        return f"{value.keyword} {str(cls).rsplit('.', 1)[-1]}"
    return type(value).__name__


def _part_text(part: RefPart) -> str:
    return part.kind if part.name is None else f"{part.kind} {part.name}"


def _position_of(holder: Any, key: Any) -> SourcePosition | None:
    if isinstance(holder, ComponentDescription):
        return holder.positions.get(key) or holder.position
    return None


def _locate(error: DescriptionError, node: Any, key: Any, value: Any) -> DescriptionError:
    """Give an error found while resolving ``node[key]`` its place and path."""
    if error.path is None:
        error.path = path_text(node, key)
    if error.position is None:
        error.position = getattr(value, "position", None) or _position_of(node, key)
    return error


def _as_dynamic(original: ComponentDescription, assertion: AssertReference) -> AssertReference:
    """The assertion as written (without sfAssertionPhase), LAZY: to be checked at run time."""
    if "sfAssertionPhase" in original.attributes:
        original.remove("sfAssertionPhase")
    if assertion.lazy:
        return assertion
    return AssertReference(original, lazy=True, position=assertion.position)


def resolve_reference(
    ref: Reference, node: Any, context: Any = None, *, runtime: bool = False
) -> Any:
    """Resolve one reference from ``node`` (a convenience over :class:`Resolver`)."""
    return Resolver(context, runtime=runtime).resolve(ref, node)
