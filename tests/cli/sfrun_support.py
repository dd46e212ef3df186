"""Running sfrun as a user does, in a subprocess, with the test components loaded."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RUNNER = (
    "import sys, sfrun_components, engine_components; sfrun_components.register_all(); "
    "engine_components.register_all(); "
    "from sfpy.cli.sfrun import main; sys.exit(main(sys.argv[1:]))"
)
HEADER = (
    '#include "org/smartfrog/components.sf"\n'
    'Sleeper extends Prim { sfClass "test.JournaledSleep"; }\n'
    'Maker extends Prim { sfClass "test.JournaledFile"; }\n'
    'Slow extends Prim { sfClass "test.SlowTerminate"; }\n'
    'Failing extends Prim { sfClass "test.FailingTerminate"; }\n'
    'Probe extends Prim { sfClass "test.Probe"; }\n'
)


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), str(REPO / "tests" / "engine"), str(REPO), env.get("PYTHONPATH", "")]
    )
    env.pop("SFPY_TAG", None)
    env.update(extra)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-c", RUNNER, *args]


def run(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(*args), capture_output=True, text=True, timeout=timeout, env=environment(**env)
    )


def write_app(folder: Path, body: str) -> Path:
    path = folder / "app.sf"
    path.write_text(HEADER + f"sfConfig extends Compound {{\n{body}\n}}\n", encoding="utf-8")
    return path


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Sfrun:
    """A live sfrun whose stderr is collected line by line."""

    def __init__(self, *args: str, **env: str) -> None:
        self.child = subprocess.Popen(
            command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=environment(**env),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.child.stderr is not None
        for line in self.child.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_line(self, start: str, timeout: float = 30.0) -> str:
        return wait_for(
            lambda: next((line for line in self.lines if line.startswith(start)), None),
            timeout, f"a line starting {start!r} in:\n{self.stderr}",
        )

    def wait(self, timeout: float = 60.0) -> int:
        code = self.child.wait(timeout)
        self._reader.join(5)
        return code

    def close(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()
