"""Run-time reference resolution: LAZY references against the live component tree.

The language resolves eager links at parse time; what is left in a running component's
attributes are LAZY references (and LAZY function applications). They are resolved here,
every time they are read, from the component that holds the attribute (SmartFrog §4/§11):

==================  ====================================================================
part                in context C (a component, a description held as data, the process)
==================  ====================================================================
``HERE n``          C's attribute ``n`` (after the first part ``sfLocal`` ones are hidden)
``ATTRIB n``        ``HERE n`` in C, else in C's parent, …, the application root, then
                    the process (where ``sfLivenessDelay``/``sfLivenessFactor`` defaults live)
``PARENT``          C's parent (an application root has none)
``ROOT``            the root of C's component tree (the application, or a detached subtree)
``THIS``            C
``PROCESS``         the process (SmartFrog's ProcessCompound): its attributes and applications
``PROPERTY n``      the process's property ``n`` (``Process.properties``), else the language's
                    system properties (``SFPY_PROPERTIES``); ``IPROPERTY`` parses it; ends
``ENVPROPERTY n``   the environment variable ``n`` (``IENVPROPERTY`` parses it); ends
``HOST h``          another host's root process: needs daemons (step 3); an error here
``CONSTANT c``      the language's Java constants (``java.lang.Integer.MAX_VALUE``…)
==================  ====================================================================

A value found on the way that is itself a (non-DATA) reference is resolved from the context
that holds it (link chaining); a vector has its references resolved; a LAZY APPLY is evaluated
with the language's function library; a DATA reference is returned as it is. ``OPTIONAL``
references yield their default instead of failing.

Contexts are duck-typed so that a handle to a component in another process (step 3) can take
part: anything with ``_sf_lookup(name, first)``, ``_sf_container(for_attrib)`` and
``_sf_root()`` is navigable.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sfpy.engine.errors import ResolutionError
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
    ComponentDescription,
    Reference,
    RefPart,
)

if TYPE_CHECKING:
    from sfpy.engine.process import Process

MAX_DEPTH = 200  # links through links: deeper than this is a cycle
BARE_WORDS = {PARENT: PARENT, ROOT: ROOT, THIS: THIS, PROCESS: PROCESS}
NAMED_WORDS = {ATTRIB, HERE, HOST, PROPERTY, IPROPERTY, ENVPROPERTY, IENVPROPERTY, CONSTANT}


class _NotFound(Exception):
    """Internal: an attribute is not in a context (names listed only for a message)."""

    def __init__(self, context: Any) -> None:
        super().__init__()
        self.context = context

    @property
    def candidates(self) -> list[str]:
        context = self.context
        if isinstance(context, ComponentDescription):
            return [k for k in context.attributes if isinstance(k, str)]
        names = getattr(context, "_sf_names", None)
        return names() if names else []


def parse_reference(text: str) -> Reference:
    """A reference written as text, as component code likes to: ``"disk:path"``,
    ``"PARENT:size"``, ``"ATTRIB myShell"``. A leading plain word is HERE (as SmartFrog's
    ``sfResolve(String)``); later plain words are HERE too."""
    parts: list[RefPart] = []
    for token in text.split(":"):
        word = token.strip()
        if not word:
            raise ResolutionError(f"empty part in reference {text!r}")
        if word in BARE_WORDS:
            parts.append(RefPart(word))
            continue
        head, _, rest = word.partition(" ")
        if head in NAMED_WORDS and rest.strip():
            parts.append(RefPart(head, rest.strip().strip('"')))
        else:
            parts.append(RefPart(HERE, word))
    return Reference(parts)


def reference_text(reference: Reference) -> str:
    return ":".join(p.kind if p.name is None else f"{p.kind} {p.name}" for p in reference.parts)


class Resolver:
    """One resolution (with its own depth counter and the way back out of data descriptions)."""

    __slots__ = ("process", "depth", "outer")

    def __init__(self, process: Process | None) -> None:
        self.process = process
        self.depth = 0
        # A description held as data has no component parent of its own; remember which
        # context we entered it from, so PARENT inside it leads back there.
        self.outer: dict[int, Any] = {}

    # -- entry points -------------------------------------------------------------------------
    def resolve(self, reference: Reference, context: Any) -> Any:
        if reference.data:
            return reference
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise ResolutionError(
                    f"reference {reference_text(reference)} links through more than {MAX_DEPTH} "
                    "references (a cycle?)"
                )
            try:
                return self._walk(reference, context)
            except ResolutionError:
                if reference.optional:
                    return self.value(reference.default, context)
                raise
        finally:
            self.depth -= 1

    def value(self, value: Any, holder: Any) -> Any:
        """What reading ``value`` (held by ``holder``) yields: references resolved, vectors
        resolved element by element, LAZY APPLY evaluated, TBD an error."""
        if isinstance(value, Reference):
            return value if value.data else self.resolve(value, holder)
        if isinstance(value, ApplyReference):
            return value if value.data else self.apply(value, holder)
        if isinstance(value, list):
            if not any(_needs_resolution(item) for item in value):
                return value
            return [self.value(item, holder) for item in value]
        if value is TBD:
            raise ResolutionError("attribute is still TBD (to be defined)")
        return value

    # -- the walk -------------------------------------------------------------------------------
    def _walk(self, reference: Reference, context: Any) -> Any:
        parts = reference.parts
        current = context
        last = len(parts) - 1
        for index, part in enumerate(parts):
            kind = part.kind
            if kind == HERE or kind == ATTRIB:
                holder, value = self._find(reference, part, index, current, kind == ATTRIB)
                current = self.value(value, holder)
                if isinstance(current, ComponentDescription) and index < last:
                    self.outer.setdefault(id(current), holder)
            elif kind == PARENT:
                parent = self._container(current, for_attrib=False)
                if parent is None:
                    raise self._error(reference, part, current, "has no parent")
                current = parent
            elif kind == ROOT:
                current = self._root(current)
            elif kind == THIS:
                pass
            elif kind == PROCESS:
                if self.process is None:
                    raise self._error(reference, part, current, "is not in a process")
                current = self.process
            elif kind in (PROPERTY, IPROPERTY, ENVPROPERTY, IENVPROPERTY):
                if index != last:
                    raise self._error(reference, part, current, f"{kind} must be the last part")
                return self._property(reference, part, current)
            elif kind == HOST:
                if self.process is None:
                    raise self._error(reference, part, current, "is not in a process")
                current = self.process.resolve_host(part.name)
            elif kind == CONSTANT:
                from sfpy.language.references import constant_value

                try:
                    current = constant_value(str(part.name))
                except DescriptionError as error:
                    raise self._error(reference, part, current, error.message) from None
            else:
                raise self._error(reference, part, current, f"unknown reference part {kind}")
        return current

    def _find(
        self, reference: Reference, part: RefPart, index: int, context: Any, upward: bool
    ) -> tuple[Any, Any]:
        """(holder, raw value) of ``part.name`` in ``context`` (and upward for ATTRIB)."""
        name = part.name
        searched = context
        while True:
            try:
                return searched, self._lookup(searched, name, index == 0)
            except _NotFound as missing:
                if not upward:
                    raise self._error(
                        reference,
                        part,
                        context,
                        "not found" + did_you_mean(str(name), missing.candidates),
                    ) from None
            searched = self._container(searched, for_attrib=True)
            if searched is None:
                raise self._error(reference, part, context, "not found")

    def _lookup(self, context: Any, name: str | None, first: bool) -> Any:
        if isinstance(context, ComponentDescription):
            if name in context.attributes and (first or "sfLocal" not in context.tags_of(name)):
                return context.attributes[name]
            raise _NotFound(context)
        lookup = getattr(context, "_sf_lookup", None)
        if lookup is None:
            raise _NotFound(None)
        try:
            return lookup(name, first)
        except KeyError:
            raise _NotFound(context) from None

    def _container(self, context: Any, *, for_attrib: bool) -> Any:
        if isinstance(context, ComponentDescription):
            outer = self.outer.get(id(context))
            return outer if outer is not None else context.parent
        container = getattr(context, "_sf_container", None)
        return None if container is None else container(for_attrib)

    def _root(self, context: Any) -> Any:
        if isinstance(context, ComponentDescription):
            outer = self.outer.get(id(context))
            if outer is not None:
                return self._root(outer)
            return context.root()
        root = getattr(context, "_sf_root", None)
        return context if root is None else root()

    def _property(self, reference: Reference, part: RefPart, context: Any) -> Any:
        name = part.name or ""
        if part.kind in (PROPERTY, IPROPERTY):
            text = self.process.properties.get(name) if self.process is not None else None
            if text is None:
                from sfpy.language.references import properties

                text = properties().get(name)
        else:
            text = os.environ.get(name)
        if text is None:
            raise self._error(reference, part, context, "is not set")
        return parse_primitive(text) if part.kind in (IPROPERTY, IENVPROPERTY) else text

    # -- functions ------------------------------------------------------------------------------
    def apply(self, application: ApplyReference, holder: Any) -> Any:
        """Evaluate a LAZY APPLY (or a lazy operator) now, from ``holder``."""
        from sfpy.engine.functions import evaluate_apply

        return evaluate_apply(self, application, holder)

    # -- messages -------------------------------------------------------------------------------
    def _error(
        self, reference: Reference, part: RefPart, context: Any, problem: str
    ) -> ResolutionError:
        what = part.kind if part.name is None else f"{part.kind} {part.name}"
        where = describe_context(context)
        return ResolutionError(
            f"Unresolved Reference: {reference_text(reference)}: {what} {problem} (in {where})"
        )


def describe_context(context: Any) -> str:
    name = getattr(context, "sf_complete_name", None)
    if callable(name):
        try:
            return str(name())
        except Exception:  # noqa: BLE001 - only for a message
            return repr(context)
    if isinstance(context, ComponentDescription):
        path = context.path()
        return "description " + (":".join(path) if path else "(root)")
    return repr(context)


def _needs_resolution(value: Any) -> bool:
    if isinstance(value, (Reference, ApplyReference)):
        return not value.data
    if isinstance(value, list):
        return any(_needs_resolution(item) for item in value)
    return value is TBD


def parse_primitive(text: str) -> Any:
    """IPROPERTY/IENVPROPERTY: a property's text read as a SmartFrog primitive value."""
    from sfpy.language import references

    try:
        return references._parse_primitive(text, "property")
    except DescriptionError as error:
        raise ResolutionError(error.message) from None
