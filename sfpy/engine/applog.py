"""The command log of each application a daemon holds, kept in its state directory.

Why a file per application, written by a logging handler: every command the host layer runs
for a component (its argument vector, each output line, its exit code) is already logged
by :class:`~sfpy.host.runner.ShellRunner` with the component it runs for, and so is every
state change the root process sees. A handler that routes those records by application
needs no change in any component, and a file in the state directory survives a daemon
restart, so ``sflogs`` can still say what a dead incarnation ran (nobody needs ssh to the
server to read a daemon's stderr).

Layout: ``STATE/logs/NAME/<offset>.log``, segments of at most :data:`SEGMENT_BYTES`, the
newest :data:`SEGMENTS` kept (so an application's log is bounded). ``<offset>`` is where the
segment starts in the application's whole log, so a reader's position (``next``) stays
valid across rotation. A new deployment of a name starts a new log (the old one is
removed); logs of applications no longer held are pruned beyond :data:`KEPT_LOGS`.

Each line: ``TIME LEVEL COMPONENT MESSAGE`` (UTC ISO time, the component's complete name,
the message with any newline written as ``\\n``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Bytes of one log segment before the next begins.
SEGMENT_BYTES = 256 * 1024
#: Segments kept per application (older ones are removed): about 1 MiB of log each.
SEGMENTS = 4
#: Logs of applications that are no longer held, kept for ``sflogs`` (oldest removed first).
KEPT_LOGS = 100
#: The most lines one read returns.
MAX_LINES = 10_000


def _segment_name(offset: int) -> str:
    return f"{offset:016d}.log"


def _app_of(record: logging.LogRecord) -> tuple[str | None, str]:
    """The application and component a record is about (None: about no application)."""
    component: Any = getattr(record, "caller", None) or getattr(record, "component", None)
    if component == "-":  # another handler's filter marked it as about no component
        component = None
    if component is not None and not isinstance(component, str):
        try:
            component = component.sf_complete_name()
        except Exception:  # noqa: BLE001 - a log line must not fail
            component = str(component)
    app = getattr(record, "app", None)
    if not isinstance(app, str) or app in ("", "-"):
        app = component.split(":", 1)[0] if isinstance(component, str) and component else None
    return app, component if isinstance(component, str) and component else (app or "-")


class AppLogs(logging.Handler):
    """The per-application logs of one daemon (``STATE/logs``), and the handler writing them.

    ``held(name)`` returns the object that stands for the application now held under that
    name (None when none is): a record is written only for an application held now, or one
    whose log this handler already writes, and a new object under a known name starts a new
    log (a new deployment). Thread-safe.
    """

    def __init__(self, directory: str | os.PathLike[str], held: Callable[[str], Any]) -> None:
        super().__init__(logging.INFO)
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._held = held
        self._current: dict[str, Any] = {}
        self._changed = threading.Condition()

    # -- writing ------------------------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        try:
            app, component = _app_of(record)
            if app is None or "/" in app or app.startswith("."):
                return
            holder = self._held(app)
            with self._changed:
                if holder is not None and self._current.get(app) is not holder:
                    self._start(app, holder)
                elif app not in self._current:
                    if not (self.directory / app).is_dir():
                        return  # no application of that name, and no log of one
                    self._current[app] = None  # a dead one's log (recovery lines go there)
                message = record.getMessage()
                prefix = f"{getattr(record, 'component', '')}: "
                if len(prefix) > 2 and message.startswith(prefix):
                    message = message[len(prefix):]
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                line = (f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {component} "
                        f"{message.replace(chr(10), chr(92) + 'n')}\n")
                self._append(app, line.encode("utf-8", errors="replace"))
                self._changed.notify_all()
        except Exception:  # noqa: BLE001 - logging must never break the daemon
            self.handleError(record)

    def _start(self, app: str, holder: Any) -> None:
        """A new deployment of ``app``: a new log (caller holds the condition)."""
        folder = self.directory / app
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._current[app] = holder
        self._prune()

    def _append(self, app: str, data: bytes) -> None:
        folder = self.directory / app
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        segments = _segments(folder)
        if not segments:
            base, size = 0, 0
        else:
            base = segments[-1][0]
            size = segments[-1][1].stat().st_size
        if size and size + len(data) > SEGMENT_BYTES:
            base, size = base + size, 0
            for _, old in segments[: max(0, len(segments) - SEGMENTS + 1)]:
                with contextlib.suppress(OSError):
                    old.unlink()
        path = folder / _segment_name(base)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def _prune(self) -> None:
        """Keep at most :data:`KEPT_LOGS` logs of applications not held (oldest go first)."""
        try:
            folders = [p for p in self.directory.iterdir() if p.is_dir()]
        except OSError:
            return
        idle = [p for p in folders if self._held(p.name) is None]
        if len(idle) <= KEPT_LOGS:
            return
        idle.sort(key=lambda p: p.stat().st_mtime)
        for folder in idle[: len(idle) - KEPT_LOGS]:
            shutil.rmtree(folder, ignore_errors=True)
            self._current.pop(folder.name, None)

    # -- reading ------------------------------------------------------------------------------
    def exists(self, app: str) -> bool:
        return bool(_segments(self.directory / app))

    def read(self, app: str, component: str | None = None, since: int | None = None,
             lines: int = 50, wait: float = 0.0) -> dict[str, Any]:
        """Lines of ``app``'s log about ``component`` (its subtree; None: all), and ``next``
        (pass it as ``since`` to get what follows). ``since`` None: the last ``lines`` lines.
        With ``since`` given and nothing new, waits up to ``wait`` seconds for a line."""
        lines = max(0, min(int(lines), MAX_LINES))
        deadline = time.monotonic() + max(0.0, wait)
        with self._changed:
            while True:
                result = self._read(app, component, since, lines)
                if result["lines"] or since is None or time.monotonic() >= deadline:
                    return result
                since = result["next"]
                self._changed.wait(max(0.0, deadline - time.monotonic()))

    def _read(self, app: str, component: str | None, since: int | None,
              lines: int) -> dict[str, Any]:
        folder = self.directory / app
        segments = _segments(folder)
        end = segments[-1][0] + segments[-1][1].stat().st_size if segments else 0
        start = segments[0][0] if segments else 0
        if since is not None and since > end:
            since = 0  # a new log began (a new deployment): read it from its start
        position = start if since is None else max(since, start)
        chunks: list[bytes] = []
        for base, path in segments:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if base + len(data) <= position:
                continue
            chunks.append(data[max(0, position - base):])
        text = b"".join(chunks)
        complete = text.rfind(b"\n") + 1  # a line being written is read next time
        found = [line for line in text[:complete].decode("utf-8", errors="replace").splitlines()
                 if _about(line, component)]
        if since is None:
            found = found[-lines:] if lines else []
        else:
            found = found[:MAX_LINES]
        return {"application": app, "component": component, "lines": found,
                "next": position + complete, "lost": since is not None and since < start}


def _about(line: str, component: str | None) -> bool:
    if component is None:
        return True
    parts = line.split(" ", 3)
    if len(parts) < 3:
        return False
    name = parts[2]
    return name == component or name.startswith(component + ":")


def _segments(folder: Path) -> list[tuple[int, Path]]:
    try:
        names = [p for p in folder.iterdir() if p.suffix == ".log" and p.stem.isdigit()]
    except OSError:
        return []
    return sorted((int(p.stem), p) for p in names)


__all__ = ["KEPT_LOGS", "SEGMENTS", "SEGMENT_BYTES", "AppLogs"]
