"""sfrun --check, --timeout, --terminate-timeout, and failed cleanup as exit 6."""

from __future__ import annotations

import time

from sfrun_support import run, running, write_app


def test_check_verifies_and_deploys_nothing(tmp_path):
    made = tmp_path / "made"
    path = write_app(tmp_path, f'f extends Maker {{ path "{made}"; }}')
    result = run("--check", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{path}: OK (resolved, every sfClass registered; nothing deployed)\n"
    assert not made.exists() and "STARTED" not in result.stderr

    path = write_app(tmp_path, 'f extends Prim { sfClass "test.JournaledFyle"; }')
    result = run("--check", str(path))
    assert result.returncode == 3
    assert "unknown sfClass 'test.JournaledFyle' (did you mean 'test.JournaledFile'?)" in (
        result.stderr
    )
    path.write_text("sfConfig extends Compound { a 1 }}\n", encoding="utf-8")
    result = run("--check", str(path))
    assert result.returncode == 3 and "app.sf:1:" in result.stderr


def test_timeout_terminates_the_application_and_exits_5(tmp_path):
    pid_file = tmp_path / "pid"
    path = write_app(tmp_path, f'p extends Sleeper {{ pidFile "{pid_file}"; }}')
    began = time.monotonic()
    result = run("--timeout", "1", "--run-dir", str(tmp_path / "r1"), str(path))
    assert result.returncode == 5, result.stderr
    assert time.monotonic() - began >= 1.0
    assert "sfrun: timed out after 1s; sfConfig was terminated" in result.stderr
    assert not running(int(pid_file.read_text()))  # its terminate hook ran
    assert not (tmp_path / "r1").exists()


def test_terminate_timeout_and_the_journal_reach_the_process(tmp_path):
    out = tmp_path / "probe"
    path = write_app(tmp_path, f'p extends Probe {{ out "{out}"; }}')
    result = run("--terminate-after", "0", "--terminate-timeout", "7.5", str(path))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "7.5 True\n"
    result = run("--terminate-after", "0", str(path))
    assert out.read_text() == "60.0 True\n"
    assert run("--terminate-timeout", "soon", str(path)).returncode == 2


def test_failed_cleanup_is_listed_and_exits_6_also_after_an_abnormal_end(tmp_path):
    path = write_app(tmp_path, "b extends Failing;")
    result = run("--terminate-after", "0", str(path))
    assert result.returncode == 6
    assert "cleanup failed in:\n  sfConfig:b: " in result.stderr
    assert "target is busy" in result.stderr
    path = write_app(
        tmp_path,
        "b extends Failing;\n"
        'w extends Prim { sfClass "test.SelfTerminating"; after 0.1; abnormal true; }',
    )
    result = run(str(path))
    assert result.returncode == 6, result.stderr
    assert "terminated abnormally" in result.stderr and "target is busy" in result.stderr


def test_recover_takes_no_file_and_run_needs_one(tmp_path):
    assert run("--recover", "x.sf").returncode == 2
    result = run()
    assert result.returncode == 2 and "FILE" in result.stderr
    result = run("--recover", "--run-dir", str(tmp_path / "none"))
    assert result.returncode == 0 and result.stdout == f"no runs in {tmp_path / 'none'}\n"


def test_a_misspelled_attribute_gets_a_did_you_mean_warning(tmp_path):
    path = tmp_path / "typo.sf"
    path.write_text(
        '#include "org/smartfrog/components.sf"\n'
        '#include "org/smartfrog/services/shellscript/components.sf"\n'
        'sfConfig extends Script { startScrpit "echo hi"; }\n'
    )
    result = run("--check", str(path))
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "startScript" in result.stderr
