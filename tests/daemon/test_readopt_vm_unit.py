"""The ``adopt`` hooks of the storage backends and of QemuDomain, in this process (no daemon):
a backend takes back the volumes its journal names when they all still exist (and its
terminate then keeps or deletes them as configured), a missing one refuses the whole
application; a QemuDomain takes back the QEMU process its journal names when it still runs
and its QMP monitor answers (a real ``qemu-system-x86_64 -machine none``: no guest, no boot
kit), and its terminate then stops it and removes its files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import sfpy.components.qemu  # noqa: F401 - registers the qemu-process cleaner
import sfpy.components.xen  # noqa: F401 - registers the xen-domain cleaner
from sfpy.engine import Process
from sfpy.engine.prim import State
from sfpy.engine.process import AdoptionRefused
from sfpy.host import processes, qemu
from sfpy.host.journal import Journal
from sfpy.language import load

STAND_INS = Path(__file__).resolve().parents[1] / "stand_ins"
PATH = f"{STAND_INS}:/usr/bin:/bin:/usr/sbin:/sbin"


@pytest.fixture
def journal(tmp_path: Path):
    journal = Journal(tmp_path / "run", run_id="app")
    yield journal
    journal.close()


@pytest.fixture
def process(journal: Journal):
    process = Process("rootProcess", journal=journal)
    yield process
    process.shutdown(timeout=30)


def load_site(tmp_path: Path, backend: str, domain: str) -> Any:
    """``backend``: ``KIND { its own attributes }``."""
    kind, own = backend.split(" ", 1)
    for folder in ("images", "scratch", "saved", "cfg", "xl", "lvm/vg0"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    text = f"""
        #include "org/smartfrog/components.sf"
        #include "org/smartfrog/services/shellscript/components.sf"
        #include "ch/cern/openlab/smartdomains/components.sf"
        sfConfig extends Compound {{
          sfLivenessDelay 0;
          myShell extends BashShell {{ envProperties ["PATH={PATH}",
            "SFPY_XL_STATE={tmp_path}/xl", "SFPY_LVM_STATE={tmp_path}/lvm"]; }}
          disk extends {kind} {{ {own.strip()[1:-1]} shell LAZY ATTRIB myShell;
            baseImage "{tmp_path}/base.tar.gz"; scratchDirectory "{tmp_path}/scratch";
            volumeSize "64M"; swapSize "16m"; }}
          vm extends {domain} {{ shell LAZY ATTRIB myShell; storageBackend LAZY ATTRIB disk;
            domainName "vm1"; hostname "vm1.example.org"; ip "10.1.2.3";
            netmask "255.255.0.0"; kernel "{tmp_path}/vmlinuz"; memory 64;
            configDirectory "{tmp_path}/cfg"; shutdownTimeout 1000; }}
        }}"""
    (tmp_path / "site.sf").write_text(text, encoding="utf-8")
    return load(str(tmp_path / "site.sf"))


def loopback(tmp_path: Path, extra: str = "") -> str:
    return f'LoopbackStorageBackend {{ imageDirectory "{tmp_path}/images"; {extra} }}'


def volume_files(tmp_path: Path, journal: Journal, qcow2: bool = False) -> list[Path]:
    """The root and swap files a started loopback backend made, journalled as it does."""
    root = tmp_path / "images" / f"xen-domain-vm1.{'qcow2' if qcow2 else 'img'}"
    swap = tmp_path / "images" / "xen-domain-vm1-swap.img"
    for path in (root, swap):
        path.write_bytes(b"volume")
        journal.add("file", "app:disk", {"path": str(path)})
    return [root, swap]


def xen_domain(tmp_path: Path, journal: Journal) -> Path:
    """A domain the stand-in xl lists, journalled as XenDomain's start does."""
    import json
    import time

    (tmp_path / "xl" / "vm1.json").write_text(json.dumps(
        {"name": "vm1", "domid": 3, "memory": 64, "vcpus": 1, "started": time.time()}))
    config = tmp_path / "cfg" / "vm1.cfg"
    config.write_text("name = 'vm1'\n")
    journal.add("file", "app:vm", {"path": str(config)})
    journal.add("xen-domain", "app:vm", {"name": "vm1", "xl": "xl"})
    return config


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("qcow2", [False, True])
def test_a_loopback_backend_takes_back_its_volumes_and_terminate_deletes_or_keeps_them(
        tmp_path: Path, journal: Journal, process: Process, keep: bool, qcow2: bool) -> None:
    description = load_site(tmp_path, loopback(tmp_path, f"keepVolumes {str(keep).lower()};"),
                            "XenDomain")
    root, swap = volume_files(tmp_path, journal, qcow2)
    config = xen_domain(tmp_path, journal)
    app, = process.readopt([(description, "app")], journal.open_entries())
    disk = app.sf_resolve("disk")
    assert disk.state is State.STARTED and app.sf_resolve("vm").state is State.STARTED
    assert disk.disks() == [(str(root), "qcow2" if qcow2 else "raw"), (str(swap), "raw")]
    assert disk.sf_resolve("volume") == str(root)
    assert disk.sf_resolve("swapVolume") == str(swap)
    app.sf_terminate()
    assert app.wait_terminated(60) is not None
    assert root.exists() is keep and swap.exists() is keep
    assert not config.exists() and not (tmp_path / "xl" / "vm1.json").exists()
    assert journal.open_entries() == []  # deleted, or kept on purpose: nothing to undo


@pytest.mark.parametrize("gone", ["root", "swap"])
def test_a_missing_volume_refuses_and_the_journal_still_holds_the_other(
        tmp_path: Path, journal: Journal, process: Process, gone: str) -> None:
    description = load_site(tmp_path, loopback(tmp_path), "XenDomain")
    root, swap = volume_files(tmp_path, journal)
    xen_domain(tmp_path, journal)
    (root if gone == "root" else swap).unlink()
    with pytest.raises(AdoptionRefused, match="app:disk cannot take back"):
        process.readopt([(description, "app")], journal.open_entries())
    assert process.applications() == {}
    # the journal's cleaners undo the rest (the daemon calls them next)
    assert {entry.kind for entry in journal.open_entries()} == {"file", "xen-domain"}


def test_a_backend_with_no_record_of_its_volumes_refuses(
        tmp_path: Path, journal: Journal, process: Process) -> None:
    description = load_site(tmp_path, loopback(tmp_path), "XenDomain")
    xen_domain(tmp_path, journal)
    with pytest.raises(AdoptionRefused, match="app:disk cannot take back"):
        process.readopt([(description, "app")], journal.open_entries())


def test_a_file_outside_the_image_directory_is_not_taken_as_a_volume(
        tmp_path: Path, journal: Journal, process: Process) -> None:
    description = load_site(tmp_path, loopback(tmp_path), "XenDomain")
    volume_files(tmp_path, journal)
    stray = tmp_path / "scratch" / "other.img"
    stray.write_bytes(b"x")
    journal.add("file", "app:disk", {"path": str(stray)})
    xen_domain(tmp_path, journal)
    with pytest.raises(AdoptionRefused, match="app:disk cannot take back"):
        process.readopt([(description, "app")], journal.open_entries())


def test_reused_volumes_are_found_again_by_name_and_deleted_unless_kept(
        tmp_path: Path, journal: Journal, process: Process) -> None:
    description = load_site(tmp_path, loopback(tmp_path, "usingExistingVolumes true;"),
                            "XenDomain")
    root = tmp_path / "images" / "xen-domain-vm1.img"
    root.write_bytes(b"volume")  # re-used: made by someone else, never journalled
    xen_domain(tmp_path, journal)
    app, = process.readopt([(description, "app")], journal.open_entries())
    assert app.sf_resolve("disk").disks() == [(str(root), "raw")]
    app.sf_terminate()
    assert app.wait_terminated(60) is not None
    assert not root.exists()  # keepVolumes false: volumes do not outlive the domain


def test_an_lvm_backend_takes_back_its_logical_volumes(
        tmp_path: Path, journal: Journal, process: Process) -> None:
    description = load_site(tmp_path, 'LVMStorageBackend { volumeGroup "vg0"; '
                            'lvmConfig "global{activation=0}"; }', "XenDomain")
    (tmp_path / "lvm" / "vg0" / ".size").write_text(f"{256 * 2**20}\n")
    env = {**os.environ, "PATH": PATH, "SFPY_LVM_STATE": str(tmp_path / "lvm")}
    for volume in ("xen-domain-vm1", "xen-domain-vm1-swap"):
        subprocess.run(["lvcreate", "-y", "-L", "8m", "-n", volume, "vg0"], env=env,
                       check=True, capture_output=True)
        journal.add("logical-volume", "app:disk", {"group": "vg0", "volume": volume,
                                                  "config": "global{activation=0}"})
    xen_domain(tmp_path, journal)
    app, = process.readopt([(description, "app")], journal.open_entries())
    volumes = tmp_path / "lvm" / "vg0"
    assert app.sf_resolve("disk").disks() == [
        (str(volumes / "xen-domain-vm1"), "raw"), (str(volumes / "xen-domain-vm1-swap"), "raw")]
    app.sf_terminate()
    assert app.wait_terminated(60) is not None
    assert sorted(p.name for p in volumes.iterdir()) == [".size"]
    assert journal.open_entries() == []


def test_an_lvm_backend_whose_volume_is_gone_refuses(
        tmp_path: Path, journal: Journal, process: Process) -> None:
    description = load_site(tmp_path, 'LVMStorageBackend { volumeGroup "vg0"; }', "XenDomain")
    (tmp_path / "lvm" / "vg0" / ".size").write_text(f"{256 * 2**20}\n")
    journal.add("logical-volume", "app:disk", {"group": "vg0", "volume": "xen-domain-vm1",
                                              "config": None})
    xen_domain(tmp_path, journal)
    with pytest.raises(AdoptionRefused, match="app:disk cannot take back"):
        process.readopt([(description, "app")], journal.open_entries())


# -- QemuDomain ---------------------------------------------------------------------------------
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="needs qemu-system-x86_64")


def qemu_guest(tmp_path: Path, journal: Journal) -> tuple[int, dict[str, Path]]:
    """A QEMU process with no guest (``-machine none``) whose QMP answers, with the files
    and entries QemuDomain's start journals; its pid."""
    cfg = tmp_path / "cfg"
    files = {kind: cfg / f"vm1.{kind}" for kind in ("args", "console.log", "qmp", "pid")}
    files["args"].write_text("qemu-system-x86_64\n")
    files["console.log"].write_text("booted before the restart\n")
    for kind in ("args", "console.log"):
        journal.add("file", "app:vm", {"path": str(files[kind])})
    entry = journal.add("qemu-process", "app:vm", {"name": "vm1", "qmp": str(files["qmp"]),
                                                   "pidfile": str(files["pid"])})
    subprocess.run(["qemu-system-x86_64", "-machine", "none", "-display", "none",
                    "-nodefaults", "-qmp", f"unix:{files['qmp']},server=on,wait=off",
                    "-pidfile", str(files["pid"]), "-daemonize"], check=True, timeout=60)
    pid = int(files["pid"].read_text())
    journal.update(entry, {"pid": pid, "create_time": processes.creation_time(pid)})
    return pid, files


@needs_qemu
def test_a_qemu_domain_takes_back_its_running_qemu_and_terminate_stops_it(
        tmp_path: Path, journal: Journal, process: Process) -> None:
    description = load_site(tmp_path, loopback(tmp_path), "QemuDomain")
    volume_files(tmp_path, journal)
    pid, files = qemu_guest(tmp_path, journal)
    try:
        app, = process.readopt([(description, "app")], journal.open_entries())
        vm = app.sf_resolve("vm")
        assert vm.state is State.STARTED and vm.pid == pid
        assert vm.sf_resolve("pid") == pid and vm.sf_resolve("domainState") == "running"
        assert vm.sf_resolve("consoleLog") == str(files["console.log"])
        with open(files["console.log"], "a") as console:
            console.write("written after the restart\n")
        assert vm._forward_console() == ["written after the restart"]  # from the end on
        assert qemu.running(pid, processes.creation_time(pid))  # not restarted, not stopped
        app.sf_terminate()
        assert app.wait_terminated(60) is not None
        assert not qemu.running(pid, None)  # power-down ignored (no guest): quit
        assert sorted(p.name for p in (tmp_path / "cfg").iterdir()) == []
        assert list((tmp_path / "images").iterdir()) == []
        assert journal.open_entries() == []
    finally:
        qemu.kill(pid, None)


@needs_qemu
@pytest.mark.parametrize("how", ["killed", "quiet"])
def test_a_qemu_domain_whose_qemu_is_gone_or_mute_refuses(
        tmp_path: Path, journal: Journal, process: Process, how: str) -> None:
    description = load_site(tmp_path, loopback(tmp_path), "QemuDomain")
    volume_files(tmp_path, journal)
    pid, files = qemu_guest(tmp_path, journal)
    try:
        if how == "killed":
            assert qemu.kill(pid, None)
        else:
            files["qmp"].unlink()  # the process runs on, but nobody can reach its monitor
        with pytest.raises(AdoptionRefused, match="app:vm cannot take back"):
            process.readopt([(description, "app")], journal.open_entries())
        assert process.applications() == {}
        if how == "quiet":
            assert qemu.running(pid, None)  # adopt only looks: the cleaner stops it next
    finally:
        qemu.kill(pid, None)


def test_a_probe_in_flight_at_the_kill_is_taken_back_and_stopped(
        tmp_path: Path, journal: Journal, process: Process) -> None:
    """An ``xl list`` of the domain's liveness running when the daemon died leaves its
    command's entry open: no reason to refuse; what is left of it is stopped."""
    description = load_site(tmp_path, loopback(tmp_path), "XenDomain")
    volume_files(tmp_path, journal)
    xen_domain(tmp_path, journal)
    hung = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        journal.add("process-group", "app:vm", {
            "argv": ["xl", "list", "vm1"], "pid": hung.pid,
            "create_time": processes.creation_time(hung.pid)})
        app, = process.readopt([(description, "app")], journal.open_entries())
        assert hung.poll() is None  # adopt only looks
        app.sf_terminate()
        assert app.wait_terminated(60) is not None
        assert hung.wait(30) is not None
        assert journal.open_entries() == []
    finally:
        if hung.poll() is None:
            hung.kill()
            hung.wait()


@pytest.mark.parametrize("asynch", [False, True])
def test_a_parallel_site_is_rebuilt_with_its_actions_and_adopted(
        tmp_path: Path, journal: Journal, process: Process, asynch: bool) -> None:
    """The test site's shape: a Parallel of nodes (its domains start side by side), each a
    storage backend and a domain. Its actions were all created once it had started."""
    for folder in ("images", "scratch", "cfg", "xl"):
        (tmp_path / folder).mkdir()
    text = f"""
        #include "org/smartfrog/components.sf"
        #include "org/smartfrog/services/shellscript/components.sf"
        #include "org/smartfrog/sfcore/workflow/combinators/parallel.sf"
        #include "ch/cern/openlab/smartdomains/components.sf"
        sfConfig extends Parallel {{
          sfLivenessDelay 0; asynchCreateChild {str(asynch).lower()};
          node extends Compound {{
            myShell extends BashShell {{ envProperties ["PATH={PATH}",
              "SFPY_XL_STATE={tmp_path}/xl"]; }}
            disk extends LoopbackStorageBackend {{ shell LAZY ATTRIB myShell;
              imageDirectory "{tmp_path}/images"; baseImage "{tmp_path}/base.tar.gz";
              scratchDirectory "{tmp_path}/scratch"; volumeSize "64M"; swapSize "16m"; }}
            vm extends XenDomain {{ shell LAZY ATTRIB myShell; storageBackend LAZY ATTRIB disk;
              domainName "vm1"; hostname "vm1.example.org"; ip "10.1.2.3";
              netmask "255.255.0.0"; kernel "{tmp_path}/vmlinuz"; memory 64;
              configDirectory "{tmp_path}/cfg"; }}
          }}
        }}"""
    (tmp_path / "site.sf").write_text(text, encoding="utf-8")
    description = load(str(tmp_path / "site.sf"))
    root = tmp_path / "images" / "xen-domain-vm1.img"
    root.write_bytes(b"volume")
    journal.add("file", "app:node:disk", {"path": str(root)})
    import json
    import time

    (tmp_path / "xl" / "vm1.json").write_text(json.dumps(
        {"name": "vm1", "domid": 3, "memory": 64, "vcpus": 1, "started": time.time()}))
    journal.add("xen-domain", "app:node:vm", {"name": "vm1", "xl": "xl"})
    if asynch:
        with pytest.raises(AdoptionRefused, match="app cannot take back"):
            process.readopt([(description, "app")], journal.open_entries())
        return
    app, = process.readopt([(description, "app")], journal.open_entries())
    assert app.sf_resolve("node:vm").state is State.STARTED
    assert app.sf_resolve("node:disk").disks() == [(str(root), "raw")]
    app.sf_terminate()
    assert app.wait_terminated(60) is not None
    assert not root.exists() and not (tmp_path / "xl" / "vm1.json").exists()
    assert journal.open_entries() == []
