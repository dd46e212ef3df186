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

import os
from collections.abc import Sequence

# The submodule ``resolve`` is imported first and kept as ``_phases`` so that the package
# attribute ``resolve`` stays the function below (a later import of the submodule does not
# rebind it).
from sfpy.language import resolve as _phases
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
from sfpy.language.parser import parse_file, parse_text

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


def resolve(
    root: ComponentDescription, phases: Sequence[str] | None = None
) -> ComponentDescription:
    """Run the resolution phases on a raw ROOT and return the resolved result.

    ``phases`` overrides the description's ``phaseList`` (and the default phases).
    """
    return _phases.resolve(root, phases=None if phases is None else list(phases))


def load(
    path: str | os.PathLike[str], include_dirs: Sequence[str | os.PathLike[str]] = ()
) -> ComponentDescription:
    """Parse and resolve a description file: the resolved ``sfConfig``."""
    return _phases.resolve(parse_file(path, include_dirs))
