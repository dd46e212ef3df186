"""Re-adoption after ``kill -9``: a restarted sfdaemon takes back the applications whose
components can all take back what they made (a BashProcess its still-running process group,
a Script the duty to run its terminateScript, a placed subtree's handle its part on the
other daemon), and cleans the others. Real daemons on 127.0.0.2-.4 (port 3800)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psutil
import pytest
from daemon_support import applications as support_applications
from daemon_support import command, environment, find, run, wait_for
from daemon_support import tree as support_tree

pytestmark = pytest.mark.integration

A, B, C = "127.0.0.2", "127.0.0.3", "127.0.0.4"
INCLUDES = (
    '#include "org/smartfrog/components.sf"\n'
    '#include "org/smartfrog/services/shellscript/components.sf"\n'
)


def write(tmp_path: Path, body: str, name: str = "app.sf") -> str:
    path = tmp_path / name
    path.write_text(INCLUDES + body, encoding="utf-8")
    return str(path)


def site(tmp_path: Path) -> str:
    return write(tmp_path, f"""
        sfConfig extends Compound {{
            sfLivenessDelay 1;
            s extends Script {{
                startScript "touch {tmp_path}/made";
                terminateScript "rm -f {tmp_path}/made; touch {tmp_path}/ended";
            }}
            p extends BashProcess {{ cmd "exec sleep 300"; }}
        }}""")


def applications(host: str = A) -> dict[str, str]:
    return support_applications(host)


def tree(name: str, host: str = A) -> dict:
    return support_tree(name, host)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def recovery(host: str = A) -> list[str]:
    return json.loads(run("sfdiagnostics", host, "--json").stdout)["recovery"]


def test_a_running_application_is_re_adopted_not_restarted(daemon, tmp_path: Path) -> None:
    assert run("sfstart", A, "keep", site(tmp_path)).returncode == 0
    pid = find(tree("keep")["tree"], "keep:p")["attributes"]["pid"]
    daemon.kill()
    daemon.start()
    assert alive(pid)  # not stopped, not started again
    assert applications() == {"keep": "running"}
    shown = tree("keep")["tree"]
    assert {find(shown, f"keep:{n}")["state"] for n in "sp"} == {"STARTED"}
    assert find(shown, "keep:p")["attributes"]["pid"] == pid
    assert any(line.startswith("keep: re-adopted (3 components") for line in recovery())
    assert run("sfping", A, "keep:p").returncode == 0
    assert (tmp_path / "made").exists() and not (tmp_path / "ended").exists()
    done = run("sfterminate", A, "keep")
    assert done.returncode == 0, done.stderr
    assert not alive(pid)  # terminate stops the adopted group
    assert (tmp_path / "ended").exists() and not (tmp_path / "made").exists()
    assert applications() == {}
    assert not (daemon.state_dir / "apps" / "keep").exists()  # journal closed, removed
    assert run("sfstart", A, "keep", site(tmp_path)).returncode == 0


def test_a_re_adopted_process_that_dies_fails_its_application(daemon, tmp_path: Path) -> None:
    assert run("sfstart", A, "watched", site(tmp_path)).returncode == 0
    pid = find(tree("watched")["tree"], "watched:p")["attributes"]["pid"]
    daemon.kill()
    daemon.start()
    assert applications() == {"watched": "running"}
    psutil.Process(pid).kill()  # liveness (delay 1) notices the adopted group is gone
    wait_for(lambda: applications() == {}, 30, what="the application to fail")
    assert (tmp_path / "ended").exists()  # the rest was cleaned up as usual
    assert not (daemon.state_dir / "apps" / "watched").exists()


def test_a_process_gone_while_the_daemon_was_down_means_cleaning(daemon, tmp_path: Path) -> None:
    assert run("sfstart", A, "lost", site(tmp_path)).returncode == 0
    pid = find(tree("lost")["tree"], "lost:p")["attributes"]["pid"]
    daemon.kill()
    psutil.Process(pid).kill()
    wait_for(lambda: not alive(pid), 10, what="the process to die")
    daemon.start()
    assert applications() == {}
    assert (tmp_path / "ended").exists()  # the Script's terminateScript ran in recovery
    lines = recovery()
    assert any(line.startswith("lost: not re-adopted: lost:p cannot take back") for line in lines), lines
    assert not (daemon.state_dir / "apps" / "lost").exists()
    assert run("sfstart", A, "lost", site(tmp_path)).returncode == 0


def test_on_restart_clean_cleans_everything(daemon, tmp_path: Path) -> None:
    assert run("sfstart", A, "gone", site(tmp_path)).returncode == 0
    pid = find(tree("gone")["tree"], "gone:p")["attributes"]["pid"]
    daemon.kill()
    daemon.extra = ("--on-restart", "clean")
    daemon.start()
    assert not alive(pid)
    assert applications() == {}
    assert (tmp_path / "ended").exists()


def test_an_application_killed_while_deploying_is_cleaned(daemon, tmp_path: Path) -> None:
    path = write(tmp_path, f"""
        sfConfig extends Compound {{
            p extends BashProcess {{ cmd "exec sleep 300"; }}
            slow extends Script {{
                startScript "touch {tmp_path}/begun; exec sleep 60";
                terminateScript "touch {tmp_path}/ended";
            }}
        }}""")
    client = subprocess.Popen(command("sfstart", A, "half", path), env=environment(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (tmp_path / "begun").exists(), 60, what="the start script")
        pid = find(tree("half")["tree"], "half:p")["attributes"]["pid"]
        daemon.kill()
    finally:
        client.wait(60)
    daemon.start()
    assert applications() == {}
    assert not alive(pid)
    assert (tmp_path / "ended").exists()
    lines = recovery()
    assert any("not re-adopted: it had not finished deploying" in line for line in lines), lines


def test_a_component_terminated_at_run_time_is_not_brought_back(daemon, tmp_path: Path) -> None:
    path = write(tmp_path, """
        sfConfig extends Compound {
            p extends BashProcess { cmd "exec sleep 300"; }
            q extends BashProcess { cmd "exec sleep 300"; }
        }""")
    assert run("sfstart", A, "pruned", path).returncode == 0
    shown = tree("pruned")["tree"]
    p, q = (find(shown, f"pruned:{n}")["attributes"]["pid"] for n in "pq")
    assert run("sfterminate", A, "pruned:q", "--detach").returncode == 0
    assert not alive(q)
    daemon.kill()
    daemon.start()
    assert applications() == {"pruned": "running"}, recovery()
    assert [c["path"] for c in tree("pruned")["tree"]["children"]] == ["pruned:p"]
    assert alive(p)
    assert run("sfterminate", A, "pruned").returncode == 0
    assert not alive(p)


# -- across hosts --------------------------------------------------------------------------
@pytest.fixture
def hosts(daemon_factory):
    return {address: daemon_factory(address) for address in (A, B, C)}


def spanning(tmp_path: Path) -> str:
    def part(name: str, host: str | None) -> str:
        placed = f'sfProcessHost "{host}";' if host else ""
        return f"""
            {name} extends Compound {{
                {placed}
                s extends Script {{ terminateScript "touch {tmp_path}/{name}.end"; }}
                p extends BashProcess {{ cmd "exec sleep 300"; }}
            }}"""

    # a window of 15 s (1 s x 15) for a daemon to come back before the others give up
    return write(tmp_path, f"""
        sfConfig extends Compound {{
            sfLivenessDelay 1;
            sfLivenessFactor 15;
            {part('a', None)}
            {part('b', B)}
            {part('c', C)}
        }}""")


def pids(name: str) -> dict[str, int]:
    """The BashProcess pid of each part, read from the host that runs it."""
    return {part: find(tree(name, host)["tree"], f"{name}:{part}:p")["attributes"]["pid"]
            for part, host in (("a", A), ("b", B), ("c", C))}


def test_a_restarted_part_daemon_re_adopts_its_part(hosts, tmp_path: Path) -> None:
    assert run("sfstart", A, "web", spanning(tmp_path)).returncode == 0
    before = pids("web")
    hosts[B].kill()
    hosts[B].start()
    assert applications(B) == {"web": "running"}
    assert any(line.startswith("web: re-adopted (1 part of the application on")
               for line in recovery(B)), recovery(B)
    # the parent's handle reaches the re-adopted part again: its pings and lookups answer
    wait_for(lambda: run("sfping", A, "web:b").returncode == 0, 20, what="web:b answering")
    assert pids("web") == before and all(alive(pid) for pid in before.values())
    from sfpy.engine import remote

    remote.configure(insecure=True)
    with remote.connect(A) as client:  # A's handle of web:b resolves on B again
        assert client.call("subtree_resolve", "web", "web:b", "p:pid") == {"value": before["b"]}
    assert applications(A) == {"web": "running"} and applications(C) == {"web": "running"}
    done = run("sfterminate", A, "web")
    assert done.returncode == 0, done.stderr
    for name, pid in before.items():
        assert not alive(pid), name
        assert (tmp_path / f"{name}.end").exists(), name
    for host in (A, B, C):
        assert applications(host) == {}


def test_a_restarted_root_daemon_re_adopts_the_application(hosts, tmp_path: Path) -> None:
    assert run("sfstart", A, "web", spanning(tmp_path)).returncode == 0
    before = pids("web")
    hosts[A].kill()
    hosts[A].start()
    assert applications(A) == {"web": "running"}
    assert pids("web") == before and all(alive(pid) for pid in before.values())
    assert find(tree("web", A)["tree"], "web:c")["state"] == "STARTED"
    assert applications(B) == {"web": "running"} and applications(C) == {"web": "running"}
    done = run("sfterminate", A, "web")
    assert done.returncode == 0, done.stderr
    for name, pid in before.items():
        assert not alive(pid), name
        assert (tmp_path / f"{name}.end").exists(), name
    for host in (A, B, C):
        assert applications(host) == {}


def test_a_part_whose_application_is_gone_is_cleaned(hosts, tmp_path: Path) -> None:
    assert run("sfstart", A, "web", spanning(tmp_path)).returncode == 0
    before = pids("web")
    hosts[B].kill()
    assert run("sfterminate", A, "web").returncode in (0, 6)  # B cannot confirm its cleanup
    assert alive(before["b"])  # B's part died with its daemon
    hosts[B].start()
    assert not alive(before["b"])
    assert applications(B) == {}
    assert any("web: not re-adopted: its application on" in line for line in recovery(B))
    assert os.path.exists(tmp_path / "b.end")


def test_a_part_whose_application_was_replaced_meanwhile_is_cleaned(
    hosts, tmp_path: Path
) -> None:
    assert run("sfstart", A, "web", spanning(tmp_path)).returncode == 0
    before = pids("web")
    hosts[B].kill()
    assert run("sfterminate", A, "web").returncode in (0, 6)
    local = write(tmp_path, "sfConfig extends Compound { a extends Compound; }", "local.sf")
    assert run("sfstart", A, "web", local).returncode == 0  # the same name, no part on B
    hosts[B].start()
    assert not alive(before["b"])
    assert applications(B) == {}
    assert any("web: not re-adopted: its application on" in line for line in recovery(B))
    assert run("sfterminate", A, "web").returncode == 0
