"""Cross-host placement (``sfProcessHost``) with real daemons on 127.0.0.2, 127.0.0.3 and
127.0.0.4 (port 3800): one application spanning three hosts, SmartFrog's three passes over
all of them, termination, a remote failure, liveness both ways after ``kill -9``, a child a
workflow creates at run time, remote resolution, and the number of remote calls.

``SFPY_CROSS_HOSTS`` (three addresses, comma-separated) moves the daemons elsewhere.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psutil
import pytest
from daemon_support import run, wait_for

pytestmark = pytest.mark.integration

A, B, C = (os.environ.get("SFPY_CROSS_HOSTS") or "127.0.0.2,127.0.0.3,127.0.0.4").split(",")
INCLUDES = (
    '#include "org/smartfrog/components.sf"\n'
    '#include "org/smartfrog/services/shellscript/components.sf"\n'
    '#include "org/smartfrog/sfcore/workflow/components.sf"\n'
)
#: Seconds within which liveness (delay 1, factor 2) notices a dead daemon, on a busy machine.
LIVENESS_WINDOW = 20.0


@pytest.fixture
def hosts(daemon_factory):
    return {address: daemon_factory(address) for address in (A, B, C)}


def write(tmp_path: Path, body: str, name: str = "app.sf") -> str:
    path = tmp_path / name
    path.write_text(INCLUDES + body, encoding="utf-8")
    return str(path)


def stamp(tmp_path: Path, name: str) -> str:
    """A shell command writing nanoseconds since the epoch into marker ``name``."""
    return f"date +%s%N > {tmp_path}/{name}"


def part(tmp_path: Path, name: str, host: str | None, extra: str = "") -> str:
    placed = f'sfProcessHost "{host}";' if host else ""
    return f"""
        {name} extends Compound {{
            {placed}
            s extends Script {{
                deployScript "{stamp(tmp_path, name + '.deploy')}";
                startScript "{stamp(tmp_path, name + '.start')}";
                terminateScript "{stamp(tmp_path, name + '.end')}";
            }}
            p extends BashProcess {{ cmd "exec sleep 300"; }}
            {extra}
        }}"""


def spanning(tmp_path: Path, extra_c: str = "") -> str:
    return write(tmp_path, f"""
        sfConfig extends Compound {{
            sfLivenessDelay 1;
            {part(tmp_path, 'a', None)}
            {part(tmp_path, 'b', B)}
            {part(tmp_path, 'c', C, extra_c)}
        }}""")


def applications(host: str) -> dict[str, str]:
    result = run("sflist", host, "--json")
    assert result.returncode == 0, result.stderr
    return {app["name"]: app["state"] for app in json.loads(result.stdout)["applications"]}


def tree(name: str, host: str) -> dict:
    result = run("sflist", host, name, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["tree"]


def nodes(node: dict) -> dict[str, dict]:
    found = {node["path"]: node}
    for child in node["children"]:
        found.update(nodes(child))
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def marker(tmp_path: Path, name: str) -> int:
    return int((tmp_path / name).read_text().strip())


def pids(name: str) -> dict[str, int]:
    """The BashProcess pid of each part, read from the host that runs it."""
    return {
        "a": nodes(tree(name, A))[f"{name}:a:p"]["attributes"]["pid"],
        "b": nodes(tree(name, B))[f"{name}:b:p"]["attributes"]["pid"],
        "c": nodes(tree(name, C))[f"{name}:c:p"]["attributes"]["pid"],
    }


def test_application_spans_three_hosts(hosts, tmp_path: Path) -> None:
    started = run("sfstart", A, "web", spanning(tmp_path))
    assert started.returncode == 0, started.stderr
    # every part ran on its own host: its components are listed there, its process is a
    # child of that host's daemon
    top = nodes(tree("web", A))
    assert {top["web:b"]["host"], top["web:c"]["host"]} == {B, C}
    assert "web:b:s" not in top and "web:a:s" in top
    on_b, on_c = nodes(tree("web", B)), nodes(tree("web", C))
    assert on_b["web:b:s"]["state"] == on_c["web:c:s"]["state"] == "STARTED"
    assert "web:c:s" not in on_b and "web:b:s" not in on_c
    assert applications(B) == {"web": "running"} and applications(C) == {"web": "running"}
    processes = pids("web")
    for name, daemon in (("a", hosts[A]), ("b", hosts[B]), ("c", hosts[C])):
        assert psutil.Process(processes[name]).ppid() == daemon.process.pid
    # three passes over the whole application: every deploy before any start
    deploys = [marker(tmp_path, f"{n}.deploy") for n in "abc"]
    starts = [marker(tmp_path, f"{n}.start") for n in "abc"]
    assert max(deploys) < min(starts)
    assert run("sfping", A, "web").returncode == 0
    assert run("sfping", B, "web:b:p").returncode == 0

    ended = run("sfterminate", A, "web")
    assert ended.returncode == 0, ended.stderr
    # sfterminate waited until every part's cleanup ran on its host and all is gone
    for name in "abc":
        assert (tmp_path / f"{name}.end").exists()
        assert not alive(processes[name])
    for host in (A, B, C):
        assert applications(host) == {}


def test_remote_failure_during_deploy_fails_and_cleans_everywhere(hosts, tmp_path: Path) -> None:
    path = write(tmp_path, f"""
        sfConfig extends Compound {{
            {part(tmp_path, 'a', None)}
            {part(tmp_path, 'b', B)}
            c extends Compound {{
                sfProcessHost "{C}";
                s extends Script {{
                    terminateScript "{stamp(tmp_path, 'c.end')}";
                }}
                bad extends Script {{ deployScript "exit 7"; }}
            }}
        }}""")
    result = run("sfstart", A, "broken", path)
    assert result.returncode == 1, result.stderr
    assert "Termination Record: broken:c:bad" in result.stderr
    assert "exit 7" in result.stderr
    for name in "abc":
        assert (tmp_path / f"{name}.end").exists(), name
    assert not (tmp_path / "a.start").exists() and not (tmp_path / "b.start").exists()
    for host in (A, B, C):
        assert applications(host) == {}


def test_kill_9_of_a_remote_daemon_fails_the_application(hosts, tmp_path: Path) -> None:
    assert run("sfstart", A, "web", spanning(tmp_path)).returncode == 0
    processes = pids("web")
    hosts[B].kill()
    killed = time.monotonic()
    wait_for(lambda: applications(A) == {}, timeout=LIVENESS_WINDOW, what="web to fail on A")
    assert time.monotonic() - killed < LIVENESS_WINDOW
    # the survivors cleaned up on their own hosts
    assert (tmp_path / "a.end").exists() and (tmp_path / "c.end").exists()
    assert not alive(processes["a"]) and not alive(processes["c"])
    assert applications(C) == {}
    diagnostics = json.loads(run("sfdiagnostics", A, "--json").stdout)
    assert any("liveness failure" in e["message"] and "web:b" in e["message"]
               for e in diagnostics["errors"]), diagnostics["errors"]
    # B's part died with its daemon; B cleans it when it comes back
    assert alive(processes["b"])
    hosts[B].start()
    assert not alive(processes["b"])
    assert (tmp_path / "b.end").exists()
    assert applications(B) == {}


def test_kill_9_of_the_root_daemon_ends_the_remote_parts(hosts, tmp_path: Path) -> None:
    assert run("sfstart", A, "web", spanning(tmp_path)).returncode == 0
    processes = pids("web")
    hosts[A].kill()
    wait_for(lambda: applications(B) == {} and applications(C) == {},
             timeout=LIVENESS_WINDOW, what="the parts on B and C to end")
    for name in "bc":
        assert (tmp_path / f"{name}.end").exists()
        assert not alive(processes[name])
    diagnostics = json.loads(run("sfdiagnostics", B, "--json").stdout)
    assert any("parent gone" in e["message"] for e in diagnostics["errors"])
    hosts[A].start()  # recovery cleans A's own part
    assert not alive(processes["a"])


def test_a_workflow_creates_remote_children_and_learns_their_end(hosts, tmp_path: Path) -> None:
    path = write(tmp_path, f"""
        sfConfig extends Sequence {{
            sfLivenessDelay 1;
            first extends BashProcess {{
                sfProcessHost "{B}";
                cmd "{stamp(tmp_path, 'first')}";
                terminate true;
            }}
            second extends BashProcess {{
                sfProcessHost "{C}";
                cmd "{stamp(tmp_path, 'second')}";
                terminate true;
            }}
        }}""")
    assert run("sfstart", A, "flow", path).returncode == 0
    # each action runs on its host, ends there, the Sequence learns it and goes on, then
    # ends normally: nothing is left anywhere
    wait_for(lambda: applications(A) == {}, timeout=LIVENESS_WINDOW, what="flow to end")
    assert marker(tmp_path, "first") < marker(tmp_path, "second")
    assert applications(B) == {} and applications(C) == {}
    diagnostics = json.loads(run("sfdiagnostics", A, "--json").stdout)
    assert not [e for e in diagnostics["errors"] if e["application"] == "flow"]


def test_lazy_references_and_resolution_across_hosts(hosts, tmp_path: Path) -> None:
    path = write(tmp_path, f"""
        sfConfig extends Compound {{
            b extends Compound {{
                sfProcessHost "{B}";
                message "echo from-b > {tmp_path}/resolved";
                p extends BashProcess {{ cmd "exec sleep 300"; }}
            }}
            a extends Script {{ startScript LAZY PARENT:b:message; }}
        }}""")
    assert run("sfstart", A, "refs", path).returncode == 0
    assert (tmp_path / "resolved").read_text() == "from-b\n"
    from sfpy.engine import remote

    remote.configure(insecure=True)  # these daemons run --insecure on loopback
    with remote.connect(B) as client:
        pid = client.call("subtree_resolve", "refs", "refs:b", "p:pid")["value"]
        assert pid == nodes(tree("refs", B))["refs:b:p"]["attributes"]["pid"]
        assert client.call("subtree_resolve", "refs", "refs:b", "p") == {
            "component": "refs:b:p",
            "sfClass": "org.smartfrog.services.shellscript.SFProcessExecutionImpl",
        }
    assert run("sfterminate", A, "refs").returncode == 0


def test_a_subtree_naming_the_deploying_daemon_stays_local(hosts, tmp_path: Path) -> None:
    path = write(tmp_path, f"""
        sfConfig extends Compound {{
            x extends Compound {{ sfProcessHost "{A}"; }}
            y extends Compound {{ sfProcessHost "{A}:3800"; }}
        }}""")
    assert run("sfstart", A, "here", path).returncode == 0
    top = nodes(tree("here", A))
    assert top["here:x"]["host"] == top["here:y"]["host"] == A
    assert applications(B) == {} and applications(C) == {}
    assert json.loads(run("sfdiagnostics", A, "--json").stdout)["remote_calls"] == {}


def _remote_calls(tmp_path: Path, name: str, count: int) -> dict[str, int]:
    """Deploy ``count`` Prims spread over the three hosts and terminate them; the remote
    calls the root daemon made (by method) and those of sfstart itself."""
    third = count // 3
    prim = 'extends Prim { sfClass "org.smartfrog.sfcore.prim.PrimImpl"; }'

    def prims(prefix: str, n: int) -> str:
        return "\n".join(f"{prefix}{i} {prim}" for i in range(n))

    path = write(tmp_path, f"""
        sfConfig extends Compound {{
            sfLivenessDelay 0;
            {prims('a', count - 2 * third)}
            b extends Compound {{ sfProcessHost "{B}"; {prims('b', third - 1)} }}
            c extends Compound {{ sfProcessHost "{C}"; {prims('c', third - 1)} }}
        }}""", name=f"{name}.sf")
    before = json.loads(run("sfdiagnostics", A, "--json").stdout)["remote_calls"]
    started = run("sfstart", A, name, path, "--json", "-q")
    assert started.returncode == 0, started.stderr
    assert sum(1 for _ in nodes(tree(name, B))) - 1 == third
    assert run("sfterminate", A, name).returncode == 0
    after = json.loads(run("sfdiagnostics", A, "--json").stdout)["remote_calls"]
    calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    calls["sfstart"] = json.loads(started.stdout)["calls"]
    return calls


def test_remote_calls_grow_with_hosts_not_components(hosts, tmp_path: Path) -> None:
    small = _remote_calls(tmp_path, "small", 9)
    large = _remote_calls(tmp_path, "large", 1000)
    for method in ("subtree_deploy", "subtree_start", "subtree_terminate"):
        assert small[method] == large[method] == 2, (small, large)  # one per remote host
    # following the operations: a few long-polls per host, however many components
    assert large["operation"] <= small["operation"] + 4, (small, large)
    between_daemons = sum(v for k, v in large.items() if k != "sfstart")
    assert between_daemons <= 24, large
    assert large["sfstart"] <= small["sfstart"] + 2, (small, large)
