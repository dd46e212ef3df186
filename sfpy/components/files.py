"""File-system components (``org/smartfrog/services/filesystem``).

``TouchFile`` creates a file (and its missing parent folders) or sets its modification time
when started, then honours ``sfShouldTerminate`` & co. (a workflow step). ``filename`` is a
path, or a LAZY link to a component that has an ``absolutePath`` (or ``filename``)
attribute; a relative path is taken from ``dir`` if given, else from the current directory.
After deployment the component has ``absolutePath`` and ``URI`` attributes, as SmartFrog's
file components do.

The journal: TouchFile never removes its file (as in SmartFrog, the file is the product of
the step, not a temporary). When it *creates* the file, it records that in the run's journal
(``file``, ``{"path": …}``) before creating it and marks the entry done as soon as the file
is there, so the journal tells what the run made while recovery leaves the file alone;
touching a file that already existed makes no durable write.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sfpy.engine.api import EngineError, Prim, TerminationRecord


def file_attribute(component: Prim, name: str, required: bool = True) -> Path | None:
    """A path attribute: text, or a link to a component that provides ``absolutePath``."""
    value: Any = component.sf_resolve(name, None)
    if isinstance(value, Prim):
        value = value.sf_resolve("absolutePath", None) or value.sf_resolve("filename", None)
    if value is None:
        if required:
            raise EngineError(f"{component.sf_complete_name()} needs the attribute {name}")
        return None
    if not isinstance(value, str) or not value:
        raise EngineError(f"{name} of {component.sf_complete_name()} must be a path, not {value!r}")
    return Path(value)


def _journal_of(component: Prim) -> Any:
    """The run's journal of side effects, or None."""
    process = component.sf_process()
    return process.journal if process is not None else None


class TouchFile(Prim):
    """Create ``filename`` (or set its time to ``timestamp``, seconds since 1970; -1 or
    absent: now) when started."""
    declared_attributes = frozenset('URI absolutePath dir filename timestamp'.split())  # what it reads

    def deploy(self) -> None:
        path = file_attribute(self, "filename")
        assert path is not None
        folder = file_attribute(self, "dir", required=False)
        if not path.is_absolute() and folder is not None:
            path = folder / path
        self.path = path.absolute()
        timestamp = self.sf_resolve("timestamp", -1)
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
            raise EngineError(f"timestamp must be a number of seconds, not {timestamp!r}")
        self.timestamp = float(timestamp)
        self.sf_replace_attribute("absolutePath", str(self.path))
        self.sf_replace_attribute("URI", self.path.as_uri())

    def start(self) -> None:
        journal = _journal_of(self)
        entry = None
        if journal is not None and not self.path.exists():
            entry = journal.add("file", self.sf_complete_name(), {"path": str(self.path)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        if journal is not None and entry is not None:
            journal.done(entry)  # kept on purpose: nothing for recovery to undo
        if self.timestamp >= 0:
            os.utime(self.path, (self.timestamp, self.timestamp))
        self.log.info("touched %s", self.path)
        self.sf_work_done(TerminationRecord.normal(f"TouchFile {self.path}", id=self.sf_complete_name()))


__all__ = ["TouchFile", "file_attribute"]
