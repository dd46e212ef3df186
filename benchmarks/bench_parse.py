"""Benchmark: sfparse on a 16,000-line description against PyYAML's pure-Python SafeLoader.

Generates a description of 2,000 nodes (8 lines each: a node extending a shared template,
host/port attributes, a string built with ``++``, a ``LAZY PARENT:`` link to the previous
node, a Long, a Double, a boolean, and a nested description with a link and a ``[ ]``
vector) and the same data as YAML, then times whole processes, alternating the two, and
prints the medians and the ratio sfparse / YAML (the goal is <= 1.0).

    python benchmarks/bench_parse.py [--nodes 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def description(nodes: int) -> str:
    lines = [
        "Node extends {",
        '    sfClass "org.smartfrog.sfcore.prim.PrimImpl";',
        '    kind "vm";',
        "}",
        "sfConfig extends {",
    ]
    for i in range(nodes):
        previous = f"n{i - 1:05d}" if i else f"n{nodes - 1:05d}"
        lines += [
            f"  n{i:05d} extends Node {{",
            f'    host "host{i}.example.org"; port {4000 + i};',
            '    url ("http://" ++ host ++ ":" ++ port);',
            f"    previous LAZY PARENT:{previous};",
            f"    memory {1024 + i}L; load 0.{i % 100:02d}D;",
            f"    enabled {'true' if i % 2 else 'false'};",
            "    disk extends { path ATTRIB host; parts [1, 2, port]; }",
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def yaml_document(nodes: int) -> str:
    lines = ["template:", "  sfClass: org.smartfrog.sfcore.prim.PrimImpl", "  kind: vm", "sfConfig:"]
    for i in range(nodes):
        previous = f"n{i - 1:05d}" if i else f"n{nodes - 1:05d}"
        lines += [
            f"  n{i:05d}:",
            f"    host: host{i}.example.org",
            f"    port: {4000 + i}",
            f"    url: http://host{i}.example.org:{4000 + i}",
            f"    previous: {previous}",
            f"    memory: {1024 + i}",
            f"    load: 0.{i % 100:02d}",
            f"    disk: {{path: host{i}.example.org, parts: [1, 2, {4000 + i}], enabled: {'true' if i % 2 else 'false'}}}",
        ]
    return "\n".join(lines) + "\n"


YAML_LOADER = (
    "import sys, yaml\n"
    "with open(sys.argv[1]) as f:\n"
    "    data = yaml.load(f, Loader=yaml.SafeLoader)\n"
    "assert yaml.SafeLoader.__module__ == 'yaml.loader'\n"
    "print(len(data['sfConfig']))\n"
)
# For scale only: libyaml's C loader, where PyYAML was built with it.
YAML_C_LOADER = (
    "import sys, yaml\n"
    "with open(sys.argv[1]) as f:\n"
    "    data = yaml.load(f, Loader=yaml.CSafeLoader)\n"
    "print(len(data['sfConfig']))\n"
)


def time_process(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed ({result.returncode}): {result.stderr.decode()[-2000:]}")
    return elapsed


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--nodes", type=int, default=2000)
    options.add_argument("--runs", type=int, default=5)
    args = options.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sf_file = Path(folder) / "bench.sf"
        yaml_file = Path(folder) / "bench.yaml"
        sf_file.write_text(description(args.nodes))
        yaml_file.write_text(yaml_document(args.nodes))
        sf_lines = sf_file.read_text().count("\n")
        yaml_lines = yaml_file.read_text().count("\n")
        sfparse = [sys.executable, "-m", "sfpy.cli.sfparse", str(sf_file)]
        loader = [sys.executable, "-c", YAML_LOADER, str(yaml_file)]
        time_process(sfparse)  # warm-up (also checks that it resolves)
        time_process(loader)
        sf_times, yaml_times, ratios = [], [], []
        for _ in range(args.runs):
            a = time_process(sfparse)
            b = time_process(loader)
            sf_times.append(a)
            yaml_times.append(b)
            ratios.append(a / b)
        try:
            import yaml

            has_c_loader = hasattr(yaml, "CSafeLoader")
        except ImportError:
            has_c_loader = False
        c_times = [time_process([sys.executable, "-c", YAML_C_LOADER, str(yaml_file)])
                   for _ in range(args.runs)] if has_c_loader else []
    print(f"description: {sf_lines} lines ({args.nodes} nodes); YAML: {yaml_lines} lines")
    print(f"sfparse (whole process)          median {statistics.median(sf_times):.3f} s  "
          f"min {min(sf_times):.3f}  max {max(sf_times):.3f}")
    print(f"PyYAML SafeLoader (pure Python)  median {statistics.median(yaml_times):.3f} s  "
          f"min {min(yaml_times):.3f}  max {max(yaml_times):.3f}")
    if c_times:
        print(f"PyYAML CSafeLoader (libyaml)     median {statistics.median(c_times):.3f} s  (for scale)")
    print(f"ratio sfparse / SafeLoader       median {statistics.median(ratios):.2f} (goal <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
