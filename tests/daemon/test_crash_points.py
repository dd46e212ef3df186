"""A daemon killed between every two journal writes of one deployment (and of its
termination), then started again:
nothing is left (no process, no file the deployment made, no journal), ``sflist`` tells the
truth, and the same name can be deployed again.

The crash comes from sfdaemon's test hook: with ``SFPY_TEST_MODE=1`` and
``SFPY_TEST_CRASH_AFTER_JOURNAL_WRITES=N`` it sends itself SIGKILL right after its Nth
journal write (``0`` only logs each write, which is how the writes are counted here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psutil
import pytest
from daemon_support import Daemon, environment, made_by_this_run, run, wait_for

pytestmark = pytest.mark.integration

HOST = "127.0.0.2"
NAME = "crash"
#: The journal writes of the deployment below, from the first to the application running:
#: schema with the first note (description), script-cleanup, the start script's process group (add,
#: pid, done), the BashProcess's group (add, pid), note (running).
WRITES = 8
#: Those of its termination: note (terminating), the BashProcess's group done, the
#: terminateScript's process group (add, pid, done), script-cleanup done.
TERMINATION_WRITES = 6


def deployment(tmp_path: Path) -> str:
    path = tmp_path / "crash.sf"
    path.write_text(f"""
        #include "org/smartfrog/components.sf"
        #include "org/smartfrog/services/shellscript/components.sf"
        sfConfig extends Compound {{
            sfLivenessDelay 1;
            s extends Script {{
                startScript "touch {tmp_path}/made";
                terminateScript "rm -f {tmp_path}/made";
            }}
            p extends BashProcess {{ cmd "exec sleep 300"; }}
        }}""", encoding="utf-8")
    return str(path)


def crash_env(limit: int) -> dict[str, str]:
    return {**environment(), "SFPY_TEST_MODE": "1",
            "SFPY_TEST_CRASH_AFTER_JOURNAL_WRITES": str(limit)}


def leftover_processes() -> list[psutil.Process]:
    """Processes made for application NAME (their journal tag starts with its run id)."""
    found = []
    for process in psutil.process_iter():
        try:
            if (process.environ().get("SFPY_TAG", "").startswith(f"{NAME}:")
                    and made_by_this_run(process)):
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def applications() -> dict[str, str]:
    result = run("sflist", HOST, "--json")
    assert result.returncode == 0, result.stderr
    return {app["name"]: app["state"] for app in json.loads(result.stdout)["applications"]}


@pytest.fixture
def crash_daemon(tmp_path: Path):
    made: list[Daemon] = []

    def start(limit: int) -> Daemon:
        daemon = Daemon(HOST, tmp_path / "state", env=crash_env(limit))
        made.append(daemon)
        return daemon.start()

    yield start
    for daemon in made:
        daemon.stop()
        daemon.kill()
        daemon.clean_leftovers()
    for process in leftover_processes():
        process.kill()


def test_the_crash_points_cover_the_deployment(crash_daemon, tmp_path: Path) -> None:
    daemon = crash_daemon(0)  # count only
    assert run("sfstart", HOST, NAME, deployment(tmp_path)).returncode == 0
    writes = re.findall(r"test mode: journal write (\d+) \((\w+)\)", daemon.log)
    assert len(writes) == WRITES, writes
    assert writes[0][1] == "schema" and writes[-1][1] == "note"
    assert run("sfterminate", HOST, NAME).returncode == 0
    writes = re.findall(r"test mode: journal write (\d+) \((\w+)\)", daemon.log)[WRITES:]
    assert len(writes) == TERMINATION_WRITES, writes
    kinds = [kind for _, kind in writes]
    # the "terminating" note, and the last write a "done" (a command of the running
    # application may finish its own entry before the note: the order between them is free)
    assert kinds.count("note") == 1 and kinds[-1] == "done", writes


@pytest.mark.parametrize("limit", range(1, WRITES + 1))
def test_a_crash_after_each_journal_write(crash_daemon, tmp_path: Path, limit: int) -> None:
    daemon = crash_daemon(limit)
    path = deployment(tmp_path)
    started = run("sfstart", HOST, NAME, path)
    assert started.returncode != 0  # the daemon died under it
    assert daemon.process is not None
    assert daemon.process.wait(30) == -9
    daemon.env = environment()  # no crash this time
    daemon.start()
    listed = applications()
    if limit == WRITES:
        # it had started everything and said so: taken back as it was
        assert listed == {NAME: "running"}, daemon.log
        assert len(leftover_processes()) == 1  # the BashProcess, not started again
        assert run("sfterminate", HOST, NAME).returncode == 0
    else:
        assert listed == {}, daemon.log
    assert leftover_processes() == []
    assert not (tmp_path / "made").exists()
    assert not (daemon.state_dir / "apps" / NAME).exists()
    again = run("sfstart", HOST, NAME, path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "made").exists() and len(leftover_processes()) == 1
    assert run("sfterminate", HOST, NAME).returncode == 0
    wait_for(lambda: leftover_processes() == [], 10, what="no process left")
    assert not (tmp_path / "made").exists()


@pytest.mark.parametrize("limit", range(WRITES + 1, WRITES + TERMINATION_WRITES + 1))
def test_a_crash_after_each_journal_write_of_termination(
    crash_daemon, tmp_path: Path, limit: int
) -> None:
    daemon = crash_daemon(limit)
    path = deployment(tmp_path)
    assert run("sfstart", HOST, NAME, path).returncode == 0
    assert run("sfterminate", HOST, NAME).returncode != 0  # the daemon died under it
    assert daemon.process is not None
    assert daemon.process.wait(30) == -9
    daemon.env = environment()
    daemon.start()
    assert applications() == {}, daemon.log  # it was terminating: finished, not re-adopted
    assert leftover_processes() == []
    assert not (tmp_path / "made").exists()
    assert not (daemon.state_dir / "apps" / NAME).exists()
    assert run("sfstart", HOST, NAME, path).returncode == 0
    assert run("sfterminate", HOST, NAME).returncode == 0
