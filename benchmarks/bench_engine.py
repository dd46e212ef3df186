"""Benchmark: the component engine with N plain Prim children, and the cost of liveness.

For N = 10, 100, 1,000, 10,000 children ``P extends Prim { sfClass
"org.smartfrog.sfcore.prim.PrimImpl"; }`` under one Compound:

* whole process: ``sfrun --terminate-after 0`` on a generated description; time from
  launching the command to the root's ``STARTED`` line (parse, resolve, build, deploy all,
  start all), to its exit (everything terminated), and its peak RSS;
* in process: the same tree built as a resolved description by hand (no parsing), deployed
  with ``Process.deploy`` and terminated; times, and the engine's peak allocation
  (tracemalloc, a separate run);
* liveness: 1,000 components pinged every second; CPU time of the whole process over
  ``--liveness-seconds`` (default 10) with liveness on, minus the same with it off, as a
  percentage of one core.

Goal (issue 3): 1,000 components up and down in under 1 s; liveness under 5 % of a core.

    python benchmarks/bench_engine.py [--sizes 10,100,1000,10000] [--liveness-seconds 10]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from sfpy.engine import Process, TerminationRecord
from sfpy.language.model import ComponentDescription

PRIM = "org.smartfrog.sfcore.prim.PrimImpl"
COMPOUND = "org.smartfrog.sfcore.compound.CompoundImpl"


SFRUN_REPORTING_PEAK = (
    "import atexit, sys\n"
    "def peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'): sys.stderr.write(line)\n"
    "atexit.register(peak)\n"
    "from sfpy.cli.sfrun import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def description_text(n: int) -> str:
    lines = [
        '#include "org/smartfrog/components.sf"',
        f'P extends Prim {{ sfClass "{PRIM}"; }}',
        "sfConfig extends Compound {",
        *(f"  p{i} extends P;" for i in range(n)),
        "}",
    ]
    return "\n".join(lines) + "\n"


def description(n: int, **root_attributes: object) -> ComponentDescription:
    root = ComponentDescription()
    root.put("sfClass", COMPOUND)
    for key, value in root_attributes.items():
        root.put(key, value)
    for i in range(n):
        child = ComponentDescription()
        child.put("sfClass", PRIM)
        root.put(f"p{i}", child)
    return root


def whole_process(n: int, folder: Path) -> dict[str, float]:
    path = folder / f"prims{n}.sf"
    path.write_text(description_text(n), encoding="utf-8")
    # The child reports its own VmHWM (peak RSS of its image) at exit: wait4's ru_maxrss would
    # include this benchmark process's size, inherited through fork and exec.
    command = [sys.executable, "-c", SFRUN_REPORTING_PEAK, "--terminate-after", "0", str(path)]
    began = time.perf_counter()
    child = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    started_at = None
    assert child.stderr is not None
    peak_kb = 0.0
    for line in child.stderr:
        if started_at is None and line.startswith("sfConfig  STARTED"):
            started_at = time.perf_counter()
        elif line.startswith("VmHWM:"):
            peak_kb = float(line.split()[1])
    status = child.wait()
    ended = time.perf_counter()
    if status != 0:
        raise SystemExit(f"sfrun failed for N={n}")
    return {"up": (started_at or ended) - began, "total": ended - began, "rss_mb": peak_kb / 1024}


def in_process(n: int) -> dict[str, float]:
    tree = description(n, sfLivenessDelay=0)
    process = Process("bench")
    gc.collect()
    began = time.perf_counter()
    app = process.deploy(tree)
    up = time.perf_counter()
    app.sf_terminate(TerminationRecord.normal("bench"))
    app.wait_terminated()
    down = time.perf_counter()
    process.shutdown()
    # peak allocation of the engine part, measured in a separate run (tracemalloc is slow)
    tree = description(n, sfLivenessDelay=0)
    process = Process("bench-memory")
    gc.collect()
    tracemalloc.start()
    app = process.deploy(tree)
    app.sf_terminate(TerminationRecord.normal("bench"))
    app.wait_terminated()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    process.shutdown()
    return {"up": up - began, "down": down - up, "peak_mb": peak / 2**20}


def liveness(n: int, seconds: float) -> dict[str, float]:
    def cpu_over(delay: float) -> float:
        process = Process("bench-liveness")
        app = process.deploy(description(n, sfLivenessDelay=delay))
        time.sleep(0.5)  # let the first rounds settle
        cpu = time.process_time()
        time.sleep(seconds)
        used = time.process_time() - cpu
        app.sf_terminate(TerminationRecord.normal("bench"))
        app.wait_terminated()
        process.shutdown()
        return used

    off = cpu_over(0)
    on = cpu_over(1)
    return {"off_s": off, "on_s": on, "percent": max(on - off, 0.0) / seconds * 100}


def machine() -> str:
    return (
        f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
        f"{platform.machine()}, Linux {platform.release()}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--liveness-components", type=int, default=1000)
    parser.add_argument("--liveness-seconds", type=float, default=10.0)
    parser.add_argument("--skip-whole-process", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d')}")
    print(
        f"peak RSS of this benchmark process so far: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    print()
    print("in process (resolved description built by hand; Process.deploy, then terminate)")
    print(f"{'N':>7} {'deploy+start':>13} {'terminate':>10} {'peak alloc':>11}")
    in_process(10)  # warm up (imports, first allocations)
    for n in sizes:
        result = in_process(n)
        print(f"{n:>7} {result['up']:>12.3f}s {result['down']:>9.3f}s {result['peak_mb']:>9.1f}MB")

    if not args.skip_whole_process:
        print()
        print(
            "whole process: sfrun --terminate-after 0 FILE (parse, resolve, deploy, start, terminate)"
        )
        print(f"{'N':>7} {'to started':>11} {'to exit':>9} {'peak RSS':>9}")
        with tempfile.TemporaryDirectory() as folder:
            for n in sizes:
                result = whole_process(n, Path(folder))
                print(
                    f"{n:>7} {result['up']:>10.2f}s {result['total']:>8.2f}s {result['rss_mb']:>7.0f}MB"
                )

    print()
    n, seconds = args.liveness_components, args.liveness_seconds
    result = liveness(n, seconds)
    print(
        f"liveness: {n} components pinged every 1 s, CPU over {seconds:g} s: "
        f"off {result['off_s']:.3f}s, on {result['on_s']:.3f}s -> "
        f"{result['percent']:.2f} % of one core"
    )


if __name__ == "__main__":
    main()
