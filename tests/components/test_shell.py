"""ShellRunner and the BashShell service: argument vectors never go through a shell, command
lines go to bash as one argument, environment/directory/timeouts, process groups stopped,
every command logged with its output and exit code."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import psutil
import pytest
from shell_support import gone, own_children, wait_gone, write_description

from sfpy.components.shell import (
    BashShell,
    CommandFailed,
    Result,
    ShellError,
    ShellRunner,
)
from sfpy.engine import Process, State, TerminationRecord
from sfpy.language import load

LOG = logging.getLogger("sfpy.test.shell")


@pytest.fixture
def runner() -> ShellRunner:
    shell = ShellRunner(LOG, grace=0.5)
    yield shell
    shell.close()


@pytest.fixture(autouse=True)
def no_leftover_children():
    before = own_children()
    yield
    deadline = time.monotonic() + 3
    while own_children() - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert own_children() - before == set(), "a child process was left behind (or not reaped)"


def wait_running(argv: list[str], timeout: float = 10) -> bool:
    """Wait until a child process of this one runs ``argv`` (started, not merely asked for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process().children(recursive=True):
            try:
                if child.cmdline() == argv:
                    return True
            except psutil.Error:
                continue
        time.sleep(0.01)
    return False


def test_an_argument_vector_is_never_interpreted_by_a_shell(runner, tmp_path):
    result = runner.run(["printf", "%s|", "$(touch pwned)", "a b", ";", "*"], cwd=str(tmp_path))
    assert result.ok and result.stdout == "$(touch pwned)|a b|;|*|"
    assert not (tmp_path / "pwned").exists()


def test_a_command_line_is_one_argument_to_bash(runner):
    result = runner.run("echo $((1 + 2)) | tr 3 x; printf '%s\\n' \"two words\"")
    assert result.command[:2] == ["bash", "-c"] and len(result.command) == 3
    assert result.stdout == "x\ntwo words\n"


def test_environment_and_working_directory(tmp_path):
    shell = ShellRunner(LOG, env={"BASE": "b"}, cwd=str(tmp_path))
    assert shell.run("echo $BASE $EXTRA; pwd", env={"EXTRA": "e"}).stdout == f"b e\n{tmp_path}\n"
    assert shell.run(["sh", "-c", "echo $EXTRA"], env=["EXTRA=from-vector"]).stdout == "from-vector\n"
    assert shell.run(["pwd"], cwd="/").stdout == "/\n"
    with pytest.raises(ShellError, match="NAME=value"):
        shell.run("true", env=["no-equals-sign"])


def test_exit_code_stderr_and_check(runner):
    result = runner.run("echo partial; echo oops >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr, result.ok) == (3, "partial\n", "oops\n", False)
    with pytest.raises(CommandFailed, match="exited with code 3: oops") as failure:
        result.check()
    assert failure.value.result is result
    with pytest.raises(CommandFailed):
        runner.run(["false"], check=True)


def test_a_missing_program_is_exit_127_not_a_crash(runner):
    result = runner.run(["/no/such/program", "x"])
    assert result.exit_code == 127 and "No such file" in result.stderr


def test_a_timeout_stops_the_whole_process_group(runner, tmp_path):
    began = time.monotonic()
    result = runner.run("sleep 30 & echo $! > bg; sleep 30", timeout=0.3, cwd=str(tmp_path))
    took = time.monotonic() - began
    assert result.timed_out and not result.ok and "timed out" in result.describe()
    assert took < 2.0
    assert wait_gone(int((tmp_path / "bg").read_text()))


def test_sigkill_follows_when_sigterm_is_ignored(runner):
    began = time.monotonic()
    result = runner.run("trap '' TERM; sleep 30", timeout=0.2)
    assert result.timed_out and result.exit_code == -9
    assert time.monotonic() - began < 0.2 + 0.5 + 1.0


def test_processes_a_finished_command_left_behind_are_stopped(runner):
    result = runner.run("sleep 30 & echo $!")
    assert result.ok
    assert wait_gone(int(result.stdout))


def test_run_script_lines_share_one_bash_and_stop_at_the_first_failure(runner, tmp_path):
    result = runner.run_script([f"cd {tmp_path}", "pwd", "false", "echo never"])
    assert result.exit_code == 1 and result.stdout == f"{tmp_path}\n"
    assert runner.run_script("false; echo a single line goes on").ok


def test_one_at_a_time_unless_parallel():
    def two_at_once(shell: ShellRunner) -> float:
        threads = [threading.Thread(target=shell.run, args=(["sleep", "0.3"],)) for _ in range(2)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - began

    assert two_at_once(ShellRunner(LOG)) >= 0.6
    assert two_at_once(ShellRunner(LOG, parallel=True)) < 0.55


def test_every_command_its_output_and_exit_code_are_logged(runner, caplog):
    caplog.set_level(logging.INFO, logger="sfpy.test.shell")
    runner.run(["echo", "hello"], caller="sfConfig:x")
    runner.run("echo bad >&2; exit 4")
    text = caplog.text
    assert "run for sfConfig:x: echo hello" in text
    assert "out: hello" in text and "exit 0" in text
    assert "err: bad" in text
    failed = [r for r in caplog.records if "exited with code 4" in r.getMessage()]
    assert failed and failed[0].levelno == logging.WARNING


def test_close_stops_running_commands_and_refuses_new_ones():
    shell = ShellRunner(LOG, grace=0.5)
    results: list[Result] = []
    thread = threading.Thread(target=lambda: results.append(shell.run(["sleep", "30"])))
    thread.start()
    assert wait_running(["sleep", "30"])
    shell.close()
    thread.join(3)
    assert results and results[0].killed and not results[0].ok
    with pytest.raises(ShellError, match="terminated"):
        shell.run(["true"])


def test_close_between_spawn_and_registration_still_stops_the_command(monkeypatch):
    """The window CI found: close() runs after the child exec'd but before the runner
    registered it. The command must still be stopped, not run on unseen."""
    from sfpy.host import processes

    shell = ShellRunner(LOG, grace=0.5)
    register = processes.register

    def close_first(process, description):
        shell.close()
        register(process, description)

    monkeypatch.setattr(processes, "register", close_first)
    began = time.monotonic()
    result = shell.run(["sleep", "30"])
    assert result.killed and not result.ok
    assert time.monotonic() - began < 10


# -- the BashShell component -------------------------------------------------------------------
def test_bash_shell_component_runs_commands_for_others(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sfpy.component")
    path = write_description(tmp_path, f"""
        sfConfig extends Compound {{
            shell extends BashShell {{
                dir "{tmp_path}";
                envProperties ["GREETING=hello", "EMPTY="];
                timeout 1;
            }}
        }}
    """)
    process = Process("shellTest")
    try:
        app = process.deploy(load(str(path)))
        shell = app.sf_resolve("shell")
        assert isinstance(shell, BashShell)
        result = shell.run("echo $GREETING from $(pwd); echo \"[$EMPTY]\"")
        assert result.stdout == f"hello from {tmp_path}\n[]\n"
        assert shell.run(["sleep", "5"]).timed_out  # the shell's timeout (seconds)
        assert shell.run(["sleep", "0.1"], timeout=0).ok  # a call may lift it
        assert [r.command[-1] for r in shell.history][-1] == "0.1"
        messages = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("sfConfig:shell: run (in ") and m.endswith("echo \"[$EMPTY]\"")
                   for m in messages), messages
        assert f"sfConfig:shell: [{result_pid(messages)}] out: hello from {tmp_path}" in messages

        busy: list[Result] = []
        thread = threading.Thread(target=lambda: busy.append(shell.run(["sleep", "30"], timeout=0)))
        thread.start()
        assert wait_running(["sleep", "30"])
        app.sf_terminate(TerminationRecord.normal("done"))
        assert app.wait_terminated(10) is not None
        thread.join(5)
        assert busy and busy[0].killed
        assert shell.state is State.TERMINATED
        with pytest.raises(ShellError, match="terminated"):
            shell.run(["true"])
    finally:
        process.shutdown(10)


def result_pid(messages: list[str]) -> str:
    """The pid of the first command in the log (``… [1234] out: …``)."""
    first = next(m for m in messages if "] out: " in m)
    return first.split("[", 1)[1].split("]", 1)[0]


def test_bash_shell_rejects_a_missing_directory(tmp_path):
    path = write_description(tmp_path, f'sfConfig extends BashShell {{ dir "{tmp_path}/nope"; }}')
    process = Process("shellTest")
    try:
        from sfpy.engine import DeploymentError

        with pytest.raises(DeploymentError, match="no such directory"):
            process.deploy(load(str(path)))
    finally:
        process.shutdown(10)


def test_helpers_are_safe_on_processes_that_already_ended(runner):
    result = runner.run(["true"])
    assert result.ok and gone(99999999)
    assert isinstance(Path(__file__), Path)
