"""The root process of a host: what ``sfdaemon`` serves as ``rootProcess``, without a transport.

:class:`RootProcess` holds the applications of a host by name (SmartFrog's ProcessCompound
holds them the same way) and runs long work as *operations*: ``deploy`` and ``terminate``
return an operation id at once, the work runs in a thread of its own, and a client follows
it with ``operation(op_id, since, wait)`` (state lines as ``sfrun`` prints them, then the
outcome). Every method takes and returns plain data (str, int, float, bool, None, list,
dict), so :mod:`sfpy.engine.remote` only has to carry it; an error is raised as
:class:`DaemonError` with a code (``in-use``, ``unknown``, ``description``…) that the
transport turns into ``{"error": {...}}`` data.

One :class:`~sfpy.engine.process.Process` per application
    Each application gets a Process of its own with its own journal,
    ``Journal(state_dir/apps/<name>)``. A journal belongs to a Process (components find it
    through ``sf_process().journal``), and a journal per application is what recovery needs:
    a dead daemon's applications are recovered, or found clean, one directory each, and a
    name can be deployed again as soon as its directory is gone. Whatever an application
    makes in its process besides its root (an application a ``Run`` deploys, a detached
    subtree) lands in the same Process and so in the same journal, and is ended with it.
    The price is a scheduler thread per application (started on first use only).

Recovery and re-adoption
    Each application's journal also keeps *notes* (:meth:`sfpy.host.journal.Journal.note`):
    its JSON-form description, how far it got (``deploying``, ``running``, ``terminating``),
    for a part its parent daemon and subtrees, and ``gone:PATH`` for components that ended
    while the rest ran. :meth:`RootProcess.recover` (called before the daemon listens)
    rebuilds each application a dead incarnation had fully started and re-adopts it when
    every component takes back what it made (:meth:`Process.readopt`, the ``adopt`` hook),
    a part only while its parent application still exists on the parent daemon; it cleans
    every other one with :func:`sfpy.host.journal.recover_run` (``on_restart clean``: all
    of them), and keeps what it did (``diagnostics()["recovery"]``).

Parts of applications held elsewhere (``sfProcessHost``)
    A subtree another daemon places here arrives with ``subtree_deploy`` (application name,
    the subtree's path in it, its description, the parent daemon's address, a request id)
    and is held as a *part*: an :class:`Application` whose ``parent`` is that daemon, its
    Process holding each subtree as a root named by its complete name (``web:b``), so the
    components have the same names here as there. The subtree is deployed at once and
    started only when ``subtree_start`` comes (the parent's start pass); ``subtree_terminate``,
    ``subtree_ping`` and ``subtree_resolve`` serve the parent's handle
    (:class:`sfpy.engine.placement.RemoteSubtree`). A part watches its parent daemon: a
    thread pings it every liveness delay and terminates the part's subtrees (their cleanup
    runs here) when the parent's application is gone or ``sfLivenessFactor`` pings in a row
    went unanswered. Placements this daemon makes go through ``placement`` (a
    :class:`~sfpy.engine.placement.Connector` the transport provides), handed to the
    Process of every application.

No lock of this module is held while a remote call is made: remote calls are made by
operation threads, the parent watchers and the handles' hooks (with the lifecycle lock
released), and the methods that answer them take ``_lock`` only to look things up.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfpy.engine.access import Access, AccessError
from sfpy.engine.errors import DeploymentError
from sfpy.engine.prim import HOST_NAME, Prim, State, iter_tree
from sfpy.engine.process import DEFAULT_TERMINATE_TIMEOUT, Process
from sfpy.engine.steps import Activity
from sfpy.engine.termination import TerminationRecord
from sfpy.errors import SfpyError
from sfpy.language.errors import DescriptionError

log = logging.getLogger("sfpy.daemon")

#: The remote API's version. A client and a daemon must agree on it (``hello``).
API_VERSION = 1
#: Names an application may have (also its journal's directory name).
NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$.-]{0,99}$")
#: The longest a client may block in one ``operation`` call (seconds).
MAX_WAIT = 30.0
#: Operations kept after they finished (a reconnecting client may still ask).
KEPT_OPERATIONS = 1000
#: Work that has gone on this long (seconds) gets a ``running`` line.
LONG_ACTIVITY = 1.0
#: Seconds between ``waiting for`` lines while termination waits.
PROGRESS_INTERVAL = 5.0
#: Seconds the rest of an application's process may take to end after its root ended.
SHUTDOWN_TIMEOUT = 30.0
#: Seconds a restarted daemon waits for a parent daemon's answer before re-adopting a part.
PARENT_CHECK_TIMEOUT = 5.0

#: Error codes and the exit code a command returns for each (design.md §4).
EXIT_CODES: dict[str, int] = {
    "refused": 1,
    "forbidden": 1,
    "in-use": 1,
    "unknown": 1,
    "failed": 1,
    "bad-request": 1,
    "internal": 1,
    "description": 3,
    "unreachable": 4,
    "version": 4,
    "timeout": 5,
    "cleanup": 6,
}


class DaemonError(SfpyError):
    """A refusal or failure of the root process, with a code from :data:`EXIT_CODES`."""

    def __init__(self, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return EXIT_CODES.get(self.code, 1)

    def to_dict(self, host: str) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "path": self.path, "host": host}


def _version() -> str:
    from sfpy import __version__

    try:
        from importlib import metadata

        return metadata.version("sfpy")
    except Exception:  # noqa: BLE001 - not installed: the source tree's version
        return __version__


# -- operations --------------------------------------------------------------------------------
class Operation:
    """Long work a client follows: state lines as they happen, then an outcome."""

    def __init__(self, op_id: str, kind: str, app: str, request_id: str | None) -> None:
        self.id = op_id
        self.kind = kind
        self.app = app
        self.request_id = request_id
        self.began = time.monotonic()
        self.lines: list[str] = []
        self.outcome: dict[str, Any] | None = None
        self._changed = threading.Condition()

    def say(self, line: str) -> None:
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def finish(self, outcome: dict[str, Any]) -> None:
        with self._changed:
            if self.outcome is None:
                self.outcome = outcome
            self._changed.notify_all()

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def view(self, since: int, wait: float) -> dict[str, Any]:
        """The lines from index ``since``; blocks up to ``wait`` seconds for one more line or
        the outcome when there is nothing new."""
        deadline = time.monotonic() + max(0.0, min(wait, MAX_WAIT))
        with self._changed:
            while len(self.lines) <= since and self.outcome is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            lines = self.lines[since:] if since < len(self.lines) else []
            return {
                "operation": self.id,
                "kind": self.kind,
                "application": self.app,
                "lines": list(lines),
                "next": max(since, len(self.lines)),
                "done": self.outcome is not None,
                "outcome": None if self.outcome is None else dict(self.outcome),
            }


@dataclass
class Part:
    """A subtree of an application held elsewhere, deployed here (``subtree_deploy``)."""

    path: str
    state: str = "deploying"  # deploying, deployed, starting, running, terminating, ended
    root: Prim | None = None
    record: dict[str, Any] | None = None
    cancel: TerminationRecord | None = None  # terminate as soon as it is built
    ended: threading.Event = field(default_factory=threading.Event)


@dataclass
class Application:
    """One application this daemon holds: its Process, journal and the operations on it."""

    name: str
    process: Process
    journal: Any
    state: str = "deploying"  # deploying, running, terminating, terminated, failed
    root: Prim | None = None
    started_at: float = field(default_factory=time.time)
    following: list[Operation] = field(default_factory=list)
    reported: set[tuple[Any, ...]] = field(default_factory=set)
    next_report: float = 0.0
    ended: threading.Event = field(default_factory=threading.Event)
    outcome: dict[str, Any] | None = None
    #: ``ADDRESS:PORT`` of the daemon holding the application when this is a part of it.
    parent: str | None = None
    parts: dict[str, Part] = field(default_factory=dict)
    watching: bool = False


class RootProcess:
    """Applications of one host by name, and the operations on them.

    ``state_dir`` holds ``apps/<name>/`` (each application's journal) and ``daemon.lock``
    (so two daemons never share a state directory). ``on_stop`` is ``terminate`` (stop()
    terminates every application first) or ``leave`` (they are left to the next incarnation's
    recovery). ``stopped`` is set once :meth:`stop` has finished; the transport then exits.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        host: str = HOST_NAME,
        address: str = "",
        on_stop: str = "terminate",
        on_restart: str = "adopt",
        terminate_timeout: float = DEFAULT_TERMINATE_TIMEOUT,
        process_attributes: dict[str, Any] | None = None,
        access: Access | None = None,
        placement: Any = None,
    ) -> None:
        if on_stop not in ("terminate", "leave"):
            raise ValueError(f"on_stop must be 'terminate' or 'leave', not {on_stop!r}")
        if on_restart not in ("adopt", "clean"):
            raise ValueError(f"on_restart must be 'adopt' or 'clean', not {on_restart!r}")
        self.state_dir = Path(state_dir)
        self.apps_dir = self.state_dir / "apps"
        self.host = host
        self.address = address
        self.on_stop = on_stop
        #: What :meth:`recover` does with an application a dead incarnation held: ``adopt``
        #: (take it back when every component can, else clean it) or ``clean``.
        self.on_restart = on_restart
        self.terminate_timeout = terminate_timeout
        self.process_attributes = dict(process_attributes or {})
        self.access = access or Access()
        #: How this daemon reaches others (:class:`sfpy.engine.placement.Connector`); None:
        #: subtrees placed elsewhere cannot be deployed (``sfProcessHost`` is then ignored).
        self.placement = placement
        #: Records of parts that ended, for the parent's next ping (the last 1,000).
        self._ended_parts: dict[tuple[str, str], dict[str, Any]] = {}
        self.started = time.time()
        self.version = _version()
        self.stopped = threading.Event()
        self.recovery: list[str] = []
        self.errors: deque[dict[str, Any]] = deque(maxlen=50)
        self._lock = threading.RLock()
        self._apps: dict[str, Application] = {}
        self._ops: dict[str, Operation] = {}
        self._requests: dict[str, str] = {}
        self._stopping = False
        self._stop_callbacks: list[Callable[[], None]] = []
        self._ticker: threading.Thread | None = None
        self.apps_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd: int | None = self._take_daemon_lock()

    # -- start and stop ----------------------------------------------------------------------
    def _take_daemon_lock(self) -> int:
        import fcntl

        path = self.state_dir / "daemon.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DaemonError(
                "refused", f"state directory {self.state_dir} is in use by another sfdaemon"
            ) from None
        return fd

    def recover(self) -> list[str]:
        """Take back, or clean, what dead previous incarnations left (their applications'
        journals); returns (and keeps) one line per thing done or left.

        With ``on_restart`` ``adopt`` (the default) an application that had fully started
        is rebuilt from the description its journal keeps and re-adopted when every
        component can take back what it made (:meth:`Process.readopt`; a part of an
        application held elsewhere only while that application still exists there); any
        other is cleaned by the journal's cleaners and no longer listed."""
        from sfpy.host.journal import recover_run, run_directories

        lines: list[str] = []
        for run_dir in run_directories(self.apps_dir):
            name = run_dir.name
            if self.on_restart == "adopt" and NAME.match(name):
                adopted, why = self._readopt(run_dir)
                if adopted:
                    lines.append(f"{name}: re-adopted ({why})")
                    continue
                if why:
                    lines.append(f"{name}: not re-adopted: {why}")
            report = recover_run(run_dir)
            if report.live:
                lines.append(f"{name}: held by a live process, not touched")
                continue
            for line in report.done:
                lines.append(f"{name}: {line}")
            for line in report.left:
                lines.append(f"{name}: left: {line}")
            if report.error:
                lines.append(f"{name}: {report.error}")
            if report.clean:
                lines.append(
                    f"{name}: application of a previous daemon cleaned, no longer listed"
                    if report.done else f"{name}: application of a previous daemon, nothing left"
                )
                shutil.rmtree(run_dir, ignore_errors=True)
        for line in lines:
            log.info("recovery: %s", line, extra={"app": line.split(":", 1)[0]})
        with self._lock:
            self.recovery.extend(lines)
        return lines

    def _readopt(self, run_dir: Path) -> tuple[bool, str]:
        """Re-adopt the application whose journal is in ``run_dir``: (True, what) when it
        is live again, (False, why not) when it is to be cleaned (why is empty when there
        is nothing to say: no notes, or a live or unreadable run recovery reports)."""
        from sfpy.engine.process import AdoptionRefused
        from sfpy.host.journal import Journal, JournalError

        try:
            journal = Journal.adopt(run_dir)
        except (JournalError, OSError):
            return False, ""
        name = run_dir.name
        app: Application | None = None
        try:
            notes = journal.notes()
            kind = notes.get("kind")
            if kind not in ("application", "part"):
                journal.close()
                return False, ""
            if kind == "application":
                app = self._new_application(name, journal)
                what = self._readopt_application(app, notes)
            else:
                app = self._new_application(name, journal)
                what = self._readopt_part(app, notes)
            return True, what
        except (AdoptionRefused, JournalError, DescriptionError) as error:
            why = str(error)
        except Exception as error:  # noqa: BLE001 - cleaned instead, and said why
            log.exception("re-adoption failed", extra={"app": name})
            why = f"{type(error).__name__}: {error}"
        if app is not None:
            app.process.scheduler.stop()
        journal.close()
        return False, why

    def _readopt_application(self, app: Application, notes: dict[str, str]) -> str:
        from sfpy.engine.process import AdoptionRefused
        from sfpy.language.unparse import from_json

        state = notes.get("state")
        if state != "running":
            raise AdoptionRefused(
                "it had not finished deploying" if state == "deploying" else f"it was {state}"
            )
        description = from_json(notes["description"])
        _prune(description, app.name, notes)
        root, = app.process.readopt([(description, app.name)], app.journal.open_entries())
        app.started_at = _float(notes.get("started"), app.started_at)
        with self._lock:
            app.root = root
            app.state = "running"
            self._apps[app.name] = app
        threading.Thread(target=self._live, args=(app, root), name=f"sfdaemon-app-{app.name}",
                         daemon=True).start()
        return f"{sum(1 for _ in iter_tree(root))} components running again"

    def _readopt_part(self, app: Application, notes: dict[str, str]) -> str:
        """A part of an application held elsewhere: re-adopted only while that application
        still exists on its daemon (asked here), its running subtrees all at once."""
        from sfpy.engine.placement import ConnectorError
        from sfpy.engine.process import AdoptionRefused
        from sfpy.language.unparse import from_json

        parent = notes.get("parent") or ""
        paths = [key[len("part:"):] for key in notes if key.startswith("part:")]
        running = [path for path in paths if notes.get(f"part-state:{path}") == "running"]
        if not running:
            raise AdoptionRefused("no part of it had started")
        if self.placement is None:
            raise AdoptionRefused(f"its application is held by {parent}, which this daemon "
                                  "cannot reach")
        for path in running:
            # the parent's handle of each subtree, not only an application of that name (a
            # new one deployed meanwhile under the same name has no handle running there)
            try:
                self.placement.call(parent, "ping", path, timeout=PARENT_CHECK_TIMEOUT)
            except ConnectorError as error:
                raise AdoptionRefused(
                    f"its application on {parent} is gone or unreachable: {error.message}"
                ) from None
        roots = []
        for path in running:
            description = from_json(notes[f"part:{path}"])
            _prune(description, path, notes)
            roots.append((description, path))
        app.parent = parent
        adopted = app.process.readopt(roots, app.journal.open_entries())
        app.started_at = _float(notes.get("started"), app.started_at)
        parts = [Part(root.sf_complete_name(), state="running", root=root) for root in adopted]
        with self._lock:
            for part in parts:
                app.parts[part.path] = part
            app.state = "running"
            self._apps[app.name] = app
        for part in parts:
            threading.Thread(target=self._live_part, args=(app, part),
                             name=f"sfdaemon-part-{part.path}", daemon=True).start()
        self._watch_parent(app, adopted[0])
        return (f"{len(parts)} part{'s' if len(parts) > 1 else ''} of the application on "
                f"{parent} running again")

    def _live_part(self, app: Application, part: Part) -> None:
        assert part.root is not None
        final = part.root.wait_terminated()
        self._part_ended(app, part, final)

    def on_stopped(self, callback: Callable[[], None]) -> None:
        """``callback()`` once :meth:`stop` has finished (the transport shuts down there)."""
        with self._lock:
            self._stop_callbacks.append(callback)

    def stop(self) -> dict[str, Any]:
        """Terminate the applications (``on_stop terminate``) in a thread, then stop. Returns
        at once; idempotent."""
        with self._lock:
            if self._stopping:
                return {"stopping": True, "applications": sorted(self._apps)}
            self._stopping = True
            names = sorted(self._apps)
        threading.Thread(target=self._stop, name="sfdaemon-stop", daemon=True).start()
        return {"stopping": True, "applications": names}

    def _stop(self) -> None:
        log.info("stopping (%s the applications)", self.on_stop, extra={"app": "-"})
        if self.on_stop == "terminate":
            record = TerminationRecord.normal(f"sfdaemon on {self.host} stopping")
            with self._lock:
                apps = list(self._apps.values())
            deadline = time.monotonic() + SHUTDOWN_TIMEOUT + self.terminate_timeout
            for app in apps:
                # asked again until it ends: one still deploying registers its root later
                while not app.ended.is_set() and time.monotonic() < deadline:
                    app.process.terminate_all(record)
                    app.ended.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        self.close()

    def close(self) -> None:
        """Release the state directory and tell the transport (idempotent)."""
        with self._lock:
            if self.stopped.is_set():
                return
            self.stopped.set()
            callbacks = list(self._stop_callbacks)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
        for callback in callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - stopping anyway
                log.exception("stop callback failed", extra={"app": "-"})

    # -- who may call what -------------------------------------------------------------------
    def authorize(self, method: str, peer: Any) -> None:
        """The one check every remote method passes through before it runs: the caller
        (``peer``, the :class:`~sfpy.engine.tls.Identity` of its certificate; None without
        TLS) must hold the role :data:`sfpy.engine.access.METHOD_ROLES` gives ``method``
        (an unlisted method needs the strictest). Error ``forbidden`` (exit 1) otherwise."""
        try:
            self.access.check(method, peer, self.host)
        except AccessError as error:
            raise DaemonError("forbidden", error.message) from None

    # -- the API -----------------------------------------------------------------------------
    def hello(self, api_version: Any) -> dict[str, Any]:
        """The version check every client makes first."""
        if api_version != API_VERSION or isinstance(api_version, bool):
            raise DaemonError(
                "version",
                f"this sfdaemon ({self.version}) speaks API version {API_VERSION}; the client "
                f"speaks {api_version!r}: use an sfpy of the same API version",
            )
        return {
            "api": API_VERSION,
            "version": self.version,
            "host": self.host,
            "address": self.address,
            "pid": os.getpid(),
        }

    def deploy(self, name: Any, description_json: Any, request_id: Any = None) -> dict[str, Any]:
        """Start deploying ``description_json`` (the JSON form) as application ``name``; returns
        ``{"operation": id}`` at once. A request id seen before returns that request's
        operation (a reconnecting client gets its own outcome)."""
        _check_name(name)
        if not isinstance(description_json, str):
            raise DaemonError("bad-request", "the description must be its JSON form (a string)")
        request = _check_request(request_id)
        with self._lock:
            known = self._known_request(request, "deploy", name)
            if known is not None:
                return known
            self._refuse_when_stopping()
        from sfpy.language.unparse import from_json

        try:
            description = from_json(description_json)
            Process(f"check-{name}").check(description, name)
        except DescriptionError as error:
            raise DaemonError("description", error.render(), name) from None
        host = description.attributes.get("sfProcessHost")
        if (isinstance(host, str) and self.placement is not None
                and not self.placement.is_here(host)):
            raise DaemonError(
                "description", f"{name} has sfProcessHost {host!r}: an application root is "
                f"deployed by the daemon it is sent to; sfstart it on {host}", name,
            )
        with self._lock:
            known = self._known_request(request, "deploy", name)
            if known is not None:
                return known
            self._refuse_when_stopping()
            if name in self._apps:
                raise DaemonError(
                    "in-use", f"application name {name!r} is already in use on {self.host}", name
                )
            app = self._new_application(name)
            op = self._new_operation("deploy", name, request)
            app.following.append(op)
            self._apps[name] = app
        log.info("deploying (operation %s)", op.id, extra={"app": name})
        threading.Thread(
            target=self._run_application, args=(app, op, description, description_json),
            name=f"sfdaemon-deploy-{name}", daemon=True,
        ).start()
        self._ensure_ticker()
        return {"operation": op.id}

    def terminate(
        self, name: Any, abnormal: Any = False, detach: Any = False, reason: Any = None,
        request_id: Any = None,
    ) -> dict[str, Any]:
        """Terminate application ``name``, or its component ``name:path`` (``detach``: leave
        its parent first, so the rest of the application keeps running). Returns
        ``{"operation": id}`` at once."""
        if not isinstance(name, str) or not name:
            raise DaemonError("bad-request", "terminate needs an application name")
        request = _check_request(request_id)
        text = reason if isinstance(reason, str) and reason else f"terminated by a client of {self.host}"
        record = (TerminationRecord.abnormal if abnormal is True else TerminationRecord.normal)(text)
        with self._lock:
            known = self._known_request(request, "terminate", name)
            if known is not None:
                return known
            app_name, _, _ = name.partition(":")
            app = self._apps.get(app_name)
            if app is None:
                raise DaemonError("unknown", f"no application {app_name!r} on {self.host}", name)
            target = self._component(app, name)
            op = self._new_operation("terminate", name, request)
            app.following.append(op)
        log.info("terminating %s (operation %s)", name, op.id, extra={"app": app_name})
        threading.Thread(
            target=self._run_terminate, args=(app, op, target, record, detach is True),
            name=f"sfdaemon-terminate-{app_name}", daemon=True,
        ).start()
        return {"operation": op.id}

    def operation(self, op_id: Any, since: Any = 0, wait: Any = 0.0) -> dict[str, Any]:
        """An operation's lines from index ``since`` and, once done, its outcome; blocks up
        to ``wait`` seconds (at most :data:`MAX_WAIT`) when there is nothing new."""
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            raise DaemonError("bad-request", "since must be an integer >= 0")
        if isinstance(wait, bool) or not isinstance(wait, (int, float)):
            raise DaemonError("bad-request", "wait must be a number of seconds")
        with self._lock:
            op = self._ops.get(op_id) if isinstance(op_id, str) else None
        if op is None:
            raise DaemonError("unknown", f"no operation {op_id!r} on {self.host}")
        return op.view(since, float(wait))

    # -- parts of applications held elsewhere (sfProcessHost) --------------------------------
    def subtree_deploy(
        self, name: Any, path: Any, description_json: Any, parent: Any, request_id: Any = None
    ) -> dict[str, Any]:
        """Build and deploy (not start) the subtree ``path`` of application ``name``, which
        the daemon at ``parent`` holds; returns ``{"operation": id}`` at once. The operation
        ends once the subtree is deployed (exit 0) or failed and was cleaned up here (1)."""
        _check_name(name)
        path = _check_path(name, path)
        if not isinstance(parent, str) or not parent:
            raise DaemonError("bad-request", "parent must be the parent daemon's ADDRESS:PORT")
        if not isinstance(description_json, str):
            raise DaemonError("bad-request", "the description must be its JSON form (a string)")
        request = _check_request(request_id)
        with self._lock:
            known = self._known_request(request, "subtree-deploy", path)
            if known is not None:
                return known
            self._refuse_when_stopping()
        from sfpy.language.unparse import from_json

        try:
            description = from_json(description_json)
            Process(f"check-{name}").check(description, path)
        except DescriptionError as error:
            raise DaemonError("description", error.render(), path) from None
        with self._lock:
            known = self._known_request(request, "subtree-deploy", path)
            if known is not None:
                return known
            self._refuse_when_stopping()
            app = self._apps.get(name)
            if app is None:
                app = self._new_application(name)
                app.parent = parent
                self._apps[name] = app
            elif app.parent != parent:
                raise DaemonError(
                    "in-use", f"application name {name!r} is already in use on {self.host}", name
                )
            existing = app.parts.get(path)
            if existing is not None and not existing.ended.is_set():
                raise DaemonError("in-use", f"{path} is already deployed on {self.host}", path)
            part = Part(path)
            app.parts[path] = part
            self._ended_parts.pop((name, path), None)
            op = self._new_operation("subtree-deploy", path, request)
        log.info("deploying part %s for %s (operation %s)", path, parent, op.id,
                 extra={"app": name})
        threading.Thread(
            target=self._run_part, args=(app, part, op, description, description_json),
            name=f"sfdaemon-part-{path}", daemon=True,
        ).start()
        return {"operation": op.id}

    def subtree_start(self, name: Any, path: Any, request_id: Any = None) -> dict[str, Any]:
        """Start a deployed subtree (the parent's start pass reached it); an operation."""
        app, part = self._part(name, path)
        request = _check_request(request_id)
        with self._lock:
            known = self._known_request(request, "subtree-start", part.path)
            if known is not None:
                return known
            op = self._new_operation("subtree-start", part.path, request)
        threading.Thread(
            target=self._start_part, args=(app, part, op),
            name=f"sfdaemon-part-start-{part.path}", daemon=True,
        ).start()
        return {"operation": op.id}

    def subtree_terminate(
        self, name: Any, path: Any, record: Any = None, request_id: Any = None
    ) -> dict[str, Any]:
        """Terminate a subtree with ``record`` (a termination record as data); an operation
        that ends once its cleanup has run here (and the part is gone, if it was the last)."""
        app, part = self._part(name, path)
        request = _check_request(request_id)
        data = record if isinstance(record, dict) else {}
        from sfpy.engine.placement import record_from_data

        final = record_from_data(
            {"type": "normal", "description": f"terminated by {app.parent}", **data}
        )
        with self._lock:
            known = self._known_request(request, "subtree-terminate", part.path)
            if known is not None:
                return known
            op = self._new_operation("subtree-terminate", part.path, request)
            if part.root is None:
                part.cancel = part.cancel or final
        threading.Thread(
            target=self._terminate_part, args=(app, part, op, final),
            name=f"sfdaemon-part-end-{part.path}", daemon=True,
        ).start()
        return {"operation": op.id}

    def subtree_ping(self, name: Any, path: Any) -> dict[str, Any]:
        """``{"state": ...}`` of a subtree; ``"ended"`` with its ``record`` once it has
        ended (kept for the parent's next ping after the part is gone)."""
        _check_name(name)
        path = _check_path(name, path)
        with self._lock:
            ended = self._ended_parts.get((name, path))
            app = self._apps.get(name)
            part = None if app is None or app.parent is None else app.parts.get(path)
        if part is None:
            if ended is not None:
                return {"host": self.host, "state": "ended", "record": ended}
            raise DaemonError("unknown", f"no part {path!r} on {self.host}", path)
        if part.ended.is_set():
            return {"host": self.host, "state": "ended", "record": part.record}
        return {"host": self.host, "state": part.state}

    def subtree_resolve(self, name: Any, path: Any, reference: Any) -> dict[str, Any]:
        """Resolve ``reference`` (text: an attribute name, or ``a:b``, ``ATTRIB x``…) from
        the component ``path``: ``{"value": DATA}`` (the JSON form's value encoding) or
        ``{"component": PATH, "sfClass": str}`` for a component."""
        _check_name(name)
        if not isinstance(path, str) or not isinstance(reference, str) or not reference:
            raise DaemonError("bad-request", "subtree_resolve needs a path and a reference")
        with self._lock:
            app = self._apps.get(name)
            if app is None:
                raise DaemonError("unknown", f"no application {name!r} on {self.host}", name)
            target = self._component(app, path)
        if target is None:
            raise DaemonError("unknown", f"no component {path!r} on {self.host}", path)
        from sfpy.engine.errors import EngineError

        try:
            value = target.sf_resolve(reference)
        except EngineError as error:
            raise DaemonError("unknown", str(error), path) from None
        if isinstance(value, Prim):
            return {"component": value.sf_complete_name(), "sfClass": value.sf_class_name()}
        if hasattr(value, "sf_complete_name") and hasattr(value, "sf_lookup"):
            return {"component": value.sf_complete_name(), "sfClass": None}
        return {"value": _plain(value)}

    def _part(self, name: Any, path: Any) -> tuple[Application, Part]:
        _check_name(name)
        path = _check_path(name, path)
        with self._lock:
            app = self._apps.get(name)
            part = None if app is None or app.parent is None else app.parts.get(path)
            if app is None or part is None:
                raise DaemonError("unknown", f"no part {path!r} on {self.host}", path)
        return app, part

    def _run_part(
        self, app: Application, part: Part, op: Operation, description: Any, text: str
    ) -> None:
        """Deploy a part, report, then wait for its end."""
        self._note(app, {"kind": "part", "parent": app.parent or "", f"part:{part.path}": text,
                         f"part-state:{part.path}": "deploying",
                         "started": f"{app.started_at:.3f}"})
        try:
            root = app.process.deploy_subtree(description, part.path)
        except DeploymentError as error:
            record = error.record
            self._record_error(app.name, record.id, f"deployment failed: {record.description}")
            op.finish(self._part_outcome(app, part, 1, record, "failed"))
            self._part_ended(app, part, record)
            return
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            log.exception("deployment of %s crashed", part.path, extra={"app": app.name})
            record = TerminationRecord.abnormal(f"{type(error).__name__}: {error}", id=part.path)
            op.finish(self._part_outcome(app, part, 1, record, "failed"))
            self._part_ended(app, part, record)
            return
        with self._lock:
            part.root = root
            cancel = part.cancel
            if part.state == "deploying":
                part.state = "deployed"
        if cancel is not None:
            root.sf_terminate(cancel)
        if root.state is not State.DEPLOYED or cancel is not None:
            final = root.wait_terminated() or cancel
            op.finish(self._part_outcome(
                app, part, 1, final, "terminated",
                f"{part.path} terminated on {self.host} while deploying"))
        else:
            op.finish(self._part_outcome(app, part, 0, None, "deployed"))
            self._watch_parent(app, root)
        final = root.wait_terminated()
        self._part_ended(app, part, final)

    def _start_part(self, app: Application, part: Part, op: Operation) -> None:
        root = part.root
        if root is None:
            op.finish(self._part_outcome(app, part, 1, None, "failed",
                                         f"{part.path} is not deployed on {self.host}"))
            return
        with self._lock:
            part.state = "starting"
        try:
            app.process.start_deployed(root)
        except DeploymentError as error:
            record = error.record
            self._record_error(app.name, record.id, f"start failed: {record.description}")
            op.finish(self._part_outcome(app, part, 1, record, "failed"))
            return
        if not root.sf_is_started:  # ended after it started: the parent's ping learns it
            final = root.wait_terminated()
            op.finish(self._part_outcome(app, part, 1, final, "terminated",
                                         f"{part.path} terminated on {self.host} while starting"))
            return
        self._note(app, {f"part-state:{part.path}": "running"})
        with self._lock:
            part.state = "running"
            if all(p.state in ("running", "ended") for p in app.parts.values()):
                app.state = "running"
        op.finish(self._part_outcome(app, part, 0, None, "running"))

    def _terminate_part(
        self, app: Application, part: Part, op: Operation, record: TerminationRecord
    ) -> None:
        root = part.root
        if root is not None:
            with self._lock:
                if part.state != "ended":
                    part.state = "terminating"
            root.sf_terminate(record)
        bound = SHUTDOWN_TIMEOUT + self.terminate_timeout
        if not part.ended.wait(bound):
            op.finish(self._part_outcome(app, part, 5, None, "terminating",
                                         f"{part.path} still terminating on {self.host}"))
            return
        with self._lock:
            last = all(p.ended.is_set() for p in app.parts.values())
        if last:
            app.ended.wait(bound)
        failures = [f"{path}: {message}" for path, message in app.process.cleanup_failures
                    if path == part.path or path.startswith(part.path + ":")]
        left = list((app.outcome or {}).get("left") or []) if last else []
        outcome = self._part_outcome(app, part, 6 if failures or left else 0, None, "terminated")
        outcome.update(cleanup_failures=failures, left=left)
        op.finish(outcome)

    def _part_outcome(
        self, app: Application, part: Part, code: int, record: TerminationRecord | None,
        state: str, message: str | None = None,
    ) -> dict[str, Any]:
        return {
            "exit": code, "state": state, "record": None if record is None else record.to_dict(),
            "message": message or f"{part.path} {state} on {self.host}",
            "cleanup_failures": [], "left": [],
        }

    def _part_ended(self, app: Application, part: Part, record: TerminationRecord | None) -> None:
        """A part's subtree has ended (its cleanup done): remember its record for the
        parent's ping; the application ends with its last part."""
        data = (record or TerminationRecord.normal(f"{part.path} ended")).to_dict()
        with self._lock:
            part.record = data
            part.state = "ended"
            part.ended.set()
            self._ended_parts[(app.name, part.path)] = data
            while len(self._ended_parts) > KEPT_OPERATIONS:
                del self._ended_parts[next(iter(self._ended_parts))]
            last = all(p.ended.is_set() for p in app.parts.values())
            if last and self._apps.get(app.name) is app:
                del self._apps[app.name]  # a new part of the name makes a new application
        if last:
            final = record or TerminationRecord.normal(f"{app.name} ended")
            self._end(app, final, "terminated" if final.is_normal else "failed")

    def _watch_parent(self, app: Application, root: Prim) -> None:
        """Ping the parent daemon every liveness delay (one thread per part application);
        terminate every subtree of the part when the parent application is gone or its
        daemon missed ``sfLivenessFactor`` pings in a row."""
        if self.placement is None or app.parent is None:
            return
        try:
            delay, factor = root.sf_liveness_settings()
        except Exception:  # noqa: BLE001 - wrong settings: the defaults
            delay, factor = 15.0, 2
        with self._lock:
            if app.watching or delay <= 0:
                return
            app.watching = True
        threading.Thread(
            target=self._watch_parent_loop, args=(app, delay, factor),
            name=f"sfdaemon-watch-{app.name}", daemon=True,
        ).start()

    def _watch_parent_loop(self, app: Application, delay: float, factor: int) -> None:
        from sfpy.engine.placement import ConnectorError

        assert app.parent is not None and self.placement is not None
        misses = 0
        why = ""
        while not app.ended.wait(delay):
            if self.stopped.is_set():
                return
            try:
                self.placement.call(app.parent, "ping", app.name, timeout=max(1.0, delay))
            except ConnectorError as error:
                if error.code in ("unknown", "failed"):
                    why = f"its application is gone on {app.parent}: {error.message}"
                    break
                misses += 1
                if misses >= factor:
                    why = (f"parent daemon {app.parent} missed {misses} pings in a row "
                           f"({delay:g}s apart): {error.message}")
                    break
                continue
            except Exception as error:  # noqa: BLE001 - counted as a miss
                misses += 1
                why = str(error)
                if misses >= factor:
                    break
                continue
            misses = 0
        else:
            return
        log.warning("terminating the part: %s", why, extra={"app": app.name})
        self._record_error(app.name, None, f"parent gone: {why}")
        record = TerminationRecord.abnormal(f"liveness failure: {why}", id=app.name)
        with self._lock:
            parts = list(app.parts.values())
        for part in parts:
            with self._lock:
                if part.root is None:
                    part.cancel = part.cancel or record
            if part.root is not None:
                part.root.sf_terminate(record)

    def list(self) -> dict[str, Any]:
        """The applications held, by name."""
        with self._lock:
            apps = sorted(self._apps.values(), key=lambda a: a.name)
        return {"host": self.host, "applications": [self._summary(app) for app in apps]}

    def tree(self, name: Any) -> dict[str, Any]:
        """The component tree of application ``name`` (or of its component ``name:path``)."""
        if not isinstance(name, str) or not name:
            raise DaemonError("bad-request", "tree needs an application name")
        with self._lock:
            app = self._apps.get(name.partition(":")[0])
            if app is None:
                raise DaemonError("unknown", f"no application {name.partition(':')[0]!r} on {self.host}", name)
            target = self._component(app, name)
        summary = self._summary(app)
        if target is None and app.parent is not None:
            summary["tree"] = {
                "name": app.name, "path": app.name, "state": app.state.upper(),
                "sfClass": None, "host": self.host, "attributes": {}, "record": None,
                "parent": app.parent,
                "children": [self._node(part.root) for part in list(app.parts.values())
                             if part.root is not None],
            }
            return summary
        summary["tree"] = None if target is None else self._node(target)
        return summary

    def ping(self, name: Any = None) -> dict[str, Any]:
        """The daemon answers; with ``name``, that application (or component) exists and is
        not terminated."""
        result: dict[str, Any] = {"host": self.host, "alive": True, "uptime": self.uptime()}
        if name is None:
            return result
        if not isinstance(name, str) or not name:
            raise DaemonError("bad-request", "ping takes an application name or nothing")
        with self._lock:
            app = self._apps.get(name.partition(":")[0])
            if app is None:
                raise DaemonError("unknown", f"no application {name.partition(':')[0]!r} on {self.host}", name)
            target = self._component(app, name)
        state = app.state if target is None else _state_name(target)
        if state in ("TERMINATED", "FAILED", "terminated", "failed"):
            raise DaemonError("failed", f"{name} on {self.host} has terminated", name)
        result.update({"name": name, "state": state})
        return result

    def diagnostics(self) -> dict[str, Any]:
        """Versions, uptime, load and memory, applications, recent errors, recovery."""
        import platform

        import psutil

        me = psutil.Process()
        memory = psutil.virtual_memory()
        with self._lock:
            errors = list(self.errors)
            recovery = list(self.recovery)
        return {
            "host": self.host,
            "address": self.address,
            "version": self.version,
            "api": API_VERSION,
            "python": platform.python_version(),
            "pid": os.getpid(),
            "uptime": self.uptime(),
            "load": list(os.getloadavg()),
            "rss": me.memory_info().rss,
            "threads": me.num_threads(),
            "memory": {"total": memory.total, "available": memory.available},
            "state_dir": str(self.state_dir),
            "on_stop": self.on_stop,
            "applications": self.list()["applications"],
            "errors": errors,
            "recovery": recovery,
            "remote_calls": dict(getattr(self.placement, "calls_by_method", {}) or {}),
        }

    def uptime(self) -> float:
        return round(time.time() - self.started, 3)

    # -- inside ------------------------------------------------------------------------------
    def _refuse_when_stopping(self) -> None:
        if self._stopping:
            raise DaemonError("refused", f"sfdaemon on {self.host} is stopping")

    def _known_request(self, request: str | None, kind: str, name: str) -> dict[str, Any] | None:
        if request is None:
            return None
        op_id = self._requests.get(f"{kind}/{request}")
        if op_id is None or op_id not in self._ops:
            return None
        return {"operation": op_id, "repeated": True}

    def _new_operation(self, kind: str, name: str, request: str | None) -> Operation:
        op = Operation(f"{kind}-{secrets.token_hex(6)}", kind, name, request)
        self._ops[op.id] = op
        if request is not None:
            self._requests[f"{kind}/{request}"] = op.id
        while len(self._ops) > KEPT_OPERATIONS:
            oldest = next(iter(self._ops.values()))
            if not oldest.done:
                break
            del self._ops[oldest.id]
            if oldest.request_id is not None:
                self._requests.pop(f"{oldest.kind}/{oldest.request_id}", None)
        return op

    def _new_application(self, name: str, journal: Any = None) -> Application:
        """A new application and its Process; ``journal``: a dead incarnation's, taken over
        (re-adoption), else a new one in ``apps/<name>``."""
        from sfpy.host.journal import Journal, JournalError

        if journal is None:
            try:
                journal = Journal(self.apps_dir / name, run_id=name)
            except JournalError as error:
                raise DaemonError("refused", f"application {name!r}: {error}", name) from None
        process = Process(
            "rootProcess", journal=journal, terminate_timeout=self.terminate_timeout,
            attributes=self.process_attributes, placement=self.placement,
        )
        app = Application(name, process, journal)
        process.add_observer(lambda component, state: self._state_changed(app, component, state))
        process.on_detach = lambda path: self._note(app, {f"gone:{path}": "detached"})
        process.remote_parent = lambda path: self._remote_parent(app, path)
        return app

    def _remote_parent(self, app: Application, path: str) -> Any:
        """``PARENT`` of a part's subtree root ``path``: its parent component on the parent
        daemon (a :class:`~sfpy.engine.placement.RemoteComponent`); None for the rest."""
        if app.parent is None or self.placement is None or path not in app.parts:
            return None
        from sfpy.engine.placement import RemoteComponent, RemoteRootProcess

        return RemoteComponent(RemoteRootProcess(self.placement, app.parent, app.parent),
                               path.rsplit(":", 1)[0])

    def _note(self, app: Application, values: dict[str, str]) -> None:
        """Keep what re-adoption needs in the application's journal (docs/operations.md)."""
        try:
            app.journal.note(values)
        except Exception as error:  # noqa: BLE001 - the application goes on; recovery cleans
            log.warning("journal note %s not written: %s", ", ".join(values), error,
                        extra={"app": app.name})

    def _state_changed(self, app: Application, component: Prim, state: State) -> None:
        if state is State.CONSTRUCTED:
            return
        if state is State.TERMINATING and component.sf_parent() is None:
            # a root begins to terminate: never re-adopt it after a crash from here on
            path = component.sf_complete_name()
            if app.parent is None and path == app.name:
                self._note(app, {"state": "terminating"})
            elif app.parent is not None and path in app.parts:
                self._note(app, {f"part-state:{path}": "terminating"})
        elif state is State.TERMINATED and component.sf_parent() is not None:
            root = component.sf_root()
            if root.state is State.STARTED:
                # one component ended while the rest runs on: not rebuilt after a restart
                self._note(app, {f"gone:{component.sf_complete_name()}": "terminated"})
        path = component.sf_complete_name()
        record = component.termination_record
        extra = ""
        if state is State.TERMINATED and record is not None and record.id == path and not record.is_normal:
            extra = f"  {record.type}: {record.description}"
        for op in list(app.following):
            op.say(f"{path}  {state.name}  {op.elapsed():.2f}s{extra}")
        level = logging.WARNING if extra else logging.INFO
        log.log(level, "%s%s", state.name, extra, extra={"app": app.name, "component": path})

    def _run_application(
        self, app: Application, op: Operation, description: Any, text: str
    ) -> None:
        """The deployment, then the application's life until it terminated."""
        self._note(app, {"kind": "application", "description": text, "state": "deploying",
                         "started": f"{app.started_at:.3f}"})
        try:
            root = app.process.deploy(description, app.name)
        except DeploymentError as error:
            record = error.record
            self._record_error(app.name, record.id, f"deployment failed: {record.description}")
            outcome = self._end(app, record, "failed")
            op.finish({**outcome, "exit": 6 if outcome["exit"] == 6 else 1})
            return
        except BaseException as error:  # noqa: BLE001 - reported to the client
            log.exception("deployment crashed", extra={"app": app.name})
            record = TerminationRecord.abnormal(f"{type(error).__name__}: {error}", id=app.name)
            self._record_error(app.name, app.name, record.description or "")
            outcome = self._end(app, record, "failed")
            op.finish({**outcome, "exit": 6 if outcome["exit"] == 6 else 1})
            return
        if root.state is State.STARTED:
            self._note(app, {"state": "running"})
        with self._lock:
            app.root = root
            if app.state == "deploying":
                app.state = "running"
        op.finish({
            "exit": 0, "state": "running", "record": None,
            "message": f"application {app.name} is running on {self.host}",
            "cleanup_failures": [], "left": [],
        })
        self._forget_follower(app, op)
        self._live(app, root)

    def _live(self, app: Application, root: Prim) -> None:
        """An application's life once it runs: wait for its root's end, then end it."""
        final = root.wait_terminated()
        state = "terminated" if final is None or final.is_normal else "failed"
        if final is not None and not final.is_normal:
            self._record_error(app.name, final.id, f"terminated abnormally: {final.description}")
        self._end(app, final, state)

    def _end(self, app: Application, record: TerminationRecord | None, state: str) -> dict[str, Any]:
        """The application's root ended: end the rest of its process, close its journal,
        forget it. Returns the outcome (exit 0, or 6 when cleanup was incomplete)."""
        from sfpy.host.journal import CleanupError, clean, describe

        with self._lock:
            app.state = "terminating" if app.state != "failed" else app.state
        process = app.process
        process.terminate_all(TerminationRecord.normal(f"application {app.name} ended"))
        still = [] if process.wait_empty(SHUTDOWN_TIMEOUT + self.terminate_timeout) else sorted(process.applications())
        process.scheduler.stop()
        left: list[str] = [f"still terminating: {name}" for name in still]
        for entry in app.journal.open_entries():
            try:
                line = clean(entry)
                for op in list(app.following):
                    op.say(f"cleaned up after {entry.owner}: {line}")
            except CleanupError as error:
                left.append(f"{describe(entry)}: {error}")
                continue
            app.journal.done(entry.id)
        if left:
            app.journal.close()  # kept for the next incarnation's recovery
        else:
            app.journal.discard()
        failures = [f"{path}: {message}" for path, message in process.cleanup_failures]
        for line in failures + left:
            self._record_error(app.name, None, f"cleanup incomplete: {line}")
        outcome = {
            "exit": 6 if failures or left else 0,
            "state": state,
            "record": None if record is None else record.to_dict(),
            "message": f"application {app.name} {state} on {self.host}",
            "cleanup_failures": failures,
            "left": left,
        }
        with self._lock:
            app.state = state
            app.outcome = outcome
            if self._apps.get(app.name) is app:
                del self._apps[app.name]
            followers = list(app.following)
            app.following.clear()
        log.info("%s", outcome["message"], extra={"app": app.name})
        app.ended.set()
        for op in followers:
            if op.kind == "terminate" and op.app == app.name:
                op.finish(outcome)
        return outcome

    def _run_terminate(
        self, app: Application, op: Operation, target: Prim | None, record: TerminationRecord,
        detach: bool,
    ) -> None:
        if target is None or target.sf_parent() is None:
            # the whole application: _end finishes the operation with its outcome
            if target is None:
                # still deploying: terminate what is built so far (the deploy fails)
                app.process.terminate_all(record)
            else:
                target.sf_terminate(record)
            if app.ended.wait(SHUTDOWN_TIMEOUT * 4 + self.terminate_timeout):
                if not op.done and app.outcome is not None:
                    op.finish(app.outcome)
            else:
                op.finish({"exit": 5, "state": app.state, "record": None,
                           "message": f"{app.name} still terminating", "cleanup_failures": [],
                           "left": []})
            return
        if detach:
            target.sf_detach_and_terminate(record)
        else:
            target.sf_terminate(record)
        final = target.wait_terminated(SHUTDOWN_TIMEOUT + self.terminate_timeout)
        self._forget_follower(app, op)
        op.finish({
            "exit": 0 if final is not None else 5,
            "state": "terminated" if final is not None else _state_name(target).lower(),
            "record": None if final is None else final.to_dict(),
            "message": f"{target.sf_complete_name()} "
            + ("terminated" if final is not None else "still terminating"),
            "cleanup_failures": [], "left": [],
        })

    def _forget_follower(self, app: Application, op: Operation) -> None:
        with self._lock:
            if op in app.following:
                app.following.remove(op)

    def _component(self, app: Application, name: str) -> Prim | None:
        """The component ``app:path`` names (the root for the bare name; None while the root
        is not built yet)."""
        if app.parent is not None:
            return self._part_component(app, name)
        root = app.root or app.process.application(app.name)
        parts = name.split(":")[1:]
        node = root
        for part in parts:
            children = {c.sf_name: c for c in getattr(node, "sf_children", lambda: [])()} if node else {}
            if part not in children:
                raise DaemonError("unknown", f"no component {name!r} on {self.host}", name)
            node = children[part]
        return node

    def _part_component(self, app: Application, name: str) -> Prim | None:
        """In a part: the component ``name`` names (None for the application's name)."""
        if name == app.name:
            return None
        for path, part in list(app.parts.items()):
            if part.root is None or not (name == path or name.startswith(path + ":")):
                continue
            node: Prim = part.root
            for step in name[len(path):].split(":")[1:]:
                children = {c.sf_name: c for c in getattr(node, "sf_children", lambda: [])()}
                if step not in children:
                    break
                node = children[step]
            else:
                return node
        raise DaemonError("unknown", f"no component {name!r} on {self.host}", name)

    def _summary(self, app: Application) -> dict[str, Any]:
        if app.parent is not None:
            roots = [part.root for part in list(app.parts.values()) if part.root is not None]
            return {
                "name": app.name, "state": app.state, "host": self.host, "sfClass": None,
                "started": app.started_at,
                "components": sum(sum(1 for _ in iter_tree(r)) for r in roots),
                "record": None, "parent": app.parent, "parts": sorted(app.parts),
            }
        root = app.root or app.process.application(app.name)
        record = None if root is None else root.termination_record
        return {
            "name": app.name,
            "state": app.state,
            "host": self.host,
            "sfClass": None if root is None else root.sf_class_name(),
            "started": app.started_at,
            "components": 0 if root is None else sum(1 for _ in iter_tree(root)),
            "record": None if record is None else record.to_dict(),
        }

    def _node(self, component: Prim) -> dict[str, Any]:
        record = component.termination_record
        children = list(getattr(component, "sf_children", lambda: [])())
        child_ids = {id(c) for c in children}
        attributes = {}
        for key, value in component.sf_context().items():
            if id(value) in child_ids or isinstance(value, Prim):
                continue
            attributes[str(key)] = _plain(value)
        return {
            "name": component.sf_complete_name().rsplit(":", 1)[-1],
            "path": component.sf_complete_name(),
            "state": _state_name(component),
            "sfClass": component.sf_class_name(),
            "host": getattr(component, "sf_remote_host", "") or self.host,
            "attributes": attributes,
            "record": None if record is None else record.to_dict(),
            "children": [self._node(child) for child in children],
        }

    def _record_error(self, app: str, path: str | None, message: str) -> None:
        with self._lock:
            self.errors.append({"time": time.time(), "application": app, "path": path, "message": message})

    # -- progress lines of long work (a ``running`` line after a second, ``waiting for``) ---
    def _ensure_ticker(self) -> None:
        with self._lock:
            if self._ticker is not None:
                return
            self._ticker = threading.Thread(target=self._tick_forever, name="sfdaemon-progress", daemon=True)
            self._ticker.start()

    def _tick_forever(self) -> None:
        while not self.stopped.wait(0.25):
            with self._lock:
                apps = [app for app in self._apps.values() if app.following]
            for app in apps:
                try:
                    self._tick(app, time.monotonic())
                except Exception:  # noqa: BLE001 - progress must never break the daemon
                    log.exception("progress failed", extra={"app": app.name})

    def _tick(self, app: Application, now: float) -> None:
        activities: list[Activity] = app.process.activities()
        waiting = []
        for activity in activities:
            if now - activity.since < LONG_ACTIVITY:
                continue
            if str(activity.phase).startswith("terminat"):
                waiting.append(activity)
                continue
            key = (activity.path, activity.phase, activity.what, activity.since)
            if key not in app.reported:
                app.reported.add(key)
                for op in list(app.following):
                    op.say(f"{activity.path}  running {activity.what}  {activity.since - op.began:.2f}s")
        if waiting and now >= app.next_report:
            app.next_report = now + PROGRESS_INTERVAL
            for activity in waiting:
                for op in list(app.following):
                    op.say(f"waiting for {activity.path} {activity.what}, {now - activity.since:.0f} s")

    # -- management: sfmanage, sflogs, sfdiagnostics NAME / --leftovers / --clean -------------
    # (the work is in sfpy.engine.management and sfpy.engine.applog; docs/api.md)
    def enable_app_logs(self) -> Any:
        """Keep each application's command log in ``state_dir/logs`` (sfdaemon calls this
        once); returns the :class:`~sfpy.engine.applog.AppLogs` handler."""
        from sfpy.engine.applog import AppLogs

        with self._lock:
            existing = getattr(self, "_app_logs", None)
            if existing is not None:
                return existing
            handler = AppLogs(self.state_dir / "logs", self._apps.get)
            self._app_logs = handler
        logger = logging.getLogger("sfpy")
        logger.addHandler(handler)
        self.on_stopped(lambda: logger.removeHandler(handler))
        return handler

    def logs(self, name: Any, component: Any = None, since: Any = None, lines: Any = 50,
             wait: Any = 0.0) -> dict[str, Any]:
        """Application ``name``'s command log (lines about ``component`` and below)."""
        if not isinstance(name, str) or not NAME.match(name):
            raise DaemonError("bad-request", f"application name {name!r}")
        if component is not None and (not isinstance(component, str) or not component):
            raise DaemonError("bad-request", "component must be a path or null")
        if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
            raise DaemonError("bad-request", "since must be an integer >= 0 or null")
        if not isinstance(lines, int) or isinstance(lines, bool) or lines < 0:
            raise DaemonError("bad-request", "lines must be an integer >= 0")
        if isinstance(wait, bool) or not isinstance(wait, (int, float)):
            raise DaemonError("bad-request", "wait must be a number of seconds")
        store = getattr(self, "_app_logs", None)
        if store is None:
            raise DaemonError("refused", f"sfdaemon on {self.host} keeps no command logs")
        with self._lock:
            held = name in self._apps
        if not held and not store.exists(name):
            raise DaemonError("unknown", f"no application {name!r} and no log of one on "
                              f"{self.host}", name)
        result = store.read(name, component, since, lines, min(float(wait), MAX_WAIT))
        result["held"] = held
        return dict(result)

    # what sfpy.engine.management may ask of the root process
    def held(self, name: str) -> Application | None:
        """The application held under ``name`` (None: none is)."""
        with self._lock:
            return self._apps.get(name)

    def held_names(self) -> set[str]:
        with self._lock:
            return set(self._apps)

    def summary(self, app: Application) -> dict[str, Any]:
        """APP as ``list`` gives it."""
        return self._summary(app)

    def node(self, component: Prim) -> dict[str, Any]:
        """A component's tree as ``tree`` gives it."""
        return self._node(component)

    def recent_errors(self, name: str) -> tuple[dict[str, Any], ...]:
        with self._lock:
            return tuple(error for error in self.errors if error.get("application") == name)

    def note_recovery(self, lines: tuple[str, ...]) -> None:
        with self._lock:
            self.recovery.extend(lines)

    def set_attribute(self, path: Any, attribute: Any, value: Any) -> dict[str, Any]:
        """Add or replace an attribute of a running component (JSON-form value)."""
        from sfpy.engine import management

        return management.set_attribute(self, path, attribute, value)

    def remove_attribute(self, path: Any, attribute: Any) -> dict[str, Any]:
        """Remove an attribute of a running component."""
        from sfpy.engine import management

        return management.remove_attribute(self, path, attribute)

    def detach(self, path: Any) -> dict[str, Any]:
        """Detach a component from its parent (SmartFrog's sfDetach)."""
        from sfpy.engine import management

        return management.detach(self, path)

    def application_diagnostics(self, name: Any) -> dict[str, Any]:
        """One application's tree, states, errors and work in progress."""
        from sfpy.engine import management

        return management.application_diagnostics(self, name)

    def leftovers(self) -> dict[str, Any]:
        """What dead applications' journals say was made and not undone."""
        from sfpy.engine import management

        return management.leftovers(self)

    def clean(self, name: Any) -> dict[str, Any]:
        """Run recovery for the dead application ``name``."""
        from sfpy.engine import management

        return management.clean(self, name)


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        raise DaemonError(
            "bad-request",
            f"application name {name!r}: letters, digits, _ $ . - (up to 100), not starting "
            "with a digit, dot or dash",
        )


def _check_path(name: str, path: Any) -> str:
    """A subtree's complete name in application ``name``: ``name:child[:…]``."""
    if not isinstance(path, str) or not path.startswith(name + ":") or len(path) > 2000:
        raise DaemonError("bad-request", f"path {path!r} must be a component of {name}")
    if any(not part for part in path.split(":")):
        raise DaemonError("bad-request", f"path {path!r} has an empty part")
    return path


def _check_request(request_id: Any) -> str | None:
    if request_id is None:
        return None
    if not isinstance(request_id, str) or not 0 < len(request_id) <= 200:
        raise DaemonError("bad-request", "request_id must be a string of 1-200 characters")
    return request_id


def _state_name(component: Prim) -> str:
    """DEPLOYED, STARTED, TERMINATING, TERMINATED, or FAILED for an abnormal end."""
    state = component.state
    record = component.termination_record
    if state is State.TERMINATED and record is not None and not record.is_normal:
        return "FAILED"
    return state.name


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default


def _prune(description: Any, root: str, notes: dict[str, str]) -> None:
    """Take out of ``description`` (the root ``root``'s) the components that ended or were
    detached while the application ran (``gone:PATH`` notes): a restart does not bring them
    back. The root itself gone: refused."""
    from sfpy.engine.process import AdoptionRefused
    from sfpy.language.model import ComponentDescription

    for key in notes:
        if not key.startswith("gone:"):
            continue
        path = key[len("gone:"):]
        if path == root:
            raise AdoptionRefused(f"{root} had ended")
        if not path.startswith(root + ":"):
            continue
        steps = path[len(root) + 1:].split(":")
        node = description
        for step in steps[:-1]:
            node = node.attributes.get(step) if isinstance(node, ComponentDescription) else None
        if isinstance(node, ComponentDescription):
            node.attributes.pop(steps[-1], None)


def _plain(value: Any) -> Any:
    """An attribute as plain data: the JSON form of language values, text for the rest."""
    from sfpy.language.unparse import to_data

    try:
        return to_data(value)
    except Exception:  # noqa: BLE001 - a live object: its text
        return str(value)


__all__ = ["API_VERSION", "EXIT_CODES", "DaemonError", "Operation", "RootProcess"]
