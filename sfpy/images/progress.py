"""What a build shows while it runs: the phase, packages fetched and set up, bytes.

The builders' commands run through the host layer, which logs each line they print; a
:class:`Progress` is a logging handler on that logger: it keeps every line in the build's log
file and turns the lines it recognises (mmdebstrap's and debootstrap's ``I:`` phases, apt's
``Get:`` and ``Fetched``, dpkg's ``Setting up``) into one status line at a time on stderr.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from typing import IO

_GET = re.compile(r"^Get:\d+ \S+ \S+ \S+ (\S+) .*\[([0-9.,]+) ([kMG]?B)\]")
_FETCHED = re.compile(r"^Fetched ([0-9.,]+) ([kMG]?B)")
_SETTING_UP = re.compile(r"^Setting up (\S+)")
_DEB_RETRIEVE = re.compile(r"^I: Retrieving (\S+)")
_DEB_CONFIGURE = re.compile(r"^I: Configuring (\S+)")
_UNITS = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}
_LINE = re.compile(r"^\[\d+\] (?:out|err): (.*)$", re.S)


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


class Progress(logging.Handler):
    """Counts and shows (see the module docstring). ``quiet``: only the log file."""

    def __init__(self, log_path: str | None, stream: IO[str] | None = None,
                 quiet: bool = False, interval: float = 2.0,
                 sink: Callable[[str], None] | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.began = time.monotonic()
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.interval = interval
        self.sink = sink  # also told every status line (a component's log)
        self.phase = "starting"
        self.fetched_packages = 0
        self.fetched_bytes = 0
        self.set_up = 0
        self._last = 0.0
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115

    # -- input ---------------------------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log record must not stop a build
            return
        if self._log is not None:
            self._log.write(message + "\n")
        match = _LINE.match(message)
        if match:
            self.line(match.group(1))

    def line(self, text: str) -> None:
        """One line a builder's command printed."""
        text = text.rstrip()
        show = False
        if m := _GET.match(text):
            if m.group(1) not in ("InRelease", "Packages", "Release", "Release.gpg"):
                self.fetched_packages += 1
            self.fetched_bytes += int(float(m.group(2).replace(",", "")) * _UNITS[m.group(3)])
        elif m := _SETTING_UP.match(text):
            self.set_up += 1
        elif m := _DEB_RETRIEVE.match(text):
            self.fetched_packages += 1
        elif m := _DEB_CONFIGURE.match(text):
            self.set_up += 1
        elif text.startswith("I: ") and not text.startswith(("I: Validating", "I: Extracting",
                                                             "I: Unpacking")):
            phase = text[3:].rstrip(".").strip()
            if phase and not phase.startswith(("running --", "/")):
                self.phase = phase[:70]
                show = True
        elif _FETCHED.match(text):
            show = True
        self.show(force=show)

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.show(force=True)

    # -- output --------------------------------------------------------------------------------
    def status(self) -> str:
        parts = [f"{self.fetched_packages} packages fetched ({human(self.fetched_bytes)})"]
        if self.set_up:
            parts.append(f"{self.set_up} set up")
        return (f"[{time.monotonic() - self.began:6.1f}s] {self.phase}: "
                f"{', '.join(parts)}")

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if (self.quiet and self.sink is None) or (not force and now - self._last < self.interval):
            return
        self._last = now
        if self.sink is not None:
            self.sink(self.status())
        if not self.quiet:
            print(f"sfimage: {self.status()}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A line of our own, in the log and on stderr."""
        if self._log is not None:
            self._log.write(f"sfimage: {text}\n")
        if self.sink is not None:
            self.sink(text)
        if not self.quiet:
            print(f"sfimage: [{time.monotonic() - self.began:6.1f}s] {text}", file=self.stream,
                  flush=True)

    def open_log(self, path: str) -> None:
        """Also write every line to ``path`` (the image's build.log)."""
        self.close_log()
        self._log = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        super().close()


__all__ = ["Progress", "human"]
