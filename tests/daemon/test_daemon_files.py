"""daemon/: the systemd unit verifies, the example configuration is one sfdaemon accepts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_support import REPO

from sfpy.cli.sfdaemon import load_config


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("this machine has no systemd-analyze")
    sfdaemon = Path(sys.executable).parent / "sfdaemon"
    if not sfdaemon.exists():
        pytest.skip(f"sfdaemon is not installed next to {sys.executable}")
    text = (REPO / "daemon" / "sfdaemon.service").read_text(encoding="utf-8")
    unit = tmp_path / "sfdaemon.service"
    unit.write_text(text.replace("/usr/local/bin/sfdaemon", str(sfdaemon)), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_example_configuration_loads() -> None:
    config = load_config(str(REPO / "daemon" / "sfdaemon.yaml"))
    assert config["port"] == 3800 and config["on_stop"] == "terminate"
    from sfpy.engine.access import Access

    assert Access(config["roles"]).roles["read"] == ("monitor",)
    assert {"cert", "key", "ca"} <= set(config) and "insecure" not in config
