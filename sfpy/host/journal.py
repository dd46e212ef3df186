"""The journal of a run: every side effect is recorded before it is made, and its undoing after.

When ``sfrun`` (or, in step 4, the daemon) is killed with ``kill -9``, the processes it started
live on in sessions of their own, and the files, volumes, loop devices, domains and taps it made
stay where they are. The journal is how a later ``sfrun --recover`` finds and cleans them::

    journal = Journal(run_dir)                 # takes the run's lock; writes nothing yet
    entry = journal.add("process-group", "sfConfig:web", {"command": "sleep 300"})
    env["SFPY_TAG"] = journal.tag(entry)       # so that recovery finds it, pid or not
    process = subprocess.Popen(argv, env=env, start_new_session=True)
    journal.update(entry, {"pid": process.pid, "create_time": ...})
    ...                                        # later, the group was stopped
    journal.done(entry)
    journal.close()

``add`` returns only once the entry is on disk, *before* the effect is made: an effect that
exists always has an entry (an entry whose effect never came to be is harmless: its cleaner
finds nothing). ``done`` is written after the effect was undone.

The run directory
    One directory per run. A live run holds an exclusive :func:`fcntl.flock` on its ``lock``
    file for its whole life (the kernel drops it when the process dies, however it dies), so
    recovery can tell a dead run from a live one and never touches a live one. The database
    (``journal.db``) is created on the first :meth:`Journal.add` only: a run whose components
    make no side effect costs no durable write at all (a ``mkdir``, an ``open`` and a
    ``flock``). A run that ends with nothing open removes its files (:meth:`Journal.discard`).

Why SQLite in WAL mode
    It is in the standard library; a commit is atomic (a crash in the middle of a write
    leaves the previous state, never a torn record, which an appended text file would have to
    detect and skip by itself); an ``update`` is an in-place change rather than another
    record to replay; the open entries are one query; a long-lived daemon journal (step 4)
    does not grow without bound the way an append-only log does; and the schema carries a
    version (``PRAGMA user_version``: a journal written by a newer sfpy is refused with a clear
    message rather than misread). WAL makes each commit one sequential append to the
    write-ahead log. ``synchronous=FULL`` (the default here) makes that append reach the disk
    (fsync) before :meth:`Journal.add` returns, so an entry survives a power cut too, which
    matters for effects that outlive one (a volume, an image file); ``NORMAL`` survives the
    death of the process only. Measured on this project's test machine (virtual disk, 2 cores):
    one ``add`` + ``done`` costs 11.4 ms with FULL and 0.09 ms with NORMAL on the disk, and
    0.05–0.09 ms either way on tmpfs, where ``/run`` and ``$XDG_RUNTIME_DIR`` normally are.
    Starting a process costs a few milliseconds anyway; a caller that wants NORMAL says so
    (``Journal(run_dir, synchronous="NORMAL")``).

    Only :meth:`Journal.add` and :meth:`Journal.note` wait for the disk. :meth:`Journal.update`
    (a pid once known) and :meth:`Journal.done` are committed with ``synchronous=NORMAL``:
    they survive the death of the process (the WAL frames are in the kernel's page cache),
    and the next durable commit (an ``add``, a ``note``) carries them to the disk with it,
    because the WAL is one sequential file. What a power cut can lose of them is harmless:
    what they record does not outlive a power cut either (a pid of a process that died with
    the machine; a file removal or a process stop that sfpy does not fsync itself), and a
    ``done`` lost only makes recovery run a cleaner again, which every cleaner must allow.
    On the test site this took three of every four fsyncs off the daemon's path to the
    first QEMU launch (each command was an ``add``, an ``update`` and a ``done``).

Cleaners
    Recovery undoes an open entry with the cleaner registered for its kind::

        def remove_volume(entry: Entry) -> str:
            run(["lvremove", "-f", entry.data["path"]])   # raise when it could not
            return f"removed volume {entry.data['path']}"

        register_cleaner("volume", remove_volume)

    A cleaner gets the :class:`Entry` (``kind``, ``owner``, ``data``, ``tag``), returns one line
    saying what it did (also when there was nothing left to do: "... was already gone"), and
    raises when it could not clean (the entry stays open, recovery exits 6 and lists it). It
    must be safe to run twice and on an effect that was never made. :meth:`Journal.add`
    refuses a kind that has no cleaner, and records the module that registered it, so that a
    recovery in a fresh process imports that module to find the cleaner again. Built in:
    ``process-group`` (:func:`stop_process_group_entry`) and ``file`` (:func:`remove_file_entry`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib
import json
import os
import re
import secrets
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfpy.errors import SfpyError

if TYPE_CHECKING:
    import sqlite3

#: The environment variable that carries an entry's tag into the processes of its group.
TAG_VARIABLE = "SFPY_TAG"
#: The journal's schema version (``PRAGMA user_version``).
SCHEMA_VERSION = 1
DB_NAME = "journal.db"
LOCK_NAME = "lock"
#: Seconds between SIGTERM and SIGKILL when a cleaner stops a process group.
STOP_GRACE = 5.0

_SCHEMA = (
    "CREATE TABLE run (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE entry (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, owner TEXT NOT NULL,"
    " data TEXT NOT NULL, cleaner TEXT NOT NULL, added REAL NOT NULL, done REAL)",
    "CREATE INDEX entry_open ON entry (done)",
)
#: Test hook: called with a label after every commit (tests kill the process there).
_after_write: Callable[[str], None] | None = None
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class JournalError(SfpyError):
    """The journal cannot be used (a newer schema, an unreadable file, a run left open)."""


class RunBusy(JournalError):  # noqa: N818 - reads better in messages
    """Another live process holds the run's lock."""


class CleanupError(SfpyError):
    """A cleaner could not undo an effect; what is left is in the message."""

    exit_code = 6


@dataclass(frozen=True)
class Entry:
    """One recorded side effect: ``kind`` (``process-group``, ``file``, ...), ``owner`` (the
    component path), ``data`` (what the cleaner needs), ``tag`` (:data:`TAG_VARIABLE`'s value)."""

    id: int
    kind: str
    owner: str
    data: Mapping[str, Any]
    tag: str
    cleaner_module: str = field(default="", compare=False)


Cleaner = Callable[[Entry], str]
_cleaners: dict[str, Cleaner] = {}
_cleaners_lock = threading.Lock()


def register_cleaner(kind: str, cleaner: Cleaner) -> None:
    """Make ``cleaner`` the one that undoes entries of ``kind`` (replacing any earlier one).
    Register at import time of the module that makes such effects."""
    if not kind or not isinstance(kind, str):
        raise ValueError("a cleaner needs a kind (a non-empty string)")
    with _cleaners_lock:
        _cleaners[kind] = cleaner


def cleaner_for(kind: str, module: str = "") -> Cleaner | None:
    """The cleaner of ``kind``; when none is registered and ``module`` is given (the module
    that registered it when the entry was added), import that module first."""
    with _cleaners_lock:
        found = _cleaners.get(kind)
    if found is None and module and _MODULE.match(module):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
        with _cleaners_lock:
            found = _cleaners.get(kind)
    return found


def clean(entry: Entry) -> str:
    """Run the cleaner of ``entry``; raises :class:`CleanupError` when it could not."""
    cleaner = cleaner_for(entry.kind, entry.cleaner_module)
    if cleaner is None:
        raise CleanupError(
            f"no cleaner for {entry.kind!r} entries"
            + (f" (module {entry.cleaner_module} registers it)" if entry.cleaner_module else "")
        )
    try:
        return cleaner(entry)
    except CleanupError:
        raise
    except Exception as error:  # noqa: BLE001 - a cleaner's failure is reported, not raised
        raise CleanupError(f"{type(error).__name__}: {error}") from error


def new_run_id() -> str:
    """A run id: when it began, the process id, and a few random hex digits."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(2)}"


def describe(entry: Entry) -> str:
    """One line naming what an entry stands for (for lists of what is left)."""
    data = entry.data
    if entry.kind == "process-group":
        pid = data.get("pgid", data.get("pid"))
        command = _command_text(data)
        name = f"process group {pid}" if pid is not None else "process group (pid unknown)"
        return f"{name}{f' ({command})' if command else ''} of {entry.owner}"
    if entry.kind == "file":
        return f"file {data.get('path')} of {entry.owner}"
    return f"{entry.kind} {json.dumps(dict(data), sort_keys=True)} of {entry.owner}"


class Journal:
    """The journal of one run, kept in ``run_dir`` (created if needed, mode 0700).

    The constructor takes the run's lock (:class:`RunBusy` if a live process holds it) and
    refuses (:class:`JournalError`) a directory that holds a dead run's journal with open
    entries: recover it first. A finished journal left there is replaced. Thread-safe.
    """

    def __init__(
        self, run_dir: str | os.PathLike[str], *, run_id: str | None = None,
        synchronous: str = "FULL", _adopt: bool = False,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.run_dir = Path(run_dir)
        self.run_id = run_id or new_run_id()
        self.synchronous = synchronous
        self._mutex = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._open: dict[int, Entry] = {}
        self._last_id = 0
        self._lock_fd: int | None = _take_lock(self.run_dir)
        try:
            if (self.run_dir / DB_NAME).exists():
                self._load(_adopt)
        except BaseException:
            self.close()
            raise

    @classmethod
    def adopt(cls, run_dir: str | os.PathLike[str]) -> Journal:
        """Take over a dead run's journal (for recovery): its lock, run id and open entries.
        :class:`RunBusy` when the run is still alive."""
        run_dir = Path(run_dir)
        return cls(run_dir, run_id=run_dir.name, _adopt=True)

    # -- the Protocol the host layer uses ---------------------------------------------------
    def add(self, kind: str, owner: str, data: Mapping[str, Any]) -> int:
        """Record an effect about to be made; on disk when this returns. Returns its id."""
        cleaner = cleaner_for(kind)
        if cleaner is None:
            raise JournalError(f"no cleaner registered for {kind!r}: register_cleaner() first")
        text = _encode(data)
        module = getattr(cleaner, "__module__", "") or ""
        with self._mutex:
            db = self._database()
            with db:
                cursor = db.execute(
                    "INSERT INTO entry (kind, owner, data, cleaner, added) VALUES (?, ?, ?, ?, ?)",
                    (kind, owner, text, module, time.time()),
                )
            _wrote("add")
            entry_id = int(cursor.lastrowid or 0)
            self._last_id = max(self._last_id, entry_id)
            self._open[entry_id] = Entry(
                entry_id, kind, owner, json.loads(text), self.tag(entry_id), module
            )
            return entry_id

    def tag(self, entry: int) -> str:
        """The marker of ``entry`` (run id and entry id) for :data:`TAG_VARIABLE`."""
        return f"{self.run_id}:{entry}"

    def update(self, entry: int, data: Mapping[str, Any]) -> None:
        """Merge ``data`` into an open entry's data (the pid once known). Updating an entry
        already done does nothing (its effect is gone)."""
        with self._mutex:
            current = self._open.get(entry)
            if current is None:
                if 0 < entry <= self._last_id:
                    return
                raise JournalError(f"no journal entry {entry} in run {self.run_id}")
            merged = {**current.data, **data}
            text = _encode(merged)
            self._write_lazily("UPDATE entry SET data = ? WHERE id = ?", (text, entry))
            _wrote("update")
            self._open[entry] = Entry(
                entry, current.kind, current.owner, json.loads(text), current.tag,
                current.cleaner_module,
            )

    def done(self, entry: int) -> None:
        """Record that ``entry``'s effect was undone. Doing it twice does nothing."""
        with self._mutex:
            if self._open.pop(entry, None) is None:
                return
            self._write_lazily("UPDATE entry SET done = ? WHERE id = ?", (time.time(), entry))
            _wrote("done")

    def note(self, values: Mapping[str, str]) -> None:
        """Keep each of ``values`` (key to text) in the run's own table, replacing earlier
        values of those keys, in one commit; on disk when this returns. What a daemon needs
        to rebuild an application after a restart (its description, how far it got) is kept
        this way, next to the entries. The keys are stored with a ``note.`` prefix, so they
        never clash with the journal's own (``id``, ``pid``, ``started``)."""
        rows = []
        for key, value in values.items():
            if not isinstance(key, str) or not key or not isinstance(value, str):
                raise ValueError("a journal note is a non-empty key and a text value")
            rows.append(("note." + key, value))
        if not rows:
            return
        with self._mutex:
            if self._db is None:
                self._database(rows)  # the first write: one commit with the schema
                return
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO run (key, value) VALUES (?, ?)", rows)
            _wrote("note")

    def notes(self) -> dict[str, str]:
        """Every note kept with :meth:`note` (by key), also a dead run's after
        :meth:`adopt`; empty when nothing was ever written."""
        import sqlite3

        with self._mutex:
            db = self._db
            if db is None:
                return {}
            try:
                rows = db.execute(
                    "SELECT key, value FROM run WHERE key LIKE 'note.%'"
                ).fetchall()
            except sqlite3.Error as error:
                raise JournalError(f"cannot read the notes of run {self.run_id}: {error}") from error
        return {str(key)[5:]: str(value) for key, value in rows}

    def open_entries(self) -> list[Entry]:
        """The entries not done yet, oldest first."""
        with self._mutex:
            return [self._open[key] for key in sorted(self._open)]

    def close(self) -> None:
        """Close the database and release the run's lock (the files stay). Idempotent."""
        with self._mutex:
            if self._db is not None:
                with contextlib.suppress(Exception):
                    self._db.close()
                self._db = None
            if self._lock_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._lock_fd)
                self._lock_fd = None

    # -- beyond the Protocol ----------------------------------------------------------------
    @property
    def written(self) -> bool:
        """Whether this run has written its database (made any side effect)."""
        return self._db is not None or (self.run_dir / DB_NAME).exists()

    def discard(self) -> None:
        """The run ended with nothing open: remove its journal, its lock file and the run
        directory (if nothing else is in it), then close. :class:`JournalError` when entries
        are still open."""
        with self._mutex:
            if self._open:
                raise JournalError(
                    f"run {self.run_id} still has {len(self._open)} open journal entries"
                )
            if self._db is not None:
                with contextlib.suppress(Exception):
                    self._db.close()
                self._db = None
            for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal"):
                with contextlib.suppress(FileNotFoundError):
                    (self.run_dir / name).unlink()
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / LOCK_NAME).unlink()
            self.close()
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside ------------------------------------------------------------------------------
    def _write_lazily(self, sql: str, params: tuple[Any, ...]) -> None:
        """One commit that survives the process's death but does not wait for the disk (see
        the module's notes: update and done). Caller holds ``_mutex``."""
        db = self._database()
        if self.synchronous == "NORMAL":
            with db:
                db.execute(sql, params)
            return
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            with db:
                db.execute(sql, params)
        finally:
            db.execute(f"PRAGMA synchronous={self.synchronous}")

    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        try:
            db = sqlite3.connect(
                self.run_dir / DB_NAME, isolation_level=None, check_same_thread=False, timeout=5
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
        except sqlite3.Error as error:
            raise JournalError(f"cannot open the journal in {self.run_dir}: {error}") from error
        return db

    def _database(self, notes: list[tuple[str, str]] | None = None) -> sqlite3.Connection:
        """The connection; the database is created here, on the first write (with
        ``notes``, ``run`` rows written in the same commit)."""
        if self._db is None:
            if self._lock_fd is None:
                raise JournalError(f"the journal of run {self.run_id} is closed")
            db = self._connect()
            with db:
                db.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    db.execute(statement)
                db.executemany(
                    "INSERT INTO run (key, value) VALUES (?, ?)",
                    [("id", self.run_id), ("pid", str(os.getpid())),
                     ("started", f"{time.time():.3f}"), *(notes or [])],
                )
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db = db
            _wrote("schema")
        return self._db

    def _load(self, adopt: bool) -> None:
        """Read the journal already in the run directory."""
        import sqlite3

        path = self.run_dir / DB_NAME
        info = path.stat()
        if info.st_uid != os.geteuid():
            raise JournalError(f"{path} belongs to uid {info.st_uid}: not touched")
        db = self._connect()
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"{path} has journal schema version {version}; this sfpy reads version "
                    f"{SCHEMA_VERSION} and older: use a newer sfpy to recover it"
                )
            if version == 0:
                # created but the schema never committed (a crash at the very first write):
                # no entry can exist, so no effect was made.
                rows: list[Any] = []
                run_id = None
            else:
                row = db.execute("SELECT value FROM run WHERE key = 'id'").fetchone()
                run_id = row[0] if row else None
                rows = db.execute(
                    "SELECT id, kind, owner, data, cleaner, done FROM entry ORDER BY id"
                ).fetchall()
        except sqlite3.Error as error:
            db.close()
            raise JournalError(f"cannot read the journal {path}: {error}") from error
        if adopt:
            if run_id:
                self.run_id = run_id
            for entry_id, kind, owner, data, module, finished in rows:
                self._last_id = max(self._last_id, entry_id)
                if finished is None:
                    self._open[entry_id] = Entry(
                        entry_id, kind, owner, json.loads(data), self.tag(entry_id), module
                    )
            if version == 0:
                db.close()
            else:
                self._db = db
            return
        db.close()
        left = sum(1 for row in rows if row[5] is None)
        if left:
            raise JournalError(
                f"{self.run_dir} holds the journal of run {run_id or '?'} with {left} open "
                f"entries: run `sfrun --recover --run-dir {self.run_dir}` first"
            )
        for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / name).unlink()


def _wrote(label: str) -> None:
    if _after_write is not None:
        _after_write(label)


def _encode(data: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(data), sort_keys=True)
    except (TypeError, ValueError) as error:
        raise JournalError(f"journal data must be plain JSON data: {error}") from error


def _take_lock(run_dir: Path) -> int:
    """Create ``run_dir`` (0700) and hold an exclusive flock on its lock file. The lock file
    is checked to still be the one in the directory once locked: a recovery may have removed
    a dead run's directory between our open and our flock."""
    for _ in range(10):
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = run_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunBusy(f"run directory {run_dir} is in use by a live run") from None
            raise JournalError(f"cannot lock {path}: {error}") from error
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise JournalError(f"cannot lock {run_dir / LOCK_NAME}: it keeps being replaced")


# -- recovery ---------------------------------------------------------------------------------
@dataclass
class RunReport:
    """What recovery found and did in one run directory."""

    run_dir: Path
    run_id: str
    live: bool = False
    done: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def clean(self) -> bool:
        return not self.live and not self.left and not self.error


def run_directories(parent: str | os.PathLike[str]) -> list[Path]:
    """The run directories in ``parent`` (or ``parent`` itself when it is one), oldest name
    first."""
    parent = Path(parent)
    if _is_run_dir(parent):
        return [parent]
    try:
        children = sorted(p for p in parent.iterdir() if p.is_dir() and not p.is_symlink())
    except FileNotFoundError:
        return []
    except OSError as error:
        raise JournalError(f"cannot read {parent}: {error}") from error
    return [p for p in children if _is_run_dir(p)]


def _is_run_dir(path: Path) -> bool:
    return (path / LOCK_NAME).exists() or (path / DB_NAME).exists()


def recover_run(run_dir: str | os.PathLike[str]) -> RunReport:
    """Clean what a dead run left (its open entries) and remove its directory when nothing
    is left. A live run is reported as such and not touched."""
    run_dir = Path(run_dir)
    report = RunReport(run_dir, run_dir.name)
    try:
        info = run_dir.stat()
        if info.st_uid != os.geteuid():
            report.error = f"belongs to uid {info.st_uid}: not touched"
            return report
        journal = Journal.adopt(run_dir)
    except RunBusy:
        report.live = True
        return report
    except (JournalError, OSError) as error:
        report.error = str(error)
        return report
    report.run_id = journal.run_id
    try:
        # Newest first, as termination goes: what was made last is undone first.
        for entry in reversed(journal.open_entries()):
            try:
                report.done.append(clean(entry))
            except CleanupError as error:
                report.left.append(f"{describe(entry)}: {error}")
                continue
            journal.done(entry.id)
        if not report.left:
            journal.discard()
    except JournalError as error:
        report.error = str(error)
    finally:
        journal.close()
    return report


def recover(parent: str | os.PathLike[str]) -> list[RunReport]:
    """:func:`recover_run` for every run directory in ``parent``."""
    return [recover_run(path) for path in run_directories(parent)]


# -- built-in cleaners ------------------------------------------------------------------------
def _command_text(data: Mapping[str, Any]) -> str:
    command = data.get("command", data.get("argv"))
    if isinstance(command, (list, tuple)):
        command = " ".join(str(part) for part in command)
    if not isinstance(command, str):
        return ""
    return command if len(command) <= 60 else command[:59] + "…"


def _tagged_processes(tag: str) -> Iterator[Any]:
    import psutil

    own = os.getpid()
    for process in psutil.process_iter():
        if process.pid == own:
            continue
        try:
            if process.environ().get(TAG_VARIABLE) == tag:
                yield process
        except (psutil.Error, OSError):
            continue


def _running(process: Any) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_process_group_entry(entry: Entry, grace: float = STOP_GRACE) -> str:
    """Cleaner of ``process-group``: find the processes by their :data:`TAG_VARIABLE` (also
    when the pid was never written) and by ``pid`` + ``create_time``, stop the groups they
    lead (SIGTERM, SIGKILL after ``grace`` seconds) and any of them outside those groups."""
    import psutil

    data = entry.data
    found: dict[int, Any] = {p.pid: p for p in _tagged_processes(entry.tag)}
    pid, created = data.get("pid"), data.get("create_time")
    if isinstance(pid, int) and isinstance(created, (int, float)) and pid not in found:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if abs(process.create_time() - float(created)) < 0.05:
                found[pid] = process
    found = {p: proc for p, proc in found.items() if _running(proc)}
    command = _command_text(data)
    label = command
    if not found:
        number = data.get("pgid", pid)
        name = f"process group {number}" if number is not None else "process group"
        return f"{name}{f' ({command})' if command else ''} was already gone"

    own_group = os.getpgrp()
    groups: set[int] = set()
    for process_id in found:
        with contextlib.suppress(OSError):
            group = os.getpgid(process_id)
            if group == process_id and group != own_group:
                groups.add(group)
    targets = dict(found)
    if groups:
        for process in psutil.process_iter():
            with contextlib.suppress(OSError, psutil.Error):
                if os.getpgid(process.pid) in groups and process.pid != os.getpid():
                    targets.setdefault(process.pid, process)
    if not label:
        with contextlib.suppress(psutil.Error):
            leader = found[min(groups)] if groups else next(iter(found.values()))
            label = _command_text({"argv": leader.cmdline()})

    def send(number: int) -> None:
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, number)
        for process in targets.values():
            with contextlib.suppress(psutil.Error):
                if not groups or _group_of(process) not in groups:
                    process.send_signal(number)

    try:
        send(signal.SIGTERM)
        alive = _wait_gone(targets.values(), grace)
        if alive:
            send(signal.SIGKILL)
            alive = _wait_gone(alive, max(1.0, grace))
    except PermissionError as error:
        raise CleanupError(f"not allowed to stop process group {sorted(groups)}: {error}") from error
    if alive:
        pids = ", ".join(str(p.pid) for p in alive)
        raise CleanupError(f"processes {pids} still run after SIGKILL")
    numbers = sorted(groups) or sorted(found)
    noun = "process group" if groups else "process"
    plural = "s" if len(numbers) > 1 else ""
    text = f"stopped {noun}{plural} {', '.join(map(str, numbers))}"
    return text + (f" ({label})" if label else "")


def _group_of(process: Any) -> int | None:
    try:
        return os.getpgid(process.pid)
    except OSError:
        return None


def _wait_gone(processes: Any, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if _running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _running(p)]
    return alive


def remove_file_entry(entry: Entry) -> str:
    """Cleaner of ``file`` (data ``path``): remove it if it still exists. A directory found
    there is left alone (raises)."""
    path = entry.data.get("path")
    if not isinstance(path, str) or not path:
        raise CleanupError(f"a file entry without a path: {dict(entry.data)}")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return f"{path} was already gone"
    if stat.S_ISDIR(info.st_mode):
        raise CleanupError(f"{path} is a directory: left as it is")
    try:
        os.unlink(path)
    except FileNotFoundError:
        return f"{path} was already gone"
    except OSError as error:
        raise CleanupError(f"cannot remove {path}: {error.strerror}") from error
    return f"removed {path}"


register_cleaner("process-group", stop_process_group_entry)
register_cleaner("file", remove_file_entry)

__all__ = [
    "DB_NAME",
    "LOCK_NAME",
    "SCHEMA_VERSION",
    "TAG_VARIABLE",
    "Cleaner",
    "CleanupError",
    "Entry",
    "Journal",
    "JournalError",
    "RunBusy",
    "RunReport",
    "clean",
    "cleaner_for",
    "describe",
    "new_run_id",
    "recover",
    "recover_run",
    "register_cleaner",
    "remove_file_entry",
    "run_directories",
    "stop_process_group_entry",
]
