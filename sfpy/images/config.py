"""The ``sfimage`` configuration: a YAML file with defaults for everything.

Read from ``--config FILE``, else ``$SFPY_IMAGES_CONFIG``, else ``/etc/sfpy/images.yaml`` when it
exists (no file: the defaults below). Command-line options override it. Example (an Ubuntu
configuration, documented but not tested here: only the Debian mirror is reachable)::

    store: /var/lib/sfpy/images
    builder: mmdebstrap
    distribution:
      name: ubuntu
      suite: noble
      variant: minbase
      architecture: amd64
      components: [main, universe]
      mirror: http://archive.ubuntu.com/ubuntu
      kernelPackage: linux-image-virtual
    groupDirectories: [/etc/sfpy/image-groups]
    aptCache: /var/cache/sfpy/apt
    quota: 50G
    unusedFor: 30d
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any

from sfpy.images.errors import ParameterError
from sfpy.images.params import Distribution, size_bytes

DEFAULT_FILE = "/etc/sfpy/images.yaml"
DEFAULT_STORE = "/var/lib/sfpy/images"
DEFAULT_GROUP_DIRECTORY = "/etc/sfpy/image-groups"
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DISTRIBUTION_KEYS = {"name": "name", "suite": "suite", "variant": "variant",
                      "architecture": "architecture", "components": "components",
                      "mirror": "mirror", "kernelPackage": "kernel_package"}


def duration_seconds(text: str | int | float) -> float:
    """Seconds of ``"30d"``, ``"12h"``, ``"90m"``, ``"45s"`` or a number of seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.fullmatch(str(text).strip())
    if match is None:
        raise ParameterError(f"{text!r} is not a duration (write it like 30d, 12h or 90m)")
    return float(match.group(1)) * _SECONDS[match.group(2)]


@dataclass(frozen=True)
class Config:
    store: str = DEFAULT_STORE
    builder: str = "mmdebstrap"
    distribution: Distribution = field(default_factory=Distribution)
    group_directories: tuple[str, ...] = (DEFAULT_GROUP_DIRECTORY,)
    apt_cache: str | None = None
    quota: int | None = None
    unused_for: float | None = None
    hostname: str = "sfpy-guest"
    source: str | None = None


def load(path: str | None = None) -> Config:
    """The configuration from ``path`` (or the default file when it exists)."""
    explicit = path or os.environ.get("SFPY_IMAGES_CONFIG")
    path = explicit or DEFAULT_FILE
    if not os.path.exists(path):
        if explicit:
            raise ParameterError(f"configuration {path} does not exist")
        return Config()
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ParameterError(f"configuration {path}: {error}") from None
    if not isinstance(data, dict):
        raise ParameterError(f"configuration {path} must be a mapping")
    return from_mapping(data, path)


def from_mapping(data: dict[str, Any], source: str = "configuration") -> Config:
    known = {"store", "builder", "distribution", "groupDirectories", "aptCache", "quota",
             "unusedFor", "hostname"}
    unknown = set(data) - known
    if unknown:
        raise ParameterError(f"{source}: unknown keys {sorted(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
    config = Config(source=source)
    dist = data.get("distribution") or {}
    if not isinstance(dist, dict):
        raise ParameterError(f"{source}: distribution must be a mapping")
    bad = set(dist) - set(_DISTRIBUTION_KEYS)
    if bad:
        raise ParameterError(f"{source}: unknown distribution keys {sorted(bad)}")
    fields: dict[str, Any] = {}
    for key, attr in _DISTRIBUTION_KEYS.items():
        if key in dist:
            value = dist[key]
            if key == "components":
                if isinstance(value, str):
                    value = value.split(",")
                value = tuple(str(v) for v in value)
            elif value is None:
                value = ""
            else:
                value = str(value)
            fields[attr] = value
    if "architecture" in fields and "kernel_package" not in fields:
        fields["kernel_package"] = f"linux-image-cloud-{fields['architecture']}"
    distribution = replace(Distribution(), **fields).check()
    groups = data.get("groupDirectories", list(config.group_directories))
    if isinstance(groups, str):
        groups = [groups]
    return replace(
        config,
        store=str(data.get("store", config.store)),
        builder=str(data.get("builder", config.builder)),
        distribution=distribution,
        group_directories=tuple(str(g) for g in groups),
        apt_cache=str(data["aptCache"]) if data.get("aptCache") else None,
        quota=size_bytes(data["quota"]) if data.get("quota") else None,
        unused_for=duration_seconds(data["unusedFor"]) if data.get("unusedFor") else None,
        hostname=str(data.get("hostname", config.hostname)),
    )


__all__ = ["DEFAULT_FILE", "DEFAULT_STORE", "Config", "duration_seconds", "from_mapping", "load"]
