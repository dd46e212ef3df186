"""Benchmark: putting a ~1 GiB root filesystem in place for a domain, the 2007 way against the
copy-on-write fast path, through the same operations the LoopbackStorageBackend runs
(:func:`sfpy.host.storage.loopback_put_in_place`, on a real LocalHost).

* **2007 way**: the base is a tarball of the root filesystem (about ``--content`` MiB of files,
  random so gzip cannot shrink it away); unpack it to a scratch directory, make the
  filesystem with ``mke2fs -d`` filling a sparse file;
* **fast path**: the base is an ext4 image of the same tree; a qcow2 overlay on it
  (``qemu-img create -b``);
* **fast path, grown**: the same overlay with a volume twice the image's size, its
  filesystem grown inside through a FUSE export (``qemu-storage-daemon``, ``e2fsck -f``,
  ``resize2fs``), where FUSE is there.

Both for the same tree, same run, the median of ``--repeat`` runs each; the volumes are
deleted after each run. Needs root, e2fsprogs and qemu-utils, and about 3x the content free
in ``--dir``.

    python benchmarks/bench_storage.py [--content 1024] [--repeat 3] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from sfpy.host import storage
from sfpy.host.hosts import LocalHost

MiB = 2**20


def make_tree(root: Path, content_mib: int) -> None:
    """A root-filesystem-like tree: many small files and a few big ones, ``content_mib`` MiB."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("bench\n")
    small = root / "usr" / "share"
    small.mkdir(parents=True)
    for number in range(2000):  # 2000 x 16 KiB = 31 MiB of small files
        (small / f"f{number:05d}").write_bytes(os.urandom(16 * 1024))
    big = root / "usr" / "lib"
    big.mkdir(parents=True)
    remaining = content_mib - 31
    number = 0
    while remaining > 0:
        chunk = min(64, remaining)
        (big / f"blob{number:03d}").write_bytes(os.urandom(chunk * MiB))
        remaining -= chunk
        number += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", type=int, default=1024, help="MiB of files in the tree")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default="/var/tmp")
    args = parser.parse_args()
    host = LocalHost(log=logging.getLogger("bench.storage"))
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="sfpy-bench-") as folder:
        work = Path(folder)
        tree, images, scratch = work / "tree", work / "images", work / "scratch"
        images.mkdir()
        scratch.mkdir()
        make_tree(tree, args.content)
        tarball = work / "base.tar.gz"
        began = time.perf_counter()
        with tarfile.open(tarball, "w:gz", compresslevel=1) as archive:
            archive.add(tree, arcname=".")
        print(f"tree: {args.content} MiB; tarball {tarball.stat().st_size / MiB:.0f} MiB "
              f"in {time.perf_counter() - began:.1f} s")
        size = (args.content * 3 // 2 + 256) * MiB
        golden = work / "golden.img"
        subprocess.run(["truncate", "-s", str(size), str(golden)], check=True)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(golden)],
                       check=True)
        common: dict[str, Any] = {"directory": str(images), "name": "xen-domain-bench", "size": size,
                  "swap": None, "scratch": str(scratch)}
        slow, fast, grown = [], [], []
        can_grow = storage.can_export_with_fuse(host)

        def once(base: Path, **options: Any) -> float:
            began = time.perf_counter()
            volumes = storage.loopback_put_in_place(host, base=str(base), **{**common, **options})
            took = time.perf_counter() - began
            storage.loopback_delete(host, volumes)
            return took

        for _ in range(args.repeat):
            slow.append(once(tarball))
            fast.append(once(golden, copy_on_write=True))
            if can_grow:
                grown.append(once(golden, copy_on_write=True, size=2 * size))
        host.close()
    slow_s, fast_s = statistics.median(slow), statistics.median(fast)
    print(f"2007 way (unpack + mke2fs -d): median {slow_s:.2f} s  {[f'{t:.2f}' for t in slow]}")
    print(f"qcow2 overlay:                 median {fast_s * 1000:.1f} ms  "
          f"{[f'{t * 1000:.1f}' for t in fast]} ms")
    print(f"speed-up: {slow_s / fast_s:.0f}x")
    if grown:
        grown_s = statistics.median(grown)
        print(f"qcow2 overlay grown to {2 * size // MiB} MiB: median {grown_s * 1000:.1f} ms  "
              f"{[f'{t * 1000:.1f}' for t in grown]} ms; speed-up {slow_s / grown_s:.0f}x")
    else:
        print("qcow2 overlay grown: not measured (no /dev/fuse or qemu-storage-daemon)")


if __name__ == "__main__":
    main()
