"""Package groups: named package sets in YAML files (the slides' "a glite-UI image").

A file maps group names to ``{description, packages, include}``. The groups shipped with sfpy
(``sfpy/images/groups/*.yaml``) come first, then every ``*.yaml`` of each directory given
(the configuration's ``groupDirectories``, ``--groups-dir``), in order; a later definition of
a name replaces an earlier one. ``base`` is in every image (what a guest needs to boot).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sfpy.images.errors import ParameterError
from sfpy.images.params import package_name

SHIPPED = os.path.join(os.path.dirname(__file__), "groups")
#: The group every image has.
BASE = "base"


@dataclass(frozen=True)
class Group:
    name: str
    description: str
    packages: tuple[str, ...]
    include: tuple[str, ...]
    origin: str


def _files(directories: Iterable[str]) -> list[str]:
    found: list[str] = []
    for directory in directories:
        if not os.path.isdir(directory):
            continue
        found += sorted(os.path.join(directory, n) for n in os.listdir(directory)
                        if n.endswith((".yaml", ".yml")))
    return found


def _strings(value: object, what: str, origin: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParameterError(f"{origin}: {what} must be a list of names")
    return tuple(value)


def load(directories: Sequence[str] = ()) -> dict[str, Group]:
    """Every group defined by the shipped files, then the files of ``directories``."""
    import yaml  # only when groups are needed

    groups: dict[str, Group] = {}
    for path in _files([SHIPPED, *directories]):
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ParameterError(f"package groups {path}: {error}") from None
        if not isinstance(data, dict):
            raise ParameterError(f"{path}: a groups file maps group names to definitions")
        for name, body in data.items():
            origin = f"{path}: group {name!r}"
            if not isinstance(name, str) or not isinstance(body, dict):
                raise ParameterError(f"{origin} must be a name with a mapping")
            unknown = set(body) - {"description", "packages", "include"}
            if unknown:
                raise ParameterError(f"{origin}: unknown keys {sorted(unknown)} (description, "
                                     "packages, include)")
            packages = _strings(body.get("packages"), "packages", origin)
            for package in packages:
                package_name(package)
            groups[name] = Group(name, str(body.get("description", "")), packages,
                                 _strings(body.get("include"), "include", origin), path)
    return groups


def resolve(names: Iterable[str], groups: dict[str, Group]) -> tuple[list[str], list[str]]:
    """(group names with their includes and ``base``, sorted packages). Unknown names and
    include cycles are errors."""
    seen: list[str] = []
    packages: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ParameterError(f"package groups include each other: {' -> '.join(path)} "
                                 f"-> {name}")
        group = groups.get(name)
        if group is None:
            known = ", ".join(sorted(groups))
            raise ParameterError(f"no package group {name!r} (known: {known})")
        if name not in seen:
            seen.append(name)
        packages.update(group.packages)
        for included in group.include:
            visit(included, (*path, name))

    for name in [BASE, *names]:
        visit(name, ())
    return sorted(seen), sorted(packages)


__all__ = ["BASE", "Group", "load", "resolve"]
