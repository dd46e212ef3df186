"""``QemuDomain``: XenDomain's attributes and lifecycle, booted by QEMU (docs/components.md).

Where there is no Xen (a CI machine, a laptop, this project's test machine: software
emulation only), a site's domains boot as QEMU guests on the same storage backends: the
root volume is ``/dev/vda`` (raw, or the backend's qcow2 overlay), swap ``/dev/vdb``, and
the network identity goes on the kernel command line as XenDomain's does.

Start: the backend's volumes in place; values and memory checked; the QEMU command written
to ``<configDirectory>/<domain>.args``; every QEMU process, tap and file journalled before it
is made; QEMU launched (:mod:`sfpy.host.qemu`); then the start *waits until the guest is
ready* — ``readyPattern`` (a regular expression; ``@hostname@``, ``@ip@``, ``@domainName@``
stand for those values) seen on the serial console within ``readyTimeout`` — as long work,
so the application stays free meanwhile (the domains of a ``Parallel`` boot side by side).
Not ready in time, or QEMU gone: the start fails, QEMU is stopped and the backend is told
(it deletes the volumes, as after XenDomain's failed start). Console lines go to the
component's log (``sflogs``). Liveness: QMP ``query-status`` every ``domainLivenessDelay``
ms; ``domainLivenessFactor`` misses in a row terminate abnormally. Terminate: ACPI
``system_powerdown`` bounded by ``shutdownTimeout`` (ms), QMP ``quit``, SIGKILL; then the
tap and the files go. A restarted daemon takes the guest back (``adopt``) when the very
QEMU process it journaled still runs and answers QMP.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from sfpy.components import smartdomains_values as values
from sfpy.components.storage import (
    StorageBackend,
    finish_commands_in_flight,
    host_of,
    journal_of,
    read,
    split_commands_in_flight,
)
from sfpy.engine.api import EngineError, Prim, TerminationRecord
from sfpy.errors import SfpyError
from sfpy.host import processes, qemu
from sfpy.host.hosts import Host
from sfpy.host.work import check, current_step, remaining

DEFAULT_SHUTDOWN_MS = 60000
DEFAULT_READY_MS = 120000
#: Seconds the terminate hook may take beyond the shutdown timeout (quit, kill, files).
STOP_ALLOWANCE = 30
#: Seconds between two reads of the console while waiting for readiness.
READY_POLL = 0.2
#: Console lines quoted in the message of a guest that did not become ready.
QUOTED_LINES = 5
ACCELS = ("tcg", "kvm")
NETWORKS = ("none", "user", "bridge")
#: QMP run states that are not a live guest (a miss for liveness).
DEAD_STATES = frozenset({"internal-error", "guest-panicked", "io-error", "shutdown"})
_PLACEHOLDERS = ("hostname", "ip", "domainName")


def _text(value: Any) -> str:
    if not isinstance(value, str) or any(c in value for c in "\n\r\0"):
        raise values.ValueProblem(f"{value!r} must be text on one line")
    return value


def _choice(options: tuple[str, ...]) -> values.Checker:
    def check(value: Any) -> str:
        if value not in options:
            raise values.ValueProblem(f"{value!r} is not one of {', '.join(options)}")
        return str(value)
    return check


def _pattern(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise values.ValueProblem(f"{value!r} is not a regular expression")
    try:
        re.compile(value.replace("@", ""))
    except re.error as error:
        raise values.ValueProblem(f"{value!r} is not a regular expression ({error})") from None
    return value


def _interface(value: Any) -> str:
    """A network interface or namespace name (15 characters, no slash or space)."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}", value):
        raise values.ValueProblem(f"{value!r} is not an interface name (letters, digits, _.- "
                                  "up to 15 characters)")
    return value


def _netns(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
        raise values.ValueProblem(f"{value!r} is not a network namespace name")
    return value


def ready_regex(pattern: str, fields: Mapping[str, str]) -> re.Pattern[str]:
    """``pattern`` with each ``@name@`` replaced by that value, escaped."""
    text = pattern
    for name in _PLACEHOLDERS:
        text = text.replace(f"@{name}@", re.escape(fields.get(name, "")))
    return re.compile(text)


class QemuDomain(Prim):
    """A QEMU guest on its storage backend's volumes (see the module docstring)."""

    declared_attributes = frozenset(
        "domainName hostname ip netmask gateway kernel ramdisk memory vcpus extra "
        "storageBackend shell domainLivenessDelay domainLivenessFactor domainLivenessCheck "
        "bridge mac shutdownTimeout qemuCommand accel network readyPattern readyTimeout netns "
        "configDirectory configFile consoleLog qmpSocket pid terminateTimeout "
        "domainState".split())

    CHECKS: dict[str, values.Checker] = {
        "domainName": values.name,
        "hostname": values.hostname,
        "ip": values.ipv4,
        "netmask": values.netmask,
        "gateway": values.ipv4,
        "kernel": values.absolute_path,
        "ramdisk": values.absolute_path,
        "memory": values.positive,
        "vcpus": values.positive,
        "extra": _text,
        "domainLivenessDelay": values.positive,
        "domainLivenessFactor": values.positive,
        "domainLivenessCheck": values.boolean,
        "bridge": _interface,
        "mac": values.mac,
        "shutdownTimeout": values.positive,
        "qemuCommand": values.program,
        "accel": _choice(ACCELS),
        "network": _choice(NETWORKS),
        "readyPattern": _pattern,
        "readyTimeout": values.positive,
        "netns": _netns,
        "configDirectory": values.absolute_path,
    }
    REQUIRED = ("hostname", "ip", "netmask", "kernel", "memory", "storageBackend")
    DEFAULT_DIRECTORY = "/var/lib/sfpy/qemu"

    backend: StorageBackend | None = None
    launched = False
    pid: int | None = None
    create_time: float | None = None
    _entry: int | None = None
    _tap_entry: int | None = None
    _file_entries: dict[str, int]
    _console_offset = 0
    _partial = ""
    _misses = 0

    @classmethod
    def check_values(cls, attributes: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Every problem of a domain's values, before anything is made."""
        problems = values.check_values(attributes, cls.CHECKS, cls.REQUIRED)
        if attributes.get("network") == "bridge" and attributes.get("bridge") is None:
            problems.append(("bridge", "bridge is required when network is \"bridge\""))
        directory = attributes.get("configDirectory", cls.DEFAULT_DIRECTORY)
        hostname = attributes.get("hostname")
        name = attributes.get("domainName") or (
            hostname.split(".")[0] if isinstance(hostname, str) else None)
        if isinstance(directory, str) and isinstance(name, str):
            socket = f"{directory}/{name}.qmp"
            if len(socket) > qemu.SOCKET_PATH_MAX:
                problems.append(("configDirectory", f"configDirectory is too long: the QMP "
                                 f"socket {socket} exceeds {qemu.SOCKET_PATH_MAX} characters"))
        return problems

    # -- values --------------------------------------------------------------------------------
    def deploy(self) -> None:
        me = self.sf_complete_name()
        for key in self.REQUIRED:
            if self.sf_resolve(key, None) is None:
                raise EngineError(f"{me}:{key} is required")
        for key, checker in self.CHECKS.items():
            read(self, key, checker)
        self._file_entries = {}
        hostname = read(self, "hostname", values.hostname)
        self.domain_name = read(self, "domainName", values.name) or hostname.split(".")[0]
        self.shutdown_ms = read(self, "shutdownTimeout", values.positive, DEFAULT_SHUTDOWN_MS)
        self.network = read(self, "network", _choice(NETWORKS), "none")
        if self.network == "bridge" and read(self, "bridge", _interface) is None:
            raise EngineError(f"{me}:bridge is required when network is \"bridge\"")
        directory = read(self, "configDirectory", values.absolute_path, self.DEFAULT_DIRECTORY)
        self.directory = directory
        self.files = {kind: f"{directory}/{self.domain_name}.{kind}"
                      for kind in ("args", "console.log", "qmp", "pid")}
        if len(self.files["qmp"]) > qemu.SOCKET_PATH_MAX:
            raise EngineError(f"{me}:configDirectory is too long for the QMP socket "
                              f"{self.files['qmp']}")
        if self.sf_resolve("terminateTimeout", None) is None:
            # the cleanup bound must hold a whole power-down and the quit or kill after it
            self.sf_replace_attribute("terminateTimeout",
                                      self.shutdown_ms / 1000 + STOP_ALLOWANCE)
        backend = self.sf_resolve("storageBackend")
        if not isinstance(backend, StorageBackend):
            raise EngineError(f"{me}:storageBackend must be a link to a storage backend "
                              f"component, not {backend!r}")
        self.backend = backend
        backend.attach_domain(self.domain_name)

    def _guest(self, accel: str) -> qemu.GuestConfig:
        assert self.backend is not None
        hostname = read(self, "hostname", values.hostname)
        ip = read(self, "ip", values.ipv4)
        disks = self.backend.disks()
        append = " ".join(part for part in (
            "root=/dev/vda rw", "console=ttyS0",
            qemu.kernel_ip(ip, read(self, "gateway", values.ipv4, ""),
                           read(self, "netmask", values.netmask), hostname),
            read(self, "extra", _text, "")) if part)
        return qemu.GuestConfig(
            name=self.domain_name, kernel=read(self, "kernel", values.absolute_path),
            ramdisk=read(self, "ramdisk", values.absolute_path),
            memory=read(self, "memory", values.positive), vcpus=read(self, "vcpus", values.positive, 1),
            append=append, console=self.files["console.log"], qmp=self.files["qmp"],
            pidfile=self.files["pid"], disks=disks, accel=accel, network=self.network,
            tap=qemu.tap_name(self.domain_name),
            mac=read(self, "mac", values.mac, "") or qemu.mac_for(hostname),
            qemu=read(self, "qemuCommand", values.program, "qemu-system-x86_64"))

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        assert self.backend is not None
        me = self.sf_complete_name()
        journal = journal_of(self)
        host: Host | None = None
        netns = read(self, "netns", _netns)
        try:
            self.backend.put_in_place()
            host = host_of(self)
            accel = read(self, "accel", _choice(ACCELS), "tcg")
            qemu_command = read(self, "qemuCommand", values.program, "qemu-system-x86_64")
            self._check_memory(read(self, "memory", values.positive))
            host.make_directories(self.directory, caller=me)
            if accel == "kvm":
                probe = f"{self.directory}/{self.domain_name}.kvm-probe"
                entry = journal.add("file", me, {"path": probe}) if journal else None
                works, why = qemu.kvm_works(host, qemu_command,
                                            read(self, "kernel", values.absolute_path),
                                            probe, caller=me)
                if journal is not None and entry is not None:
                    journal.done(entry)  # kvm_works removed it
                if not works:
                    raise EngineError(f"accel kvm was asked for, but {why}: use accel "
                                      "\"tcg\"")
            guest = self._guest(accel)
            argv = qemu.command_line(guest)
            for kind in ("args", "console.log"):
                if journal is not None:
                    self._file_entries[kind] = journal.add("file", me, {"path": self.files[kind]})
            host.write_text(self.files["args"], "\n".join(argv) + "\n", caller=me)
            host.remove_files([self.files["console.log"], self.files["qmp"], self.files["pid"]],
                              caller=me)
            if journal is not None:
                self._entry = journal.add("qemu-process", me, {
                    "name": self.domain_name, "qmp": self.files["qmp"],
                    "pidfile": self.files["pid"]})
                if self.network == "bridge":
                    self._tap_entry = journal.add("tap", me, {"name": guest.tap,
                                                              "netns": netns})
            self.launched = True
            qemu.launch(host, argv, netns, caller=me)
            self.pid = qemu.read_pid(host, self.files["pid"])
            self.create_time = processes.creation_time(self.pid) if self.pid else None
            if journal is not None and self._entry is not None:
                journal.update(self._entry, {"pid": self.pid, "create_time": self.create_time})
            for key, value in (("configFile", self.files["args"]),
                               ("consoleLog", self.files["console.log"]),
                               ("qmpSocket", self.files["qmp"]), ("pid", self.pid)):
                self.sf_replace_attribute(key, value)
            self.sf_replace_attribute("domainState", "running")
            self.log.info("QEMU guest %s launched (pid %s, accel %s)", self.domain_name,
                          self.pid, accel)
            if self.network == "bridge":
                qemu.attach_tap(host, guest.tap, read(self, "bridge", _interface), netns,
                                caller=me)
            self._wait_ready()
        except BaseException:
            self.backend.domain_failed()
            self._stop_now()
            raise
        self._watch()

    def _watch(self) -> None:
        if read(self, "domainLivenessCheck", values.boolean, True):
            delay = read(self, "domainLivenessDelay", values.positive, 2000) / 1000
            self.factor = read(self, "domainLivenessFactor", values.positive, 3)
            self.schedule_every(delay, self._check_alive)

    def adopt(self, entries: list[Any]) -> bool:
        """After a daemon restart: take the guest back when the QEMU process of its
        ``qemu-process`` entry (pid and start time) still runs and its QMP monitor answers
        with a live run state; its tap and file entries belong to it. Liveness (and the
        console's forwarding, from the file's end) resume at the first ping; terminate
        powers it down as after a start."""
        self.deploy()  # reads the values again (and tells the rebuilt backend its domain)
        self._in_flight, entries = split_commands_in_flight(entries)
        launched = [entry for entry in entries if entry.kind == "qemu-process"]
        taps = [entry for entry in entries if entry.kind == "tap"]
        files = [entry for entry in entries if entry.kind == "file"]
        if (len(launched) != 1 or len(taps) > 1 or len(launched) + len(taps) + len(files)
                != len(entries) or bool(taps) != (self.network == "bridge")):
            return False
        kinds = {path: kind for kind, path in self.files.items()}
        if any(kinds.get(entry.data.get("path")) is None for entry in files):
            return False  # not a file of this guest's (a KVM probe's: start did not end)
        data = launched[0].data
        pid, created = data.get("pid"), data.get("create_time")
        if (not isinstance(pid, int) or not isinstance(created, (int, float))
                or data.get("qmp") != self.files["qmp"] or not qemu.running(pid, created)):
            return False
        try:
            state = qemu.status(self.files["qmp"], timeout=qemu.QMP_TIMEOUT)
        except qemu.QmpError as error:
            self.log.warning("domain %s: cannot take it back: %s", self.domain_name, error)
            return False
        if state in DEAD_STATES:
            return False
        self.pid, self.create_time, self.launched = pid, float(created), True
        self._entry = launched[0].id
        self._tap_entry = taps[0].id if taps else None
        self._file_entries = {kinds[entry.data["path"]]: entry.id for entry in files}
        try:  # forwarding resumes after what the console held before the restart
            self._console_offset = os.path.getsize(self.files["console.log"])
        except OSError:
            self._console_offset = 0
        for key, value in (("configFile", self.files["args"]),
                           ("consoleLog", self.files["console.log"]),
                           ("qmpSocket", self.files["qmp"]), ("pid", pid)):
            self.sf_replace_attribute(key, value)
        ready = self.sf_resolve("readyPattern", None) is not None
        self.sf_replace_attribute("domainState", "ready" if ready else "running")
        self._watch_pending = True
        return True

    def ping(self) -> None:
        if getattr(self, "_watch_pending", False):  # adopted: watch as start would have
            self._watch_pending = False
            finish_commands_in_flight(self, self._in_flight)
            self._watch()

    def _check_memory(self, mib: int) -> None:
        import psutil

        free = psutil.virtual_memory().available // (1024 * 1024)
        if mib > free:
            raise EngineError(f"domain {self.domain_name} needs {mib} MiB; the host has "
                              f"{free} MiB available")

    def _wait_ready(self) -> None:
        """Return once ``readyPattern`` shows on the console (long work, lock released)."""
        pattern = read(self, "readyPattern", _pattern)
        if pattern is None:
            return
        fields = {"hostname": read(self, "hostname", values.hostname),
                  "ip": read(self, "ip", values.ipv4), "domainName": self.domain_name}
        regex = ready_regex(pattern, fields)
        limit = read(self, "readyTimeout", values.positive, DEFAULT_READY_MS) / 1000
        step = current_step()
        check(step)
        import time

        began = time.monotonic()
        seen: list[str] = []
        ready = gone = False
        with step.blocking(f"waiting for {self.domain_name} to be ready (pid {self.pid})"):
            while True:
                seen.extend(self._forward_console())
                if regex.search("\n".join(seen)):
                    ready = True
                    break
                if not qemu.running(self.pid, self.create_time):
                    seen.extend(self._forward_console())
                    gone = not regex.search("\n".join(seen))
                    ready = not gone
                    break
                if time.monotonic() - began >= limit or step.wait_cancelled(READY_POLL):
                    break
        check(step)
        took = time.monotonic() - began
        if ready:
            self.sf_replace_attribute("domainState", "ready")
            self.log.info("domain %s ready after %.1f s", self.domain_name, took)
            return
        last = " | ".join(line for line in seen[-QUOTED_LINES:]) or "nothing"
        if gone:
            raise EngineError(f"domain {self.domain_name}: QEMU ended before the guest was "
                              f"ready; the console's last lines: {last}")
        raise EngineError(f"domain {self.domain_name} was not ready within {limit:g} s "
                          f"(readyPattern {pattern!r} not seen); the console's last lines: "
                          f"{last}")

    def _forward_console(self) -> list[str]:
        """The console's new complete lines, also written to the component's log."""
        path = getattr(self, "files", {}).get("console.log")
        if path is None:
            return []
        try:
            with open(path, "rb") as handle:
                handle.seek(self._console_offset)
                data = handle.read()
        except OSError:
            return []
        self._console_offset += len(data)
        text = self._partial + data.decode("utf-8", "replace").replace("\r", "")
        lines = text.split("\n")
        self._partial = lines.pop()
        lines = [line for line in lines if line.strip()]
        for line in lines:
            self.log.info("console: %s", line)
        return lines

    def _check_alive(self) -> None:
        self._forward_console()
        me = self.sf_complete_name()
        step = current_step()
        alive: bool | None
        with step.blocking(f"QMP query-status of {self.domain_name}"):
            if not qemu.running(self.pid, self.create_time):
                alive, what = False, "QEMU is gone"
            else:
                try:
                    state = qemu.status(self.files["qmp"], timeout=qemu.QMP_TIMEOUT)
                    alive = state not in DEAD_STATES
                    what = f"is {state}"
                except qemu.QmpError as error:
                    alive, what = None, f"did not answer QMP ({error})"
        if alive:
            self._misses = 0
            return
        self._misses += 1
        self.log.warning("domain %s %s (%d of %d)", self.domain_name, what, self._misses,
                         self.factor)
        if self._misses >= self.factor:
            self.sf_replace_attribute("domainState", "gone" if alive is False else "unknown")
            self.sf_terminate(TerminationRecord.abnormal(
                f"domain {self.domain_name} failed its liveness check {self._misses} times "
                f"({what})", id=me))

    def _stop_now(self) -> None:
        """After a failed start: no power-down, QMP quit then kill (bounded), tap and files."""
        try:
            self._stop(graceful=False)
        except SfpyError as error:
            self.log.warning("domain %s: %s", self.domain_name, error)

    def _stop(self, graceful: bool) -> None:
        me = self.sf_complete_name()
        journal = journal_of(self)
        host = host_of(self)
        step = current_step()
        problem: str | None = None
        if self.launched:
            if self.pid is None and getattr(self, "files", None):
                self.pid = qemu.read_pid(host, self.files["pid"])
                self.create_time = processes.creation_time(self.pid) if self.pid else None
            timeout = self.shutdown_ms / 1000 if graceful else 0.0
            left = remaining(step, None)
            if left is not None:
                timeout = max(0.0, min(timeout, left - STOP_ALLOWANCE / 2))
            try:
                with step.blocking(f"stopping QEMU guest {self.domain_name} (pid {self.pid})"):
                    how = qemu.stop(self.pid, self.create_time, self.files["qmp"], timeout,
                                    wait=step.wait_cancelled if graceful else None)
                self.log.info("domain %s %s", self.domain_name,
                              "was already gone" if how == "gone" else how)
                self.launched = False
                if journal is not None and self._entry is not None:
                    journal.done(self._entry)
                    self._entry = None
            except SfpyError as error:
                problem = f"domain {self.domain_name} could not be stopped: {error}"
            self._forward_console()
        if self._tap_entry is not None and problem is None:
            netns = read(self, "netns", _netns)
            try:
                qemu.delete_tap(host, qemu.tap_name(self.domain_name), netns, caller=me)
                if journal is not None:
                    journal.done(self._tap_entry)
                self._tap_entry = None
            except SfpyError as error:
                problem = f"tap {qemu.tap_name(self.domain_name)} could not be deleted: {error}"
        files = getattr(self, "files", None)
        if files and problem is None:
            try:
                host.run(["rm", "-f", *files.values()], caller=me).check()
                for entry in self._file_entries.values():
                    if journal is not None:
                        journal.done(entry)
                self._file_entries.clear()
            except SfpyError as error:
                problem = f"could not remove the files of {self.domain_name}: {error}"
        if problem is not None:
            raise EngineError(problem)

    def terminate(self, record: TerminationRecord) -> None:
        if self.backend is None:
            return  # never deployed far enough to make anything
        finish_commands_in_flight(self, getattr(self, "_in_flight", []))  # adopted, no ping
        self._stop(graceful=True)


__all__ = ["QemuDomain", "ready_regex"]
