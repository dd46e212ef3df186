"""``sfpy-ca``: a site's certificate authority for the daemons and their users.

    sfpy-ca init [--dir DIR] [--name NAME] [--org ORG]
    sfpy-ca issue daemon HOSTNAME [--ip ADDRESS]... [--dns NAME]... [--dir DIR]
    sfpy-ca issue user NAME [--dir DIR]

``init`` makes ``DIR/ca.pem`` (give it to every daemon and client) and ``DIR/ca.key`` (keep
it on the administrator's machine). ``issue`` writes ``NAME.pem`` and ``NAME.key`` in
``--out`` (default: DIR). A daemon's certificate names its host (subject alternative names:
HOSTNAME, the ``--dns`` names and the ``--ip`` addresses), and may serve and connect to peer
daemons; a user's certificate can only connect. Keys are written with mode 0600 and never
overwrite a file; no private key or pass phrase is ever taken from the command line.

Exit 0; 1 a file exists already or the CA cannot be read; 2 usage.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sfpy.cli.common import EXIT_OK, ArgumentParser, run_command
from sfpy.errors import SfpyError

KEY_TYPES = ("ec", "rsa", "ed25519")


class CAError(SfpyError):
    exit_code = 1


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="sfpy-ca", description="Make a site CA and issue the "
                            "certificates of sfpy daemons and users (TLS with client "
                            "certificates).")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: Any, days: int) -> None:
        p.add_argument("--dir", default=".", metavar="DIR",
                       help="the CA's folder: ca.pem and ca.key (default: here)")
        p.add_argument("--key-type", choices=KEY_TYPES, default="ec",
                       help="ec (P-256, default), rsa or ed25519")
        p.add_argument("--rsa-bits", type=int, default=3072, metavar="BITS",
                       help="RSA key size (default %(default)s)")
        p.add_argument("--days", type=float, default=days, metavar="DAYS",
                       help="lifetime in days (default %(default)s)")
        p.add_argument("--start", metavar="YYYY-MM-DD",
                       help="start of validity (default: now, less 5 minutes of clock skew)")
        p.add_argument("--org", metavar="ORG", help="O= of the subject (default: the CA's)")

    init = sub.add_parser("init", help="make a site CA (ca.pem, ca.key)")
    common(init, 3650)
    init.add_argument("--name", default="sfpy site CA", metavar="NAME", help="the CA's CN")

    issue = sub.add_parser("issue", help="issue a daemon or user certificate")
    kinds = issue.add_subparsers(dest="kind", required=True, metavar="KIND")
    daemon = kinds.add_parser("daemon", help="a daemon's certificate, naming its host")
    daemon.add_argument("hostname", metavar="HOSTNAME",
                        help="the host's name (its CN and a DNS name; an address is an IP name)")
    daemon.add_argument("--ip", action="append", default=[], metavar="ADDRESS",
                        help="an address the daemon is reached at (repeatable)")
    daemon.add_argument("--dns", action="append", default=[], metavar="NAME",
                        help="another DNS name of the host (repeatable)")
    common(daemon, 825)
    daemon.add_argument("--out", metavar="DIR", help="where to write NAME.pem/.key (default DIR)")
    user = kinds.add_parser("user", help="a user's (client) certificate")
    user.add_argument("name", metavar="NAME", help="the user's name (the CN roles refer to)")
    common(user, 365)
    user.add_argument("--out", metavar="DIR", help="where to write NAME.pem/.key (default DIR)")
    return parser


def _new_key(args: Any) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if args.key_type == "rsa":
        if args.rsa_bits < 2048:
            raise CAError("RSA keys are at least 2048 bits")
        return rsa.generate_private_key(public_exponent=65537, key_size=args.rsa_bits)
    if args.key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def _hash_for(key: Any) -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _validity(args: Any) -> tuple[dt.datetime, dt.datetime]:
    if args.days <= 0:
        raise CAError("--days must be positive")
    if args.start:
        try:
            start = dt.datetime.strptime(args.start, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError:
            raise CAError(f"--start {args.start}: expected YYYY-MM-DD") from None
    else:
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return start, start + dt.timedelta(days=args.days)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a new file with ``mode`` from its creation on (a key is never readable by others,
    not even for a moment); an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except FileExistsError:
        raise CAError(f"{path} exists already: move it away first") from None
    except OSError as error:
        raise CAError(f"cannot write {path}: {error.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # whatever the umask did


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, ou: str | None, org: str | None) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attributes = []
    if org:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if ou:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attributes)


def _key_usage(key: Any, *, ca: bool) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    return x509.KeyUsage(
        digital_signature=True, content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey) and not ca,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )


def init(args: Any) -> int:
    from cryptography import x509

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ca.pem", "ca.key"):
        if (folder / name).exists():
            raise CAError(f"{folder / name} exists already: this folder holds a CA")
    key = _new_key(args)
    start, end = _validity(args)
    subject = _name(args.name, None, args.org)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _hash_for(key))
    )
    _write_new(folder / "ca.key", _key_pem(key), 0o600)
    _write_new(folder / "ca.pem", _cert_pem(cert), 0o644)
    print(f"site CA {subject.rfc4514_string()} until {end:%Y-%m-%d}: {folder / 'ca.pem'} "
          f"(give it to every daemon and client), {folder / 'ca.key'} (mode 0600, keep it here)")
    return EXIT_OK


def _load_ca(folder: Path) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
    except FileNotFoundError as error:
        raise CAError(f"{error.filename}: no CA here (sfpy-ca init --dir {folder})") from None
    except (OSError, ValueError, TypeError) as error:
        raise CAError(f"cannot read the CA in {folder}: {error}") from None
    return cert, key


def issue(args: Any) -> int:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(args.dir)
    ca_cert, ca_key = _load_ca(folder)
    out = Path(args.out or folder)
    out.mkdir(parents=True, exist_ok=True)
    daemon = args.kind == "daemon"
    cn = args.hostname if daemon else args.name
    if not cn or "/" in cn or cn.startswith("."):
        raise CAError(f"{cn!r}: not a usable name")
    org = args.org
    if org is None:
        orgs = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        org = str(orgs[0].value) if orgs else None
    start, end = _validity(args)
    if end > ca_cert.not_valid_after_utc:
        end = ca_cert.not_valid_after_utc  # a certificate never outlives its CA
    key = _new_key(args)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, "daemons" if daemon else "users", org))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key, ca=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    if daemon:
        names: list[x509.GeneralName] = []
        for text in [args.hostname, *args.dns, *args.ip]:
            try:
                general: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(text))
            except ValueError:
                if text in args.ip:
                    raise CAError(f"--ip {text}: not an IP address") from None
                general = x509.DNSName(text)
            if general not in names:
                names.append(general)
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        # a daemon serves clients and is itself the client of its peer daemons
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    else:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    cert = builder.sign(ca_key, _hash_for(ca_key))
    key_path, cert_path = out / f"{cn}.key", out / f"{cn}.pem"
    if cert_path.exists():
        raise CAError(f"{cert_path} exists already: move it away first")
    _write_new(key_path, _key_pem(key), 0o600)
    _write_new(cert_path, _cert_pem(cert), 0o644)
    what = "daemon" if daemon else "user"
    print(f"{what} certificate {cert.subject.rfc4514_string()} until {end:%Y-%m-%d}: "
          f"{cert_path}, {key_path} (mode 0600)")
    return EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    return init(args) if args.command == "init" else issue(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
