"""The test site (descriptions/examples/testsite/: ce and bdii on vmhost1, wn on vmhost2,
QEMU guests of the boot kit) survives ``kill -9`` of either daemon once it runs: the daemon,
started again within the site's liveness window, takes its guests back — the same QEMU
processes, same pids — and ``sfterminate`` then ends the whole site as usual (wn's image
saved, every volume, file and QEMU process gone). Killed while the site still deploys, a
daemon cleans instead: tests/vm/test_testsite.py."""

from __future__ import annotations

import json
import os
import signal

import pytest
from test_testsite import (  # noqa: F401 - fixtures
    BIN,
    GUESTS,
    HOSTS,
    KIT_SITE,
    _loops,
    _Site,
    kit_dir,
    short_tmp,
    site,
)

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def _sf(running: _Site, *args: str, timeout: float = 120):
    import subprocess

    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                          env=running.env, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("killed", ["vmhost1", "vmhost2"])
def test_a_daemon_killed_while_the_site_runs_takes_its_guests_back(
        site: _Site, killed: str) -> None:  # noqa: F811 - the fixture
    for name in HOSTS:
        site.start(name)
    up = _sf(site, "sfstart", "vmhost1", "testsite", str(KIT_SITE), timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    pids = {guest: [p.pid for p in site.qemu(guest)] for guest in GUESTS}
    assert all(len(found) == 1 for found in pids.values()), pids

    os.kill(site.daemons[killed].pid, signal.SIGKILL)
    site.daemons[killed].wait()
    site.start(killed)  # well within the 15 s liveness window
    restarted = (site.root / f"daemon-{killed}.log").read_text()
    assert {guest: [p.pid for p in site.qemu(guest)] for guest in GUESTS} == pids, restarted
    said = json.loads(_sf(site, "sfdiagnostics", killed, "--json").stdout)["recovery"]
    assert any(line.startswith("testsite") and "re-adopted (" in line for line in said), said
    listed = json.loads(_sf(site, "sflist", "vmhost1", "--json").stdout)["applications"]
    assert [(app["name"], app["state"]) for app in listed] == [("testsite", "running")]
    assert _sf(site, "sfping", "vmhost1", "testsite").returncode == 0

    down = _sf(site, "sfterminate", "vmhost1", "testsite", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert site.qemu() == []
    assert list((site.site / "images").iterdir()) == []
    assert list((site.site / "domains").iterdir()) == []
    assert list((site.site / "scratch").iterdir()) == []
    assert [p.name.startswith("testsite-wn-") for p in (site.site / "saved").iterdir()] == [True]
    assert _loops(str(site.root)) == []
