"""Run-time reference resolution: LAZY references against the live component tree.

The language resolves eager links at parse time; what is left in a running component's
attributes are LAZY references (and LAZY function applications). They are resolved, every
time they are read, by the language's own :class:`sfpy.language.references.Resolver`
(``runtime=True``), walking the live tree through :class:`LiveContext`; so the parts
(``HERE ATTRIB PARENT ROOT THIS PROCESS PROPERTY IPROPERTY ENVPROPERTY IENVPROPERTY
CONSTANT HOST``), link chaining, ``OPTIONAL``, LAZY APPLY (evaluated on a copy, every read)
and cycle detection mean the same thing at run time as at parse time. What the live tree
changes:

==================  ====================================================================
part                in context C (a component, a description held as data, the process)
==================  ====================================================================
``ATTRIB n``        goes on past the application root to the process (where the
                    ``sfLivenessDelay``/``sfLivenessFactor`` defaults live)
``PARENT``          C's parent component; an application root has none; a description
                    held as data leads back to the component it was read from
``ROOT``            the root of C's component tree (the application, or a detached subtree)
``PROCESS``         the process (SmartFrog's ProcessCompound): its attributes and applications
``PROPERTY n``      the process's property ``n`` (``Process.properties``), else the language's
                    system properties (``SFPY_PROPERTIES``)
``HOST h``          another host's root process (``Process.resolve_host``): needs daemons
==================  ====================================================================

A dynamic assertion read at run time yields ``True`` (or fails). Errors reach engine callers
as :class:`~sfpy.engine.errors.ResolutionError`.

Contexts are duck-typed so that a handle to a component in another process (the daemons) can take
part: anything with ``sf_lookup(name, first)``, ``sf_container(for_attrib)``,
``sf_root()`` and ``sf_names()`` is navigable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sfpy.engine.errors import EngineError, ResolutionError
from sfpy.language import references
from sfpy.language.errors import DescriptionError
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
    THIS,
    AssertReference,
    ComponentDescription,
    Reference,
    RefPart,
)

if TYPE_CHECKING:
    from sfpy.engine.process import Process

BARE_WORDS = {PARENT: PARENT, ROOT: ROOT, THIS: THIS, PROCESS: PROCESS}
NAMED_WORDS = {ATTRIB, HERE, HOST, PROPERTY, IPROPERTY, ENVPROPERTY, IENVPROPERTY, CONSTANT}
_MISSING = references.MISSING
_LanguageError = references.ResolutionError


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


class LiveContext(references.DescriptionContext):
    """The language resolver's view of the live tree: components (and the process) through
    their navigation protocol, descriptions as the language sees them.

    One context serves one resolution: a description read as data from a component
    remembers that component, so that PARENT (and ATTRIB, ROOT) inside it lead back there.
    """

    __slots__ = ("_sf_process", "_outer")

    def __init__(self, process: Process | None) -> None:
        self._sf_process = process
        self._outer: dict[int, Any] = {}

    def lookup(self, node: Any, name: Any, first: bool) -> Any:
        if isinstance(node, ComponentDescription):
            return super().lookup(node, name, first)
        try:
            value = node.sf_lookup(name, first)
        except KeyError:
            return _MISSING
        if isinstance(value, ComponentDescription):
            self._outer.setdefault(id(value), node)
        return value

    def parent(self, node: Any) -> Any | None:
        if isinstance(node, ComponentDescription):
            outer = self._outer.get(id(node))
            return outer if outer is not None else node.parent
        return node.sf_container(False)

    def attrib_parent(self, node: Any) -> Any | None:
        if isinstance(node, ComponentDescription):
            return self.parent(node)
        return node.sf_container(True)

    def root(self, node: Any) -> Any:
        while isinstance(node, ComponentDescription):
            parent = self.parent(node)
            if parent is None:
                return node
            node = parent
        return node.sf_root() if self.is_node(node) else node

    def is_node(self, value: Any) -> bool:
        return isinstance(value, ComponentDescription) or hasattr(value, "sf_lookup")

    def names(self, node: Any) -> Any:
        if isinstance(node, ComponentDescription):
            return super().names(node)
        names = getattr(node, "sf_names", None)
        return names() if names is not None else ()

    def host(self, node: Any, name: str) -> Any:
        process = self.process(node)
        try:
            return process.resolve_host(name)
        except EngineError as error:
            raise _LanguageError(str(error)) from None

    def process(self, node: Any) -> Any:
        if self._sf_process is None:
            raise _LanguageError(f"{self.describe(node)} is not in a process")
        return self._sf_process

    def properties(self, node: Any) -> dict[str, str]:
        values = references.properties()
        if self._sf_process is not None:
            values.update(self._sf_process.properties)
        return values

    def describe(self, node: Any) -> str:
        name = getattr(node, "sf_complete_name", None)
        if callable(name):
            return str(name())
        if isinstance(node, ComponentDescription):
            return "description " + references.path_text(node)
        return repr(node)


class _LiveResolver(references.Resolver):
    """The language's resolver at run time; a dynamic assertion that holds reads as True."""

    def evaluate_assertion(self, assertion: AssertReference, holder: Any) -> Any:
        super().evaluate_assertion(assertion, holder)
        return True


class Resolver:
    """Resolves references from live components (``Prim.sf_resolve``) with the language's
    resolver, reporting failures as the engine's :class:`ResolutionError`."""

    __slots__ = ("process",)

    def __init__(self, process: Process | None) -> None:
        self.process = process

    def resolve(self, reference: Reference, context: Any) -> Any:
        resolver = _LiveResolver(LiveContext(self.process), runtime=True)
        try:
            return resolver.resolve(reference, context)
        except DescriptionError as error:
            raise ResolutionError(_message(reference, error)) from None


def _message(reference: Reference, error: DescriptionError) -> str:
    """The language's message, in the engine's words (``Unresolved Reference: …``)."""
    message = error.message
    prefix = "unresolved reference "
    if message.startswith(prefix):
        return "Unresolved Reference: " + message[len(prefix) :]
    return f"Unresolved Reference: {references.reference_text(reference)}: {message}"
