"""LAZY function applications and dynamic assertions, evaluated against the live tree.

``size LAZY (PARENT:base + 10)`` stays an :class:`~sfpy.language.model.ApplyReference` after
language processing; reading ``size`` at run time evaluates it here: each parameter is read
as the function description's attribute (references in it resolved from there, so ``PARENT``
is the component holding the attribute), then the language's function library computes the
value. The library is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sfpy.engine.errors import ResolutionError
from sfpy.language.errors import DescriptionError
from sfpy.language.model import ApplyReference, AssertReference

if TYPE_CHECKING:
    from sfpy.engine.resolve import Resolver

_SKIP = frozenset({"sfFunctionClass", "sfAssertionPhase", "phase.function", "sfFunctionLazy"})


def evaluate_apply(resolver: Resolver, application: ApplyReference, holder: Any) -> Any:
    """The value of ``application`` (held by ``holder``) now."""
    from sfpy.language.functions import call_function

    comp = application.description
    resolver.outer[id(comp)] = holder
    params: dict[Any, Any] = {}
    for name, value in comp.attributes.items():
        if name in _SKIP:
            continue
        params[name] = resolver.value(value, comp)
    try:
        result = call_function(comp, params, holder, resolver, application.position)
    except DescriptionError as error:
        raise ResolutionError(error.message) from None
    if isinstance(application, AssertReference):
        if result is not True:
            what = "false" if result is False else "non boolean result"
            raise ResolutionError(f"Assertion failure ({what})")
        return True
    return result
