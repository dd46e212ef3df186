"""Components the sfrun tests deploy in sfrun subprocesses (through PYTHONPATH): they make
real side effects and record them in the run's journal, as the host layer's components do."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from sfpy.engine import Prim, register
from sfpy.host.journal import TAG_VARIABLE


def _journal(component: Prim) -> Any:
    process = component.sf_process()
    return getattr(process, "journal", None)


class JournaledSleep(Prim):
    """Starts ``sleep 300`` in its own process group, journaled; writes its pid to
    ``pidFile``; stops the group at termination."""

    def start(self) -> None:
        journal = _journal(self)
        self.entry = journal.add(
            "process-group", self.sf_complete_name(), {"command": "sleep 300"}
        )
        env = dict(os.environ, **{TAG_VARIABLE: journal.tag(self.entry)})
        self.child = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
        journal.update(
            self.entry,
            {"pid": self.child.pid, "create_time": psutil.Process(self.child.pid).create_time()},
        )
        pid_file = Path(self.sf_resolve("pidFile"))
        pid_file.with_suffix(".part").write_text(f"{self.child.pid}\n")
        pid_file.with_suffix(".part").rename(pid_file)  # whole when it appears

    def terminate(self, record: Any) -> None:
        child = getattr(self, "child", None)
        if child is not None:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait()
            _journal(self).done(self.entry)


class JournaledFile(Prim):
    """Creates ``path`` at start (journaled), removes it at termination unless ``forget``."""

    def start(self) -> None:
        journal = _journal(self)
        self.path = Path(self.sf_resolve("path"))
        self.entry = journal.add("file", self.sf_complete_name(), {"path": str(self.path)})
        self.path.write_text("made by sfrun\n")

    def terminate(self, record: Any) -> None:
        if hasattr(self, "entry") and not self.sf_resolve("forget", False):
            self.path.unlink(missing_ok=True)
            _journal(self).done(self.entry)


class SlowTerminate(Prim):
    """Its terminate hook touches ``marker`` and then takes ``seconds`` (a cleanup that hangs)."""

    def terminate(self, record: Any) -> None:
        Path(self.sf_resolve("marker")).touch()
        time.sleep(float(self.sf_resolve("seconds", 300)))


class FailingTerminate(Prim):
    """Its terminate hook raises (as a terminateScript that exits 32, "target is busy")."""

    def terminate(self, record: Any) -> None:
        raise RuntimeError("umount: target is busy")


class Probe(Prim):
    """Writes what its process was given (terminate_timeout, whether it has a journal)."""

    def start(self) -> None:
        process = self.sf_process()
        Path(self.sf_resolve("out")).write_text(
            f"{getattr(process, 'terminate_timeout', None)} "
            f"{getattr(process, 'journal', None) is not None}\n"
        )


def register_all() -> None:
    for name, cls in [
        ("test.JournaledSleep", JournaledSleep),
        ("test.JournaledFile", JournaledFile),
        ("test.SlowTerminate", SlowTerminate),
        ("test.FailingTerminate", FailingTerminate),
        ("test.Probe", Probe),
    ]:
        register(name, cls)
