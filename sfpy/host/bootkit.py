"""The boot kit: a kernel, an initramfs and a minimal root filesystem to boot guests with,
made from Debian packages on a fresh machine (``sfpy-bootkit``, docs/components.md).

Why from packages: the Debian package mirror is often the one source a test machine can
reach, and a distribution kernel is one nobody has to build. The cloud kernel
(``linux-image-cloud-amd64``'s dependency) and ``busybox-static`` are fetched with
``apt-get download`` and unpacked with ``dpkg -x`` into a scratch directory: nothing is
installed into the host system.

* ``vmlinuz``: the package's kernel.
* ``initrd``: busybox, the kernel modules a virtio guest needs (virtio_pci, virtio_blk,
  virtio_net; the ACPI power button and evdev, so the guest hears ``system_powerdown``) in
  dependency order (read from each module's ``.modinfo``: the package has no modules.dep),
  and an ``/init`` that mounts ``root=`` (default ``/dev/vda``) and switches to it.
* ``rootfs.tar.gz`` and ``rootfs.ext4`` (the same tree): busybox ``init`` whose ``rcS``
  configures ``eth0`` from ``ip=<ip>::<gateway>:<netmask>:<hostname>:eth0:off``, sets the
  host name, prints ``sfpy-guest hostname=<h> ip=<ip>`` on the console and starts ``acpid``
  (power button ⇒ ``poweroff``). ``sfpy.acpi=off`` on the kernel command line leaves acpid
  out (a guest that ignores power-down, for tests); ``sfpy.ping=IP`` (repeatable) prints
  ``sfpy-guest ping IP ok`` once that address answers (``failed`` after a minute).

The kit is cached by version (kernel release, busybox version, this module's
:data:`KIT_FORMAT`) in ``CACHE/<version>``; a kit is complete once its ``kit.json`` exists
(written last, after the directory was renamed into place), so a half-built kit is never
used. Two builders at once are serialised by a lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import io
import json
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sfpy.errors import SfpyError
from sfpy.host.hosts import Host, LocalHost

#: Bumped whenever what the kit contains changes (a new version is built next to the old).
KIT_FORMAT = 3
DEFAULT_CACHE = "/var/cache/sfpy/bootkit"
CACHE_VARIABLE = "SFPY_BOOTKIT_CACHE"
KERNEL_PACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
#: Size of ``rootfs.ext4`` in MiB (busybox is 2 MB: room for what a test writes).
IMAGE_MIB = 64
#: The modules the initramfs loads (with what they depend on, first).
MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "button", "evdev")
#: The line the root filesystem prints once its network identity is set.
READY_LINE = "sfpy-guest hostname={hostname} ip={ip}"
READY_PATTERN = "sfpy-guest hostname=@hostname@ ip=@ip@"

log = logging.getLogger("sfpy.bootkit")


class BootKitError(SfpyError):
    """The boot kit could not be found or built (the message says what is missing)."""


@dataclass(frozen=True)
class BootKit:
    """A complete kit: where its files are."""

    version: str
    directory: str
    kernel: str
    initrd: str
    rootfs: str
    image: str
    built: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def default_cache() -> str:
    return os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE


def _safe(text: str) -> str:
    """A version as a directory name (``1:1.35.0-4`` → ``1_1.35.0-4``)."""
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", text)


def kit_version(kernel_release: str, busybox_version: str) -> str:
    return f"{_safe(kernel_release)}+busybox{_safe(busybox_version)}+kit{KIT_FORMAT}"


def _load(directory: Path, built: bool = False) -> BootKit | None:
    try:
        data = json.loads((directory / "kit.json").read_text())
    except (OSError, ValueError):
        return None
    names = {"kernel": "vmlinuz", "initrd": "initrd", "rootfs": "rootfs.tar.gz",
             "image": "rootfs.ext4"}
    paths = {key: str(directory / name) for key, name in names.items()}
    if not all(os.path.isfile(path) for path in paths.values()):
        return None
    return BootKit(version=str(data.get("version", directory.name)), directory=str(directory),
                   built=built, **paths)


def cached(cache: str | os.PathLike[str] | None = None) -> list[BootKit]:
    """The complete kits in ``cache``, newest first."""
    root = Path(cache or default_cache())
    kits = []
    with contextlib.suppress(OSError):
        for child in root.iterdir():
            if child.is_dir() and not child.name.startswith("."):
                kit = _load(child)
                if kit is not None:
                    kits.append((child.stat().st_mtime, kit))
    return [kit for _, kit in sorted(kits, key=lambda pair: pair[0], reverse=True)]


# -- what apt knows --------------------------------------------------------------------------
def _field(text: str, name: str) -> str | None:
    match = re.search(rf"^{re.escape(name)}:\s*(\S+)", text, re.MULTILINE)
    return match.group(1) if match else None


def resolve(host: Host, kernel_package: str = KERNEL_PACKAGE) -> tuple[str, str, str]:
    """(kernel package, kernel release, busybox version) apt would fetch now. A metapackage
    (``linux-image-cloud-amd64``) is followed to the ``linux-image-<release>`` it depends on.
    One ``apt-cache show`` for both (loading apt's cache is what costs: about a second)."""
    shown = host.probe(["apt-cache", "show", "--no-all-versions", kernel_package,
                        BUSYBOX_PACKAGE])
    records = {_field(record, "Package"): record for record in shown.stdout.split("\n\n")}
    kernel, busybox_record = records.get(kernel_package), records.get(BUSYBOX_PACKAGE)
    if not shown.ok or kernel is None or busybox_record is None:
        raise BootKitError(f"apt knows no {kernel_package} or {BUSYBOX_PACKAGE} (run apt-get "
                           f"update?): {shown.describe()}")
    package = kernel_package
    if not re.fullmatch(r"linux-image-[0-9][0-9.]*-[0-9]+-.+", package):
        found = re.search(r"^(?:Pre-)?Depends:.*?\b(linux-image-[0-9][^\s,(]*)", kernel,
                          re.MULTILINE)
        if found is None:
            raise BootKitError(f"{kernel_package} depends on no linux-image-<release> package")
        package = found.group(1)
    busybox = _field(busybox_record, "Version")
    if busybox is None:
        raise BootKitError(f"apt shows no version of {BUSYBOX_PACKAGE}")
    return package, package.removeprefix("linux-image-"), busybox


# -- building ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure(cache: str | os.PathLike[str] | None = None, *, force: bool = False,
           kernel_package: str = KERNEL_PACKAGE, host: Host | None = None) -> BootKit:
    """The kit of the version apt offers now, built into ``cache`` unless it is there already.
    When apt cannot say (no package lists), the newest cached kit serves."""
    root = Path(cache or default_cache())
    own = host is None
    host = host or LocalHost(log=log)
    try:
        try:
            package, release, busybox = resolve(host, kernel_package)
        except SfpyError as error:
            kits = cached(root)
            if kits and not force:
                log.info("apt cannot tell the current versions (%s): using %s", error,
                         kits[0].version)
                return kits[0]
            raise BootKitError(f"cannot find the boot kit's packages: {error}") from error
        version = kit_version(release, busybox)
        directory = root / version
        if not force:
            kit = _load(directory)
            if kit is not None:
                return kit
        with _locked(root):
            if not force:
                kit = _load(directory)  # another builder finished while we waited
                if kit is not None:
                    return kit
            return _build(host, root, directory, version, package, release)
    finally:
        if own:
            host.close()  # type: ignore[attr-defined]


def _build(host: Host, root: Path, directory: Path, version: str, package: str,
           release: str) -> BootKit:
    began = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        debs = scratch / "debs"
        debs.mkdir()
        host.run(["apt-get", "download", "-o", "APT::Sandbox::User=root", package,
                  BUSYBOX_PACKAGE], cwd=str(debs), label="apt-get download").check()
        kernel_deb = _one(debs.glob(f"{package}_*.deb"), package)
        busybox_deb = _one(debs.glob(f"{BUSYBOX_PACKAGE}_*.deb"), BUSYBOX_PACKAGE)
        unpacked = scratch / "kernel"
        host.run(["dpkg", "-x", str(kernel_deb), str(unpacked)], label="dpkg -x").check()
        bb_root = scratch / "busybox"
        host.run(["dpkg", "-x", str(busybox_deb), str(bb_root)], label="dpkg -x").check()
        busybox = bb_root / "bin" / "busybox"
        vmlinuz = unpacked / "boot" / f"vmlinuz-{release}"
        if not vmlinuz.is_file() or not busybox.is_file():
            raise BootKitError(f"{package} or {BUSYBOX_PACKAGE} lacks its kernel or busybox")
        out = scratch / "kit"
        out.mkdir()
        shutil.copyfile(vmlinuz, out / "vmlinuz")
        modules = module_order(unpacked / "lib" / "modules" / release, MODULES)
        write_initrd(out / "initrd", busybox, modules)
        applets = host.probe([str(busybox), "--list-full"]).check().stdout.split()
        tree = scratch / "rootfs"
        make_rootfs(tree, busybox, applets)
        write_tarball(out / "rootfs.tar.gz", tree)
        host.run(["truncate", "-s", f"{IMAGE_MIB}M", str(out / "rootfs.ext4")]).check()
        host.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "sfpyroot", "-d", str(tree),
                  str(out / "rootfs.ext4")], label="mke2fs").check()
        if directory.exists():  # --force: the old one goes
            shutil.rmtree(directory)
        os.rename(out, directory)
        (directory / "kit.json").write_text(json.dumps({
            "version": version, "kernelPackage": package, "kernelRelease": release,
            "modules": [path.stem for path in modules], "format": KIT_FORMAT,
        }, indent=1) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    kit = _load(directory, built=True)
    if kit is None:
        raise BootKitError(f"the boot kit in {directory} is incomplete after building it")
    log.info("built the boot kit %s in %.1f s", version, time.monotonic() - began)
    return kit


def _one(paths: Iterable[Path], what: str) -> Path:
    found = sorted(paths)
    if len(found) != 1:
        raise BootKitError(f"apt-get download gave {len(found)} files for {what}")
    return found[0]


# -- kernel modules ----------------------------------------------------------------------------
def _modinfo_depends(path: Path) -> list[str]:
    """The ``depends=`` of a module (its ``.modinfo`` strings, NUL-separated)."""
    data = path.read_bytes()
    match = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
    if match is None:
        return []
    return [name for name in match.group(1).decode().split(",") if name]


def module_order(tree: Path, wanted: Sequence[str]) -> list[Path]:
    """The ``.ko`` files of ``wanted`` and what they depend on, dependencies first. A module
    the kernel has built in (no ``.ko``) is left out."""
    files: dict[str, Path] = {}
    for path in tree.rglob("*.ko"):
        files[path.stem.replace("-", "_")] = path
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in seen:
            return
        if name in chain:
            raise BootKitError(f"kernel modules depend on each other in a cycle: {chain}")
        path = files.get(name)
        if path is None:
            return  # built in
        for dependency in _modinfo_depends(path):
            visit(dependency, (*chain, name))
        seen.add(name)
        order.append(path)

    for name in wanted:
        visit(name, ())
    return order


# -- the initramfs -----------------------------------------------------------------------------
INIT = r"""#!/bin/busybox sh
# sfpy boot kit initramfs: load the virtio modules, mount root=, switch to it.
/bin/busybox mkdir -p /proc /sys /dev /newroot /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /modules/order); do
    insmod "/modules/$module.ko" 2>/dev/null || echo "sfpy-initrd: insmod $module failed"
done
root=/dev/vda
mode=rw
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        root=*) root="${arg#root=}" ;;
        ro) mode=ro ;;
        rw) mode=rw ;;
    esac
done
tries=0
while [ ! -b "$root" ] && [ "$tries" -lt 100 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
if ! mount -o "$mode" "$root" /newroot; then
    echo "sfpy-initrd: cannot mount the root disk $root"
    poweroff -f
fi
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
"""


def write_initrd(path: Path, busybox: Path, modules: Sequence[Path]) -> None:
    """A gzipped newc cpio archive, written here (no cpio or shell pipeline needed)."""
    archive = _Cpio()
    for directory in ("bin", "dev", "proc", "sys", "newroot", "modules"):
        archive.directory(directory)
    archive.device("dev/console", 0o600, 5, 1)
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    archive.file("init", INIT.encode(), 0o755)
    for module in modules:
        archive.file(f"modules/{module.stem}.ko", module.read_bytes(), 0o644)
    order = "".join(f"{module.stem}\n" for module in modules)
    archive.file("modules/order", order.encode(), 0o644)
    with open(path, "wb") as handle:
        handle.write(gzip.compress(archive.finish(), compresslevel=6, mtime=0))


class _Cpio:
    """The newc ("070701") format: a header of hex fields, the name, the data, each padded
    to four bytes; the archive ends with ``TRAILER!!!``."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.inode = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
               links: int = 1) -> None:
        encoded = name.encode() + b"\0"
        fields = [self.inode, mode, 0, 0, links, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(encoded), 0]
        self.inode += 1
        header = b"070701" + b"".join(f"{value:08x}".encode() for value in fields)
        self.buffer.write(header + encoded)
        self.buffer.write(b"\0" * (-(len(header) + len(encoded)) % 4))
        self.buffer.write(data)
        self.buffer.write(b"\0" * (-len(data) % 4))

    def directory(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755, links=2)

    def file(self, name: str, data: bytes, mode: int) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def device(self, name: str, mode: int, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, links=1)
        return self.buffer.getvalue()


# -- the root filesystem -----------------------------------------------------------------------
INITTAB = """::sysinit:/etc/init.d/rcS
::shutdown:/etc/init.d/rcK
"""

RCS = r"""#!/bin/sh
# sfpy boot kit: network identity from the kernel's ip= argument, then acpid.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -o remount,rw / 2>/dev/null
mkdir -p /dev/pts /run /tmp
# from here on the console is ours: no kernel message splits the lines printed below
dmesg -n 1
hostname=localhost
address=
acpi=on
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        ip=*) config="${arg#ip=}" ;;
        sfpy.acpi=*) acpi="${arg#sfpy.acpi=}" ;;
        sfpy.ping=*) peers="$peers ${arg#sfpy.ping=}" ;;
    esac
done
ip link set lo up
if [ -n "$config" ]; then
    set -f
    old="$IFS"
    IFS=:
    set -- $config
    IFS="$old"
    set +f
    address="$1"; gateway="$3"; netmask="$4"; [ -n "$5" ] && hostname="$5"
    device="${6:-eth0}"
    tries=0
    while [ ! -e "/sys/class/net/$device" ] && [ "$tries" -lt 50 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    if [ -n "$address" ]; then
        ifconfig "$device" "$address" netmask "${netmask:-255.255.255.0}" up
        [ -n "$gateway" ] && route add default gw "$gateway"
    fi
fi
hostname "$hostname"
echo "$hostname" > /etc/hostname
echo "127.0.0.1 localhost" > /etc/hosts
[ -n "$address" ] && echo "$address $hostname" >> /etc/hosts
if [ "$acpi" != off ]; then
    acpid
fi
echo "sfpy-guest hostname=$hostname ip=${address:-none}"
# sfpy.ping=IP (repeatable): say whether that address answers within a minute
for peer in $peers; do
    (
        tries=0
        until ping -c 1 -W 1 "$peer" >/dev/null 2>&1; do
            tries=$((tries + 1))
            if [ "$tries" -ge 60 ]; then
                echo "sfpy-guest ping $peer failed"
                exit 1
            fi
            sleep 1
        done
        echo "sfpy-guest ping $peer ok"
    ) &
done
"""

RCK = r"""#!/bin/sh
echo "sfpy-guest powering off"
sync
umount -a -r 2>/dev/null
"""

POWER = r"""#!/bin/sh
poweroff
"""

PASSWD = "root:x:0:0:root:/root:/bin/sh\n"
GROUP = "root:x:0:\n"


def make_rootfs(tree: Path, busybox: Path, applets: Sequence[str]) -> None:
    """The busybox root filesystem, as a directory (files owned by whoever builds)."""
    for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "etc/acpi/PWRF",
                      "proc", "sys", "dev", "tmp", "run", "root", "var/log", "mnt"):
        (tree / directory).mkdir(parents=True, exist_ok=True)
    os.chmod(tree / "tmp", 0o1777)
    shutil.copyfile(busybox, tree / "bin" / "busybox")
    os.chmod(tree / "bin" / "busybox", 0o755)
    for applet in applets:
        applet = applet.strip("/")
        if not applet or applet == "bin/busybox" or ".." in applet.split("/"):
            continue
        link = tree / applet
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists() and not link.is_symlink():
            link.symlink_to("/bin/busybox")
    files = {
        "etc/inittab": (INITTAB, 0o644),
        "etc/init.d/rcS": (RCS, 0o755),
        "etc/init.d/rcK": (RCK, 0o755),
        # busybox acpid: the power button's event (PWRF) runs /etc/acpi/PWRF/00000080
        "etc/acpi/PWRF/00000080": (POWER, 0o755),
        "etc/passwd": (PASSWD, 0o644),
        "etc/group": (GROUP, 0o644),
        "etc/hostname": ("localhost\n", 0o644),
    }
    for name, (text, mode) in files.items():
        path = tree / name
        path.write_text(text)
        os.chmod(path, mode)


def write_tarball(path: Path, tree: Path) -> None:
    """``tree`` as a gzipped tar owned by root (whoever built it)."""
    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0
        return info

    with tarfile.open(path, "w:gz", compresslevel=6) as archive:
        for child in sorted(tree.iterdir()):
            archive.add(child, arcname=f"./{child.name}", filter=as_root)


__all__ = [
    "BUSYBOX_PACKAGE",
    "CACHE_VARIABLE",
    "DEFAULT_CACHE",
    "KERNEL_PACKAGE",
    "KIT_FORMAT",
    "READY_LINE",
    "READY_PATTERN",
    "BootKit",
    "BootKitError",
    "cached",
    "default_cache",
    "ensure",
    "kit_version",
    "module_order",
    "resolve",
    "write_initrd",
]
