"""sfrun's run directory and journal: a clean run leaves nothing; kill -9 and --recover."""

from __future__ import annotations

import signal

from sfrun_support import Sfrun, run, running, wait_for, write_app

from sfpy.host.journal import DB_NAME, LOCK_NAME


def test_a_clean_run_removes_its_run_directory(tmp_path):
    path = write_app(tmp_path, f'f extends Maker {{ path "{tmp_path / "made"}"; }}')
    run_dir = tmp_path / "runs" / "r1"
    result = run("--terminate-after", "0", "--run-dir", str(run_dir), str(path))
    assert result.returncode == 0, result.stderr
    assert not run_dir.exists() and not (tmp_path / "made").exists()


def test_the_default_run_directory_is_under_xdg_runtime_dir_and_said_with_v(tmp_path):
    path = write_app(tmp_path, f'a extends Probe {{ out "{tmp_path / "probe"}"; }}')
    result = run("-v", "--terminate-after", "0", str(path), XDG_RUNTIME_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stderr.splitlines() if "run directory" in x)
    assert f"run directory {tmp_path}/sfpy/runs/" in line and "($XDG_RUNTIME_DIR)" in line
    assert list((tmp_path / "sfpy" / "runs").iterdir()) == []  # removed at the clean end


def test_kill_9_then_recover_stops_the_processes_and_removes_the_files(tmp_path):
    pid_file, made = tmp_path / "pid", tmp_path / "made"
    path = write_app(
        tmp_path,
        f'p extends Sleeper {{ pidFile "{pid_file}"; }}\nf extends Maker {{ path "{made}"; }}',
    )
    runs = tmp_path / "runs"
    sfrun = Sfrun("--run-dir", str(runs / "r1"), str(path))
    try:
        wait_for(lambda: pid_file.exists() and made.exists(), what="the pid file and the file")
        pid = int(pid_file.read_text())
        assert running(pid) and made.exists()
        # while it lives, recovery lists it and touches nothing
        live = run("--recover", "--run-dir", str(runs))
        assert live.returncode == 0, live.stderr
        assert "live, not touched" in live.stdout
        assert running(pid) and made.exists()
        sfrun.child.send_signal(signal.SIGKILL)
        assert sfrun.wait() == -signal.SIGKILL
    finally:
        sfrun.close()
    assert running(pid) and made.exists()  # what the dead run left
    assert (runs / "r1" / DB_NAME).exists() and (runs / "r1" / LOCK_NAME).exists()
    result = run("--recover", "--run-dir", str(runs))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"stopped process group {pid} (sleep 300)" in result.stdout
    assert f"removed {made}" in result.stdout
    assert result.stdout.startswith("run 20")  # the run id: when it began
    wait_for(lambda: not running(pid), 10, "the sleep to be gone")
    assert not made.exists() and not (runs / "r1").exists()
    again = run("--recover", "--run-dir", str(runs))
    assert again.returncode == 0 and "no runs in" in again.stdout


def test_what_a_component_left_open_is_cleaned_at_the_end_or_listed_with_exit_6(tmp_path):
    made = tmp_path / "made"
    path = write_app(tmp_path, f'f extends Maker {{ path "{made}"; forget true; }}')
    run_dir = tmp_path / "r1"
    result = run("--terminate-after", "0", "--run-dir", str(run_dir), str(path))
    assert result.returncode == 0, result.stderr
    assert f"cleaned up after sfConfig:f: removed {made}" in result.stderr
    assert not made.exists() and not run_dir.exists()

    # a cleanup that cannot be done: the file became a directory
    body = (f'f extends Maker {{ path "{made}"; forget true; }}\n'
            f'g extends Prim {{ sfClass "test.Probe"; out "{tmp_path / "probe"}"; }}')
    path = write_app(tmp_path, body)
    sfrun = Sfrun("--run-dir", str(run_dir), str(path))
    try:
        wait_for(made.exists, what="the file")
        made.unlink()
        made.mkdir()
        sfrun.child.send_signal(signal.SIGTERM)
        assert sfrun.wait() == 6, sfrun.stderr
    finally:
        sfrun.close()
    assert "left behind by the run:" in sfrun.stderr
    assert f"file {made} of sfConfig:f: {made} is a directory" in sfrun.stderr
    assert f"sfrun --recover --run-dir {run_dir}" in sfrun.stderr
    assert (run_dir / DB_NAME).exists()
    left = run("--recover", "--run-dir", str(run_dir))
    assert left.returncode == 6
    assert f"left: file {made} of sfConfig:f: {made} is a directory" in left.stdout
    made.rmdir()
    assert run("--recover", "--run-dir", str(run_dir)).returncode == 0
    assert not run_dir.exists()


def test_a_run_directory_in_use_is_refused(tmp_path):
    pid_file = tmp_path / "pid"
    path = write_app(tmp_path, f'p extends Sleeper {{ pidFile "{pid_file}"; }}')
    sfrun = Sfrun("--run-dir", str(tmp_path / "r1"), str(path))
    try:
        wait_for(pid_file.exists, what="the pid file")
        second = run("--terminate-after", "0", "--run-dir", str(tmp_path / "r1"), str(path))
        assert second.returncode == 1
        assert f"run directory {tmp_path / 'r1'} is in use by a live run" in second.stderr
        sfrun.child.send_signal(signal.SIGTERM)
        assert sfrun.wait() == 0
    finally:
        sfrun.close()




def test_kill_9_of_a_real_bashprocess_and_script_then_recover(tmp_path):
    pid_file, made = tmp_path / "pid", tmp_path / "made"
    path = tmp_path / "app.sf"
    path.write_text(
        '#include "org/smartfrog/components.sf"\n'
        '#include "org/smartfrog/services/shellscript/components.sf"\n'
        "sfConfig extends Compound {\n"
        f'  p extends BashProcess {{ cmd "echo $$ > {pid_file}; exec sleep 300"; }}\n'
        f'  s extends Script {{ startScript "touch {made}"; terminateScript "rm {made}"; }}\n'
        "}\n",
        encoding="utf-8",
    )
    runs = tmp_path / "runs"
    sfrun = Sfrun("--run-dir", str(runs / "r1"), str(path))
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the pid")
        wait_for(made.exists, what="the script's file")
        pid = int(pid_file.read_text())
        sfrun.child.send_signal(signal.SIGKILL)
        sfrun.wait()
    finally:
        sfrun.close()
    assert running(pid)
    result = run("--recover", "--run-dir", str(runs))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"stopped process group {pid}" in result.stdout
    wait_for(lambda: not running(pid), 10, "the sleep to be gone")
    assert not (runs / "r1").exists()
    # The Script's terminate script was journaled before it ran: recovery ran it.
    assert "ran the terminateScript of sfConfig:s" in result.stdout
    assert not made.exists()
