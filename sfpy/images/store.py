"""The image store and cache (default ``/var/lib/sfpy/images``).

Layout::

    images/<key>/meta.json      what the image is (canonical parameters or origin), sizes, times
    images/<key>/image.<ext>    the image (tar.gz, tar, img or qcow2)
    images/<key>/kernel         the kernel and initramfs of a built image, for direct boot
    images/<key>/ramdisk
    images/<key>/build.log      everything the build's commands printed
    images/<key>/used           its modification time is when the image was last used
    .tmp/<key>-XXXX/            a build in progress (removed when it fails)
    .locks/<key>.lock           held (flock) while the image is built, removed or collected

Publishing is a ``rename`` of the finished build directory to ``images/<key>``: an image is
there completely or not at all. Two builds of one key never run at once: the second waits for
the lock, then finds the first's image. ``gc`` removes images unused for a set time, then the
least recently used until the store is under its quota; an image whose lock is held (being
built, removed, or used by an ImageBuilder at that moment) is never touched.

This module is on the cache-hit path of ``sfimage build``: standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sfpy.images.errors import ImageError, ParameterError

_KEY = re.compile(r"[0-9a-f]{64}")
#: What storage backends' saveImage writes: <volumeBaseName>-<domain>-<UTC time>.<ext>
_SAVED = re.compile(r"^(?P<stem>.+)-(?P<when>\d{8}T\d{6}Z)\.(?P<ext>tar\.gz|tgz|tar|img|qcow2)$")
_EXTENSIONS = {"tar.gz": "tar.gz", "tgz": "tar.gz", "tar": "tar", "img": "img", "qcow2": "qcow2"}


@dataclass
class Image:
    key: str
    directory: str
    meta: dict[str, Any]

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.meta["image"])

    @property
    def kernel(self) -> str | None:
        return os.path.join(self.directory, "kernel") if self.meta.get("kernel") else None

    @property
    def ramdisk(self) -> str | None:
        return os.path.join(self.directory, "ramdisk") if self.meta.get("ramdisk") else None

    @property
    def format(self) -> str:
        return str(self.meta["format"])

    def bytes_used(self) -> int:
        total = 0
        for name in os.listdir(self.directory):
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(self.directory, name)).st_blocks * 512
        return total

    def last_used(self) -> float:
        try:
            return os.stat(os.path.join(self.directory, "used")).st_mtime
        except OSError:
            return os.stat(self.directory).st_mtime

    def summary(self) -> dict[str, Any]:
        """What ``list --json`` and ``show --json`` print."""
        return {"key": self.key, "format": self.format, "path": self.path,
                "kernel": self.kernel, "ramdisk": self.ramdisk,
                "bytes": self.bytes_used(), "created": self.meta.get("created"),
                "lastUsed": _iso(self.last_used()), "kind": self.meta.get("kind"),
                "groups": self.meta.get("params", {}).get("groups"),
                "origin": self.meta.get("origin")}


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def now_iso() -> str:
    return _iso(time.time())


class Store:
    """The store at ``root`` (made on first write)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.images_dir = os.path.join(self.root, "images")
        self.tmp_dir = os.path.join(self.root, ".tmp")
        self.locks_dir = os.path.join(self.root, ".locks")

    # -- reading -------------------------------------------------------------------------------
    def find(self, key: str) -> Image | None:
        """The published image of ``key`` (None: not in the store)."""
        directory = os.path.join(self.images_dir, key)
        try:
            with open(os.path.join(directory, "meta.json"), encoding="utf-8") as handle:
                meta = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise ImageError(f"image {key} in {self.root} is damaged: {error}") from None
        return Image(key, directory, meta)

    def images(self) -> list[Image]:
        try:
            names = sorted(os.listdir(self.images_dir))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if _KEY.fullmatch(name):
                with contextlib.suppress(ImageError):
                    image = self.find(name)
                    if image is not None:
                        found.append(image)
        return found

    def resolve(self, prefix: str) -> Image:
        """The image whose key starts with ``prefix`` (at least 4 characters, unique)."""
        prefix = prefix.strip().lower()
        if len(prefix) < 4 or not re.fullmatch(r"[0-9a-f]+", prefix):
            raise ParameterError(f"{prefix!r} is not an image key (or its first 4+ hex digits)")
        matches = [i for i in self.images() if i.key.startswith(prefix)]
        if not matches:
            raise ImageError(f"no image {prefix} in {self.root}")
        if len(matches) > 1:
            raise ParameterError(f"{prefix} names {len(matches)} images: give more digits")
        return matches[0]

    def touch(self, image: Image) -> None:
        """Mark ``image`` used now (gc goes by this)."""
        used = os.path.join(image.directory, "used")
        try:
            os.utime(used)
        except FileNotFoundError:
            with open(used, "w", encoding="utf-8"):
                pass
        except PermissionError:
            pass  # a reader without write access still gets the image

    def total_bytes(self) -> int:
        return sum(i.bytes_used() for i in self.images())

    # -- locks ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, key: str, *, wait: bool = True,
             on_wait: Callable[[str], None] | None = None,
             stop: Callable[[float], bool] | None = None) -> Iterator[bool]:
        """Hold the lock of ``key``. ``wait`` false: yields False at once if it is held.
        ``stop(seconds)``: waits that long and says whether to give up waiting (a component's
        cancelled step); the wait then raises :class:`ImageError`."""
        os.makedirs(self.locks_dir, exist_ok=True)
        path = os.path.join(self.locks_dir, f"{key}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if not wait:
                    yield False
                    return
                if on_wait is not None:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                    on_wait(holder)
                if stop is None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                else:
                    while True:
                        try:
                            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                            break
                        except BlockingIOError:
                            if stop(0.5):
                                raise ImageError(
                                    f"stopped waiting for the build of {key[:12]}") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield True
        finally:
            os.close(fd)  # releases the lock

    # -- building ------------------------------------------------------------------------------
    def new_work_directory(self, key: str) -> str:
        import tempfile

        os.makedirs(self.tmp_dir, exist_ok=True)
        return tempfile.mkdtemp(prefix=f"{key}-", dir=self.tmp_dir)

    def publish(self, work: str, key: str) -> Image:
        """Rename the finished ``work`` directory to the image of ``key`` (atomic)."""
        os.makedirs(self.images_dir, exist_ok=True)
        final = os.path.join(self.images_dir, key)
        os.chmod(work, 0o755)
        os.rename(work, final)
        image = self.find(key)
        if image is None:
            raise ImageError(f"published image {key} has no meta.json")
        self.touch(image)
        return image

    def clean_stale_work(self) -> list[str]:
        """Remove build directories left by a killed build (their lock is free)."""
        removed: list[str] = []
        try:
            names = os.listdir(self.tmp_dir)
        except FileNotFoundError:
            return removed
        for name in names:
            key = name.split("-", 1)[0]
            with self.lock(key, wait=False) as held:
                if held:
                    remove_tree(os.path.join(self.tmp_dir, name))
                    removed.append(name)
        return removed

    # -- removing ------------------------------------------------------------------------------
    def remove(self, image: Image, *, wait: bool = False) -> bool:
        """Remove ``image`` unless its lock is held (False then)."""
        with self.lock(image.key, wait=wait) as held:
            if not held:
                return False
            if not os.path.isdir(image.directory):
                return True
            doomed = os.path.join(self.images_dir, f".removing-{image.key}")
            os.rename(image.directory, doomed)  # gone from the store at once
            import shutil

            shutil.rmtree(doomed)
            return True

    def gc(self, *, unused_for: float | None, quota: int | None, dry_run: bool = False,
           keep: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Remove images unused for ``unused_for`` seconds, then the least recently used until
        the store holds at most ``quota`` bytes. Returns what was (or would be) removed."""
        if not dry_run:
            self.clean_stale_work()
        images = sorted(self.images(), key=lambda i: i.last_used())
        now = time.time()
        removed: list[dict[str, Any]] = []
        sizes = {i.key: i.bytes_used() for i in images}
        total = sum(sizes.values())
        for image in images:
            old = unused_for is not None and now - image.last_used() > unused_for
            over = quota is not None and total > quota
            if image.key in keep or not (old or over):
                continue
            reason = "unused" if old else "quota"
            last = _iso(image.last_used())
            if dry_run or self.remove(image):
                total -= sizes[image.key]
                removed.append({"key": image.key, "bytes": sizes[image.key], "reason": reason,
                                "lastUsed": last})
        return removed

    # -- import and export ---------------------------------------------------------------------
    def import_file(self, path: str, *, domain: str | None = None, host: str | None = None,
                    when: str | None = None, volume_base: str = "xen-domain",
                    kernel: str | None = None, ramdisk: str | None = None,
                    move: bool = False) -> tuple[Image, bool]:
        """Put an image file (typically one a storage backend saved) in the store, recording
        its origin. Its key is the sha256 of its content. Returns (image, new)."""
        import hashlib
        import shutil
        import socket
        from datetime import datetime
        if not os.path.isfile(path):
            raise ParameterError(f"{path} is not a file")
        name = os.path.basename(path)
        match = _SAVED.match(name)
        ext = None
        if match:
            ext = _EXTENSIONS[match.group("ext")]
            stem = match.group("stem")
            if domain is None:
                prefix = f"{volume_base}-"
                domain = stem[len(prefix):] if stem.startswith(prefix) else stem
            if when is None:
                when = datetime.strptime(match.group("when"), "%Y%m%dT%H%M%SZ").strftime(
                    "%Y-%m-%dT%H:%M:%SZ")
        else:
            for suffix, fmt in sorted(_EXTENSIONS.items(), key=lambda kv: -len(kv[0])):
                if name.endswith("." + suffix):
                    ext = fmt
                    break
        if ext is None:
            raise ParameterError(f"{name}: not an image name (.tar.gz, .tgz, .tar, .img, "
                                 ".qcow2)")
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        key = digest.hexdigest()
        with self.lock(key):
            existing = self.find(key)
            if existing is not None:
                self.touch(existing)
                return existing, False
            work = self.new_work_directory(key)
            try:
                target = os.path.join(work, f"image.{ext}")
                if move:
                    try:
                        os.rename(path, target)
                    except OSError:
                        shutil.copyfile(path, target)
                        os.unlink(path)
                else:
                    shutil.copyfile(path, target)
                meta: dict[str, Any] = {
                    "key": key, "kind": "imported", "format": ext, "image": f"image.{ext}",
                    "created": now_iso(),
                    "origin": {"file": os.path.abspath(path), "domain": domain,
                               "host": host or socket.gethostname(), "time": when},
                }
                for what, source in (("kernel", kernel), ("ramdisk", ramdisk)):
                    if source:
                        shutil.copyfile(source, os.path.join(work, what))
                        meta[what] = what
                write_meta(work, meta)
                return self.publish(work, key), True
            except BaseException:
                remove_tree(work)
                raise

    def export(self, image: Image, destination: str) -> list[str]:
        """Copy the image to ``destination`` (a file, or a directory that receives the image
        with its kernel and ramdisk). Returns the files written."""
        import shutil

        written = []
        if os.path.isdir(destination):
            for source in (image.path, image.kernel, image.ramdisk):
                if source:
                    name = os.path.basename(source)
                    if source == image.path:
                        name = f"{image.key[:12]}.{image.format}"
                    target = os.path.join(destination, name)
                    shutil.copyfile(source, target)
                    written.append(target)
        else:
            shutil.copyfile(image.path, destination)
            written.append(destination)
        self.touch(image)
        return written


def write_meta(directory: str, meta: dict[str, Any]) -> None:
    with open(os.path.join(directory, "meta.json"), "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=2, sort_keys=True)
        handle.write("\n")


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > 4:
                points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                                     fields[4]))
    return points


def mounts_under(path: str) -> list[str]:
    path = os.path.realpath(path)
    return sorted((p for p in _mount_points() if p == path or p.startswith(path + "/")),
                  key=len, reverse=True)


def remove_tree(path: str) -> None:
    """Remove a build directory: first unmount what a killed chroot build left mounted in it
    (``/proc``, ``/sys``, ``/dev`` of the chroot), then remove it without ever crossing into
    another filesystem (``rm --one-file-system``), so a leftover bind mount can never make us
    delete the host's own files."""
    if not os.path.lexists(path):
        return
    # Plain subprocess, not the host layer's runner: this is the cleanup of a build that may
    # have been cancelled, and a cancelled step's runner starts no command. Argument lists only.
    import subprocess

    for point in mounts_under(path):
        subprocess.run(["umount", "--recursive", "--lazy", point], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    left = mounts_under(path)
    if left:
        raise ImageError(f"cannot remove {path}: still mounted: {', '.join(left)}")
    result = subprocess.run(["rm", "-rf", "--one-file-system", "--", path], check=False,
                            capture_output=True, text=True)
    if result.returncode != 0 or os.path.lexists(path):
        raise ImageError(f"could not remove {path}: {result.stderr.strip()}")


__all__ = ["Image", "Store", "mounts_under", "now_iso", "remove_tree", "write_meta"]
