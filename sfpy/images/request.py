"""From what a user asked for (``sfimage build`` options, an ImageBuilder's attributes) to
:class:`~sfpy.images.params.ImageParams`: configuration defaults, groups resolved, files
hashed, keys and the password hash read from their files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sfpy.images import groups as group_files
from sfpy.images.config import Config
from sfpy.images.errors import ParameterError
from sfpy.images.params import ImageParams, PlacedFile, size_bytes, ssh_key


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as error:
        raise ParameterError(f"{what} {path}: {error.strerror}") from None


def make_params(config: Config, *, groups: Sequence[str] = (), packages: Sequence[str] = (),
                files: Sequence[str] = (), ssh_key_files: Sequence[str] = (),
                password_hash: str | None = None, password_hash_file: str | None = None,
                hostname: str | None = None, format: str = "tar.gz",
                size: str | int | None = None, builder: str | None = None,
                suite: str | None = None, variant: str | None = None,
                architecture: str | None = None, components: str | Sequence[str] | None = None,
                mirror: str | None = None, kernel_package: str | None = None,
                no_kernel: bool = False, group_directories: Sequence[str] = ()) -> ImageParams:
    """The checked parameters of an image (see the module docstring)."""
    changes: dict[str, Any] = {}
    for attr, value in (("suite", suite), ("variant", variant), ("architecture", architecture),
                        ("mirror", mirror), ("kernel_package", kernel_package)):
        if value is not None:
            changes[attr] = str(value)
    if architecture and kernel_package is None:
        changes["kernel_package"] = f"linux-image-cloud-{architecture}"
    if components:
        if isinstance(components, str):
            components = components.split(",")
        changes["components"] = tuple(str(c) for c in components if c)
    if no_kernel:
        changes["kernel_package"] = ""
    distribution = replace(config.distribution, **changes)
    known = group_files.load([*config.group_directories, *group_directories])
    group_names, group_packages = group_files.resolve(list(groups), known)
    wanted = sorted({p.strip() for item in packages for p in str(item).split(",") if p.strip()})
    keys: list[str] = []
    for path in ssh_key_files:
        keys += [ssh_key(line) for line in _read(path, "ssh key").splitlines()
                 if line.strip() and not line.startswith("#")]
    if password_hash_file:
        password_hash = _read(password_hash_file, "root password hash file").strip()
    return ImageParams(
        distribution=distribution, builder=builder or config.builder,
        groups=tuple(group_names), group_packages=tuple(group_packages),
        packages=tuple(wanted), files=tuple(PlacedFile.parse(f) for f in files),
        ssh_keys=tuple(keys), root_password_hash=password_hash or None,
        hostname=hostname or config.hostname, format=format,
        size=size_bytes(size) if size else None).check()


__all__ = ["make_params"]
