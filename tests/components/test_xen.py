"""XenDomain on a LoopbackStorageBackend, run by ``sfrun`` against the stand-in ``xl``
(``tests/stand_ins/xl``, domain state in a directory): a clean run (configuration written
with absolute paths, image saved, volumes deleted), a domain that fails to start (volumes
deleted even with keepVolumes), one that dies later (liveness), one that ignores shutdown
(destroyed after shutdownTimeout), and the seed slides' example refused before anything
runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from sfpy.host import xl

REPO = Path(__file__).resolve().parents[2]
STAND_INS = REPO / "tests" / "stand_ins"
SFRUN = [sys.executable, "-m", "sfpy.cli.sfrun", "-v"]
needs = pytest.mark.skipif(shutil.which("mke2fs") is None or shutil.which("mkswap") is None,
                           reason="needs e2fsprogs (mke2fs) and mkswap")

HEADER = """#include "org/smartfrog/components.sf"
#include "org/smartfrog/services/shellscript/components.sf"
#include "ch/cern/openlab/smartdomains/components.sf"
"""


def site(tmp: Path, backend: str = "", domain: str = "") -> Path:
    for folder in ("images", "saved", "cfg", "xl", "scratch", "rootfs/etc"):
        (tmp / folder).mkdir(parents=True, exist_ok=True)
    (tmp / "rootfs" / "etc" / "hostname").write_text("vm1\n")
    with tarfile.open(tmp / "base.tar.gz", "w:gz") as archive:
        archive.add(tmp / "rootfs", arcname=".")
    (tmp / "vmlinuz").write_bytes(b"kernel")
    path = f"{STAND_INS}:{os.environ.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin"
    text = HEADER + f"""
sfConfig extends Compound {{
  myShell extends BashShell {{ envProperties ["PATH={path}", "SFPY_XL_STATE={tmp}/xl"]; }}
  loop extends LoopbackStorageBackend {{ shell LAZY ATTRIB myShell; baseImage "{tmp}/base.tar.gz";
    imageDirectory "{tmp}/images"; scratchDirectory "{tmp}/scratch"; volumeSize "64M";
    swapSize "16m"; saveImagePath "{tmp}/saved"; {backend} }}
  Vm1 extends XenDomain {{ shell LAZY ATTRIB myShell; storageBackend LAZY ATTRIB loop;
    domainName "vm1"; hostname "vm1.cern.ch"; ip "10.1.2.3"; netmask "255.255.0.0";
    kernel "{tmp}/vmlinuz"; memory 512; extra "fastboot" domainLivenessDelay 100L;
    domainLivenessFactor 2; configDirectory "{tmp}/cfg"; {domain} }}
}}
"""
    (tmp / "site.sf").write_text(text)
    return tmp / "site.sf"


def sfrun(*arguments: str, wait: bool = True, env: dict | None = None):
    command = [*SFRUN, *arguments]
    environment = {**os.environ, **(env or {})}
    if wait:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO,
                              env=environment)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env=environment)


def left(tmp: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp)) for folder in ("images", "cfg", "xl", "scratch")
                  for p in (tmp / folder).iterdir())


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@needs
def test_a_domain_runs_and_terminates_cleanly(tmp_path: Path):
    description = site(tmp_path, backend='saveImage "true"; saveImageExtension "tgz";')
    run = sfrun("--terminate-after", "0.5", str(description))
    assert run.returncode == 0, run.stderr
    assert "xl create" in run.stderr and "xl shutdown -w vm1" in run.stderr
    assert left(tmp_path) == []
    saved = list((tmp_path / "saved").iterdir())
    assert len(saved) == 1 and saved[0].name.startswith("xen-domain-vm1-")
    with tarfile.open(saved[0]) as archive:
        assert archive.extractfile("./etc/hostname").read() == b"vm1\n"


@needs
def test_a_domain_that_does_not_start_deletes_its_volumes_even_with_keep_volumes(tmp_path):
    description = site(tmp_path, backend='keepVolumes true; saveImage true;',
                       domain='kernel "/nonexistent/vmlinuz";')
    run = sfrun("--terminate-after", "0", str(description))
    assert run.returncode == 1
    assert "failed to read kernel" in run.stderr
    assert left(tmp_path) == []
    assert list((tmp_path / "saved").iterdir()) == []  # nothing saved


@needs
def test_a_domain_that_dies_later_fails_its_liveness_and_is_cleaned(tmp_path: Path):
    description = site(tmp_path)
    process = sfrun("--timeout", "60", str(description), wait=False)
    state = tmp_path / "xl" / "vm1.json"
    wait_for(state.exists, "the domain to be created")
    state.unlink()  # the domain crashed
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "failed its liveness check 2 times" in err
    assert left(tmp_path) == []


@needs
def test_a_domain_that_ignores_shutdown_is_destroyed_after_the_timeout(tmp_path: Path):
    description = site(tmp_path, domain="shutdownTimeout 500;")
    (tmp_path / "xl" ).mkdir(exist_ok=True)
    (tmp_path / "xl" / "vm1.ignore-shutdown").write_text("")
    run = sfrun("--terminate-after", "0.3", str(description))
    (tmp_path / "xl" / "vm1.ignore-shutdown").unlink()
    assert run.returncode == 0, run.stderr
    assert "xl destroy vm1" in run.stderr
    assert left(tmp_path) == []


def test_the_configuration_has_absolute_paths_the_ip_argument_and_a_xen_mac():
    config = xl.DomainConfig(name="vm1", kernel="/boot/vmlinuz-xen", ramdisk="/boot/initrd-xen",
                             memory=512, hostname="vm1.cern.ch", ip="10.1.2.3",
                             netmask="255.255.0.0", gateway="10.1.0.1", extra="fastboot",
                             disks=[("/srv/xen/xen-domain-vm1.img", "raw"),
                                    ("/srv/xen/xen-domain-vm1-swap.img", "raw")])
    text = xl.domain_config(config)
    assert 'kernel = "/boot/vmlinuz-xen"' in text
    assert "ip=10.1.2.3::10.1.0.1:255.255.0.0:vm1.cern.ch:eth0:off" in text
    assert "console=hvc0" in text and "fastboot" in text
    assert "target=/srv/xen/xen-domain-vm1.img" in text and "vdev=xvda2" in text
    assert f"mac={xl.mac_for('vm1.cern.ch')}, bridge=xenbr0" in text
    assert xl.mac_for("vm1.cern.ch").startswith("00:16:3e:")
    assert xl.mac_for("vm1.cern.ch") == xl.mac_for("VM1.cern.ch")
    no_gateway = xl.kernel_ip(xl.DomainConfig(name="a", kernel="/k", memory=1, hostname="a",
                                              ip="10.0.0.1", netmask="255.0.0.0", disks=[]))
    assert no_gateway == "ip=10.0.0.1:::255.0.0.0:a:eth0:off"


SEED = (Path(__file__).resolve().parents[3] / "shared" / "seed" / "000_48cd3e86f30e5c60.txt")


def test_the_seed_example_is_refused_naming_vm1_ip_before_anything_runs(tmp_path: Path):
    if SEED.exists():
        text = SEED.read_text(encoding="utf-8")
        start = text.index("sfConfig extends Compound { sfProcessHost")
        end = text.index("domainLivenessCheck true; } }") + len("domainLivenessCheck true; } }")
        example = text[start:end].replace('sfProcessHost "host2.cern.ch"; ', "")
    else:
        pytest.skip(f"the seed slides are not at {SEED}")
    (tmp_path / "seed.sf").write_text(HEADER + example + "\n")
    run = sfrun("--run-dir", str(tmp_path / "run"), str(tmp_path / "seed.sf"))
    assert run.returncode == 3, run.stderr
    assert "in sfConfig:Vm1:ip" in run.stderr
    assert "'111.222.333.444' is not an IPv4 address (333 is more than 255)" in run.stderr
    assert "run for" not in run.stderr  # no command ran


def test_every_problem_is_reported_together(tmp_path: Path):
    text = HEADER + """sfConfig extends Compound { myShell extends BashShell;
  lvm extends LVMStorageBackend { volumeSize "1X"; baseImage "relative.tgz"; keepVolumes "maybe"; }
  Vm1 extends XenDomain { storageBackend LAZY ATTRIB lvm; hostname "bad_name"; ip "1.2.3";
    netmask "255.0.255.0"; kernel "/k"; memory 0; } }
"""
    (tmp_path / "bad.sf").write_text(text)
    run = sfrun(str(tmp_path / "bad.sf"))
    assert run.returncode == 3
    for path in ("sfConfig:lvm:volumeSize", "sfConfig:lvm:baseImage", "sfConfig:lvm:keepVolumes",
                 "sfConfig:Vm1:hostname", "sfConfig:Vm1:ip", "sfConfig:Vm1:netmask",
                 "sfConfig:Vm1:memory"):
        assert f"in {path}," in run.stderr, path
