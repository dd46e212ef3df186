"""Helpers for the shell tests: deploy description text, find leftover processes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent.parent
HEADER = (
    '#include "org/smartfrog/components.sf"\n'
    '#include "org/smartfrog/services/shellscript/components.sf"\n'
)


def write_description(directory: Path, body: str, name: str = "app.sf") -> Path:
    path = directory / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def gone(pid: int) -> bool:
    """The process no longer runs (reaped, or a zombie some other parent has to reap)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.02)
    return gone(pid)


def own_children() -> set[int]:
    """Processes this test process started and has not reaped (zombies included)."""
    return {child.pid for child in psutil.Process(os.getpid()).children(recursive=True)}


def sfrun_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "sfpy.cli.sfrun", *args]


def sfrun_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env
