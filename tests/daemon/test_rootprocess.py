"""RootProcess in this process (no transport), the raw Pyro5 client of docs/api.md, and the
rule that only sfpy.engine.remote imports Pyro5."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from daemon_support import REPO, wait_for

from sfpy.engine.rootprocess import API_VERSION, DaemonError, RootProcess
from sfpy.language import load
from sfpy.language.unparse import to_json

INCLUDES = (
    '#include "org/smartfrog/components.sf"\n'
    '#include "org/smartfrog/services/shellscript/components.sf"\n'
)


def description(tmp_path: Path, body: str) -> str:
    path = tmp_path / "d.sf"
    path.write_text(INCLUDES + body, encoding="utf-8")
    return to_json(load(str(path)))


@pytest.fixture
def root(tmp_path: Path):
    process = RootProcess(tmp_path / "state", host="here")
    yield process
    process.stop()
    wait_for(process.stopped.is_set, 60, what="stopped")


def follow(root: RootProcess, op: str) -> tuple[list[str], dict]:
    lines: list[str] = []
    while True:
        view = root.operation(op, len(lines), 5.0)
        lines.extend(view["lines"])
        if view["done"]:
            return lines, view["outcome"]


def test_deploy_follow_list_tree_terminate(root: RootProcess, tmp_path: Path) -> None:
    text = description(tmp_path, "sfConfig extends Compound { a extends Compound { x 1; } }")
    op = root.deploy("app", text, "r1")["operation"]
    lines, outcome = follow(root, op)
    assert outcome["exit"] == 0 and outcome["state"] == "running"
    assert any(line.startswith("app  STARTED") for line in lines)
    assert lines[-1].startswith("app:a  STARTED")
    assert root.list()["applications"][0]["name"] == "app"
    node = root.tree("app")["tree"]["children"][0]
    assert (node["path"], node["state"], node["attributes"]["x"]) == ("app:a", "STARTED", 1)
    assert root.ping("app:a")["state"] == "STARTED"
    end = root.terminate("app", request_id="t1")["operation"]
    lines, outcome = follow(root, end)
    assert outcome["exit"] == 0 and outcome["record"]["type"] == "normal"
    assert "app  TERMINATED" in lines[-1]
    assert root.list()["applications"] == []


def test_same_request_id_returns_the_same_operation(root: RootProcess, tmp_path: Path) -> None:
    text = description(tmp_path, "sfConfig extends Compound;")
    first = root.deploy("app", text, "same")
    again = root.deploy("app", text, "same")  # a reconnecting client: no "name in use"
    assert again["operation"] == first["operation"]
    with pytest.raises(DaemonError) as error:
        root.deploy("app", text, "other")
    assert error.value.code == "in-use" and error.value.exit_code == 1


def test_refusals_carry_codes(root: RootProcess, tmp_path: Path) -> None:
    with pytest.raises(DaemonError) as error:
        root.hello(API_VERSION + 1)
    assert error.value.code == "version" and error.value.exit_code == 4
    assert root.hello(API_VERSION)["api"] == API_VERSION
    with pytest.raises(DaemonError) as error:
        root.deploy("app", '{"sfpy": 1, "description": 3}')
    assert error.value.exit_code == 3
    bad_class = description(tmp_path, 'sfConfig extends Compound { a extends Prim { sfClass "no.Such"; } }')
    with pytest.raises(DaemonError) as error:
        root.deploy("app", bad_class)
    assert error.value.code == "description"
    assert not (root.apps_dir / "app").exists()  # checked before anything was created
    for name in ("", "../x", "a/b", "-x", 3):
        with pytest.raises(DaemonError):
            root.deploy(name, "{}")
    with pytest.raises(DaemonError) as error:
        root.terminate("nothing")
    assert error.value.code == "unknown"


def test_long_poll_returns_when_a_line_comes(root: RootProcess, tmp_path: Path) -> None:
    text = description(tmp_path, 'sfConfig extends Compound { s extends Script { startScript "sleep 1"; } }')
    op = root.deploy("slow", text)["operation"]
    began = time.monotonic()
    view = root.operation(op, 0, 20.0)
    assert view["lines"] and time.monotonic() - began < 10
    lines, outcome = follow(root, op)
    assert outcome["exit"] == 0


def test_recovery_stops_what_a_dead_daemon_left(tmp_path: Path) -> None:
    from sfpy.host.journal import TAG_VARIABLE, Journal

    state = tmp_path / "state"
    journal = Journal(state / "apps" / "old", run_id="old")
    entry = journal.add("process-group", "old:p", {"command": "sleep 300"})
    child = subprocess.Popen(["sleep", "300"], env={**os.environ, TAG_VARIABLE: journal.tag(entry)},
                             start_new_session=True)
    journal.update(entry, {"pid": child.pid, "pgid": child.pid})
    journal.close()  # the daemon "died": the entry stays open
    root = RootProcess(state, host="here")
    try:
        lines = root.recover()
        assert child.wait(30) is not None
        assert any(line.startswith("old: stopped process group") for line in lines)
        assert not (state / "apps" / "old").exists()
        assert root.diagnostics()["recovery"] == lines
    finally:
        root.close()


def test_a_state_directory_serves_one_daemon(root: RootProcess) -> None:
    with pytest.raises(DaemonError, match="in use by another sfdaemon"):
        RootProcess(root.state_dir)


def test_diagnostics_is_plain_data(root: RootProcess) -> None:
    import json

    data = root.diagnostics()
    assert json.loads(json.dumps(data)) == data
    assert data["rss"] > 0 and len(data["load"]) == 3 and data["api"] == API_VERSION
    assert psutil.Process().pid == data["pid"]


def test_only_the_remote_module_imports_pyro5() -> None:
    importers = []
    for path in (REPO / "sfpy").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == "Pyro5" or name.startswith("Pyro5.") for name in names):
                importers.append(path.relative_to(REPO).as_posix())
    assert sorted(set(importers)) == ["sfpy/engine/remote.py"]


@pytest.mark.integration
def test_a_raw_pyro5_client_written_from_docs_api(daemon, tmp_path: Path) -> None:
    """Only Pyro5 and docs/api.md: hello, deploy, follow, list, tree, terminate."""
    text = description(tmp_path, "sfConfig extends Compound { a extends Compound; }")
    script = """
import sys, Pyro5.api
text = sys.stdin.read()
with Pyro5.api.Proxy("PYRO:rootProcess@127.0.0.2:3800") as daemon:
    assert daemon.hello(1)["api"] == 1
    assert daemon.hello(2)["error"]["code"] == "version"
    op = daemon.deploy("raw", text, "my-request-1")["operation"]
    since, lines = 0, []
    while True:
        view = daemon.operation(op, since, 10)
        lines += view["lines"]; since = view["next"]
        if view["done"]:
            break
    assert view["outcome"]["exit"] == 0, view
    assert daemon.deploy("raw", text, "my-request-1")["operation"] == op
    assert daemon.deploy("raw", text, "my-request-2")["error"]["code"] == "in-use"
    assert [a["name"] for a in daemon.list()["applications"]] == ["raw"]
    assert daemon.tree("raw")["tree"]["children"][0]["state"] == "STARTED"
    op = daemon.terminate("raw", False, False, "done", "my-request-3")["operation"]
    while not (view := daemon.operation(op, 0, 10))["done"]:
        pass
    assert view["outcome"]["exit"] == 0 and daemon.list()["applications"] == []
    assert daemon.ping("raw")["error"]["code"] == "unknown"
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], input=text, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
