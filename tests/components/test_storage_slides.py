"""The seed slides' own SmartDomains example, corrected (``descriptions/examples/
slides-example.sf``), run by ``sfrun`` against the stand-in ``lvm`` and ``xl`` tools
(``tests/stand_ins``): the logical volumes are sparse files, so ``mke2fs -d`` and ``mkswap``
really run on them. The domain is created with the right configuration on the filled
volume; termination saves the image, shuts the domain down and removes everything. (The
first half of the slides' item, the example as written refused for its address, is
``tests/components/test_xen.py::test_the_seed_example_is_refused_naming_vm1_ip_…``.)"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAND_INS = REPO / "tests" / "stand_ins"
EXAMPLE = REPO / "descriptions" / "examples" / "slides-example.sf"
PREFIX = "/tmp/sfpy-slides-example"
SEED = REPO.parent / "shared" / "seed" / "000_48cd3e86f30e5c60.txt"
GROUP_SIZE = 4 * 2**30
pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("mke2fs", "mkswap", "debugfs", "blkid")),
    reason="needs e2fsprogs (mke2fs, debugfs), mkswap and blkid")


def wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def example_config(text: str) -> str:
    """The sfConfig of a description or of the slides, on one line."""
    start = text.index("sfConfig extends Compound {")
    end = text.index("domainLivenessCheck true;", start)
    return " ".join(text[start:text.index("}", end) + 3].split())


def test_the_example_changes_only_what_its_comment_says():
    if not SEED.exists():
        pytest.skip(f"the seed slides are not at {SEED}")
    slides = example_config(SEED.read_text(encoding="utf-8"))
    expected = (slides.replace('sfProcessHost "host2.cern.ch"; ', "")
                .replace("111.222.333.444", "10.1.2.3")
                .replace('"/data/slc3.tar.gz"', f'"{PREFIX}/data/slc3.tar.gz"')
                .replace('saveImagePath "/tmp"', f'saveImagePath "{PREFIX}/saved"')
                .replace('"/boot/', f'"{PREFIX}/boot/')
                .replace("domainLivenessCheck true; }",
                         f'domainLivenessCheck true; configDirectory "{PREFIX}/cfg"; }}'))
    assert example_config(EXAMPLE.read_text(encoding="utf-8")) == expected


def place(tmp: Path) -> tuple[Path, dict[str, str]]:
    """The test's files where the example's paths point, the description and the
    environment: stand-ins first on the PATH, a volume group of 4 GiB named by the host's
    property, as the slides' host configuration did."""
    root = tmp / "ex"
    for folder in ("data", "boot", "saved", "cfg", "lvm/vg0", "xl", "scratch", "run",
                   "rootfs/etc", "rootfs/usr/bin"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "rootfs" / "etc" / "hostname").write_text("vml.cern.ch\n")
    (root / "rootfs" / "usr" / "bin" / "tool").write_bytes(os.urandom(256 * 1024))
    with tarfile.open(root / "data" / "slc3.tar.gz", "w:gz") as archive:
        archive.add(root / "rootfs", arcname=".")
    (root / "boot" / "vmliuz-xen").write_bytes(b"kernel")
    (root / "boot" / "initrd-xen").write_bytes(b"initrd")
    (root / "lvm" / "vg0" / ".size").write_text(f"{GROUP_SIZE}\n")
    description = tmp / "slides-example.sf"
    description.write_text(EXAMPLE.read_text(encoding="utf-8").replace(PREFIX, str(root)))
    env = {**os.environ,
           "PATH": f"{STAND_INS}:{os.environ.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin",
           "SFPY_LVM_STATE": str(root / "lvm"), "SFPY_XL_STATE": str(root / "xl"),
           "SFPY_PROPERTIES": "-Dch.cern.openlab.smartdomains.volumeGroup=vg0",
           "TMPDIR": str(root / "scratch")}
    return description, env


def debugfs_cat(image: Path, path: str) -> str:
    return subprocess.run(["debugfs", "-R", f"cat {path}", str(image)], capture_output=True,
                          text=True, check=True).stdout


def open_entries(run_dir: Path) -> list[tuple]:
    found = []
    for database in run_dir.rglob("journal.db"):
        with sqlite3.connect(database) as connection:
            found += connection.execute(
                "SELECT kind, data FROM entry WHERE done IS NULL").fetchall()
    return found


def test_the_corrected_example_deploys_against_the_stand_ins_and_terminates_cleanly(
        tmp_path: Path):
    description, env = place(tmp_path)
    root = tmp_path / "ex"
    run = subprocess.Popen([sys.executable, "-m", "sfpy.cli.sfrun", "-v", "--run-dir",
                            str(root / "run"), str(description)], cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        domain = root / "xl" / "vm1.json"
        wait_for(lambda: domain.exists() or run.poll() is not None, "the domain")
        assert run.poll() is None, run.communicate()[1]
        volume, swap = root / "lvm" / "vg0" / "xen-domain-vm1", root / "lvm" / "vg0" / \
            "xen-domain-vm1-swap"
        # the volumes: 1G and 512M (whole 4 MiB extents), filled from the tarball, sparse
        assert volume.stat().st_size == 2**30 and swap.stat().st_size == 512 * 2**20
        assert debugfs_cat(volume, "/etc/hostname") == "vml.cern.ch\n"
        subprocess.run(["debugfs", "-R", f"dump /usr/bin/tool {tmp_path}/tool", str(volume)],
                       capture_output=True, check=True)
        assert (tmp_path / "tool").read_bytes() == \
            (root / "rootfs" / "usr" / "bin" / "tool").read_bytes()
        blkid = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", str(swap)],
                               capture_output=True, text=True).stdout.strip()
        assert blkid == "swap"
        assert volume.stat().st_blocks * 512 < 64 * 2**20  # sparse: only what was written
        # the domain's configuration: the slides' values, the volumes lvm reports
        config = (root / "cfg" / "vm1.cfg").read_text()
        assert f'kernel = "{root}/boot/vmliuz-xen"' in config
        assert f'ramdisk = "{root}/boot/initrd-xen"' in config
        assert "memory = 512" in config
        assert "ip=10.1.2.3:::255.255.0.0:vml.cern.ch:eth0:off" in config  # no gateway
        assert "fastboot" in config
        assert f"target={volume}" in config and f"target={swap}" in config
        assert re.search(r"mac=00:16:3e:[0-9a-f:]{8}, bridge=xenbr0", config)
        assert open_entries(root / "run")  # the volumes are journalled while they exist
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "Traceback" not in err
    assert "sfConfig  TERMINATED" in err
    # after termination: image saved, domain gone, volumes removed, nothing in the journal
    assert not (root / "xl" / "vm1.json").exists()
    assert [p.name for p in (root / "lvm" / "vg0").iterdir()] == [".size"]
    assert list((root / "cfg").iterdir()) == []
    assert list((root / "scratch").iterdir()) == []
    saved = list((root / "saved").iterdir())
    assert len(saved) == 1 and re.fullmatch(r"xen-domain-vm1-\d{8}T\d{6}Z\.tgz", saved[0].name)
    with tarfile.open(saved[0]) as archive:
        assert archive.extractfile("./etc/hostname").read() == b"vml.cern.ch\n"
    assert open_entries(root / "run") == []
    for word in ("lvcreate", "mke2fs", "mkswap", "xl create", "xl shutdown -w vm1",
                 "lvremove"):
        assert word in err, word
