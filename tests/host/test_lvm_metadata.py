"""The LVM backend's own command sequences against real lvm2, in metadata-only mode
(``global{activation=0}``: this machine has no device-mapper, so no logical volume is ever
activated and no device node appears). A volume group is made on a loop device over a sparse
file for each test, with a name of its own, and taken away again (VG, PV, loop device)
whatever happens.

What runs without activation is checked for real: the volumes ``<volumeBaseName>-<domain>``
and ``…-swap`` made with their sizes, the room check against ``vgs`` refusing a request too
large, ``lvs`` finding existing volumes (``usingExistingVolumes``) and refusing to overwrite
them, removal, and a fill that fails half-way taking the volume it made away again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_support import FakeJournal

from sfpy.host import storage
from sfpy.host.hosts import LocalHost
from sfpy.host.runner import HostError

CONFIG = "global{activation=0}"
MIB = 1024 * 1024
TOOLS = ("lvm", "losetup", "pvcreate", "vgcreate", "lvs", "vgs", "lvcreate", "lvremove")
missing = [tool for tool in TOOLS if shutil.which(tool) is None]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(missing), reason=f"needs lvm2 and util-linux: {', '.join(missing)} "
                                             "not found"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loop devices, lvm)"),
]
# lvm2 warns about every descriptor it inherits; that noise is not what these tests read.
ENV = {**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"}


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, env=ENV, timeout=120)


def lvm(*argv: str) -> subprocess.CompletedProcess[str]:
    """An lvm command in metadata-only mode, which must succeed."""
    done = run(argv[0], "--config", CONFIG, *argv[1:])
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done


def logical_volumes(group: str) -> dict[str, int]:
    """Every logical volume of ``group`` with its size in bytes, as ``lvs`` tells them."""
    listed = lvm("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_name,lv_size",
                 group).stdout
    return {name: int(size) for name, size in (line.split() for line in listed.splitlines()
                                               if line.strip())}


def attached(backing: Path) -> bool:
    return str(backing) in run("losetup", "-a").stdout


@pytest.fixture
def group(tmp_path: Path) -> Iterator[str]:
    """A volume group of 64 MiB on a loop device of its own, removed at the end (and the loop
    device detached: checked with ``losetup -a``)."""
    backing = tmp_path / "pv.img"
    with backing.open("wb") as file:
        file.truncate(64 * MIB)
    name = f"sfpytest{uuid.uuid4().hex[:12]}"
    attach = run("losetup", "-f", "--show", str(backing))
    assert attach.returncode == 0, f"losetup -f --show: {attach.stderr}"
    device = attach.stdout.strip()
    try:
        lvm("pvcreate", device)
        lvm("vgcreate", name, device)
        yield name
    finally:
        run("vgremove", "--config", CONFIG, "-f", name)
        run("pvremove", "--config", CONFIG, "-f", device)
        run("losetup", "-d", device)
        assert not attached(backing), f"{device} is still attached to {backing}"
        assert name not in run("vgs", "--config", CONFIG, "--noheadings", "-o", "vg_name").stdout


@pytest.fixture
def host() -> Iterator[LocalHost]:
    local = LocalHost()
    yield local
    local.close()


def test_volumes_are_made_found_refused_and_removed(group: str, host: LocalHost,
                                                     tmp_path: Path):
    name, swap = "xen-domain-vm1", "xen-domain-vm1-swap"
    journal = FakeJournal()
    before = storage.free_in_volume_group(host, group, CONFIG)
    total = int(lvm("vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_size",
                    group).stdout)
    assert before == total  # an empty group: all of it is free

    # made: exactly the two volumes, with their sizes, each journalled and left open
    root_entry = storage.lvm_create_volume(host, group, name, 16 * MIB, config=CONFIG,
                                           journal=journal, owner="vm1")
    swap_entry = storage.lvm_create_volume(host, group, swap, 8 * MIB, config=CONFIG,
                                           journal=journal, owner="vm1")
    assert logical_volumes(group) == {name: 16 * MIB, swap: 8 * MIB}
    assert root_entry is not None and swap_entry is not None
    assert [journal.entries[e]["volume"] for e in (root_entry, swap_entry)] == [name, swap]
    assert all(entry["kind"] == "logical-volume" and entry["config"] == CONFIG
               and not entry["done"] for entry in journal.entries.values())
    free = storage.free_in_volume_group(host, group, CONFIG)
    assert free == total - 24 * MIB

    # found: usingExistingVolumes re-uses both; a name with no volume is refused
    assert storage.logical_volume_exists(host, group, name, CONFIG)
    assert not storage.logical_volume_exists(host, group, "xen-domain-vm2", CONFIG)
    existing = storage.lvm_existing(host, group, name, CONFIG)
    assert (existing.root, existing.swap, existing.made) == (
        f"/dev/{group}/{name}", f"/dev/{group}/{swap}", False)
    with pytest.raises(HostError, match="no logical volume"):
        storage.lvm_existing(host, group, "xen-domain-vm2", CONFIG)

    # refused: a volume of that name exists; a request larger than the free space
    base = tmp_path / "base.tar.gz"
    with tarfile.open(base, "w:gz"):
        pass
    with pytest.raises(HostError, match="already exists"):
        storage.lvm_put_in_place(host, group=group, name=name, base=str(base), size=4 * MIB,
                                 swap=None, scratch=str(tmp_path), config=CONFIG)
    with pytest.raises(HostError, match=f"not enough room in volume group {group}"):
        storage.lvm_put_in_place(host, group=group, name="xen-domain-vm2", base=str(base),
                                 size=free - 4 * MIB, swap=8 * MIB, scratch=str(tmp_path),
                                 config=CONFIG)
    assert logical_volumes(group) == {name: 16 * MIB, swap: 8 * MIB}  # nothing made

    # removed: both gone, entries closed; removing again is fine (already gone)
    made = storage.Volumes(f"/dev/{group}/{name}", f"/dev/{group}/{swap}",
                           entries=[root_entry, swap_entry])
    storage.lvm_delete(host, made, CONFIG, journal)
    assert logical_volumes(group) == {}
    assert all(entry["done"] for entry in journal.entries.values())
    storage.lvm_delete(host, existing, CONFIG)
    assert storage.free_in_volume_group(host, group, CONFIG) == total


def test_a_fill_failing_half_way_removes_the_volume_it_made(group: str, host: LocalHost,
                                                             tmp_path: Path):
    # Without activation the volume has no device node, so mke2fs cannot fill it: the
    # logical volume made just before must go again, and every entry be closed.
    (tmp_path / "root" / "etc").mkdir(parents=True)
    (tmp_path / "root" / "etc" / "hostname").write_text("vm1\n")
    base = tmp_path / "base.tar.gz"
    with tarfile.open(base, "w:gz") as archive:
        archive.add(tmp_path / "root", arcname=".")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    seen: list[tuple[str, dict[str, int]]] = []
    journal = FakeJournal(on_done=lambda _e, data: seen.append((data["kind"],
                                                                  logical_volumes(group))))
    with pytest.raises(HostError, match="mke2fs"):
        storage.lvm_put_in_place(host, group=group, name="xen-domain-vm1", base=str(base),
                                 size=16 * MIB, swap=8 * MIB, scratch=str(scratch),
                                 config=CONFIG, journal=journal)
    assert logical_volumes(group) == {}
    assert list(scratch.iterdir()) == []
    # the volume was there while the fill ran, and its entry closed only once it was gone
    assert seen == [("scratch-directory", {"xen-domain-vm1": 16 * MIB}),
                    ("logical-volume", {})]
    assert all(entry["done"] for entry in journal.entries.values())
