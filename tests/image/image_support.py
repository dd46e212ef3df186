"""Helpers of the image tests: how to run ``sfimage``, the marks of the image tier, the build's
arguments. Packages are kept between runs in ``$SFPY_TEST_APT_CACHE`` (default
``/var/tmp/sfpy-image-test-apt``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

APT_CACHE = os.environ.get("SFPY_TEST_APT_CACHE", "/var/tmp/sfpy-image-test-apt")
KEY_LINE = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDlxv3kB5JgctGsoxyxca78i4iQEbvTIJOBzU/cbuhZ/ "
            "test@sfpy")


def _lacking() -> str | None:
    if os.geteuid() != 0:
        return "root"
    for tool in ("mmdebstrap", "mke2fs", "debugfs"):
        if shutil.which(tool) is None:
            return tool
    return None


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


LACKING = _lacking()


def image_tier() -> list:
    """The marks of an image-tier module: skipped naming what this machine lacks, failed under
    CI=true (.ci/run installs it all: a skip there would hide a failure)."""
    if LACKING and _ci():
        return [pytest.mark.image, pytest.mark.usefixtures("image_tier_required")]
    return [pytest.mark.image, pytest.mark.skipif(LACKING is not None,
                                                  reason=f"image builds need {LACKING}")]


def sfimage(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "sfpy.cli.sfimage", *args],
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"sfimage {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stderr[-3000:]}")
    return result


def debugfs(image: str, request: str) -> str:
    return subprocess.run(["debugfs", "-R", request, image], capture_output=True, text=True,
                          check=True).stdout


def build_args(inputs: dict[str, str], *extra: str) -> list[str]:
    return ["build", "--store", inputs["store"], "--apt-cache", APT_CACHE, "--json",
            "--group", "ssh-server", "--package", "less",
            "--file", f"{inputs['placed']}:/etc/sfpy-test/placed.txt:0640",
            "--ssh-key", inputs["key"], "--hostname", "imgtest", "--format", "img", *extra]
