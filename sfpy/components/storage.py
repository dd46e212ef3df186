"""SmartDomains' storage backends (``ch/cern/openlab/smartdomains/components.sf``):
:class:`LoopbackStorageBackend` (volumes are files in ``imageDirectory``) and
:class:`LVMStorageBackend` (logical volumes in ``volumeGroup``).

A backend serves one domain. The domain tells it its name when it deploys
(:meth:`StorageBackend.attach_domain`); the backend puts the image in place when it starts
(or when its domain starts first: :meth:`StorageBackend.put_in_place` is idempotent), naming
the volumes ``<volumeBaseName>-<domain>`` and ``…-swap``. On termination it saves the image
(``saveImage``), then deletes the volumes unless ``keepVolumes``; when its domain failed to
start (:meth:`StorageBackend.domain_failed`) it deletes them whatever ``keepVolumes`` says and
saves nothing. A restarted daemon gives a started backend its volumes back
(:meth:`StorageBackend.adopt`) when its journal's entries name volumes that all still exist.
The commands are the host layer's operations (:mod:`sfpy.host.storage`), run
through ``shell`` (a LAZY link to a BashShell) so they are in its log, or through the run's
host layer when the process has one (tests give a ``RecordingHost``).

Every value is checked before anything is made: :meth:`StorageBackend.check_values` is
called by the deployer for every component before any deploys.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sfpy.components import smartdomains_values as values
from sfpy.components.shell import BashShell
from sfpy.engine.api import EngineError, Prim, TerminationRecord
from sfpy.errors import SfpyError
from sfpy.host import storage
from sfpy.host.hosts import FileOperations, Host
from sfpy.host.runner import JournalLike, Result, ShellRunner
from sfpy.language.references import properties as system_properties


class ShellHost(FileOperations):
    """A :class:`~sfpy.host.hosts.Host` whose commands go through a BashShell (its log, its
    environment — the PATH that finds ``xl`` —, its journal)."""

    name = "localhost"

    def __init__(self, shell: BashShell | ShellRunner) -> None:
        self.shell = shell

    def run(self, argv: Sequence[str], *, timeout: float | None = None,
            env: Mapping[str, str] | None = None, cwd: str | None = None,
            input: str | None = None, label: str | None = None,
            caller: str | None = None) -> Result:
        return self.shell.run(list(argv), timeout=timeout, env=env, cwd=cwd, input=input,
                              label=label, caller=caller)

    def probe(self, argv: Sequence[str], *, timeout: float | None = None,
              caller: str | None = None) -> Result:
        return self.shell.run(list(argv), timeout=timeout, caller=caller)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read_text(self, path: str) -> str:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def _file_log(self) -> Any:
        return self.shell.log


def host_of(component: Prim) -> Host:
    """Where a SmartDomains component acts: the run's host layer when it has one, else its
    ``shell`` (a private runner once that shell has terminated)."""
    process = component.sf_process()
    layer = getattr(process, "host_layer", None)
    if layer is not None:
        return layer
    shell = component.sf_resolve("shell", None)
    if isinstance(shell, BashShell) and not shell.sf_is_terminating:
        return ShellHost(shell)
    private = getattr(component, "_private_runner", None)
    if private is None:
        private = ShellRunner(component.log, journal=journal_of(component),
                              owner=component.sf_complete_name(), parallel=True)
        component._private_runner = private  # type: ignore[attr-defined]
    return ShellHost(private)


def journal_of(component: Prim) -> JournalLike | None:
    process = component.sf_process()
    return process.journal if process is not None else None


def read(component: Prim, key: str, checker: values.Checker, default: Any = None) -> Any:
    """An attribute read through its checker (a clear error naming it)."""
    value = component.sf_resolve(key, None)
    if value is None:
        return default
    try:
        return checker(value)
    except values.ValueProblem as error:
        raise EngineError(f"{component.sf_complete_name()}:{key} {error}") from None


def split_commands_in_flight(entries: list[Any]) -> tuple[list[Any], list[Any]]:
    """(``process-group`` entries, the others): a domain's liveness probe (``xl list``)
    running when the daemon was killed leaves its command's entry open. It is no reason to
    refuse adoption: the adopted component stops what is left of it
    (:func:`finish_commands_in_flight`) when it first runs."""
    groups = [entry for entry in entries if entry.kind == "process-group"]
    return groups, [entry for entry in entries if entry.kind != "process-group"]


def finish_commands_in_flight(component: Prim, entries: list[Any]) -> None:
    """Stop what is left of commands a killed daemon had running (usually already gone)
    and close their entries."""
    from sfpy.host.journal import stop_process_group_entry

    journal = journal_of(component)
    while entries:
        entry = entries.pop()
        try:
            component.log.info("%s", stop_process_group_entry(entry))
        except SfpyError as error:
            component.log.warning("a command of the daemon before its restart: %s", error)
            continue
        if journal is not None:
            journal.done(entry.id)


def _swap_size(value: Any) -> int:
    if value in (0, "0"):
        return 0
    return values.size_bytes(value)


def _extension(value: Any) -> str:
    if value not in storage.SAVE_EXTENSIONS:
        raise values.ValueProblem(f"{value!r} is not one of {', '.join(storage.SAVE_EXTENSIONS)}")
    return str(value)


class StorageBackend(Prim):
    """What both backends share (see the module docstring)."""

    declared_attributes = frozenset(
        "shell baseImage volumeSize swapSize volumeBaseName usingExistingVolumes keepVolumes "
        "saveImage saveImagePath saveImageExtension domainName scratchDirectory volume "
        "swapVolume savedImage terminateTimeout".split())

    CHECKS: dict[str, values.Checker] = {
        "baseImage": values.absolute_path,
        "volumeSize": values.size_bytes,
        "swapSize": _swap_size,
        "volumeBaseName": values.name,
        "usingExistingVolumes": values.boolean,
        "keepVolumes": values.boolean,
        "saveImage": values.boolean,
        "saveImagePath": values.absolute_path,
        "saveImageExtension": _extension,
        "domainName": values.name,
        "scratchDirectory": values.absolute_path,
    }

    volumes: storage.Volumes | None = None
    domain: str | None = None
    failed = False

    @classmethod
    def check_values(cls, attributes: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Every problem of a backend's values, before anything is made (see
        :func:`sfpy.engine.deployer.check_description`)."""
        problems = values.check_values(attributes, cls.CHECKS)

        def flag(key: str) -> bool:
            try:
                return values.boolean(attributes.get(key, False))
            except values.ValueProblem:
                return False

        existing = flag("usingExistingVolumes")
        base = attributes.get("baseImage")
        if not existing and base is None and not cls._has_other_source(attributes):
            problems.append(("baseImage", "baseImage is required (unless "
                             "usingExistingVolumes is true)"))
        if (not existing and isinstance(base, str) and base.endswith(storage.TARBALL_SUFFIXES)
                and attributes.get("volumeSize") is None):
            problems.append(("volumeSize", "volumeSize is required when baseImage is a tarball"))
        if flag("saveImage") and attributes.get("saveImagePath") is None:
            problems.append(("saveImagePath", "saveImagePath is required when saveImage is true"))
        return problems

    @classmethod
    def _has_other_source(cls, attributes: Mapping[str, Any]) -> bool:
        return False

    # -- what the domain calls -----------------------------------------------------------------
    def attach_domain(self, name: str) -> None:
        """The domain this backend serves (told by the domain when it deploys)."""
        if self.domain is not None and self.domain != name:
            raise EngineError(f"{self.sf_complete_name()} already serves domain {self.domain}; "
                              f"a backend serves one domain, not also {name}")
        self.domain = name

    def domain_failed(self) -> None:
        """The domain did not start: delete the volumes at termination, keepVolumes or not."""
        self.failed = True

    def disks(self) -> list[tuple[str, str]]:
        """(target, format) of the root volume, then the swap volume."""
        if self.volumes is None and getattr(self, "_rediscover", False):
            self._find_again()
        if self.volumes is None:
            raise EngineError(f"{self.sf_complete_name()} has no volumes in place")
        disks = [(self.volumes.root, self.volumes.root_format)]
        if self.volumes.swap:
            disks.append((self.volumes.swap, "raw"))
        return disks

    # -- lifecycle -----------------------------------------------------------------------------
    def deploy(self) -> None:
        for key, checker in self.CHECKS.items():
            read(self, key, checker)
        self.keep = read(self, "keepVolumes", values.boolean, False)
        self.existing = read(self, "usingExistingVolumes", values.boolean, False)
        self.save = read(self, "saveImage", values.boolean, False)

    def start(self) -> None:
        self.put_in_place()

    def adopt(self, entries: list[Any]) -> bool:
        """After a daemon restart: take back the volumes its journal entries name when they
        all still exist (the backend then knows its paths again, and its terminate saves
        and deletes them as configured); any missing, or anything else still open (a
        scratch directory, an export: start had finished, so none should be), says no and
        the application is cleaned. Re-used volumes (``usingExistingVolumes``) have no
        entry: they are looked up again by name, at once when the domain's name is known,
        else when first needed (their domain tells it when it adopts)."""
        self.deploy()  # reads the values again; makes nothing
        if self.existing:
            if entries:
                return False
            self._rediscover = True
            if self.domain is not None or self.sf_resolve("domainName", None) is not None:
                return self._find_again()
            return True
        if not entries:
            return False  # a started backend made volumes: their record is gone
        volumes = self._volumes_of(host_of(self), entries)
        if volumes is None:
            return False
        self.volumes = volumes
        self.sf_replace_attribute("volume", volumes.root)
        if volumes.swap:
            self.sf_replace_attribute("swapVolume", volumes.swap)
        return True

    def _find_again(self) -> bool:
        """Re-used volumes, looked up again by name (True when they are there)."""
        self._rediscover = False
        try:
            self.put_in_place()
        except SfpyError as error:
            self.log.warning("cannot take back the existing volumes: %s", error)
            return False
        return True

    def volume_name(self) -> str:
        domain = self.domain or read(self, "domainName", values.name)
        if domain is None:
            raise EngineError(f"{self.sf_complete_name()} serves no domain: give it a "
                              "domainName or name it as a XenDomain's storageBackend")
        base = read(self, "volumeBaseName", values.name, "xen-domain")
        return f"{base}-{domain}"

    def put_in_place(self) -> storage.Volumes:
        """Make (or, with usingExistingVolumes, find) the volumes; idempotent."""
        if self.volumes is not None:
            return self.volumes
        name = self.volume_name()
        host = host_of(self)
        if self.existing:
            self.volumes = self._existing(host, name)
            self.log.info("using the existing volumes %s", self.volumes.root)
        else:
            self.volumes = self._create(host, name)
            self.log.info("put in place %s", self.volumes.root)
        self.sf_replace_attribute("volume", self.volumes.root)
        if self.volumes.swap:
            self.sf_replace_attribute("swapVolume", self.volumes.swap)
        return self.volumes

    def scratch(self) -> str:
        return read(self, "scratchDirectory", values.absolute_path, tempfile.gettempdir())

    def terminate(self, record: TerminationRecord) -> None:
        if self.volumes is None and getattr(self, "_rediscover", False):
            self._find_again()  # adopted re-used volumes, not needed since
        volumes = self.volumes
        if volumes is None:
            return
        host = host_of(self)
        problem: str | None = None
        delete = not self.keep or self.failed
        if self.failed:
            self.log.info("the domain did not start: deleting its volumes, saving nothing")
        elif self.save:
            try:
                saved = self._save(host, volumes)
                self.log.info("saved the image as %s", saved)
                self.sf_replace_attribute("savedImage", saved)
            except SfpyError as error:
                problem = f"the image could not be saved: {error}"
                delete = False  # never lose the only copy of what the domain did
        if delete:  # re-used volumes too: keepVolumes says whether volumes outlive the domain
            self._delete(host, volumes)
        else:
            journal = journal_of(self)
            for entry in volumes.entries:  # kept on purpose: nothing for recovery to undo
                if journal is not None:
                    journal.done(entry)
            volumes.entries.clear()
            self.log.info("kept the volumes %s", volumes.root)
        self.volumes = None
        private = getattr(self, "_private_runner", None)
        if private is not None:
            private.close()
        if problem is not None:
            raise EngineError(problem)

    def _save(self, host: Host, volumes: storage.Volumes) -> str:
        directory = read(self, "saveImagePath", values.absolute_path)
        extension = read(self, "saveImageExtension", _extension, "tar.gz")
        when = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return storage.save_image(host, source=volumes.root, source_format=volumes.root_format,
                                  directory=directory, stem=self.volume_name(),
                                  extension=extension, when=when, scratch=self.scratch(),
                                  journal=journal_of(self), owner=self.sf_complete_name(),
                                  caller=self.sf_complete_name())

    # -- per kind ------------------------------------------------------------------------------
    def _volumes_of(self, host: Host, entries: list[Any]) -> storage.Volumes | None:
        """The volumes that open journal ``entries`` name, when every one still exists
        (None: one is missing, or an entry is not a volume of this kind)."""
        raise NotImplementedError

    def _existing(self, host: Host, name: str) -> storage.Volumes:
        raise NotImplementedError

    def _create(self, host: Host, name: str) -> storage.Volumes:
        raise NotImplementedError

    def _delete(self, host: Host, volumes: storage.Volumes) -> None:
        raise NotImplementedError


class LoopbackStorageBackend(StorageBackend):
    """Volumes are files in ``imageDirectory`` (xl attaches them itself: no loop device).
    With an ext4 ``baseImage`` and ``copyOnWrite`` (default true) the root volume is a qcow2
    overlay on the base instead of a copy."""

    declared_attributes = frozenset(["imageDirectory", "copyOnWrite"])
    CHECKS = {**StorageBackend.CHECKS, "imageDirectory": values.absolute_path,
              "copyOnWrite": values.boolean}

    @classmethod
    def check_values(cls, attributes: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = super().check_values(attributes)
        if attributes.get("imageDirectory") is None:
            problems.append(("imageDirectory", "imageDirectory is required"))
        return problems

    def _directory(self) -> str:
        directory = read(self, "imageDirectory", values.absolute_path)
        if directory is None:
            raise EngineError(f"{self.sf_complete_name()}:imageDirectory is required")
        return str(directory)

    def _volumes_of(self, host: Host, entries: list[Any]) -> storage.Volumes | None:
        paths = [entry.data.get("path") for entry in entries]
        directory = os.path.normpath(self._directory())
        if any(entry.kind != "file" for entry in entries) or len(entries) > 2 or not all(
                isinstance(path, str) and os.path.dirname(os.path.normpath(path)) == directory
                for path in paths):
            return None
        root = [path for path in paths if not path.endswith("-swap.img")]
        swap = [path for path in paths if path.endswith("-swap.img")]
        if len(root) != 1 or len(swap) > 1:
            return None
        for path in paths:
            if not host.exists(path):
                self.log.warning("cannot take back the volumes: %s is gone", path)
                return None
        return storage.Volumes(root[0], swap[0] if swap else None,
                               "qcow2" if root[0].endswith(".qcow2") else "raw",
                               entries=[entry.id for entry in entries])

    def _existing(self, host: Host, name: str) -> storage.Volumes:
        return storage.loopback_existing(host, self._directory(), name)

    def _create(self, host: Host, name: str) -> storage.Volumes:
        base = read(self, "baseImage", values.absolute_path)
        size = read(self, "volumeSize", values.size_bytes)
        if size is None:
            size = storage.file_size(host, base, self.sf_complete_name())
        return storage.loopback_put_in_place(
            host, directory=self._directory(), name=name, base=base, size=size,
            swap=read(self, "swapSize", _swap_size, 0) or None, scratch=self.scratch(),
            copy_on_write=read(self, "copyOnWrite", values.boolean, True),
            journal=journal_of(self), owner=self.sf_complete_name(),
            caller=self.sf_complete_name())

    def _delete(self, host: Host, volumes: storage.Volumes) -> None:
        storage.loopback_delete(host, volumes, journal_of(self), self.sf_complete_name())
        self.log.info("deleted the volumes %s", volumes.root)


class LVMStorageBackend(StorageBackend):
    """Logical volumes in ``volumeGroup`` (else the process's
    ``ch.cern.openlab.smartdomains.volumeGroup`` property). ``goldenVolume``: the root volume
    is an LVM snapshot of that volume instead of a filled copy of ``baseImage``.
    ``lvmConfig``: ``--config`` text for every lvm command (``global{activation=0}``)."""

    declared_attributes = frozenset(["volumeGroup", "goldenVolume", "lvmConfig"])
    CHECKS = {**StorageBackend.CHECKS, "volumeGroup": values.name,
              "goldenVolume": values.name}
    PROPERTY = "ch.cern.openlab.smartdomains.volumeGroup"

    @classmethod
    def _has_other_source(cls, attributes: Mapping[str, Any]) -> bool:
        return attributes.get("goldenVolume") is not None

    def _group(self) -> str:
        group = read(self, "volumeGroup", values.name)
        if group is None:
            # the host's default: its process's property, else a system property
            # (SFPY_PROPERTIES="-Dch.cern.openlab.smartdomains.volumeGroup=vg0")
            process = self.sf_process()
            group = process.properties.get(self.PROPERTY) if process is not None else None
            if not group:
                group = system_properties().get(self.PROPERTY)
            if group:
                try:
                    group = values.name(group)
                except values.ValueProblem as error:
                    raise EngineError(f"{self.sf_complete_name()}: the host's property "
                                      f"{self.PROPERTY} {error}") from None
        if not group:
            raise EngineError(f"{self.sf_complete_name()}:volumeGroup is required (or the "
                              f"host's property {self.PROPERTY})")
        return str(group)

    def _config(self) -> str | None:
        config = self.sf_resolve("lvmConfig", None)
        if config is not None and not isinstance(config, str):
            raise EngineError(f"{self.sf_complete_name()}:lvmConfig must be a string")
        return config

    def deploy(self) -> None:
        super().deploy()
        self._group()

    def _volumes_of(self, host: Host, entries: list[Any]) -> storage.Volumes | None:
        group, config, me = self._group(), self._config(), self.sf_complete_name()
        names = [entry.data.get("volume") for entry in entries]
        if any(entry.kind != "logical-volume" or entry.data.get("group") != group
               for entry in entries) or len(entries) > 2:
            return None
        root = [name for name in names if isinstance(name, str) and not name.endswith("-swap")]
        swap = [name for name in names if isinstance(name, str) and name.endswith("-swap")]
        if len(root) != 1 or len(swap) > 1 or len(root) + len(swap) != len(entries):
            return None
        for name in names:
            if not storage.logical_volume_exists(host, group, str(name), config, me):
                self.log.warning("cannot take back the volumes: %s/%s is gone", group, name)
                return None
        return storage.Volumes(
            storage.logical_volume_path(host, group, root[0], config, me),
            storage.logical_volume_path(host, group, swap[0], config, me) if swap else None,
            entries=[entry.id for entry in entries])

    def _existing(self, host: Host, name: str) -> storage.Volumes:
        return storage.lvm_existing(host, self._group(), name, self._config(),
                                    self.sf_complete_name())

    def _create(self, host: Host, name: str) -> storage.Volumes:
        base = read(self, "baseImage", values.absolute_path)
        size = read(self, "volumeSize", values.size_bytes)
        if size is None:
            if base is None:
                raise EngineError(f"{self.sf_complete_name()}:volumeSize is required")
            size = storage.file_size(host, base, self.sf_complete_name())
        return storage.lvm_put_in_place(
            host, group=self._group(), name=name, base=base, size=size,
            swap=read(self, "swapSize", _swap_size, 0) or None, scratch=self.scratch(),
            golden=read(self, "goldenVolume", values.name), config=self._config(),
            journal=journal_of(self), owner=self.sf_complete_name(),
            caller=self.sf_complete_name())

    def _delete(self, host: Host, volumes: storage.Volumes) -> None:
        storage.lvm_delete(host, volumes, self._config(), journal_of(self),
                           self.sf_complete_name())
        self.log.info("deleted the logical volumes %s", volumes.root)


__all__ = ["LVMStorageBackend", "LoopbackStorageBackend", "ShellHost", "StorageBackend",
           "finish_commands_in_flight", "host_of", "journal_of", "read",
           "split_commands_in_flight"]
