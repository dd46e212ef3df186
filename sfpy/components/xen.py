"""SmartDomains' ``XenDomain``: one Xen domain on the image its storage backend put in place.

Start: the backend's volumes are in place (asked for if the backend has not started yet),
``xl info`` says there is the memory, the configuration file is written (absolute paths, see
:mod:`sfpy.host.xl`), ``xl create`` runs. If any of that fails the backend is told
(:meth:`~sfpy.components.storage.StorageBackend.domain_failed`): it deletes its volumes even
with ``keepVolumes true``. Liveness: ``xl list NAME`` every ``domainLivenessDelay``
milliseconds; ``domainLivenessFactor`` misses in a row terminate the component abnormally.
Termination: ``xl shutdown -w`` bounded by ``shutdownTimeout`` (milliseconds), then
``xl destroy``; a domain already gone is cleaned up, not a cleanup failure. A change of
``memory`` on a running domain calls ``xl mem-set``.
"""

from __future__ import annotations

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
from sfpy.engine.api import ABSENT, EngineError, Prim, TerminationRecord
from sfpy.errors import SfpyError
from sfpy.host import xl
from sfpy.host.hosts import Host

DEFAULT_SHUTDOWN_MS = 60000
#: Seconds the terminate hook may take beyond the shutdown timeout (for ``xl destroy``).
DESTROY_ALLOWANCE = 30


def _text(value: Any) -> str:
    """Free text that goes inside a quoted xl value: no quote, backslash or newline."""
    if not isinstance(value, str) or any(c in value for c in '"\\\n\r'):
        raise values.ValueProblem(f"{value!r} must be text without quotes, backslashes or "
                                  "newlines")
    return value


class XenDomain(Prim):
    """A Xen domain managed with ``xl`` (see the module docstring)."""

    declared_attributes = frozenset(
        "domainName hostname ip netmask gateway kernel ramdisk memory vcpus extra "
        "storageBackend shell domainLivenessDelay domainLivenessFactor domainLivenessCheck "
        "bridge mac shutdownTimeout xlCommand configDirectory configFile terminateTimeout "
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
        "bridge": values.name,
        "mac": values.mac,
        "shutdownTimeout": values.positive,
        "xlCommand": values.program,
        "configDirectory": values.absolute_path,
    }
    REQUIRED = ("hostname", "ip", "netmask", "kernel", "memory", "storageBackend")

    created = False
    backend: StorageBackend | None = None
    _entry: int | None = None
    _config_entry: int | None = None
    _misses = 0

    @classmethod
    def check_values(cls, attributes: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Every problem of a domain's values, before anything is made."""
        return values.check_values(attributes, cls.CHECKS, cls.REQUIRED)

    # -- values --------------------------------------------------------------------------------
    def _xl(self) -> str:
        return str(read(self, "xlCommand", values.program, "xl"))

    def deploy(self) -> None:
        for key in self.REQUIRED:
            if self.sf_resolve(key, None) is None:
                raise EngineError(f"{self.sf_complete_name()}:{key} is required")
        for key, checker in self.CHECKS.items():
            read(self, key, checker)
        hostname = read(self, "hostname", values.hostname)
        self.domain_name = read(self, "domainName", values.name) or hostname.split(".")[0]
        self.shutdown_ms = read(self, "shutdownTimeout", values.positive, DEFAULT_SHUTDOWN_MS)
        if self.sf_resolve("terminateTimeout", None) is None:
            # the cleanup bound must hold a whole shutdown and the destroy after it
            self.sf_replace_attribute("terminateTimeout",
                                      self.shutdown_ms / 1000 + DESTROY_ALLOWANCE)
        backend = self.sf_resolve("storageBackend")
        if not isinstance(backend, StorageBackend):
            raise EngineError(f"{self.sf_complete_name()}:storageBackend must be a link to a "
                              f"storage backend component, not {backend!r}")
        self.backend = backend
        backend.attach_domain(self.domain_name)

    def _config(self) -> xl.DomainConfig:
        assert self.backend is not None
        hostname = read(self, "hostname", values.hostname)
        return xl.DomainConfig(
            name=self.domain_name, kernel=read(self, "kernel", values.absolute_path),
            ramdisk=read(self, "ramdisk", values.absolute_path),
            memory=read(self, "memory", values.positive), hostname=hostname,
            ip=read(self, "ip", values.ipv4), netmask=read(self, "netmask", values.netmask),
            gateway=read(self, "gateway", values.ipv4, ""),
            vcpus=read(self, "vcpus", values.positive, 1), extra=read(self, "extra", _text, ""),
            bridge=read(self, "bridge", values.name, "xenbr0"),
            mac=read(self, "mac", values.mac, "") or xl.mac_for(hostname),
            disks=self.backend.disks())

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        assert self.backend is not None
        me = self.sf_complete_name()
        try:
            self.backend.put_in_place()
            host = host_of(self)
            config = self._config()
            free = xl.free_memory(host, self._xl(), me)
            if config.memory > free:
                raise EngineError(f"domain {self.domain_name} needs {config.memory} MiB; xl info "
                                  f"reports {free} MiB free")
            directory = read(self, "configDirectory", values.absolute_path, "/var/lib/sfpy/xen")
            path = f"{directory}/{self.domain_name}.cfg"
            host.run(["mkdir", "-p", directory], caller=me).check()
            self._config_entry = xl.write_config(host, path, xl.domain_config(config),
                                                 journal_of(self), me, me)
            self.config_path = path
            self.sf_replace_attribute("configFile", path)
            journal = journal_of(self)
            if journal is not None:
                self._entry = journal.add("xen-domain", me, {"name": self.domain_name,
                                                             "xl": self._xl()})
            result = xl.create(host, path, self._xl(), me)
            if not result.ok:
                raise EngineError(f"domain {self.domain_name} did not start: {result.describe()}")
        except BaseException:
            self.backend.domain_failed()
            raise
        self.created = True
        self.sf_replace_attribute("domainState", "running")
        self.log.info("domain %s created", self.domain_name)
        self._watch()

    def adopt(self, entries: list[Any]) -> bool:
        """After a daemon restart: take the domain back when ``xl list NAME`` still shows it
        (its ``xen-domain`` entry, and its configuration file's); the liveness checks begin
        at the first ping."""
        self.deploy()  # reads the values again (and tells the rebuilt backend its domain)
        self._in_flight, entries = split_commands_in_flight(entries)
        domains = [entry for entry in entries if entry.kind == "xen-domain"]
        files = [entry for entry in entries if entry.kind == "file"]
        if len(domains) != 1 or len(domains) + len(files) != len(entries) or len(files) > 1:
            return False
        if xl.alive(host_of(self), self.domain_name, self._xl(), self.sf_complete_name()) is not True:
            return False
        self._entry = domains[0].id
        if files:
            self._config_entry = files[0].id
            self.config_path = str(files[0].data.get("path"))
            self.sf_replace_attribute("configFile", self.config_path)
        self.sf_replace_attribute("domainState", "running")
        self.created = True
        self._watch_pending = True
        return True

    def ping(self) -> None:
        if getattr(self, "_watch_pending", False):  # adopted: watch as start would have
            self._watch_pending = False
            finish_commands_in_flight(self, self._in_flight)
            self._watch()

    def _watch(self) -> None:
        if read(self, "domainLivenessCheck", values.boolean, True):
            delay = read(self, "domainLivenessDelay", values.positive, 2000) / 1000
            self.factor = read(self, "domainLivenessFactor", values.positive, 3)
            self.schedule_every(delay, self._check_alive)

    def _check_alive(self) -> None:
        state = xl.alive(host_of(self), self.domain_name, self._xl(), self.sf_complete_name())
        if state:
            self._misses = 0
            return
        self._misses += 1
        self.log.warning("domain %s %s (%d of %d)", self.domain_name,
                         "is gone" if state is False else "could not be listed",
                         self._misses, self.factor)
        if self._misses >= self.factor:
            self.created = state is None  # gone: nothing left to stop
            self.sf_replace_attribute("domainState", "gone" if state is False else "unknown")
            self.sf_terminate(TerminationRecord.abnormal(
                f"domain {self.domain_name} failed its liveness check {self._misses} times "
                f"(xl list {self.domain_name})", id=self.sf_complete_name()))

    def attribute_changed(self, name: str, old: Any, new: Any) -> None:
        if name != "memory" or not self.created or new is ABSENT:
            return
        mib = read(self, "memory", values.positive)
        xl.set_memory(host_of(self), self.domain_name, mib, self._xl(), self.sf_complete_name())
        self.log.info("domain %s memory set to %d MiB", self.domain_name, mib)

    def terminate(self, record: TerminationRecord) -> None:
        finish_commands_in_flight(self, getattr(self, "_in_flight", []))  # adopted, no ping
        me = self.sf_complete_name()
        journal = journal_of(self)
        problem: str | None = None
        host: Host | None = None
        try:
            host = host_of(self)
            if self.created or self._entry is not None:
                how = xl.stop(host, self.domain_name, self.shutdown_ms / 1000, self._xl(), me)
                self.log.info("domain %s %s", self.domain_name,
                              "was already gone" if how == "gone" else how)
            if journal is not None and self._entry is not None:
                journal.done(self._entry)
                self._entry = None
        except SfpyError as error:
            problem = f"domain {self.domain_name} could not be stopped: {error}"
        finally:
            self.created = False
            path = getattr(self, "config_path", None)
            if path is not None and host is not None:
                try:
                    host.run(["rm", "-f", path], caller=me).check()
                    if journal is not None and self._config_entry is not None:
                        journal.done(self._config_entry)
                        self._config_entry = None
                except SfpyError as error:
                    problem = problem or f"could not remove {path}: {error}"
        if problem is not None:
            raise EngineError(problem)


__all__ = ["XenDomain"]
