"""The ``vm`` tier: real QEMU boots (software emulation) of the boot kit's kernel and root
filesystem. The boot kit is built once per run (once per machine: it is cached by version
in ``$SFPY_BOOTKIT_CACHE`` or /var/cache/sfpy/bootkit).

What these tests need — root (loop files, taps, network namespaces), ``qemu-system-x86_64``,
``apt-get`` with package lists (the kit's packages), ``mke2fs`` — is probed; a missing piece
skips the test naming it, and fails it under ``CI=true`` (.ci/run installs them all), so the
gate cannot go green without booting.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sfpy.host import bootkit

REPO = Path(__file__).resolve().parents[2]
SFRUN = [sys.executable, "-m", "sfpy.cli.sfrun", "-v"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing() -> str | None:
    """What this machine lacks for real boots (None: nothing)."""
    if os.geteuid() != 0:
        return "root (taps, network namespaces)"
    for program in ("qemu-system-x86_64", "apt-get", "dpkg", "mke2fs", "ip"):
        if shutil.which(program) is None:
            return program
    return None


def require() -> None:
    lack = missing()
    if lack is None:
        return
    if in_ci():
        pytest.fail(f"this machine lacks {lack}; CI=true requires the vm tier to run",
                    pytrace=False)
    pytest.skip(f"needs {lack}")


@pytest.fixture(scope="session")
def kit() -> bootkit.BootKit:
    """The boot kit, built once per run (found in the cache after the first)."""
    require()
    return bootkit.ensure()


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace of this test's own with a bridge ``sfbr0`` in it; removed after
    (whatever is left in it goes with it, and the test checks it left nothing)."""
    require()
    name = f"sfpyvm-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for command in (["link", "set", "lo", "up"], ["link", "add", "sfbr0", "type", "bridge"],
                        ["link", "set", "sfbr0", "up"]):
            subprocess.run(["ip", "-n", name, *command], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def links(netns: str) -> list[str]:
    """The interfaces in ``netns``."""
    out = subprocess.run(["ip", "-n", netns, "-o", "link", "show"], capture_output=True,
                         text=True, check=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def qemu_processes(marker: str) -> list[int]:
    """Pids of QEMU processes whose command line mentions ``marker`` (a test's folder)."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if (cmdline and "qemu-system" in cmdline[0] and any(marker in a for a in cmdline)
                and process.info["status"] != psutil.STATUS_ZOMBIE):
            found.append(process.info["pid"])
    return found


HEADER = """#include "org/smartfrog/components.sf"
#include "ch/cern/openlab/smartdomains/components.sf"
"""


def guest(name: str, ip: str, tmp: Path, kit: bootkit.BootKit, *, tarball: bool = False,
          backend: str = "", domain: str = "",
          ready: str = "sfpy-guest hostname=@hostname@ ip=@ip@") -> str:
    """A Compound ``<name>`` of a storage backend ``disk`` and a QemuDomain ``vm`` on the
    boot kit (the Compound keeps the order: the image is in place before the guest boots)."""
    base = (f'baseImage "{kit.rootfs}"; volumeSize "64M";' if tarball
            else f'baseImage "{kit.image}";')
    return f"""
  {name} extends Compound {{
    disk extends LoopbackStorageBackend {{ {base} imageDirectory "{tmp}/images";
      scratchDirectory "{tmp}/scratch"; swapSize "16M"; {backend} }}
    vm extends QemuDomain {{ storageBackend LAZY ATTRIB disk;
      hostname "{name}.example.org"; ip "{ip}"; netmask "255.255.255.0"; gateway "10.77.0.1";
      kernel "{kit.kernel}"; ramdisk "{kit.initrd}"; memory 128;
      readyPattern "{ready}"; readyTimeout 180000;
      configDirectory "{tmp}/cfg"; shutdownTimeout 30000; domainLivenessDelay 500;
      domainLivenessFactor 2; {domain} }}
  }}"""


def site(tmp: Path, body: str, parallel: bool = False) -> Path:
    for folder in ("images", "scratch", "cfg"):
        (tmp / folder).mkdir(parents=True, exist_ok=True)
    kind = "Parallel" if parallel else "Compound"
    include = ('#include "org/smartfrog/sfcore/workflow/combinators/parallel.sf"\n'
               if parallel else "")
    path = tmp / "site.sf"
    path.write_text(HEADER + include + f"sfConfig extends {kind} {{{body}\n}}\n")
    return path


def sfrun(*arguments: str, wait: bool = True, timeout: float = 300):
    command = [*SFRUN, *arguments]
    if wait:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              cwd=REPO)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def left(tmp: Path) -> list[str]:
    """What the run left in its folders (nothing, after a clean run)."""
    return sorted(str(p.relative_to(tmp)) for folder in ("images", "scratch", "cfg")
                  for p in (tmp / folder).iterdir())
