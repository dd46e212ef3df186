"""Assertions and schemas (SmartFrog's ``predicates.sf``): checks a description must pass.

* ``x extends Assertions { portOK (port > 0); }`` — every attribute whose name does not start
  with ``sf`` must evaluate to ``true``; the report lists those that do not
  ("assertions have failed for: [portOK: evaluates to false]").
* ``s extends Schema { port extends Integer; host extends OptionalString; }`` — each entry
  names an attribute of the description holding the schema: ``optional`` (may it be
  missing?), ``binding`` (``"eager"``: must be a plain value, ``"lazy"``: must be a LAZY
  reference, ``"anyBinding"``), ``class`` (a Java class name as SmartFrog writes it —
  ``"java.lang.Integer"`` — or a vector of them, or ``"anyClass"``) and ``description``.
* ``sfAssertionPhase``: ``"static"`` (checked while processing the description, then dropped;
  a LAZY value is an error), ``"staticLazy"`` (dropped when it needs a LAZY value),
  ``"dynamic"`` (the default: checked now when it can be, and kept as a ``LAZY ASSERT`` for the
  running component to check again).

The phase actions here turn such descriptions into :class:`AssertReference` values during the
function phase; the checks run as the functions ``CheckAssertions`` and ``CheckSchemaElement``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sfpy.language.functions import FUNCTION_CLASS, FUNCTION_PHASE, Call, register_function
from sfpy.language.model import (
    NULL,
    PARENT,
    ApplyReference,
    AssertReference,
    ByteArray,
    ComponentDescription,
    Double,
    Long,
    Reference,
    RefPart,
    type_name,
)
from sfpy.language.references import (
    MISSING,
    LazyReferenceError,
    ResolutionError,
    path_text,
)

__all__ = [
    "AssertionError_",
    "CHECK_ASSERTIONS",
    "CHECK_SCHEMA_ELEMENT",
    "class_matches",
    "construct_assertions",
    "construct_schema",
    "register_class",
]

CHECK_ASSERTIONS = "org.smartfrog.sfcore.languages.sf.functions.CheckAssertions"
CHECK_SCHEMA_ELEMENT = "org.smartfrog.sfcore.languages.sf.functions.CheckSchemaElement"
ASSERTION_PHASE = "sfAssertionPhase"
SCHEMA_DESCRIPTION = "sfSchemaDescription"


class AssertionError_(ResolutionError):  # noqa: N801 - keeps clear of the builtin's name
    """An assertion or schema check failed (SmartFrogAssertionResolutionException)."""


# ---------------------------------------------------------------------------------------------
# Java class names as schemas use them
# ---------------------------------------------------------------------------------------------

_SF_REFERENCE = "org.smartfrog.sfcore.languages.sf.sfreference.SFReference"
_SF_APPLY = "org.smartfrog.sfcore.languages.sf.sfreference.SFApplyReference"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, (bool, Long))


_CLASSES: dict[str, Callable[[Any], bool]] = {
    "java.lang.Object": lambda v: True,
    "java.io.Serializable": lambda v: True,
    "java.lang.Integer": _is_int,
    "java.lang.Long": lambda v: isinstance(v, Long),
    "java.lang.Float": lambda v: isinstance(v, float) and not isinstance(v, Double),
    "java.lang.Double": lambda v: isinstance(v, Double),
    "java.lang.Number": _is_number,
    "java.lang.Boolean": lambda v: isinstance(v, bool),
    "java.lang.String": lambda v: isinstance(v, str),
    "java.lang.CharSequence": lambda v: isinstance(v, str),
    "java.util.Vector": lambda v: isinstance(v, list),
    "java.util.List": lambda v: isinstance(v, list),
    "java.util.AbstractList": lambda v: isinstance(v, list),
    "java.util.Collection": lambda v: isinstance(v, list),
    "java.lang.Iterable": lambda v: isinstance(v, list),
    "java.net.InetAddress": lambda v: False,
    "org.smartfrog.sfcore.componentdescription.ComponentDescription": lambda v: isinstance(
        v, ComponentDescription
    ),
    "org.smartfrog.sfcore.componentdescription.ComponentDescriptionImpl": lambda v: isinstance(
        v, ComponentDescription
    ),
    "org.smartfrog.sfcore.languages.sf.sfcomponentdescription.SFComponentDescription": lambda v: (
        isinstance(v, ComponentDescription)
    ),
    "org.smartfrog.sfcore.languages.sf.sfcomponentdescription.SFComponentDescriptionImpl": lambda v: (
        isinstance(v, ComponentDescription)
    ),
    "org.smartfrog.sfcore.common.SFNull": lambda v: v is NULL,
    "org.smartfrog.sfcore.languages.sf.sfcomponentdescription.SFNull": lambda v: v is NULL,
    "org.smartfrog.sfcore.common.SFByteArray": lambda v: isinstance(v, ByteArray),
    "org.smartfrog.sfcore.reference.Reference": lambda v: isinstance(
        v, (Reference, ApplyReference)
    ),
    _SF_REFERENCE: lambda v: isinstance(v, (Reference, ApplyReference)),
    _SF_APPLY: lambda v: isinstance(v, ApplyReference) and not isinstance(v, AssertReference),
    "org.smartfrog.sfcore.reference.ApplyReference": lambda v: isinstance(v, ApplyReference),
}


def register_class(name: str, test: Callable[[Any], bool]) -> None:
    """Teach schemas a class name (the engine adds its component handle classes)."""
    _CLASSES[name] = test


def class_matches(class_name: str, value: Any) -> bool:
    """Whether ``value`` is an instance of the Java class ``class_name`` (``anyClass``: yes)."""
    if class_name == "anyClass":
        return True
    test = _CLASSES.get(class_name)
    if test is None:
        raise KeyError(class_name)
    return test(value)


def _found_class(value: Any) -> str:
    """The Java class SmartFrog would report for a value found by a schema check."""
    if value is NULL:
        return "org.smartfrog.sfcore.common.SFNull"
    if isinstance(value, ComponentDescription):
        return "org.smartfrog.sfcore.languages.sf.sfcomponentdescription.SFComponentDescriptionImpl"
    if isinstance(value, ApplyReference):
        return _SF_APPLY
    if isinstance(value, (Reference, _LazyMarker)):
        return _SF_REFERENCE
    return type_name(value)


class _LazyMarker:
    """Stands for a LAZY value in a schema check (SmartFrog mocks up a lazy reference)."""

    __slots__ = ()


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def check_assertions(call: Call) -> bool:
    """CheckAssertions: every parameter not starting with ``sf`` must be ``true``."""
    failed = []
    for name, value in call.params.items():
        if str(name).startswith("sf"):
            continue
        if isinstance(value, bool):
            if not value:
                failed.append(f"{name}: evaluates to false")
        else:
            failed.append(f"{name}: has non-boolean class {_found_class(value)}")
    if failed:
        raise AssertionError_(
            "assertions have failed for: [" + ", ".join(failed) + "]", position=call.position
        )
    return True


def _name_and_description(name: Any, description: str) -> str:
    return f"'{name}'" if not description else f"'{name} ({description})'"


def check_schema_element(call: Call) -> bool:
    """CheckSchemaElement: the attribute ``name`` of the checked description fits the entry."""
    params = call.params
    name = params.get("name")
    if not isinstance(name, str):
        raise AssertionError_(
            f"error in schema: entry has no attribute name ({name!r})", position=call.position
        )
    error = "error in schema: "
    description = params.get("description", "")
    description = description if isinstance(description, str) else str(description)
    binding = params.get("binding", "anyBinding")
    if binding not in ("anyBinding", "eager", "lazy"):
        raise AssertionError_(
            f"{error}binding not valid value for attribute '{name}'", position=call.position
        )
    schema_class = params.get("class", "anyClass")
    optional = params.get("optional", False)
    if not isinstance(optional, bool):
        raise AssertionError_(
            f"{error}'optional' must be a Boolean for attribute '{name}'", position=call.position
        )
    shown = _name_and_description(name, description)

    # The schema's parent (the ASSERT's holder) is the description being checked. Only a
    # name that is not there counts as absent: a value that is there but cannot be resolved
    # (a misspelled reference inside it) is an error, reported where it is written.
    value: Any
    checked = getattr(call.holder, "parent", None)
    if isinstance(checked, ComponentDescription) and name not in checked.attributes:
        value = None  # the common case for optional entries: no lookup needed
    else:
        value = _checked_value(call, name)
    # Point at the user's line (the checked attribute, or the component lacking it), not at
    # the schema entry, which is often in sfpy's library.
    where = call.position
    if isinstance(checked, ComponentDescription):
        where = checked.positions.get(name) or checked.position or where
    if value is None:
        if optional:
            return True
        raise AssertionError_(
            f"{error}non-optional attribute {shown} is missing", position=where
        )

    try:
        if isinstance(value, (Reference, _LazyMarker)) or (
            isinstance(value, ApplyReference) and not isinstance(value, AssertReference)
        ):
            ok = (
                binding in ("lazy", "anyBinding")
                or schema_class == "anyClass"
                or (binding == "eager" and _valid_class(schema_class, value, name))
            )
            if not ok:
                raise AssertionError_(
                    f"{error}(lazy) reference value for non-reference eager attribute {shown}",
                    position=where,
                )
        elif binding == "lazy":
            raise AssertionError_(
                f"{error}non-reference value found for lazy attribute {shown}",
                position=where,
            )
        elif not _valid_class(schema_class, value, name):
            raise AssertionError_(
                f"{error}wrong class found for attribute {shown}, expected: "
                f"{_class_text(schema_class)}, found: {_found_class(value)}",
                position=where,
            )
    except KeyError as missing:
        raise AssertionError_(
            f"error checking attribute {shown}: class not found: {missing.args[0]}",
            position=where,
        ) from None
    return True


def _checked_value(call: Call, name: str) -> Any:
    """The value of attribute ``name`` of the checked description (the schema's parent):
    None when it has no such attribute, a marker when it is LAZY; any other failure to
    resolve it is raised, marked to be reported where the value is written."""
    resolver = call.resolver
    context = resolver.context
    try:
        checked = resolver.resolve(Reference((RefPart(PARENT),)), call.holder)
    except LazyReferenceError:
        return _LazyMarker()
    if not context.is_node(checked):
        return None
    found = context.lookup(checked, name, False)
    if found is MISSING:
        return None
    try:
        return resolver.chain(found, checked, name)
    except LazyReferenceError:
        return _LazyMarker()
    except ResolutionError as error:
        error.in_checked_value = True
        raise


def _class_text(schema_class: Any) -> str:
    if isinstance(schema_class, list):
        return "[" + ", ".join(str(c) for c in schema_class) + "]"
    return str(schema_class)


def _valid_class(schema_class: Any, value: Any, name: Any) -> bool:
    if isinstance(schema_class, str):
        return class_matches(schema_class, value)
    if isinstance(schema_class, list):
        return any(class_matches(str(c), value) for c in schema_class)
    raise AssertionError_(
        " wrong type in Class schema attribute. Only String or Vector [String,..] are allowed "
        f"for attribute {name}"
    )


# ---------------------------------------------------------------------------------------------
# Phase actions (function phase)
# ---------------------------------------------------------------------------------------------


def construct_assertions(
    cd: ComponentDescription, parent: ComponentDescription | None, key: Any
) -> None:
    """ConstructAssertions: ``x extends Assertions {…}`` becomes ``ASSERT {…}`` in its parent."""
    if parent is None:
        return
    comp = ComponentDescription(position=cd.position)
    comp.attributes[FUNCTION_CLASS] = CHECK_ASSERTIONS
    for name, value in cd.attributes.items():
        if name == FUNCTION_PHASE or name in comp.attributes:
            continue
        comp.attributes[name] = value
        if isinstance(value, ComponentDescription):
            value.parent = comp
        if name in cd.positions:
            comp.positions[name] = cd.positions[name]
    parent.attributes[key] = AssertReference(comp, position=cd.position)


def construct_schema(
    cd: ComponentDescription, parent: ComponentDescription | None, key: Any
) -> None:
    """ConstructSchema: each entry (an APPLY of CheckSchemaElement) gets its ``name``; the
    whole becomes ``ASSERT {entries…; sfFunctionClass CheckAssertions; sfAssertionPhase …}``."""
    if parent is None:
        return
    comp = ComponentDescription(position=cd.position)
    for name, value in cd.attributes.items():
        if name in (FUNCTION_PHASE, ASSERTION_PHASE, SCHEMA_DESCRIPTION):
            continue
        if not isinstance(value, ApplyReference) or isinstance(value, AssertReference):
            raise AssertionError_(
                f"Element {name} of schema {path_text(cd)} must be a ComponentDescription "
                f"(a schema entry such as 'extends Integer'), found: {type_name(value)}",
                position=cd.positions.get(name) or cd.position,
                phase="function",
            )
        value.description.attributes["name"] = name
        comp.attributes[name] = value
        if name in cd.positions:
            comp.positions[name] = cd.positions[name]
    comp.attributes[FUNCTION_CLASS] = CHECK_ASSERTIONS
    comp.attributes[ASSERTION_PHASE] = cd.attributes.get(ASSERTION_PHASE, "dynamic")
    parent.attributes[key] = AssertReference(comp, position=cd.position)


register_function("CheckAssertions", check_assertions)
register_function("CheckSchemaElement", check_schema_element)
