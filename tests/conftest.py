"""Shared fixtures: where the SmartFrog corpus lives, and helpers to write descriptions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("SFPY_CORPUS", REPO.parent / "shared" / "corpus" / "smartfrog"))


@pytest.fixture
def write_sf(tmp_path: Path):
    """Write a description file and return its path."""

    def write(text: str, name: str = "test.sf") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write
