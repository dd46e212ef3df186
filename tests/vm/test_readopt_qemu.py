"""A real QEMU guest taken back by a restarted daemon: ``sfstart`` boots a guest of the boot
kit (a loopback volume: a qcow2 overlay on the kit's image) through an sfdaemon, the daemon
is killed with ``kill -9`` while the guest runs and started again. The restarted daemon
re-adopts the application — the QEMU process keeps the *same* pid (adopted, not started
again), ``sflist`` shows every component STARTED — and ``sfterminate`` then powers the guest
off (ACPI, the kit's init powers off) and leaves nothing: no QEMU process, no file, no
volume, no loop device, no open journal entry.

(A daemon killed while the site still deploys — guests booting, not yet ready — is cleaned
on restart instead: tests/vm/test_testsite.py.)
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from vm_support import REPO, guest, left, qemu_processes, site, wait_for

pytestmark = [pytest.mark.vm, pytest.mark.slow]


class _Daemon:
    """An sfdaemon on an address and port of this test's own (no other daemon collides)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.host = f"127.0.{random.randint(100, 250)}.{random.randint(2, 250)}"
        self.port = str(random.randint(39000, 39999))
        self.env = {**os.environ, "SFPY_INSECURE": "1"}
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.tmp / f"daemon-{self.starts}.log", "w")  # noqa: SIM115 - the child's
        with log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sfpy.cli.sfdaemon", "--host", self.host, "--port",
                 self.port, "--state-dir", str(self.tmp / "state"), "--insecure"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env,
                start_new_session=True, cwd=REPO)
        wait_for(lambda: self.client("sfping", timeout=30).returncode == 0
                 or self.process.poll() is not None, "the daemon")
        assert self.process.poll() is None, self.log

    @property
    def log(self) -> str:
        return "".join(p.read_text() for p in sorted(self.tmp.glob("daemon-*.log")))

    def client(self, name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", f"sfpy.cli.{name}",
                               f"{self.host}:{self.port}", *args], capture_output=True,
                              text=True, env=self.env, timeout=timeout, cwd=REPO)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # kill -9
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[_Daemon]:
    daemon = _Daemon(tmp_path)
    daemon.start()
    yield daemon
    daemon.stop()
    from sfpy.host.journal import recover

    recover(tmp_path / "state" / "apps")  # whatever a failed test left: as a restart would


def components(daemon: _Daemon, name: str) -> dict[str, dict]:
    shown = daemon.client("sflist", name, "--json")
    assert shown.returncode == 0, shown.stderr
    found: dict[str, dict] = {}

    def walk(node: dict) -> None:
        found[node["path"]] = node
        for child in node["children"]:
            walk(child)

    walk(json.loads(shown.stdout)["tree"])
    return found


def open_entries(state: Path) -> list[tuple]:
    found = []
    for database in state.rglob("journal.db"):
        with sqlite3.connect(database) as connection:
            found += connection.execute(
                "SELECT kind, owner FROM entry WHERE done IS NULL").fetchall()
    return found


def loop_devices(tmp: Path) -> list[str]:
    listed = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return [line for line in listed.splitlines() if str(tmp) in line]


def test_a_running_guest_is_re_adopted_with_the_same_qemu_then_powered_off(
        tmp_path: Path, kit, daemon: _Daemon) -> None:
    description = site(tmp_path, guest("vm1", "10.77.0.2", tmp_path, kit))
    started = daemon.client("sfstart", "web", str(description))
    assert started.returncode == 0, started.stdout + started.stderr + daemon.log
    before = components(daemon, "web")
    pid = before["web:vm1:vm"]["attributes"]["pid"]
    assert qemu_processes(str(tmp_path)) == [pid]
    volumes = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert volumes == ["xen-domain-vm1-swap.img", "xen-domain-vm1.qcow2"]

    daemon.kill()
    assert qemu_processes(str(tmp_path)) == [pid]  # the guest outlives its daemon
    daemon.start()
    assert qemu_processes(str(tmp_path)) == [pid]  # the same QEMU: adopted, not restarted
    after = components(daemon, "web")
    assert {node["state"] for node in after.values()} == {"STARTED"}, after
    assert after["web:vm1:vm"]["attributes"]["pid"] == pid
    assert after["web:vm1:vm"]["attributes"]["domainState"] == "ready"
    assert after["web:vm1:disk"]["attributes"]["volume"] == str(
        tmp_path / "images" / "xen-domain-vm1.qcow2")
    said = json.loads(daemon.client("sfdiagnostics", "--json").stdout)["recovery"]
    assert any(line.startswith("web: re-adopted") for line in said), said
    assert daemon.client("sfping", "web:vm1:vm").returncode == 0

    ended = daemon.client("sfterminate", "web")
    assert ended.returncode == 0, ended.stdout + ended.stderr + daemon.log
    assert qemu_processes(str(tmp_path)) == []
    assert "domain vm1 powered off" in daemon.client("sflogs", "web", "vm1:vm",
                                                    "-n", "1000").stdout
    assert left(tmp_path) == []
    assert loop_devices(tmp_path) == []
    assert open_entries(tmp_path / "state") == []
    assert "Traceback" not in daemon.log


def test_an_adopted_guest_is_watched_through_qmp_again(
        tmp_path: Path, kit, daemon: _Daemon) -> None:
    """Liveness resumes after adoption: QEMU killed under the restarted daemon fails the
    application, which is cleaned up as for any failed domain."""
    import signal

    description = site(tmp_path, guest("vm1", "10.77.0.2", tmp_path, kit))
    started = daemon.client("sfstart", "web", str(description))
    assert started.returncode == 0, started.stdout + started.stderr + daemon.log
    pid = components(daemon, "web")["web:vm1:vm"]["attributes"]["pid"]
    daemon.kill()
    daemon.start()
    assert components(daemon, "web")["web:vm1:vm"]["attributes"]["pid"] == pid
    os.kill(pid, signal.SIGKILL)

    def ended() -> bool:
        listed = json.loads(daemon.client("sflist", "--json").stdout)["applications"]
        return all(app["name"] != "web" or app["state"] not in ("running", "deploying")
                   for app in listed)

    wait_for(ended, "the application to fail its liveness check", timeout=120)
    wait_for(lambda: left(tmp_path) == [], "the guest's files and volumes to go", timeout=120)
    assert "failed its liveness check" in daemon.log
    assert qemu_processes(str(tmp_path)) == []
    assert open_entries(tmp_path / "state") == []
