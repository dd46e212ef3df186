"""References that leave a daemon: ``HOST name:rootProcess:app:comp`` (SmartFrog's HOST
reference part) reaching another daemon's application, and LAZY ``PARENT`` references from a
placed subtree up into its parent's part on the other host. Real daemons on 127.0.0.2 and
127.0.0.3 (port 3800)."""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_support import run

pytestmark = pytest.mark.integration

A, B = "127.0.0.2", "127.0.0.3"
INCLUDES = (
    '#include "org/smartfrog/components.sf"\n'
    '#include "org/smartfrog/services/shellscript/components.sf"\n'
)


@pytest.fixture
def hosts(daemon_factory):
    return {address: daemon_factory(address) for address in (A, B)}


def write(tmp_path: Path, body: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(INCLUDES + body, encoding="utf-8")
    return str(path)


def resolve(host: str, app: str, path: str, reference: str) -> dict:
    from sfpy.engine import remote

    remote.configure(insecure=True)  # these daemons run --insecure on loopback
    with remote.connect(host) as client:
        return client.call("subtree_resolve", app, path, reference)


def test_host_reference_reaches_an_application_on_another_daemon(hosts, tmp_path: Path) -> None:
    other = write(tmp_path, f"""
        sfConfig extends Compound {{
            c extends Compound {{
                word "deep";
                command "echo from-b > {tmp_path}/host-ref";
            }}
        }}""", "other.sf")
    assert run("sfstart", B, "other", other).returncode == 0
    user = write(tmp_path, f"""
        sfConfig extends Compound {{
            remote LAZY HOST "{B}":rootProcess:other:c;
            mine "local";
            here LAZY HOST "{A}":rootProcess:user:mine;
            s extends Script {{ startScript LAZY HOST "{B}":rootProcess:other:c:command; }}
        }}""", "user.sf")
    started = run("sfstart", A, "user", user)
    assert started.returncode == 0, started.stderr
    assert (tmp_path / "host-ref").read_text() == "from-b\n"  # resolved in the start hook
    assert resolve(A, "user", "user", "remote:word") == {"value": "deep"}
    assert resolve(A, "user", "user", "remote") == {"component": "other:c", "sfClass": None}
    # HOST naming the daemon itself goes through its own address
    assert resolve(A, "user", "user", "here") == {"value": "local"}
    assert run("sfterminate", A, "user").returncode == 0
    assert run("sfterminate", B, "other").returncode == 0


def test_host_reference_to_a_missing_application_fails_the_deployment(
    hosts, tmp_path: Path
) -> None:
    user = write(tmp_path, f"""
        sfConfig extends Compound {{
            s extends Script {{ startScript LAZY HOST "{B}":rootProcess:nothere:command; }}
        }}""", "user.sf")
    started = run("sfstart", A, "user", user)
    assert started.returncode == 1, started.stderr
    assert "nothere" in started.stderr and "Traceback" not in started.stderr


def test_lazy_parent_from_a_placed_subtree_reaches_the_parent_host(hosts, tmp_path: Path) -> None:
    path = write(tmp_path, f"""
        sfConfig extends Compound {{
            greeting "echo from-a > {tmp_path}/up";
            a extends Compound {{ word "sibling"; }}
            b extends Compound {{
                sfProcessHost "{B}";
                s extends Script {{ startScript LAZY PARENT:PARENT:greeting; }}
                fromSibling LAZY PARENT:a:word;
            }}
        }}""", "up.sf")
    started = run("sfstart", A, "up", path)
    assert started.returncode == 0, started.stderr
    assert (tmp_path / "up").read_text() == "from-a\n"  # s on B read the root's attribute on A
    assert resolve(B, "up", "up:b", "fromSibling") == {"value": "sibling"}
    assert resolve(B, "up", "up:b", "PARENT:a") == {"component": "up:a", "sfClass": None}
    assert run("sfterminate", A, "up").returncode == 0
