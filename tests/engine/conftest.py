"""Fixtures for the engine tests: a Process that is shut down afterwards, test components
registered, and helpers to write descriptions by hand or as text."""

from __future__ import annotations

from collections.abc import Iterator

import engine_components
import pytest

from sfpy.engine import Process
from sfpy.language.model import ComponentDescription


@pytest.fixture
def process() -> Iterator[Process]:
    engine_components.register_all()
    engine_components.reset()
    proc = Process("testProcess")
    yield proc
    proc.shutdown(timeout=10)


@pytest.fixture
def journal() -> list[tuple[str, str]]:
    return engine_components.JOURNAL


@pytest.fixture
def load_text(tmp_path):
    """Parse and resolve description text (components.sf included) into its sfConfig."""
    from sfpy.language import load

    def load_it(text: str) -> ComponentDescription:
        path = tmp_path / "app.sf"
        path.write_text('#include "org/smartfrog/components.sf"\n' + text, encoding="utf-8")
        return load(str(path))

    return load_it
