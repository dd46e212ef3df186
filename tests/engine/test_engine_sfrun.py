"""sfrun as a user runs it: exit codes 0/1/3, the state lines on stderr, signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from engine_components import journal_of

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RUNNER = (
    "import sys, engine_components; engine_components.register_all(); "
    "from sfpy.cli.sfrun import main; sys.exit(main(sys.argv[1:]))"
)
LINE = re.compile(r"^(sfConfig(?::\w+)*)  (DEPLOYED|STARTED|TERMINATING|TERMINATED)  \d+\.\d\ds")


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO), env.get("PYTHONPATH", "")])
    return env


def sfrun_command(*args: str) -> list[str]:
    return [sys.executable, "-c", RUNNER, *args]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        sfrun_command(*args), capture_output=True, text=True, timeout=timeout, env=environment()
    )


@pytest.fixture
def app_file(tmp_path):
    journal = tmp_path / "journal.txt"

    def write(body: str) -> tuple[Path, Path]:
        path = tmp_path / "app.sf"
        path.write_text(
            '#include "org/smartfrog/components.sf"\n'
            'R extends Prim { sfClass "test.Recorder"; }\n'
            f'sfConfig extends Compound {{ journal "{journal}";\n{body}\n}}\n',
            encoding="utf-8",
        )
        return path, journal

    return write


def state_lines(stderr: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in map(LINE.match, stderr.splitlines()) if m]


def test_terminate_after_zero_deploys_starts_and_terminates_cleanly(app_file):
    path, journal = app_file("a extends R; b extends Compound { c extends R; } d extends R;")
    result = run("--terminate-after", "0", str(path))
    assert result.returncode == 0, result.stderr
    lines = state_lines(result.stderr)
    assert ("sfConfig:b:c", "DEPLOYED") in lines
    assert lines.index(("sfConfig:d", "DEPLOYED")) < lines.index(("sfConfig", "STARTED"))
    assert lines[-1] == ("sfConfig", "TERMINATED")
    assert "terminated normally" in result.stderr
    events = journal_of(journal)
    assert [e for e, _ in events] == ["deploy"] * 3 + ["start"] * 3 + ["terminate"] * 3
    assert [p for e, p in events if e == "terminate"] == [
        "sfConfig:d",
        "sfConfig:b:c",
        "sfConfig:a",
    ]
    assert "Traceback" not in result.stderr


def test_a_failing_deploy_exits_1_with_the_termination_record(app_file):
    path, journal = app_file('a extends R; bad extends R { failIn "deploy"; } c extends R;')
    result = run(str(path))
    assert result.returncode == 1
    assert "Termination Record: sfConfig:bad,  type: abnormal" in result.stderr
    assert "deploy failed: RuntimeError: deploy refused by bad" in result.stderr
    assert re.search(r"^sfConfig:bad  TERMINATED  .*abnormal: deploy failed", result.stderr, re.M)
    assert [p for e, p in journal_of(journal) if e == "terminate"] == ["sfConfig:bad", "sfConfig:a"]
    assert "Traceback" not in result.stderr


def test_a_later_abnormal_termination_exits_1(app_file):
    path, _ = app_file(
        'a extends R; w extends Prim { sfClass "test.SelfTerminating"; after 0.2; abnormal true; }'
    )
    result = run(str(path))
    assert result.returncode == 1
    assert (
        "Termination Record: sfConfig:w,  type: abnormal,  description: it broke" in result.stderr
    )


def test_an_application_that_finishes_normally_exits_0(app_file):
    path, _ = app_file('w extends Prim { sfClass "test.SelfTerminating"; after 0.1; }')
    result = run(str(path))
    assert result.returncode == 0
    assert "terminated normally: work done" in result.stderr


def test_an_unknown_sfclass_exits_3_and_deploys_nothing(app_file):
    path, journal = app_file('a extends R; b extends Prim { sfClass "test.Recordr"; }')
    result = run(str(path))
    assert result.returncode == 3
    assert "unknown sfClass 'test.Recordr' (did you mean 'test.Recorder'?)" in result.stderr
    assert "in sfConfig:b" in result.stderr
    assert state_lines(result.stderr) == []
    assert not journal.exists()


def test_a_wrong_description_exits_3(tmp_path):
    path = tmp_path / "broken.sf"
    path.write_text("sfConfig extends Compound { a 1 }}\n", encoding="utf-8")
    result = run(str(path))
    assert result.returncode == 3
    assert "broken.sf:1:" in result.stderr and "Traceback" not in result.stderr


def test_terminate_after_waits_that_long(app_file):
    path, _ = app_file("a extends R;")
    began = time.monotonic()
    result = run("--terminate-after", "1.0", str(path))
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    started = next(
        float(line.split()[-1][:-1]) for line in lines if line.startswith("sfConfig  STARTED")
    )
    ended = next(
        float(line.split()[-1][:-1]) for line in lines if line.startswith("sfConfig  TERMINATED")
    )
    assert 0.99 <= ended - started < 2.0  # lines show hundredths
    assert time.monotonic() - began >= 1.0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_terminates_cleanly_and_exits_0(app_file, signum):
    path, journal = app_file("a extends R; b extends R;")
    child = subprocess.Popen(
        sfrun_command(str(path)), stderr=subprocess.PIPE, text=True, env=environment()
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            lines.append(line)
            if line.startswith("sfConfig  STARTED"):
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(30), "".join(lines)
        # it waits until told: the record below says the signal ended it, not the application
        assert child.poll() is None
        child.send_signal(signum)
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    reader.join(5)
    text = "".join(lines)
    assert f"sfrun received {signal.Signals(signum).name}" in text
    assert [p for e, p in journal_of(journal) if e == "terminate"] == ["sfConfig:b", "sfConfig:a"]


def test_help_and_usage_errors():
    result = run("--help")
    assert result.returncode == 0
    assert "--terminate-after SECONDS" in result.stdout and "-I DIR" in result.stdout
    result = run("--terminate-after", "soon", "x.sf")
    assert result.returncode == 2
    result = run()
    assert result.returncode == 2


def test_applications_left_in_the_process_are_terminated_before_exit(tmp_path):
    """A Run's application and a detached subtree outlive sfConfig; sfrun still ends them,
    running their terminate hooks, before it exits."""
    journal = tmp_path / "journal.txt"
    path = tmp_path / "app.sf"
    path.write_text(
        '#include "org/smartfrog/components.sf"\n'
        '#include "org/smartfrog/sfcore/workflow/components.sf"\n'
        # each Recorder names the journal: the applications left behind have no sfConfig above
        f'R extends Prim {{ sfClass "test.Recorder"; journal "{journal}"; }}\n'
        # a Container outlives its children, so the Run ending does not end sfConfig
        "sfConfig extends Container {\n"
        '  runner extends Run { newComponentName "launched"; action extends R; }\n'
        "  dc extends DetachingCompound { detachUpwards false;\n"
        '    loose extends R { sfProcessComponentName "loose"; } }\n'
        "  a extends R;\n"
        "}\n",
        encoding="utf-8",
    )
    result = run("--terminate-after", "0.5", str(path))
    assert result.returncode == 0, result.stderr
    terminated = [p for e, p in journal_of(journal) if e == "terminate"]
    assert sorted(terminated) == ["launched", "loose", "sfConfig:a"], result.stderr
    assert terminated[0] == "sfConfig:a"  # sfConfig first, then what it left behind
