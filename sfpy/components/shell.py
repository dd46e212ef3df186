"""Shell services (``org/smartfrog/services/shellscript/components.sf``): the components that
run commands for a description. The command runner itself is the host layer's
(:mod:`sfpy.host.runner`: :class:`ShellRunner`, :class:`Result`, :class:`CommandFailed`,
:class:`ShellError` and the helpers, re-exported here so existing imports keep working;
process groups in :mod:`sfpy.host.processes`), so every command is logged, runs as a process
group of its own, honours its hook's step (cancellation, cleanup bound) and is journalled.

:class:`BashShell`
    The shell service component: a ShellRunner with the component's ``dir``,
    ``envProperties``, ``timeout`` (seconds, 0: none) and ``parallel``; other components
    call ``shell.run(...)``/``shell.run_script(...)`` on it (``shell LAZY myShell``). Its log
    (``sfpy.component``, prefixed with its name) has every command, output line and exit code.
:class:`Script`
    ``deployScript``/``startScript``/``terminateScript`` run in those lifecycle steps through
    ``shell`` (a LAZY link to a BashShell; a private runner when absent). A script is a command
    line, or a vector of lines run in order in one bash (stopping at the first failing line).
    A failing deploy or start script fails that step (a vector's record names the failing
    line); a terminate script that fails or is stopped by its cleanup bound is failed cleanup
    (raised once its private runner is closed; the engine goes on with the others).
    Each runs with its name as label (``startScript (pid 4242)`` is the activity).
    ``autoTerminate``: terminate normally once the start script is done.
:class:`BashProcess`
    One long-lived command ``cmd`` (a command line for bash, or an argument vector) in ``dir``
    with ``envProperties``, started at start (``autoStart``), stopped with its whole process
    group at termination. ``terminate true``: its exit ends the component (normally on exit 0,
    abnormally otherwise); ``terminate false``: its exit is a liveness failure at the next
    ping. ``restart true`` (with ``terminate false``) starts it again instead (at most once a
    second). Attributes added: ``pid``; ``exitCode`` once it exited.
"""

from __future__ import annotations

import collections
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sfpy.engine.api import EngineError, LivenessError, Prim, TerminationRecord
from sfpy.errors import SfpyError
from sfpy.host import processes
from sfpy.host.journal import Entry, register_cleaner, stop_process_group_entry
from sfpy.host.processes import DEFAULT_GRACE
from sfpy.host.runner import (
    _READ_GRACE,
    CommandFailed,
    JournalLike,
    Result,
    ShellError,
    ShellRunner,
    _Reader,
    argument_vector,
    display_command,
    environment_from,
    one_line,
    script_text,
)
from sfpy.host.work import WorkCancelled, current_step
from sfpy.language.model import ComponentDescription

_runner_lock = threading.Lock()


def stop_process_group(process: subprocess.Popen, grace: float = DEFAULT_GRACE) -> None:
    """SIGTERM to the process group of ``process``, SIGKILL after ``grace`` seconds, reap it
    (kept for existing callers: :func:`sfpy.host.processes.stop_group`)."""
    processes.stop_group(process, grace)


def _journal_of(component: Prim) -> JournalLike | None:
    """The run's journal of side effects (None: not kept)."""
    process = component.sf_process()
    return process.journal if process is not None else None


# ===============================================================================================
# Components.
# ===============================================================================================
def _shell_argv(component: Prim) -> list[str]:
    """The interpreter of command lines: ``exec:cmd`` (BashExec's ``["/bin/bash"]``)."""
    execution = component.sf_resolve("exec", None)
    if isinstance(execution, ComponentDescription):
        cmd = execution.attributes.get("cmd")
        if isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
            return list(cmd)
    return ["bash"]


def _optional_directory(component: Prim, name: str = "dir") -> str | None:
    value = component.sf_resolve(name, None)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise EngineError(f"{name} of {component.sf_complete_name()} must be a directory path")
    if not os.path.isdir(value):
        raise EngineError(f"{name} of {component.sf_complete_name()}: no such directory: {value}")
    return value


def _seconds(component: Prim, name: str, default: float) -> float:
    value = component.sf_resolve(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise EngineError(f"{name} of {component.sf_complete_name()} must be a number of "
                          f"seconds >= 0, not {value!r}")
    return float(value)


class BashShell(Prim):
    """The shell service (SmartFrog's SFScriptExecutionImpl): runs submitted commands and
    scripts with the component's ``dir``, ``envProperties``, ``timeout`` and ``parallel``,
    logging each. See :class:`ShellRunner` for :meth:`run` and :meth:`run_script`."""
    declared_attributes = frozenset('dir envProperties exec name parallel timeout'.split())  # what it reads

    runner: ShellRunner | None = None

    def deploy(self) -> None:
        self._runner()

    def _make_runner(self) -> ShellRunner:
        return ShellRunner(
            self.log,
            shell=_shell_argv(self),
            cwd=_optional_directory(self),
            env=environment_from(self.sf_resolve("envProperties", None)),
            timeout=_seconds(self, "timeout", 0) or None,
            parallel=self.sf_resolve("parallel", False) is True,
            grace=_seconds(self, "killGrace", DEFAULT_GRACE),
            journal=_journal_of(self),
            owner=self.sf_complete_name(),
        )

    def _runner(self) -> ShellRunner:
        if self.sf_is_terminating:
            raise ShellError(f"the shell {self.sf_complete_name()} has terminated")
        with _runner_lock:
            if self.runner is None:
                # Used before its own deploy (a Script defined before it deploys first): its
                # attributes are there already, so it can serve now.
                self.runner = self._make_runner()
            return self.runner

    def run(self, command: str | Sequence[str], **options: Any) -> Result:
        """:meth:`ShellRunner.run` on this shell (options: timeout, env, cwd, input, check,
        caller, label)."""
        return self._runner().run(command, **options)

    def run_script(self, script: Any, **options: Any) -> Result:
        """:meth:`ShellRunner.run_script` on this shell."""
        return self._runner().run_script(script, **options)

    @property
    def history(self) -> list[Result]:
        """The last commands this shell ran, oldest first."""
        return list(self.runner.history) if self.runner is not None else []

    def terminate(self, record: TerminationRecord) -> None:
        if self.runner is not None:
            self.runner.close()


class ScriptFailed(EngineError):
    """A Script's deploy or start script failed."""


class Script(Prim):
    """Scripts run in the lifecycle (SmartFrog's SFScriptImpl); see the module docstring."""
    declared_attributes = frozenset('autoTerminate deployScript shell startScript terminateScript'.split())  # what it reads

    SCRIPTS = ("deployScript", "startScript", "terminateScript")
    _private: ShellRunner | None = None
    auto_terminate = False

    _cleanup_entry: int | None = None

    def deploy(self) -> None:
        for name in self.SCRIPTS:
            value = self.sf_resolve(name, None)
            if value is not None:
                script_text(value, name)  # a clear error now rather than later
        self.auto_terminate = self.sf_resolve("autoTerminate", False) is True
        self._journal_cleanup()
        self._run_phase("deploy", self.sf_resolve("deployScript", None))

    def _journal_cleanup(self) -> None:
        """Before any script runs, record the terminate script in the run's journal: if the
        run dies before this component terminates (kill -9), recovery runs it, so what the
        scripts made is undone even then."""
        journal = _journal_of(self)
        script = self.sf_resolve("terminateScript", None)
        if journal is None or script is None:
            return
        text, stop_on_error = script_text(script, "terminateScript")
        shell = self._shell()
        runner = shell.runner if isinstance(shell, BashShell) else shell
        self._cleanup_entry = journal.add("script-cleanup", self.sf_complete_name(), {
            "script": text,
            "stop_on_error": stop_on_error,
            "shell": runner.shell if runner is not None else ["bash"],
            "cwd": (runner.cwd if runner is not None else None) or os.getcwd(),
            "env": dict(runner.env) if runner is not None else {},
        })

    def adopt(self, entries: list[Entry]) -> bool:
        """After a daemon restart: nothing of a Script runs once started; it takes back the
        duty to run its terminateScript (the entry it journaled at deploy)."""
        self.auto_terminate = self.sf_resolve("autoTerminate", False) is True
        cleanups = [entry for entry in entries if entry.kind == "script-cleanup"]
        if len(cleanups) != len(entries) or len(cleanups) > 1:
            return False
        if (self.sf_resolve("terminateScript", None) is not None) != bool(cleanups):
            return False  # its terminateScript already ran
        self._cleanup_entry = cleanups[0].id if cleanups else None
        return True

    def start(self) -> None:
        self._run_phase("start", self.sf_resolve("startScript", None))
        if self.auto_terminate:
            self.sf_terminate(TerminationRecord.normal("start script done", id=self.sf_complete_name()))

    def terminate(self, record: TerminationRecord) -> None:
        """Run ``terminateScript``; a failure (or a stop at the cleanup bound) is raised once
        the private runner is closed, so the engine records it as failed cleanup."""
        failure: str | None = None
        try:
            script = self.sf_resolve("terminateScript", None)
            if script is not None:
                result = self._shell(terminating=True).run_script(
                    script, caller=self.sf_complete_name(), label="terminateScript")
                if not result.ok:
                    failure = f"terminateScript failed: {result.describe()}"
        except WorkCancelled:
            raise
        except SfpyError as error:
            failure = f"terminateScript could not run: {error}"
        finally:
            if self._private is not None:
                self._private.close()
            journal = _journal_of(self)
            if journal is not None and self._cleanup_entry is not None:
                journal.done(self._cleanup_entry)  # it ran here (a failure is reported)
                self._cleanup_entry = None
        if failure is not None:
            raise ScriptFailed(failure)

    def _run_phase(self, phase: str, script: Any) -> None:
        if script is None:
            return
        result = self._shell().run_script(script, caller=self.sf_complete_name(),
                                          label=f"{phase}Script")
        if not result.ok:
            raise ScriptFailed(f"{phase}Script failed: {result.describe()}")

    def _shell(self, terminating: bool = False) -> BashShell | ShellRunner:
        """The shell to use: ``shell`` (resolved now: it is LAZY), else a private runner."""
        try:
            shell = self.sf_resolve("shell", None)
        except EngineError:
            if not terminating:
                raise
            shell = None
        if shell is None or (terminating and isinstance(shell, BashShell) and shell.sf_is_terminating):
            if shell is not None:
                self.log.warning("shell %s has terminated: running terminateScript in a "
                                 "private shell", shell.sf_complete_name())
            if self._private is None:
                self._private = ShellRunner(self.log, journal=_journal_of(self),
                                            owner=self.sf_complete_name())
            return self._private
        if not callable(getattr(shell, "run_script", None)):
            raise EngineError(f"shell of {self.sf_complete_name()} is not a shell component: {shell!r}")
        return shell


def _run_script_cleanup(entry: Entry) -> str:
    """Recovery of a dead run: run the terminate script a Script recorded at deploy."""
    data = entry.data
    shell = [str(part) for part in data.get("shell") or ["bash"]]
    flags = ["-e", "-c"] if data.get("stop_on_error") else ["-c"]
    runner = ShellRunner(logging.getLogger("sfpy.recover"), shell=shell,
                         cwd=data.get("cwd") or None, env=data.get("env") or {}, timeout=60)
    try:
        result = runner.run([*shell, *flags, str(data["script"])], caller=entry.owner,
                            label="terminateScript")
    finally:
        runner.close()
    if not result.ok:
        raise RuntimeError(f"terminateScript of {entry.owner}: {result.describe()}")
    return f"ran the terminateScript of {entry.owner}: {one_line(str(data['script']))}"


register_cleaner("script-cleanup", _run_script_cleanup)



class BashProcess(Prim):
    """A long-lived command (SmartFrog's SFProcessExecutionImpl); see the module docstring."""
    declared_attributes = frozenset('autoStart cmd detach dir envProperties exitCode pid restart terminate'.split())  # what it reads

    process: subprocess.Popen | None = None
    #: The journal entry of a process group taken back after a daemon restart (no Popen).
    _adopted: Entry | None = None

    def deploy(self) -> None:
        command = self.sf_resolve("cmd")
        if isinstance(command, str):
            if not command.strip():
                raise EngineError(f"cmd of {self.sf_complete_name()} is empty")
            self.argv = [*_shell_argv(self), "-c", command]
        else:
            self.argv = argument_vector(command, "cmd")
        self.cwd = _optional_directory(self)
        self.env = dict(os.environ)
        self.env.update(environment_from(self.sf_resolve("envProperties", None)))
        self.terminate_on_exit = self.sf_resolve("terminate", False) is True
        self.restart = self.sf_resolve("restart", False) is True
        self.auto_start = self.sf_resolve("autoStart", True) is not False
        self.grace = _seconds(self, "killGrace", DEFAULT_GRACE)
        self.output: collections.deque[str] = collections.deque(maxlen=200)
        self.exit_code: int | None = None
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._last_start = 0.0
        self._guard = threading.Lock()
        self._entries: dict[subprocess.Popen, int] = {}  # journal entries of running groups

    def start(self) -> None:
        if self.auto_start:
            self.start_process()

    def adopt(self, entries: list[Entry]) -> bool:
        """After a daemon restart: take back the process group it started when that still
        runs (the pid and start time of its journal entry); ping and terminate then watch
        and stop it by its group."""
        self.deploy()  # reads the attributes again; starts nothing
        if not entries:
            return not self.auto_start
        entry = entries[0]
        if len(entries) != 1 or entry.kind != "process-group":
            return False
        pid, created = entry.data.get("pid"), entry.data.get("create_time")
        if not isinstance(pid, int) or not isinstance(created, (int, float)):
            return False
        now = processes.creation_time(pid)
        if now is None or abs(now - float(created)) >= 0.05 or not processes.group_members(pid):
            return False
        self._adopted = entry
        self.sf_replace_attribute("pid", pid)
        return True

    def start_process(self) -> None:
        """Start the command (``autoStart false``: someone calls this later)."""
        with self._guard:
            if self._stopping or (self.process is not None and self.process.poll() is None):
                return
            shown = display_command(self.argv)
            self.log.info("starting%s: %s", f" (in {self.cwd})" if self.cwd else "", shown)
            journal, entry = _journal_of(self), None
            env = self.env
            if journal is not None:
                entry = journal.add("process-group", self.sf_complete_name(),
                                    {"argv": list(self.argv), "cwd": self.cwd})
                env = {**env, "SFPY_TAG": journal.tag(entry)}
            try:
                process = subprocess.Popen(
                    self.argv, cwd=self.cwd, env=env, text=True, errors="replace",
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            except OSError as error:
                if journal is not None and entry is not None:
                    journal.done(entry)
                raise EngineError(f"cannot start {one_line(shown)}: "
                                  f"{error.strerror or error}") from None
            self.process = process
            processes.register(process, one_line(shown))
            if journal is not None and entry is not None:
                self._entries[process] = entry
                journal.update(entry, {"pid": process.pid, "pgid": process.pid,
                                       "create_time": processes.creation_time(process.pid)})
            self.exit_code = None
            self._last_start = time.monotonic()
            pid = process.pid
            self.sf_replace_attribute("pid", pid)
            log = self.log
            output = self.output

            def line_of(stream: str) -> Callable[[str], None]:
                def handle(line: str) -> None:
                    output.append(f"{stream}: {line}")
                    log.info("[%d] %s: %s", pid, stream, line)
                return handle

            readers = [_Reader(process.stdout, line_of("out"), f"sfpy-out-{pid}"),
                       _Reader(process.stderr, line_of("err"), f"sfpy-err-{pid}")]
            watcher = threading.Thread(target=self._watch, args=(process,),
                                       name=f"sfpy-watch-{pid}", daemon=True)
            self._threads = [*readers, watcher]
            for thread in self._threads:
                thread.start()

    def _watch(self, process: subprocess.Popen) -> None:
        code = process.wait()
        if self._stopping or process is not self.process:
            return
        self.exit_code = code
        how = f"exited with code {code}" if code >= 0 else f"was killed by signal {-code}"
        self.log.log(logging.INFO if code == 0 else logging.WARNING, "[%d] %s", process.pid, how)
        try:
            self.sf_replace_attribute("exitCode", code)
        except Exception:  # noqa: BLE001 - the component may be terminating meanwhile
            pass
        self._group_gone(process, processes.stop_leftovers(process.pid, self.grace))
        me = self.sf_complete_name()
        if self.terminate_on_exit:
            record = (TerminationRecord.normal(f"{display_command(self.argv)} exited with code 0", id=me)
                      if code == 0 else
                      TerminationRecord.abnormal(f"{display_command(self.argv)} {how}", id=me))
            self.sf_terminate(record)
        elif self.restart:
            wait = max(0.0, 1.0 - (time.monotonic() - self._last_start))
            try:
                self.schedule(wait, self.start_process)
            except EngineError:
                pass

    def ping(self) -> None:
        adopted = self._adopted
        if adopted is not None and self.process is None:
            self._ping_adopted(adopted)
            return
        process = self.process
        if process is None or self.terminate_on_exit or self.restart:
            return
        code = process.poll()
        if code is not None:
            how = f"exited with code {code}" if code >= 0 else f"was killed by signal {-code}"
            raise LivenessError(f"process {process.pid} ({display_command(self.argv)}) {how}")

    def _ping_adopted(self, entry: Entry) -> None:
        """An adopted group (not a child of this daemon: its exit code is unknown)."""
        pid = int(entry.data["pid"])
        if processes.group_members(pid):
            return
        self._adopted = None
        journal = _journal_of(self)
        if journal is not None:
            journal.done(entry.id)
        how = f"process group {pid} ({display_command(self.argv)}) has ended"
        if self.terminate_on_exit:
            self.sf_terminate(TerminationRecord.normal(f"{how} (exit code unknown: adopted "
                                                       "after a daemon restart)",
                                                       id=self.sf_complete_name()))
        elif self.restart:
            self.start_process()
        else:
            raise LivenessError(how)

    def terminate(self, record: TerminationRecord) -> None:
        self._stopping = True
        adopted = self._adopted
        if adopted is not None and self.process is None:
            pid = adopted.data.get("pid")
            with current_step().blocking(f"stopping adopted process group {pid}"):
                self.log.info("%s", stop_process_group_entry(adopted, self.grace))
            self._adopted = None
            journal = _journal_of(self)
            if journal is not None:
                journal.done(adopted.id)
            return
        process = self.process
        if process is None:
            return
        what = f"stopping {one_line(display_command(self.argv))} (pid {process.pid})"
        with current_step().blocking(what):
            if process.poll() is None:
                self.log.info("stopping process group %d", process.pid)
            self._group_gone(process, processes.stop_group(process, self.grace))
            for thread in self._threads:
                thread.join(_READ_GRACE)

    def _group_gone(self, process: subprocess.Popen, gone: bool) -> None:
        """The group of ``process`` was stopped: forget it, and close its journal entry once
        nothing of it runs."""
        processes.unregister(process)
        with self._guard:
            entry = self._entries.pop(process, None) if gone else None
        journal = _journal_of(self)
        if entry is not None and journal is not None:
            journal.done(entry)
        elif not gone:
            self.log.warning("process group %d may not be gone", process.pid)


__all__ = [
    "BashProcess",
    "BashShell",
    "CommandFailed",
    "Result",
    "Script",
    "ScriptFailed",
    "ShellError",
    "ShellRunner",
    "argument_vector",
    "display_command",
    "environment_from",
    "script_text",
    "stop_process_group",
]
