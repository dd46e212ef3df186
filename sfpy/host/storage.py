"""Putting a domain's image in place on a host, and taking it away: the storage operations
of SmartDomains' backends, written as "facts in, commands out" through a
:class:`~sfpy.host.hosts.Host` (like :func:`sfpy.host.filesystems.ext4_image`), so the same
code is checked from tables (``tests/host/operations/``) and runs for real.

Two kinds of volume: a file in a directory (the loopback backend; ``xl`` attaches the file
itself, so no loop device is ever made here) and a logical volume (the LVM backend). A volume
is filled without mounting anything: a tarball is unpacked into a scratch directory and
``mke2fs -d`` makes the filesystem from it; a raw ext4 base image is copied and grown
(``e2fsck``, ``resize2fs``); the fast paths are copy-on-write — a qcow2 overlay on the base
file (``qemu-img create -b``) or an LVM snapshot of a golden volume. An image is saved without
mounting too (``debugfs -R "rdump / DIR"`` then ``tar``), written under a temporary name in a
scratch directory and linked to its final name, which fails rather than overwrite.

Every volume, file and scratch directory is put in the journal *before* it is made (kinds
``file``, ``logical-volume``, ``scratch-directory``; cleaners registered here), so a run killed
half-way is cleaned by recovery; a failure half-way removes what was made before raising.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfpy.host.hosts import Host
from sfpy.host.journal import CleanupError, Entry, register_cleaner
from sfpy.host.runner import HostError, JournalLike, Result, ShellRunner

#: What the base image is: a tarball of a root filesystem, or a raw ext4 filesystem image.
TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz")
#: Extensions a saved image may have, and whether tar compresses it.
SAVE_EXTENSIONS = {"tar.gz": True, "tgz": True, "tar": False, "img": None}
SCRATCH_PREFIX = "sfpy-storage-"


@dataclass
class Volumes:
    """What a backend put in place: the root volume (path and format) and the swap volume,
    with the journal entries that stand for them (open while they exist)."""

    root: str
    swap: str | None = None
    root_format: str = "raw"
    entries: list[int] = field(default_factory=list)
    made: bool = True  # False: existing volumes re-used (never deleted by recovery)


class _Undo:
    """What was made so far, to take away again when a later step fails."""

    def __init__(self) -> None:
        self.actions: list[Callable[[], None]] = []

    def add(self, action: Callable[[], None]) -> None:
        self.actions.append(action)

    def run(self) -> None:
        for action in reversed(self.actions):
            with contextlib.suppress(Exception):
                action()
        self.actions.clear()

    def run_checked(self) -> None:
        """Like :meth:`run` (every action runs), then raise the first failure, if any."""
        failure: BaseException | None = None
        for action in reversed(self.actions):
            try:
                action()
            except Exception as error:  # noqa: BLE001 - the rest must still run
                failure = failure or error
        self.actions.clear()
        if failure is not None:
            raise failure


def _add(journal: JournalLike | None, kind: str, owner: str, data: dict[str, Any]) -> int | None:
    return journal.add(kind, owner, data) if journal is not None else None


def _done(journal: JournalLike | None, entry: int | None) -> None:
    if journal is not None and entry is not None:
        journal.done(entry)


def base_kind(host: Host, base: str, caller: str | None = None) -> str:
    """``"tar"`` for a tarball (by its name), ``"ext4"`` for a raw ext4 image (what ``blkid``
    finds in it). Anything else is refused."""
    if not host.exists(base):
        raise HostError(f"base image {base} does not exist")
    if base.endswith(TARBALL_SUFFIXES):
        return "tar"
    found = host.probe(["blkid", "-p", "-o", "value", "-s", "TYPE", base], caller=caller)
    if found.exit_code == 0 and found.stdout.strip() == "ext4":
        return "ext4"
    raise HostError(f"base image {base} is neither a tarball (.tar, .tar.gz, .tgz) nor an "
                    "ext4 filesystem image")


def _number(result: Result, what: str) -> int:
    result.check()
    words = result.stdout.split()
    if not words or not words[-1].isdigit():
        raise HostError(f"cannot read {what} from {result.stdout.strip()!r}")
    return int(words[-1])


def free_in_directory(host: Host, directory: str, caller: str | None = None) -> int:
    """Bytes free for files in ``directory`` (``df``)."""
    result = host.probe(["df", "--output=avail", "-B1", directory], caller=caller)
    if result.exit_code != 0 and "No such file or directory" in result.stderr:
        raise HostError(f"directory {directory} does not exist: make it first, or name "
                        "another one")
    return _number(result, f"the free space of {directory}")


def file_size(host: Host, path: str, caller: str | None = None) -> int:
    return _number(host.probe(["stat", "-L", "-c", "%s", path], caller=caller),
                   f"the size of {path}")


def allocated_size(host: Host, path: str, caller: str | None = None) -> int:
    """Bytes ``path`` (a file or a tree) really takes on its filesystem (``du -s -B1``): a
    sparse file counts only what was written."""
    result = host.probe(["du", "-s", "-B1", path], caller=caller).check()
    words = result.stdout.split()
    if not words or not words[0].isdigit():
        raise HostError(f"cannot read the size of {path} from {result.stdout.strip()!r}")
    return int(words[0])


MIB = 1024 * 1024
#: What a swap file takes once ``mkswap`` ran: its header page (a sparse file otherwise).
SWAP_WRITTEN = 64 * 1024
#: What ``qemu-img create`` writes for an overlay (header, L1 and refcount tables).
OVERLAY_WRITTEN = 1 * MIB


def ext4_metadata(size: int) -> int:
    """An upper bound of what ``mke2fs`` (or ``resize2fs`` growing to ``size``) writes into a
    sparse file of ``size`` bytes besides the files: the journal, which mke2fs zeroes, of
    its default size (e2fsprogs' table: 4 MiB under 128 MiB … 1 GiB from 128 GiB; 1 KiB
    blocks under 512 MiB, 4 KiB above), plus 1/1024 of the size and 4 MiB for the bitmaps,
    group descriptors and the inodes in use (inode tables are initialised lazily).
    Measured: 1 GiB → 32.6 MiB, 4 GiB → 66 MiB, 16 GiB → 132 MiB."""
    block = 1024 if size < 512 * MIB else 4096
    blocks = size // block
    table = [(2048, 0), (32768, 1024), (256 * 1024, 4096), (512 * 1024, 8192),
             (4096 * 1024, 16384), (8192 * 1024, 32768), (16384 * 1024, 65536),
             (32768 * 1024, 131072)]
    journal = next((b for limit, b in table if blocks < limit), 262144) * block
    return journal + size // 1024 + 4 * MIB


def _room(needed: int, free: int, where: str) -> None:
    if free < needed:
        raise HostError(f"not enough room in {where}: {needed} bytes needed, {free} free")


def scratch_directory(host: Host, parent: str, journal: JournalLike | None, owner: str,
                      undo: _Undo, caller: str | None = None) -> tuple[str, int | None]:
    """A new scratch directory in ``parent`` (``mktemp -d``), journalled: the entry names its
    parent and a prefix of its own first (so recovery finds the directory even when the run
    died before it learnt the path), then its path once known."""
    prefix = SCRATCH_PREFIX
    if journal is not None:
        prefix = f"{SCRATCH_PREFIX}{secrets.token_hex(6)}-"
    entry = _add(journal, "scratch-directory", owner, {"parent": parent, "prefix": prefix})
    made = host.run(["mktemp", "-d", "-p", parent, f"{prefix}XXXXXXXX"],
                    caller=caller).check()
    path = made.stdout.strip()
    if journal is not None and entry is not None:
        journal.update(entry, {"path": path})

    def remove() -> None:
        host.run(["rm", "-rf", "--one-file-system", path], caller=caller).check()
        _done(journal, entry)

    undo.add(remove)
    return path, entry


def _unpack(host: Host, base: str, scratch: str, caller: str | None) -> None:
    host.run(["tar", "-x", "--numeric-owner", "-p", "-f", base, "-C", scratch],
             label="tar", caller=caller).check()


def _make_swap(host: Host, path: str, caller: str | None) -> None:
    host.run(["mkswap", "-q", path], label="mkswap", caller=caller).check()


# ===============================================================================================
# Loopback: files in a directory.
# ===============================================================================================
def loopback_paths(directory: str, name: str, cow: bool = False) -> tuple[str, str]:
    """The root and swap files of volume ``name`` in ``directory``."""
    return (f"{directory}/{name}.{'qcow2' if cow else 'img'}", f"{directory}/{name}-swap.img")


def loopback_existing(host: Host, directory: str, name: str) -> Volumes:
    """Volumes that already exist (``usingExistingVolumes``): the root file (``.img`` or
    ``.qcow2``) must be there; the swap file is used when there."""
    for cow in (False, True):
        root, swap = loopback_paths(directory, name, cow)
        if host.exists(root):
            return Volumes(root, swap if host.exists(swap) else None,
                           "qcow2" if cow else "raw", made=False)
    raise HostError(f"usingExistingVolumes: there is no volume {name} in {directory} "
                    f"({name}.img or {name}.qcow2)")


def loopback_put_in_place(host: Host, *, directory: str, name: str, base: str, size: int,
                          swap: int | None, scratch: str, copy_on_write: bool = True,
                          journal: JournalLike | None = None, owner: str = "",
                          caller: str | None = None) -> Volumes:
    """Make ``<directory>/<name>.img`` (or ``.qcow2``, the copy-on-write overlay used when the
    base is an ext4 image and ``copy_on_write``) filled from ``base``, and
    ``<name>-swap.img`` when ``swap`` (bytes). Refuses when a file is already there or when
    the directory has no room; takes away what it made when a step fails."""
    kind = base_kind(host, base, caller)
    cow = copy_on_write and kind == "ext4"
    root, swap_path = loopback_paths(directory, name, cow)
    for path in (root, swap_path):
        if host.exists(path):
            raise HostError(f"{path} already exists: refusing to overwrite it")
    base_size = file_size(host, base, caller) if kind == "ext4" else 0
    if kind == "ext4" and base_size > size:
        raise HostError(f"base image {base} ({base_size} bytes) is larger than the volume size "
                        f"({size} bytes)")
    # The room rule (volumes are sparse files: what is written now, not their size):
    # a tarball needs its files (at least the tarball's own size; checked again once
    # unpacked) and ext4's metadata; a copy of an ext4 image what the image takes plus the
    # metadata of its growth; an overlay next to nothing (plus that metadata when grown);
    # a swap file its header. What the guest writes later is not reserved.
    swap_needed = SWAP_WRITTEN if swap else 0
    growth = ext4_metadata(size) if size > base_size else 0
    if kind == "tar":
        needed = file_size(host, base, caller) + ext4_metadata(size)
    elif cow:
        needed = OVERLAY_WRITTEN + growth
    else:
        needed = allocated_size(host, base, caller) + growth
    _room(needed + swap_needed, free_in_directory(host, directory, caller), directory)
    undo = _Undo()
    volumes = Volumes(root, None, "qcow2" if cow else "raw")
    try:
        entry = _add(journal, "file", owner, {"path": root})
        volumes.entries.append(entry) if entry is not None else None

        def remove_root() -> None:
            host.run(["rm", "-f", root], caller=caller).check()
            _done(journal, entry)

        if kind == "tar":
            folder, _ = scratch_directory(host, scratch, journal, owner, undo, caller)
            _unpack(host, base, folder, caller)
            # now the files' size is known (and, on the same filesystem, already taken)
            _room(allocated_size(host, folder, caller) + ext4_metadata(size) + swap_needed,
                  free_in_directory(host, directory, caller), directory)
            undo.add(remove_root)
            host.run(["truncate", "-s", str(size), root], caller=caller).check()
            host.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", folder, root],
                     label="mke2fs", caller=caller).check()
            undo.actions.remove(remove_root)
            undo.run()  # the scratch directory goes now
            undo.add(remove_root)
        elif cow:
            undo.add(remove_root)
            host.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, root,
                      str(size)], label="qemu-img", caller=caller).check()
            if size > base_size:
                grow_overlay(host, root, scratch, journal, owner, caller)
        else:
            undo.add(remove_root)
            host.run(["cp", "--sparse=always", base, root], label="cp", caller=caller).check()
            if size > base_size:
                host.run(["truncate", "-s", str(size), root], caller=caller).check()
                _grow(host, root, caller)
        if swap:
            swap_entry = _add(journal, "file", owner, {"path": swap_path})
            volumes.entries.append(swap_entry) if swap_entry is not None else None

            def remove_swap() -> None:
                host.run(["rm", "-f", swap_path], caller=caller).check()
                _done(journal, swap_entry)

            undo.add(remove_swap)
            host.run(["truncate", "-s", str(swap), swap_path], caller=caller).check()
            _make_swap(host, swap_path, caller)
            volumes.swap = swap_path
    except BaseException:
        undo.run()
        raise
    return volumes


def _grow(host: Host, target: str, caller: str | None) -> None:
    """Grow the ext4 filesystem in ``target`` to fill it (``e2fsck -f`` first, as
    ``resize2fs`` requires; its exit code 1 means "fixed something" and is fine)."""
    checked = host.run(["e2fsck", "-f", "-y", target], label="e2fsck", caller=caller)
    if checked.exit_code not in (0, 1):
        checked.check()
    host.run(["resize2fs", target], label="resize2fs", caller=caller).check()


def _option_value(text: str) -> str:
    """A value inside a QEMU ``key=value,…`` option: commas doubled."""
    return text.replace(",", ",,")


def can_export_with_fuse(host: Host, caller: str | None = None) -> bool:
    """Whether ``qemu-storage-daemon`` can show a qcow2 image as a plain file here (FUSE)."""
    if not host.exists("/dev/fuse"):
        return False
    return host.probe(["qemu-storage-daemon", "--version"], caller=caller).exit_code == 0


def grow_overlay(host: Host, overlay: str, scratch: str, journal: JournalLike | None = None,
                 owner: str = "", caller: str | None = None) -> bool:
    """Grow the ext4 filesystem inside a qcow2 overlay to the overlay's virtual size, without
    touching its base: ``resize2fs`` cannot open qcow2, so ``qemu-storage-daemon`` exports
    the overlay as a plain file through FUSE (no nbd module needed), ``e2fsck -f`` and
    ``resize2fs`` run on that file, and the export stops. Only the new metadata is written
    (into the overlay). Where FUSE or ``qemu-storage-daemon`` is missing, nothing is done
    and False is returned: the filesystem keeps the base's size inside a disk of the full
    size, which the guest can grow at boot (``resize2fs`` on its mounted root).

    The export is journalled (``fuse-export``: its mount point and pid file) before it is
    made, inside a journalled scratch directory, so a run killed meanwhile is cleaned."""
    if not can_export_with_fuse(host, caller):
        return False
    undo = _Undo()
    try:
        folder, _ = scratch_directory(host, scratch, journal, owner, undo, caller)
        mountpoint, pidfile = f"{folder}/disk", f"{folder}/qsd.pid"
        host.run(["touch", mountpoint], caller=caller).check()
        entry = _add(journal, "fuse-export", owner, {"mountpoint": mountpoint,
                                                    "pidfile": pidfile})

        def stop() -> None:
            stop_fuse_export(host, mountpoint, pidfile, caller)
            _done(journal, entry)

        undo.add(stop)
        host.run(["qemu-storage-daemon",
                  "--blockdev", f"driver=file,node-name=file,filename={_option_value(overlay)}",
                  "--blockdev", "driver=qcow2,node-name=disk,file=file",
                  "--export", "type=fuse,id=export,node-name=disk,writable=on,"
                              f"mountpoint={_option_value(mountpoint)}",
                  "--pidfile", pidfile, "--daemonize"],
                 label="qemu-storage-daemon", caller=caller).check()
        _grow(host, mountpoint, caller)
    except BaseException:
        undo.run()
        raise
    undo.run_checked()  # the export stopped and the folder gone, or an error saying why not
    return True


def stop_fuse_export(host: Host, mountpoint: str, pidfile: str,
                     caller: str | None = None) -> None:
    """Stop a ``qemu-storage-daemon`` FUSE export: SIGTERM to the pid in ``pidfile`` (it
    flushes and unmounts), wait for it to exit (``tail --pid``), and ``umount`` the mount
    point if it is still mounted (the daemon died without unmounting)."""
    if host.exists(pidfile):
        pid = host.read_text(pidfile).strip()
        if pid.isdigit():
            stopped = host.run(["kill", "-TERM", pid], caller=caller)
            if stopped.ok:
                host.run(["tail", f"--pid={pid}", "-s", "0.05", "-f", "/dev/null"],
                         timeout=60, caller=caller).check()
    mounted = host.probe(["findmnt", "-n", "-o", "TARGET", "--mountpoint", mountpoint],
                         caller=caller)
    if mounted.exit_code == 0 and mounted.stdout.strip():
        host.run(["umount", mountpoint], caller=caller).check()


def loopback_delete(host: Host, volumes: Volumes, journal: JournalLike | None = None,
                    caller: str | None = None) -> None:
    """Remove the volume files (``rm -f``: already gone is fine) and close their entries."""
    paths = [volumes.root, *([volumes.swap] if volumes.swap else [])]
    host.run(["rm", "-f", *paths], caller=caller).check()
    for entry in volumes.entries:
        _done(journal, entry)
    volumes.entries.clear()


# ===============================================================================================
# LVM: logical volumes in a volume group.
# ===============================================================================================
def lvm_options(config: str | None) -> list[str]:
    """``--config TEXT`` for every lvm command when given (``global{activation=0}``: metadata
    only, for hosts without device-mapper)."""
    return ["--config", config] if config else []


def free_in_volume_group(host: Host, group: str, config: str | None = None,
                         caller: str | None = None) -> int:
    return _number(host.probe(["vgs", *lvm_options(config), "--noheadings", "--units", "b",
                               "--nosuffix", "-o", "vg_free", group], caller=caller),
                   f"the free space of volume group {group}")


def logical_volume_exists(host: Host, group: str, volume: str, config: str | None = None,
                          caller: str | None = None) -> bool:
    found = host.probe(["lvs", *lvm_options(config), "--noheadings", "-o", "lv_name",
                        f"{group}/{volume}"], caller=caller)
    return found.exit_code == 0 and found.stdout.strip() == volume


def logical_volume_path(host: Host, group: str, volume: str, config: str | None = None,
                        caller: str | None = None) -> str:
    """Where the logical volume's device is, as lvm says (``lvs -o lv_path``): ``/dev/VG/LV``
    with lvm's default device directory, not assumed, so a host whose lvm is configured
    otherwise (``devices/dir``) or a stand-in lvm is followed too."""
    found = host.probe(["lvs", *lvm_options(config), "--noheadings", "-o", "lv_path",
                        f"{group}/{volume}"], caller=caller).check()
    path = found.stdout.strip()
    if not path.startswith("/"):
        raise HostError(f"lvs gave no device path for {group}/{volume}: {path!r}")
    return path


def lvm_existing(host: Host, group: str, name: str, config: str | None = None,
                 caller: str | None = None) -> Volumes:
    if not logical_volume_exists(host, group, name, config, caller):
        raise HostError(f"usingExistingVolumes: there is no logical volume {group}/{name}")
    swap = f"{name}-swap"
    has_swap = logical_volume_exists(host, group, swap, config, caller)
    return Volumes(logical_volume_path(host, group, name, config, caller),
                   logical_volume_path(host, group, swap, config, caller) if has_swap else None,
                   made=False)


def lvm_create_volume(host: Host, group: str, volume: str, size: int, *,
                      origin: str | None = None, config: str | None = None,
                      journal: JournalLike | None = None, owner: str = "",
                      caller: str | None = None) -> int | None:
    """``lvcreate`` the logical volume ``group/volume`` of ``size`` bytes (a snapshot of
    ``group/origin`` when given), journalled first; returns its open entry. Apart from the
    caller's fill, this is all an LVM volume needs, so it also runs on a metadata-only host
    (``global{activation=0}``)."""
    entry = _add(journal, "logical-volume", owner,
                 {"group": group, "volume": volume, "config": config})
    source = ["-s", "-L", f"{size}b", "-n", volume, f"{group}/{origin}"] if origin else \
        ["-L", f"{size}b", "-n", volume, group]
    made = host.run(["lvcreate", *lvm_options(config), "-y", *source], label="lvcreate",
                    caller=caller)
    if not made.ok:
        _done(journal, entry)  # lvcreate made nothing
        made.check()
    return entry


def lvm_remove_volume(host: Host, group: str, volume: str, config: str | None = None,
                      journal: JournalLike | None = None, entry: int | None = None,
                      caller: str | None = None) -> None:
    """``lvremove -f group/volume`` (it must exist), then close its entry."""
    host.run(["lvremove", *lvm_options(config), "-f", f"{group}/{volume}"],
             caller=caller).check()
    _done(journal, entry)


def lvm_put_in_place(host: Host, *, group: str, name: str, base: str | None, size: int,
                     swap: int | None, scratch: str, golden: str | None = None,
                     config: str | None = None, journal: JournalLike | None = None,
                     owner: str = "", caller: str | None = None) -> Volumes:
    """Create ``<group>/<name>`` (a snapshot of ``golden`` when given, else a volume filled
    from ``base``) and ``<name>-swap`` when ``swap``. Refuses when a volume of those names
    exists or the group has no room; removes what it made when a step fails."""
    swap_name = f"{name}-swap"
    for volume in (name, swap_name):
        if logical_volume_exists(host, group, volume, config, caller):
            raise HostError(f"logical volume {group}/{volume} already exists: refusing to "
                            "overwrite it")
    kind = None
    if golden is None:
        if base is None:
            raise HostError("a baseImage or a golden volume is needed")
        kind = base_kind(host, base, caller)
    _room(size + (swap or 0), free_in_volume_group(host, group, config, caller),
          f"volume group {group}")
    undo = _Undo()
    volumes = Volumes(f"/dev/{group}/{name}")  # until lvs says where it is

    def create(volume: str, volume_size: int, origin: str | None = None) -> None:
        entry = lvm_create_volume(host, group, volume, volume_size, origin=origin,
                                  config=config, journal=journal, owner=owner, caller=caller)
        if entry is not None:
            volumes.entries.append(entry)
        undo.add(lambda: lvm_remove_volume(host, group, volume, config, journal, entry, caller))

    try:
        if golden is not None:
            create(name, size, golden)
            volumes.root = logical_volume_path(host, group, name, config, caller)
        else:
            create(name, size)
            device = volumes.root = logical_volume_path(host, group, name, config, caller)
            if kind == "tar":
                assert base is not None
                inner = _Undo()
                folder, _ = scratch_directory(host, scratch, journal, owner, inner, caller)
                try:
                    _unpack(host, base, folder, caller)
                    host.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", folder, device],
                             label="mke2fs", caller=caller).check()
                finally:
                    inner.run()
            else:
                assert base is not None
                host.run(["dd", f"if={base}", f"of={device}", "bs=4M", "conv=sparse,fsync"],
                         label="dd", caller=caller).check()
                _grow(host, device, caller)
        if swap:
            create(swap_name, swap)
            volumes.swap = logical_volume_path(host, group, swap_name, config, caller)
            _make_swap(host, volumes.swap, caller)
    except BaseException:
        undo.run()
        raise
    return volumes


def lvm_delete(host: Host, volumes: Volumes, config: str | None = None,
               journal: JournalLike | None = None, caller: str | None = None) -> None:
    """``lvremove -f`` the volumes (one already gone is fine) and close their entries."""
    for device in [volumes.root, *([volumes.swap] if volumes.swap else [])]:
        group, volume = device.split("/")[-2:]
        result = host.run(["lvremove", *lvm_options(config), "-f", f"{group}/{volume}"],
                          caller=caller)
        if not result.ok and "Failed to find logical volume" not in result.stderr:
            result.check()
    for entry in volumes.entries:
        _done(journal, entry)
    volumes.entries.clear()


# ===============================================================================================
# Saving an image.
# ===============================================================================================
def save_image(host: Host, *, source: str, source_format: str, directory: str, stem: str,
               extension: str, when: str, scratch: str, journal: JournalLike | None = None,
               owner: str = "", caller: str | None = None) -> str:
    """Save the filesystem in ``source`` as ``<directory>/<stem>-<when>.<extension>``
    (``tar.gz``/``tgz``: a gzip'ed tar of its files; ``tar``; ``img``: the raw filesystem).
    Written in a scratch directory and linked to the final name (never overwriting: ``ln``
    fails when the name exists). Returns the saved image's path."""
    if extension not in SAVE_EXTENSIONS:
        raise HostError(f"saveImageExtension must be one of {', '.join(SAVE_EXTENSIONS)}, "
                        f"not {extension!r}")
    final = f"{directory}/{stem}-{when}.{extension}"
    if host.exists(final):
        raise HostError(f"{final} already exists: an earlier saved image is never overwritten")
    undo = _Undo()
    try:
        folder, _ = scratch_directory(host, scratch, journal, owner, undo, caller)
        raw = source
        if source_format == "qcow2":
            raw = f"{folder}/raw.img"
            host.run(["qemu-img", "convert", "-O", "raw", source, raw], label="qemu-img",
                     caller=caller).check()
        part = f"{folder}/image"
        compress = SAVE_EXTENSIONS[extension]
        if compress is None:
            host.run(["cp", "--sparse=always", raw, part], label="cp", caller=caller).check()
        else:
            tree = f"{folder}/root"
            host.run(["mkdir", tree], caller=caller).check()
            host.run(["debugfs", "-R", f"rdump / {tree}", raw], label="debugfs",
                     caller=caller).check()
            host.run(["tar", "--numeric-owner", "-c", *(["-z"] if compress else []), "-f", part,
                      "-C", tree, "."], label="tar", caller=caller).check()
        placed = host.run(["ln", "-T", part, final], caller=caller)
        if not placed.ok and "cross-device" in placed.stderr:
            # another filesystem: copy beside the final name first, then link (still atomic)
            hidden = f"{directory}/.{stem}-{when}.{extension}.partial"
            entry = _add(journal, "file", owner, {"path": hidden})
            host.run(["cp", "--sparse=always", part, hidden], caller=caller).check()
            placed = host.run(["ln", "-T", hidden, final], caller=caller)
            host.run(["rm", "-f", hidden], caller=caller).check()
            _done(journal, entry)
        placed.check()
    finally:
        undo.run()
    return final


# ===============================================================================================
# Cleaners (recovery of a run killed half-way).
# ===============================================================================================
def _recovery_runner() -> ShellRunner:
    import logging

    return ShellRunner(logging.getLogger("sfpy.recover"), timeout=120)


def remove_scratch_entry(entry: Entry) -> str:
    """Cleaner of ``scratch-directory``: remove the directory (only one named like ours)."""
    path = entry.data.get("path")
    if not isinstance(path, str):
        # died between mktemp and recording its path: the entry's own prefix finds it
        parent, prefix = entry.data.get("parent"), entry.data.get("prefix")
        if (not isinstance(parent, str) or not isinstance(prefix, str)
                or not prefix.startswith(SCRATCH_PREFIX) or prefix == SCRATCH_PREFIX
                or "/" in prefix):
            return "a scratch directory that was never made"
        found = sorted(Path(parent).glob(f"{glob.escape(prefix)}*"))
        for directory in found:
            shutil.rmtree(directory)
        return ", ".join(f"removed {d}" for d in found) or "a scratch directory never made"
    if not os.path.basename(path).startswith(SCRATCH_PREFIX):
        raise CleanupError(f"{path} is not a scratch directory of sfpy: left as it is")
    if not os.path.exists(path):
        return f"{path} was already gone"
    shutil.rmtree(path)
    return f"removed {path}"


def remove_logical_volume_entry(entry: Entry) -> str:
    """Cleaner of ``logical-volume``: ``lvremove -f`` it (a volume not found is gone)."""
    group, volume = entry.data.get("group"), entry.data.get("volume")
    if not isinstance(group, str) or not isinstance(volume, str):
        raise CleanupError(f"a logical-volume entry without group or volume: {dict(entry.data)}")
    runner = _recovery_runner()
    try:
        result = runner.run(["lvremove", *lvm_options(entry.data.get("config")), "-f",
                             f"{group}/{volume}"], caller=entry.owner)
    finally:
        runner.close()
    if result.ok:
        return f"removed logical volume {group}/{volume}"
    if "Failed to find logical volume" in result.stderr:
        return f"logical volume {group}/{volume} was already gone"
    raise CleanupError(result.describe())


def _exporters(mountpoint: str, pidfile: str) -> list[int]:
    """The ``qemu-storage-daemon`` serving ``mountpoint``: the pid in its pid file, or, when
    the run died before that file was written, any process whose command line names it."""
    def serves(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                words = handle.read().decode(errors="replace").split("\0")
        except OSError:
            return False
        return "qemu-storage-daemon" in words[0] and any(mountpoint in w for w in words)

    with contextlib.suppress(OSError, ValueError):
        pid = int(Path(pidfile).read_text().strip())
        return [pid] if serves(pid) else []
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and serves(int(name))]


def stop_fuse_export_entry(entry: Entry) -> str:
    """Cleaner of ``fuse-export``: stop the export's ``qemu-storage-daemon`` (only a process
    whose command line names the entry's mount point) and unmount what is left."""
    mountpoint, pidfile = entry.data.get("mountpoint"), entry.data.get("pidfile")
    if not isinstance(mountpoint, str) or not isinstance(pidfile, str):
        raise CleanupError(f"a fuse-export entry without mountpoint or pidfile: "
                           f"{dict(entry.data)}")
    said = []
    for pid in _exporters(mountpoint, pidfile):
        with contextlib.suppress(OSError):
            os.kill(pid, 15)
            said.append(f"stopped the export of {mountpoint} (pid {pid})")
            deadline = time.monotonic() + 30
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.05)
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        listed = [line.split()[1] for line in mounts if len(line.split()) > 1]
    if mountpoint.replace(" ", "\\040") in listed:
        runner = _recovery_runner()
        try:
            result = runner.run(["umount", "-l", mountpoint], caller=entry.owner)
        finally:
            runner.close()
        if not result.ok:
            raise CleanupError(result.describe())
        said.append(f"unmounted {mountpoint}")
    return ", ".join(said) or f"the export of {mountpoint} was already gone"


register_cleaner("scratch-directory", remove_scratch_entry)
register_cleaner("fuse-export", stop_fuse_export_entry)
register_cleaner("logical-volume", remove_logical_volume_entry)


__all__ = [
    "SAVE_EXTENSIONS",
    "Volumes",
    "base_kind",
    "free_in_directory",
    "allocated_size",
    "can_export_with_fuse",
    "ext4_metadata",
    "free_in_volume_group",
    "grow_overlay",
    "loopback_delete",
    "loopback_existing",
    "loopback_paths",
    "loopback_put_in_place",
    "lvm_delete",
    "lvm_create_volume",
    "lvm_existing",
    "lvm_options",
    "lvm_put_in_place",
    "lvm_remove_volume",
    "logical_volume_exists",
    "logical_volume_path",
    "remove_logical_volume_entry",
    "remove_scratch_entry",
    "save_image",
    "stop_fuse_export",
    "stop_fuse_export_entry",
]
