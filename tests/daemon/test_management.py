"""sfmanage, sflogs, sfdiagnostics NAME / --leftovers / --clean and the host-name map, against
real sfdaemon processes on 127.0.0.2 (port 3800)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest
from daemon_support import command, environment, run, wait_for
from test_daemon_commands import alive, find, write
from test_daemon_commands import tree as tree_on

pytestmark = pytest.mark.integration

#: An address of its own, so these tests do not compete for 127.0.0.2:3800.
HOST = "127.0.0.12"


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory(HOST)


def tree(name: str) -> dict:
    return tree_on(name, HOST)

RECORDER = '''
from sfpy.engine import Prim


class Recorder(Prim):
    """Writes every attribute_changed call it gets to the file its ``log`` attribute names."""

    def attribute_changed(self, name, old, new):
        with open(self.sf_resolve("log"), "a", encoding="utf-8") as out:
            out.write(f"{name} {type(old).__name__} {old!s} -> {type(new).__name__} {new!s}\\n")
'''


@pytest.fixture
def recorder_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A component class the daemon finds through the ``sfpy.components`` entry points: a
    module and its dist-info on the daemon's PYTHONPATH."""
    plugin = tmp_path / "plugin"
    (plugin / "sfpy_test_recorder-1.0.dist-info").mkdir(parents=True)
    (plugin / "sfpy_test_recorder.py").write_text(RECORDER, encoding="utf-8")
    info = plugin / "sfpy_test_recorder-1.0.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sfpy-test-recorder\n"
                                   "Version: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[sfpy.components]\ntest.Recorder = sfpy_test_recorder:Recorder\n", encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(plugin), os.environ.get("PYTHONPATH", "")]))
    return plugin


def test_sfmanage_set_and_remove_run_the_attribute_changed_hook(
    recorder_plugin: Path, daemon, tmp_path: Path
) -> None:
    log = tmp_path / "hook.log"
    app = write(tmp_path, f"""
        sfConfig extends Compound {{
            rec extends Prim {{ sfClass "test.Recorder"; log "{log}"; limit 5; }}
        }}""")
    started = run("sfstart", HOST, "managed", app)
    assert started.returncode == 0, started.stderr
    changed = run("sfmanage", HOST, "managed", "set", "rec", "limit", "240L")
    assert changed.returncode == 0, changed.stderr
    assert "managed:rec: limit = 240L (was 5)" in changed.stdout
    wait_for(lambda: log.exists() and "limit int 5 -> Long Long(240)\n" in log.read_text(),
             what="the hook to see the new Long")
    node = find(tree("managed")["tree"], "managed:rec")
    assert node["attributes"]["limit"] == {"$": "Long", "value": 240}
    # sfConfig:… paths as sfrun names them, and a vector and a string
    assert run("sfmanage", HOST, "managed", "set", "sfConfig:rec", "hosts",
               '["a", "b"]').returncode == 0
    assert run("sfmanage", HOST, "managed", "set", "rec", "motd", '"hi there"').returncode == 0
    assert find(tree("managed")["tree"], "managed:rec")["attributes"]["motd"] == "hi there"
    removed = run("sfmanage", HOST, "managed", "remove", "rec", "limit", "--json")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["old"] == {"$": "Long", "value": 240}
    wait_for(lambda: any(line.startswith("limit Long Long(240) -> ") and line.endswith("ABSENT")
                         for line in log.read_text().splitlines()), what="the removal hook")
    assert "limit" not in find(tree("managed")["tree"], "managed:rec")["attributes"]
    # refusals: no such attribute, component, application; a value that is not one
    assert run("sfmanage", HOST, "managed", "remove", "rec", "limit").returncode == 1
    assert run("sfmanage", HOST, "managed", "set", "nope", "x", "1").returncode == 1
    assert run("sfmanage", HOST, "ghost", "set", "rec", "x", "1").returncode == 1
    wrong = run("sfmanage", HOST, "managed", "set", "rec", "x", "(1 +")
    assert wrong.returncode == 3 and "VALUE" in wrong.stderr
    assert "x" not in find(tree("managed")["tree"], "managed:rec")["attributes"]
    assert run("sfterminate", HOST, "managed").returncode == 0


def test_sfmanage_show_detach_and_terminate_abnormally(daemon, tmp_path: Path) -> None:
    app = write(tmp_path, """
        sfConfig extends Compound {
            keep extends BashProcess { cmd "exec sleep 300"; }
            stop extends BashProcess { cmd "exec sleep 300"; }
        }""")
    assert run("sfstart", HOST, "console", app).returncode == 0
    shown = run("sfmanage", HOST, "console", "show")
    assert shown.returncode == 0, shown.stderr
    assert "console:keep  STARTED" in shown.stdout and 'cmd "exec sleep 300";' in shown.stdout
    keep_pid = find(tree("console")["tree"], "console:keep")["attributes"]["pid"]
    detached = run("sfmanage", HOST, "console", "detach", "keep", "--json")
    assert detached.returncode == 0, detached.stderr
    data = json.loads(run("sfmanage", HOST, "console", "show", "--json").stdout)
    assert [child["name"] for child in data["tree"]["children"]] == ["stop"]
    assert [part["path"] for part in data["detached"]] == [json.loads(detached.stdout)["name"]
                                                           .split(":", 1)[1]]
    assert alive(keep_pid)
    ended = run("sfmanage", HOST, "console", "terminate", "stop", "--abnormal",
                "--reason", "operator says so")
    assert ended.returncode == 0, ended.stderr
    # a Compound ends with its child: the application is gone, the detached part with it
    wait_for(lambda: run("sfping", HOST, "console").returncode == 1, what="the application end")
    wait_for(lambda: not alive(keep_pid), what="the detached part's process to stop")
    errors = json.loads(run("sfdiagnostics", HOST, "--json").stdout)["errors"]
    assert any("operator says so" in error["message"] for error in errors)


def test_sflogs_shows_commands_output_and_exit_codes_and_survives_a_restart(
    daemon, tmp_path: Path
) -> None:
    app = write(tmp_path, """
        sfConfig extends Compound {
            s extends Script { startScript "echo hello-from-s; echo oops >&2"; }
            t extends Script { startScript "echo hello-from-t"; }
        }""")
    assert run("sfstart", HOST, "logged", app).returncode == 0
    of_s = run("sflogs", HOST, "logged", "s")
    assert of_s.returncode == 0, of_s.stderr
    lines = of_s.stdout.splitlines()
    assert any(" logged:s run for logged:s: echo hello-from-s" in line for line in lines)
    assert any(line.endswith("out: hello-from-s") for line in lines)
    assert any(line.endswith("err: oops") for line in lines)
    assert any("exit 0" in line for line in lines)
    assert "hello-from-t" not in of_s.stdout  # only s (and what is below it)
    whole = run("sflogs", HOST, "logged", "--lines", "1000").stdout
    assert "hello-from-t" in whole and "hello-from-s" in whole
    assert len(run("sflogs", HOST, "logged", "-n", "2").stdout.splitlines()) == 2
    # follow: a new line arrives while sflogs waits
    follower = subprocess.Popen(command("sflogs", HOST, "logged", "--follow", "-n", "0"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=environment())
    lines_seen: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    threading.Thread(target=lambda: [lines_seen.put(x) for x in follower.stdout], daemon=True).start()
    try:
        # The follower may subscribe after a first change: change again until it shows one.
        deadline = time.monotonic() + 60
        shown = ""
        while "attribute color set by a client" not in shown:
            assert time.monotonic() < deadline, "sflogs --follow showed no new line in 60 s"
            changed = run("sfmanage", HOST, "logged", "set", "t", "color", '"blue"')
            assert changed.returncode == 0, changed.stderr
            try:
                shown = lines_seen.get(timeout=2)
            except queue.Empty:
                continue
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(30)
    assert run("sfterminate", HOST, "logged").returncode == 0
    assert "hello-from-s" in run("sflogs", HOST, "logged", "s").stdout  # after its end
    daemon.kill()
    daemon.start()
    again = run("sflogs", HOST, "logged", "s")
    assert again.returncode == 0 and "hello-from-s" in again.stdout  # after a restart
    assert run("sflogs", HOST, "never-deployed").returncode == 1


def test_sfdiagnostics_of_one_application_shows_work_in_progress(daemon, tmp_path: Path) -> None:
    app = write(tmp_path, """
        sfConfig extends Compound {
            slow extends Script { startScript "sleep 60"; }
        }""")
    started = run("sfstart", HOST, "busy", app, "--timeout", "1")
    assert started.returncode == 5, started.stderr  # the deployment goes on
    data = wait_for(lambda: next(iter(
        [d for d in [json.loads(run("sfdiagnostics", HOST, "busy", "--json").stdout)]
         if d["activities"] and d["activities"][0]["seconds"] >= 1]), None),
        what="a second of work in progress")
    activity = data["activities"][0]
    assert activity["path"] == "busy:slow" and "sleep 60" in activity["what"]
    assert data["states"] and data["tree"]["path"] == "busy"
    assert any(entry["kind"] == "process-group" for entry in data["journal"])
    text = run("sfdiagnostics", HOST, "busy").stdout
    assert "in progress:" in text and "busy:slow" in text
    assert run("sfterminate", HOST, "busy").returncode == 0
    assert run("sfdiagnostics", HOST, "busy").returncode == 1


def test_leftovers_are_listed_and_cleaned_with_the_command_given(daemon, tmp_path: Path) -> None:
    made, allow = tmp_path / "made", tmp_path / "allow"
    app = write(tmp_path, f"""
        sfConfig extends Compound {{
            s extends Script {{
                startScript "touch {made}";
                terminateScript "test -e {allow} && rm -f {made}";
            }}
        }}""")
    assert run("sfstart", HOST, "dead", app).returncode == 0
    daemon.kill()
    daemon.extra = ("--on-restart", "clean")  # (the default would re-adopt it)
    daemon.start()  # recovery runs the terminateScript: it refuses (no allow file), left
    assert made.exists()
    listed = run("sfdiagnostics", HOST, "--leftovers", "--json")
    assert listed.returncode == 6, listed.stderr
    item, = json.loads(listed.stdout)["leftovers"]
    assert item["application"] == "dead"
    assert any(entry["kind"] == "script-cleanup" for entry in item["entries"])
    assert item["clean"] == f"sfdiagnostics {HOST}:3800 --clean dead"
    assert "--clean dead" in run("sfdiagnostics", HOST, "--leftovers").stdout
    assert run("sfstart", HOST, "dead", app).returncode == 1  # the name stays refused
    still = run("sfdiagnostics", HOST, "--clean", "dead")
    assert still.returncode == 6 and "left:" in still.stdout
    allow.touch()
    cleaned = run(*item["clean"].split())  # the command --leftovers gave
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "ran the terminateScript of dead:s" in cleaned.stdout
    assert not made.exists()
    assert json.loads(run("sfdiagnostics", HOST, "--leftovers", "--json").stdout)["leftovers"] == []
    assert not (daemon.state_dir / "apps" / "dead").exists()
    assert run("sfdiagnostics", HOST, "--clean", "dead").returncode == 1  # nothing to clean


def test_a_host_name_from_the_client_configuration(daemon, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "client.yaml"
    config.write_text(f'hosts:\n  xen01: "{HOST}"\n  xen02: "{HOST}:3800"\n',
                      encoding="utf-8")
    monkeypatch.setenv("SFPY_CLIENT_CONFIG", str(config))
    for name in ("xen01", "xen02", "xen01:3800"):
        result = run("sfping", name)
        assert result.returncode == 0, result.stderr
    config.write_text("hosts: [1, 2]\n", encoding="utf-8")
    bad = run("sfping", "xen01")
    assert bad.returncode == 2 and "hosts" in bad.stderr


def test_the_daemon_checks_its_host_name_map(tmp_path: Path) -> None:
    config = tmp_path / "sfdaemon.yaml"
    config.write_text(textwrap.dedent("""\
        insecure: true
        hosts:
          xen01: "127.0.0.2:99999"
        """), encoding="utf-8")
    result = subprocess.run(command("sfdaemon", "--config", str(config), "--host", "127.0.0.9",
                                    "--state-dir", str(tmp_path / "state")),
                            capture_output=True, text=True, env=environment(), timeout=60)
    assert result.returncode == 2 and "xen01" in result.stderr
