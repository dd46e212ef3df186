"""Benchmark: workflows and long work, as whole ``sfrun`` processes.

* Repeat: ``sfConfig extends Repeat { repeat N; action extends DoNothing { time 0; } }``
  for N = 10,000, 100,000 and 1,000,000 (``--quick`` skips the million: minutes), each in
  a process of its own, once with ``sfrun --quiet`` (the engine alone) and once printing
  the state lines (four per iteration, read and dropped by this benchmark, as a terminal
  would take them). Time from launching the command to its exit, the cost per iteration
  (less the run of a 1-iteration Repeat: interpreter start, imports, parse), and peak RSS.
  The goal (issue 6): peak memory under 80 MB at any count, an iteration well under 1 ms.
* Parallel: ``sfConfig extends Parallel`` of N Scripts whose ``startScript`` is
  ``sleep 1`` (``autoTerminate true``), N = 1, 2, 4 and 8: time to exit. The goal: about
  1 s for N up to 2 × cores, once long work no longer holds the application's lock.
* Engine: ``bench_engine.py``'s whole-process figure for 1,000 plain components (median of
  ``--engine-runs``), which must not regress (0.80 s on 2026-11-24).

Peak RSS is the child's own ``VmHWM`` reported at its exit: ``wait4``'s ``ru_maxrss``
would include this benchmark's own size, inherited through fork and exec.

``--sfpy-path DIR`` runs the children against another source tree (put first on
``PYTHONPATH``), e.g. an export of an older commit, for before/after figures.

    python benchmarks/bench_workflow.py [--quick] [--only repeat,parallel,engine]
        [--repeat-sizes 10000,100000,1000000] [--parallel-sizes 1,2,4,8] [--sfpy-path DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import description_text, machine  # noqa: E402  (the sibling benchmark)

SFRUN_REPORTING_PEAK = (
    "import atexit, sys\n"
    "def peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'): sys.stderr.write(line)\n"
    "atexit.register(peak)\n"
    "from sfpy.cli.sfrun import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)

HEADER = (
    '#include "org/smartfrog/components.sf"\n'
    '#include "org/smartfrog/sfcore/workflow/components.sf"\n'
    '#include "org/smartfrog/services/shellscript/components.sf"\n'
)


def repeat_text(n: int) -> str:
    return HEADER + (
        f"sfConfig extends Repeat {{ repeat {n}; action extends DoNothing {{ time 0; }} }}\n"
    )


def parallel_text(n: int, command: str = "sleep 1") -> str:
    children = "\n".join(
        f'  s{i} extends Script {{ autoTerminate true; startScript "{command}"; }}'
        for i in range(n)
    )
    return HEADER + f"sfConfig extends Parallel {{\n{children}\n}}\n"


def run_sfrun(
    path: Path, options: list[str], environment: dict[str, str]
) -> dict[str, float]:
    """One whole sfrun process: seconds to exit, peak RSS in MB, state lines it printed."""
    command = [sys.executable, "-c", SFRUN_REPORTING_PEAK, *options, str(path)]
    began = time.perf_counter()
    child = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=environment
    )
    assert child.stderr is not None
    peak_kb = 0.0
    lines = 0
    tail: list[str] = []
    for line in child.stderr:
        lines += 1
        if line.startswith("VmHWM:"):
            peak_kb = float(line.split()[1])
        elif line.startswith("sfrun:"):
            tail.append(line.strip())
    status = child.wait()
    ended = time.perf_counter()
    if status != 0:
        raise SystemExit(f"sfrun {path.name} exited {status}: {' / '.join(tail)}")
    return {"total": ended - began, "rss_mb": peak_kb / 1024, "lines": lines}


def bench_repeat(
    sizes: list[int], folder: Path, environment: dict[str, str]
) -> None:
    print("Repeat of N empty actions (DoNothing { time 0; }): whole sfrun process")
    print(f"{'N':>9} {'output':>11} {'to exit':>9} {'per iteration':>14} {'peak RSS':>9}")
    for quiet in (True, False):
        options = ["--quiet"] if quiet else []
        label = "quiet" if quiet else "state lines"
        one = folder / "repeat1.sf"
        one.write_text(repeat_text(1), encoding="utf-8")
        base = min(run_sfrun(one, options, environment)["total"] for _ in range(3))
        for n in sizes:
            path = folder / f"repeat{n}.sf"
            path.write_text(repeat_text(n), encoding="utf-8")
            result = run_sfrun(path, options, environment)
            per = (result["total"] - base) / max(n - 1, 1)
            print(
                f"{n:>9,} {label:>11} {result['total']:>8.2f}s {per * 1e6:>11.0f} µs "
                f"{result['rss_mb']:>7.0f}MB",
                flush=True,
            )
        print(f"{'':>9} {label:>11} (a 1-iteration Repeat takes {base:.2f}s)")


def bench_parallel(
    sizes: list[int], folder: Path, environment: dict[str, str]
) -> None:
    print()
    print('Parallel of N Scripts, startScript "sleep 1": whole sfrun process')
    zero = folder / "parallel-sleep0.sf"
    zero.write_text(parallel_text(1, "sleep 0"), encoding="utf-8")
    base = min(run_sfrun(zero, ["--quiet"], environment)["total"] for _ in range(3))
    print(f"{'N':>4} {'to exit':>9} {'less startup':>13} {'peak RSS':>9}")
    for n in sizes:
        path = folder / f"parallel{n}.sf"
        path.write_text(parallel_text(n), encoding="utf-8")
        result = run_sfrun(path, ["--quiet"], environment)
        print(
            f"{n:>4} {result['total']:>8.2f}s {result['total'] - base:>12.2f}s "
            f"{result['rss_mb']:>7.0f}MB",
            flush=True,
        )
    print(f"     (startup: one Script running sleep 0 takes {base:.2f}s)")


def bench_engine(runs: int, folder: Path, environment: dict[str, str]) -> None:
    print()
    print("Engine: 1,000 plain components, sfrun --terminate-after 0 (bench_engine.py's figure)")
    path = folder / "prims1000.sf"
    path.write_text(description_text(1000), encoding="utf-8")
    results = [run_sfrun(path, ["--terminate-after", "0"], environment) for _ in range(runs)]
    totals = [r["total"] for r in results]
    print(
        f"to exit: median {statistics.median(totals):.2f}s (min {min(totals):.2f}s, "
        f"max {max(totals):.2f}s, {runs} runs); peak RSS {max(r['rss_mb'] for r in results):.0f}MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="skip the 1,000,000-iteration Repeat")
    parser.add_argument("--only", default="repeat,parallel,engine")
    parser.add_argument("--repeat-sizes", default="10000,100000,1000000")
    parser.add_argument("--parallel-sizes", default="1,2,4,8")
    parser.add_argument("--engine-runs", type=int, default=5)
    parser.add_argument("--sfpy-path", help="run the children against this source tree")
    args = parser.parse_args()
    parts = {part for part in args.only.split(",") if part}
    repeat_sizes = [int(s) for s in args.repeat_sizes.split(",") if s]
    if args.quick:
        repeat_sizes = [n for n in repeat_sizes if n < 1_000_000]
    environment = dict(os.environ)
    if args.sfpy_path:
        tree = str(Path(args.sfpy_path).resolve())
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (tree, environment.get("PYTHONPATH", "")) if p
        )

    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d')}")
    if args.sfpy_path:
        print(f"sfpy from: {args.sfpy_path}")
    print()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if "repeat" in parts:
            bench_repeat(repeat_sizes, folder, environment)
        if "parallel" in parts:
            bench_parallel(
                [int(s) for s in args.parallel_sizes.split(",") if s], folder, environment
            )
        if "engine" in parts:
            bench_engine(args.engine_runs, folder, environment)


if __name__ == "__main__":
    main()
