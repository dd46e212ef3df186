"""sfdaemon and its commands, as processes: sfstart, sflist, sfping, sfterminate,
sfdiagnostics, sfstopdaemon against real daemons on 127.0.0.2 (port 3800)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from daemon_support import applications as support_applications
from daemon_support import command, environment, find, run, wait_for
from daemon_support import tree as support_tree

pytestmark = pytest.mark.integration

HOST = "127.0.0.2"
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
            s extends Script {{
                startScript "echo started > {tmp_path}/started";
                terminateScript "echo ended > {tmp_path}/ended";
            }}
            p extends BashProcess {{ cmd "exec sleep 300"; }}
        }}""")


def applications(host: str = HOST) -> dict[str, str]:
    return support_applications(host)


def tree(name: str, host: str = HOST) -> dict:
    return support_tree(name, host)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_round_trip_script_and_bash_process(daemon, tmp_path: Path) -> None:
    started = run("sfstart", HOST, "app1", site(tmp_path))
    assert started.returncode == 0, started.stderr
    assert "app1:p  STARTED" in started.stderr  # the state lines, as sfrun prints them
    assert "app1  STARTED" in started.stderr
    assert (tmp_path / "started").read_text() == "started\n"
    assert applications() == {"app1": "running"}
    data = tree("app1")
    assert data["tree"]["state"] == "STARTED"
    proc = find(data["tree"], "app1:p")
    assert proc["state"] == "STARTED"
    assert proc["sfClass"] == "org.smartfrog.services.shellscript.SFProcessExecutionImpl"
    assert proc["attributes"]["cmd"] == "exec sleep 300"
    pid = proc["attributes"]["pid"]
    assert alive(pid)
    assert run("sfping", HOST, "app1").returncode == 0
    assert run("sfping", HOST).returncode == 0

    ended = run("sfterminate", HOST, "app1")
    assert ended.returncode == 0, ended.stderr
    assert "app1:p  TERMINATED" in ended.stderr
    assert (tmp_path / "ended").read_text() == "ended\n"
    assert not alive(pid)  # gone when sfterminate returns: cleanup is part of terminating
    assert applications() == {}
    pinged = run("sfping", HOST, "app1")
    assert pinged.returncode == 1 and "no application 'app1'" in pinged.stderr


def test_name_in_use_is_refused_even_with_the_same_file(daemon, tmp_path: Path) -> None:
    path = write(tmp_path, "sfConfig extends Compound { a extends Compound; }")
    assert run("sfstart", HOST, "twice", path).returncode == 0
    again = run("sfstart", HOST, "twice", path)
    assert again.returncode == 1
    assert "already in use" in again.stderr
    assert applications() == {"twice": "running"}


def test_failed_deployment_is_cleaned_up_and_exits_1(daemon, tmp_path: Path) -> None:
    path = write(tmp_path, f"""
        sfConfig extends Compound {{
            first extends Script {{ terminateScript "echo cleaned > {tmp_path}/cleaned"; }}
            bad extends Script {{ startScript "exit 7"; }}
        }}""")
    result = run("sfstart", HOST, "broken", path)
    assert result.returncode == 1, result.stderr
    assert "Termination Record: broken:bad" in result.stderr
    assert (tmp_path / "cleaned").read_text() == "cleaned\n"
    assert applications() == {}
    diagnostics = json.loads(run("sfdiagnostics", HOST, "--json").stdout)
    assert any(e["application"] == "broken" for e in diagnostics["errors"])


@pytest.mark.parametrize("body, words", [
    ("sfConfig extends Compound { a extends Compound { x NOSUCH:ref; } }", "x"),
    ('sfConfig extends Compound { a extends Prim { sfClass "no.such.Class"; } }', "no.such.Class"),
    ("sfConfig extends Compound { a extends ", "a"),
])
def test_wrong_description_exits_3_and_never_reaches_the_daemon(
    daemon, tmp_path: Path, body: str, words: str
) -> None:
    result = run("sfstart", HOST, "wrong", write(tmp_path, body))
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert applications() == {}
    assert "deploying" not in daemon.log  # nothing was sent


def test_unreachable_daemon_exits_4_with_one_line(tmp_path: Path) -> None:
    for name, args in [("sfping", ()), ("sflist", ()), ("sfstart", ("x", site(tmp_path))),
                       ("sfterminate", ("x",)), ("sfdiagnostics", ()), ("sfstopdaemon", ())]:
        result = run(name, "127.0.0.9:3800", *args)
        assert result.returncode == 4, (name, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "no sfpy daemon reachable at 127.0.0.9:3800" in result.stderr


def test_version_mismatch_exits_4(daemon) -> None:
    code = (
        "import sys; import sfpy.engine.rootprocess as r; r.API_VERSION = 99; "
        "from sfpy.cli.sfping import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run([sys.executable, "-c", code, HOST], capture_output=True, text=True,
                            env=environment(), timeout=60)
    assert result.returncode == 4, result.stderr
    assert "speaks API version 1" in result.stderr and "99" in result.stderr


def test_kill_9_then_restart_cleans_the_leftover_process(daemon, tmp_path: Path) -> None:
    assert run("sfstart", HOST, "survivor", site(tmp_path)).returncode == 0
    pid = find(tree("survivor")["tree"], "survivor:p")["attributes"]["pid"]
    daemon.kill()  # kill -9: the BashProcess's group lives on in its own session
    assert alive(pid)
    daemon.extra = ("--on-restart", "clean")  # (the default re-adopts: test_readopt.py)
    daemon.start()
    assert not alive(pid)  # recovery ran before the daemon listened
    assert applications() == {}
    assert "survivor: stopped process group" in daemon.log
    diagnostics = json.loads(run("sfdiagnostics", HOST, "--json").stdout)
    assert any(line.startswith("survivor: stopped process group") for line in diagnostics["recovery"])
    again = run("sfstart", HOST, "survivor", site(tmp_path))  # the name is free again
    assert again.returncode == 0, again.stderr


def test_twenty_concurrent_sfstarts(daemon, tmp_path: Path) -> None:
    path = write(tmp_path, 'sfConfig extends Compound { s extends Script { startScript "true"; } }')
    clients = [
        subprocess.Popen(command("sfstart", HOST, f"app{n}", path, "-q"), env=environment(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(20)
    ]
    results = [(c.wait(180), c.stderr.read() if c.stderr else "") for c in clients]
    for client in clients:
        for stream in (client.stdout, client.stderr):
            if stream:
                stream.close()
    assert [code for code, _ in results] == [0] * 20, results
    assert applications() == {f"app{n}": "running" for n in range(20)}


def test_client_killed_during_sfstart_leaves_a_deployment_sflist_shows(
    daemon, tmp_path: Path
) -> None:
    path = write(tmp_path, f"""
        sfConfig extends Compound {{
            slow extends Script {{ startScript "touch {tmp_path}/begun; sleep 2"; }}
        }}""")
    client = subprocess.Popen(command("sfstart", HOST, "orphan", path), env=environment(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (tmp_path / "begun").exists(), 60, what="the start script")
    client.send_signal(signal.SIGKILL)
    client.wait(10)
    assert applications().get("orphan") == "deploying"
    wait_for(lambda: applications().get("orphan") == "running", 60, what="orphan running")
    assert find(tree("orphan")["tree"], "orphan:slow")["state"] == "STARTED"


def test_sfstopdaemon_terminates_the_applications(daemon, tmp_path: Path) -> None:
    assert run("sfstart", HOST, "app", site(tmp_path)).returncode == 0
    pid = find(tree("app")["tree"], "app:p")["attributes"]["pid"]
    stopped = run("sfstopdaemon", HOST)
    assert stopped.returncode == 0, stopped.stderr
    assert daemon.process is not None and daemon.process.wait(60) == 0
    assert not alive(pid)
    assert (tmp_path / "ended").exists()
    assert not any((daemon.state_dir / "apps").iterdir())  # every journal closed clean


def test_sigterm_stops_the_daemon_cleanly(daemon, tmp_path: Path) -> None:
    assert run("sfstart", HOST, "app", site(tmp_path)).returncode == 0
    pid = find(tree("app")["tree"], "app:p")["attributes"]["pid"]
    assert daemon.stop() == 0
    assert not alive(pid)
    assert "app=app component=app:p" in daemon.log  # every line names app and component


def test_daemon_refuses_without_insecure_or_off_loopback(tmp_path: Path) -> None:
    env = {k: v for k, v in environment().items() if k != "SFPY_INSECURE"}
    plain = subprocess.run(command("sfdaemon", "--host", HOST, "--state-dir", str(tmp_path / "a")),
                           capture_output=True, text=True, env=env, timeout=60)
    assert plain.returncode == 1 and "--insecure" in plain.stderr
    wide = subprocess.run(command("sfdaemon", "--host", "192.0.2.1", "--insecure", "--state-dir",
                                  str(tmp_path / "b")),
                          capture_output=True, text=True, env=environment(), timeout=60)
    assert wide.returncode == 1 and "not a loopback address" in wide.stderr


def test_two_daemons_on_two_addresses(daemon_factory, tmp_path: Path) -> None:
    daemon_factory("127.0.0.2")
    daemon_factory("127.0.0.3")
    path = write(tmp_path, "sfConfig extends Compound { a extends Compound; }")
    assert run("sfstart", "127.0.0.2", "one", path).returncode == 0
    assert run("sfstart", "127.0.0.3:3800", "two", path).returncode == 0
    assert applications("127.0.0.2") == {"one": "running"}
    assert applications("127.0.0.3") == {"two": "running"}


def test_ready_quickly(daemon_factory) -> None:
    began = time.monotonic()
    daemon_factory("127.0.0.2")
    # half a second on an idle machine; a busy shared test machine gets slack
    assert time.monotonic() - began < 5.0


def test_dry_run_places_components_and_deploys_nothing(daemon, tmp_path: Path) -> None:
    result = run("sfstart", HOST, "dry", site(tmp_path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry:p  127.0.0.2" in result.stdout
    assert applications() == {}
    assert os.path.exists(daemon.state_dir)
