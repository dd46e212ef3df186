"""The description model: what the parser builds, the phases transform and the engine runs.

Everything here is plain data. SmartFrog keeps its value types distinct and so do we:

==================  =====================  ==========================
SmartFrog           Python                 written as
==================  =====================  ==========================
Integer             ``int``                ``42``
Long                :class:`Long`          ``42L``
Float               ``float``              ``1.5`` / ``1.5f``
Double              :class:`Double`        ``1.5D``
Boolean             ``bool``               ``true`` / ``false``
String              ``str``                ``"text"``
SFNull              :data:`NULL`           ``NULL``
SFByteArray         :class:`ByteArray`     ``#HEX#AB34#``
Vector              ``list``               ``[|1, 2|]`` (or ``[1, 2]`` once evaluated)
TBD                 :data:`TBD`            ``TBD``
Reference           :class:`Reference`     ``LAZY PARENT:foo``
APPLY / ASSERT      :class:`ApplyReference` / :class:`AssertReference`
component           :class:`ComponentDescription`  ``extends Prim { … }``
==================  =====================  ==========================

Attribute keys are strings, except a placement (``a:b:c 42;``) whose key is a
:class:`Reference` of HERE parts until the place phase moves it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class Long(int):
    """SmartFrog's Long (``240L``); an ``int`` that remembers it was written as a Long."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Long({int(self)})"


class Double(float):
    """SmartFrog's Double (``1.5D``); a ``float`` that remembers it was written as a Double."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Double({float(self)!r})"


class ByteArray(bytes):
    """SmartFrog's byte array literal (``#HEX#AB34#``, ``#B64#…#``)."""

    def __repr__(self) -> str:
        return f"ByteArray({bytes(self)!r})"


class _Null:
    """SmartFrog's ``NULL``: one value, distinct from a missing attribute."""

    _instance: _Null | None = None
    __slots__ = ()

    def __new__(cls) -> _Null:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NULL"

    def __reduce__(self) -> str:
        return "NULL"

    def __deepcopy__(self, memo: dict) -> _Null:
        return self

    def __copy__(self) -> _Null:
        return self


NULL = _Null()


class _TBD:
    """``TBD``: an attribute an extending description must still define.

    Resolving it is an error ("attribute is still TBD"); leaving it in a template is fine.
    """

    _instance: _TBD | None = None
    __slots__ = ()

    def __new__(cls) -> _TBD:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "TBD"

    def __reduce__(self) -> str:
        return "TBD"

    def __deepcopy__(self, memo: dict) -> _TBD:
        return self

    def __copy__(self) -> _TBD:
        return self


TBD = _TBD()


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Where something was written: file name as given to the parser, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# Reference part kinds. Those in NAMED_PARTS carry a name; the others stand alone.
ATTRIB = "ATTRIB"
HERE = "HERE"
PARENT = "PARENT"
ROOT = "ROOT"
THIS = "THIS"
HOST = "HOST"
PROCESS = "PROCESS"
PROPERTY = "PROPERTY"
IPROPERTY = "IPROPERTY"
ENVPROPERTY = "ENVPROPERTY"
IENVPROPERTY = "IENVPROPERTY"
CONSTANT = "CONSTANT"

NAMED_PARTS = frozenset(
    {ATTRIB, HERE, HOST, PROPERTY, IPROPERTY, ENVPROPERTY, IENVPROPERTY, CONSTANT}
)
BARE_PARTS = frozenset({PARENT, ROOT, THIS, PROCESS})


@dataclass(frozen=True, slots=True)
class RefPart:
    """One step of a reference: ``kind`` is one of the constants above; ``name`` for named kinds."""

    kind: str
    name: str | None = None


class Reference:
    """A link such as ``LAZY PARENT:disk:path`` or ``OPTIONAL (3) retries``.

    ``lazy``: resolved at run time against the live component tree, every time it is read.
    ``data``: the reference itself is the value; never resolved.
    ``optional``/``default``: a failed resolution yields ``default`` instead of an error.
    """

    __slots__ = ("parts", "lazy", "data", "optional", "default", "position")

    def __init__(
        self,
        parts: tuple[RefPart, ...] | list[RefPart],
        *,
        lazy: bool = False,
        data: bool = False,
        optional: bool = False,
        default: Any = NULL,
        position: SourcePosition | None = None,
    ) -> None:
        self.parts = tuple(parts)
        self.lazy = lazy
        self.data = data
        self.optional = optional
        self.default = default
        self.position = position

    def with_flags(self, **changes: Any) -> Reference:
        """A copy with some flags changed (references are shared, so never mutate one)."""
        values = {
            "lazy": self.lazy,
            "data": self.data,
            "optional": self.optional,
            "default": self.default,
            "position": self.position,
        }
        values.update(changes)
        return Reference(self.parts, **values)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Reference)
            and self.parts == other.parts
            and self.lazy == other.lazy
            and self.data == other.data
            and self.optional == other.optional
            and _same_value(self.default, other.default)
        )

    def __hash__(self) -> int:
        return hash((self.parts, self.lazy, self.data, self.optional))

    def __repr__(self) -> str:
        flags = "".join(
            f for f, on in (("LAZY ", self.lazy), ("DATA ", self.data), ("OPTIONAL ", self.optional)) if on
        )
        text = ":".join(p.kind if p.name is None else f"{p.kind} {p.name}" for p in self.parts)
        return f"Reference({flags}{text})"

    def __deepcopy__(self, memo: dict) -> Reference:
        return self  # immutable in practice


class ApplyReference:
    """A function application (``APPLY {…}``, an operator, ``[a, b]``, ``IF … FI``).

    ``description`` holds ``sfFunctionClass`` and the parameters in order.
    """

    __slots__ = ("description", "lazy", "data", "position")
    keyword = "APPLY"

    def __init__(
        self,
        description: ComponentDescription,
        *,
        lazy: bool = False,
        data: bool = False,
        position: SourcePosition | None = None,
    ) -> None:
        self.description = description
        self.lazy = lazy
        self.data = data
        self.position = position

    def with_flags(self, **changes: Any) -> ApplyReference:
        values: dict[str, Any] = {"lazy": self.lazy, "data": self.data, "position": self.position}
        values.update(changes)
        return type(self)(self.description, **values)

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and self.lazy == other.lazy  # type: ignore[attr-defined]
            and self.data == other.data  # type: ignore[attr-defined]
            and self.description == other.description  # type: ignore[attr-defined]
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        lazy = "LAZY " if self.lazy else ""
        return f"{type(self).__name__}({lazy}{self.description!r})"

    def __deepcopy__(self, memo: dict) -> ApplyReference:
        return type(self)(
            self.description.copy(), lazy=self.lazy, data=self.data, position=self.position
        )


class AssertReference(ApplyReference):
    """An assertion (``ASSERT {…}``, a constructed Assertions or Schema)."""

    __slots__ = ()
    keyword = "ASSERT"


class ComponentDescription:
    """An ordered set of attributes with tags: SmartFrog's component description.

    ``eager`` is False for ``extends DATA``/``extends LAZY`` descriptions, which a Compound
    keeps as data instead of deploying. ``prototypes`` holds what ``extends`` named until the
    type phase has merged them in. ``positions`` remembers where each attribute was written.
    """

    __slots__ = ("attributes", "tags", "positions", "parent", "eager", "prototypes", "position")

    def __init__(
        self,
        attributes: dict[Any, Any] | None = None,
        *,
        parent: ComponentDescription | None = None,
        eager: bool = True,
        position: SourcePosition | None = None,
    ) -> None:
        self.attributes: dict[Any, Any] = attributes if attributes is not None else {}
        self.tags: dict[Any, set[str]] = {}
        self.positions: dict[Any, SourcePosition] = {}
        self.parent = parent
        self.eager = eager
        self.prototypes: list[Reference | ComponentDescription] = []
        self.position = position

    # -- dictionary-like access --------------------------------------------------------------
    def __contains__(self, key: object) -> bool:
        return key in self.attributes

    def __getitem__(self, key: Any) -> Any:
        return self.attributes[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)

    def get(self, key: Any, default: Any = None) -> Any:
        return self.attributes.get(key, default)

    def items(self):  # noqa: ANN201 - a dict view
        return self.attributes.items()

    def put(
        self,
        key: Any,
        value: Any,
        tags: set[str] | frozenset[str] | None = None,
        position: SourcePosition | None = None,
    ) -> None:
        """Set ``key``; an existing key keeps its place (SmartFrog's OrderedHashtable.put).

        A description value is re-parented here. Tags are added to the ones already there.
        """
        self.attributes[key] = value
        if tags:
            self.tags.setdefault(key, set()).update(tags)
        if position is not None:
            self.positions[key] = position
        if isinstance(value, ComponentDescription):
            value.parent = self

    def remove(self, key: Any) -> Any:
        self.tags.pop(key, None)
        self.positions.pop(key, None)
        return self.attributes.pop(key)

    def tags_of(self, key: Any) -> set[str]:
        return self.tags.get(key, set())

    def name_of(self, value: Any) -> Any | None:
        """The key under which ``value`` (by identity) is held here, or None."""
        for key, held in self.attributes.items():
            if held is value:
                return key
        return None

    # -- structure -----------------------------------------------------------------------------
    def root(self) -> ComponentDescription:
        node = self
        while node.parent is not None:
            node = node.parent
        return node

    def path(self) -> list[str]:
        """Names from the top of the tree down to this description (empty for the root)."""
        names: list[str] = []
        node = self
        while node.parent is not None:
            name = node.parent.name_of(node)
            names.append("?" if name is None else str(name))
            node = node.parent
        return list(reversed(names))

    def copy(self) -> ComponentDescription:
        """A deep copy; nested descriptions are copied and re-parented, references shared."""
        return _copy_description(self, None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ComponentDescription):
            return NotImplemented
        if self.eager != other.eager or list(self.attributes) != list(other.attributes):
            return False
        for key, value in self.attributes.items():
            if not _same_value(value, other.attributes[key]):
                return False
            if self.tags.get(key, set()) != other.tags.get(key, set()):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        eager = "" if self.eager else "DATA "
        inner = "; ".join(f"{k} {v!r}" for k, v in list(self.attributes.items())[:6])
        more = "; …" if len(self.attributes) > 6 else ""
        return f"ComponentDescription({eager}{{{inner}{more}}})"


def copy_value(value: Any, parent: ComponentDescription | None = None) -> Any:
    """Deep copy of a value: descriptions and vectors are copied, everything else shared."""
    if isinstance(value, ComponentDescription):
        return _copy_description(value, parent)
    if isinstance(value, list):
        return [copy_value(item, parent) for item in value]
    if isinstance(value, ApplyReference):
        return type(value)(
            _copy_description(value.description, None),
            lazy=value.lazy,
            data=value.data,
            position=value.position,
        )
    return value


def _copy_description(cd: ComponentDescription, parent: ComponentDescription | None) -> ComponentDescription:
    new = ComponentDescription(parent=parent, eager=cd.eager, position=cd.position)
    new.attributes = {key: copy_value(value, new) for key, value in cd.attributes.items()}
    new.tags = {key: set(tags) for key, tags in cd.tags.items()}
    new.positions = dict(cd.positions)
    new.prototypes = [copy_value(p, new) for p in cd.prototypes]
    return new


def _same_value(a: Any, b: Any) -> bool:
    """Equality that keeps SmartFrog's types apart (1 != 1L, 1.5 != 1.5D, true != 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    return a == b


same_value = _same_value


def type_name(value: Any) -> str:
    """SmartFrog's (Java) type name of a value, as schemas and messages use it."""
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, Long):
        return "java.lang.Long"
    if isinstance(value, int):
        return "java.lang.Integer"
    if isinstance(value, Double):
        return "java.lang.Double"
    if isinstance(value, float):
        return "java.lang.Float"
    if isinstance(value, str):
        return "java.lang.String"
    if isinstance(value, list):
        return "java.util.Vector"
    if value is NULL:
        return "org.smartfrog.sfcore.languages.sf.sfcomponentdescription.SFNull"
    if isinstance(value, ByteArray):
        return "org.smartfrog.sfcore.common.SFByteArray"
    if isinstance(value, ComponentDescription):
        return "org.smartfrog.sfcore.componentdescription.ComponentDescription"
    if isinstance(value, (Reference, ApplyReference)) or value is TBD:
        return "org.smartfrog.sfcore.reference.Reference"
    return type(value).__name__
