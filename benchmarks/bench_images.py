"""Benchmark: ``sfimage build`` against plain ``mmdebstrap`` with the same package set (kernel
included) and tar output, in the same run; the cache-hit latency of a whole ``sfimage build``
process; the size of the image against mmdebstrap's own tarball.

* **plain**: ``mmdebstrap --variant=minbase --include=<the packages sfimage installs> bookworm
  out.tar <mirror>``, with the apt cache hooks mmdebstrap's manual gives (so both sides read
  packages from the same warm local cache, and the mirror's speed is out of the figure);
* **sfimage**: ``sfimage build --group ssh-server --format tar`` into a fresh store each run
  (always a miss), same cache, same ``SOURCE_DATE_EPOCH``;
* runs alternate (sfimage, plain, sfimage, plain …) after one warm-up of each that fills the
  cache; the median of ``--repeat`` runs each is reported;
* cache hit: ``--hits`` runs of the whole ``sfimage build`` process for the image just built
  (Python start-up included).

Needs root, mmdebstrap and the Debian mirror.

    python benchmarks/bench_images.py [--repeat 2] [--hits 10] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from sfpy.images import builders
from sfpy.images.config import Config
from sfpy.images.request import make_params
from sfpy.images.store import remove_tree

EPOCH = "1700000000"
MIRROR = "http://deb.debian.org/debian"


def plain(packages: list[str], target: str, cache: str) -> float:
    argv = ["mmdebstrap", "--quiet", "--mode=root", "--variant=minbase",
            f"--include={','.join(packages)}", "--skip=essential/unlink",
            f"--setup-hook={builders.CACHE_IN_HOOK}", f"--customize-hook={builders.CACHE_OUT_HOOK}",
            "bookworm", target, MIRROR]
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, "SFPY_APT_CACHE": cache}
    began = time.monotonic()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - began


def sfimage(store: str, cache: str) -> tuple[float, dict]:
    argv = [sys.executable, "-m", "sfpy.cli.sfimage", "build", "--store", store, "--apt-cache",
            cache, "--group", "ssh-server", "--format", "tar", "--json", "--quiet"]
    began = time.monotonic()
    result = subprocess.run(argv, env={**os.environ, "SOURCE_DATE_EPOCH": EPOCH},
                            capture_output=True, text=True, check=True)
    return time.monotonic() - began, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--hits", type=int, default=10)
    parser.add_argument("--dir", default="/var/tmp")
    options = parser.parse_args()
    params = make_params(Config(group_directories=()), groups=["ssh-server"], format="tar")
    packages = params.all_packages()
    work = tempfile.mkdtemp(prefix="bench-images-", dir=options.dir)
    cache = os.path.join(work, "apt-cache")
    os.makedirs(cache)
    try:
        print(f"package set ({len(packages)} asked for, kernel included): {' '.join(packages)}")
        plain_tar = os.path.join(work, "plain.tar")
        print("warm-up (fills the package cache) ...", flush=True)
        plain(packages, plain_tar, cache)
        sfimage(os.path.join(work, "store-warm"), cache)
        ours, theirs = [], []
        image: dict = {}
        for run in range(options.repeat):
            seconds, image = sfimage(os.path.join(work, f"store-{run}"), cache)
            ours.append(seconds)
            os.unlink(plain_tar)
            theirs.append(plain(packages, plain_tar, cache))
            print(f"run {run + 1}: sfimage {ours[-1]:.1f} s, mmdebstrap {theirs[-1]:.1f} s",
                  flush=True)
        store = os.path.join(work, f"store-{options.repeat - 1}")
        hits = [sfimage(store, cache)[0] for _ in range(options.hits)]
        ours_m, theirs_m = statistics.median(ours), statistics.median(theirs)
        ours_size, plain_size = os.path.getsize(image["path"]), os.path.getsize(plain_tar)
        print(f"build, median of {options.repeat}: sfimage {ours_m:.1f} s, plain mmdebstrap "
              f"{theirs_m:.1f} s, ratio {ours_m / theirs_m:.2f}x (goal <= 1.10x)")
        print(f"cache hit (whole process), {options.hits} runs: median "
              f"{statistics.median(hits) * 1000:.0f} ms, min {min(hits) * 1000:.0f} ms, max "
              f"{max(hits) * 1000:.0f} ms")
        print(f"image size: sfimage tar {ours_size / 2**20:.1f} MiB, mmdebstrap tar "
              f"{plain_size / 2**20:.1f} MiB ({ours_size / plain_size:.3f}x); kernel and "
              f"initramfs beside it: "
              f"{(os.path.getsize(image['kernel']) + os.path.getsize(image['ramdisk'])) / 2**20:.1f}"
              " MiB")
    finally:
        remove_tree(work)  # unmounts leftovers first, never crosses filesystems


if __name__ == "__main__":
    main()
