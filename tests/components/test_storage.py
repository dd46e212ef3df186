"""LoopbackStorageBackend's operations for real (root, e2fsprogs, qemu-img): an image from a
.tar.gz and from an ext4 image (contents read with debugfs, nothing mounted), swap made, the
image saved and re-used as a base, the qcow2 overlay, volumes deleted, nothing left after a
failure half-way; and the values SmartDomains descriptions give."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from sfpy.components import smartdomains_values as values
from sfpy.host import storage
from sfpy.host.hosts import LocalHost
from sfpy.host.journal import Entry
from sfpy.host.runner import HostError

TOOLS = ("mke2fs", "debugfs", "mkswap", "blkid", "qemu-img", "e2fsck", "resize2fs")
missing = [tool for tool in TOOLS if shutil.which(tool) is None]
real = pytest.mark.skipif(bool(missing) or os.geteuid() != 0,
                          reason=f"needs root and {', '.join(missing) or 'nothing more'}")


def debugfs_cat(image: Path, path: str) -> str:
    result = subprocess.run(["debugfs", "-R", f"cat {path}", str(image)], capture_output=True,
                            text=True, check=True)
    return result.stdout


def blkid(path: Path) -> str:
    return subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", str(path)],
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def place(tmp_path: Path):
    (tmp_path / "images").mkdir()
    (tmp_path / "saved").mkdir()
    (tmp_path / "scratch").mkdir()
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hostname").write_text("vm1\n")
    with tarfile.open(tmp_path / "base.tar.gz", "w:gz") as archive:
        archive.add(rootfs, arcname=".")
    host = LocalHost(log=logging.getLogger("test.storage"))
    yield tmp_path, host
    host.close()


def put(tmp_path: Path, host: LocalHost, base: Path, **options) -> storage.Volumes:
    arguments = {"directory": str(tmp_path / "images"), "name": "xen-domain-vm1",
                 "base": str(base), "size": 64 * 2**20, "swap": 16 * 2**20,
                 "scratch": str(tmp_path / "scratch")}
    arguments.update(options)
    return storage.loopback_put_in_place(host, **arguments)


@pytest.mark.integration
@real
def test_image_from_a_tarball_saved_and_reused_as_a_base(place):
    tmp_path, host = place
    volumes = put(tmp_path, host, tmp_path / "base.tar.gz")
    assert debugfs_cat(Path(volumes.root), "/etc/hostname") == "vm1\n"
    assert blkid(Path(volumes.swap)) == "swap"
    assert list((tmp_path / "scratch").iterdir()) == []  # the unpacked tree is gone
    saved = storage.save_image(host, source=volumes.root, source_format="raw",
                               directory=str(tmp_path / "saved"), stem="xen-domain-vm1",
                               extension="img", when="20070601T120000Z",
                               scratch=str(tmp_path / "scratch"))
    with pytest.raises(HostError, match="never overwritten"):
        storage.save_image(host, source=volumes.root, source_format="raw",
                           directory=str(tmp_path / "saved"), stem="xen-domain-vm1",
                           extension="img", when="20070601T120000Z",
                           scratch=str(tmp_path / "scratch"))
    storage.loopback_delete(host, volumes)
    assert list((tmp_path / "images").iterdir()) == []
    # the saved raw image is an ext4 base: copied and grown, or overlaid
    grown = put(tmp_path, host, Path(saved), size=128 * 2**20, swap=None, copy_on_write=False)
    assert debugfs_cat(Path(grown.root), "/etc/hostname") == "vm1\n"
    assert Path(grown.root).stat().st_size == 128 * 2**20
    storage.loopback_delete(host, grown)
    overlay = put(tmp_path, host, Path(saved), swap=None)
    assert overlay.root.endswith(".qcow2") and overlay.root_format == "qcow2"
    info = subprocess.run(["qemu-img", "info", overlay.root], capture_output=True, text=True)
    assert saved in info.stdout  # backed by the saved image, not a copy of it
    tgz = storage.save_image(host, source=overlay.root, source_format="qcow2",
                             directory=str(tmp_path / "saved"), stem="xen-domain-vm1",
                             extension="tar.gz", when="20070601T130000Z",
                             scratch=str(tmp_path / "scratch"))
    with tarfile.open(tgz) as archive:
        assert archive.extractfile("./etc/hostname").read() == b"vm1\n"
    storage.loopback_delete(host, overlay)
    assert list((tmp_path / "images").iterdir()) == []
    assert list((tmp_path / "scratch").iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == [
        "xen-domain-vm1-20070601T120000Z.img", "xen-domain-vm1-20070601T130000Z.tar.gz"]


@pytest.mark.integration
@real
def test_nothing_is_left_after_a_failure_half_way(place):
    tmp_path, host = place
    big = tmp_path / "rootfs" / "big"
    big.write_bytes(os.urandom(8 * 2**20))
    with tarfile.open(tmp_path / "big.tar", "w") as archive:
        archive.add(tmp_path / "rootfs", arcname=".")
    with pytest.raises(HostError, match="mke2fs"):
        put(tmp_path, host, tmp_path / "big.tar", size=4 * 2**20)  # too small: mke2fs fails
    assert list((tmp_path / "images").iterdir()) == []
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("1G", 2**30), ("512M", 512 * 2**20), ("10g", 10 * 2**30), (4096, 4096), ("64k", 65536)])
def test_sizes_are_powers_of_1024_in_either_case(text, expected):
    assert values.size_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "1X", "-1G", "0", "1.5G", True])
def test_wrong_sizes_are_refused(text):
    with pytest.raises(values.ValueProblem):
        values.size_bytes(text)


def test_booleans_written_as_strings_and_numbers_as_long():
    assert values.boolean("false") is False and values.boolean("True") is True
    assert values.boolean(False) is False
    with pytest.raises(values.ValueProblem):
        values.boolean("no")
    assert values.whole_number(240) == 240 and values.whole_number("240L") == 240


def test_addresses_names_and_paths():
    with pytest.raises(values.ValueProblem, match="333 is more than 255"):
        values.ipv4("111.222.333.444")
    assert values.netmask("255.255.0.0") == "255.255.0.0"
    with pytest.raises(values.ValueProblem, match="not contiguous"):
        values.netmask("255.0.255.0")
    assert values.hostname("vml.cern.ch") == "vml.cern.ch"
    with pytest.raises(values.ValueProblem):
        values.hostname("bad_host.cern.ch")
    with pytest.raises(values.ValueProblem):
        values.absolute_path("relative/path")
    with pytest.raises(values.ValueProblem):
        values.name("vm 1; rm -rf /")


def mounted_under(folder: Path) -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return [line.split()[1] for line in mounts if str(folder) in line]


@pytest.mark.integration
@real
@pytest.mark.skipif(not storage.can_export_with_fuse(LocalHost()),
                    reason="needs /dev/fuse and qemu-storage-daemon")
def test_a_qcow2_overlay_grows_its_filesystem_to_the_volume_size(place):
    tmp_path, host = place
    base = tmp_path / "base.img"
    subprocess.run(["truncate", "-s", "32M", str(base)], check=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tmp_path / "rootfs"),
                    str(base)], check=True)
    before = base.read_bytes()
    overlay = put(tmp_path, host, base, size=256 * 2**20, swap=None)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", overlay.root],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["virtual-size"] == 256 * 2**20
    assert info["actual-size"] < 4 * 2**20  # the growth's metadata only
    assert base.read_bytes() == before  # the base is never written
    raw = tmp_path / "scratch" / "raw.img"
    subprocess.run(["qemu-img", "convert", "-O", "raw", overlay.root, str(raw)], check=True)
    header = subprocess.run(["dumpe2fs", "-h", str(raw)], capture_output=True, text=True,
                            check=True).stdout
    fields = dict(line.split(":", 1) for line in header.splitlines() if ":" in line)
    assert int(fields["Block count"]) * int(fields["Block size"]) == 256 * 2**20
    assert subprocess.run(["e2fsck", "-f", "-n", str(raw)], capture_output=True).returncode == 0
    assert debugfs_cat(raw, "/etc/hostname") == "vm1\n"
    raw.unlink()
    assert mounted_under(tmp_path) == []  # the FUSE export is stopped
    assert list((tmp_path / "scratch").iterdir()) == []
    storage.loopback_delete(host, overlay)
    assert list((tmp_path / "images").iterdir()) == []


@pytest.fixture()
def small_directory(tmp_path: Path):
    """A 48 MiB tmpfs as the image directory (unmounted at the end)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48M", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.integration
@real
def test_the_room_check_counts_what_is_written_and_refuses_what_does_not_fit(
        place, small_directory: Path):
    tmp_path, host = place
    # 1 GiB volume + 512 MiB swap in 48 MiB: sparse, ~small content, journal 32 MiB: fits
    volumes = put(tmp_path, host, tmp_path / "base.tar.gz", directory=str(small_directory),
                  size=2**30, swap=512 * 2**20)
    assert debugfs_cat(Path(volumes.root), "/etc/hostname") == "vm1\n"
    assert Path(volumes.root).stat().st_size == 2**30
    storage.loopback_delete(host, volumes)
    # a 4 GiB volume needs a 64 MiB journal: refused before anything is made
    with pytest.raises(HostError, match=f"not enough room in {small_directory}"):
        put(tmp_path, host, tmp_path / "base.tar.gz", directory=str(small_directory),
            size=4 * 2**30)
    # a small tarball of files larger than the room (known once unpacked): refused after
    # unpacking, before the image is made
    (tmp_path / "rootfs" / "big").write_bytes(bytes(40 * 2**20))
    with tarfile.open(tmp_path / "big.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "rootfs", arcname=".")
    assert (tmp_path / "big.tar.gz").stat().st_size < 2**20
    with pytest.raises(HostError, match=f"not enough room in {small_directory}"):
        put(tmp_path, host, tmp_path / "big.tar.gz", directory=str(small_directory),
            size=128 * 2**20, swap=None)
    assert list(small_directory.iterdir()) == []
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.integration
@real
@pytest.mark.skipif(not storage.can_export_with_fuse(LocalHost()),
                    reason="needs /dev/fuse and qemu-storage-daemon")
@pytest.mark.parametrize("how", ["no pid file", "exporter killed"])
def test_the_fuse_export_cleaner_stops_the_exporter_and_unmounts(tmp_path: Path, how: str):
    mountpoint = tmp_path / "disk"
    mountpoint.touch()
    image = tmp_path / "x.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    pidfile = tmp_path / "qsd.pid"
    subprocess.run(["qemu-storage-daemon", "--blockdev",
                    f"driver=file,node-name=f,filename={image}", "--blockdev",
                    "driver=qcow2,node-name=q,file=f", "--export",
                    f"type=fuse,id=e,node-name=q,mountpoint={mountpoint},writable=on",
                    "--pidfile", str(pidfile), "--daemonize"], check=True)
    pid = int(pidfile.read_text())
    try:
        assert mounted_under(tmp_path) == [str(mountpoint)]
        if how == "no pid file":  # the run died before qemu-storage-daemon wrote it
            pidfile.unlink()
        else:  # the exporter died without unmounting: a dead FUSE mount is left
            os.kill(pid, 9)
            deadline = time.monotonic() + 30
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.05)
        entry = Entry(1, "fuse-export", "sfConfig:loop",
                      {"mountpoint": str(mountpoint), "pidfile": str(pidfile)}, "tag")
        said = storage.stop_fuse_export_entry(entry)
        assert mounted_under(tmp_path) == [] and not os.path.exists(f"/proc/{pid}")
        assert ("stopped the export" if how == "no pid file" else "unmounted") in said
        assert "already gone" in storage.stop_fuse_export_entry(entry)  # safe twice
    finally:
        if os.path.exists(f"/proc/{pid}"):
            os.kill(pid, 9)
        for path in mounted_under(tmp_path):
            subprocess.run(["umount", "-l", path], check=False)
