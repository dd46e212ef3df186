"""Scripts: a vector's failure names the failing line, on one line; a failing terminate
script is failed cleanup (raised after its private runner closed), and the lifecycle steps'
commands carry their script's name as label."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from host_support import wait_for

from sfpy.engine import DeploymentError, Process, TerminationRecord
from sfpy.host.runner import ShellRunner
from sfpy.language import load

LOG = logging.getLogger("sfpy.test.host")
HEADER = ('#include "org/smartfrog/components.sf"\n'
          '#include "org/smartfrog/services/shellscript/components.sf"\n')


pytestmark = pytest.mark.usefixtures("no_leftover_children")


@pytest.fixture
def process():
    proc = Process("hostScripts")
    yield proc
    proc.shutdown(10)


def deploy(process: Process, tmp_path: Path, body: str):
    path = tmp_path / "app.sf"
    path.write_text(HEADER + body, encoding="utf-8")
    return process.deploy(load(str(path)))


def test_a_vector_failure_names_the_failing_line_on_one_line(tmp_path):
    runner = ShellRunner(LOG)
    result = runner.run_script([f"cd {tmp_path}", "echo one", "test -e missing", "echo never"])
    assert result.exit_code == 1 and result.stdout == "one\n" and result.stderr == ""
    assert result.failed_line == "test -e missing (line 3 of 4)"
    assert result.describe() == "test -e missing (line 3 of 4) exited with code 1"
    assert "trap" not in " ".join(result.command)  # the record shows the script as given


def test_a_failure_inside_a_block_names_its_own_line():
    result = ShellRunner(LOG).run_script(["if true; then", "  false", "fi", "echo never"])
    assert result.failed_line == "false (line 2 of 4)"


def test_an_explicit_exit_names_no_line_but_stays_on_one_line():
    result = ShellRunner(LOG).run_script(["echo one", "exit 3", "echo never"])
    assert result.exit_code == 3 and result.failed_line is None
    assert result.describe() == "echo one … (3 lines) exited with code 3"


def test_a_successful_vector_and_a_single_line_are_unchanged():
    runner = ShellRunner(LOG)
    assert runner.run_script(["true", "echo ok"]).stdout == "ok\n"
    single = runner.run_script("false; echo a single line goes on")
    assert single.ok and single.failed_line is None


def test_a_failing_start_vector_record_names_the_line(tmp_path, process):
    with pytest.raises(DeploymentError) as failure:
        deploy(process, tmp_path, """
            sfConfig extends Script { startScript ["echo one", "false", "echo never"]; }""")
    description = failure.value.record.description
    assert "\n" not in description
    assert "startScript failed: false (line 2 of 3) exited with code 1" in description


def test_a_failing_terminate_script_is_failed_cleanup(tmp_path, process):
    app = deploy(process, tmp_path, """
        sfConfig extends Script { terminateScript "echo target is busy >&2; exit 32"; }""")
    app.sf_terminate(TerminationRecord.normal("stop"))
    assert app.wait_terminated(10) is not None
    assert len(process.cleanup_failures) == 1
    path, message = process.cleanup_failures[0]
    assert path == "sfConfig"
    assert "terminateScript failed" in message and "exited with code 32: target is busy" in message
    assert app._private is not None and app._private.closed


def test_scripts_run_with_their_names_as_labels(tmp_path, process):
    app = deploy(process, tmp_path, """
        sfConfig extends Compound {
            shell extends BashShell;
            s extends Script {
                shell LAZY PARENT:shell;
                deployScript "true"; startScript "true"; terminateScript "true";
            }
        }""")
    shell = app.sf_resolve("shell")
    assert [r.label for r in shell.history] == ["deployScript", "startScript"]
    app.sf_resolve("s").sf_terminate(TerminationRecord.normal("stop"))
    assert wait_for(lambda: len(shell.history) == 3)
    assert shell.history[-1].label == "terminateScript"
    app.sf_terminate(TerminationRecord.normal("stop"))
    assert app.wait_terminated(10) is not None
