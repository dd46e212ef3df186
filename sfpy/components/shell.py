"""Shell services (``org/smartfrog/services/shellscript/components.sf``): every command sfpy runs
on a host goes through here, so every command, its output and its exit code are logged.

:class:`ShellRunner`
    The plain-Python command runner (no component needed)::

        runner = ShellRunner(logging.getLogger("x"), timeout=30)
        result = runner.run(["lvcreate", "-L", "10G", "-n", name, vg])   # argv: no shell
        result = runner.run("ls -l | wc -l", cwd="/tmp")                  # one line for bash
        result.check()              # raises CommandFailed unless exit code 0

    An argument vector is executed directly (never through a shell); a command line is given
    to ``bash -c`` as *one* argument. Each command runs in its own process group: on a timeout,
    or when the runner is closed, the whole group gets SIGTERM and, after a grace period,
    SIGKILL; processes a finished command left behind in its group are stopped the same way.
    Every child is reaped. ``parallel=False`` runs one command at a time.
:class:`BashShell`
    The shell service component: a ShellRunner with the component's ``dir``,
    ``envProperties``, ``timeout`` (seconds, 0: none) and ``parallel``; other components
    call ``shell.run(...)``/``shell.run_script(...)`` on it (``shell LAZY myShell``). Its log
    (``sfpy.component``, prefixed with its name) has every command, output line and exit code.
:class:`Script`
    ``deployScript``/``startScript``/``terminateScript`` run in those lifecycle steps through
    ``shell`` (a LAZY link to a BashShell; a private runner when absent). A script is a command
    line, or a vector of lines run in order in one bash (stopping at the first failing line).
    A failing deploy or start script fails that step; a failing terminate script is logged and
    termination goes on. ``autoTerminate``: terminate normally once the start script is done.
:class:`BashProcess`
    One long-lived command ``cmd`` (a command line for bash, or an argument vector) in ``dir``
    with ``envProperties``, started at start (``autoStart``), stopped with its whole process
    group at termination. ``terminate true``: its exit ends the component (normally on exit 0,
    abnormally otherwise); ``terminate false``: its exit is a liveness failure at the next
    ping. ``restart true`` (with ``terminate false``) starts it again instead (at most once a
    second). Attributes added: ``pid``; ``exitCode`` once it exited.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sfpy.engine.errors import EngineError, LivenessError
from sfpy.engine.prim import Prim
from sfpy.engine.termination import TerminationRecord
from sfpy.language.model import ComponentDescription

#: Seconds between SIGTERM and SIGKILL when a process group is stopped.
DEFAULT_GRACE = 5.0
#: Seconds to wait for the output of a finished command to be read completely.
_READ_GRACE = 2.0
_SHELLS = {"bash", "sh", "dash"}


class ShellError(EngineError):
    """A command could not be run (the shell is closed, a bad command or environment)."""


class CommandFailed(EngineError):
    """A command exited with a non-zero code or timed out (``result`` says how)."""

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Result:
    """What a command did. ``exit_code`` is negative when a signal ended it (-9: SIGKILL);
    127 when the program could not be started."""

    command: list[str]
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    timed_out: bool = False
    killed: bool = False
    cwd: str | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.killed

    def describe(self) -> str:
        """One line: how it ended, with the end of stderr."""
        if self.timed_out:
            how = f"timed out after {self.duration:.1f}s"
        elif self.killed:
            how = "was stopped (its shell terminated)"
        elif self.exit_code < 0:
            how = f"was killed by signal {-self.exit_code}"
        else:
            how = f"exited with code {self.exit_code}"
        tail = self.stderr.strip().splitlines()[-3:] if self.stderr.strip() else []
        text = f"{display_command(self.command)} {how}"
        return text + (": " + " / ".join(tail) if tail else "")

    def check(self) -> Result:
        """This result, or :class:`CommandFailed` unless the command succeeded."""
        if not self.ok:
            raise CommandFailed(self.describe(), self)
        return self


def display_command(argv: Sequence[str]) -> str:
    """How a command reads in the log: ``bash -c '…'`` shows the line itself."""
    if os.path.basename(argv[0]) in _SHELLS and (
        (len(argv) == 3 and argv[1] == "-c") or (len(argv) == 4 and argv[1:3] == ["-e", "-c"])
    ):
        return argv[-1] if len(argv[-1]) < 2000 else argv[-1][:2000] + "…"

    return " ".join(shlex.quote(a) for a in argv)


def argument_vector(command: Any, what: str = "command") -> list[str]:
    """An argument vector from a description value: strings, or numbers written as text."""
    if isinstance(command, (list, tuple)):
        argv = []
        for item in command:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise ShellError(f"{what}: every element of an argument vector must be a string, "
                                 f"not {item!r}")
            argv.append(item if isinstance(item, str) else str(item))
        if not argv or not argv[0]:
            raise ShellError(f"{what}: an empty argument vector")
        return argv
    raise ShellError(f"{what} must be a command line or an argument vector, not {command!r}")


def environment_from(value: Any, what: str = "envProperties") -> dict[str, str]:
    """``["NAME=value", …]`` (SmartFrog's form) or a mapping, as a dict."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, ComponentDescription):
        return {str(k): str(v) for k, v in value.attributes.items()}
    if isinstance(value, (list, tuple)):
        env = {}
        for item in value:
            if not isinstance(item, str) or "=" not in item or item.startswith("="):
                raise ShellError(f"{what}: each entry must read NAME=value, not {item!r}")
            name, _, text = item.partition("=")
            env[name] = text
        return env
    raise ShellError(f"{what} must be a vector of NAME=value strings, not {value!r}")


def script_text(script: Any, what: str = "script") -> tuple[str, bool]:
    """(bash text, stop at the first failing line?) of a script value: a command line, a
    vector of lines, or a description whose values are the lines."""
    if isinstance(script, str):
        return script, False
    if isinstance(script, ComponentDescription):
        script = [value for value in script.attributes.values() if isinstance(value, str)]
    if isinstance(script, (list, tuple)):
        if not all(isinstance(line, str) for line in script):
            raise ShellError(f"{what}: every line of a script vector must be a string")
        return "\n".join(script), True
    raise ShellError(f"{what} must be a command line or a vector of lines, not {script!r}")


_runner_lock = threading.Lock()
_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


def _track(process: subprocess.Popen, running: bool) -> None:
    with _live_lock:
        if running:
            _live.add(process)
        else:
            _live.discard(process)


@atexit.register
def _stop_everything_at_exit() -> None:
    """Last resort when the Python process exits with commands or processes still running
    (an application nobody terminated): their groups are started in sessions of their own, so
    nothing else would stop them."""
    with _live_lock:
        remaining = list(_live)
        _live.clear()
    for process in remaining:
        try:
            stop_process_group(process, 1.0)
        except Exception:  # noqa: BLE001 - exiting anyway
            pass


def stop_process_group(process: subprocess.Popen, grace: float = DEFAULT_GRACE) -> None:
    """SIGTERM to the process group of ``process`` (its leader), SIGKILL after ``grace``
    seconds, and reap the leader. Safe when everything already exited."""
    pgid = process.pid
    if process.poll() is None:
        _signal_group(pgid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            process.wait()
    stop_leftovers(pgid, grace)


def stop_leftovers(pgid: int, grace: float = DEFAULT_GRACE) -> None:
    """Processes still in group ``pgid`` after its leader exited: SIGTERM, then SIGKILL."""
    if not _group_alive(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, number: int) -> None:
    try:
        os.killpg(pgid, number)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Does group ``pgid`` still have a running member? Zombies do not count: an orphan is
    reaped by init whenever init gets to it, but it no longer runs."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


class _Reader(threading.Thread):
    """Reads one pipe line by line, keeping the text and handing each line to ``on_line``."""

    def __init__(self, stream: Any, on_line: Callable[[str], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stream = stream
        self.on_line = on_line
        self.chunks: list[str] = []

    def run(self) -> None:
        try:
            for line in iter(self.stream.readline, ""):
                self.chunks.append(line)
                try:
                    self.on_line(line.rstrip("\n"))
                except Exception:  # noqa: BLE001 - logging must never stop the reading
                    pass
        except (OSError, ValueError):
            pass
        finally:
            try:
                self.stream.close()
            except OSError:
                pass

    def text(self) -> str:
        return "".join(self.chunks)


class ShellRunner:
    """Runs commands for a component, logging each to ``log`` (see the module docstring).

    ``shell`` is the interpreter for command lines (``["bash"]``); ``cwd``, ``env`` (added to
    this process's environment) and ``timeout`` (seconds, None or 0: none) are defaults each
    call may override.
    """

    def __init__(self, log: logging.Logger | logging.LoggerAdapter, *,
                 shell: Sequence[str] = ("bash",), cwd: str | None = None,
                 env: Mapping[str, str] | None = None, timeout: float | None = None,
                 parallel: bool = False, grace: float = DEFAULT_GRACE,
                 history: int = 50) -> None:
        self.log = log
        self.shell = list(shell)
        self.cwd = cwd
        self.env = dict(env or {})
        self.timeout = timeout or None
        self.parallel = parallel
        self.grace = grace
        self.history: collections.deque[Result] = collections.deque(maxlen=history)
        self._serial = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._running_lock = threading.Lock()
        self._killed: set[subprocess.Popen] = set()
        self._closed = False

    # -- API ------------------------------------------------------------------------------------
    def run(self, command: str | Sequence[str], *, timeout: float | None = None,
            env: Mapping[str, str] | Sequence[str] | None = None, cwd: str | None = None,
            input: str | None = None, check: bool = False, caller: str | None = None) -> Result:
        """Run ``command`` (an argument vector, executed directly; or a command line, given to
        bash) and wait for it. ``timeout`` None uses the runner's; 0 means none."""
        if isinstance(command, str):
            argv = [*self.shell, "-c", command]
        else:
            argv = argument_vector(command)
        return self._execute(argv, timeout=timeout, env=env, cwd=cwd, input=input,
                             check=check, caller=caller)

    def run_script(self, script: Any, *, timeout: float | None = None,
                   env: Mapping[str, str] | Sequence[str] | None = None, cwd: str | None = None,
                   check: bool = False, caller: str | None = None) -> Result:
        """Run a script value (a command line, or a vector of lines run in order in one bash,
        stopping at the first failing line)."""
        text, stop_on_error = script_text(script)
        argv = [*self.shell, "-e", "-c", text] if stop_on_error else [*self.shell, "-c", text]
        return self._execute(argv, timeout=timeout, env=env, cwd=cwd, input=None, check=check,
                             caller=caller)

    def close(self) -> None:
        """Refuse new commands and stop the running ones (their whole process groups)."""
        self._closed = True
        with self._running_lock:
            running = list(self._running)
        self._killed.update(running)
        for process in running:
            stop_process_group(process, self.grace)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- internals ------------------------------------------------------------------------------
    def _environment(self, env: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
        merged = dict(os.environ)
        merged.update(self.env)
        if env is not None:
            merged.update(environment_from(env, "env"))
        return merged

    def _execute(self, argv: list[str], *, timeout: float | None, env: Any, cwd: str | None,
                 input: str | None, check: bool, caller: str | None) -> Result:
        if self._closed:
            raise ShellError(f"cannot run {display_command(argv)}: the shell has terminated")
        environment = self._environment(env)
        directory = cwd if cwd is not None else self.cwd
        limit = self.timeout if timeout is None else (timeout or None)
        if self.parallel:
            result = self._spawn(argv, environment, directory, input, limit, caller)
        else:
            with self._serial:
                result = self._spawn(argv, environment, directory, input, limit, caller)
        self.history.append(result)
        if check:
            result.check()
        return result

    def _spawn(self, argv: list[str], env: dict[str, str], cwd: str | None, input: str | None,
               limit: float | None, caller: str | None) -> Result:
        log = self.log
        shown = display_command(argv)
        where = f" (in {cwd})" if cwd else ""
        who = f" for {caller}" if caller else ""
        log.info("run%s%s: %s", who, where, shown)
        began = time.monotonic()
        try:
            process = subprocess.Popen(
                argv, cwd=cwd, env=env, text=True, errors="replace",
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except OSError as error:
            log.warning("could not start %s: %s", shown, error)
            return Result(argv, 127, "", f"{error.strerror or error}: {error.filename or argv[0]}",
                          0.0, cwd=cwd)
        with self._running_lock:
            self._running.add(process)
        _track(process, True)
        pid = process.pid
        out = _Reader(process.stdout, lambda line: log.info("[%d] out: %s", pid, line), f"sfpy-out-{pid}")
        err = _Reader(process.stderr, lambda line: log.info("[%d] err: %s", pid, line), f"sfpy-err-{pid}")
        out.start()
        err.start()
        timed_out = False
        try:
            if input is not None and process.stdin is not None:
                try:
                    process.stdin.write(input)
                    process.stdin.close()
                except (BrokenPipeError, OSError):
                    pass
            try:
                process.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                timed_out = True
                log.warning("[%d] timed out after %gs: stopping its process group", pid, limit)
                stop_process_group(process, self.grace)
            stop_leftovers(pid, self.grace)
        finally:
            if process.poll() is None:  # interrupted: never leave it behind
                stop_process_group(process, self.grace)
            with self._running_lock:
                self._running.discard(process)
            _track(process, False)
        out.join(_READ_GRACE)
        err.join(_READ_GRACE)
        duration = time.monotonic() - began
        result = Result(argv, process.returncode, out.text(), err.text(), duration, timed_out,
                        process in self._killed, cwd)
        if result.ok:
            log.info("[%d] exit 0 (%.2fs)", pid, duration)
        else:
            log.warning("[%d] %s (%.2fs)", pid, result.describe(), duration)
        return result


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
        caller)."""
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

    def deploy(self) -> None:
        for name in self.SCRIPTS:
            value = self.sf_resolve(name, None)
            if value is not None:
                script_text(value, name)  # a clear error now rather than later
        self.auto_terminate = self.sf_resolve("autoTerminate", False) is True
        self._run_phase("deploy", self.sf_resolve("deployScript", None))

    def start(self) -> None:
        self._run_phase("start", self.sf_resolve("startScript", None))
        if self.auto_terminate:
            self.sf_terminate(TerminationRecord.normal("start script done", id=self.sf_complete_name()))

    def terminate(self, record: TerminationRecord) -> None:
        try:
            script = self.sf_resolve("terminateScript", None)
            if script is not None:
                result = self._shell(terminating=True).run_script(script, caller=self.sf_complete_name())
                if not result.ok:
                    self.log.error("terminateScript failed: %s", result.describe())
        except EngineError as error:
            self.log.error("terminateScript could not run: %s", error)
        finally:
            if self._private is not None:
                self._private.close()

    def _run_phase(self, phase: str, script: Any) -> None:
        if script is None:
            return
        result = self._shell().run_script(script, caller=self.sf_complete_name())
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
                self._private = ShellRunner(self.log)
            return self._private
        if not callable(getattr(shell, "run_script", None)):
            raise EngineError(f"shell of {self.sf_complete_name()} is not a shell component: {shell!r}")
        return shell


class BashProcess(Prim):
    """A long-lived command (SmartFrog's SFProcessExecutionImpl); see the module docstring."""
    declared_attributes = frozenset('autoStart cmd detach dir envProperties exitCode pid restart terminate'.split())  # what it reads

    process: subprocess.Popen | None = None

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

    def start(self) -> None:
        if self.auto_start:
            self.start_process()

    def start_process(self) -> None:
        """Start the command (``autoStart false``: someone calls this later)."""
        with self._guard:
            if self._stopping or (self.process is not None and self.process.poll() is None):
                return
            shown = display_command(self.argv)
            self.log.info("starting%s: %s", f" (in {self.cwd})" if self.cwd else "", shown)
            try:
                process = subprocess.Popen(
                    self.argv, cwd=self.cwd, env=self.env, text=True, errors="replace",
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            except OSError as error:
                raise EngineError(f"cannot start {shown}: {error.strerror or error}") from None
            self.process = process
            _track(process, True)
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
        stop_leftovers(process.pid, self.grace)
        _track(process, False)
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
        process = self.process
        if process is None or self.terminate_on_exit or self.restart:
            return
        code = process.poll()
        if code is not None:
            how = f"exited with code {code}" if code >= 0 else f"was killed by signal {-code}"
            raise LivenessError(f"process {process.pid} ({display_command(self.argv)}) {how}")

    def terminate(self, record: TerminationRecord) -> None:
        self._stopping = True
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            self.log.info("stopping process group %d", process.pid)
        stop_process_group(process, self.grace)
        _track(process, False)
        for thread in self._threads:
            thread.join(_READ_GRACE)


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
