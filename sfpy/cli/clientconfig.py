"""Where a client command finds its certificate, key and CA (and whether it is ``--insecure``).

Each setting is looked up in this order, a later place overriding an earlier one:

1. ``/etc/sfpy/client.yaml`` (the site's default, e.g. the CA),
2. ``$XDG_CONFIG_HOME/sfpy/client.yaml`` (``~/.config/sfpy/client.yaml``: the user's own),
3. the environment: ``SFPY_CERT``, ``SFPY_KEY``, ``SFPY_CA``, ``SFPY_INSECURE=1``,
4. the command's flags: ``--cert``, ``--key``, ``--ca``, ``--insecure``.

A client.yaml holds ``cert``, ``key``, ``ca`` (file names; relative ones are relative to the
file's folder) and ``insecure`` (true/false); other settings in it are left to whoever reads
them. :class:`ClientSecurity` remembers where each value came from: ``sfdiagnostics`` shows it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfpy.errors import SfpyError

SYSTEM_CONFIG = Path("/etc/sfpy/client.yaml")
ENVIRONMENT = {"cert": "SFPY_CERT", "key": "SFPY_KEY", "ca": "SFPY_CA"}
TRUE = {"1", "true", "yes", "on"}


class ClientConfigError(SfpyError):
    exit_code = 2


@dataclass
class ClientSecurity:
    """The client's TLS files (or ``insecure``), and where each came from."""

    insecure: bool = False
    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """What ``sfdiagnostics`` prints about the client side."""
        if self.insecure:
            return [f"client: plain TCP, no TLS (insecure from {self.sources.get('insecure')})"]
        out = []
        for key in ("cert", "key", "ca"):
            value = getattr(self, key)
            out.append(f"client {key}: {value or '-'}"
                       + (f" (from {self.sources[key]})" if key in self.sources else ""))
        return out


def user_config() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sfpy" / "client.yaml"


def _read(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ClientConfigError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ClientConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ClientConfigError(f"{path}: expected a mapping of settings")
    return data


def resolve(args: argparse.Namespace | None = None,
            environ: Mapping[str, str] | None = None,
            files: tuple[Path, ...] | None = None) -> ClientSecurity:
    """The client's security from the configuration files, the environment and ``args``."""
    env = os.environ if environ is None else environ
    found = ClientSecurity()
    for path in files if files is not None else (SYSTEM_CONFIG, user_config()):
        data = _read(path)
        for key in ("cert", "key", "ca"):
            value = data.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ClientConfigError(f"{path}: {key} must be a file name")
            setattr(found, key, str(path.parent / Path(value).expanduser()))
            found.sources[key] = str(path)
        if "insecure" in data:
            if not isinstance(data["insecure"], bool):
                raise ClientConfigError(f"{path}: insecure must be true or false")
            found.insecure = data["insecure"]
            found.sources["insecure"] = str(path)
    for key, variable in ENVIRONMENT.items():
        if env.get(variable):
            setattr(found, key, env[variable])
            found.sources[key] = f"${variable}"
    if env.get("SFPY_INSECURE"):
        found.insecure = env["SFPY_INSECURE"].strip().lower() in TRUE
        found.sources["insecure"] = "$SFPY_INSECURE"
    for key in ("cert", "key", "ca"):
        value = getattr(args, key, None) if args is not None else None
        if value:
            setattr(found, key, value)
            found.sources[key] = f"--{key}"
    if args is not None and getattr(args, "insecure", False):
        found.insecure = True
        found.sources["insecure"] = "--insecure"
    return found


def add_options(parser: argparse.ArgumentParser) -> None:
    """``--cert``, ``--key``, ``--ca`` and ``--insecure``, on every client command."""
    group = parser.add_argument_group("TLS (else SFPY_CERT/SFPY_KEY/SFPY_CA, else client.yaml)")
    group.add_argument("--cert", metavar="FILE", help="your certificate (sfpy-ca issue user NAME)")
    group.add_argument("--key", metavar="FILE", help="its private key (mode 0600)")
    group.add_argument("--ca", metavar="FILE", help="the site CA's certificate (ca.pem)")
    group.add_argument("--insecure", action="store_true",
                       help="plain TCP without TLS, to a loopback daemon run with --insecure "
                       "(SFPY_INSECURE=1 does the same)")


__all__ = ["ClientConfigError", "ClientSecurity", "add_options", "resolve", "user_config"]
