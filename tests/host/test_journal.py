"""The journal: lazy creation, durability, the run lock, the schema version, the cleaners."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from sfpy.host import journal as journal_module
from sfpy.host.journal import (
    DB_NAME,
    LOCK_NAME,
    TAG_VARIABLE,
    CleanupError,
    Entry,
    Journal,
    JournalError,
    RunBusy,
    recover,
    recover_run,
    register_cleaner,
)

REPO = Path(__file__).resolve().parents[2]


def wait_for(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.pop(TAG_VARIABLE, None)
    env.update(extra)
    return env


def tagged(tag: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if (
                process.environ().get(TAG_VARIABLE) == tag
                and process.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_a_run_without_side_effects_writes_no_database(tmp_path):
    run_dir = tmp_path / "run"
    journal = Journal(run_dir)
    assert (run_dir / LOCK_NAME).exists()
    assert not (run_dir / DB_NAME).exists()
    assert journal.open_entries() == [] and not journal.written
    journal.discard()
    assert not run_dir.exists()


def test_add_tag_update_done_and_open_entries(tmp_path):
    journal = Journal(tmp_path / "run", run_id="r1")
    first = journal.add("file", "sfConfig:a", {"path": "/nowhere/a"})
    second = journal.add("process-group", "sfConfig:b", {"command": "sleep 300"})
    assert (tmp_path / "run" / DB_NAME).exists() and journal.written
    assert journal.tag(second) == f"r1:{second}"
    journal.update(second, {"pid": 4242})
    journal.update(second, {"create_time": 1.5})
    assert [e.id for e in journal.open_entries()] == [first, second]
    assert journal.open_entries()[1].data == {
        "command": "sleep 300", "pid": 4242, "create_time": 1.5,
    }
    journal.done(first)
    journal.done(first)  # twice: nothing more
    journal.update(first, {"late": True})  # an entry already done: ignored
    assert [e.id for e in journal.open_entries()] == [second]
    with pytest.raises(JournalError, match="no journal entry 99"):
        journal.update(99, {})
    with pytest.raises(JournalError, match="still has 1 open"):
        journal.discard()
    journal.close()
    # what is on disk is what was recorded
    adopted = Journal.adopt(tmp_path / "run")
    assert adopted.run_id == "r1"
    (entry,) = adopted.open_entries()
    assert (entry.id, entry.kind, entry.owner, entry.tag) == (second, "process-group",
                                                              "sfConfig:b", f"r1:{second}")
    assert entry.data["pid"] == 4242
    adopted.close()


def test_the_database_is_in_wal_mode_with_the_schema_version(tmp_path):
    journal = Journal(tmp_path / "run")
    journal.add("file", "a", {"path": "/nowhere"})
    db = sqlite3.connect(tmp_path / "run" / DB_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == journal_module.SCHEMA_VERSION
    db.close()
    journal.close()


def test_only_add_waits_for_the_disk_update_and_done_do_not(tmp_path, monkeypatch):
    """update and done are committed with synchronous=NORMAL, and the connection is back to
    FULL for the next add, which carries them to the disk (the WAL is one file)."""
    journal = Journal(tmp_path / "run")
    entry = journal.add("file", "a", {"path": "/nowhere"})
    db = journal._database()
    levels = []
    real = journal._write_lazily

    def spy(sql, params):
        real(sql, params)
        levels.append(db.execute("PRAGMA synchronous").fetchone()[0])

    monkeypatch.setattr(journal, "_write_lazily", spy)
    trace: list[str] = []
    db.set_trace_callback(trace.append)
    journal.update(entry, {"pid": 1})
    journal.done(entry)
    db.set_trace_callback(None)
    assert levels == [2, 2]  # FULL again after each
    assert trace.count("PRAGMA synchronous=NORMAL") == 2
    journal.add("file", "a", {"path": "/elsewhere"})
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
    journal.close()
    # what a crash leaves: another connection sees the update and the done
    other = sqlite3.connect(tmp_path / "run" / DB_NAME)
    row = other.execute("SELECT data, done FROM entry WHERE id = ?", (entry,)).fetchone()
    other.close()
    assert json.loads(row[0])["pid"] == 1 and row[1] is not None


def test_a_kind_without_cleaner_and_data_that_is_not_json_are_refused(tmp_path):
    journal = Journal(tmp_path / "run")
    with pytest.raises(JournalError, match="no cleaner registered for 'volume'"):
        journal.add("volume", "a", {"path": "/dev/vg/x"})
    with pytest.raises(JournalError, match="plain JSON data"):
        journal.add("file", "a", {"path": object()})
    assert not journal.written
    journal.close()


def test_a_newer_schema_is_refused_clearly(tmp_path):
    run_dir = tmp_path / "run"
    Journal(run_dir).close()
    db = sqlite3.connect(run_dir / DB_NAME)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(JournalError, match="schema version 99; this sfpy reads version 1"):
        Journal.adopt(run_dir)
    report = recover_run(run_dir)
    assert not report.clean and "schema version 99" in report.error
    assert (run_dir / DB_NAME).exists()  # left as it is


def test_a_second_journal_on_a_live_run_is_refused(tmp_path):
    journal = Journal(tmp_path / "run")
    with pytest.raises(RunBusy, match="in use by a live run"):
        Journal(tmp_path / "run")
    assert recover_run(tmp_path / "run").live
    journal.close()
    Journal(tmp_path / "run").close()


def test_a_new_run_refuses_a_dead_runs_open_journal_and_replaces_a_finished_one(tmp_path):
    run_dir = tmp_path / "run"
    old = Journal(run_dir, run_id="old")
    entry = old.add("file", "a", {"path": str(tmp_path / "x")})
    old.close()
    with pytest.raises(JournalError, match="run `sfrun --recover --run-dir"):
        Journal(run_dir)
    old = Journal.adopt(run_dir)
    old.done(entry)
    old.close()
    new = Journal(run_dir, run_id="new")
    assert not new.written and new.open_entries() == []
    new.add("file", "b", {"path": str(tmp_path / "y")})
    new.close()
    assert Journal.adopt(run_dir).run_id == "new"


LOCK_HOLDER = """
import sys, time
from sfpy.host.journal import Journal
journal = Journal(sys.argv[1], run_id="held")
journal.add("file", "sfConfig:f", {"path": sys.argv[2]})
open(sys.argv[2], "w").close()
print("ready", flush=True)
time.sleep(300)
"""


def test_recovery_never_touches_a_live_run_and_cleans_it_once_dead(tmp_path):
    parent = tmp_path / "runs"
    target = tmp_path / "made"
    child = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(parent / "r1"), str(target)],
        stdout=subprocess.PIPE, text=True, env=child_env(),
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        (report,) = recover(parent)
        assert report.live and not report.done
        assert target.exists() and (parent / "r1" / DB_NAME).exists()
    finally:
        child.kill()
        child.wait()
    (report,) = recover(parent)
    assert report.clean and report.run_id == "held"
    assert report.done == [f"removed {target}"]
    assert not target.exists() and not (parent / "r1").exists()


def test_file_cleaner(tmp_path):
    clean = journal_module.remove_file_entry
    path = tmp_path / "f"
    path.write_text("x")
    entry = Entry(1, "file", "a", {"path": str(path)}, "t:1")
    assert clean(entry) == f"removed {path}"
    assert not path.exists()
    assert clean(entry) == f"{path} was already gone"
    path.mkdir()
    with pytest.raises(CleanupError, match="is a directory"):
        clean(entry)


def start_tagged(tag: str, script: str = "sleep 300") -> subprocess.Popen:
    return subprocess.Popen(
        ["bash", "-c", script], env=child_env(**{TAG_VARIABLE: tag}), start_new_session=True
    )


def test_process_group_cleaner_finds_the_group_by_tag_when_no_pid_was_written():
    child = start_tagged("run-x:1", "sleep 300 & sleep 300 & wait")
    try:
        wait_for(lambda: len(tagged("run-x:1")) == 3, what="bash and its two sleeps")
        entry = Entry(1, "process-group", "sfConfig:p", {"command": "sleep 300"}, "run-x:1")
        text = journal_module.stop_process_group_entry(entry, grace=5)
        assert text == f"stopped process group {child.pid} (sleep 300)"
        assert child.wait(10) == -signal.SIGTERM
        assert tagged("run-x:1") == []
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def test_process_group_cleaner_by_pid_and_create_time_and_sigkill_after_grace():
    # no tag in this one's environment (as if it had cleared it): pid + create_time find it
    child = subprocess.Popen(
        ["bash", "-c", "trap '' TERM; while :; do sleep 0.1; done"],
        env=child_env(), start_new_session=True,
    )
    try:
        wait_for(lambda: psutil.Process(child.pid).children(), what="the loop to run")
        created = psutil.Process(child.pid).create_time()
        entry = Entry(1, "process-group", "sfConfig:p",
                      {"pid": child.pid, "create_time": created}, "other:1")
        began = time.monotonic()
        text = journal_module.stop_process_group_entry(entry, grace=0.5)
        assert text.startswith(f"stopped process group {child.pid} (bash -c")
        assert child.wait(10) == -signal.SIGKILL
        assert time.monotonic() - began >= 0.5
        # a wrong create_time (a pid reused by someone else) is not touched
        other = subprocess.Popen(["sleep", "300"], start_new_session=True)
        try:
            wrong = Entry(2, "process-group", "x", {"pid": other.pid, "create_time": 1.0}, "o:2")
            assert journal_module.stop_process_group_entry(wrong).endswith("was already gone")
            assert other.poll() is None
        finally:
            other.kill()
            other.wait()
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def test_a_kind_registered_elsewhere_is_found_again_through_its_module(tmp_path, monkeypatch):
    module = tmp_path / "sfpy_test_volumes.py"
    module.write_text(textwrap.dedent("""
        from sfpy.host.journal import register_cleaner
        def remove(entry):
            return f"removed volume {entry.data['name']}"
        register_cleaner("test-volume", remove)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import sfpy_test_volumes  # noqa: F401 - registers the kind

    journal = Journal(tmp_path / "run")
    journal.add("test-volume", "sfConfig:disk", {"name": "vg/disk1"})
    journal.close()
    # a fresh process: the kind is not registered until its module is imported again
    monkeypatch.delitem(journal_module._cleaners, "test-volume")
    monkeypatch.delitem(sys.modules, "sfpy_test_volumes")
    report = recover_run(tmp_path / "run")
    assert report.clean and report.done == ["removed volume vg/disk1"]


def test_a_failing_cleaner_leaves_the_entry_open_and_the_run_directory(tmp_path, monkeypatch):
    def refuse(entry):
        raise OSError("target is busy")

    monkeypatch.setitem(journal_module._cleaners, "test-busy", refuse)
    journal = Journal(tmp_path / "run")
    journal.add("test-busy", "sfConfig:m", {"mount": "/mnt/x"})
    journal.close()
    report = recover_run(tmp_path / "run")
    assert not report.clean
    assert report.left == ['test-busy {"mount": "/mnt/x"} of sfConfig:m: OSError: target is busy']
    register_cleaner("test-busy", lambda entry: "unmounted /mnt/x")
    report = recover_run(tmp_path / "run")
    assert report.clean and report.done == ["unmounted /mnt/x"]
    assert not (tmp_path / "run").exists()


# -- a crash between any two writes -----------------------------------------------------------
DRIVER = """
import os, subprocess, sys, time
from sfpy.host import journal as jm

count = 0
def pause(label):
    global count
    print(count, label, flush=True)
    count += 1
    sys.stdin.readline()

jm._after_write = lambda label: pause("wrote " + label)
run_dir, path = sys.argv[1], sys.argv[2]
journal = jm.Journal(run_dir, run_id="crash")
pause("begin")
f = journal.add("file", "sfConfig:f", {"path": path})
open(path, "w").close(); pause("file made")
g = journal.add("process-group", "sfConfig:p", {"command": "sleep 300"})
env = dict(os.environ, SFPY_TAG=journal.tag(g))
child = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
pause("spawned")
journal.update(g, {"pid": child.pid})
os.unlink(path); pause("file removed")
journal.done(f)
child.kill(); child.wait(); pause("stopped")
journal.done(g)
journal.discard(); pause("end")
"""
POINTS = 12  # the pauses above and after each write, 0 ("begin") to 11 ("end")


@pytest.mark.parametrize("point", range(POINTS))
def test_a_crash_between_any_two_writes_is_recovered(tmp_path, point):
    run_dir, path = tmp_path / "run", tmp_path / "made"
    child = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(run_dir), str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env(),
    )
    assert child.stdin is not None and child.stdout is not None
    labels = []
    try:
        while True:
            line = child.stdout.readline()
            assert line, f"the driver ended early after {labels}"
            number, label = line.split(" ", 1)
            labels.append(label.strip())
            if int(number) == point:
                child.send_signal(signal.SIGKILL)
                break
            child.stdin.write("\n")
            child.stdin.flush()
    finally:
        child.kill()
        child.wait()
    file_left = path.exists()
    processes_left = tagged("crash:2")
    reports = recover(tmp_path)
    assert not path.exists() and tagged("crash:2") == []
    assert not run_dir.exists()
    assert all(report.clean for report in reports), reports
    done = [line for report in reports for line in report.done]
    assert (f"removed {path}" in done) == file_left, (labels, done)
    assert any(line.startswith("stopped process group") for line in done) == bool(
        processes_left
    ), (labels, done)
    if point == POINTS - 1:
        assert labels[-1] == "end" and reports == []


KILLED_MID_WRITE = """
import sys
from sfpy.host.journal import Journal
journal = Journal(sys.argv[1], run_id="storm", synchronous="NORMAL")
n = 0
while True:
    e = journal.add("file", "sfConfig:x", {"path": "/nonexistent/sfpy-%d" % n})
    journal.update(e, {"n": n})
    if n % 2:
        journal.done(e)
    n += 1
    if n == 50:
        print("going", flush=True)
"""


def test_a_kill_at_any_moment_leaves_a_consistent_journal(tmp_path):
    for attempt in range(3):
        run_dir = tmp_path / f"run{attempt}"
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_MID_WRITE, str(run_dir)],
            stdout=subprocess.PIPE, text=True, env=child_env(),
        )
        assert child.stdout is not None and child.stdout.readline() == "going\n"
        time.sleep(0.05 * attempt)  # a different moment each time; not waiting for a result
        child.kill()
        child.wait()
        db = sqlite3.connect(run_dir / DB_NAME)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT id, data, done FROM entry ORDER BY id").fetchall()
        db.close()
        assert [row[0] for row in rows] == list(range(1, len(rows) + 1))
        for row in rows[:-1]:  # every entry but the last one is complete
            number = json.loads(row[1])["n"]
            assert (row[2] is not None) == bool(number % 2)
        report = recover_run(run_dir)
        assert report.clean and not run_dir.exists()
