"""The journal hook: every process group is recorded before it starts, tagged in its
environment, completed with pid/pgid/creation time once started, and closed only once the
whole group is gone; the same for BashProcess, Script and TouchFile in a run."""

from __future__ import annotations

import logging
from pathlib import Path

import psutil
import pytest
from host_support import FakeJournal, running, wait_for

from sfpy.engine import Process, TerminationRecord
from sfpy.host.runner import JournalLike, ShellRunner
from sfpy.language import load

LOG = logging.getLogger("sfpy.test.host")
HEADER = ('#include "org/smartfrog/components.sf"\n'
          '#include "org/smartfrog/services/shellscript/components.sf"\n'
          '#include "org/smartfrog/services/filesystem/touchfile.sf"\n')


pytestmark = pytest.mark.usefixtures("no_leftover_children")


@pytest.fixture
def process():
    proc = Process("journalHook")
    proc.journal = FakeJournal()  # until Process takes journal=: what components look up
    yield proc
    proc.shutdown(10)


def deploy(process: Process, tmp_path: Path, body: str):
    path = tmp_path / "app.sf"
    path.write_text(HEADER + body, encoding="utf-8")
    return process.deploy(load(str(path)))


def test_the_fake_is_a_journal_as_the_runner_wants_one():
    assert isinstance(FakeJournal(), JournalLike)


def test_a_command_is_recorded_before_it_starts_tagged_and_closed_when_its_group_is_gone(
        tmp_path):
    left_running: list[bool] = []
    journal = FakeJournal(on_done=lambda entry, data: left_running.append(
        running(int((tmp_path / "bg").read_text()))))
    runner = ShellRunner(LOG, journal=journal, owner="sfConfig:shell", grace=0.5)
    result = runner.run("sleep 30 & echo $! > bg; echo $SFPY_TAG", cwd=str(tmp_path),
                        caller="sfConfig:s")
    assert result.ok
    assert journal.names() == ["add", "update", "done"]
    _, entry, kind, owner, data = journal.calls[0]
    assert (kind, owner, data) == ("process-group", "sfConfig:s",
                                   {"argv": result.command, "cwd": str(tmp_path)})
    assert result.stdout == f"{journal.tag(entry)}\n"  # the child carries its tag
    update = journal.calls[1][2]
    assert update["pid"] == update["pgid"] == result.pid
    assert update["create_time"] == pytest.approx(
        psutil.Process().create_time(), abs=10**6)  # a real creation time, seconds since 1970
    assert update["create_time"] > 1e9
    assert left_running == [False]  # done only once the leftover `sleep 30 &` was stopped
    runner.run(["true"])
    assert journal.calls[3][3] == "sfConfig:shell"  # the runner's owner without a caller


def test_a_program_that_cannot_start_is_added_and_done_without_a_pid():
    journal = FakeJournal()
    result = ShellRunner(LOG, journal=journal).run(["/no/such/program"])
    assert result.exit_code == 127
    assert journal.names() == ["add", "done"]


def test_a_bash_process_is_journalled_and_closed_when_stopped(tmp_path, process):
    app = deploy(process, tmp_path, 'sfConfig extends BashProcess { cmd "exec sleep 60"; }')
    journal = process.journal
    pid = app.sf_resolve("pid")
    assert journal.names() == ["add", "update"]
    entry = journal.calls[0][1]
    assert journal.entries[entry]["kind"] == "process-group"
    assert journal.entries[entry]["owner"] == "sfConfig"
    assert journal.entries[entry]["pid"] == pid
    # /proc shows the parent's environment until the child has exec'd: wait for that
    assert wait_for(lambda: psutil.Process(pid).environ().get("SFPY_TAG") == journal.tag(entry))
    app.sf_terminate(TerminationRecord.normal("stop"))
    assert app.wait_terminated(10) is not None
    assert journal.names() == ["add", "update", "done"] and not running(pid)


def test_a_script_journals_each_of_its_scripts(tmp_path, process):
    app = deploy(process, tmp_path, """
        sfConfig extends Script {
            deployScript "true"; startScript "true"; terminateScript "true";
        }""")
    app.sf_terminate(TerminationRecord.normal("stop"))
    assert app.wait_terminated(10) is not None
    journal = process.journal
    # The terminate script is recorded first (recovery runs it if the run dies), then each
    # command's process group; the terminate script's entry is done once it ran.
    assert journal.names() == ["add", *(["add", "update", "done"] * 3), "done"]
    assert journal.calls[0][2] == "script-cleanup"
    assert {data["owner"] for data in journal.entries.values()} == {"sfConfig"}
    assert all(data["done"] for data in journal.entries.values())


def test_touch_file_records_the_file_it_makes_and_keeps(tmp_path, process):
    made = tmp_path / "sub" / "made"
    deploy(process, tmp_path, f'sfConfig extends TouchFile {{ filename "{made}"; }}')
    journal = process.journal
    assert journal.calls[0][2:] == ("file", "sfConfig", {"path": str(made)})
    assert journal.names() == ["add", "done"] and made.exists()


def test_touching_a_file_that_exists_makes_no_journal_entry(tmp_path, process):
    existing = tmp_path / "there"
    existing.write_text("")
    deploy(process, tmp_path, f'sfConfig extends TouchFile {{ filename "{existing}"; }}')
    assert existing.exists()
    assert process.journal.calls == []
