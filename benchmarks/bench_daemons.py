"""Benchmark: daemons against sfrun, and bare Pyro5 round trips.

* ``sfstart`` of N Prim components (one Compound, N children ``P extends Prim { sfClass
  "org.smartfrog.sfcore.prim.PrimImpl"; }``) until it runs, then ``sfterminate`` until it is
  gone, each timed from launching the command to its exit; the number of remote calls of the
  ``sfstart`` (``--json`` reports them);
* ``sfrun --terminate-after 0 -q`` of the same file (up and down in one process);
* bare Pyro5 round trips: ``ping()`` on one open proxy, median of 1,000;
* the daemon's time to its ready line and its idle RSS (``sfdiagnostics``);
* ``--hosts 3``: the same N Prims spread over three daemons (127.0.0.2, .3, .4; a third
  under the root on .2, a Compound placed with ``sfProcessHost`` on each of the others):
  ``sfstart`` until all run plus ``sfterminate`` until all are gone, against ``sfrun`` of
  the same tree without the placements; the remote calls of ``sfstart`` and those the root
  daemon made to the others (``sfdiagnostics``' ``remote_calls``).

``--tls`` runs the same with TLS: a site CA, the daemon's and a user's certificates are made
with ``sfpy-ca`` in the work folder; the bare round trip then includes a new TLS connection
(handshake) as well, median of 100.

Needs 127.0.0.2:3800 (and .3, .4 with ``--hosts 3``) free.

    python benchmarks/bench_daemons.py [--components 1000] [--repeat 3] [--tls | --hosts 1|3]
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.2"


SECURITY: dict[str, str] = {"SFPY_INSECURE": "1"}


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("SFPY_")}
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), e.get("PYTHONPATH", "")])
    e.update(SECURITY)
    return e


def make_certificates(work: Path) -> list[str]:
    """A site CA, the daemon's certificate (xen02, 127.0.0.2) and alice's; the daemon's
    options. Clients find alice's through SFPY_CERT/SFPY_KEY/SFPY_CA."""
    site = work / "site"
    for step in (("init", "--dir", str(site)),
                 ("issue", "daemon", "xen02", "--ip", HOST, "--dir", str(site)),
                 ("issue", "user", "alice", "--dir", str(site))):
        subprocess.run(cmd("sfpyca", *step), check=True, capture_output=True, env=env())
    SECURITY.clear()
    SECURITY.update(SFPY_CERT=str(site / "alice.pem"), SFPY_KEY=str(site / "alice.key"),
                    SFPY_CA=str(site / "ca.pem"))
    return ["--cert", str(site / "xen02.pem"), "--key", str(site / "xen02.key"),
            "--ca", str(site / "ca.pem")]


def cmd(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"sfpy.cli.{name}", *args]


def timed(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    began = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, env=env(), timeout=600)
    return time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--components", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tls", action="store_true", help="TLS with certificates (sfpy-ca)")
    parser.add_argument("--hosts", type=int, default=1, choices=(1, 3))
    args = parser.parse_args()
    if args.tls and args.hosts != 1:
        parser.error("--tls is measured on one host")
    work = Path(tempfile.mkdtemp(prefix="bench-daemons-"))
    if args.hosts == 3:
        spread(args, work)
        return
    security = make_certificates(work) if args.tls else ["--insecure"]
    body = "\n".join(f"    c{n} extends P;" for n in range(args.components))
    sf = work / "prims.sf"
    sf.write_text('#include "org/smartfrog/components.sf"\n'
                  'P extends Prim { sfClass "org.smartfrog.sfcore.prim.PrimImpl"; }\n'
                  f"sfConfig extends Compound {{\n{body}\n}}\n", encoding="utf-8")

    began = time.perf_counter()
    daemon = subprocess.Popen(
        cmd("sfdaemon", "--host", HOST, *security, "--state-dir", str(work / "state"),
            "--log-level", "WARNING"),
        stderr=subprocess.PIPE, text=True, env=env(),
    )
    assert daemon.stderr is not None
    for line in daemon.stderr:
        if "ready" in line:
            break
    ready = time.perf_counter() - began
    try:
        idle = json.loads(subprocess.run(cmd("sfdiagnostics", HOST, "--json"),
                                         capture_output=True, text=True, env=env(),
                                         check=True).stdout)
        up, down, run, calls = [], [], [], []
        for n in range(args.repeat):
            seconds, result = timed(cmd("sfstart", HOST, f"b{n}", str(sf), "-q", "--json"))
            assert result.returncode == 0, result.stderr
            up.append(seconds)
            calls.append(json.loads(result.stdout)["calls"])
            seconds, result = timed(cmd("sfterminate", HOST, f"b{n}", "-q"))
            assert result.returncode == 0, result.stderr
            down.append(seconds)
            seconds, result = timed(cmd("sfrun", str(sf), "--terminate-after", "0", "-q"))
            assert result.returncode == 0, result.stderr
            run.append(seconds)
        # through sfpy.engine.remote, so the same TLS settings as the commands
        probe = (
            "import os, time, statistics\n"
            "from sfpy.engine import remote, tls\n"
            "e = os.environ\n"
            "if 'SFPY_CA' in e:\n"
            "    remote.configure(tls.TLSFiles(e['SFPY_CA'], e['SFPY_CERT'], e['SFPY_KEY']))\n"
            "else:\n"
            "    remote.configure(insecure=True)\n"
            f"c = remote.connect('{HOST}')\n"
            "c.ping(); t = []\n"
            "for _ in range(1000):\n"
            "    b = time.perf_counter(); c.ping(); t.append(time.perf_counter() - b)\n"
            "n = []\n"
            "for _ in range(100):\n"
            f"    b = time.perf_counter(); d = remote.connect('{HOST}'); d.ping(); d.close()\n"
            "    n.append(time.perf_counter() - b)\n"
            "print(statistics.median(t), statistics.median(n))\n"
        )
        rtt, fresh = map(float, subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env(),
            check=True).stdout.split())
        # idle: the applications are gone; let the daemon settle
        diag = json.loads(subprocess.run(cmd("sfdiagnostics", HOST, "--json"),
                                         capture_output=True, text=True, env=env(),
                                         check=True).stdout)
    finally:
        subprocess.run(cmd("sfstopdaemon", HOST), capture_output=True, env=env(), timeout=120)
        daemon.wait(60)
    med = statistics.median
    print(f"components: {args.components}, runs: {args.repeat} (medians), "
          f"{'TLS' if args.tls else 'plain TCP (--insecure)'}")
    print(f"sfstart until running:   {med(up):.3f} s  (remote calls: {sorted(set(calls))})")
    print(f"sfterminate until gone:  {med(down):.3f} s")
    print(f"up + down via daemon:    {med(up) + med(down):.3f} s")
    print(f"sfrun up and down:       {med(run):.3f} s  (ratio {(med(up) + med(down)) / med(run):.2f})")
    print(f"ping round trip:         {rtt * 1000:.3f} ms (json, open connection, median of 1000)")
    print(f"connect + hello + ping:  {fresh * 1000:.3f} ms (a new connection, median of 100)")
    print(f"daemon ready after:      {ready:.3f} s")
    print(f"idle daemon RSS:         {idle['rss'] / 2**20:.1f} MiB (fresh)")
    print(f"daemon RSS after runs:   {diag['rss'] / 2**20:.1f} MiB, {diag['threads']} threads")


def start_daemon(host: str, work: Path) -> subprocess.Popen:
    daemon = subprocess.Popen(
        cmd("sfdaemon", "--host", host, "--insecure", "--state-dir", str(work / f"state-{host}"),
            "--log-level", "WARNING"),
        stderr=subprocess.PIPE, text=True, env=env(),
    )
    assert daemon.stderr is not None
    for line in daemon.stderr:
        if "ready" in line:
            break
    return daemon


def spread(args: argparse.Namespace, work: Path) -> None:
    """N Prims over three daemons against sfrun of the same tree in one process."""
    hosts = [HOST, "127.0.0.3", "127.0.0.4"]
    third = args.components // 3
    prim = 'extends Prim { sfClass "org.smartfrog.sfcore.prim.PrimImpl"; }'

    def prims(prefix: str, n: int) -> str:
        return "\n".join(f"    {prefix}{i} {prim}" for i in range(n))

    def tree(placed: bool) -> str:
        where = [f'sfProcessHost "{h}";' if placed else "" for h in hosts[1:]]
        return ('#include "org/smartfrog/components.sf"\n'
                f"sfConfig extends Compound {{\n{prims('a', args.components - 2 * third)}\n"
                f"  b extends Compound {{ {where[0]}\n{prims('b', third - 1)}\n  }}\n"
                f"  c extends Compound {{ {where[1]}\n{prims('c', third - 1)}\n  }}\n}}\n")

    placed, local = work / "spread.sf", work / "local.sf"
    placed.write_text(tree(True), encoding="utf-8")
    local.write_text(tree(False), encoding="utf-8")
    daemons = [start_daemon(host, work) for host in hosts]
    try:
        up, down, run, calls, between = [], [], [], [], []
        for n in range(args.repeat):
            before = json.loads(subprocess.run(cmd("sfdiagnostics", HOST, "--json"),
                                               capture_output=True, text=True, env=env(),
                                               check=True).stdout)["remote_calls"]
            seconds, result = timed(cmd("sfstart", HOST, f"s{n}", str(placed), "-q", "--json"))
            assert result.returncode == 0, result.stderr
            up.append(seconds)
            calls.append(json.loads(result.stdout)["calls"])
            seconds, result = timed(cmd("sfterminate", HOST, f"s{n}", "-q"))
            assert result.returncode == 0, result.stderr
            down.append(seconds)
            after = json.loads(subprocess.run(cmd("sfdiagnostics", HOST, "--json"),
                                              capture_output=True, text=True, env=env(),
                                              check=True).stdout)["remote_calls"]
            between.append(sum(after.values()) - sum(before.values()))
            seconds, result = timed(cmd("sfrun", str(local), "--terminate-after", "0", "-q"))
            assert result.returncode == 0, result.stderr
            run.append(seconds)
    finally:
        for host in hosts:
            subprocess.run(cmd("sfstopdaemon", host), capture_output=True, env=env(), timeout=120)
        for daemon in daemons:
            daemon.wait(60)
    med = statistics.median
    print(f"components: {args.components} over 3 daemons, runs: {args.repeat} (medians)")
    print(f"sfstart until all run:   {med(up):.3f} s  (sfstart's remote calls: {sorted(set(calls))})")
    print(f"sfterminate until gone:  {med(down):.3f} s")
    print(f"up + down via daemons:   {med(up) + med(down):.3f} s")
    print(f"sfrun up and down:       {med(run):.3f} s  (ratio {(med(up) + med(down)) / med(run):.2f})")
    print(f"root daemon -> others:   {sorted(set(between))} remote calls per up + down")


if __name__ == "__main__":
    main()
