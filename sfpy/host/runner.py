"""The command runner: every command sfpy runs on this host goes through :class:`ShellRunner`,
so every command, its output and its exit code are logged, and each runs as a process group
of its own (:mod:`sfpy.host.processes`)::

    runner = ShellRunner(logging.getLogger("x"), timeout=30)
    result = runner.run(["lvcreate", "-L", "10G", "-n", name, vg])   # argv: no shell
    result = runner.run("ls -l | wc -l", cwd="/tmp")                  # one line for bash
    result.check()              # raises CommandFailed unless exit code 0

An argument vector is executed directly (never through a shell); a command line is given to
``bash -c`` as *one* argument. On a timeout, or when the runner is closed, the whole group
gets SIGTERM and, after a grace period, SIGKILL; processes a finished command left behind in
its group are stopped the same way. Every child is reaped. ``parallel=False`` runs one
command at a time.

Long work (:mod:`sfpy.host.work`): a command started during a component's hook honours the
hook's step. Nothing starts once the step is cancelled; the wait is wrapped in
``step.blocking("startScript sleep 5 (pid 4242)", on_cancel=...)`` so the application is free
meanwhile and a cancel stops the command's group at once (the call then raises
:class:`~sfpy.host.work.WorkCancelled`); the wait is bounded by the step's deadline (a
terminate hook's cleanup bound), and a command stopped by it has ``Result.bounded``.

The journal: given a :class:`JournalLike`, the runner records each group before it starts
(``process-group``: argv, cwd), gives the child ``SFPY_TAG`` (so recovery can find it by its
environment even if its pid was never written), adds pid, pgid and creation time right after
it started, and marks the entry done once the whole group is gone.

A script vector (:meth:`ShellRunner.run_script` with a list of lines) runs in one ``bash -e``
(the lines share the shell: ``cd`` carries over) and stops at the first failing line; an
``ERR`` trap reports that line's number on a private pipe, so :attr:`Result.failed_line`
names the line that failed, and the failure reads on one line. (Running the lines one by one
would lose the shared shell; parsing stderr would mix with the script's own output.)
"""

from __future__ import annotations

import collections
import logging
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sfpy.errors import SfpyError
from sfpy.host import processes
from sfpy.host.processes import DEFAULT_GRACE
from sfpy.host.work import Step, check, current_step, remaining
from sfpy.language.model import ComponentDescription

#: Seconds to wait for the output of a finished command to be read completely.
_READ_GRACE = 2.0
_SHELLS = {"bash", "sh", "dash"}
#: Exit code of a command that was never started because its step's bound had passed.
NOT_STARTED = 125


class HostError(SfpyError):
    """Acting on a host went wrong (the root of the host layer's errors)."""

    exit_code = 1


class ShellError(HostError):
    """A command could not be run (the shell is closed, a bad command or environment)."""


class CommandFailed(HostError):
    """A command exited with a non-zero code or timed out (``result`` says how)."""

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result


@runtime_checkable
class JournalLike(Protocol):
    """What the runner asks of a journal of side effects (:mod:`sfpy.host.journal`)."""

    def add(self, kind: str, owner: str, data: Mapping[str, Any]) -> int:
        """Record, durably, a side effect about to be made; returns its entry."""
        ...

    def tag(self, entry: int) -> str:
        """A text that marks what ``entry`` made (put in a child's environment)."""
        ...

    def update(self, entry: int, data: Mapping[str, Any]) -> None:
        """Add what became known once it was made (a pid)."""
        ...

    def done(self, entry: int) -> None:
        """The side effect was undone (or needs no undoing): recovery leaves it alone."""
        ...


@dataclass(frozen=True)
class Result:
    """What a command did. ``exit_code`` is negative when a signal ended it (-9: SIGKILL);
    127 when the program could not be started.

    ``timed_out``: stopped by its timeout; ``killed``: stopped because its runner closed;
    ``cancelled``: stopped because its step was cancelled; ``bounded``: stopped by its step's
    deadline (a cleanup bound of ``bound`` seconds, when known). ``failed_line``: the line of
    a script vector at which it stopped.
    """

    command: list[str]
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    timed_out: bool = False
    killed: bool = False
    cwd: str | None = field(default=None, compare=False)
    pid: int | None = field(default=None, compare=False)
    label: str | None = field(default=None, compare=False)
    cancelled: bool = False
    bounded: bool = False
    bound: float | None = field(default=None, compare=False)
    failed_line: str | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return (self.exit_code == 0 and not self.timed_out and not self.killed
                and not self.cancelled and not self.bounded)

    def describe(self) -> str:
        """One line: how it ended, with the end of stderr."""
        subject = one_line(display_command(self.command))
        if self.failed_line is not None:
            subject = self.failed_line
        if self.bounded or self.cancelled:
            subject = self.label or subject
            if self.pid is not None:
                subject = f"{subject} (pid {self.pid})"
        if self.bounded and self.exit_code == NOT_STARTED and self.pid is None:
            how = "was not started: its cleanup bound had passed"
        elif self.bounded:
            how = (f"was stopped after its cleanup bound of {self.bound:g} s"
                   if self.bound is not None else
                   f"was stopped at its cleanup bound (after {self.duration:.1f} s)")
        elif self.cancelled:
            how = "was stopped: its step was cancelled"
        elif self.timed_out:
            how = f"timed out after {self.duration:.1f}s"
        elif self.killed:
            how = "was stopped (its shell terminated)"
        elif self.exit_code < 0:
            how = f"was killed by signal {-self.exit_code}"
        else:
            how = f"exited with code {self.exit_code}"
        tail = self.stderr.strip().splitlines()[-3:] if self.stderr.strip() else []
        text = f"{subject} {how}"
        return text + (": " + " / ".join(line.strip() for line in tail) if tail else "")

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


def one_line(text: str, limit: int = 120) -> str:
    """``text`` on one line: a script of several lines reads as its first line and a count."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return text.strip()
    shown = lines[0] if len(lines) == 1 else f"{lines[0]} … ({len(lines)} lines)"
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


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


@dataclass
class _Call:
    """One command to run: what is shown and recorded, and what is executed."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    input: str | None
    limit: float | None
    caller: str | None
    label: str | None
    executed: list[str] = field(default_factory=list)
    script_lines: list[str] | None = None  # a script vector with a line-reporting trap
    report_fd: int | None = None


class _CallerLog(logging.LoggerAdapter):
    """Adds ``caller`` (the component a command runs for) to every record of one command, so
    a log handler can tell whose command, output and exit code a line is (a daemon keeps a
    command log per application: sfpy.engine.applog)."""

    def __init__(self, log: logging.Logger | logging.LoggerAdapter, caller: str) -> None:
        super().__init__(log, {"caller": caller})  # type: ignore[arg-type]
        self.caller = caller

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(kwargs.get("extra") or {}), "caller": self.caller}
        return msg, kwargs


class ShellRunner:
    """Runs commands for a component, logging each to ``log`` (see the module docstring).

    ``shell`` is the interpreter for command lines (``["bash"]``); ``cwd``, ``env`` (added to
    this process's environment) and ``timeout`` (seconds, None or 0: none) are defaults each
    call may override. ``journal`` (optional) records every process group; ``owner`` names
    whose they are when a call gives no ``caller``.
    """

    def __init__(self, log: logging.Logger | logging.LoggerAdapter, *,
                 shell: Sequence[str] = ("bash",), cwd: str | None = None,
                 env: Mapping[str, str] | None = None, timeout: float | None = None,
                 parallel: bool = False, grace: float = DEFAULT_GRACE,
                 history: int = 50, journal: JournalLike | None = None,
                 owner: str = "") -> None:
        self.log = log
        self.shell = list(shell)
        self.cwd = cwd
        self.env = dict(env or {})
        self.timeout = timeout or None
        self.parallel = parallel
        self.grace = grace
        self.journal = journal
        self.owner = owner
        self.history: collections.deque[Result] = collections.deque(maxlen=history)
        self._serial = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._running_lock = threading.Lock()
        self._killed: set[subprocess.Popen] = set()
        self._closed = False

    # -- API ------------------------------------------------------------------------------------
    def run(self, command: str | Sequence[str], *, timeout: float | None = None,
            env: Mapping[str, str] | Sequence[str] | None = None, cwd: str | None = None,
            input: str | None = None, check: bool = False, caller: str | None = None,
            label: str | None = None) -> Result:
        """Run ``command`` (an argument vector, executed directly; or a command line, given to
        bash) and wait for it. ``timeout`` None uses the runner's; 0 means none. ``label``
        (``"startScript"``) names the command in the component's activity."""
        if isinstance(command, str):
            argv = [*self.shell, "-c", command]
        else:
            argv = argument_vector(command)
        return self._execute(self._call(argv, timeout, env, cwd, input, caller, label), check)

    def run_script(self, script: Any, *, timeout: float | None = None,
                   env: Mapping[str, str] | Sequence[str] | None = None, cwd: str | None = None,
                   check: bool = False, caller: str | None = None,
                   label: str | None = None) -> Result:
        """Run a script value (a command line, or a vector of lines run in order in one bash,
        stopping at the first failing line, which the result names)."""
        text, stop_on_error = script_text(script)
        argv = [*self.shell, "-e", "-c", text] if stop_on_error else [*self.shell, "-c", text]
        call = self._call(argv, timeout, env, cwd, None, caller, label)
        if stop_on_error and os.path.basename(self.shell[0]) == "bash":
            call.script_lines = text.split("\n")
        return self._execute(call, check)

    def close(self) -> None:
        """Refuse new commands and stop the running ones (their whole process groups)."""
        with self._running_lock:  # a command spawning now sees the flag once it registers
            self._closed = True
            running = list(self._running)
        if not running:
            return
        self._killed.update(running)
        with current_step().blocking(f"stopping {len(running)} running command(s)"):
            for process in running:
                processes.stop_group(process, self.grace)

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

    def _call(self, argv: list[str], timeout: float | None, env: Any, cwd: str | None,
              input: str | None, caller: str | None, label: str | None) -> _Call:
        if self._closed:
            raise ShellError(f"cannot run {one_line(display_command(argv))}: the shell has "
                             "terminated")
        return _Call(argv, self._environment(env), cwd if cwd is not None else self.cwd, input,
                     self.timeout if timeout is None else (timeout or None), caller, label)

    def _execute(self, call: _Call, check_result: bool) -> Result:
        step = current_step()
        check(step)
        if self.parallel:
            result = self._spawn(call, step)
        else:
            self._acquire_serial(call, step)
            try:
                result = self._spawn(call, step)
            finally:
                self._serial.release()
        self.history.append(result)
        check(step)
        if check_result:
            result.check()
        return result

    def _acquire_serial(self, call: _Call, step: Step) -> None:
        """One command at a time: waiting for the shell is long work too (another hook may
        hold it for minutes), so the wait is released and cancellable."""
        if self._serial.acquire(blocking=False):
            return
        what = f"waiting for the shell to run {call.label or one_line(display_command(call.argv))}"
        with step.blocking(what):
            while not self._serial.acquire(timeout=0.05):
                if step.cancelled:
                    break
        check(step)  # not holding the lock when cancelled: the loop broke before acquiring

    def _spawn(self, call: _Call, step: Step) -> Result:
        log = _CallerLog(self.log, call.caller) if call.caller else self.log
        argv = call.argv
        shown = display_command(argv)
        brief = one_line(shown)
        where = f" (in {call.cwd})" if call.cwd else ""
        who = f" for {call.caller}" if call.caller else ""
        log.info("run%s%s: %s", who, where, shown)
        wait_for = remaining(step, call.limit)
        by_deadline = wait_for is not None and step.deadline is not None and (
            call.limit is None or wait_for < call.limit)
        bound = getattr(step, "bound", None)
        if by_deadline and wait_for == 0:
            log.warning("not started: the cleanup bound had passed: %s", brief)
            return Result(argv, NOT_STARTED, "", "", 0.0, cwd=call.cwd, label=call.label,
                          bounded=True, bound=bound)

        journal, entry = self.journal, None
        env = call.env
        if journal is not None:
            entry = journal.add("process-group", call.caller or self.owner,
                                {"argv": list(argv), "cwd": call.cwd})
            env = {**env, "SFPY_TAG": journal.tag(entry)}
        executed = argv
        pass_fds: tuple[int, ...] = ()
        read_fd = None
        if call.script_lines is not None:
            read_fd, write_fd = os.pipe()
            pass_fds = (write_fd,)
            trap = f"trap 'echo $LINENO >&{write_fd}' ERR\n"
            executed = [*argv[:-1], trap + argv[-1]]
        began = time.monotonic()
        try:
            process = subprocess.Popen(
                executed, cwd=call.cwd, env=env, text=True, errors="replace",
                stdin=subprocess.PIPE if call.input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                pass_fds=pass_fds,
            )
        except OSError as error:
            if read_fd is not None:
                os.close(read_fd)
            log.warning("could not start %s: %s", brief, error)
            self._journal_done(entry)
            return Result(argv, 127, "", f"{error.strerror or error}: {error.filename or argv[0]}",
                          0.0, cwd=call.cwd, label=call.label)
        finally:
            for fd in pass_fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
        pid = process.pid
        processes.register(process, brief)
        with self._running_lock:
            self._running.add(process)
            closed_meanwhile = self._closed
        if closed_meanwhile:  # close() ran between the spawn and the registration
            self._killed.add(process)
            log.warning("[%d] the shell closed as it started: stopping its process group", pid)
            processes.stop_group(process, self.grace)
        if journal is not None and entry is not None:
            self._journal_update(entry, {"pid": pid, "pgid": pid,
                                         "create_time": processes.creation_time(pid)})
        out = _Reader(process.stdout, lambda line: log.info("[%d] out: %s", pid, line),
                      f"sfpy-out-{pid}")
        err = _Reader(process.stderr, lambda line: log.info("[%d] err: %s", pid, line),
                      f"sfpy-err-{pid}")
        out.start()
        err.start()
        timed_out = bounded = False
        gone = False
        escalation = processes.Escalation(process, self.grace)
        try:
            what = f"{call.label} {brief}" if call.label else brief
            with step.blocking(f"{what} (pid {pid})", on_cancel=escalation.start):
                self._write_input(process, call.input)
                try:
                    process.wait(timeout=wait_for)
                except subprocess.TimeoutExpired:
                    if by_deadline:
                        bounded = True
                        log.warning("[%d] reached its cleanup bound: stopping its process group",
                                    pid)
                    else:
                        timed_out = True
                        log.warning("[%d] timed out after %gs: stopping its process group",
                                    pid, call.limit)
                    escalation.cancel()
                    processes.stop_group(process, self.grace)
                escalation.cancel()
                gone = processes.stop_leftovers(pid, self.grace)
        finally:
            escalation.cancel()
            if process.poll() is None:  # interrupted: never leave it behind
                gone = processes.stop_group(process, self.grace)
            with self._running_lock:
                self._running.discard(process)
            processes.unregister(process)
            if gone:
                self._journal_done(entry)
            elif entry is not None:
                log.warning("[%d] process group may not be gone: left in the journal", pid)
        out.join(_READ_GRACE)
        err.join(_READ_GRACE)
        failed_line = self._failed_line(call.script_lines, read_fd, process.returncode)
        duration = time.monotonic() - began
        result = Result(argv, process.returncode, out.text(), err.text(), duration, timed_out,
                        process in self._killed, call.cwd, pid, call.label,
                        cancelled=escalation.started, bounded=bounded, bound=bound,
                        failed_line=failed_line)
        if result.ok:
            log.info("[%d] exit 0 (%.2fs)", pid, duration)
        else:
            log.warning("[%d] %s (%.2fs)", pid, result.describe(), duration)
        return result

    @staticmethod
    def _write_input(process: subprocess.Popen, text: str | None) -> None:
        if text is None or process.stdin is None:
            return
        try:
            process.stdin.write(text)
            process.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    @staticmethod
    def _failed_line(lines: list[str] | None, read_fd: int | None, code: int | None) -> str | None:
        """The script line the ERR trap reported (``false (line 2 of 3)``), if any."""
        if read_fd is None:
            return None
        try:
            os.set_blocking(read_fd, False)
            try:
                data = os.read(read_fd, 4096).decode("ascii", "replace")
            except (BlockingIOError, OSError):
                data = ""
        finally:
            os.close(read_fd)
        if not lines or code in (0, None):
            return None
        numbers = [int(word) for word in data.split() if word.isdigit()]
        if not numbers:
            return None
        index = numbers[-1] - 2  # the trap is line 1 of the executed text
        if not 0 <= index < len(lines):
            return None
        return f"{one_line(lines[index])} (line {index + 1} of {len(lines)})"

    def _journal_update(self, entry: int, data: Mapping[str, Any]) -> None:
        try:
            assert self.journal is not None
            self.journal.update(entry, data)
        except Exception as error:  # noqa: BLE001 - the child runs: its tag still finds it
            self.log.error("journal: could not record pid of entry %s: %s", entry, error)

    def _journal_done(self, entry: int | None) -> None:
        if entry is None or self.journal is None:
            return
        try:
            self.journal.done(entry)
        except Exception as error:  # noqa: BLE001 - recovery will find it gone
            self.log.error("journal: could not mark entry %s done: %s", entry, error)


__all__ = [
    "NOT_STARTED",
    "CommandFailed",
    "HostError",
    "JournalLike",
    "Result",
    "ShellError",
    "ShellRunner",
    "argument_vector",
    "display_command",
    "environment_from",
    "one_line",
    "script_text",
]
