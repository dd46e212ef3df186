"""Several hosts at once, with real daemons on 127.0.0.2, 127.0.0.3 and 127.0.0.4 (port 3800):
placed children terminate in parallel unless ``sfSyncTerminate true``, and 20 applications
spanning the same three daemons are started and terminated concurrently without deadlock or
mixed-up state.

``SFPY_CROSS_HOSTS`` (three addresses, comma-separated) moves the daemons elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from daemon_support import command, environment, run, wait_for

pytestmark = pytest.mark.integration

A, B, C = (os.environ.get("SFPY_CROSS_HOSTS") or "127.0.0.2,127.0.0.3,127.0.0.4").split(",")
INCLUDES = (
    '#include "org/smartfrog/components.sf"\n'
    '#include "org/smartfrog/services/shellscript/components.sf"\n'
)
#: Seconds each placed part's terminateScript takes.
CLEANUP = 2
#: Concurrent applications spanning the three daemons.
APPS = 20
#: Bound of the whole concurrent test (start, list, terminate), on a busy machine.
CONCURRENT_BOUND = 180.0


@pytest.fixture
def hosts(daemon_factory):
    return {address: daemon_factory(address) for address in (A, B, C)}


def write(tmp_path: Path, body: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(INCLUDES + body, encoding="utf-8")
    return str(path)


def applications(host: str) -> dict[str, str]:
    result = run("sflist", host, "--json")
    assert result.returncode == 0, result.stderr
    return {app["name"]: app["state"] for app in json.loads(result.stdout)["applications"]}


def nodes(node: dict) -> dict[str, dict]:
    found = {node["path"]: node}
    for child in node["children"]:
        found.update(nodes(child))
    return found


def tree(name: str, host: str) -> dict[str, dict]:
    result = run("sflist", host, name, "--json")
    assert result.returncode == 0, result.stderr
    return nodes(json.loads(result.stdout)["tree"])


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def slow_cleanups(tmp_path: Path, sync: bool) -> str:
    """Two placed parts (B, C), each with a cleanup taking CLEANUP seconds, and one local."""

    def placed(name: str, host: str) -> str:
        return f"""
            {name} extends Compound {{
                sfProcessHost "{host}";
                s extends Script {{
                    terminateScript "sleep {CLEANUP}; date +%s%N > {tmp_path}/{name}.end";
                }}
            }}"""

    return write(tmp_path, f"""
        sfConfig extends Compound {{
            {"sfSyncTerminate true;" if sync else ""}
            a extends Script {{ terminateScript "date +%s%N > {tmp_path}/a.end"; }}
            {placed('b', B)}
            {placed('c', C)}
        }}""", name=f"slow-{sync}.sf")


def timed_terminate(name: str) -> float:
    began = time.monotonic()
    ended = run("sfterminate", A, name)
    took = time.monotonic() - began
    assert ended.returncode == 0, ended.stderr
    return took


def test_placed_children_terminate_in_parallel(hosts, tmp_path: Path) -> None:
    started = run("sfstart", A, "par", slow_cleanups(tmp_path, sync=False))
    assert started.returncode == 0, started.stderr
    took = timed_terminate("par")
    # both cleanups ran, each on its own host, side by side: about CLEANUP s, not twice
    assert took < 2 * CLEANUP - 0.5, f"sfterminate took {took:.2f} s"
    ends = {n: int((tmp_path / f"{n}.end").read_text()) for n in "abc"}
    assert abs(ends["b"] - ends["c"]) < (CLEANUP - 0.5) * 1e9, ends
    for host in (A, B, C):
        assert applications(host) == {}


def test_sf_sync_terminate_true_terminates_placed_children_one_after_the_other(
    hosts, tmp_path: Path
) -> None:
    started = run("sfstart", A, "sync", slow_cleanups(tmp_path, sync=True))
    assert started.returncode == 0, started.stderr
    took = timed_terminate("sync")
    assert took >= 2 * CLEANUP, f"sfterminate took {took:.2f} s"
    # reverse order, each completely before the next: c's cleanup, then b's, then a's
    ends = {n: int((tmp_path / f"{n}.end").read_text()) for n in "abc"}
    assert ends["c"] + CLEANUP * 1e9 <= ends["b"] + 0.2e9 and ends["b"] <= ends["a"], ends
    for host in (A, B, C):
        assert applications(host) == {}


def spanning(tmp_path: Path, index: int) -> str:
    """Application ``app<index>``: a part on each of the three hosts, each with a process."""

    def part(name: str, host: str | None) -> str:
        placed = f'sfProcessHost "{host}";' if host else ""
        return f"""
            {name} extends Compound {{
                {placed}
                s extends Script {{ startScript "echo {index} > {tmp_path}/{index}.{name}"; }}
                p extends BashProcess {{ cmd "exec sleep 300"; }}
            }}"""

    return write(tmp_path, f"""
        sfConfig extends Compound {{
            sfLivenessDelay 1;
            {part('a', None)}
            {part('b', B)}
            {part('c', C)}
        }}""", name=f"app{index}.sf")


def all_at_once(argvs: list[list[str]], deadline: float) -> list[subprocess.CompletedProcess]:
    """Run the client commands side by side; each one's result (killed at ``deadline``)."""
    env = environment()
    running = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)
        for argv in argvs
    ]
    results = []
    try:
        for argv, process in zip(argvs, running, strict=True):
            out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append(subprocess.CompletedProcess(argv, process.returncode, out, err))
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def test_twenty_concurrent_applications_span_the_same_three_daemons(
    hosts, tmp_path: Path
) -> None:
    deadline = time.monotonic() + CONCURRENT_BOUND
    names = [f"app{i}" for i in range(APPS)]
    files = [spanning(tmp_path, i) for i in range(APPS)]
    started = all_at_once(
        [command("sfstart", A, name, path, "-q") for name, path in zip(names, files, strict=True)],
        deadline,
    )
    for name, result in zip(names, started, strict=True):
        assert result.returncode == 0, f"{name}: {result.stderr}"
    running = dict.fromkeys(names, "running")
    for host in (A, B, C):
        assert applications(host) == running, host
    # no mixed-up state: each application's parts are its own, on their own hosts
    processes: list[int] = []
    for index, name in enumerate(names):
        for part, host in (("a", A), ("b", B), ("c", C)):
            found = tree(name, host)
            assert found[f"{name}:{part}:s"]["state"] == "STARTED", (name, part)
            assert found[f"{name}:{part}:p"]["state"] == "STARTED", (name, part)
            processes.append(found[f"{name}:{part}:p"]["attributes"]["pid"])
            assert (tmp_path / f"{index}.{part}").read_text() == f"{index}\n"
    assert len(set(processes)) == 3 * APPS
    assert all(alive(pid) for pid in processes)

    ended = all_at_once([command("sfterminate", A, name) for name in names], deadline)
    for name, result in zip(names, ended, strict=True):
        assert result.returncode == 0, f"{name}: {result.stderr}"
    for host in (A, B, C):
        assert applications(host) == {}, host
    wait_for(lambda: not any(alive(pid) for pid in processes), timeout=10,
             what="every part's process to be gone")
    assert time.monotonic() < deadline
