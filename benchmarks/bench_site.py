"""Benchmark: the test site (descriptions/examples/testsite/) from ``sfstart`` to every guest
ready, three ways.

The site boots the boot kit (``site-kit.sf``, ``site-sequential-kit.sf``): what is measured
is sfpy's part, not a Debian image's build or boot (the main job's own figures, with the
Debian image, are in docs/benchmarks.md).

* **parallel** — ``site-kit.sf`` as the README's main job runs it with ``--image kit``: two
  daemons (vmhost1 on 127.0.0.2, vmhost2 on 127.0.0.3), ``sfstart vmhost1 NAME site-kit.sf``; the nodes' storage and
  QEMU guests start side by side on both hosts, and ``sfstart`` returns when every guest's
  console shows its hostname and address. The figure is the wall time of the ``sfstart``
  command, from its launch (interpreter start, resolving the description, TLS or not) to its
  exit.
* **sequential** — ``site-sequential-kit.sf``: the same nodes under a Compound, each started when
  the one before is ready (what the site would cost without step 3a's long work).
* **plain** — the same guests booted by a plain shell script that calls ``qemu-img`` and
  ``qemu-system-x86_64`` itself, with exactly the QEMU command lines the parallel run's
  domains wrote (``<domain>.args``; paths moved to the script's own folder), the same kernel,
  initramfs and copy-on-write overlays on the same root filesystem image, and that polls the
  consoles for the same lines (every 0.1 s). Its figure: launch of the script to every guest
  ready.

sfpy's overhead is parallel against plain (goal: under 5 %). Rounds alternate the three ways
(``--rounds``, default 3) and the medians are printed, with each round's figures, so a busy
machine shows as spread rather than as a wrong median.

The daemons run with ``--insecure`` unless ``--tls`` (certificates made on the spot): the
connection's cost is part of sfstart's figure either way. They use 127.0.0.2 and 127.0.0.3,
port 3800: where other daemons may use those, run the benchmark in a network namespace of its
own::

    unshare -n sh -c 'ip link set lo up && .venv/bin/python benchmarks/bench_site.py'

    python benchmarks/bench_site.py [--rounds N] [--kit DIR] [--tls] [--only parallel,plain]

The boot kit comes from ``sfpy-bootkit`` (built once per machine) unless ``--kit DIR``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTSITE = REPO / "descriptions" / "examples" / "testsite"
BIN = Path(sys.executable).parent
HOSTS = {"vmhost1": "127.0.0.2", "vmhost2": "127.0.0.3"}
#: The guests of site.sf: domain name → (hostname, ip).
GUESTS = {
    "ce": ("ce.testsite", "10.0.2.11"),
    "bdii": ("bdii.testsite", "10.0.2.13"),
    "wn": ("wn.testsite", "10.0.2.12"),
}
WAYS = ("parallel", "sequential", "plain")
READY_BOUND = 600  # seconds any one way may take before the benchmark gives up

PLAIN_SCRIPT = r"""#!/usr/bin/env bash
# Boot the test site's guests with qemu alone: one copy-on-write overlay each on the boot
# kit's root filesystem image, QEMU started in the background (-daemonize), then wait until
# every console shows "sfpy-guest hostname=<hostname> ip=<ip>".
# Usage: plain-site.sh DIR BASE_IMAGE; DIR/<name>.args holds each guest's QEMU arguments
# (one per line), DIR/<name>.ready the line its console must show.
set -euo pipefail
dir=$1 base=$2
for args in "$dir"/*.args; do
    name=$(basename "$args" .args)
    qemu-img create -q -f qcow2 -F raw -b "$base" "$dir/$name.qcow2"
    mapfile -t argv <"$args"
    "${argv[@]}" -daemonize
done
for ready in "$dir"/*.ready; do
    name=$(basename "$ready" .ready)
    until grep -aqF -f "$ready" "$dir/$name.console.log" 2>/dev/null; do sleep 0.1; done
done
"""


# -- the daemons ------------------------------------------------------------------------------
class Daemons:
    """Two sfdaemons with the test site's host-name map, for the whole benchmark."""

    def __init__(self, work: Path, tls: bool) -> None:
        self.work = work
        self.tls = tls
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env = dict(os.environ)
        for name in ("SFPY_CERT", "SFPY_KEY", "SFPY_CA", "SFPY_INSECURE", "PYRO_SERIALIZER"):
            self.env.pop(name, None)

    def start(self) -> None:
        hosts = self.work / "hosts.yaml"
        hosts.write_text("hosts:\n" + "".join(f'  {name}: "{address}"\n'
                                               for name, address in HOSTS.items()))
        self.env["SFPY_CLIENT_CONFIG"] = str(hosts)
        security: dict[str, list[str]] = {}
        if self.tls:
            ca = self.work / "ca"
            self._tool("sfpy-ca", "init", "--dir", str(ca), "--org", "sfpy bench site")
            for name, address in HOSTS.items():
                self._tool("sfpy-ca", "issue", "daemon", name, "--ip", address, "--dir", str(ca))
                security[name] = ["--cert", f"{ca}/{name}.pem", "--key", f"{ca}/{name}.key",
                                  "--ca", f"{ca}/ca.pem"]
            self._tool("sfpy-ca", "issue", "user", "bench", "--dir", str(ca))
            self.env.update(SFPY_CERT=f"{ca}/bench.pem", SFPY_KEY=f"{ca}/bench.key",
                            SFPY_CA=f"{ca}/ca.pem")
        else:
            security = {name: ["--insecure"] for name in HOSTS}
            self.env["SFPY_INSECURE"] = "1"
        for name, address in HOSTS.items():
            log = self.work / f"daemon-{name}.log"
            with log.open("wb") as out:
                self.processes[name] = subprocess.Popen(
                    [str(BIN / "sfdaemon"), "--config", str(hosts), "--host", address,
                     "--state-dir", str(self.work / f"state-{name}"), *security[name]],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env=self.env, start_new_session=True)
            deadline = time.monotonic() + 60
            while b"sfdaemon: ready " not in log.read_bytes():
                if self.processes[name].poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"sfdaemon on {address} did not start:\n"
                                     + log.read_text(errors="replace")[-2000:])
                time.sleep(0.05)

    def _tool(self, *argv: str) -> None:
        subprocess.run([str(BIN / argv[0]), *argv[1:]], check=True, env=self.env,
                       stdout=subprocess.DEVNULL)

    def command(self, *argv: str, timeout: float = READY_BOUND) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                              env=self.env, timeout=timeout, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                self.command("sfstopdaemon", name, timeout=180)
            try:
                process.wait(timeout=180)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


# -- one round of each way ------------------------------------------------------------------
def run_site(daemons: Daemons, site: Path, name: str, site_dir: Path,
             args_out: Path | None) -> tuple[float, dict[str, float]]:
    """sfstart ``site`` as application ``name``: sfstart's wall time, and when each domain
    was STARTED (ready) as sfstart printed it. The domains' QEMU command lines are copied to
    ``args_out`` (when given) while the guests run. Then sfterminate."""
    started = time.perf_counter()
    result = daemons.command("sfstart", "vmhost1", name, str(site))
    seconds = time.perf_counter() - started
    try:
        if result.returncode != 0:
            raise SystemExit(f"sfstart {site.name} failed ({result.returncode}):\n"
                             f"{result.stdout}{result.stderr}")
        # a local node's guest is ready when its domain is STARTED; a node placed on the
        # other host is followed as a whole (its domain's lines stay there)
        domains: dict[str, float] = {}
        nodes: dict[str, float] = {}
        for line in (result.stdout + result.stderr).splitlines():
            match = re.match(rf"{re.escape(name)}:(\w+)(:domain)?\s+STARTED\s+([0-9.]+)s", line)
            if match:
                (domains if match.group(2) else nodes)[match.group(1)] = float(match.group(3))
        ready = {guest: domains.get(guest, nodes.get(guest, float("nan"))) for guest in GUESTS}
        if args_out is not None:
            for guest in GUESTS:
                source = site_dir / "domains" / f"{guest}.args"
                args_out.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, args_out / f"{guest}.args")
    finally:
        done = daemons.command("sfterminate", "vmhost1", name)
        if done.returncode != 0:
            print(f"sfterminate {name}: exit {done.returncode}\n{done.stdout}{done.stderr}",
                  file=sys.stderr)
    return seconds, ready


def read_args(path: Path) -> list[str]:
    """A domain's QEMU command as written in ``<domain>.args``: a JSON list, one argument a
    line, or one shell-quoted line."""
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return [str(item) for item in json.loads(text)]
    lines = text.splitlines()
    return lines if len(lines) > 1 else shlex.split(text)


def plain_arguments(args: list[str], site_dir: Path, plain_dir: Path, guest: str) -> list[str]:
    """The sfpy run's QEMU arguments for the plain script: files in ``plain_dir`` instead of
    the site's folders, the disk on the script's own overlay, no -daemonize (the script adds
    it)."""
    moved = []
    for arg in args:
        if arg == "-daemonize":
            continue
        arg = re.sub(r"file=[^,]*\.qcow2", f"file={plain_dir}/{guest}.qcow2", arg)
        for folder in ("domains", "images", "scratch"):
            arg = arg.replace(f"{site_dir}/{folder}/", f"{plain_dir}/")
        moved.append(arg)
    return moved


def run_plain(script: Path, plain_dir: Path, base_image: str) -> float:
    """The plain script's wall time; then every guest it started is stopped."""
    started = time.perf_counter()
    try:
        subprocess.run(["bash", str(script), str(plain_dir), base_image], check=True,
                       timeout=READY_BOUND)
        return time.perf_counter() - started
    finally:
        for pidfile in plain_dir.glob("*.pid"):
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in plain_dir.glob("*.pid")) and time.monotonic() < deadline:
            time.sleep(0.05)
        for leftover in plain_dir.iterdir():
            if leftover.suffix not in (".args", ".ready"):
                leftover.unlink()


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (ValueError, OSError):
        return False
    return True


# -- the whole benchmark ----------------------------------------------------------------------
def boot_kit(given: str | None) -> Path:
    if given:
        return Path(given).resolve()
    out = subprocess.run([str(BIN / "sfpy-bootkit"), "--json"], check=True, capture_output=True,
                         text=True).stdout
    return Path(json.loads(out)["directory"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kit", help="a boot kit's folder (default: sfpy-bootkit's)")
    parser.add_argument("--tls", action="store_true", help="daemons and commands with TLS")
    parser.add_argument("--only", default=",".join(WAYS), help="ways to run, of " + ",".join(WAYS))
    options = parser.parse_args(argv)
    ways = [way for way in options.only.split(",") if way]
    if unknown := set(ways) - set(WAYS):
        parser.error(f"unknown ways: {', '.join(sorted(unknown))}")
    kit = boot_kit(options.kit)
    # Every command is a fresh Python process: time it as installed (pip compiles the
    # modules), not recompiling sfpy's sources at each start (an editable install run with
    # PYTHONDONTWRITEBYTECODE=1 never keeps its .pyc files: 0.2-0.5 s per command here).
    compileall.compile_dir(str(REPO / "sfpy"), quiet=1)
    print(f"# {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; boot kit {kit.name}")

    work = Path(tempfile.mkdtemp(prefix="sfpy-bench-site."))
    site_dir = work / "site"
    for folder in ("images", "domains", "scratch", "saved"):
        (site_dir / folder).mkdir(parents=True)
    os.environ.update(SFPY_TESTSITE_DIR=str(site_dir), SFPY_TESTSITE_KIT=str(kit))
    os.environ.pop("SFPY_TESTSITE_SAVE", None)
    plain_dir = work / "plain"
    plain_dir.mkdir()
    script = work / "plain-site.sh"
    script.write_text(PLAIN_SCRIPT)
    daemons = Daemons(work, options.tls)
    figures: dict[str, list[float]] = {way: [] for way in ways}
    per_guest: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
    try:
        daemons.start()
        if "plain" in ways:  # the QEMU command lines the plain script reuses
            args_dir = work / "args"
            run_site(daemons, TESTSITE / "site-kit.sf", "warmup", site_dir, args_dir)
            for guest, (hostname, ip) in GUESTS.items():
                moved = plain_arguments(read_args(args_dir / f"{guest}.args"), site_dir,
                                        plain_dir, guest)
                (plain_dir / f"{guest}.args").write_text("\n".join(moved) + "\n")
                (plain_dir / f"{guest}.ready").write_text(
                    f"sfpy-guest hostname={hostname} ip={ip}\n")
        for round_ in range(1, options.rounds + 1):
            for way in ways:
                if way == "plain":
                    seconds = run_plain(script, plain_dir, str(kit / "rootfs.ext4"))
                    ready: dict[str, float] = {}
                else:
                    site = TESTSITE / ("site-kit.sf" if way == "parallel"
                                       else "site-sequential-kit.sf")
                    seconds, ready = run_site(daemons, site, f"{way}{round_}", site_dir, None)
                figures[way].append(seconds)
                per_guest[way].append(ready)
                detail = "  ".join(f"{g} {s:.1f}" for g, s in sorted(ready.items(),
                                                                   key=lambda i: i[1]))
                if ready:  # sfstart's clock starts when it follows the deployment
                    detail += f"   (before following: {seconds - max(ready.values()):.1f} s)"
                print(f"round {round_}  {way:<10} {seconds:6.2f} s   {detail}", flush=True)
    finally:
        daemons.stop()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"{'way':<12}{'median s':>10}{'min s':>8}{'max s':>8}")
    medians = {}
    for way in ways:
        values = figures[way]
        medians[way] = statistics.median(values)
        print(f"{way:<12}{medians[way]:>10.2f}{min(values):>8.2f}{max(values):>8.2f}")
    if "parallel" in medians and "sequential" in medians:
        print(f"parallel against sequential: {medians['sequential'] / medians['parallel']:.2f}x "
              "faster")
    if "parallel" in medians and "plain" in medians:
        overhead = medians["parallel"] - medians["plain"]
        print(f"sfpy's overhead against plain qemu: {overhead:+.2f} s "
              f"({100 * overhead / medians['plain']:+.1f} %, goal under 5 %)")
        # the two ways of one round ran side by side in time: their ratio sees the same load
        paired = statistics.median(100 * (a - b) / b for a, b in
                                   zip(figures["parallel"], figures["plain"], strict=True))
        print(f"the same, round by round (median of each round's ratio): {paired:+.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
