"""The built image booted by a description (markers ``image`` and ``vm``): an ImageBuilder with
the shared build's parameters (so the image comes from the store), a LoopbackStorageBackend
whose ``baseImage`` is ``LAZY PARENT:image:path`` and a QemuDomain whose ``kernel`` and
``ramdisk`` are the image's, on a bridge in a network namespace of the test's own. The domain
is ready when the guest prints the host name and address its description gave (the image's
boot script reads them from the kernel's ``ip=``); then everything terminates and nothing is
left."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from image_support import APT_CACHE, image_tier

REPO = Path(__file__).resolve().parents[2]
pytestmark = [*image_tier(), pytest.mark.vm, pytest.mark.slow]


@pytest.fixture
def netns():
    """A network namespace with a bridge ``sfbr0``: the guest's network never leaves it."""
    if shutil.which("qemu-system-x86_64") is None or shutil.which("ip") is None:
        pytest.skip("booting the image needs qemu-system-x86_64 and ip")
    name = f"sfimg-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for command in (["link", "set", "lo", "up"], ["link", "add", "sfbr0", "type", "bridge"],
                        ["link", "set", "sfbr0", "up"]):
            subprocess.run(["ip", "-n", name, *command], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_a_description_boots_its_built_image_under_qemudomain(built, inputs, netns, tmp_path):
    for folder in ("images", "scratch", "cfg"):
        (tmp_path / folder).mkdir()
    description = tmp_path / "site.sf"
    description.write_text(f'''
#include "ch/cern/openlab/smartdomains/components.sf"
#include "org/sfpy/images/components.sf"
sfConfig extends Compound {{
  image extends ImageBuilder {{
    groups ["ssh-server"]; packages ["less"]; hostname "imgtest"; format "img";
    files ["{inputs['placed']}:/etc/sfpy-test/placed.txt:0640"]; sshKeys ["{inputs['key']}"];
    store "{inputs['store']}"; aptCache "{APT_CACHE}";
  }}
  disk extends LoopbackStorageBackend {{
    baseImage LAZY PARENT:image:path; imageDirectory "{tmp_path}/images";
    scratchDirectory "{tmp_path}/scratch"; swapSize "32M";
  }}
  vm extends QemuDomain {{
    storageBackend LAZY PARENT:disk;
    kernel LAZY PARENT:image:kernel; ramdisk LAZY PARENT:image:ramdisk;
    hostname "web1.example.org"; ip "10.78.0.2"; netmask "255.255.255.0";
    gateway "10.78.0.1"; memory 512;
    network "bridge"; bridge "sfbr0"; netns "{netns}";
    readyPattern "sfpy-guest: hostname @hostname@ address @ip@/24 on eth0";
    readyTimeout 420000; configDirectory "{tmp_path}/cfg"; shutdownTimeout 60000;
  }}
}}
''')
    result = subprocess.run([sys.executable, "-m", "sfpy.cli.sfrun", "-v", "--terminate-after",
                             "0", "--timeout", "600", str(description)],
                            capture_output=True, text=True, timeout=700, cwd=REPO)
    err = result.stderr
    assert result.returncode == 0, err[-4000:]
    # the image came from the store (same parameters as the shared build): nothing was built
    assert f"image {built['key'][:12]} from the store" in err
    assert re.search(r"sfConfig:vm: console: sfpy-guest: hostname web1\.example\.org address "
                     r"10\.78\.0\.2/24 on eth0", err), err[-4000:]
    assert "domain web1 ready after" in err
    # nothing left: volumes, QEMU's files
    left = [str(p.relative_to(tmp_path)) for folder in ("images", "scratch", "cfg")
            for p in (tmp_path / folder).iterdir()]
    assert left == []
    assert os.path.exists(built["path"])  # the store's image is untouched (an overlay was used)
