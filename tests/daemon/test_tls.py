"""TLS between clients and daemons, certificates from ``sfpy-ca``, and roles: real daemons on
127.0.0.2 and 127.0.0.3 with certificates made in a temporary folder."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import REPO, Daemon, command, environment, wait_for

from sfpy.cli import clientconfig
from sfpy.engine import access, tls

pytestmark = pytest.mark.integration

A, B = "127.0.0.2", "127.0.0.3"
ROLES = "roles:\n  deploy: [alice, 'xen*']\n  read: [reader]\n  manage: [admin]\n"
APP = ('#include "org/smartfrog/components.sf"\n'
       "sfConfig extends Compound { a extends Compound; }\n")


def tls_env() -> dict[str, str]:
    """The test environment without the --insecure the other daemon tests use."""
    return {k: v for k, v in environment().items() if k != "SFPY_INSECURE"}


def ca(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command("sfpyca", *args), capture_output=True, text=True, timeout=120,
                          env=tls_env(), cwd=cwd)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site CA with daemons xen02 (127.0.0.2), xen03 (127.0.0.3), users alice, reader,
    admin and expired; and another CA with its own alice."""
    root = tmp_path_factory.mktemp("pki")
    site, other = root / "site", root / "other"
    steps = [
        ("init", "--dir", str(site), "--org", "test site"),
        ("issue", "daemon", "xen02", "--ip", A, "--dir", str(site)),
        ("issue", "daemon", "xen03", "--ip", B, "--dir", str(site)),
        ("issue", "user", "alice", "--dir", str(site)),
        ("issue", "user", "reader", "--dir", str(site), "--key-type", "ed25519"),
        ("issue", "user", "admin", "--dir", str(site), "--key-type", "rsa", "--rsa-bits", "2048"),
        ("issue", "user", "expired", "--dir", str(site), "--start", "2020-01-01", "--days", "1"),
        ("init", "--dir", str(other)),
        ("issue", "user", "alice", "--dir", str(other)),
    ]
    for step in steps:
        result = ca(*step)
        assert result.returncode == 0, result.stderr
    (root / "daemon.yaml").write_text(ROLES, encoding="utf-8")
    (root / "app.sf").write_text(APP, encoding="utf-8")
    return root


def user(pki: Path, name: str, where: str = "site") -> list[str]:
    folder = pki / where
    return ["--ca", str(pki / "site" / "ca.pem"), "--cert", str(folder / f"{name}.pem"),
            "--key", str(folder / f"{name}.key")]


def client(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(name, *args), capture_output=True, text=True, timeout=120,
                          env=tls_env())


@pytest.fixture
def tls_daemons(pki: Path, tmp_path: Path) -> Iterator:
    started: list[Daemon] = []

    def start(address: str = A, host_name: str = "xen02", *extra: str) -> Daemon:
        site = pki / "site"
        daemon = Daemon(address, tmp_path / f"state-{address}", "--config",
                        str(pki / "daemon.yaml"), *extra,
                        security=("--cert", str(site / f"{host_name}.pem"), "--key",
                                  str(site / f"{host_name}.key"), "--ca", str(site / "ca.pem")),
                        env=tls_env())
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.stop()
        daemon.kill()
        daemon.clean_leftovers()


def applications(pki: Path, host: str = A) -> dict[str, str]:
    result = client("sflist", host, "--json", *user(pki, "alice"))
    assert result.returncode == 0, result.stderr
    return {app["name"]: app["state"] for app in json.loads(result.stdout)["applications"]}


# -- sfpy-ca ------------------------------------------------------------------------------------
def test_sfpy_ca_keys_are_private_and_a_daemon_certificate_names_its_host(pki: Path) -> None:
    site = pki / "site"
    for key in site.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    xen02 = tls.read_pem_names(site / "xen02.pem")
    assert xen02.common_name == "xen02" and xen02.dns == ("xen02",) and xen02.ips == (A,)
    assert xen02.subject == "CN=xen02,OU=daemons,O=test site"
    assert tls.read_pem_names(site / "alice.pem").subject == "CN=alice,OU=users,O=test site"
    again = ca("issue", "user", "alice", "--dir", str(site))
    assert again.returncode == 1 and "exists already" in again.stderr
    assert ca("init", "--dir", str(site)).returncode == 1  # never overwrites a CA
    assert ca("issue", "daemon", "x", "--ip", "not-an-ip", "--dir", str(site)).returncode == 1


# -- refused connections ------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["no certificate", "another CA", "expired", "plain TCP"])
def test_refused_clients_deploy_nothing(pki: Path, tls_daemons, who: str) -> None:
    daemon = tls_daemons()
    site = pki / "site"
    credentials = {
        "no certificate": ["--ca", str(site / "ca.pem")],
        "another CA": user(pki, "alice", "other"),
        "expired": user(pki, "expired"),
        "plain TCP": ["--insecure"],
    }[who]
    result = client("sfstart", A, "app", str(pki / "app.sf"), *credentials)
    assert result.returncode == 4, result.stderr
    assert "Traceback" not in result.stderr
    assert applications(pki) == {}
    assert not list((daemon.state_dir / "apps").iterdir())
    wait_for(lambda: "TLS handshake failed" in daemon.log, what="the refusal in the log")


def test_refusal_messages_say_why(pki: Path, tls_daemons) -> None:
    daemon = tls_daemons()
    site = pki / "site"
    bare = client("sfping", A, "--ca", str(site / "ca.pem"))
    assert bare.returncode == 4 and "none was given" in bare.stderr
    old = client("sfping", A, *user(pki, "expired"))
    assert old.returncode == 4 and "does not accept the certificate" in old.stderr
    wait_for(lambda: "certificate has expired" in daemon.log, what="the daemon's reason")
    plain = client("sfping", A, "--insecure")
    assert plain.returncode == 4 and "requires TLS" in plain.stderr
    wrong_ca = client("sfping", A, "--ca", str(pki / "other" / "ca.pem"), "--cert",
                      str(site / "alice.pem"), "--key", str(site / "alice.key"))
    assert wrong_ca.returncode == 4 and "daemon's certificate was refused" in wrong_ca.stderr


# -- roles ---------------------------------------------------------------------------------------
def test_read_only_certificate_lists_but_may_not_deploy(pki: Path, tls_daemons) -> None:
    daemon = tls_daemons()
    refused = client("sfstart", A, "app", str(pki / "app.sf"), *user(pki, "reader"))
    assert refused.returncode == 1, refused.stderr
    assert "reader may not deploy" in refused.stderr and "role deploy" in refused.stderr
    assert applications(pki) == {}
    wait_for(lambda: "refused deploy to CN=reader,OU=users,O=test site" in daemon.log,
             what="the refusal logged with the subject")
    listed = client("sflist", A, "--json", *user(pki, "reader"))
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["applications"] == []

    deployed = client("sfstart", A, "app", str(pki / "app.sf"), *user(pki, "alice"))
    assert deployed.returncode == 0, deployed.stderr
    listed = client("sflist", A, "--json", *user(pki, "reader"))
    assert [a["name"] for a in json.loads(listed.stdout)["applications"]] == ["app"]
    assert client("sfterminate", A, "app", *user(pki, "reader")).returncode == 1
    assert client("sfping", A, "app", *user(pki, "reader")).returncode == 0
    stop = client("sfstopdaemon", A, *user(pki, "alice"))  # deploy is not manage
    assert stop.returncode == 1 and "stop needs the role manage" in stop.stderr
    assert client("sfterminate", A, "app", *user(pki, "alice")).returncode == 0
    assert client("sfstopdaemon", A, *user(pki, "admin")).returncode == 0
    assert daemon.process.wait(60) == 0


def test_roles_table_defaults_to_the_strictest() -> None:
    peer = tls.Identity("CN=reader,OU=users,O=s", "reader")
    roles = access.Access({"read": ["reader"], "deploy": ["CN=*,OU=daemons,*"]})
    roles.check("list", peer, "h")
    with pytest.raises(access.AccessError, match="needs the role manage"):
        roles.check("some_method_added_later", peer, "h")
    daemon = tls.Identity("CN=xen02,OU=daemons,O=s", "xen02")
    assert roles.roles_of(daemon) == {"deploy", "read"}
    assert access.Access(None).roles_of(peer) == set(access.ROLES)  # no roles: the CA decides
    with pytest.raises(ValueError):
        access.Access({"admin": ["x"]})


# -- daemon to daemon ----------------------------------------------------------------------------
PEER_PROBE = """
import sys
from sfpy.engine import remote, tls
site = sys.argv[1]
remote.configure(tls.TLSFiles(ca=site + "/ca.pem", cert=site + "/xen02.pem", key=site + "/xen02.key"))
try:
    with remote.connect(sys.argv[2], expected_host=sys.argv[3] or None, timeout=20) as c:
        print("ok", c.peer.subject)
except remote.RemoteError as error:
    print("refused", error.exit_code, error.message)
"""


def probe(pki: Path, address: str, expected: str) -> str:
    result = subprocess.run([sys.executable, "-c", PEER_PROBE, str(pki / "site"), address, expected],
                            capture_output=True, text=True, timeout=120, env=tls_env(),
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_daemon_refuses_a_peer_not_named_as_the_host_it_asked_for(pki: Path, tls_daemons) -> None:
    tls_daemons(B, "xen03")
    assert probe(pki, B, "xen03") == "ok CN=xen03,OU=daemons,O=test site"
    wrong = probe(pki, B, "xen02")  # reached 127.0.0.3 looking for xen02: xen03 answered
    assert wrong.startswith("refused 4") and "is not xen02" in wrong


def test_a_daemon_refuses_a_peer_whose_certificate_does_not_name_its_address(
        pki: Path, tls_daemons) -> None:
    tls_daemons(B, "xen02")  # xen02's certificate names 127.0.0.2 only
    wrong = probe(pki, B, "")
    assert wrong.startswith("refused 4") and "certificate was refused" in wrong


def test_a_silent_connection_blocks_nobody(pki: Path, tls_daemons) -> None:
    """The TLS handshake runs in the connection's own thread, not in accept()."""
    tls_daemons()
    with socket.create_connection((A, 3800)):
        result = client("sfping", A, *user(pki, "alice"), "--connect-timeout", "20")
    assert result.returncode == 0, result.stderr


# -- insecure ------------------------------------------------------------------------------------
def test_insecure_is_refused_off_loopback(tmp_path: Path) -> None:
    wide = subprocess.run(command("sfdaemon", "--host", "192.0.2.1", "--insecure", "--state-dir",
                                  str(tmp_path / "a")),
                          capture_output=True, text=True, env=tls_env(), timeout=60)
    assert wide.returncode == 1 and "not a loopback address" in wide.stderr
    by_env = subprocess.run(command("sfdaemon", "--host", "192.0.2.1", "--state-dir",
                                    str(tmp_path / "b")),
                            capture_output=True, text=True, timeout=60,
                            env={**tls_env(), "SFPY_INSECURE": "1"})
    assert by_env.returncode == 1 and "not a loopback address" in by_env.stderr
    plain = client("sfping", "192.0.2.1", "--insecure")
    assert plain.returncode == 4 and "not a loopback address" in plain.stderr


def test_a_daemon_without_certificate_or_insecure_refuses_to_start(pki: Path, tmp_path: Path) -> None:
    nothing = subprocess.run(command("sfdaemon", "--host", A, "--state-dir", str(tmp_path / "a")),
                             capture_output=True, text=True, env=tls_env(), timeout=60)
    assert nothing.returncode == 1 and "--cert, --key and --ca" in nothing.stderr
    site = pki / "site"
    half = subprocess.run(command("sfdaemon", "--host", A, "--state-dir", str(tmp_path / "b"),
                                  "--cert", str(site / "xen02.pem"), "--ca", str(site / "ca.pem")),
                          capture_output=True, text=True, env=tls_env(), timeout=60)
    assert half.returncode == 2 and "--key missing" in half.stderr
    loose = tmp_path / "loose.key"
    loose.write_bytes((site / "xen02.key").read_bytes())
    os.chmod(loose, 0o644)
    open_key = subprocess.run(command("sfdaemon", "--host", A, "--state-dir", str(tmp_path / "c"),
                                      "--cert", str(site / "xen02.pem"), "--key", str(loose),
                                      "--ca", str(site / "ca.pem")),
                              capture_output=True, text=True, env=tls_env(), timeout=60)
    assert open_key.returncode == 2 and "chmod 600" in open_key.stderr


# -- client configuration ------------------------------------------------------------------------
def test_client_settings_files_then_environment_then_flags(tmp_path: Path) -> None:
    system, mine = tmp_path / "etc.yaml", tmp_path / "user" / "client.yaml"
    mine.parent.mkdir()
    system.write_text("ca: /site/ca.pem\ncert: /site/nobody.pem\nkey: /site/nobody.key\n")
    mine.write_text("cert: me.pem\nkey: me.key\n")
    found = clientconfig.resolve(None, {}, (system, mine))
    assert (found.ca, found.cert) == ("/site/ca.pem", str(mine.parent / "me.pem"))
    assert found.sources["ca"] == str(system) and found.sources["cert"] == str(mine)
    found = clientconfig.resolve(None, {"SFPY_CERT": "/env.pem"}, (system, mine))
    assert found.cert == "/env.pem" and found.sources["cert"] == "$SFPY_CERT"

    class Args:
        cert, key, ca, insecure = "/flag.pem", None, None, False

    found = clientconfig.resolve(Args(), {"SFPY_CERT": "/env.pem"}, (system, mine))  # type: ignore[arg-type]
    assert found.cert == "/flag.pem" and found.sources["cert"] == "--cert"
    assert clientconfig.resolve(None, {"SFPY_INSECURE": "1"}, ()).insecure


def test_sfdiagnostics_shows_which_certificate_was_used(pki: Path, tls_daemons,
                                                        tmp_path: Path) -> None:
    tls_daemons()
    config = tmp_path / "xdg" / "sfpy" / "client.yaml"
    config.parent.mkdir(parents=True)
    site = pki / "site"
    config.write_text(f"ca: {site / 'ca.pem'}\ncert: {site / 'reader.pem'}\n"
                      f"key: {site / 'reader.key'}\n")
    result = subprocess.run(command("sfdiagnostics", A), capture_output=True, text=True,
                            timeout=120, env={**tls_env(), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
                                              "SFPY_KEY": str(site / "reader.key")})
    assert result.returncode == 0, result.stderr
    assert f"client cert: {site / 'reader.pem'} (from {config})" in result.stdout
    assert "(from $SFPY_KEY)" in result.stdout
    assert "the daemon sees you as CN=reader,OU=users,O=test site, roles: read" in result.stdout
    assert "daemon certificate: CN=xen02,OU=daemons,O=test site" in result.stdout
