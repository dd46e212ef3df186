"""LoopbackStorageBackend's operations for real (root, e2fsprogs, qemu-img): an image from a
.tar.gz and from an ext4 image (contents read with debugfs, nothing mounted), swap made, the
image saved and re-used as a base, the qcow2 overlay, volumes deleted, nothing left after a
failure half-way; and the values SmartDomains descriptions give."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from sfpy.components import smartdomains_values as values
from sfpy.host import storage
from sfpy.host.hosts import LocalHost
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
