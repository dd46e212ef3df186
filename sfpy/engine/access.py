"""Who may call what on a daemon: roles given to certificate subjects.

Three roles, as the daemon configuration's ``roles`` setting gives them::

    roles:
      deploy: [alice, "xen*"]        # deploy and terminate (and read)
      read:   [monitor]              # list, tree, ping, diagnostics, logs, follow operations
      manage: [admin]                # manage, stop the daemon (and read)

An entry is a certificate's common name, or, with ``=`` in it, a pattern of its whole subject
(``CN=*,OU=daemons,O=example site``); ``*`` and ``?`` are wildcards. The daemons of a site
that place subtrees on each other need ``deploy`` on each other.

:data:`METHOD_ROLES` is the one table that says which role each remote method needs; a method
missing from it (one added later and forgotten here) needs the strictest role, ``manage``.
:meth:`Access.check` is the one check every remote method passes through
(:mod:`sfpy.engine.remote` calls it before the method runs).

Without a ``roles`` setting every certificate the site CA signed has every role (the CA is
then the whole policy; the daemon says so when it starts). Without TLS (``--insecure``,
loopback only) there is no subject to check: every local caller may do everything.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sfpy.engine.tls import Identity, matches

log = logging.getLogger("sfpy.daemon")

READ = "read"
DEPLOY = "deploy"
MANAGE = "manage"
ROLES = (READ, DEPLOY, MANAGE)
#: What a role includes besides itself.
IMPLIES: dict[str, frozenset[str]] = {
    READ: frozenset({READ}),
    DEPLOY: frozenset({DEPLOY, READ}),
    MANAGE: frozenset({MANAGE, READ}),
}
#: The role each remote method needs. Anything not listed needs :data:`STRICTEST`.
METHOD_ROLES: dict[str, str] = {
    "hello": READ,
    "operation": READ,
    "list": READ,
    "tree": READ,
    "ping": READ,
    "diagnostics": READ,
    "logs": READ,
    "deploy": DEPLOY,
    "terminate": DEPLOY,
    # What a peer daemon asks when it places a subtree here (its certificate needs deploy).
    "subtree_deploy": DEPLOY,
    "subtree_start": DEPLOY,
    "subtree_terminate": DEPLOY,
    "subtree_ping": READ,
    "subtree_resolve": READ,
    "manage": MANAGE,
    "stop": MANAGE,
}
STRICTEST = MANAGE
#: What a refusal says each role allows.
ALLOWS = {READ: "list, ping, diagnostics and logs", DEPLOY: "deploy and terminate",
          MANAGE: "manage and stop the daemon"}


class AccessError(Exception):
    """A caller lacks the role a method needs (the transport turns it into error
    ``forbidden``, exit 1). ``message`` names what was refused and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def required_role(method: str) -> str:
    return METHOD_ROLES.get(method, STRICTEST)


class Access:
    """The roles of a daemon: ``roles`` maps a role to the subject patterns that have it;
    None means every certificate of the site CA has every role."""

    def __init__(self, roles: Mapping[str, Iterable[str]] | None = None) -> None:
        self.configured = roles is not None
        self.roles: dict[str, tuple[str, ...]] = {role: () for role in ROLES}
        for role, patterns in (roles or {}).items():
            if role not in ROLES:
                raise ValueError(f"roles: unknown role {role!r} (roles: {', '.join(ROLES)})")
            if isinstance(patterns, str) or not all(isinstance(p, str) for p in patterns):
                raise ValueError(f"roles: {role} must be a list of certificate subjects")
            self.roles[role] = tuple(patterns)

    def roles_of(self, peer: Identity | None) -> frozenset[str]:
        """Every role ``peer`` has (all of them without TLS or without a ``roles`` setting)."""
        if peer is None or not self.configured:
            return frozenset(ROLES)
        held: set[str] = set()
        for role, patterns in self.roles.items():
            if any(matches(pattern, peer) for pattern in patterns):
                held |= IMPLIES[role]
        return frozenset(held)

    def check(self, method: str, peer: Identity | None, host: str) -> None:
        """Let the call through, or raise :class:`AccessError` (logged with the subject)."""
        role = required_role(method)
        held = self.roles_of(peer)
        if role in held:
            if role != READ and peer is not None:
                log.info("%s by %s", method, peer.subject, extra={"app": "-"})
            return
        assert peer is not None
        has = ", ".join(sorted(held)) or "no role"
        message = (f"{peer.common_name or peer.subject} may not {method} on {host}: {method} "
                   f"needs the role {role} ({ALLOWS[role]}); {peer.subject} has {has}")
        log.warning("refused %s to %s: needs role %s, has %s", method, peer.subject, role, has,
                    extra={"app": "-"})
        raise AccessError(message)

    def describe(self) -> dict[str, Any]:
        """For ``diagnostics``: the configured roles (None: every site certificate has all)."""
        return {role: list(p) for role, p in self.roles.items()} if self.configured else {}


__all__ = ["ALLOWS", "DEPLOY", "MANAGE", "METHOD_ROLES", "READ", "STRICTEST", "Access",
           "AccessError", "required_role"]
