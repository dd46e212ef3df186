"""The SmartFrog description language: text in, resolved description out.

Public surface (everything else is internal)::

    from sfpy.language import load, parse_file, resolve, DescriptionError

    sf_config = load("site.sf", include_dirs=["lib"])   # parse + all phases -> sfConfig
    root = parse_file("site.sf")                         # raw description (the file's ROOT)
    sf_config = resolve(root)                            # phases: type place function sfConfig link

The pipeline and its data:

* :mod:`.parser` (grammar in ``sf.lark``) builds the raw ROOT :class:`ComponentDescription`.
  Includes are spliced in place. Operators, ``[a, b]`` vectors, ``IF``/``SWITCH`` become
  anonymous descriptions carrying ``phase.function`` and ``sfFunctionClass`` (SmartFrog's Java
  class names are kept: they are the language's names for its functions); ``APPLY {…}`` and
  ``ASSERT {…}`` become :class:`ApplyReference`/:class:`AssertReference`; ``extends`` records
  its prototypes in ``ComponentDescription.prototypes``.
* :mod:`.resolve` runs the phases; :mod:`.functions` and :mod:`.predicates` evaluate.
* :mod:`.unparse` prints SmartFrog's layout and the JSON form (also the wire form).

This package never imports :mod:`sfpy.engine`.
"""

from __future__ import annotations

from sfpy.language.errors import DescriptionError
from sfpy.language.model import (
    NULL,
    TBD,
    ApplyReference,
    AssertReference,
    ByteArray,
    ComponentDescription,
    Double,
    Long,
    Reference,
    RefPart,
    SourcePosition,
)

__all__ = [
    "NULL",
    "TBD",
    "ApplyReference",
    "AssertReference",
    "ByteArray",
    "ComponentDescription",
    "DescriptionError",
    "Double",
    "Long",
    "RefPart",
    "Reference",
    "SourcePosition",
    "load",
    "parse_file",
    "parse_text",
    "resolve",
]


def parse_file(path: str, include_dirs: list[str] | tuple[str, ...] = ()) -> ComponentDescription:
    """Parse a file (and its includes) into the raw ROOT description."""
    from sfpy.language.parser import parse_file as _parse_file

    return _parse_file(path, include_dirs)


def parse_text(
    text: str, filename: str = "<string>", include_dirs: list[str] | tuple[str, ...] = ()
) -> ComponentDescription:
    """Parse description text; includes are looked up relative to ``filename``'s folder."""
    from sfpy.language.parser import parse_text as _parse_text

    return _parse_text(text, filename, include_dirs)


def resolve(root: ComponentDescription) -> ComponentDescription:
    """Run the resolution phases on a raw ROOT and return the resolved ``sfConfig``."""
    from sfpy.language.resolve import resolve as _resolve

    return _resolve(root)


def load(path: str, include_dirs: list[str] | tuple[str, ...] = ()) -> ComponentDescription:
    """Parse and resolve a description file: the resolved ``sfConfig``."""
    return resolve(parse_file(path, include_dirs))
