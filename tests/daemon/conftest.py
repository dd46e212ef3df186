"""Fixtures of the daemon tests: ``daemon_factory`` starts real sfdaemon processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import Daemon


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator:
    started: list[Daemon] = []

    def start(address: str = "127.0.0.2", name: str | None = None, *extra: str) -> Daemon:
        daemon = Daemon(address, tmp_path / (name or f"state-{address}"), *extra)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.stop()
        daemon.kill()
        daemon.clean_leftovers()


@pytest.fixture
def daemon(daemon_factory) -> Daemon:
    return daemon_factory("127.0.0.2")
