"""Fixtures of the image tests: the inputs of the one real build, and the build itself
(session scope: built once, shared by the tests that need it)."""

from __future__ import annotations

import json
import os

import pytest
from image_support import APT_CACHE, KEY_LINE, LACKING, build_args, sfimage


@pytest.fixture
def image_tier_required():
    pytest.fail(f"the image tests need {LACKING}; CI=true requires it", pytrace=False)


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("image-inputs")
    placed = folder / "placed.txt"
    placed.write_text("placed by sfimage\n")
    key = folder / "id.pub"
    key.write_text(KEY_LINE + "\n")
    return {"store": str(folder / "store"), "placed": str(placed), "key": str(key)}


@pytest.fixture(scope="session")
def built(inputs) -> dict:
    """The shared build (about a minute with a warm package cache)."""
    os.makedirs(APT_CACHE, exist_ok=True)
    result = sfimage(*build_args(inputs))
    data = json.loads(result.stdout)
    data["stderr"] = result.stderr
    return data
