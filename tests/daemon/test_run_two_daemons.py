"""descriptions/examples/run-two-daemons.sh: two daemons, the example site up, listed, down,
the daemons stopped, and nothing left behind. (The README's main job is now the test site:
tests/vm/test_testsite.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from daemon_support import REPO

pytestmark = pytest.mark.integration

SCRIPT = REPO / "descriptions" / "examples" / "run-two-daemons.sh"


def _ours(marker: str) -> list[psutil.Process]:
    """Live processes whose command line or environment mentions ``marker``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(process.info["cmdline"] or []) or any(
                    marker in value for value in process.environ().values()):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def test_run_two_daemons_exits_0_and_leaves_nothing(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "sfdaemon").exists():
        pytest.skip(f"the sfpy commands are not installed in {bin_dir} (pip install -e .)")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "SFPY_BIN": str(bin_dir), "TMPDIR": str(temp)}
    consoles_before = {p.pid for p in psutil.process_iter(["cmdline"])
                       if p.info["cmdline"] == ["sleep", "86400"]}
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "site  running" in result.stdout  # sflist on the first daemon
    assert result.stdout.count(" stopped\n") == 2  # both daemons stopped by sfstopdaemon
    assert list(temp.iterdir()) == []  # the state directories and logs are gone
    assert _ours(str(temp)) == []  # no daemon, no process of the site
    consoles_after = {p.pid for p in psutil.process_iter(["cmdline"])
                      if p.info["cmdline"] == ["sleep", "86400"]}
    assert consoles_after - consoles_before == set()
