"""Builder plug-ins: what turns :class:`~sfpy.images.params.ImageParams` into a root tree.

A builder is any object with the :class:`Builder` protocol; :func:`register` adds one under its
name (``sfimage build --builder NAME``, ``builder:`` in the configuration). Its ``version`` is
part of every image key it builds: change it whenever the same parameters would give a
different image. Importing this module is cheap (the cache-hit path reads ``version``);
builders import the command runner only when they build.

A builder's job (:class:`BuildJob`): install the distribution with the packages of
:meth:`ImageParams.all_packages`, run the guest customization (:mod:`sfpy.images.guest`: a
hook for mmdebstrap, a call for debootstrap) on the tree before it is packed, and write
``job.target``: a tarball (``.tar``/``.tar.gz``) or, when ``job.tree`` is true, a directory
(for img/qcow2, made into ext4 by :mod:`sfpy.images.build`). Everything goes under
``job.work`` (also the TMPDIR of the tools), which is removed, mounts first, when the build
fails. Commands go through ``job.run`` (the host layer: argument lists, process groups,
logged) and show their progress through the lines they print.

Two builders are shipped: :class:`MmdebstrapBuilder` (default) and
:class:`DebootstrapBuilder` (the same image by the classic tool: it proves the interface). An
RPM builder (``dnf --installroot`` or mkosi) fits the same protocol; docs/images.md describes
that path (no RPM mirror is reachable from the machines sfpy is tested on).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sfpy.images.params import ImageParams

#: Hook command for mmdebstrap: constant text, every value comes from the environment.
CUSTOMIZE_HOOK = '"$SFPY_IMAGE_PYTHON" -m sfpy.images.guest "$1"'
#: Before the kernel's package builds its initramfs: interfaces keep their kernel names (eth0,
#: as ip= names them) in the initramfs too.
NAMES_HOOK = ('mkdir -p "$1/etc/systemd/network" && '
              'ln -sf /dev/null "$1/etc/systemd/network/99-default.link"')
#: Apt cache hooks (mmdebstrap's documented recipe, with the directory from the environment).
CACHE_IN_HOOK = ('mkdir -p "$1/var/cache/apt/archives" && '
                 'find "$SFPY_APT_CACHE" -maxdepth 1 -name "*.deb" '
                 '-exec cp -t "$1/var/cache/apt/archives/" {} +')
CACHE_OUT_HOOK = ('find "$1/var/cache/apt/archives" -maxdepth 1 -name "*.deb" '
                  '-exec cp -n -t "$SFPY_APT_CACHE/" {} +')


class Run(Protocol):
    def __call__(self, argv: Sequence[str], *, label: str,
                 env: Mapping[str, str] | None = None) -> Any: ...


@dataclass
class BuildJob:
    """One build: what to make and where (everything under ``work``)."""

    params: ImageParams
    work: str                       # private directory in the store, removed on failure
    target: str                     # the tarball or (tree) directory to write
    out: str                        # where kernel and ramdisk are placed
    spec: dict[str, Any]            # guest customization spec (guest.customize)
    run: Run                        # runs a command through the host layer
    tree: bool = False              # write a directory instead of a tarball
    apt_cache: str | None = None    # keep downloaded .deb files here between builds
    source_date_epoch: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def spec_file(self) -> str:
        """The spec written for the hook (0600, in the private work directory)."""
        path = os.path.join(self.work, "guest-spec.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.spec, handle)
        return path

    def environment(self) -> dict[str, str]:
        env = {"TMPDIR": self.work, "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
        if self.source_date_epoch:
            env["SOURCE_DATE_EPOCH"] = self.source_date_epoch
        return env


@runtime_checkable
class Builder(Protocol):
    """A builder plug-in (see the module docstring)."""

    #: Name given to ``--builder``.
    name: str
    #: Part of every image key: change it when the same parameters would build differently.
    version: str
    #: The distributions (``distribution.name``) it can build.
    distributions: tuple[str, ...]

    def missing(self) -> str | None:
        """What this machine lacks to run the builder (None: nothing)."""

    def build(self, job: BuildJob) -> None:
        """Write ``job.target`` (and place kernel and ramdisk in ``job.out``) or raise."""


def _which(program: str) -> str | None:
    for directory in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":") + [
            "/usr/sbin", "/sbin"]:
        candidate = os.path.join(directory, program)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class MmdebstrapBuilder:
    """Debian (and derivatives) with mmdebstrap, in root mode: the host's own system is never
    touched (the chroot is in the build's private directory; hooks act on ``$1``)."""

    name: str = "mmdebstrap"
    version: str = "1"
    distributions: tuple[str, ...] = ("debian", "ubuntu")

    def missing(self) -> str | None:
        if os.geteuid() != 0:
            return "the mmdebstrap builder runs as root"
        return None if _which("mmdebstrap") else "mmdebstrap is not installed (apt-get install mmdebstrap)"

    def command(self, job: BuildJob) -> list[str]:
        d = job.params.distribution
        argv = ["mmdebstrap", "--verbose", "--mode=root", f"--variant={d.variant}",
                f"--architectures={d.architecture}", f"--components={','.join(d.components)}",
                "--aptopt=Acquire::Retries \"3\"", "--aptopt=APT::Install-Recommends \"false\""]
        packages = job.params.all_packages()
        if packages:
            argv.append(f"--include={','.join(packages)}")
        if job.apt_cache:
            argv += ["--skip=essential/unlink", f"--setup-hook={CACHE_IN_HOOK}",
                     f"--customize-hook={CACHE_OUT_HOOK}"]
        argv += [f"--essential-hook={NAMES_HOOK}", f"--customize-hook={CUSTOMIZE_HOOK}",
                 d.suite, job.target, d.mirror]
        return argv

    def build(self, job: BuildJob) -> None:
        import sys

        spec = job.spec_file()
        env = {**job.environment(), "SFPY_IMAGE_SPEC": spec, "SFPY_IMAGE_PYTHON": sys.executable,
               "PYTHONPATH": _package_root()}
        if job.apt_cache:
            os.makedirs(job.apt_cache, exist_ok=True)
            env["SFPY_APT_CACHE"] = job.apt_cache
        job.notes["toolVersion"] = _tool_version(job, ["mmdebstrap", "--version"])
        result = job.run(self.command(job), label="mmdebstrap", env=env)
        if not result.ok:
            _fail("mmdebstrap", result)


class DebootstrapBuilder:
    """The same images with debootstrap: first stage (download, unpack), a ``policy-rc.d``
    that keeps package scripts from starting daemons in the tree, second stage in the tree,
    guest customization, then a reproducible tar (sorted names, clamped times, numeric
    owners). Slower than mmdebstrap; here to prove the plug-in interface with a real tool."""

    name: str = "debootstrap"
    version: str = "1"
    distributions: tuple[str, ...] = ("debian", "ubuntu")

    def missing(self) -> str | None:
        if os.geteuid() != 0:
            return "the debootstrap builder runs as root"
        return None if _which("debootstrap") else "debootstrap is not installed (apt-get install debootstrap)"

    def build(self, job: BuildJob) -> None:
        from sfpy.images import guest

        d = job.params.distribution
        if d.variant not in ("minbase", "buildd", "-", "debootstrap", "important"):
            raise guest.GuestError(f"debootstrap has no variant {d.variant!r}")
        tree = job.target if job.tree else os.path.join(job.work, "tree")
        env = job.environment()
        job.notes["toolVersion"] = _tool_version(job, ["debootstrap", "--version"])
        argv = ["debootstrap", "--foreign", "--verbose", f"--arch={d.architecture}",
                f"--components={','.join(d.components)}", "--merged-usr"]
        if d.variant not in ("-", "debootstrap", "important"):
            argv.append(f"--variant={d.variant}")
        packages = job.params.all_packages()
        if packages:
            argv.append(f"--include={','.join(packages)}")
        if job.apt_cache:
            os.makedirs(job.apt_cache, exist_ok=True)
            argv.append(f"--cache-dir={os.path.abspath(job.apt_cache)}")
        result = job.run([*argv, d.suite, tree, d.mirror], label="debootstrap", env=env)
        if not result.ok:
            _fail("debootstrap", result)
        # before the kernel's package builds its initramfs (as mmdebstrap's essential hook)
        os.makedirs(guest.inside(tree, "/etc/systemd/network"), exist_ok=True)
        link = guest.inside(tree, "/etc/systemd/network/99-default.link")
        if not os.path.lexists(link):
            os.symlink("/dev/null", link)
        policy = guest.inside(tree, "/usr/sbin/policy-rc.d")
        os.makedirs(os.path.dirname(policy), exist_ok=True)
        with open(policy, "w", encoding="utf-8") as handle:
            handle.write("#!/bin/sh\n# sfpy: no daemon starts while the image is built\nexit 101\n")
        os.chmod(policy, 0o755)
        try:
            job.run(["chroot", tree, "/debootstrap/debootstrap", "--second-stage"],
                    label="debootstrap --second-stage", env=env).check()
        finally:  # debootstrap may have removed it already
            if os.path.lexists(policy):
                os.unlink(policy)
        for directory in ("/var/cache/apt/archives", "/var/lib/apt/lists"):
            path = guest.inside(tree, directory)
            if os.path.isdir(path):
                for name in os.listdir(path):
                    full = os.path.join(path, name)
                    if os.path.isfile(full) and name not in ("lock",):
                        os.unlink(full)
        for log in ("/var/log/dpkg.log", "/var/log/bootstrap.log", "/var/log/alternatives.log",
                    "/var/cache/ldconfig/aux-cache"):
            path = guest.inside(tree, log)
            if os.path.isfile(path):
                os.unlink(path)
        placed = guest.customize(tree, job.spec)
        with open(os.path.join(job.out, "placed.json"), "w", encoding="utf-8") as handle:
            json.dump(placed, handle)
        if not job.tree:
            epoch = job.source_date_epoch or "0"
            compress = ["--gzip"] if job.target.endswith(".gz") else []
            job.run(["tar", "--create", "--file", job.target, *compress, "--sort=name",
                     "--numeric-owner", "--xattrs", "--xattrs-include=*",
                     f"--mtime=@{epoch}", "--clamp-mtime",
                     "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                     "-C", tree, "."], label="tar", env={**env, "GZIP": "-n"}).check()


def _fail(tool: str, result: Any) -> None:
    """Raise with what the tool said was wrong (apt's and debootstrap's ``E:`` lines, such as
    "Unable to locate package x"), not only its last lines."""
    from sfpy.images.errors import ImageError

    if getattr(result, "cancelled", False):
        result.check()  # the step's cancellation, as the runner reports it
    lines = [line[3:].strip() for line in (result.stdout + "\n" + result.stderr).splitlines()
             if line.startswith("E: ") and "failed to run" not in line
             and not line.startswith(("E: apt-get ", "E: setup failed"))]
    reason = "; ".join(dict.fromkeys(lines)) if lines else result.describe()
    raise ImageError(f"{tool} failed (exit {result.exit_code}): {reason[:600]}")


def _package_root() -> str:
    """The directory holding the ``sfpy`` package (for the hook's ``python -m``)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool_version(job: BuildJob, argv: list[str]) -> str:
    result = job.run(argv, label=argv[0])
    text = (getattr(result, "stdout", "") or "").strip()
    return text.splitlines()[0] if text else "unknown"


_BUILDERS: dict[str, Callable[[], Builder]] = {
    "mmdebstrap": MmdebstrapBuilder,
    "debootstrap": DebootstrapBuilder,
}


def register(name: str, factory: Callable[[], Builder]) -> None:
    """Add a builder plug-in under ``name``."""
    _BUILDERS[name] = factory


def get(name: str) -> Builder:
    from sfpy.images.errors import ParameterError

    factory = _BUILDERS.get(name)
    if factory is None:
        raise ParameterError(f"no image builder {name!r} (known: {', '.join(sorted(_BUILDERS))})")
    return factory()


def names() -> list[str]:
    return sorted(_BUILDERS)


__all__ = ["BuildJob", "Builder", "DebootstrapBuilder", "MmdebstrapBuilder", "get", "names",
           "register"]
