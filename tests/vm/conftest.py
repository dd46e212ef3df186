"""Fixtures of the ``vm`` tier (helpers and what they need: ``vm_support``): the boot kit,
built once per run, and a network namespace of the test's own."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest
from vm_support import require

from sfpy.host import bootkit


@pytest.fixture(scope="session")
def kit() -> bootkit.BootKit:
    """The boot kit, built once per run (found in the cache after the first)."""
    require()
    return bootkit.ensure()


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace of this test's own with a bridge ``sfbr0`` in it; removed after
    (whatever is left in it goes with it, and the test checks it left nothing)."""
    require()
    name = f"sfpyvm-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for command in (["link", "set", "lo", "up"], ["link", "add", "sfbr0", "type", "bridge"],
                        ["link", "set", "sfbr0", "up"]):
            subprocess.run(["ip", "-n", name, *command], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


