"""The README's main job as it runs by default (markers ``vm`` and ``image``): the test site
booting a Debian image that each node's ImageBuilder builds (one build; the other nodes wait
for its lock and take it from the store), with an ssh key placed, each guest showing on its
console the hostname and address the description gave it; then everything down and nothing
left. Packages come from the image tier's package cache (``$SFPY_TEST_APT_CACHE``); the image
store and the key pair are the test's own, removed afterwards.

The daemons listen on loopback addresses of their own (127.0.0.62 and .63: the image build
needs the network to the Debian mirror, so this test cannot run in a private network
namespace and must not collide with the daemon tests' fixed addresses).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_support import APT_CACHE, KEY_LINE, debugfs, image_tier

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "descriptions" / "examples" / "testsite" / "run-testsite.sh"
BIN = Path(sys.executable).parent
GUESTS = {"ce": ("ce.testsite", "10.0.2.11"), "bdii": ("bdii.testsite", "10.0.2.13"),
          "wn": ("wn.testsite", "10.0.2.12")}
ADDRESSES = "127.0.0.62 127.0.0.63"

pytestmark = [*image_tier(), pytest.mark.vm, pytest.mark.slow]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A folder with a short path: the QMP sockets' paths must fit in 107 characters."""
    folder = Path(tempfile.mkdtemp(prefix="sfdeb.", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _processes(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-a", "-f", "--", marker], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


def test_the_main_job_boots_the_site_from_a_built_debian_image(short_tmp: Path) -> None:
    for tool in ("qemu-system-x86_64", "qemu-img"):
        if shutil.which(tool) is None:
            pytest.skip(f"the main job needs {tool}")
    if not (BIN / "sfdaemon").exists():
        pytest.skip(f"the sfpy commands are not installed in {BIN} (pip install -e .)")
    temp, store, keys = short_tmp / "tmp", short_tmp / "store", short_tmp / "keys"
    temp.mkdir()
    os.makedirs(APT_CACHE, exist_ok=True)
    (short_tmp / "id.pub").write_text(KEY_LINE + "\n")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SFPY_TESTSITE_", "SFPY_CERT", "SFPY_KEY", "SFPY_CA"))}
    env.pop("SFPY_INSECURE", None)
    env.update(SFPY_BIN=str(BIN), TMPDIR=str(temp), SFPY_TESTSITE_ADDRESSES=ADDRESSES,
               SFPY_TESTSITE_APT_CACHE=APT_CACHE, SFPY_TESTSITE_CACHE=str(keys))
    result = subprocess.run(["bash", str(SCRIPT), "--no-install", "--store", str(store),
                             "--ssh-key", str(short_tmp / "id.pub")],
                            capture_output=True, text=True, env=env, timeout=1500,
                            stdin=subprocess.DEVNULL)
    out = result.stdout
    # the script's own lines (not the daemons' logs it shows on failure) first
    said = "\n".join(line for line in result.stderr.splitlines()
                     if not re.match(r"\s*\d{4}-\d\d-\d\d ", line))
    assert result.returncode == 0, f"{out}\n{said[-6000:]}\n{result.stderr[-3000:]}"

    # each console showed what site.sf gave its node, in the Debian image's own words
    for name, (hostname, ip) in GUESTS.items():
        assert f"{name}: sfpy-guest: hostname {hostname} address {ip}/24 on eth0" in out, out
    # one image, built here (a fresh store) by one node, taken from the store by the others
    found = re.search(r"image: Debian \(sfimage\) ([0-9a-f]{64})\n\s+(\S+)\n\s+cache hit: no",
                      out)
    assert found, out
    key, path = found.groups()
    assert path == f"{store}/images/{key}/image.img"
    # the ssh key is root's in the image the guests booted
    assert debugfs(path, "cat /root/.ssh/authorized_keys").splitlines() == [KEY_LINE]
    assert re.search(r"testsite-wn-\d{8}T\d{6}Z\.tar\.gz", out)
    assert "nothing left" in out
    assert list(temp.iterdir()) == []  # the site's folder, state, certificates: gone
    assert _processes(str(temp)) == []  # no daemon, no QEMU
    assert not keys.exists()  # --ssh-key given: no key pair made
