"""Reading and checking the values SmartDomains descriptions give (sizes, booleans written as
strings, Integer or Long numbers, host names, IPv4 addresses and netmasks, paths, names).

Every checker returns an error text (None: the value is fine), so a component's
``check_values`` can report *all* problems of a description at once, before anything is
made (see :func:`sfpy.engine.deployer.check_description`).

The slides' users wrote sizes as ``"1G"``, ``"512M"`` and ``"10g"`` (powers of 1024, either
case), booleans as ``false`` or ``"false"``, and delays as ``2000`` or ``240L``: all are read.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from sfpy.language.model import Reference

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_SIZE = re.compile(r"([0-9]+)\s*([KMGTPB]?)(?:I?B)?", re.IGNORECASE)
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
#: Volume, domain and file names: what lvcreate, xl and a file name all accept.
_MAC = re.compile(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}")


class ValueProblem(ValueError):
    """A value that cannot be used (the text says which and why)."""


def size_bytes(value: Any) -> int:
    """Bytes of a size written ``"1G"``, ``"512M"``, ``"10g"``, ``"4096"`` or as a number."""
    if isinstance(value, bool):
        raise ValueProblem(f"{value!r} is not a size")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueProblem(f"{value!r} is not a size (write it like \"1G\", \"512M\" or \"10g\")")
        number = int(match.group(1)) * _UNITS[match.group(2).upper()]
    else:
        raise ValueProblem(f"{value!r} is not a size")
    if number <= 0:
        raise ValueProblem(f"{value!r} is not a size above zero")
    return number


def boolean(value: Any) -> bool:
    """``true``/``false``, also written as strings (``"false"``, ``"True"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueProblem(f"{value!r} is not true or false")


def whole_number(value: Any, minimum: int = 0) -> int:
    """An Integer or Long (``240L`` reads as an int already), or its decimal text."""
    if isinstance(value, bool):
        raise ValueProblem(f"{value!r} is not a whole number")
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+[lL]?", value.strip()):
        value = int(value.strip().rstrip("lL"))
    if not isinstance(value, int):
        raise ValueProblem(f"{value!r} is not a whole number")
    if value < minimum:
        raise ValueProblem(f"{value!r} is less than {minimum}")
    return value


def hostname(value: Any) -> str:
    """A DNS host name (labels of letters, digits and inner hyphens, 253 characters at most)."""
    if not isinstance(value, str) or not value or len(value) > 253:
        raise ValueProblem(f"{value!r} is not a host name")
    for label in value.rstrip(".").split("."):
        if not _LABEL.fullmatch(label):
            raise ValueProblem(f"{value!r} is not a host name ({label!r} is not a valid label)")
    return value


def ipv4(value: Any) -> str:
    """A dotted-quad IPv4 address; the message says which part is wrong."""
    if not isinstance(value, str):
        raise ValueProblem(f"{value!r} is not an IPv4 address")
    parts = value.split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 for p in parts):
        raise ValueProblem(f"{value!r} is not an IPv4 address (four numbers 0-255 separated by dots)")
    for part in parts:
        if int(part) > 255:
            raise ValueProblem(f"{value!r} is not an IPv4 address ({part} is more than 255)")
    return str(ipaddress.IPv4Address(value))


def netmask(value: Any) -> str:
    """A dotted-quad netmask (ones then zeros)."""
    text = ipv4(value)
    bits = int(ipaddress.IPv4Address(text))
    inverted = ~bits & 0xFFFFFFFF
    if inverted & (inverted + 1):
        raise ValueProblem(f"{value!r} is not a netmask (its ones are not contiguous)")
    return text


def absolute_path(value: Any) -> str:
    """An absolute path with no NUL, newline or ``..`` part."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueProblem(f"{value!r} is not an absolute path")
    if "\0" in value or "\n" in value or ".." in value.split("/"):
        raise ValueProblem(f"{value!r} is not a plain absolute path")
    return value


def name(value: Any) -> str:
    """A volume, domain or file name: letters, digits, ``_.+-``, starting with a letter or
    digit, 63 characters at most (LVM, xl and file names all accept it)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueProblem(f"{value!r} is not a name (letters, digits and _.+- up to 63 "
                           "characters, starting with a letter or digit)")
    return value


def positive(value: Any) -> int:
    """A whole number of at least 1 (memory, vCPUs, delays, factors)."""
    return whole_number(value, 1)


def mac(value: Any) -> str:
    """A MAC address written as six colon-separated hex pairs."""
    if not isinstance(value, str) or not _MAC.fullmatch(value):
        raise ValueProblem(f"{value!r} is not a MAC address (like 00:16:3e:12:34:56)")
    return value


def program(value: Any) -> str:
    """A program name or path, as a command's first argument (no spaces: never a command
    line)."""
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ValueProblem(f"{value!r} is not a program name or path")
    return value


Checker = Callable[[Any], Any]


def check_values(attributes: Mapping[str, Any], checks: Mapping[str, Checker],
                 required: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(attribute, problem) for every value in ``attributes`` its checker refuses, and for every
    ``required`` attribute that is absent. References (LAZY, not yet resolvable) are skipped:
    they are read when the component deploys."""
    problems = []
    for key in required:
        if attributes.get(key) is None:
            problems.append((key, f"{key} is required"))
    for key, checker in checks.items():
        value = attributes.get(key)
        if value is None or isinstance(value, Reference):
            continue
        try:
            checker(value)
        except ValueProblem as error:
            problems.append((key, f"{key} {error}"))
    return problems


__all__ = [
    "ValueProblem",
    "absolute_path",
    "boolean",
    "check_values",
    "hostname",
    "ipv4",
    "mac",
    "name",
    "netmask",
    "positive",
    "program",
    "size_bytes",
    "whole_number",
]
