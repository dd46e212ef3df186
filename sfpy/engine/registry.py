"""sfClass → Python class. A description can instantiate registered classes and nothing else.

Where names come from (first match wins):

1. :func:`register` calls (tests, embedding programs);
2. the entry-point group ``sfpy.components`` — ``name = module:Class`` lines in a package's
   metadata. sfpy declares its own in ``setup.cfg`` ``[options.entry_points]``; when sfpy
   runs from a source tree, that ``setup.cfg`` is read directly so a new line works without
   reinstalling; installed third-party packages are found through their metadata;
3. :data:`BUILTIN`, the engine's own classes, so a bare source checkout works.

SmartFrog's original class names are just more names for the same target
(``org.smartfrog.sfcore.compound.CompoundImpl = sfpy.engine.compound:Compound``), so
existing descriptions deploy unchanged. To provide a component::

    # setup.cfg, [options.entry_points]
    sfpy.components =
        org.smartfrog.sfcore.workflow.combinators.Sequence = sfpy.engine.workflow:Sequence

Names of SmartFrog and SmartDomains classes that sfpy does not provide (yet) get a message
saying so (:data:`EXPECTED_PREFIXES`) rather than a bare "unknown".
"""

from __future__ import annotations

import configparser
import importlib
import threading
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfpy.errors import SfpyError
from sfpy.language.errors import did_you_mean

if TYPE_CHECKING:
    from sfpy.engine.prim import Prim

GROUP = "sfpy.components"

BUILTIN: dict[str, str] = {
    "sfpy.engine.Prim": "sfpy.engine.prim:Prim",
    "sfpy.engine.Compound": "sfpy.engine.compound:Compound",
    "org.smartfrog.sfcore.prim.PrimImpl": "sfpy.engine.prim:Prim",
    "org.smartfrog.sfcore.compound.CompoundImpl": "sfpy.engine.compound:Compound",
}

#: Families of class names found in SmartFrog and SmartDomains descriptions, by who provides
#: them, for a clear message when one is not installed (most specific first).
EXPECTED_PREFIXES: dict[str, str] = {
    "org.smartfrog.sfcore.workflow.": "a SmartFrog workflow component",
    "org.smartfrog.services.shellscript.": "a SmartFrog shell-script component",
    "org.smartfrog.services.assertions.": "a SmartFrog test component",
    "org.smartfrog.": "a SmartFrog component",
    "ch.cern.openlab.smartdomains.": "a SmartDomains component",
}


class UnknownComponentClass(SfpyError):  # noqa: N818 - reads better in messages
    """``sfClass`` names nothing registered (or its module cannot be loaded)."""

    exit_code = 3


_registered: dict[str, type[Prim] | str] = {}
_loaded: dict[str, type[Prim]] = {}
_discovered: dict[str, str] | None = None
_lock = threading.Lock()


def register(
    name: str, target: type[Prim] | str, *, aliases: tuple[str, ...] | list[str] = ()
) -> None:
    """Make ``name`` (and each alias) deployable as ``target``: a Prim subclass, or
    ``"module:Class"`` imported on first use."""
    with _lock:
        for each in (name, *aliases):
            _registered[each] = target
            _loaded.pop(each, None)


def unregister(name: str) -> None:
    with _lock:
        _registered.pop(name, None)
        _loaded.pop(name, None)


def known_names() -> list[str]:
    """Every deployable name, sorted."""
    return sorted({*_registered, *_discover(), *BUILTIN})


def lookup(name: str) -> type[Prim]:
    """The class for ``name``; :class:`UnknownComponentClass` when there is none."""
    cached = _loaded.get(name)
    if cached is not None:
        return cached
    target = _registered.get(name)
    if target is None:
        target = _discover().get(name) or BUILTIN.get(name)
    if target is None:
        raise UnknownComponentClass(_unknown_message(name))
    cls = _load(name, target)
    with _lock:
        _loaded[name] = cls
    return cls


def _load(name: str, target: type[Prim] | str) -> type[Prim]:
    from sfpy.engine.prim import Prim

    if isinstance(target, str):
        module_name, _, attribute = target.partition(":")
        try:
            value: Any = importlib.import_module(module_name)
            for part in attribute.split(".") if attribute else ():
                value = getattr(value, part)
        except Exception as error:  # noqa: BLE001 - a broken plugin is reported, not raised
            raise UnknownComponentClass(
                f"sfClass '{name}' is registered as {target}, which cannot be loaded: "
                f"{type(error).__name__}: {error}"
            ) from None
    else:
        value = target
    if not (isinstance(value, type) and issubclass(value, Prim)):
        raise UnknownComponentClass(
            f"sfClass '{name}' is registered as {target!r}, which is not a component class "
            "(a subclass of sfpy.engine.Prim)"
        )
    return value


def _unknown_message(name: str) -> str:
    known = known_names()
    # Compare the last dotted parts: long shared package names make any two names look alike
    # ("…combinators.FireBreak" is not a typo of "…combinators.Repeat").
    short: dict[str, str] = {}
    for candidate in known:
        short.setdefault(candidate.rsplit(".", 1)[-1], candidate)
    close = did_you_mean(name.rsplit(".", 1)[-1], short)
    hint = f" (did you mean '{short[close.split(chr(39))[1]]}'?)" if close else ""
    for prefix, family in EXPECTED_PREFIXES.items():
        if name.startswith(prefix):
            return f"sfClass '{name}' is {family} that this sfpy installation does not provide{hint}"
    if not hint:
        hint = did_you_mean(name, known)
    return f"unknown sfClass '{name}'{hint}"


def _discover() -> dict[str, str]:
    """Entry points of group ``sfpy.components``: installed metadata, then sfpy's own
    setup.cfg when running from a source tree (fresher than an editable install's metadata)."""
    global _discovered
    if _discovered is not None:
        return _discovered
    found: dict[str, str] = {}
    try:
        for entry in metadata.entry_points(group=GROUP):
            found.setdefault(entry.name, entry.value)
    except Exception:  # noqa: BLE001 - broken metadata must not stop the engine
        pass
    found.update(_source_tree_entry_points())
    _discovered = found
    return found


def _source_tree_entry_points() -> dict[str, str]:
    setup_cfg = Path(__file__).resolve().parent.parent.parent / "setup.cfg"
    if not setup_cfg.is_file():
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the case of names
    try:
        parser.read(setup_cfg, encoding="utf-8")
        if parser.get("metadata", "name", fallback="") != "sfpy":
            return {}
        text = parser.get("options.entry_points", GROUP, fallback="")
    except configparser.Error:
        return {}
    entries = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and value.strip():
            entries[name.strip()] = value.strip()
    return entries


def refresh() -> None:
    """Forget discovered entry points and loaded classes (after installing a plugin)."""
    global _discovered
    with _lock:
        _discovered = None
        _loaded.clear()
