"""The seam through which a component acts on a host (see ``docs/host.md``).

A component that makes disks or domains is written as "attributes and facts in, commands
out": it asks the :class:`Host` a few facts (does this file exist? what does ``blkid`` say?)
and runs commands through it, argument vectors only. :class:`LocalHost` does it for real
(through :class:`~sfpy.host.runner.ShellRunner`, so every command is logged, runs as a
process group, honours the hook's step and is journalled); :class:`RecordingHost` is the fake
for tests: it records every command and answers each from a table, and fails clearly on a
command nobody expected. pyinfra's connector is the model: one place through which an
operation touches a host, so the same operation can be checked from tables without root and
run for real.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sfpy.host.runner import HostError, JournalLike, Result, ShellError, ShellRunner
from sfpy.host.work import check, current_step

#: How a :class:`RecordingHost` table answers a command: a Result, an exit code, a mapping
#: (``{"exit_code": 1, "stdout": "", "stderr": "…"}``, the JSON form) or a callable of argv.
Answer = Result | int | Mapping[str, Any] | Callable[[list[str]], Result]


@runtime_checkable
class Host(Protocol):
    """What a component may do to a host. Commands are argument vectors, never shell lines."""

    name: str

    def run(self, argv: Sequence[str], *, timeout: float | None = None,
            env: Mapping[str, str] | None = None, cwd: str | None = None,
            input: str | None = None, label: str | None = None,
            caller: str | None = None) -> Result:
        """Run a command that changes the host (``truncate``, ``mkfs.ext4``, ``xl create``).
        ``label`` names it in the component's activity, ``caller`` (the component's name)
        owns it in the log and the journal."""
        ...

    def probe(self, argv: Sequence[str], *, timeout: float | None = None,
              caller: str | None = None) -> Result:
        """Run a command that only reads (``blkid``, ``lvs``, ``xl list``): a fact. Kept apart
        from :meth:`run` so that a test can say "this run changes nothing"."""
        ...

    def exists(self, path: str) -> bool:
        """Does ``path`` exist on the host?"""
        ...

    def read_text(self, path: str) -> str:
        """The text of a file on the host (FileNotFoundError when there is none)."""
        ...

    def write_text(self, path: str, text: str, *, caller: str | None = None) -> None:
        """Write (replace) a small file on the host: a domain's configuration. The host layer
        does it itself, without starting a process (a ``tee`` cost a fork, an exec and a
        journal entry on the path to a guest's launch). Journal the file first, as for any
        file a command would make."""
        ...

    def make_directories(self, path: str, *, caller: str | None = None) -> None:
        """``mkdir -p path``, without a process."""
        ...

    def remove_files(self, paths: Sequence[str], *, caller: str | None = None) -> None:
        """``rm -f paths``: remove each file that exists, without a process."""
        ...


class FileOperations:
    """The file operations of :class:`Host` done in this process (a host layer acting on
    this machine mixes it in), each logged like a command, each checking the hook's step
    first (a cancelled step makes nothing more). Small local writes, not long work: they run
    where the hook runs."""

    def _file_log(self) -> logging.Logger | logging.LoggerAdapter:
        return logging.getLogger("sfpy.host")

    def _said(self, caller: str | None, what: str, *args: Any) -> None:
        if caller:
            self._file_log().info("file for %s: " + what, caller, *args)
        else:
            self._file_log().info(what, *args)

    def write_text(self, path: str, text: str, *, caller: str | None = None) -> None:
        check(current_step())
        self._said(caller, "write %s (%d bytes)", path, len(text.encode("utf-8")))
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as error:
            raise HostError(f"cannot write {path}: {error.strerror or error}") from error

    def make_directories(self, path: str, *, caller: str | None = None) -> None:
        check(current_step())
        self._said(caller, "mkdir -p %s", path)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as error:
            raise HostError(f"cannot make the directory {path}: {error.strerror or error}") \
                from error

    def remove_files(self, paths: Sequence[str], *, caller: str | None = None) -> None:
        check(current_step())
        self._said(caller, "rm -f %s", " ".join(paths))
        for path in paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as error:
                raise HostError(f"cannot remove {path}: {error.strerror or error}") from error


def _vector(argv: Sequence[str]) -> list[str]:
    if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
        raise ShellError(f"a host runs argument vectors only (a list of strings), not {argv!r}")
    return list(argv)


class LocalHost(FileOperations):
    """This machine, for real: commands go through a :class:`ShellRunner` (parallel, so two
    components' commands run side by side), with the run's journal when there is one."""

    name = "localhost"

    def __init__(self, runner: ShellRunner | None = None, *,
                 log: logging.Logger | logging.LoggerAdapter | None = None,
                 journal: JournalLike | None = None) -> None:
        self.runner = runner or ShellRunner(log or logging.getLogger("sfpy.host"),
                                            parallel=True, journal=journal)

    def run(self, argv: Sequence[str], *, timeout: float | None = None,
            env: Mapping[str, str] | None = None, cwd: str | None = None,
            input: str | None = None, label: str | None = None,
            caller: str | None = None) -> Result:
        return self.runner.run(_vector(argv), timeout=timeout, env=env, cwd=cwd, input=input,
                               label=label, caller=caller)

    def probe(self, argv: Sequence[str], *, timeout: float | None = None,
              caller: str | None = None) -> Result:
        return self.runner.run(_vector(argv), timeout=timeout, caller=caller)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read_text(self, path: str) -> str:
        return Path(path).read_text(encoding="utf-8", errors="replace")

    def _file_log(self) -> logging.Logger | logging.LoggerAdapter:
        return self.runner.log

    def close(self) -> None:
        """Stop what still runs and refuse new commands."""
        self.runner.close()


class UnexpectedCommand(HostError):
    """A :class:`RecordingHost` was asked something its table does not answer."""


@dataclass
class Call:
    """One command a :class:`RecordingHost` was asked to run, with its options."""

    argv: list[str]
    probe: bool
    options: dict[str, Any] = field(default_factory=dict)


class RecordingHost:
    """The fake host for tests: records every command, answers from tables.

    ``commands`` and ``probes`` map an argument vector (a tuple) to an :data:`Answer`;
    ``files`` maps the paths that exist to their text (None: exists, text not needed). A
    command or probe missing from its table raises :class:`UnexpectedCommand` naming it and
    what the table knows, so a test fails on the first surprise, not later.
    """

    def __init__(self, commands: Mapping[Sequence[str], Answer] | None = None, *,
                 probes: Mapping[Sequence[str], Answer] | None = None,
                 files: Mapping[str, str | None] | None = None,
                 name: str = "recording") -> None:
        self.name = name
        self.command_table = {tuple(k): v for k, v in (commands or {}).items()}
        self.probe_table = {tuple(k): v for k, v in (probes or {}).items()}
        self.files: dict[str, str | None] = dict(files or {})
        self.calls: list[Call] = []

    @property
    def commands(self) -> list[list[str]]:
        """Every changing command run so far, in order (probes not included)."""
        return [call.argv for call in self.calls if not call.probe]

    @property
    def probed(self) -> list[list[str]]:
        """Every probe so far, in order."""
        return [call.argv for call in self.calls if call.probe]

    def run(self, argv: Sequence[str], *, timeout: float | None = None,
            env: Mapping[str, str] | None = None, cwd: str | None = None,
            input: str | None = None, label: str | None = None,
            caller: str | None = None) -> Result:
        options = {"timeout": timeout, "env": env, "cwd": cwd, "input": input, "label": label,
                   "caller": caller}
        return self._answer(_vector(argv), False, options, self.command_table)

    def probe(self, argv: Sequence[str], *, timeout: float | None = None,
              caller: str | None = None) -> Result:
        return self._answer(_vector(argv), True, {"timeout": timeout, "caller": caller},
                            self.probe_table)

    def exists(self, path: str) -> bool:
        return path in self.files

    def read_text(self, path: str) -> str:
        if path not in self.files:
            raise FileNotFoundError(f"no such file on {self.name}: {path}")
        text = self.files[path]
        if text is None:
            raise UnexpectedCommand(f"{self.name}: {path} exists but the test gave no text for it")
        return text

    def write_text(self, path: str, text: str, *, caller: str | None = None) -> None:
        """Recorded as the command ``["write", path]`` (the text in its options); the file
        then exists with that text."""
        self._file_call(["write", path], {"text": text, "caller": caller})
        self.files[path] = text

    def make_directories(self, path: str, *, caller: str | None = None) -> None:
        """Recorded as the command ``["mkdir", "-p", path]``."""
        self._file_call(["mkdir", "-p", path], {"caller": caller})
        self.files.setdefault(path, None)

    def remove_files(self, paths: Sequence[str], *, caller: str | None = None) -> None:
        """Recorded as the command ``["rm", "-f", *paths]``; the files no longer exist."""
        self._file_call(["rm", "-f", *paths], {"caller": caller})
        for path in paths:
            self.files.pop(path, None)

    def _file_call(self, argv: list[str], options: dict[str, Any]) -> None:
        """File operations need no table: each is recorded, and always succeeds."""
        check(current_step())
        self.calls.append(Call(argv, False, options))

    def _answer(self, argv: list[str], probe: bool, options: dict[str, Any],
                table: Mapping[tuple[str, ...], Answer]) -> Result:
        check(current_step())
        self.calls.append(Call(argv, probe, options))
        key = tuple(argv)
        if key not in table:
            kind = "probe" if probe else "command"
            known = "; ".join(" ".join(k) for k in table) or "nothing"
            raise UnexpectedCommand(f"unexpected {kind} on {self.name}: {' '.join(argv)} "
                                    f"(the table knows: {known})")
        return _as_result(argv, table[key])


def _as_result(argv: list[str], answer: Answer) -> Result:
    if isinstance(answer, Result):
        return answer
    if isinstance(answer, bool):
        raise TypeError(f"answer for {argv}: not a bool")
    if isinstance(answer, int):
        return Result(argv, answer)
    if isinstance(answer, Mapping):
        return Result(argv, int(answer.get("exit_code", 0)), str(answer.get("stdout", "")),
                      str(answer.get("stderr", "")))
    if callable(answer):
        return answer(argv)
    raise TypeError(f"answer for {argv}: {answer!r} is not a Result, exit code, mapping or "
                    "callable")


__all__ = ["Answer", "Call", "FileOperations", "Host", "LocalHost", "RecordingHost",
           "UnexpectedCommand"]
