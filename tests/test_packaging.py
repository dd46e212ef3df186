"""A non-editable install finds its grammar and its shipped descriptions from anywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_wheel_install_finds_grammar_and_descriptions(tmp_path: Path):
    """Build the wheel, install it into a folder, delete the source, run from elsewhere."""
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "*.egg-info", "build"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("sfpy-*.whl")
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    shutil.rmtree(source)  # nothing may come from a source tree any more
    env = {**os.environ, "PYTHONPATH": str(target), "SFPY_PATH": ""}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "site.sf").write_text(
        '#include "org/smartfrog/components.sf"\n'
        '#include "org/smartfrog/services/shellscript/components.sf"\n'
        'sfConfig extends Compound { s extends Script { startScript "true"; } }\n'
    )

    def python(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, cwd=elsewhere, env=env, timeout=60
        )

    where = python("-c", "import sfpy.language.parser as p, sfpy.descriptions as d; print(p.__file__, d.__file__)")
    assert where.stdout.count(str(target)) == 2, where.stdout + where.stderr
    parsed = python("-m", "sfpy.cli.sfparse", "site.sf")
    assert parsed.returncode == 0, parsed.stderr
    assert 'startScript "true";' in parsed.stdout
    run = python("-m", "sfpy.cli.sfrun", "--terminate-after", "0", "site.sf")
    assert run.returncode == 0, run.stderr
