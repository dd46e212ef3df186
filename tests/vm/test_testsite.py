"""The test site (descriptions/examples/testsite/) and the README's main job that runs it.

Fast: the README's first command runs the script; the site resolves to three nodes on two
hosts with the shared defaults, each booting the Debian image its ImageBuilder makes
(site.sf) or the boot kit (site-kit.sf); one #include line switches it to XenDomain; no
description warnings. ``integration``: run-testsite.sh end to end against XenDomain and the
stand-in xl (the script's daemons, TLS, placement, saved image and cleanup, without QEMU).
``vm``: the script end to end with QEMU guests on the boot kit (fast), and a daemon killed
with ``kill -9`` while the site deploys, restarted, and nothing leaked. The main job's Debian
variant end to end: tests/image/test_testsite_debian.py (markers ``vm`` and ``image``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
TESTSITE = REPO / "descriptions" / "examples" / "testsite"
SCRIPT = TESTSITE / "run-testsite.sh"
KIT_SITE = TESTSITE / "site-kit.sf"
BIN = Path(sys.executable).parent
STAND_INS = REPO / "tests" / "stand_ins"
QEMU_INCLUDE = '#include "domain-qemu.sf"'
HOSTS = {"vmhost1": "127.0.0.2", "vmhost2": "127.0.0.3"}
GUESTS = {"ce": ("ce.testsite", "10.0.2.11"), "bdii": ("bdii.testsite", "10.0.2.13"),
          "wn": ("wn.testsite", "10.0.2.12")}


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SFPY_TESTSITE_", "SFPY_CERT", "SFPY_KEY", "SFPY_CA"))}
    env.pop("SFPY_INSECURE", None)
    env.pop("PYRO_SERIALIZER", None)
    env.update(extra)
    return env


def _sf(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"sfpy.cli.{args[0]}", *args[1:]],
                          capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _xen_copy(tmp_path: Path) -> Path:
    """The test site with its one domain #include switched to XenDomain."""
    copy = tmp_path / "testsite"
    shutil.copytree(TESTSITE, copy)
    defaults = copy / "defaults.sf"
    text = defaults.read_text()
    assert text.count(QEMU_INCLUDE) == 1
    defaults.write_text(text.replace(QEMU_INCLUDE, '#include "domain-xen.sf"'))
    return copy


# -- fast: the description --------------------------------------------------------------------
DEBIAN_READY = "sfpy-guest: hostname @hostname@ address @ip@/24 on eth0"
KIT_READY = "sfpy-guest hostname=@hostname@ ip=@ip@"

def test_the_readme_runs_the_testsite_script_first() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("```sh\n") + 6:]
    first = next(line for line in block.splitlines() if line and not line.startswith("#"))
    assert first.endswith("descriptions/examples/testsite/run-testsite.sh")


@pytest.mark.parametrize("image", ["debian", "kit"])
def test_the_site_is_three_nodes_on_two_hosts_started_side_by_side(tmp_path: Path,
                                                                  image: str) -> None:
    env = _env(SFPY_TESTSITE_DIR=str(tmp_path / "site"), SFPY_TESTSITE_KIT="/kit",
               SFPY_TESTSITE_SSH_KEY="/keys/id.pub", SFPY_TESTSITE_STORE="/store",
               SFPY_TESTSITE_APT_CACHE="/apt")
    site = TESTSITE / ("site.sf" if image == "debian" else "site-kit.sf")
    tree = _sf("sfparse", "--tree", str(site), env=env)
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    assert lines[0] == "sfConfig: org.smartfrog.sfcore.workflow.combinators.Parallel"
    assert sum("ch.cern.openlab.smartdomains.QemuDomainImpl" in line for line in lines) == 3
    assert sum("LoopbackStorageBackendImpl" in line for line in lines) == 3
    image_class = ("org.sfpy.images.ImageBuilder" if image == "debian"
                   else "org.smartfrog.sfcore.prim.PrimImpl")
    assert lines.count(f"    image: {image_class}") == 3  # one per node

    text = _sf("sfparse", str(site), env=env).stdout
    for node, host in (("ce", "vmhost1"), ("bdii", "vmhost1"), ("wn", "vmhost2")):
        body = _block(text, node)
        assert f'sfProcessHost "{host}";' in body
        hostname, ip = GUESTS[node]
        assert f'hostname "{hostname}";' in body and f'ip "{ip}";' in body
        # the disk and the domain boot the node's image, whichever it is
        assert "baseImage LAZY PARENT:image:path;" in body
        assert "kernel LAZY PARENT:image:kernel;" in body
        assert "ramdisk LAZY PARENT:image:ramdisk;" in body
        # the shared values come from the defaults, the paths from the environment
        assert f'imageDirectory "{tmp_path}/site/images";' in body
        assert f'saveImagePath "{tmp_path}/site/saved";' in body
        assert 'network "user";' in body and 'accel "tcg";' in body
        assert ("saveImage true;" in body) == (node == "wn")  # one image saved
        if image == "debian":
            assert 'groups [|"ssh-server"|];' in body and 'sshKeys [|"/keys/id.pub"|];' in body
            assert 'format "img";' in body and 'store "/store";' in body
            assert 'aptCache "/apt";' in body
            assert f'readyPattern "{DEBIAN_READY}";' in body and "memory 384;" in body
        else:
            assert 'path "/kit/rootfs.ext4";' in body and 'kernel "/kit/vmlinuz";' in body
            assert 'ramdisk "/kit/initrd";' in body
            assert f'readyPattern "{KIT_READY}";' in body and "memory 128;" in body

    sequential_site = TESTSITE / ("site-sequential.sf" if image == "debian"
                                  else "site-sequential-kit.sf")
    sequential = _sf("sfparse", "--tree", str(sequential_site), env=env)
    assert sequential.stdout.splitlines()[0] == "sfConfig: org.smartfrog.sfcore.compound.CompoundImpl"
    assert sequential.stdout.splitlines()[1:] == lines[1:]  # the same nodes


def test_the_debian_image_store_and_package_cache_default_to_the_configured_ones() -> None:
    env = _env(SFPY_TESTSITE_DIR="/site", SFPY_TESTSITE_SSH_KEY="/keys/id.pub")
    text = _sf("sfparse", str(TESTSITE / "site.sf"), env=env).stdout
    body = _block(text, "ce")
    # "": the ImageBuilder takes sfimage's configuration (/etc/sfpy/images.yaml, defaults)
    assert 'store "";' in body and 'aptCache "";' in body


def _block(text: str, node: str) -> str:
    """The text of ``node extends {…}`` at the top of sfparse's output."""
    start = text.index(f"\n{node} extends ")
    end = re.search(r"\n\}", text[start:])
    assert end is not None
    return text[start:start + end.end()]


def test_the_saved_image_folder_can_be_set_apart(tmp_path: Path) -> None:
    env = _env(SFPY_TESTSITE_DIR="/site", SFPY_TESTSITE_SSH_KEY="/id.pub",
               SFPY_TESTSITE_SAVE="/keep")
    text = _sf("sfparse", str(TESTSITE / "site.sf"), env=env).stdout
    assert 'saveImagePath "/keep";' in _block(text, "wn")


@pytest.mark.parametrize(("site", "given", "missing"), [
    ("site.sf", {"SFPY_TESTSITE_SSH_KEY": "/id.pub"}, "SFPY_TESTSITE_DIR"),
    ("site.sf", {"SFPY_TESTSITE_DIR": "/site"}, "SFPY_TESTSITE_SSH_KEY"),
    ("site-kit.sf", {"SFPY_TESTSITE_DIR": "/site"}, "SFPY_TESTSITE_KIT"),
])
def test_a_missing_path_is_a_description_error_naming_the_variable(
        site: str, given: dict[str, str], missing: str) -> None:
    result = _sf("sfparse", str(TESTSITE / site), env=_env(**given))
    assert result.returncode == 3
    assert missing in result.stderr and "Traceback" not in result.stderr


def test_one_include_line_switches_the_site_to_xen(tmp_path: Path) -> None:
    copy = _xen_copy(tmp_path)
    env = _env(SFPY_TESTSITE_DIR="/site", SFPY_TESTSITE_SSH_KEY="/id.pub")
    tree = _sf("sfparse", "--tree", str(copy / "site.sf"), env=env)
    assert tree.returncode == 0, tree.stderr
    assert tree.stdout.count("ch.cern.openlab.smartdomains.XenDomainImpl") == 3
    assert tree.stdout.count("org.sfpy.images.ImageBuilder") == 3  # the same Debian image
    assert "QemuDomain" not in tree.stdout
    text = _sf("sfparse", str(copy / "site.sf"), env=env).stdout
    assert 'bridge "xenbr0";' in _block(text, "ce") and 'memory 384;' in _block(text, "ce")
    assert "readyPattern" not in text  # QemuDomain's; XenDomain would warn about it


@pytest.mark.parametrize(("domain", "image"), [("qemu", "debian"), ("qemu", "kit"),
                                               ("xen", "debian"), ("xen", "kit")])
def test_the_site_passes_sfrun_check_without_warnings(tmp_path: Path, domain: str,
                                                      image: str) -> None:
    """Every value checked before deployment, and no attribute a component would not read.
    (sfrun has no daemons: the check runs on a copy whose nodes all stay on this host.)"""
    kit = tmp_path / "kit"
    kit.mkdir()
    for name in ("vmlinuz", "initrd"):
        (kit / name).write_bytes(b"\0")
    (kit / "rootfs.ext4").write_bytes(b"\0" * 4096)
    copy = _xen_copy(tmp_path) if domain == "xen" else tmp_path / "testsite"
    if domain == "qemu":
        shutil.copytree(TESTSITE, copy)
    local = copy / "site-local.sf"
    top = "site.sf" if image == "debian" else "site-kit.sf"
    local.write_text(f'#include "{top}"\n' + "".join(
        f'sfConfig:{node}:sfProcessHost "localhost";\n' for node in GUESTS))
    site = tmp_path / "site"
    for folder in ("images", "domains", "scratch", "saved"):
        (site / folder).mkdir(parents=True)
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDlxv3kB5JgctGsoxyxca78i4iQEbvTIJOBzU/cbuhZ/ t\n")
    result = _sf("sfrun", "--check", str(local),
                 env=_env(SFPY_TESTSITE_DIR=str(site), SFPY_TESTSITE_KIT=str(kit),
                          SFPY_TESTSITE_SSH_KEY=str(key)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr


# -- integration: the script, against XenDomain and the stand-in xl ---------------------------
def _ours(marker: str) -> list[psutil.Process]:
    """Live processes (not zombies) whose command line mentions ``marker``; each one's
    command line as read is in ``process.info["cmdline"]``."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if (process.info["status"] != psutil.STATUS_ZOMBIE
                and marker in " ".join(process.info["cmdline"] or [])):
            found.append(process)
    return found


def _network() -> tuple[list[str], list[str]]:
    """The interfaces of this network namespace (a tap would show here) and the named network
    namespaces that could be the site's. (``ip netns list`` is machine-wide: other tests'
    namespaces come and go meanwhile, so only names like sfpy's taps and the site's count.)"""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
    names = [line.split(":")[1].strip().split("@")[0]
             for line in links.stdout.splitlines() if line.count(":") >= 2]
    spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    ours = [line.split()[0] for line in spaces.stdout.splitlines()
            if line.startswith(("sfq-", "testsite", "vmhost"))]
    return sorted(names), sorted(ours)


def _loops(marker: str) -> list[str]:
    result = subprocess.run(["losetup", "-a"], capture_output=True, text=True)
    return [line for line in result.stdout.splitlines() if marker in line]


def _need_commands() -> None:
    if not (BIN / "sfdaemon").exists():
        pytest.skip(f"the sfpy commands are not installed in {BIN} (pip install -e .)")


@pytest.mark.integration
def test_the_script_runs_a_xen_site_against_the_stand_in_xl(tmp_path: Path) -> None:
    _need_commands()
    for tool in ("qemu-img", "mke2fs", "debugfs"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (the script would install it with apt-get)")
    copy = _xen_copy(tmp_path)
    kit = tmp_path / "kit"
    kit.mkdir()
    (kit / "vmlinuz").write_bytes(b"\0")
    (kit / "initrd").write_bytes(b"\0")
    subprocess.run(["truncate", "-s", "16M", str(kit / "rootfs.ext4")], check=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(kit / "rootfs.ext4")], check=True)
    temp = tmp_path / "tmp"
    temp.mkdir()
    xl_state = tmp_path / "xl"
    xl_state.mkdir()
    keep = tmp_path / "kept"
    env = _env(SFPY_BIN=str(BIN), TMPDIR=str(temp), SFPY_TESTSITE_KIT=str(kit),
               SFPY_XL_STATE=str(xl_state), PATH=f"{STAND_INS}:{os.environ['PATH']}")
    result = subprocess.run(["bash", str(SCRIPT), "--no-install", "--image", "kit", "--site",
                             str(copy / "site-kit.sf"), "--keep-image", str(keep)],
                            capture_output=True, text=True, env=env, timeout=300,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "application testsite is running" in result.stdout + result.stderr
    assert re.search(r"testsite:wn\s+STARTED", result.stdout + result.stderr)
    saved = list(keep.iterdir())
    assert len(saved) == 1 and re.fullmatch(r"testsite-wn-\d{8}T\d{6}Z\.tar\.gz", saved[0].name)
    assert "nothing left" in result.stdout
    assert list(temp.iterdir()) == []  # the site's folder, state, certificates: gone
    assert _ours(str(temp)) == []
    assert list(xl_state.glob("*.json")) == []  # every domain destroyed


# -- vm: real guests ----------------------------------------------------------------------------
@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder with a short path: a QMP socket's path (``…/site/domains/bdii.qmp``)
    must fit in 107 characters, which pytest's own tmp_path may not leave room for."""
    folder = Path(tempfile.mkdtemp(prefix="sfts.", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def kit_dir(kit) -> Path:
    """The boot kit's folder (tests/vm/conftest.py's ``kit``: built once per run; what the
    vm tier needs is probed there, a skip naming it, a failure under CI=true)."""
    _need_commands()
    return Path(kit.directory)


@pytest.mark.vm
def test_the_main_job_boots_the_site_and_leaves_nothing(short_tmp: Path, kit_dir: Path) -> None:
    temp = short_tmp / "tmp"
    temp.mkdir()
    network_before = _network()
    # the script runs sfpy-bootkit itself: the kit the fixture built is found in its cache
    env = _env(SFPY_BIN=str(BIN), TMPDIR=str(temp))
    result = subprocess.run(["bash", str(SCRIPT), "--no-install", "--image", "kit"],
                            capture_output=True,
                            text=True, env=env, timeout=720, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr[-6000:]
    for name, (hostname, ip) in GUESTS.items():  # each console showed what site.sf gave it
        assert f"{name}: sfpy-guest hostname={hostname} ip={ip}" in result.stdout
    assert re.search(r"testsite-wn-\d{8}T\d{6}Z\.tar\.gz", result.stdout)
    assert "nothing left" in result.stdout
    assert list(temp.iterdir()) == []
    assert _ours(str(temp)) == []  # no daemon, no QEMU
    assert _loops(str(temp)) == []
    assert _network() == network_before  # no tap, no namespace


class _Site:
    """Two insecure daemons with the test site's host-name map, for the kill -9 test."""

    def __init__(self, root: Path, kit: Path) -> None:
        self.root = root
        self.site = root / "site"
        for folder in ("images", "domains", "scratch", "saved"):
            (self.site / folder).mkdir(parents=True)
        self.hosts = root / "hosts.yaml"
        self.hosts.write_text("hosts:\n" + "".join(f'  {n}: "{a}"\n' for n, a in HOSTS.items()))
        self.env = _env(SFPY_INSECURE="1", SFPY_CLIENT_CONFIG=str(self.hosts),
                        SFPY_TESTSITE_DIR=str(self.site), SFPY_TESTSITE_KIT=str(kit))
        self.daemons: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        log = self.root / f"daemon-{name}.log"
        log.write_bytes(b"")
        with log.open("ab") as out:
            self.daemons[name] = subprocess.Popen(
                [str(BIN / "sfdaemon"), "--insecure", "--config", str(self.hosts),
                 "--host", HOSTS[name], "--state-dir", str(self.root / f"state-{name}")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True)
        _wait(lambda: b"sfdaemon: ready " in log.read_bytes()
              or self.daemons[name].poll() is not None, 60, f"{name}'s ready line")
        assert self.daemons[name].poll() is None, log.read_text()

    def qemu(self, guest: str | None = None) -> list[psutil.Process]:
        found = _ours(str(self.site))
        return [p for p in found if guest is None
                or f"{self.site}/domains/{guest}.console.log" in " ".join(p.info["cmdline"])]

    def stop(self) -> None:
        for name, process in self.daemons.items():
            if process.poll() is None:
                _sf("sfstopdaemon", name, env=self.env, timeout=180)
            try:
                process.wait(timeout=180)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for process in self.qemu():  # only when the test failed: never leave a guest
            with contextlib.suppress(psutil.Error):
                process.kill()


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def site(short_tmp: Path, kit_dir: Path) -> Iterator[_Site]:
    started = _Site(short_tmp, kit_dir)
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.vm
@pytest.mark.parametrize("killed", ["vmhost1", "vmhost2"])
def test_a_daemon_killed_while_the_site_deploys_leaks_nothing(site: _Site, killed: str) -> None:
    """kill -9 of a daemon while the guests boot; restarted, it cleans what it had made, the
    other daemon cleans its part; then the site deploys again under the same name."""
    network_before = _network()
    for name in HOSTS:
        site.start(name)
    deploy = subprocess.Popen([str(BIN / "sfstart"), "vmhost1", "testsite", str(KIT_SITE)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=site.env)
    try:
        # every guest launched (QEMU runs) and the site not yet ready: sfstart still waits
        _wait(lambda: all(site.qemu(guest) for guest in GUESTS) or deploy.poll() is not None,
              180, "the three QEMU processes")
        assert deploy.poll() is None, "sfstart returned before the daemon was killed"
        os.kill(site.daemons[killed].pid, signal.SIGKILL)
        site.daemons[killed].wait()
        out, _ = deploy.communicate(timeout=300)
        assert deploy.returncode != 0, out
    finally:
        if deploy.poll() is None:
            deploy.kill()
            deploy.wait()
    site.start(killed)  # recovery at start: its QEMU processes stopped, its files removed
    # the other side ends its part too (a placed subtree whose parent is gone; a parent whose
    # placed subtree is gone fails the application): every guest gone, every volume removed
    _wait(lambda: not site.qemu(), 240, "every QEMU process to be gone")
    _wait(lambda: not list((site.site / "images").iterdir()), 60, "the volumes to be removed")
    leftovers = _sf("sfdiagnostics", killed, "--leftovers", env=site.env)
    assert leftovers.returncode == 0, leftovers.stdout + leftovers.stderr

    # wn may have saved its image already: when vmhost1 died after wn was ready, vmhost2
    # terminated its part as any started domain is terminated (saveImage true)
    saved_before = set((site.site / "saved").iterdir())
    again = _sf("sfstart", "vmhost1", "testsite", str(KIT_SITE), env=site.env,
                timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(site.qemu()) == 3
    down = _sf("sfterminate", "vmhost1", "testsite", env=site.env, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    site.stop()
    assert site.qemu() == []
    assert list((site.site / "images").iterdir()) == []
    assert list((site.site / "domains").iterdir()) == []  # console logs too
    saved = set((site.site / "saved").iterdir())
    assert len(saved - saved_before) == 1  # the second run's wn image
    assert all(re.fullmatch(r"testsite-wn-\d{8}T\d{6}Z\.tar\.gz", p.name) for p in saved)
    assert _loops(str(site.root)) == []
    assert _network() == network_before  # no tap, no namespace
