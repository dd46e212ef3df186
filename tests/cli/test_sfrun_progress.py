"""What sfrun says it waits for, from ``process.activities()`` (a stub process here; the
engine provides the real one)."""

from __future__ import annotations

import time
from collections import namedtuple

import pytest
from sfrun_support import run

from sfpy.cli import sfrun
from sfpy.host.journal import JournalError

Activity = namedtuple("Activity", "path phase what since")


class StubProcess:
    def __init__(self) -> None:
        self.current: list[Activity] = []

    def activities(self) -> list[Activity]:
        return list(self.current)


@pytest.fixture
def progress():
    process = StubProcess()
    return process, sfrun._Progress(process, began=100.0, quiet=False)


def test_a_long_activity_gets_one_running_line_with_the_time_it_began(progress, capsys):
    process, printer = progress
    process.current = [Activity("sfConfig:disk", "deploy", "mkfs.ext4 (pid 4242)", 103.1)]
    printer.tick(False, now=103.5)  # not long yet
    assert capsys.readouterr().err == ""
    printer.tick(False, now=104.2)
    printer.tick(False, now=110.0)  # once only
    assert capsys.readouterr().err == "sfConfig:disk  running mkfs.ext4 (pid 4242)  3.10s\n"
    process.current.append(Activity("sfConfig:vm", "start", "boot (pid 4250)", 109.0))
    printer.tick(False, now=110.0)
    assert capsys.readouterr().err == "sfConfig:vm  running boot (pid 4250)  9.00s\n"


def test_while_terminating_it_says_what_it_waits_for_every_five_seconds(progress, capsys):
    process, printer = progress
    process.current = [Activity("sfConfig:f2", "terminate", "terminateScript (pid 4242)", 200.0)]
    printer.tick(True, now=200.5)
    assert capsys.readouterr().err == ""
    printer.tick(True, now=201.0)
    assert capsys.readouterr().err == "waiting for sfConfig:f2 terminateScript (pid 4242), 1 s\n"
    printer.tick(True, now=204.0)
    assert capsys.readouterr().err == ""
    printer.tick(True, now=206.0)
    printer.tick(True, now=207.0)
    assert capsys.readouterr().err == "waiting for sfConfig:f2 terminateScript (pid 4242), 6 s\n"
    # a terminate phase is waited for even before sfrun asked (a failed deploy cleaning up)
    printer.next_report = 0.0
    printer.tick(False, now=212.0)
    assert capsys.readouterr().err == "waiting for sfConfig:f2 terminateScript (pid 4242), 12 s\n"


def test_quiet_and_an_engine_without_activities_print_nothing(capsys):
    process = StubProcess()
    process.current = [Activity("sfConfig:a", "start", "sleep (pid 1)", 0.0)]
    sfrun._Progress(process, 0.0, quiet=True).tick(False, now=50.0)
    sfrun._Progress(object(), 0.0, quiet=False).tick(True, now=50.0)
    assert capsys.readouterr().err == ""


def test_the_default_run_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert sfrun.default_runs_folder() == tmp_path / "sfpy" / "runs"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr(sfrun.os, "geteuid", lambda: 0)
    assert str(sfrun.default_runs_folder()) == "/run/sfpy/runs"
    monkeypatch.setattr(sfrun.tempfile, "gettempdir", lambda: str(tmp_path))
    uid = sfrun.os.getuid()
    monkeypatch.setattr(sfrun.os, "geteuid", lambda: uid + 1 if uid == 0 else uid)
    if uid == 0:  # the folder would be made by root: not "ours" for the other uid
        with pytest.raises(JournalError, match="not a folder of yours"):
            sfrun.default_runs_folder()
    else:
        folder = sfrun.default_runs_folder()
        assert folder == tmp_path / f"sfpy-{uid}" / "runs"
        assert (tmp_path / f"sfpy-{uid}").stat().st_mode & 0o777 == 0o700


SHELL_APP = (
    '#include "org/smartfrog/components.sf"\n'
    '#include "org/smartfrog/services/shellscript/components.sf"\n'
    "sfConfig extends Compound {{ {body} }}\n"
)


def test_a_long_start_script_gets_a_running_line(tmp_path):
    path = tmp_path / "app.sf"
    path.write_text(SHELL_APP.format(body='s extends Script { startScript "sleep 2"; }'))
    result = run("--terminate-after", "0", str(path))
    assert result.returncode == 0, result.stderr
    assert any(
        line.startswith("sfConfig:s  running ") and "sleep 2" in line
        for line in result.stderr.splitlines()
    ), result.stderr


def test_a_hanging_terminate_script_is_waited_for_bounded_and_exits_6(tmp_path):
    path = tmp_path / "app.sf"
    path.write_text(SHELL_APP.format(body='s extends Script { terminateScript "sleep 300"; }'))
    began = time.monotonic()
    result = run("--terminate-after", "0", "--terminate-timeout", "3", str(path))
    assert result.returncode == 6, result.stderr
    assert time.monotonic() - began < 60
    assert "waiting for sfConfig:s " in result.stderr
    assert "cleanup failed in:" in result.stderr and "sfConfig:s" in result.stderr
