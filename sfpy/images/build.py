"""Building an image into the store: the cache, the lock, the builder, the filesystem, the
atomic publish.

:func:`build_image` answers from the store when the key is there (without the lock: a
published image is complete); otherwise it takes the key's lock (a second build of the same
key waits, then finds the first's image), builds in a private directory of the store, makes
the ext4 filesystem for ``img``/``qcow2`` (``mke2fs -d`` from the tree: no mount, no loop
device), writes ``meta.json`` and renames the directory into place. Any failure (a package
that does not exist, Ctrl-C, SIGTERM) removes the private directory, mounts first: nothing is
left in the store.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sfpy.images import builders as builder_registry
from sfpy.images.builders import Builder, BuildJob
from sfpy.images.errors import ImageError
from sfpy.images.guest import ROOT_LABEL
from sfpy.images.params import ImageParams
from sfpy.images.progress import Progress, human
from sfpy.images.store import Image, Store, now_iso, remove_tree, write_meta

#: Room added to the tree's size for an ext4 image with no --size (journal, metadata, slack).
_AUTO_SLACK = 256 * 1024 * 1024
_AUTO_FACTOR = 1.25


def lookup(store: Store, params: ImageParams, builder: Builder) -> tuple[str, Image | None]:
    """(key, the image in the store or None): the cache-hit path, cheap."""
    key = params.key(builder.version)
    image = store.find(key)
    if image is not None:
        store.touch(image)
    return key, image


def guest_spec(params: ImageParams, out: str) -> dict[str, Any]:
    return {"hostname": params.hostname, "rootPasswordHash": params.root_password_hash,
            "sshKeys": list(params.ssh_keys),
            "files": [{"source": f.source, "dest": f.dest, "mode": f"{f.mode:04o}"}
                      for f in params.files],
            "out": out, "kernel": bool(params.distribution.kernel_package)}


def build_image(store: Store, params: ImageParams, builder: Builder, *,
                apt_cache: str | None = None, progress: Progress | None = None,
                source_date_epoch: str | None = None, quota: int | None = None,
                log: logging.Logger | None = None,
                stop: Callable[[float], bool] | None = None) -> tuple[Image, bool]:
    """The image of ``params``: (image, True) when built now, (image, False) from the store."""
    key, image = lookup(store, params, builder)
    if image is not None:
        return image, False
    if params.distribution.name not in builder.distributions:
        raise ImageError(f"builder {builder.name} cannot build {params.distribution.name} "
                         f"(it builds {', '.join(builder.distributions)})")
    missing = builder.missing()
    if missing:
        raise ImageError(f"cannot build: {missing}")
    progress = progress or Progress(None, quiet=True)

    def waiting(holder: str) -> None:
        progress.note(f"another build of image {key[:12]} is running (pid {holder or '?'}): "
                      "waiting for it")

    with store.lock(key, on_wait=waiting, stop=stop):
        image = store.find(key)
        if image is not None:  # built by the one we waited for
            store.touch(image)
            progress.note(f"image {key[:12]} was built meanwhile: using it")
            return image, False
        work = store.new_work_directory(key)
        try:
            image = _build(store, key, work, params, builder, apt_cache, progress,
                           source_date_epoch, log)
        except BaseException:
            progress.note("build failed: removing what it made")
            try:
                remove_tree(work)
            except ImageError as error:  # say so, but report what made the build fail
                progress.note(str(error))
            raise
    if quota is not None:
        removed = store.gc(unused_for=None, quota=quota, keep=(key,))
        for entry in removed:
            progress.note(f"quota: removed image {entry['key'][:12]} ({human(entry['bytes'])})")
    return image, True


def _build(store: Store, key: str, work: str, params: ImageParams, builder: Builder,
           apt_cache: str | None, progress: Progress, source_date_epoch: str | None,
           log: logging.Logger | None) -> Image:
    from sfpy.host.hosts import LocalHost
    from sfpy.host.runner import ShellRunner

    logger = logging.getLogger(f"sfpy.images.build.{key[:12]}")
    logger.propagate = log is not None
    logger.setLevel(logging.INFO)
    progress.open_log(os.path.join(work, "build.log"))  # every line, kept with the image
    logger.addHandler(progress)
    host = LocalHost(ShellRunner(logger, parallel=False))

    def run(argv: Sequence[str], *, label: str, env: Mapping[str, str] | None = None) -> Any:
        return host.run(list(argv), label=label, env=env)

    fmt = params.format
    tree = fmt in ("img", "qcow2")
    target = os.path.join(work, "root") if tree else os.path.join(work, f"image.{fmt}")
    job = BuildJob(params=params, work=work, target=target, out=work,
                   spec=guest_spec(params, work), run=run, tree=tree, apt_cache=apt_cache,
                   source_date_epoch=source_date_epoch)
    try:
        progress.note(f"building image {key[:12]} with {builder.name}: {params.distribution.suite}"
                      f" {params.distribution.variant}, {len(params.all_packages())} packages "
                      f"asked for, format {fmt}")
        builder.build(job)
        spec_file = os.path.join(work, "guest-spec.json")
        if os.path.exists(spec_file):
            os.unlink(spec_file)
        placed_file = os.path.join(work, "placed.json")
        if not os.path.exists(placed_file):
            raise ImageError(f"builder {builder.name} did not run the guest customization")
        with open(placed_file, encoding="utf-8") as handle:
            placed = json.load(handle)
        os.unlink(placed_file)
        size = None
        if tree:
            progress.set_phase("making the ext4 filesystem (mke2fs -d)")
            size = _make_filesystem(run, key, target, os.path.join(work, "image.img"),
                                    params.size, source_date_epoch)
            remove_tree(target)
            if fmt == "qcow2":
                progress.set_phase("converting to qcow2")
                run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2",
                     os.path.join(work, "image.img"), os.path.join(work, "image.qcow2")],
                    label="qemu-img").check()
                os.unlink(os.path.join(work, "image.img"))
        image_file = os.path.join(work, f"image.{fmt}")
        meta = {
            "key": key, "kind": "built", "format": fmt, "image": f"image.{fmt}",
            "created": now_iso(), "builder": {"name": builder.name, "version": builder.version,
                                              "tool": job.notes.get("toolVersion")},
            "params": params.canonical(builder.version),
            "kernel": "kernel" if placed.get("kernel") else None,
            "ramdisk": "ramdisk" if placed.get("ramdisk") else None,
            "kernelVersion": placed.get("kernelVersion"),
            "imageBytes": os.path.getsize(image_file),
            "filesystemBytes": size, "rootLabel": ROOT_LABEL if tree else None,
            "buildSeconds": round(_elapsed(progress), 1),
        }
        write_meta(work, meta)
        progress.set_phase(f"built: {human(meta['imageBytes'])} ({fmt})")
    finally:
        logger.removeHandler(progress)
        host.close()
        progress.close_log()
    return store.publish(work, key)


def _elapsed(progress: Progress) -> float:
    import time

    return time.monotonic() - progress.began


def _make_filesystem(run: Any, key: str, tree: str, image: str, size: int | None,
                     epoch: str | None) -> int:
    """An ext4 filesystem labelled ``sfpy-root`` holding ``tree``, no partition table (Xen
    attaches it as ``xvda1``, QEMU as ``vda``). UUID and hash seed come from the key."""
    if size is None:
        used = run(["du", "-s", "--block-size=1", "-x", tree], label="du").check()
        tree_bytes = int(used.stdout.split()[0])
        size = int(tree_bytes * _AUTO_FACTOR) + _AUTO_SLACK
    size = -(-size // (1024 * 1024)) * 1024 * 1024
    fs_uuid = str(uuid.UUID(key[:32]))
    env = {"E2FSPROGS_FAKE_TIME": epoch} if epoch else {}
    run(["truncate", "-s", str(size), image], label="truncate").check()
    result = run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", ROOT_LABEL, "-U", fs_uuid,
                  "-E", f"hash_seed={fs_uuid},root_owner=0:0", "-d", tree, image],
                 label="mke2fs", env=env)
    if not result.ok:
        raise ImageError(f"mke2fs could not make the image ({human(size)}): "
                         f"{result.describe()} (is --size too small?)")
    return size


def builder_for(name: str) -> Builder:
    return builder_registry.get(name)


__all__ = ["build_image", "builder_for", "guest_spec", "lookup"]
