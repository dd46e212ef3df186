"""sfrun and signals: SIGHUP terminates cleanly; a second signal stops every process group."""

from __future__ import annotations

import signal

import pytest
from sfrun_support import Sfrun, running, wait_for, write_app


def test_sighup_terminates_cleanly_and_exits_0(tmp_path):
    pid_file, made = tmp_path / "pid", tmp_path / "made"
    path = write_app(
        tmp_path,
        f'p extends Sleeper {{ pidFile "{pid_file}"; }}\nf extends Maker {{ path "{made}"; }}',
    )
    sfrun = Sfrun("--run-dir", str(tmp_path / "r1"), str(path))
    try:
        wait_for(lambda: pid_file.exists() and made.exists(), what="the run to start")
        pid = int(pid_file.read_text())
        sfrun.child.send_signal(signal.SIGHUP)
        assert sfrun.wait() == 0, sfrun.stderr
    finally:
        sfrun.close()
    assert "sfrun received SIGHUP" in sfrun.stderr
    assert not running(pid) and not made.exists()  # the terminate hooks ran
    assert not (tmp_path / "r1").exists()


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_second_signal_stops_every_process_group_and_exits_6(tmp_path, second):
    pid_file, made, marker = tmp_path / "pid", tmp_path / "made", tmp_path / "terminating"
    # terminated in reverse order: the hanging cleanup (last) holds the others up
    path = write_app(
        tmp_path,
        f'p extends Sleeper {{ pidFile "{pid_file}"; }}\n'
        f'f extends Maker {{ path "{made}"; }}\n'
        f'h extends Slow {{ marker "{marker}"; seconds 300; }}',
    )
    run_dir = tmp_path / "r1"
    sfrun = Sfrun("--run-dir", str(run_dir), str(path))
    try:
        wait_for(lambda: pid_file.exists() and made.exists(), what="the run to start")
        pid = int(pid_file.read_text())
        sfrun.child.send_signal(signal.SIGTERM)
        wait_for(marker.exists, what="the hanging terminate hook")
        assert sfrun.child.poll() is None
        sfrun.child.send_signal(second)
        assert sfrun.wait(30) == 6, sfrun.stderr
    finally:
        sfrun.close()
    assert f"{second.name} again: stopping every process group" in sfrun.stderr
    assert not running(pid)  # stopped before sfrun exited, though its terminate hook never ran
    assert "may be left:" in sfrun.stderr
    assert f"file {made} of sfConfig:f" in sfrun.stderr  # a file is named, not removed
    assert f"sfrun --recover --run-dir {run_dir}" in sfrun.stderr
    assert made.exists()
