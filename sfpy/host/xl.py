"""A Xen domain through ``xl`` (the operations of SmartDomains' XenDomain), "facts in, commands
out" through a :class:`~sfpy.host.hosts.Host`.

Only what ``xl``'s manual promises is used: ``xl create CFG`` (returns once the domain is
created), ``xl list NAME`` (exit 0 while the domain exists; exit 1 and "… is an invalid domain
identifier" once it does not), ``xl shutdown -w NAME`` (waits, for ever: the caller bounds it),
``xl destroy NAME``, ``xl mem-set NAME MEM`` and ``xl info`` (``key : value`` lines;
``free_memory`` in MiB). Commands are ``xl SUBCOMMAND ARGS…`` with no global option.

The domain configuration (xl.cfg(5)) is written by :func:`domain_config`: absolute paths,
disks in the ``format=…, vdev=…, access=…, target=…`` form (the target last, as xl requires),
the network identity in the kernel command line as ``ip=<ip>::<gateway>:<netmask>:<host>:eth0:off``
(what xm used to derive from its ``ip``/``netmask``/``gateway``/``hostname`` options), the
console on ``hvc0``, one ``vif`` with a MAC in Xen's ``00:16:3e`` range on the bridge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from sfpy.host.hosts import Host
from sfpy.host.journal import CleanupError, Entry, register_cleaner
from sfpy.host.runner import HostError, JournalLike, Result

GONE = "invalid domain identifier"


@dataclass
class DomainConfig:
    """Everything an xl domain configuration says (values checked by the component)."""

    name: str
    kernel: str
    memory: int
    hostname: str
    ip: str
    netmask: str
    disks: Sequence[tuple[str, str]]  # (target, format): root first, then swap
    gateway: str = ""
    ramdisk: str | None = None
    vcpus: int = 1
    extra: str = ""
    bridge: str = "xenbr0"
    mac: str = ""
    root: str = "/dev/xvda1"
    devices: Sequence[str] = field(default=("xvda1", "xvda2"))


def mac_for(hostname: str) -> str:
    """A stable MAC for a host name, in Xen's ``00:16:3e`` range."""
    digest = hashlib.sha256(hostname.lower().encode()).digest()
    return "00:16:3e:" + ":".join(f"{b:02x}" for b in (digest[0] & 0x7F, digest[1], digest[2]))


def kernel_ip(config: DomainConfig) -> str:
    """The kernel's ``ip=`` argument (nfsroot.txt's form; an empty gateway field is fine)."""
    return f"ip={config.ip}::{config.gateway}:{config.netmask}:{config.hostname}:eth0:off"


def domain_config(config: DomainConfig) -> str:
    """The text of the xl configuration file of ``config``."""
    extra = " ".join(part for part in (f"root={config.root} ro", "console=hvc0",
                                       kernel_ip(config), config.extra) if part)
    disks = [f"format={fmt}, vdev={device}, access=rw, target={target}"
             for (target, fmt), device in zip(config.disks, config.devices, strict=False)]
    lines = [
        f'name = "{config.name}"',
        'type = "pv"',
        f'kernel = "{config.kernel}"',
        *([f'ramdisk = "{config.ramdisk}"'] if config.ramdisk else []),
        f'extra = "{extra}"',
        f"memory = {config.memory}",
        f"vcpus = {config.vcpus}",
        "disk = [ " + ", ".join(f'"{d}"' for d in disks) + " ]",
        f'vif = [ "mac={config.mac or mac_for(config.hostname)}, bridge={config.bridge}" ]',
        'on_poweroff = "destroy"',
        'on_reboot = "restart"',
        'on_crash = "destroy"',
    ]
    return "\n".join(lines) + "\n"


def write_config(host: Host, path: str, text: str, journal: JournalLike | None = None,
                 owner: str = "", caller: str | None = None) -> int | None:
    """Write the configuration file (journalled as a ``file`` first); returns its entry."""
    if not path.startswith("/"):
        raise HostError(f"a domain configuration path must be absolute, not {path!r}")
    entry = journal.add("file", owner, {"path": path}) if journal is not None else None
    host.run(["tee", path], input=text, caller=caller).check()
    return entry


def free_memory(host: Host, xl: str = "xl", caller: str | None = None) -> int:
    """MiB of free memory ``xl info`` reports."""
    result = host.probe([xl, "info"], caller=caller).check()
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "free_memory" and value.strip().isdigit():
            return int(value.strip())
    raise HostError("xl info reports no free_memory")


def create(host: Host, path: str, xl: str = "xl", caller: str | None = None) -> Result:
    return host.run([xl, "create", path], label="xl create", caller=caller)


def alive(host: Host, name: str, xl: str = "xl", caller: str | None = None) -> bool | None:
    """True while the domain exists, False once xl says it does not, None when xl could not
    tell (a miss)."""
    result = host.probe([xl, "list", name], caller=caller)
    if result.exit_code == 0:
        return True
    if GONE in result.stderr or GONE in result.stdout:
        return False
    return None


def destroy(host: Host, name: str, xl: str = "xl", caller: str | None = None) -> bool:
    """``xl destroy``; True when it destroyed the domain, False when it was already gone."""
    result = host.run([xl, "destroy", name], label="xl destroy", caller=caller)
    if result.ok:
        return True
    if GONE in result.stderr or GONE in result.stdout:
        return False
    result.check()
    return False


def stop(host: Host, name: str, timeout: float, xl: str = "xl",
         caller: str | None = None) -> str:
    """``xl shutdown -w`` bounded by ``timeout`` seconds, then ``xl destroy`` if the domain
    is still there. Returns how it ended: ``"shut down"``, ``"destroyed"`` or ``"gone"``."""
    result = host.run([xl, "shutdown", "-w", name], timeout=timeout, label="xl shutdown",
                      caller=caller)
    if result.ok:
        return "shut down"
    if GONE in result.stderr or GONE in result.stdout:
        return "gone"
    return "destroyed" if destroy(host, name, xl, caller) else "gone"


def set_memory(host: Host, name: str, mib: int, xl: str = "xl",
               caller: str | None = None) -> None:
    host.run([xl, "mem-set", name, f"{mib}m"], label="xl mem-set", caller=caller).check()


def destroy_domain_entry(entry: Entry) -> str:
    """Cleaner of ``xen-domain``: ``xl destroy`` it (already gone is fine)."""
    import logging

    from sfpy.host.runner import ShellRunner

    name, xl = entry.data.get("name"), entry.data.get("xl") or "xl"
    if not isinstance(name, str):
        raise CleanupError(f"a xen-domain entry without a name: {dict(entry.data)}")
    runner = ShellRunner(logging.getLogger("sfpy.recover"), timeout=60)
    try:
        result = runner.run([str(xl), "destroy", name], caller=entry.owner)
    finally:
        runner.close()
    if result.ok:
        return f"destroyed Xen domain {name}"
    if GONE in result.stderr:
        return f"Xen domain {name} was already gone"
    raise CleanupError(result.describe())


register_cleaner("xen-domain", destroy_domain_entry)

__all__ = [
    "GONE",
    "DomainConfig",
    "alive",
    "create",
    "destroy",
    "destroy_domain_entry",
    "domain_config",
    "free_memory",
    "kernel_ip",
    "mac_for",
    "set_memory",
    "stop",
    "write_config",
]
