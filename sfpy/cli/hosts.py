"""Host names: the host-name map of a daemon's or a client's configuration, then DNS.

One map format serves both sides, so a site's names mean the same to ``sfstart`` on a
laptop and to a daemon placing a subtree with ``sfProcessHost``::

    hosts:
      xen01: "127.0.0.2"          # address, port 3800
      xen02: "127.0.0.3:3801"     # address and port
      v6: "[::1]:3800"

The daemon reads it from its configuration (``hosts:`` in ``sfdaemon.yaml``); the client
commands from the first of ``$SFPY_CLIENT_CONFIG``, ``$XDG_CONFIG_HOME/sfpy/client.yaml``
(``~/.config/sfpy/client.yaml``) and ``/etc/sfpy/client.yaml`` that exists. A name that is
not in the map is used as it is (an address, or a name DNS resolves when connecting).

:func:`resolve_host` is the one function both sides call: ``resolve_host("xen01:3900",
host_map)`` → ``("127.0.0.2", 3900)`` (a port given with the name wins over the map's).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sfpy.errors import SfpyError

DEFAULT_PORT = 3800
#: Keys a client configuration file may hold.
CLIENT_KEYS = {"hosts", "cert", "key", "ca", "insecure"}  # TLS ones: sfpy.cli.clientconfig


class HostMapError(SfpyError):
    """A host-name map or a client configuration is wrong (a usage error: exit 2)."""

    exit_code = 2


def split_host(text: str) -> tuple[str, int | None]:
    """``name``, ``name:port``, ``1.2.3.4:port``, ``[::1]:port`` or ``::1`` → (host, port or
    None when none was given)."""
    text = text.strip()
    if not text:
        raise HostMapError("an empty host")
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise HostMapError(f"{text}: expected [ADDRESS]:PORT")
    elif text.count(":") == 1:
        address, _, port_text = text.partition(":")
    else:
        address, port_text = text, ""
    if not address:
        raise HostMapError(f"{text}: no host before the port")
    if not port_text:
        return address, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise HostMapError(f"{text}: the port must be a number 1-65535")
    return address, int(port_text)


def check_map(data: Any, where: str = "hosts") -> dict[str, str]:
    """A host-name map as read from YAML, checked: names to ``address[:port]`` strings."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise HostMapError(f"{where}: expected a mapping of host names to \"address[:port]\"")
    result: dict[str, str] = {}
    for name, value in data.items():
        if not isinstance(name, str) or not name or ":" in name:
            raise HostMapError(f"{where}: {name!r} is not a host name")
        if not isinstance(value, str):
            raise HostMapError(f"{where}: {name}: expected \"address[:port]\", not {value!r}")
        try:
            split_host(value)
        except HostMapError as error:
            raise HostMapError(f"{where}: {name}: {error}") from None
        result[name] = value.strip()
    return result


def resolve_host(text: str, host_map: Mapping[str, str] | None = None) -> tuple[str, int]:
    """Where HOST ``text`` is: ``(address, port)``. A name in ``host_map`` becomes its
    address (and port, unless ``text`` gives one); anything else is kept for DNS; no port
    anywhere means 3800."""
    name, port = split_host(text)
    mapped = (host_map or {}).get(name)
    if mapped is not None:
        address, mapped_port = split_host(mapped)
        return address, port or mapped_port or DEFAULT_PORT
    return name, port or DEFAULT_PORT


def client_config_path() -> Path | None:
    """The client configuration file in use (the first that exists), or None."""
    explicit = os.environ.get("SFPY_CLIENT_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise HostMapError(f"SFPY_CLIENT_CONFIG names {explicit}, which is not a file")
        return path
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(
        os.path.expanduser("~"), ".config")
    for candidate in (Path(config_home) / "sfpy" / "client.yaml",
                      Path("/etc/sfpy/client.yaml")):
        if candidate.is_file():
            return candidate
    return None


def load_client_map(path: Path | None = None) -> dict[str, str]:
    """The host-name map of the client configuration (empty when there is none)."""
    path = path or client_config_path()
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise HostMapError(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise HostMapError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise HostMapError(f"{path}: expected a mapping of settings")
    unknown = set(data) - CLIENT_KEYS
    if unknown:
        raise HostMapError(f"{path}: unknown settings {', '.join(sorted(map(str, unknown)))} "
                           f"(known: {', '.join(sorted(CLIENT_KEYS))})")
    return check_map(data.get("hosts"), f"{path}: hosts")


__all__ = [
    "DEFAULT_PORT",
    "HostMapError",
    "check_map",
    "client_config_path",
    "load_client_map",
    "resolve_host",
    "split_host",
]
