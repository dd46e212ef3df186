"""What SmartFrog's management console did, for a daemon's applications: change or remove an
attribute of a running component, detach a component, one application's diagnostics, the
leftovers the journals in the state directory name, and cleaning them.

Kept out of :mod:`sfpy.engine.rootprocess` so the root process stays about holding
applications and running operations; :class:`~sfpy.engine.rootprocess.RootProcess` has one
thin method per function here (``set_attribute``, ``remove_attribute``, ``detach``,
``application_diagnostics``, ``leftovers``, ``clean``, ``logs``). Every function takes and
returns plain data and raises :class:`~sfpy.engine.rootprocess.DaemonError`.

Component paths: ``NAME:vm1:disk`` (the application, then the path below its root, as
``sfterminate`` takes them). A part that was detached lives on in the application's process
under the name it was adopted as, and is reached as ``NAME:<that name>:…``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sfpy.engine.prim import ABSENT, Prim, iter_tree
from sfpy.engine.rootprocess import DaemonError

if TYPE_CHECKING:
    from sfpy.engine.rootprocess import Application, RootProcess

#: Errors a single application's diagnostics include (the newest).
APP_ERRORS = 20


def locate(root: RootProcess, path: Any) -> tuple[Application, Prim]:
    """The application and the live component ``path`` names: ``NAME`` (the root),
    ``NAME:a:b`` below the root, or ``NAME:DETACHED:…`` in a part that was detached."""
    if not isinstance(path, str) or not path:
        raise DaemonError("bad-request", "a component path (NAME or NAME:a:b) is needed")
    name, *parts = path.split(":")
    app = root.held(name)
    if app is None:
        raise DaemonError("unknown", f"no application {name!r} on {root.host}", path)
    tops = app.process.applications()
    node = app.root or tops.get(app.name)
    if node is None:
        raise DaemonError("refused", f"application {name!r} is still being built", path)
    if parts and parts[0] != app.name and parts[0] in tops and not _has_child(node, parts[0]):
        node, parts = tops[parts[0]], parts[1:]
    for part in parts:
        children = {child.sf_name: child for child in _children(node)}
        if part not in children:
            raise DaemonError("unknown", f"no component {path!r} on {root.host}", path)
        node = children[part]
    return app, node


def _children(node: Prim) -> list[Prim]:
    return list(getattr(node, "sf_children", lambda: [])())


def _has_child(node: Prim, name: str) -> bool:
    return any(child.sf_name == name for child in _children(node))


def _check_attribute(component: Prim, attribute: Any) -> str:
    if not isinstance(attribute, str) or not attribute or ":" in attribute:
        raise DaemonError("bad-request", f"attribute name {attribute!r}: a non-empty name "
                          "without ':'", component.sf_complete_name())
    current = component.sf_context().get(attribute, ABSENT)
    if isinstance(current, Prim):
        raise DaemonError(
            "refused", f"{attribute} of {component.sf_complete_name()} is a child component: "
            "terminate or detach it instead", component.sf_complete_name())
    return attribute


def _live(component: Prim) -> None:
    if component.sf_is_terminating:
        raise DaemonError("failed", f"{component.sf_complete_name()} has terminated",
                          component.sf_complete_name())


def set_attribute(root: RootProcess, path: Any, attribute: Any, value: Any) -> dict[str, Any]:
    """Add or replace ``attribute`` of the component ``path``; ``value`` in the JSON form's
    value encoding. The component gets its ``attribute_changed`` hook (after this returns,
    in its application's lifecycle thread)."""
    from sfpy.language.errors import DescriptionError
    from sfpy.language.unparse import from_data, to_data

    app, component = locate(root, path)
    name = _check_attribute(component, attribute)
    try:
        decoded = from_data(value)
    except DescriptionError as error:
        raise DaemonError("bad-request", f"value of {name}: {error}", path) from None
    if hasattr(decoded, "items") and not isinstance(decoded, dict):
        raise DaemonError("bad-request", "a component description cannot be set as a value "
                          "(deploy it with its application)", path)
    _live(component)
    lock = component.sf_lifecycle
    if lock is None:
        raise DaemonError("refused", f"{component.sf_complete_name()} is not built yet", path)
    with lock:
        old = component.sf_replace_attribute(name, decoded)
    where = component.sf_complete_name()
    root_log(app.name, where, f"attribute {name} set by a client: {_text(decoded)}")
    return {"path": where, "attribute": name, "old": None if old is ABSENT else _plain(old),
            "new": to_data(decoded)}


def remove_attribute(root: RootProcess, path: Any, attribute: Any) -> dict[str, Any]:
    """Remove ``attribute`` of the component ``path`` (``attribute_changed`` with the new
    value absent); error ``unknown`` when it has no such attribute."""
    app, component = locate(root, path)
    name = _check_attribute(component, attribute)
    _live(component)
    if not component.sf_has_attribute(name):
        raise DaemonError("unknown", f"{component.sf_complete_name()} has no attribute {name}",
                          path)
    lock = component.sf_lifecycle
    if lock is None:
        raise DaemonError("refused", f"{component.sf_complete_name()} is not built yet", path)
    with lock:
        old = component.sf_remove_attribute(name)
    where = component.sf_complete_name()
    root_log(app.name, where, f"attribute {name} removed by a client")
    return {"path": where, "attribute": name, "old": None if old is ABSENT else _plain(old)}


def detach(root: RootProcess, path: Any) -> dict[str, Any]:
    """Detach the component ``path`` from its parent (SmartFrog's sfDetach): it keeps
    running as a part of the application's process (its parent no longer watches it nor
    ends with it) and ends when the application ends."""
    app, component = locate(root, path)
    if component.sf_parent() is None:
        raise DaemonError("refused", f"{path} has no parent to detach from", path)
    _live(component)
    before = component.sf_complete_name()
    component.sf_detach()
    now = component.sf_complete_name()
    root_log(app.name, before, f"detached by a client: now {app.name}:{now}")
    return {"path": before, "detached": True, "name": f"{app.name}:{now}"}


def application_diagnostics(root: RootProcess, name: Any) -> dict[str, Any]:
    """One application: its summary, tree, parts that were detached, recent errors and the
    long work in progress with how long each has been going on."""
    app, top = locate(root, name.partition(":")[0] if isinstance(name, str) else name)
    now = time.monotonic()
    activities = [
        {"path": a.path, "phase": str(a.phase), "what": a.what,
         "seconds": round(now - a.since, 3)}
        for a in app.process.activities()
    ]
    detached = [
        root.node(part) for key, part in sorted(app.process.applications().items())
        if key != app.name and part is not top
    ]
    errors = list(root.recent_errors(app.name)[-APP_ERRORS:])
    summary = root.summary(app)
    states: dict[str, int] = {}
    parts = {id(part): part for part in [top, *app.process.applications().values()]}
    for part in parts.values():
        for component in iter_tree(part):
            key = _state(component)
            states[key] = states.get(key, 0) + 1
    return {
        **summary,
        "tree": root.node(top),
        "detached": detached,
        "states": states,
        "errors": errors,
        "activities": activities,
        "journal": [_entry(entry) for entry in app.journal.open_entries()],
    }


def leftovers(root: RootProcess) -> dict[str, Any]:
    """What the journals in ``STATE/apps`` say was made and not undone, for each
    application this daemon does not hold (a dead incarnation's, that recovery could not
    clean), with the command that cleans it."""
    from sfpy.host.journal import run_directories

    held = root.held_names()
    found = []
    for run_dir in run_directories(root.apps_dir):
        name = run_dir.name
        if name in held:
            continue
        entries, error = _read_journal(run_dir)
        found.append({
            "application": name,
            "directory": str(run_dir),
            "entries": entries,
            "error": error,
            "clean": f"sfdiagnostics {root.address or root.host} --clean {name}",
        })
    return {"host": root.host, "leftovers": found}


def clean(root: RootProcess, name: Any) -> dict[str, Any]:
    """Run recovery for the dead application ``name`` (its journal's open entries, newest
    first); its directory is removed when nothing is left. ``exit`` 0 clean, 6 something is
    left (listed)."""
    from sfpy.host.journal import recover_run

    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise DaemonError("bad-request", f"application name {name!r}")
    if root.held(name) is not None:
        raise DaemonError("refused", f"application {name!r} is alive on {root.host}: "
                          "terminate it instead", name)
    run_dir = root.apps_dir / name
    if not run_dir.is_dir():
        raise DaemonError("unknown", f"no journal of an application {name!r} on {root.host}",
                          name)
    report = recover_run(run_dir)
    if report.live:
        raise DaemonError("refused", f"the journal of {name!r} is held by a live process", name)
    for line in report.done:
        root_log(name, name, f"cleaned: {line}")
    left = list(report.left) + ([report.error] if report.error else [])
    for line in left:
        root_log(name, name, f"left: {line}")
    root.note_recovery(tuple(f"{name}: {line}" for line in report.done))
    return {"application": name, "done": report.done, "left": left,
            "exit": 0 if report.clean else 6}


# -- helpers ---------------------------------------------------------------------------------
def root_log(app: str, component: str, message: str) -> None:
    import logging

    logging.getLogger("sfpy.daemon").info(message, extra={"app": app, "component": component})


def _read_journal(run_dir: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The open entries of a dead journal, read without taking it over."""
    import json
    import sqlite3

    database = run_dir / "journal.db"
    if not database.exists():
        return [], None
    try:
        connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True,
                                     timeout=2.0)
        try:
            rows = connection.execute(
                "SELECT id, kind, owner, data FROM entry WHERE done IS NULL ORDER BY id"
            ).fetchall()
        finally:
            connection.close()
    except sqlite3.Error as error:
        if "no such table" in str(error):
            return [], None  # created, schema never committed: nothing was recorded
        return [], f"cannot read {database}: {error}"
    entries = []
    for entry_id, kind, owner, data in rows:
        try:
            decoded = json.loads(data) if isinstance(data, str) else {}
        except ValueError:
            decoded = {}
        entries.append(_entry_dict(int(entry_id), str(kind), str(owner),
                                   decoded if isinstance(decoded, dict) else {}))
    return entries, None


def _entry(entry: Any) -> dict[str, Any]:
    return _entry_dict(entry.id, entry.kind, entry.owner, dict(entry.data))


def _entry_dict(entry_id: int, kind: str, owner: str, data: dict[str, Any]) -> dict[str, Any]:
    from sfpy.host.journal import Entry, describe

    text = describe(Entry(entry_id, kind, owner, data, ""))
    return {"id": entry_id, "kind": kind, "owner": owner, "what": text}


def _state(component: Prim) -> str:
    from sfpy.engine.rootprocess import _state_name

    return _state_name(component)


def _plain(value: Any) -> Any:
    from sfpy.engine.rootprocess import _plain as plain

    return plain(value)


def _text(value: Any) -> str:
    from sfpy.language.unparse import value_text

    try:
        text = value_text(value)
    except Exception:  # noqa: BLE001 - a log line
        text = repr(value)
    return text if len(text) <= 200 else text[:199] + "…"


__all__ = [
    "application_diagnostics",
    "clean",
    "detach",
    "leftovers",
    "locate",
    "remove_attribute",
    "set_attribute",
]
