"""sfProcessHost without a transport: two RootProcesses in this process joined by a connector
that calls the other directly (what sfpy.engine.remote does over Pyro5), and sfrun's refusal."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sfpy.engine import Prim, register
from sfpy.engine.placement import (
    Connector,
    ConnectorError,
    RemoteComponent,
    RemoteSubtree,
    check_without_daemons,
    names_this_host,
)
from sfpy.engine.rootprocess import DaemonError, RootProcess
from sfpy.language import parse_text, resolve
from sfpy.language.errors import DescriptionError
from sfpy.language.unparse import to_json

REPO = Path(__file__).resolve().parents[2]
PRIM = 'extends Prim { sfClass "org.smartfrog.sfcore.prim.PrimImpl"; }'


class FailsToDeploy(Prim):
    def deploy(self) -> None:
        raise RuntimeError("no disk here")


register("test.placement.FailsToDeploy", FailsToDeploy)


class DirectConnector:
    """Calls another RootProcess of this Python process; counts the calls."""

    def __init__(self, address: str, roots: dict[str, RootProcess]) -> None:
        self._address = address
        self.roots = roots
        self.calls: list[str] = []

    @property
    def address(self) -> str:
        return self._address

    def is_here(self, host: str) -> bool:
        return self.locate(host) == self._address

    def locate(self, host: str) -> str:
        return host if ":" in host else f"{host}:3800"

    def call(self, where: str, method: str, *args: Any, timeout: float | None = None) -> dict[str, Any]:
        self.calls.append(method)
        root = self.roots.get(where)
        if root is None:
            raise ConnectorError("unreachable", f"nothing at {where}")
        try:
            return getattr(root, method)(*args)
        except DaemonError as error:
            raise ConnectorError(error.code, error.message, error.path) from None


@pytest.fixture
def pair(tmp_path: Path):
    roots: dict[str, RootProcess] = {}
    made = []
    for name in ("hostA", "hostB"):
        where = f"{name}:3800"
        connector = DirectConnector(where, roots)
        root = RootProcess(tmp_path / name, host=name, address=where, placement=connector)
        roots[where] = root
        made.append(root)
    yield made
    for root in made:
        root.stop()
        root.stopped.wait(30)


def description(body: str) -> str:
    return to_json(resolve(parse_text('#include "org/smartfrog/components.sf"\n' + body)))


def follow(root: RootProcess, op: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = root.operation(op, 1 << 30, 1.0)
        if view["done"]:
            return view["outcome"]
    raise AssertionError(f"operation {op} not done after {timeout} s")


def test_the_connector_protocol_is_what_the_engine_needs() -> None:
    assert isinstance(DirectConnector("a:1", {}), Connector)


def test_a_subtree_is_deployed_by_the_other_root_process(pair) -> None:
    a, b = pair
    text = description(f"""
        sfConfig extends Compound {{
            x {PRIM}
            far extends Compound {{
                sfProcessHost "hostB";
                answer 42;
                y {PRIM}
                z {PRIM}
            }}
        }}""")
    outcome = follow(a, a.deploy("web", text, "r1")["operation"])
    assert outcome["exit"] == 0, outcome
    app = a._apps["web"].root  # noqa: SLF001 - looking inside in a unit test
    handle = app.sf_resolve("far")
    assert isinstance(handle, RemoteSubtree)
    assert handle.sf_remote_address == "hostB:3800"
    assert handle.sf_resolve("answer") == 42
    remote_y = handle.sf_resolve("y")
    assert isinstance(remote_y, RemoteComponent) and remote_y.sf_complete_name() == "web:far:y"
    assert remote_y.sf_resolve("sfHost")  # answered by hostB
    listed = b.list()["applications"]
    assert [(x["name"], x["components"], x["parent"]) for x in listed] == [("web", 3, "hostA:3800")]
    assert b.subtree_ping("web", "web:far") == {"host": "hostB", "state": "running"}
    # one call per remote operation however many components: deploy, start, and polls
    assert a.placement.calls.count("subtree_deploy") == 1
    assert a.placement.calls.count("subtree_start") == 1

    done = follow(a, a.terminate("web", request_id="r2")["operation"])
    assert done["exit"] == 0, done
    assert b.list()["applications"] == [] and a.list()["applications"] == []
    assert b.subtree_ping("web", "web:far")["state"] == "ended"


def test_a_failure_on_the_other_host_fails_the_whole_deployment(pair) -> None:
    a, b = pair
    text = description(f"""
        sfConfig extends Compound {{
            x {PRIM}
            far extends Compound {{
                sfProcessHost "hostB";
                bad extends Prim {{ sfClass "test.placement.FailsToDeploy"; }}
            }}
        }}""")
    outcome = follow(a, a.deploy("web", text)["operation"])
    assert outcome["exit"] == 1
    assert outcome["record"]["id"] == "web:far:bad"
    assert "no disk here" in outcome["record"]["description"]
    assert a.list()["applications"] == [] and b.list()["applications"] == []


def test_a_part_cannot_take_a_name_in_use_on_its_host(pair) -> None:
    a, b = pair
    assert follow(b, b.deploy("web", description(f"sfConfig extends Compound {{ x {PRIM} }}"))
                  ["operation"])["exit"] == 0
    text = description('sfConfig extends Compound { far extends Compound { sfProcessHost "hostB"; } }')
    outcome = follow(a, a.deploy("web", text)["operation"])
    assert outcome["exit"] == 1
    assert "already in use" in outcome["record"]["description"]


def test_an_application_root_is_not_placed(pair) -> None:
    a, _ = pair
    with pytest.raises(DaemonError) as raised:
        a.deploy("web", description('sfConfig extends Compound { sfProcessHost "hostB"; }'))
    assert raised.value.code == "description"


@pytest.mark.parametrize("host, here", [
    ("localhost", True), ("localhost:3800", True), ("127.0.0.1", True), ("[::1]:3800", True),
    ("127.0.0.3", False), ("elsewhere.example", False), ("", False),
])
def test_names_this_host(host: str, here: bool) -> None:
    assert names_this_host(host) is here


def test_sfrun_refuses_another_host_even_in_a_workflow_action() -> None:
    root = resolve(parse_text("""
        #include "org/smartfrog/components.sf"
        #include "org/smartfrog/sfcore/workflow/components.sf"
        sfConfig extends Sequence {
            here extends Compound { sfProcessHost "localhost"; }
            there extends Compound { sfProcessHost "127.0.0.3"; }
        }"""))
    with pytest.raises(DescriptionError) as raised:
        check_without_daemons(root, "sfConfig")
    assert raised.value.path == "sfConfig:there"
    assert "127.0.0.3" in str(raised.value)


def test_sfrun_exits_3_for_another_host(tmp_path: Path) -> None:
    path = tmp_path / "placed.sf"
    path.write_text('#include "org/smartfrog/components.sf"\n'
                    'sfConfig extends Compound { a extends Compound { sfProcessHost "10.9.9.9"; } }\n')
    result = subprocess.run([sys.executable, "-m", "sfpy.cli.sfrun", str(path), "--terminate-after", "0"],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "sfConfig:a" in result.stderr and "10.9.9.9" in result.stderr
    assert "Traceback" not in result.stderr
    path.write_text('#include "org/smartfrog/components.sf"\n'
                    'sfConfig extends Compound { a extends Compound { sfProcessHost "localhost"; } }\n')
    result = subprocess.run([sys.executable, "-m", "sfpy.cli.sfrun", str(path), "--terminate-after", "0"],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
