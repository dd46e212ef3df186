"""Script and BashProcess in the lifecycle, observed from outside: marker files written by
scripts, exit codes of sfrun, processes killed with ``kill -9``, timings measured."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from shell_support import (
    gone,
    own_children,
    sfrun_command,
    sfrun_environment,
    wait_gone,
    write_description,
)

from sfpy.engine import DeploymentError, Process, State, TerminationRecord
from sfpy.language import load


def sfrun(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(sfrun_command(*args), capture_output=True, text=True, timeout=timeout,
                          env=sfrun_environment())


def marker_script(name: str, log: Path, extra: str = "") -> str:
    """A Script writing `<step> <name>` to ``log`` in each of its lifecycle steps."""
    return f"""
        {name} extends Script {{
            deployScript "echo deploy {name} >> {log}";
            startScript "echo start {name} >> {log}";
            terminateScript "echo terminate {name} >> {log}";
            {extra}
        }}"""


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def process():
    proc = Process("shellLifecycle")
    yield proc
    proc.shutdown(10)


@pytest.fixture(autouse=True)
def no_leftover_children():
    before = own_children()
    yield
    deadline = time.monotonic() + 3
    while own_children() - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert own_children() - before == set(), "a child process was left behind (or not reaped)"


# -- Script, through sfrun ---------------------------------------------------------------------
def test_scripts_show_deploy_all_then_start_all_and_reverse_termination(tmp_path):
    log = tmp_path / "order"
    path = write_description(tmp_path, f"""
        sfConfig extends Compound {{
            shell extends BashShell;
            {marker_script("a", log, "shell LAZY PARENT:shell;")}
            b extends Compound {{
                {marker_script("c", log, "shell LAZY PARENT:PARENT:shell;")}
            }}
            {marker_script("d", log)}
        }}""")
    result = sfrun("--terminate-after", "0", str(path))
    assert result.returncode == 0, result.stderr
    assert read_lines(log) == [
        "deploy a", "deploy c", "deploy d",
        "start a", "start c", "start d",
        "terminate d", "terminate c", "terminate a",
    ]
    assert "Traceback" not in result.stderr


def test_a_third_child_failing_in_deploy_terminates_the_first_two_with_their_scripts(tmp_path):
    log = tmp_path / "order"
    path = write_description(tmp_path, f"""
        sfConfig extends Compound {{
            {marker_script("a", log)}
            {marker_script("b", log)}
            c extends Script {{ deployScript "echo deploy c >> {log}; exit 7"; }}
            {marker_script("d", log)}
        }}""")
    result = sfrun(str(path))
    assert result.returncode == 1
    assert read_lines(log) == ["deploy a", "deploy b", "deploy c", "terminate b", "terminate a"]
    assert "Termination Record: sfConfig:c,  type: abnormal" in result.stderr
    assert "deployScript failed" in result.stderr and "exited with code 7" in result.stderr


def test_a_failing_terminate_script_is_failed_cleanup_and_termination_goes_on(tmp_path):
    log = tmp_path / "order"
    path = write_description(tmp_path, f"""
        sfConfig extends Compound {{
            {marker_script("a", log)}
            b extends Script {{ terminateScript "echo target is busy >&2; exit 32"; }}
        }}""")
    result = sfrun("--terminate-after", "0", str(path))
    assert result.returncode == 6, result.stderr  # cleanup incomplete
    listed = result.stderr.split("cleanup failed in:", 1)[1]
    assert "sfConfig:b: terminate failed: terminateScript failed:" in listed
    assert "exited with code 32: target is busy" in listed
    assert read_lines(log)[-1] == "terminate a"


def test_processes_of_applications_left_running_are_stopped_when_sfrun_exits(tmp_path):
    """A Run launches an application of its own; sfConfig goes on (a second step that waits)
    until the launched process has written its pid, then ends: sfrun stops the launched one
    too. (sfConfig must not end before bash has written the pid, or there is nothing to see.)"""
    path = write_description(tmp_path, f"""
        #include "org/smartfrog/sfcore/workflow/components.sf"
        sfConfig extends Sequence {{
            launch extends Run {{
                newComponentName "leftBehind";
                action extends BashProcess {{ dir "{tmp_path}"; cmd "echo $$ > pid.new; mv pid.new pid; exec sleep 60"; }}
            }}
            stay extends BashProcess {{ cmd "exec sleep 60"; }}
        }}""")
    child = subprocess.Popen(sfrun_command(str(path)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=sfrun_environment())
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "pid").exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (tmp_path / "pid").exists(), "the launched application never wrote its pid"
        left_behind = int((tmp_path / "pid").read_text())
        assert not gone(left_behind)  # running while sfrun runs
        child.send_signal(signal.SIGTERM)  # sfConfig ends normally; leftBehind is left running
        _, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert wait_gone(left_behind)


# -- Script, through the engine API ------------------------------------------------------------
def test_a_failing_start_script_fails_the_start(tmp_path, process):
    path = write_description(tmp_path, """
        sfConfig extends Compound {
            s extends Script { startScript ["echo one", "false", "echo never"]; }
        }""")
    with pytest.raises(DeploymentError) as failure:
        process.deploy(load(str(path)))
    record = failure.value.record
    assert record.id == "sfConfig:s" and "start failed: startScript failed" in record.description


def test_auto_terminate_ends_the_script_once_its_start_script_is_done(tmp_path, process):
    path = write_description(tmp_path, f"""
        sfConfig extends Script {{
            startScript ["cd {tmp_path}", "pwd > where"];
            autoTerminate true;
        }}""")
    app = process.deploy(load(str(path)))
    record = app.wait_terminated(5)
    assert record is not None and record.is_normal
    assert (tmp_path / "where").read_text().strip() == str(tmp_path)


def test_scripts_run_through_the_linked_shell(tmp_path, process):
    path = write_description(tmp_path, """
        sfConfig extends Compound {
            shell extends BashShell { envProperties ["WHO=shared"]; }
            s extends Script { shell LAZY PARENT:shell; startScript "echo $WHO"; }
        }""")
    app = process.deploy(load(str(path)))
    shell = app.sf_resolve("shell")
    assert [r.stdout for r in shell.history] == ["shared\n"]
    assert shell.history[0].command[-1] == "echo $WHO"
    app.sf_terminate(TerminationRecord.normal("done"))
    assert app.wait_terminated(5) is not None


def test_a_script_may_use_a_shell_defined_after_it(tmp_path, process):
    path = write_description(tmp_path, f"""
        sfConfig extends Compound {{
            s extends Script {{ shell LAZY PARENT:shell; deployScript "pwd"; }}
            shell extends BashShell {{ dir "{tmp_path}"; }}
        }}""")
    app = process.deploy(load(str(path)))
    assert [r.stdout for r in app.sf_resolve("shell").history] == [f"{tmp_path}\n"]
    app.sf_terminate(TerminationRecord.normal("done"))
    assert app.wait_terminated(5) is not None


# -- BashProcess -------------------------------------------------------------------------------
def test_a_bash_process_killed_from_outside_fails_its_compound_within_the_liveness_bound(
        tmp_path, process):
    delay, factor = 1, 2  # the schema wants whole seconds
    path = write_description(tmp_path, f"""
        sfConfig extends Compound {{
            sfLivenessDelay {delay}; sfLivenessFactor {factor};
            server extends BashProcess {{ cmd "exec sleep 60"; }}
            other extends Script {{ terminateScript "echo cleaned > {tmp_path}/cleaned"; }}
        }}""")
    app = process.deploy(load(str(path)))
    server = app.sf_resolve("server")
    pid = server.sf_resolve("pid")
    deadline = time.monotonic() + 10
    while psutil.Process(pid).name() != "sleep" and time.monotonic() < deadline:
        time.sleep(0.01)  # until bash has become the command: then the kill hits the server
    assert psutil.Process(pid).name() == "sleep"
    assert app.state is State.STARTED
    killed = time.time()
    os.kill(pid, signal.SIGKILL)
    record = app.wait_terminated(delay * factor * 1.1 + 2)
    assert record is not None
    noticed = app.state_times[State.TERMINATED] - killed
    assert noticed <= delay * factor * 1.1, f"noticed after {noticed:.2f}s"
    assert not record.is_normal and record.id == "sfConfig:server"
    assert "liveness failure" in record.description and "killed by signal 9" in record.description
    assert (tmp_path / "cleaned").read_text() == "cleaned\n"  # the rest was cleaned up


def test_terminating_a_bash_process_stops_its_whole_process_group(tmp_path, process):
    path = write_description(tmp_path, f"""
        sfConfig extends BashProcess {{
            dir "{tmp_path}";
            cmd "sleep 60 & echo $! > background; sleep 60";
        }}""")
    app = process.deploy(load(str(path)))
    leader = app.sf_resolve("pid")
    deadline = time.monotonic() + 5
    while (not (tmp_path / "background").exists()
           or not (tmp_path / "background").read_text().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.02)
    background = int((tmp_path / "background").read_text())
    app.sf_terminate(TerminationRecord.normal("stop"))
    assert app.wait_terminated(10) is not None
    assert wait_gone(leader) and wait_gone(background)


def test_with_terminate_the_exit_of_the_command_ends_the_component(tmp_path, process):
    path = write_description(tmp_path, """
        sfConfig extends Compound {
            ok extends BashProcess { cmd ["true"]; terminate true; }
        }""")
    app = process.deploy(load(str(path)))
    record = app.wait_terminated(5)
    assert record is not None and record.is_normal and record.id == "sfConfig:ok"

    path = write_description(tmp_path, """
        sfConfig extends BashProcess { cmd "echo failing >&2; exit 3"; terminate true; }""",
        "failing.sf")
    app = process.deploy(load(str(path)), "failing")
    record = app.wait_terminated(5)
    assert record is not None and not record.is_normal
    assert "exited with code 3" in record.description
    assert "err: failing" in list(app.output)


def test_an_argument_vector_is_run_without_a_shell_with_env_and_dir(tmp_path, process):
    path = write_description(tmp_path, f"""
        sfConfig extends BashProcess {{
            cmd ["sh", "-c", "echo $GREETING in $(pwd) $0", "$HOME"];
            dir "{tmp_path}";
            envProperties ["GREETING=hi"];
            terminate true;
        }}""")
    app = process.deploy(load(str(path)))
    assert app.wait_terminated(5).is_normal
    assert list(app.output) == [f"out: hi in {tmp_path} $HOME"]
    assert app.sf_resolve("exitCode") == 0


def test_a_bad_command_fails_deployment_clearly(tmp_path, process):
    path = write_description(tmp_path, "sfConfig extends BashProcess { cmd [\"\"]; }")
    with pytest.raises(DeploymentError, match="empty argument vector"):
        process.deploy(load(str(path)))
