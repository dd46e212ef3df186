"""Fixtures shared by the host-layer tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from host_support import own_children, wait_for


@pytest.fixture
def no_leftover_children() -> Iterator[None]:
    """Every child process a test started has been reaped by its end (waited for, 3 s)."""
    before = own_children()
    yield
    assert wait_for(lambda: not own_children() - before, 3), "a child was left behind"
