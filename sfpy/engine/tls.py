"""TLS for the daemons and their clients: the SSL contexts and what a peer's certificate says.

Every connection between an sfpy client and a daemon, and between two daemons, is TLS with a
certificate on *both* sides, each checked against the site CA (``sfpy-ca`` makes the CA and
the certificates). This module builds the :class:`ssl.SSLContext` of each side and reads
identities out of certificates; :mod:`sfpy.engine.remote` (the only module that imports
Pyro5) hands the contexts to Pyro5. Nothing here imports Pyro5.

Why the server context defers its handshake
    Pyro5 accepts connections in one thread and hands each to a worker thread. A listening
    ``SSLSocket`` does the TLS handshake inside ``accept()``, so a single client that opens a
    TCP connection and sends nothing would block every other client. The server context
    wraps sockets with ``do_handshake_on_connect=False``; the handshake then runs in the
    connection's own worker thread, bounded by :data:`HANDSHAKE_TIMEOUT`.

Only the site CA is trusted (never the system's CAs): a certificate a public CA issued for
some other purpose must not be able to deploy on a site's servers.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import ssl
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfpy.errors import SfpyError

#: Seconds a new connection may take to complete its TLS handshake.
HANDSHAKE_TIMEOUT = 10.0


class TLSError(SfpyError):
    """The TLS files are missing, unreadable, too open, or do not fit together."""

    exit_code = 2


@dataclass(frozen=True)
class TLSFiles:
    """The certificate and key that say who this side is, and the site CA it trusts.

    A client may have no certificate (``cert`` None): it can then reach nothing, since every
    daemon asks for one, but the daemon's refusal is the clearer message."""

    ca: str
    cert: str | None = None
    key: str | None = None

    def check(self) -> None:
        """Refuse files that are missing, and a private key others may read (as ssh does)."""
        for what, path in (("CA certificate", self.ca), ("certificate", self.cert),
                           ("private key", self.key)):
            if path is not None and not os.path.isfile(path):
                raise TLSError(f"{what} {path}: no such file")
        if (self.cert is None) != (self.key is None):
            given = self.cert or self.key
            raise TLSError(f"{given}: a certificate and its private key go together: give both")
        if self.key is not None:
            mode = os.stat(self.key).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise TLSError(f"private key {self.key} is readable by others "
                               f"(mode {stat.S_IMODE(mode):04o}): chmod 600 it")


class _DeferredHandshakeContext(ssl.SSLContext):
    """A server context whose sockets do their handshake on first use, not in ``accept()``."""

    def wrap_socket(self, sock: Any, server_side: bool = False,  # type: ignore[override]
                    do_handshake_on_connect: bool = True, **kwargs: Any) -> ssl.SSLSocket:
        return super().wrap_socket(sock, server_side=server_side,
                                   do_handshake_on_connect=False, **kwargs)


def server_context(files: TLSFiles) -> ssl.SSLContext:
    """A daemon's listening context: its own certificate; a client certificate signed by the
    site CA required."""
    if files.cert is None or files.key is None:
        raise TLSError("a daemon needs its certificate and key (sfpy-ca issue daemon HOST)")
    files.check()
    context = _DeferredHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    _load(context, files)
    return context


def client_context(files: TLSFiles) -> ssl.SSLContext:
    """A client's (or a daemon's, towards a peer) context: the daemon's certificate must be
    signed by the site CA and name the address or host name connected to."""
    files.check()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname, CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(context, files)
    return context


def _load(context: ssl.SSLContext, files: TLSFiles) -> None:
    try:
        context.load_verify_locations(cafile=files.ca)
    except (ssl.SSLError, OSError) as error:
        raise TLSError(f"CA certificate {files.ca}: {_reason(error)}") from None
    if files.cert is not None:
        try:
            context.load_cert_chain(files.cert, files.key)
        except (ssl.SSLError, OSError) as error:
            raise TLSError(f"certificate {files.cert} with key {files.key}: "
                           f"{_reason(error)}") from None


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason).lower().replace("_", " ")
    return getattr(error, "strerror", None) or str(error)


# -- identities -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """Who a peer is, as its (CA-verified) certificate says: ``subject`` in RFC 4514 order
    (``CN=alice,OU=users,O=example site``) and its common name."""

    subject: str
    common_name: str
    dns: tuple[str, ...] = field(default=())
    ips: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return self.subject


def identity(peer_cert: dict[str, Any] | None) -> Identity | None:
    """The identity in ``SSLSocket.getpeercert()``'s dict (None without a certificate)."""
    if not peer_cert:
        return None
    parts: list[str] = []
    common_name = ""
    for rdn in peer_cert.get("subject", ()):
        for key, value in rdn:
            short = _SHORT.get(key, key)
            parts.append(f"{short}={value}")
            if key == "commonName" and not common_name:
                common_name = value
    dns = tuple(v for k, v in peer_cert.get("subjectAltName", ()) if k == "DNS")
    ips = tuple(v.strip() for k, v in peer_cert.get("subjectAltName", ()) if k == "IP Address")
    # RFC 4514 writes the most specific name (the CN) first
    return Identity(",".join(reversed(parts)), common_name, dns, ips)


_SHORT = {"commonName": "CN", "organizationalUnitName": "OU", "organizationName": "O",
          "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}


def names_host(peer: Identity, host: str) -> bool:
    """Whether the certificate names ``host``: a DNS name (case-insensitive, one leading
    ``*.`` label allowed) or an IP address among its subject alternative names."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return any(_same_ip(address, ip) for ip in peer.ips)
    wanted = host.lower().rstrip(".")
    for name in peer.dns:
        name = name.lower().rstrip(".")
        if name == wanted:
            return True
        if name.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == name[2:]:
            return True
    return False


def _same_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str) -> bool:
    try:
        return ipaddress.ip_address(text) == address
    except ValueError:
        return False


def matches(pattern: str, peer: Identity) -> bool:
    """Whether a role entry names ``peer``: a pattern with ``=`` is matched against the whole
    subject (``CN=alice,OU=users,*``), any other against the common name (``alice``,
    ``xen*``); ``*`` and ``?`` are wildcards."""
    if "=" in pattern:
        return fnmatch.fnmatchcase(peer.subject, pattern)
    return fnmatch.fnmatchcase(peer.common_name, pattern)


def describe_failure(error: BaseException | str) -> str:
    """A TLS failure seen by a client, in words: who refused what."""
    text = str(error)
    low = text.lower()
    if "certificate verify failed" in low:
        detail = text.split("certificate verify failed:", 1)[-1].strip(" ()")
        detail = detail.split("(_ssl.c")[0].strip()
        return f"the daemon's certificate was refused: {detail or 'not signed by the site CA'}"
    alerts = {
        "certificate required": "the daemon asks for a client certificate and none was given "
                                "(--cert and --key, SFPY_CERT/SFPY_KEY, or client.yaml)",
        "unknown ca": "the daemon refused this certificate: it is not signed by the site CA",
        "certificate expired": "the daemon refused this certificate: it has expired",
        "bad certificate": "the daemon refused this certificate",
        "certificate unknown": "the daemon refused this certificate",
        "unsupported certificate": "the daemon refused this certificate: it is not for clients",
    }
    for key, words in alerts.items():
        if key in low:
            return words
    if "wrong version number" in low or "record layer failure" in low:
        return "the daemon does not speak TLS (it runs with --insecure: so must the client)"
    return text


def read_pem_names(path: str | os.PathLike[str]) -> Identity:
    """The identity a certificate file holds (for messages and ``sfdiagnostics``). The
    ``ssl`` module's own decoder first: importing ``cryptography`` costs a daemon 10 MiB."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is not None:
        try:
            found = identity(decode(os.fspath(path)))
        except (ssl.SSLError, OSError, ValueError):
            found = None
        if found is not None:
            return found
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as error:
        raise TLSError(f"certificate {path}: {_reason(error)}") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    return Identity(cert.subject.rfc4514_string(), str(names[0].value) if names else "", dns, ips)


__all__ = [
    "HANDSHAKE_TIMEOUT",
    "Identity",
    "TLSError",
    "TLSFiles",
    "client_context",
    "describe_failure",
    "identity",
    "matches",
    "names_host",
    "read_pem_names",
    "server_context",
]
