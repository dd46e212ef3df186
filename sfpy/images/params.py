"""The canonical parameters of an image and its key.

An image is named by what was asked for, not by its bytes (vGrid and OSFarm did the same;
ext4 images are not byte-identical from one ``mke2fs`` to the next): the key is the sha256 of
the canonical JSON form of the parameters (sorted keys, sorted package and key lists, files by
the sha256 of their content) plus the builder's name and version. Same key: the image in the
store is the answer, at once.

Secrets stay out of the key's text: the root password hash enters it as its own sha256, and
the canonical form (which is written to the image's ``meta.json``) never holds the hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from sfpy.images.errors import ParameterError

#: What ``--format`` accepts: mmdebstrap's own tarballs, or an ext4 filesystem (raw or qcow2).
FORMATS = ("tar.gz", "tar", "img", "qcow2")
#: mmdebstrap's variants (debootstrap knows minbase, buildd and the default).
VARIANTS = ("extract", "custom", "essential", "apt", "required", "minbase", "buildd",
            "important", "debootstrap", "-", "standard")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"([0-9]+)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?")
_WORD = re.compile(r"[a-z0-9][a-z0-9.+_-]*")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MIRROR = re.compile(r"(https?|file)://[^\s]+")
_HASH = re.compile(r"\$(1|5|6|y|gy|7|2[abxy])\$[./A-Za-z0-9$=,]{8,}")
_SSH_KEY = re.compile(r"(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-\S+@openssh\.com) "
                      r"[A-Za-z0-9+/=]+( .*)?")


def size_bytes(text: str | int) -> int:
    """Bytes of ``"2G"``, ``"512M"``, ``"4096"`` (powers of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool):
        number = text
    else:
        match = _SIZE.fullmatch(str(text).strip())
        if match is None:
            raise ParameterError(f"{text!r} is not a size (write it like 2G or 512M)")
        number = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if number <= 0:
        raise ParameterError(f"{text!r} is not a size above zero")
    return number


def package_name(name: str) -> str:
    """An apt package name (``pkg``, ``pkg:arch``, ``pkg=version``): nothing else reaches apt."""
    if not isinstance(name, str) or not _PACKAGE.fullmatch(name):
        raise ParameterError(f"{name!r} is not a Debian package name")
    return name


def hostname(name: str) -> str:
    if not isinstance(name, str) or len(name) > 253 or not all(
            _LABEL.fullmatch(part) for part in name.split(".")):
        raise ParameterError(f"{name!r} is not a host name")
    return name


def password_hash(text: str) -> str:
    """A crypt(3) hash (``$y$…``, ``$6$…``): a clear password is refused, so it cannot end up in
    a command line, a log or the store by mistake."""
    text = text.strip()
    if not _HASH.fullmatch(text):
        raise ParameterError("the root password must be given as a crypt hash (like the output "
                             "of `mkpasswd -m yescrypt` or `openssl passwd -6`), never in clear")
    return text


def ssh_key(line: str) -> str:
    line = " ".join(line.split())
    if not _SSH_KEY.fullmatch(line):
        raise ParameterError(f"not an OpenSSH public key: {line[:40]!r}")
    return line


@dataclass(frozen=True)
class Distribution:
    """Where packages come from (``distribution`` in the YAML configuration)."""

    name: str = "debian"
    suite: str = "bookworm"
    variant: str = "minbase"
    architecture: str = "amd64"
    components: tuple[str, ...] = ("main",)
    mirror: str = "http://deb.debian.org/debian"
    #: The kernel installed in the image and placed beside it ("" for none).
    kernel_package: str = "linux-image-cloud-amd64"

    def check(self) -> Distribution:
        if not _WORD.fullmatch(self.name):
            raise ParameterError(f"distribution name {self.name!r} is not a name")
        if not _WORD.fullmatch(self.suite):
            raise ParameterError(f"suite {self.suite!r} is not a suite name")
        if self.variant not in VARIANTS:
            raise ParameterError(f"variant {self.variant!r} is not one of {', '.join(VARIANTS)}")
        if not _WORD.fullmatch(self.architecture):
            raise ParameterError(f"architecture {self.architecture!r} is not a name")
        if not self.components or not all(_WORD.fullmatch(c) for c in self.components):
            raise ParameterError(f"components {list(self.components)} must be names")
        if not _MIRROR.fullmatch(self.mirror):
            raise ParameterError(f"mirror {self.mirror!r} is not an http, https or file URL")
        if self.kernel_package:
            package_name(self.kernel_package)
        return self


@dataclass(frozen=True)
class PlacedFile:
    """``--file SRC:DEST[:MODE]``: a host file copied into the image. The key holds its
    content's sha256, destination and mode, not where it came from."""

    source: str
    dest: str
    mode: int
    sha256: str

    @classmethod
    def parse(cls, text: str) -> PlacedFile:
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise ParameterError(f"--file {text!r}: write it SRC:DEST[:MODE]")
        source, dest = parts[0], parts[1]
        mode = 0o644
        if len(parts) == 3:
            try:
                mode = int(parts[2], 8)
            except ValueError:
                raise ParameterError(f"--file {text!r}: MODE {parts[2]!r} is not octal") from None
            if not 0 <= mode <= 0o7777:
                raise ParameterError(f"--file {text!r}: MODE {parts[2]!r} is out of range")
        if not dest.startswith("/") or "\0" in dest or any(
                p in ("..", ".") for p in dest.split("/")) or dest.endswith("/"):
            raise ParameterError(f"--file {text!r}: DEST must be an absolute file path "
                                 "without . or ..")
        if not os.path.isfile(source):
            raise ParameterError(f"--file {text!r}: {source} is not a file")
        digest = hashlib.sha256()
        with open(source, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return cls(os.path.abspath(source), os.path.normpath(dest), mode, digest.hexdigest())


@dataclass(frozen=True)
class ImageParams:
    """Everything that decides what an image contains."""

    distribution: Distribution = field(default_factory=Distribution)
    builder: str = "mmdebstrap"
    groups: tuple[str, ...] = ()
    group_packages: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    files: tuple[PlacedFile, ...] = ()
    ssh_keys: tuple[str, ...] = ()
    root_password_hash: str | None = field(default=None, repr=False)
    hostname: str = "sfpy-guest"
    format: str = "tar.gz"
    size: int | None = None

    def check(self) -> ImageParams:
        self.distribution.check()
        for name in (*self.packages, *self.group_packages):
            package_name(name)
        hostname(self.hostname)
        if self.format not in FORMATS:
            raise ParameterError(f"format {self.format!r} is not one of {', '.join(FORMATS)}")
        if self.size is not None and self.format not in ("img", "qcow2"):
            raise ParameterError("--size is for the img and qcow2 formats (a tarball has no "
                                 "size of its own)")
        dests = [f.dest for f in self.files]
        if len(set(dests)) != len(dests):
            raise ParameterError("two --file options place files at the same destination")
        for key in self.ssh_keys:
            ssh_key(key)
        if self.root_password_hash is not None:
            password_hash(self.root_password_hash)
        return self

    def all_packages(self) -> list[str]:
        """What the builder installs besides its variant: groups, packages and the kernel."""
        wanted = set(self.group_packages) | set(self.packages)
        if self.distribution.kernel_package:
            wanted.add(self.distribution.kernel_package)
        return sorted(wanted)

    def canonical(self, builder_version: str) -> dict[str, Any]:
        """The canonical form (what the key hashes; safe to show: no password hash)."""
        d = self.distribution
        password = (hashlib.sha256(self.root_password_hash.encode()).hexdigest()
                    if self.root_password_hash else None)
        return {
            "builder": {"name": self.builder, "version": builder_version},
            "distribution": {"name": d.name, "suite": d.suite, "variant": d.variant,
                             "architecture": d.architecture,
                             "components": list(d.components), "mirror": d.mirror.rstrip("/"),
                             "kernel": d.kernel_package},
            "groups": sorted(set(self.groups)),
            "packages": self.all_packages(),
            "files": [{"dest": f.dest, "mode": f"{f.mode:04o}", "sha256": f.sha256}
                      for f in sorted(self.files, key=lambda f: f.dest)],
            "sshKeys": sorted(set(self.ssh_keys)),
            "rootPasswordHash": password,
            "hostname": self.hostname,
            "format": self.format,
            "size": self.size,
        }

    def key(self, builder_version: str) -> str:
        text = json.dumps(self.canonical(builder_version), sort_keys=True,
                          separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


__all__ = ["FORMATS", "VARIANTS", "Distribution", "ImageParams", "PlacedFile", "hostname",
           "package_name", "password_hash", "size_bytes", "ssh_key"]
