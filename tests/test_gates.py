"""Static gates that run with the tests, so CI cannot go green without them: the type checker
(mypy, configured in pyproject.toml) and the linter (ruff)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_mypy_is_clean_on_sfpy() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "sfpy", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr
