"""``kill -9`` of the daemon at each step of putting an image in place: an sfdaemon deploys a
LoopbackStorageBackend and a XenDomain (the stand-in ``xl``); the step's tool is replaced by a
wrapper that marks the step reached and then waits for ever, the daemon is killed with
SIGKILL there, and restarted. The restarted daemon must have cleaned everything the
half-made application left: no file in ``imageDirectory`` or the scratch directory, no Xen
domain, no configuration file, no loop device, no process of the wrapper, no open journal
entry.

The steps, in the order the backend takes them (a tarball base, then a swap volume):
the scratch directory made (``mktemp``), the tarball unpacked (``tar``, the fill under way),
the root file made (``truncate``), the filesystem made (``mke2fs``), the swap file made
(before ``mkswap``), the swap made (after ``mkswap``), the domain created (``xl create``);
and for an ext4 base, the qcow2 overlay made (``qemu-img``) and its filesystem grown while
the overlay is exported through FUSE (after ``resize2fs``: a ``qemu-storage-daemon`` and a
mount are left by the dead daemon). And an LVMStorageBackend on the stand-in lvm (its logical
volumes are sparse files): killed once its root volume is filled, and once its swap is made.

Daemons listen on 127.0.0.2:3800: run these in a network namespace of their own
(``unshare -n``) when other daemon tests may run at the same time.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tarfile
import uuid
from pathlib import Path

import psutil
import pytest

from tests.daemon.daemon_support import Daemon, command, environment, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STAND_INS = REPO / "tests" / "stand_ins"
HOST = "127.0.0.2"
TOOLS = ("mke2fs", "mkswap", "tar", "truncate", "mktemp", "qemu-img", "losetup", "resize2fs")
missing = [tool for tool in TOOLS if shutil.which(tool) is None]

#: (step id, tool, "before" or "after" the real tool runs, base kind).
STEPS = [
    ("scratch-made", "mktemp", "after", "tar"),
    ("during-fill", "tar", "after", "tar"),
    ("root-file-made", "truncate", "after", "tar"),
    ("after-mkfs", "mke2fs", "after", "tar"),
    ("swap-file-made", "mkswap", "before", "tar"),
    ("after-swap", "mkswap", "after", "tar"),
    ("domain-created", "xl", "after", "tar"),
    ("overlay-made", "qemu-img", "after", "ext4"),
    ("overlay-exported-and-grown", "resize2fs", "after", "ext4"),
    ("lvm-volume-filled", "mke2fs", "after", "lvm"),
    ("lvm-swap-made", "mkswap", "after", "lvm"),
]


def wrapper(bin_dir: Path, tool: str, when: str, marker: Path, pause: str) -> None:
    """``bin_dir/tool``: runs the real tool (before or after marking), marks, then sleeps
    for ever (``sleep PAUSE``, a number of this test's own, so its process can be found)."""
    real = STAND_INS / "xl" if tool == "xl" else Path(shutil.which(tool) or tool)
    only = '[ "$1" = create ] || exec "$REAL" "$@"\n' if tool == "xl" else ""
    run_real = '"$REAL" "$@" || exit $?\n'
    text = (f'#!/bin/sh\nREAL="{real}"\n{only}'
            f"{run_real if when == 'after' else ''}"
            f'touch "{marker}"\nexec sleep {pause}\n')
    path = bin_dir / tool
    path.write_text(text)
    path.chmod(0o755)


def description(tmp: Path, bin_dir: Path, base: str, lvm: bool = False) -> Path:
    path = f"{bin_dir}:{STAND_INS}:{os.environ.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin"
    kind, where = ("LVMStorageBackend", 'volumeGroup "vg0";') if lvm else \
        ("LoopbackStorageBackend", f'imageDirectory "{tmp}/images";')
    text = f"""#include "org/smartfrog/components.sf"
#include "org/smartfrog/services/shellscript/components.sf"
#include "ch/cern/openlab/smartdomains/components.sf"
sfConfig extends Compound {{
  myShell extends BashShell {{ envProperties ["PATH={path}", "SFPY_XL_STATE={tmp}/xl",
    "SFPY_LVM_STATE={tmp}/lvm"]; }}
  loop extends {kind} {{ shell LAZY ATTRIB myShell; baseImage "{base}";
    {where} scratchDirectory "{tmp}/scratch"; volumeSize "64M"; swapSize "16M"; }}
  Vm1 extends XenDomain {{ shell LAZY ATTRIB myShell; storageBackend LAZY ATTRIB loop;
    domainName "vm1"; hostname "vm1.cern.ch"; ip "10.1.2.3"; netmask "255.255.0.0";
    kernel "{tmp}/vmlinuz"; memory 256; configDirectory "{tmp}/cfg";
    xlCommand "{bin_dir}/xl"; }}
}}
"""
    (tmp / "app.sf").write_text(text)
    return tmp / "app.sf"


def bases(tmp: Path) -> dict[str, Path]:
    rootfs = tmp / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hostname").write_text("vm1\n")
    (rootfs / "payload").write_bytes(os.urandom(2 * 2**20))
    with tarfile.open(tmp / "base.tar.gz", "w:gz") as archive:
        archive.add(rootfs, arcname=".")
    ext4 = tmp / "base.img"
    subprocess.run(["truncate", "-s", "32M", str(ext4)], check=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(rootfs), str(ext4)],
                   check=True)
    return {"tar": tmp / "base.tar.gz", "ext4": ext4}


def open_entries(state_dir: Path) -> list[tuple]:
    found = []
    for database in state_dir.rglob("journal.db"):
        with sqlite3.connect(database) as connection:
            found += connection.execute(
                "SELECT kind, owner, data FROM entry WHERE done IS NULL").fetchall()
    return found


def loop_devices(tmp: Path) -> list[str]:
    listed = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return [line for line in listed.splitlines() if str(tmp) in line]


def mounted_under(folder: Path) -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return [line.split()[1] for line in mounts if str(folder) in line]


def exporters(folder: Path) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] and "qemu-storage-daemon" in p.info["cmdline"][0]
            and any(str(folder) in word for word in p.info["cmdline"])]


def pausing(pause: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] == ["sleep", pause]]


@pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")
@pytest.mark.parametrize(("tool", "when", "base"), [step[1:] for step in STEPS],
                         ids=[step[0] for step in STEPS])
def test_kill_9_of_the_daemon_at_a_step_then_restart_leaves_nothing(
        tmp_path: Path, tool: str, when: str, base: str):
    for folder in ("images", "scratch", "cfg", "xl", "bin", "lvm/vg0"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "lvm" / "vg0" / ".size").write_text(f"{256 * 2**20}\n")
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    marker = tmp_path / "reached"
    pause = f"{3600 + uuid.uuid4().int % 10**6 / 10**6:.6f}"
    wrapper(tmp_path / "bin", tool, when, marker, pause)
    path = description(tmp_path, tmp_path / "bin",
                       str(bases(tmp_path)["tar" if base == "lvm" else base]), base == "lvm")
    env = {**environment(), "SFPY_XL_STATE": str(tmp_path / "xl"),
           "SFPY_LVM_STATE": str(tmp_path / "lvm"),
           "PATH": f"{STAND_INS}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    daemon = Daemon(HOST, tmp_path / "state", env=env)
    daemon.start()
    client = None
    try:
        client = subprocess.Popen(command("sfstart", HOST, "vm", str(path)), env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: marker.exists() or client.poll() is not None, 60,
                 what=f"the step {tool} {when}")
        assert marker.exists(), client.communicate()[1] + daemon.log
        assert open_entries(tmp_path / "state")  # something half-made is journalled
        volumes = [*(tmp_path / "images").iterdir(),
                   *(p for p in (tmp_path / "lvm" / "vg0").iterdir() if p.name != ".size")]
        if tool not in ("mktemp", "tar"):
            assert volumes, "the root volume is made at this step"
        daemon.kill()  # kill -9 at this step
        client.wait(60)
        daemon.start()  # recovery cleans what the dead daemon's application left
        wait_for(lambda: not pausing(pause), 30, what="the paused tool to be stopped")
        assert list((tmp_path / "images").iterdir()) == []
        assert [p.name for p in (tmp_path / "lvm" / "vg0").iterdir()] == [".size"]
        assert list((tmp_path / "scratch").iterdir()) == []
        assert list((tmp_path / "cfg").iterdir()) == []
        assert not (tmp_path / "xl" / "vm1.json").exists()
        assert loop_devices(tmp_path) == []
        assert mounted_under(tmp_path) == []
        assert exporters(tmp_path) == []
        assert open_entries(tmp_path / "state") == []
        assert "Traceback" not in daemon.log
        if tool == "resize2fs":  # the export outlived the daemon: recovery stopped it
            assert "stopped the export of" in daemon.log, daemon.log
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait(10)
        daemon.stop()
        daemon.kill()
        daemon.clean_leftovers()
        for process in [*pausing(pause), *exporters(tmp_path)]:
            process.kill()
        for mountpoint in mounted_under(tmp_path):
            subprocess.run(["umount", "-l", mountpoint], check=False)
