"""Re-adoption of a site's storage and domain after ``kill -9`` of its daemon: an sfdaemon
runs a LoopbackStorageBackend (real volume files: a filesystem made from a tarball, a swap
file) and a XenDomain on the stand-in ``xl``; the daemon is killed with SIGKILL while the
application runs and started again. It takes the application back (``sflist`` shows it
STARTED, with the very same volume files and domain), and ``sfterminate`` then saves the image
and deletes the volumes as the description says, leaving nothing: no volume, configuration
file, scratch directory, domain, loop device or open journal entry. A volume deleted while
the daemon was down means cleaning instead.

Daemons listen on 127.0.0.2:3800: run these in a network namespace of their own
(``unshare -n``) when other daemon tests may run at the same time.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.daemon.daemon_support import Daemon, command, environment

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STAND_INS = REPO / "tests" / "stand_ins"
HOST = "127.0.0.2"
TOOLS = ("mke2fs", "mkswap", "tar", "debugfs", "losetup")
missing = [tool for tool in TOOLS if shutil.which(tool) is None]


def site(tmp: Path, keep: bool) -> Path:
    for folder in ("images", "scratch", "saved", "cfg", "xl"):
        (tmp / folder).mkdir(exist_ok=True)
    (tmp / "vmlinuz").write_bytes(b"kernel")
    rootfs = tmp / "rootfs"
    (rootfs / "etc").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc" / "hostname").write_text("vm1\n")
    with tarfile.open(tmp / "base.tar.gz", "w:gz") as archive:
        archive.add(rootfs, arcname=".")
    path = f"{STAND_INS}:{os.environ.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin"
    text = f"""#include "org/smartfrog/components.sf"
#include "org/smartfrog/services/shellscript/components.sf"
#include "ch/cern/openlab/smartdomains/components.sf"
sfConfig extends Compound {{
  myShell extends BashShell {{ envProperties ["PATH={path}", "SFPY_XL_STATE={tmp}/xl"]; }}
  disk extends LoopbackStorageBackend {{ shell LAZY ATTRIB myShell;
    baseImage "{tmp}/base.tar.gz"; imageDirectory "{tmp}/images";
    scratchDirectory "{tmp}/scratch"; volumeSize "64M"; swapSize "16M";
    saveImage true; saveImagePath "{tmp}/saved"; keepVolumes {str(keep).lower()}; }}
  vm extends XenDomain {{ shell LAZY ATTRIB myShell; storageBackend LAZY ATTRIB disk;
    domainName "vm1"; hostname "vm1.example.org"; ip "10.1.2.3"; netmask "255.255.0.0";
    kernel "{tmp}/vmlinuz"; memory 256; configDirectory "{tmp}/cfg";
    domainLivenessDelay 200; }}
}}
"""
    (tmp / "site.sf").write_text(text)
    return tmp / "site.sf"


def client(env: dict[str, str], name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(name, HOST, *args), capture_output=True, text=True,
                          timeout=180, env=env)


def tree(env: dict[str, str]) -> dict[str, dict]:
    """Each component of application ``site``: its state and attributes."""
    shown = client(env, "sflist", "site", "--json")
    assert shown.returncode == 0, shown.stderr
    found: dict[str, dict] = {}

    def walk(node: dict) -> None:
        found[node["path"]] = node
        for child in node["children"]:
            walk(child)

    walk(json.loads(shown.stdout)["tree"])
    return found


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


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**environment(), "SFPY_XL_STATE": str(tmp_path / "xl"),
            "PATH": f"{STAND_INS}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


@pytest.fixture
def daemon(tmp_path: Path, env: dict[str, str]):
    daemon = Daemon(HOST, tmp_path / "state", env=env)
    yield daemon
    daemon.stop()
    daemon.kill()
    daemon.clean_leftovers()


@pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")
@pytest.mark.parametrize("keep", [False, True], ids=["volumes-deleted", "volumes-kept"])
def test_a_site_with_volumes_and_a_domain_is_re_adopted_then_terminated_as_configured(
        tmp_path: Path, env: dict[str, str], daemon: Daemon, keep: bool) -> None:
    description = site(tmp_path, keep)
    daemon.start()
    started = client(env, "sfstart", "site", str(description))
    assert started.returncode == 0, started.stdout + started.stderr + daemon.log
    before = tree(env)
    volumes = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert volumes == ["xen-domain-vm1-swap.img", "xen-domain-vm1.img"]
    inode = (tmp_path / "images" / "xen-domain-vm1.img").stat().st_ino
    domain = (tmp_path / "xl" / "vm1.json").read_text()

    daemon.kill()  # kill -9 while the application runs
    daemon.start()
    assert (tmp_path / "xl" / "vm1.json").exists(), daemon.log
    assert (tmp_path / "xl" / "vm1.json").read_text() == domain  # not destroyed, not re-created
    after = tree(env)
    assert {path: node["state"] for path, node in after.items()} == dict.fromkeys(after,
                                                                                  "STARTED")
    assert after.keys() == before.keys()
    for key in ("volume", "swapVolume"):
        assert after["site:disk"]["attributes"][key] == before["site:disk"]["attributes"][key]
    assert after["site:vm"]["attributes"]["configFile"] == str(tmp_path / "cfg" / "vm1.cfg")
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == volumes
    assert (tmp_path / "images" / "xen-domain-vm1.img").stat().st_ino == inode  # the same file
    said = json.loads(client(env, "sfdiagnostics", "--json").stdout)["recovery"]
    assert any(line.startswith("site: re-adopted") for line in said), said

    ended = client(env, "sfterminate", "site")
    assert ended.returncode == 0, ended.stdout + ended.stderr + daemon.log
    saved = list((tmp_path / "saved").iterdir())
    assert len(saved) == 1 and saved[0].name.startswith("xen-domain-vm1-")
    with tarfile.open(saved[0]) as archive:  # the image the adopted backend saved
        assert "./etc/hostname" in archive.getnames()
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == (volumes if keep else [])
    assert not (tmp_path / "xl" / "vm1.json").exists()
    assert list((tmp_path / "cfg").iterdir()) == []
    assert list((tmp_path / "scratch").iterdir()) == []
    assert loop_devices(tmp_path) == []
    assert open_entries(tmp_path / "state") == []
    assert "Traceback" not in daemon.log


@pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")
def test_a_volume_deleted_while_the_daemon_was_down_means_cleaning(
        tmp_path: Path, env: dict[str, str], daemon: Daemon) -> None:
    description = site(tmp_path, keep=False)
    daemon.start()
    started = client(env, "sfstart", "site", str(description))
    assert started.returncode == 0, started.stdout + started.stderr + daemon.log
    daemon.kill()
    (tmp_path / "images" / "xen-domain-vm1-swap.img").unlink()
    daemon.start()
    listed = json.loads(client(env, "sflist", "--json").stdout)["applications"]
    assert [app["name"] for app in listed if app["state"] in ("running", "STARTED")] == []
    said = json.loads(client(env, "sfdiagnostics", "--json").stdout)["recovery"]
    assert any(line.startswith("site: not re-adopted") and "site:disk" in line
               for line in said), said
    assert list((tmp_path / "images").iterdir()) == []  # the journal's cleaners ran
    assert not (tmp_path / "xl" / "vm1.json").exists()
    assert list((tmp_path / "cfg").iterdir()) == []
    assert list((tmp_path / "saved").iterdir()) == []  # cleaning saves nothing
    assert open_entries(tmp_path / "state") == []
