"""The shipped example sites deploy, run and terminate cleanly (the README's main job)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.conftest import REPO

SITE = REPO / "descriptions" / "examples" / "site.sf"
WORK_DIR = Path("/tmp/sfpy-example-site")


def sfrun(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sfpy.cli.sfrun", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def consoles() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "86400"]]


def test_site_up_and_down_leaves_nothing_behind():
    run = sfrun("--terminate-after", "0", str(SITE))
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "sfConfig:vm2:disk  STARTED" in err and "sfConfig  TERMINATED" in err
    assert not WORK_DIR.exists()
    assert consoles() == []


def test_site_runs_until_sigterm_with_its_disks_and_consoles():
    run = sfrun(str(SITE))
    try:
        deadline = time.monotonic() + 30
        while len(consoles()) < 2 and time.monotonic() < deadline:  # vm2's console starts last
            time.sleep(0.05)
        assert (WORK_DIR / "vm1.img").stat().st_size == 1024 * 1024 * 1024
        assert (WORK_DIR / "vm2.img").stat().st_size == 2048 * 1024 * 1024
        assert len(consoles()) == 2
    finally:
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "sfConfig  TERMINATED" in err
    assert not WORK_DIR.exists()
    assert consoles() == []


def test_the_readme_tour_runs(tmp_path):
    readme = (REPO / "README.md").read_text()
    start = readme.index("```\n#include") + 4
    (tmp_path / "tour.sf").write_text(readme[start : readme.index("```", start)])
    run = sfrun("--terminate-after", "0", str(tmp_path / "tour.sf"))
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "sfConfig:disk  STARTED" in err
    assert not Path("/tmp/vm1.img").exists()  # made at start, removed at termination
