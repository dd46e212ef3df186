"""Process groups: psutil finds a group's members, a group is stopped SIGTERM -> grace ->
SIGKILL, the registry knows every running group, stop_all_groups stops them all at once and
names them, and the atexit hook stops what an exiting Python process left running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from host_support import own_children, running, wait_for, wait_gone

from sfpy.host import processes

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(autouse=True)
def no_leftover_children():
    before = own_children()
    yield
    assert wait_for(lambda: not own_children() - before, 3), "a child was left behind"


def start(script: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", script], cwd=cwd, start_new_session=True)


def test_group_members_are_found_with_psutil(tmp_path):
    leader = start("sleep 30 & echo $! > bg; touch ready; wait", tmp_path)
    try:
        assert wait_for(lambda: (tmp_path / "ready").exists())
        background = int((tmp_path / "bg").read_text())
        assert {p.pid for p in processes.group_members(leader.pid)} == {leader.pid, background}
        assert processes.group_alive(leader.pid)
    finally:
        assert processes.stop_group(leader, 0.5)
    assert processes.group_members(leader.pid) == [] and not processes.group_alive(leader.pid)
    assert wait_gone(background)


def test_stop_group_escalates_to_sigkill_within_the_grace(tmp_path):
    leader = start("trap '' TERM; touch ready; sleep 30", tmp_path)
    assert wait_for(lambda: (tmp_path / "ready").exists())
    began = time.monotonic()
    assert processes.stop_group(leader, 0.3)
    assert time.monotonic() - began < 0.3 + 1.5
    assert leader.returncode == -9


def test_stop_all_groups_stops_every_running_group_and_names_it(tmp_path):
    stubborn = start("trap '' TERM; touch ready; sleep 30", tmp_path)
    plain = start("sleep 30", tmp_path)
    finished = start("true", tmp_path)
    finished.wait()
    processes.register(stubborn, "mkfs.ext4 /dev/loop0")
    processes.register(plain, "sleep 30")
    processes.register(finished, "true")
    assert wait_for(lambda: (tmp_path / "ready").exists())
    began = time.monotonic()
    lines = processes.stop_all_groups(0.5)
    assert time.monotonic() - began < 0.5 + 1.5  # all at once, not one grace each
    assert lines == [f"pid {stubborn.pid}: mkfs.ext4 /dev/loop0", f"pid {plain.pid}: sleep 30"]
    assert stubborn.returncode == -9 and plain.returncode is not None  # reaped
    assert processes.running_groups() == []
    assert processes.stop_all_groups(0.5) == []


def test_the_runner_registers_its_groups_while_they_run(tmp_path):
    import logging
    import threading

    from sfpy.host.runner import ShellRunner

    runner = ShellRunner(logging.getLogger("sfpy.test.host"), grace=0.5)
    thread = threading.Thread(target=runner.run, args=(["sleep", "30"],))
    thread.start()
    assert wait_for(lambda: any(g.description == "sleep 30" for g in processes.running_groups()))
    group = next(g for g in processes.running_groups() if g.description == "sleep 30")
    assert processes.stop_all_groups(0.5) == [f"pid {group.pgid}: sleep 30"]
    thread.join(5)
    assert not thread.is_alive() and processes.running_groups() == []


def test_groups_left_running_are_stopped_when_python_exits(tmp_path):
    program = (
        "import subprocess, sys\n"
        "from sfpy.host import processes\n"
        "p = subprocess.Popen(['sleep', '60'], start_new_session=True)\n"
        "processes.register(p, 'sleep 60')\n"
        "print(p.pid, flush=True)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout)
    assert wait_gone(pid) and not running(pid)
