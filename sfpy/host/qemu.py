"""A QEMU guest: its command line, its process, its QMP monitor, its tap ("facts in, commands
out", like :mod:`sfpy.host.xl`). The only module that imports ``qemu.qmp``.

QEMU is launched through the :class:`~sfpy.host.hosts.Host` with ``-daemonize``: the command
returns once QEMU has set everything up (a wrong option, a missing image or tap fails it
there, with QEMU's message), and the guest runs on in a session of its own, its pid in
``-pidfile``. Everything after that goes through QMP on a unix socket
(``query-status``, ``system_powerdown``, ``quit``), each call a short connection of its own
with a time bound (QMP serves one client at a time: a held connection would lock out a
recovery that needs to ``quit`` the guest).

Never is QEMU left to pick an accelerator: ``-machine q35,accel=<accel>`` always. KVM is used
only when asked for, and only after :func:`kvm_works` booted the kernel with it within a
bound (on hosts whose ``/dev/kvm`` opens but cannot run a stock kernel, QEMU spins for ever).

Journal kinds (cleaners registered here): ``qemu-process`` (data: ``pid``, ``create_time``,
``qmp``, ``pidfile``, ``name``) — QMP ``quit``, else SIGKILL of that very process;
``tap`` (data: ``name``, ``netns``) — ``ip link del``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sfpy.host import processes
from sfpy.host.hosts import Host
from sfpy.host.journal import CleanupError, Entry, register_cleaner
from sfpy.host.runner import HostError

# qemu.qmp logs every failed connection as an error of its own; a caller here reports it
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)

#: Seconds a QMP connection and command may take.
QMP_TIMEOUT = 5.0
#: A unix socket path's limit (sun_path, with its NUL).
SOCKET_PATH_MAX = 107
#: Seconds for QEMU to end after ``quit`` before it is killed.
QUIT_GRACE = 5.0


class QmpError(HostError):
    """QMP could not be reached or refused a command."""


@dataclass
class GuestConfig:
    """Everything the QEMU command line says (values checked by the component)."""

    name: str
    kernel: str
    memory: int
    append: str
    console: str
    qmp: str
    pidfile: str
    disks: Sequence[tuple[str, str]] = ()  # (path, format): root first, then swap
    ramdisk: str | None = None
    vcpus: int = 1
    accel: str = "tcg"
    network: str = "none"  # none | user | bridge
    tap: str = ""
    mac: str = ""
    qemu: str = "qemu-system-x86_64"
    extra_args: Sequence[str] = field(default=())


def mac_for(hostname: str) -> str:
    """A stable MAC for a host name, in QEMU's ``52:54:00`` range."""
    digest = hashlib.sha256(hostname.lower().encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def tap_name(domain: str) -> str:
    """``sfq-<domain>``, or ``sfq-<start>-<hash>`` when that exceeds 15 characters."""
    name = f"sfq-{domain}"
    if len(name) <= 15:
        return name
    digest = hashlib.sha256(domain.encode()).hexdigest()[:4]
    return f"sfq-{domain[:6]}-{digest}"


def kernel_ip(ip: str, gateway: str, netmask: str, hostname: str) -> str:
    """The kernel's ``ip=`` argument (the same form XenDomain gives)."""
    return f"ip={ip}::{gateway}:{netmask}:{hostname}:eth0:off"


def command_line(config: GuestConfig) -> list[str]:
    """The QEMU argument vector (without ``-daemonize``, which :func:`launch` adds)."""
    argv = [
        config.qemu, "-name", f"{config.name},process=sfpy-{config.name}",
        "-machine", f"q35,accel={config.accel}", "-m", str(config.memory),
        "-smp", str(config.vcpus), "-kernel", config.kernel,
        *(["-initrd", config.ramdisk] if config.ramdisk else []),
        "-append", config.append,
        "-display", "none", "-vga", "none", "-no-reboot", "-nodefaults",
        "-chardev", f"file,id=console,path={config.console}", "-serial", "chardev:console",
        "-qmp", f"unix:{config.qmp},server=on,wait=off", "-pidfile", config.pidfile,
    ]
    for index, (path, fmt) in enumerate(config.disks):
        argv += ["-drive", f"file={_option(path)},format={fmt},if=virtio,index={index}"]
    mac = config.mac
    if config.network == "user":
        argv += ["-netdev", "user,id=net0", "-device", f"virtio-net-pci,netdev=net0,mac={mac}"]
    elif config.network == "bridge":
        argv += ["-netdev", f"tap,id=net0,ifname={config.tap},script=no,downscript=no",
                 "-device", f"virtio-net-pci,netdev=net0,mac={mac}"]
    else:
        argv += ["-nic", "none"]
    return [*argv, *config.extra_args]


def _option(path: str) -> str:
    """A path inside a QEMU option list: commas are doubled."""
    return path.replace(",", ",,")


def in_netns(argv: Sequence[str], netns: str | None) -> list[str]:
    """``argv`` run inside network namespace ``netns`` (None: where we are)."""
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def launch(host: Host, argv: Sequence[str], netns: str | None = None,
           caller: str | None = None) -> None:
    """Start QEMU (``-daemonize``): returns once the guest runs, raises with QEMU's message
    when it could not start."""
    result = host.run(in_netns([*argv, "-daemonize"], netns), label="qemu", caller=caller)
    if not result.ok:
        raise HostError(f"QEMU did not start: {result.describe()}")


def read_pid(host: Host, pidfile: str) -> int | None:
    try:
        text = host.read_text(pidfile).strip()
    except (FileNotFoundError, OSError):
        return None
    return int(text) if text.isdigit() else None


def running(pid: int | None, create_time: float | None) -> bool:
    """Is the QEMU process ``pid`` (created at ``create_time``) still there (not a zombie)?"""
    if pid is None:
        return False
    import psutil

    try:
        process = psutil.Process(pid)
        if create_time is not None and abs(process.create_time() - create_time) > 0.05:
            return False  # the pid was reused
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kill(pid: int | None, create_time: float | None) -> bool:
    """SIGKILL the QEMU process; True once it is gone (within a few seconds)."""
    if running(pid, create_time):
        assert pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return wait_gone(pid, create_time, 5.0)


def wait_gone(pid: int | None, create_time: float | None, timeout: float,
              wait: Callable[[float], bool] | None = None) -> bool:
    """Wait until the process is gone (True) or ``timeout`` passed (False). ``wait(s)``
    sleeps and returns True to give up early (a cancelled step)."""
    deadline = time.monotonic() + max(0.0, timeout)
    while running(pid, create_time):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if wait is not None:
            if wait(min(0.1, left)):
                return not running(pid, create_time)
        else:
            time.sleep(min(0.1, left))
    return True


# -- QMP ----------------------------------------------------------------------------------------
def qmp(socket_path: str, command: str, arguments: dict[str, Any] | None = None,
        timeout: float = QMP_TIMEOUT) -> Any:
    """Run one QMP command on a fresh connection; its return value. :class:`QmpError` when
    the monitor cannot be reached in ``timeout`` seconds or refuses the command."""
    import asyncio  # here, not at the top: sfstart imports this module to check a description

    from qemu.qmp import QMPClient, QMPError

    async def call() -> Any:
        client = QMPClient("sfpy")
        try:
            await asyncio.wait_for(client.connect(socket_path), timeout)
            return await asyncio.wait_for(client.execute(command, arguments), timeout)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), timeout)

    try:
        return asyncio.run(call())
    except (TimeoutError, QMPError, OSError, EOFError) as error:
        text = str(error) or type(error).__name__
        raise QmpError(f"QMP {command} on {socket_path}: {text}") from None


def status(socket_path: str, timeout: float = QMP_TIMEOUT) -> str:
    """The guest's run state (``running``, ``paused``, ``shutdown``…); :class:`QmpError`."""
    answer = qmp(socket_path, "query-status", timeout=timeout)
    return str(answer.get("status", "unknown")) if isinstance(answer, dict) else "unknown"


def stop(pid: int | None, create_time: float | None, socket_path: str, timeout: float,
         wait: Callable[[float], bool] | None = None) -> str:
    """ACPI ``system_powerdown`` and up to ``timeout`` seconds for the guest to power off,
    then QMP ``quit``, then SIGKILL. Returns how it ended: ``"powered off"``, ``"quit"``,
    ``"killed"`` or ``"gone"``. :class:`HostError` if the process survives SIGKILL."""
    if not running(pid, create_time):
        return "gone"
    if timeout > 0:
        try:
            qmp(socket_path, "system_powerdown", timeout=min(QMP_TIMEOUT, max(timeout, 1.0)))
            if wait_gone(pid, create_time, timeout, wait):
                return "powered off"
        except QmpError:
            pass
    try:
        qmp(socket_path, "quit", timeout=QMP_TIMEOUT)
        if wait_gone(pid, create_time, QUIT_GRACE):
            return "quit"
    except QmpError:
        pass
    if not running(pid, create_time):
        return "gone"
    if kill(pid, create_time):
        return "killed"
    raise HostError(f"QEMU process {pid} still runs after SIGKILL")


# -- KVM ----------------------------------------------------------------------------------------
def kvm_works(host: Host, qemu: str, kernel: str, console: str, timeout: float = 30.0,
              caller: str | None = None) -> tuple[bool, str]:
    """Boot ``kernel`` with KVM, no disk and no init, within ``timeout`` seconds: it works when
    the kernel got as far as looking for an init (it then panics, and ``-no-reboot`` ends
    QEMU). Without the bound a host whose KVM cannot run the kernel hangs here for ever."""
    if not os.path.exists("/dev/kvm"):
        return False, "/dev/kvm does not exist"
    argv = [qemu, "-machine", "q35,accel=kvm", "-m", "128", "-kernel", kernel,
            "-append", "console=ttyS0 panic=-1 rdinit=/sfpy-kvm-probe init=/sfpy-kvm-probe",
            "-display", "none", "-vga", "none", "-nodefaults", "-no-reboot", "-nic", "none",
            "-chardev", f"file,id=console,path={console}", "-serial", "chardev:console"]
    result = host.run(argv, timeout=timeout, label="KVM probe", caller=caller)
    try:
        text = host.read_text(console)
    except OSError:
        text = ""
    finally:
        with contextlib.suppress(OSError):
            os.unlink(console)
    if "Linux version" in text and ("init" in text or "panic" in text.lower()):
        return True, "the kernel booted with KVM"
    if result.timed_out:
        return False, f"a KVM boot did not reach the kernel within {timeout:g} s"
    return False, f"a KVM boot failed: {result.describe()}"


# -- taps -----------------------------------------------------------------------------------------
def attach_tap(host: Host, tap: str, bridge: str, netns: str | None = None,
               caller: str | None = None) -> None:
    """Put the tap QEMU made on ``bridge`` and bring it up."""
    ip = ["ip", *(["-n", netns] if netns else [])]
    host.run([*ip, "link", "set", tap, "master", bridge, "up"], caller=caller).check()


def delete_tap(host: Host, tap: str, netns: str | None = None,
               caller: str | None = None) -> bool:
    """``ip link del``; False when there was no such tap (QEMU removes its own on exit)."""
    ip = ["ip", *(["-n", netns] if netns else [])]
    if not host.probe([*ip, "link", "show", tap], caller=caller).ok:
        return False
    result = host.run([*ip, "link", "del", tap], caller=caller)
    if result.ok:
        return True
    if not host.probe([*ip, "link", "show", tap], caller=caller).ok:
        return False
    result.check()
    return True


# -- cleaners -----------------------------------------------------------------------------------
def stop_qemu_entry(entry: Entry) -> str:
    """Cleaner of ``qemu-process``: QMP ``quit``, else SIGKILL; the socket and pidfile go."""
    data = entry.data
    pid = data.get("pid")
    created = data.get("create_time")
    name = data.get("name", "?")
    if not isinstance(pid, int):  # launched, pid never written: the pidfile may say
        pidfile = data.get("pidfile")
        pid = None
        if isinstance(pidfile, str):
            with contextlib.suppress(OSError, ValueError):
                with open(pidfile) as handle:
                    pid = int(handle.read().strip())
        created = processes.creation_time(pid) if pid is not None else None
    created = float(created) if isinstance(created, (int, float)) else None
    how = "gone"
    if running(pid, created):
        socket_path = data.get("qmp")
        how = "killed"
        if isinstance(socket_path, str):
            with contextlib.suppress(QmpError):
                qmp(socket_path, "quit", timeout=3.0)
                if wait_gone(pid, created, QUIT_GRACE):
                    how = "quit"
        if how == "killed" and not kill(pid, created):
            raise CleanupError(f"QEMU process {pid} of guest {name} still runs after SIGKILL")
    for key in ("qmp", "pidfile"):
        path = data.get(key)
        if isinstance(path, str) and path.startswith("/"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    if how == "gone":
        return f"QEMU guest {name} was already gone"
    return f"stopped QEMU guest {name} (pid {pid}, {how})"


def delete_tap_entry(entry: Entry) -> str:
    """Cleaner of ``tap``: ``ip link del`` (already gone is fine)."""
    from sfpy.host.runner import ShellRunner

    tap, netns = entry.data.get("name"), entry.data.get("netns")
    if not isinstance(tap, str):
        raise CleanupError(f"a tap entry without a name: {dict(entry.data)}")
    ip = ["ip", *(["-n", str(netns)] if netns else [])]
    runner = ShellRunner(logging.getLogger("sfpy.recover"), timeout=30)
    try:
        if not runner.run([*ip, "link", "show", tap]).ok:
            return f"tap {tap} was already gone"
        result = runner.run([*ip, "link", "del", tap])
    finally:
        runner.close()
    if result.ok:
        return f"deleted tap {tap}"
    raise CleanupError(result.describe())


register_cleaner("qemu-process", stop_qemu_entry)
register_cleaner("tap", delete_tap_entry)

__all__ = [
    "QMP_TIMEOUT",
    "SOCKET_PATH_MAX",
    "GuestConfig",
    "QmpError",
    "attach_tap",
    "command_line",
    "delete_tap",
    "delete_tap_entry",
    "in_netns",
    "kernel_ip",
    "kill",
    "kvm_works",
    "launch",
    "mac_for",
    "qmp",
    "read_pid",
    "running",
    "status",
    "stop",
    "stop_qemu_entry",
    "tap_name",
    "wait_gone",
]
