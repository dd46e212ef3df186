"""QemuDomain, for real: guests of the boot kit booted by QEMU with software emulation from
loopback volumes, run by ``sfrun``. Each test checks what the domain's description promised
(the console shows the host name and address it gave; two guests on one bridge reach each
other) and that nothing is left (volumes, files, QEMU processes, taps)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from conftest import guest, left, links, qemu_processes, sfrun, site, wait_for

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def test_two_guests_on_one_bridge_show_their_identity_and_reach_each_other(
        tmp_path: Path, kit, netns: str):
    bridge = f'network "bridge"; bridge "sfbr0"; netns "{netns}";'
    body = (guest("vm1", "10.77.0.2", tmp_path, kit, domain=bridge + ' extra "sfpy.ping=10.77.0.3";',
                  ready="sfpy-guest ping 10.77.0.3 ok")
            + guest("vm2", "10.77.0.3", tmp_path, kit, tarball=True,
                    domain=bridge + ' extra "sfpy.ping=10.77.0.2";',
                    ready="sfpy-guest ping 10.77.0.2 ok"))
    description = site(tmp_path, body, parallel=True)
    taps: list[list[str]] = []
    began = time.monotonic()
    process = sfrun("--terminate-after", "0", "--timeout", "240", str(description), wait=False)
    # while both run, each has its tap on the bridge, inside the test's namespace only
    wait_for(lambda: (taps.append(links(netns)) or "sfq-vm1" in taps[-1] and "sfq-vm2" in taps[-1])
             or process.poll() is not None, "both taps")
    out, err = process.communicate(timeout=240)
    took = time.monotonic() - began
    assert process.returncode == 0, err[-3000:]
    assert "sfq-vm1" in taps[-1] and "sfq-vm2" in taps[-1], taps[-1]
    for name, ip, peer in (("vm1", "10.77.0.2", "10.77.0.3"), ("vm2", "10.77.0.3", "10.77.0.2")):
        assert re.search(rf"sfConfig:{name}:vm: console: sfpy-guest hostname={name}"
                         rf"\.example\.org ip={re.escape(ip)}$", err, re.MULTILINE), err[-3000:]
        assert f"sfConfig:{name}:vm: console: sfpy-guest ping {peer} ok" in err
        assert f"domain {name} powered off" in err
    # both booted side by side: each was launched before either was ready
    first_ready = min(err.index("domain vm1 ready after"), err.index("domain vm2 ready after"))
    assert err.index("QEMU guest vm1 launched") < first_ready
    assert err.index("QEMU guest vm2 launched") < first_ready
    assert took < 200
    assert links(netns) == ["lo", "sfbr0"]
    assert left(tmp_path) == []
    assert qemu_processes(str(tmp_path)) == []


def test_a_guest_whose_qemu_is_killed_fails_its_liveness_and_is_cleaned(tmp_path: Path, kit):
    description = site(tmp_path, guest("vm1", "10.77.0.2", tmp_path, kit))
    process = sfrun("--timeout", "240", str(description), wait=False)
    pidfile = tmp_path / "cfg" / "vm1.pid"
    console = tmp_path / "cfg" / "vm1.console.log"
    wait_for(lambda: console.exists() and "sfpy-guest hostname=" in console.read_text()
             or process.poll() is not None, "the guest to be ready")
    assert process.poll() is None, process.communicate()[1][-3000:]
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err[-3000:]
    assert "domain vm1 failed its liveness check 2 times (QEMU is gone)" in err
    assert left(tmp_path) == []
    assert qemu_processes(str(tmp_path)) == []


def test_a_guest_that_ignores_power_down_is_stopped_after_shutdown_timeout(
        tmp_path: Path, kit):
    description = site(tmp_path, guest("vm1", "10.77.0.2", tmp_path, kit,
                                       domain='extra "sfpy.acpi=off"; shutdownTimeout 2000;'))
    run = sfrun("--terminate-after", "0", "--timeout", "240", str(description))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "domain vm1 quit" in run.stderr
    assert "powered off" not in run.stderr
    began = _moment(run.stderr, "sfConfig:vm1:vm  TERMINATING")
    ended = _moment(run.stderr, "sfConfig:vm1:vm  TERMINATED")
    assert 2.0 <= ended - began < 20, (began, ended)
    assert left(tmp_path) == []
    assert qemu_processes(str(tmp_path)) == []


def test_a_guest_that_never_becomes_ready_fails_and_its_image_is_deleted(tmp_path: Path, kit):
    description = site(tmp_path, guest(
        "vm1", "10.77.0.2", tmp_path, kit, backend="keepVolumes true;",
        ready="this line never shows", domain="readyTimeout 4000;"))
    images = tmp_path / "images"
    seen: list[list[str]] = []
    process = sfrun("--timeout", "240", str(description), wait=False)
    wait_for(lambda: seen.append(os.listdir(images)) or "xen-domain-vm1.qcow2" in seen[-1]
             or process.poll() is not None, "the image")
    out, err = process.communicate(timeout=120)
    assert "xen-domain-vm1.qcow2" in seen[-1]  # the image was made, then deleted
    assert process.returncode == 1, err[-3000:]
    assert "domain vm1 was not ready within 4 s" in err
    assert "this line never shows" in err
    assert left(tmp_path) == []  # deleted although keepVolumes: the domain failed to start
    assert qemu_processes(str(tmp_path)) == []


def _moment(text: str, what: str) -> float:
    match = re.search(rf"^{re.escape(what)}\s+([0-9.]+)s$", text, re.MULTILINE)
    assert match, f"{what!r} not in the output"
    return float(match.group(1))


def test_recovery_after_kill_9_stops_the_guest_and_removes_its_tap_and_files(
        tmp_path: Path, kit, netns: str):
    description = site(tmp_path, guest(
        "vm1", "10.77.0.2", tmp_path, kit,
        domain=f'network "bridge"; bridge "sfbr0"; netns "{netns}";'))
    runs = tmp_path / "runs"
    process = sfrun("--run-dir", str(runs / "r1"), str(description), wait=False)
    console = tmp_path / "cfg" / "vm1.console.log"
    wait_for(lambda: console.exists() and "sfpy-guest hostname=" in console.read_text()
             or process.poll() is not None, "the guest to be ready")
    assert process.poll() is None, process.communicate()[1][-3000:]
    process.kill()  # kill -9: no cleanup at all
    process.communicate(timeout=30)
    assert qemu_processes(str(tmp_path)) != [] and "sfq-vm1" in links(netns)
    recover = sfrun("--recover", "--run-dir", str(runs), timeout=120)
    assert recover.returncode == 0, recover.stdout + recover.stderr
    said = recover.stdout + recover.stderr
    assert "stopped QEMU guest vm1" in said
    assert qemu_processes(str(tmp_path)) == []
    assert links(netns) == ["lo", "sfbr0"]  # QEMU's tap went with it (or the cleaner's)
    assert left(tmp_path) == []


def test_sfpy_bootkit_finds_the_cached_kit_at_once_and_prints_its_paths(kit):
    import json
    import subprocess
    import sys

    began = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "sfpy.cli.sfbootkit", "--cache",
                          str(Path(kit.directory).parent), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - began < 30  # apt-cache show, no download or build
    found = json.loads(run.stdout)
    assert found == {**kit.as_dict(), "built": False}
    for key in ("kernel", "initrd", "rootfs", "image"):
        assert Path(found[key]).is_file() and Path(found[key]).parent == Path(kit.directory)
