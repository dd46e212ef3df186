"""Real ``sfdaemon`` processes for the daemon tests: started, waited for (the ready line,
never a fixed sleep), stopped, and killed with whatever they left when a test fails."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
PORT = 3800


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.pop("PYRO_SERIALIZER", None)
    # these daemons run --insecure on loopback; so do their clients (tests/daemon/test_tls.py
    # takes this out and gives certificates instead)
    env["SFPY_INSECURE"] = "1"
    for name in ("SFPY_CERT", "SFPY_KEY", "SFPY_CA"):
        env.pop(name, None)
    # Every process this test run's daemons start inherits it: scans for leftovers count
    # this run's processes only, not another run's on the same machine.
    env[TEST_RUN_VARIABLE] = TEST_RUN
    return env


TEST_RUN_VARIABLE = "SFPY_TEST_RUN"
TEST_RUN = str(os.getpid())


def made_by_this_run(process: psutil.Process) -> bool:
    """Was ``process`` started (through a daemon) by this test run?"""
    try:
        return process.environ().get(TEST_RUN_VARIABLE) == TEST_RUN
    except (psutil.Error, OSError):
        return False


def command(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"sfpy.cli.{name}", *args]


def run(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a client command (``sfstart`` …) to its end."""
    return subprocess.run(command(name, *args), capture_output=True, text=True,
                          timeout=timeout, env=environment())


def wait_for(condition, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``condition()`` until it returns something true; its value. AssertionError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def applications(host: str) -> dict[str, str]:
    """What ``sflist HOST`` lists: application name → state."""
    result = run("sflist", host, "--json")
    assert result.returncode == 0, result.stderr
    return {app["name"]: app["state"] for app in json.loads(result.stdout)["applications"]}


def tree(name: str, host: str) -> dict:
    """``sflist HOST NAME --json``: the application's component tree."""
    result = run("sflist", host, name, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def find(node: dict, path: str) -> dict:
    """The node of ``path`` (``app:a:b``) in a tree from :func:`tree`."""
    if node["path"] == path:
        return node
    for child in node["children"]:
        if path == child["path"] or path.startswith(child["path"] + ":"):
            return find(child, path)
    raise KeyError(path)


class Daemon:
    """One ``sfdaemon`` process on ``address:3800`` with its state directory."""

    def __init__(self, address: str, state_dir: Path, *extra: str,
                 security: tuple[str, ...] = ("--insecure",),
                 env: dict[str, str] | None = None) -> None:
        self.address = address
        self.state_dir = state_dir
        self.extra = extra
        self.security = security  # TLS daemons (test_tls.py) give --cert, --key, --ca
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()

    def start(self, timeout: float = 30.0) -> Daemon:
        self.lines = []
        self._ready = threading.Event()  # one per process: a dead one's reader cannot set it
        self.process = subprocess.Popen(
            command("sfdaemon", "--host", self.address, "--port", str(PORT), "--state-dir",
                    str(self.state_dir), *self.security, *self.extra),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=self.env or environment(), start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self.process, self._ready),
                         daemon=True).start()
        if not self._ready.wait(timeout) or self.process.poll() is not None:
            self.kill()
            raise AssertionError(f"sfdaemon on {self.address} not ready:\n" + "".join(self.lines))
        return self

    def _read(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.lines.append(line)
            if "ready" in line and line.startswith("sfdaemon:"):
                ready.set()
        ready.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait; SIGKILL after ``timeout``. The exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """``kill -9`` of the daemon (its applications' process groups live on)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(10)

    def clean_leftovers(self) -> None:
        """Whatever the daemon's applications left (process groups): stopped through their
        journals, as a restarted daemon would."""
        from sfpy.host.journal import recover

        with contextlib.suppress(Exception):
            recover(self.state_dir / "apps")
