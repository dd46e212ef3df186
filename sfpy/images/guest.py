"""What makes a Debian tree boot as a guest, under Xen or QEMU, from one image.

Run on the root tree of an image from outside (a builder's customize step: mmdebstrap's
``--customize-hook`` calls ``python -m sfpy.images.guest ROOT`` with the spec file named by
``$SFPY_IMAGE_SPEC``; the debootstrap builder calls :func:`customize` itself). Nothing here runs
inside the tree, and every path is resolved *inside* it (:func:`inside`), so a symlink in the
tree can never make us write to the host's own files.

What it does (docs/images.md says why for each):

* ``/etc/fstab``: root by label ``sfpy-root`` (``/dev/xvda1`` under Xen, ``/dev/vda`` under
  QEMU: the label is the same), swap by label ``sfpy-swap`` with ``nofail``; the boot script
  also turns on any unlabelled swap device (what storage backends' ``mkswap`` make).
* network at boot from the kernel command line: ``sfpy-guest-network`` (a small sh script, a
  systemd unit) reads ``ip=<ip>:<server>:<gw>:<netmask>:<hostname>:<dev>:<autoconf>[:<dns0>
  [:<dns1>]]`` (the form XenDomain and QemuDomain pass), sets the address, route, DNS and host
  name, and prints ``sfpy-guest: hostname H address A/P on DEV`` on the console. Debian's
  kernels have no in-kernel IP autoconfiguration (``CONFIG_IP_PNP`` is off), so a script it is.
  Interfaces keep their kernel names (``eth0``): the predictable-name policy is switched off.
* consoles: systemd's getty generator starts a serial getty on every ``console=`` device and on
  ``hvc0`` whenever it exists (Xen); ``ttyS0`` (QEMU) comes from ``console=ttyS0``. Both are
  listed in ``/etc/securetty`` for distributions that still read it.
* services that cannot work (or must not run) in a throw-away guest are masked (:data:`MASKED`).
* ssh host keys are removed: each domain makes its own at first boot (``ssh-keygen -A``).
* ``/etc/hostname``, ``/etc/hosts``, an empty ``/etc/resolv.conf`` (never the host's).
* root's password hash, ``/root/.ssh/authorized_keys``, the placed files.
* the kernel and initramfs are copied beside the image (``kernel``, ``ramdisk``).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from collections.abc import Mapping
from typing import Any

ROOT_LABEL = "sfpy-root"
SWAP_LABEL = "sfpy-swap"

#: Units masked in every image, with the reason (shown in docs/images.md).
MASKED: dict[str, str] = {
    "systemd-timesyncd.service": "the hypervisor keeps the guest's clock (Xen PV clock, "
                                 "kvm-clock); NTP from a guest fights it",
    "getty@tty1.service": "a PV or headless guest has no virtual terminal: consoles are hvc0 "
                          "and ttyS0",
    "e2scrub_all.timer": "checks ext4 on LVM through snapshots the guest cannot make of its "
                         "own disk",
    "e2scrub_reap.service": "same as e2scrub_all",
    "apt-daily.timer": "a throw-away domain must not download packages behind its "
                       "description's back",
    "apt-daily-upgrade.timer": "same: the image is what the description asked for",
    "smartmontools.service": "no disks with SMART in a guest",
    "lm-sensors.service": "no hardware sensors in a guest",
    "irqbalance.service": "virtual interrupts need no balancing",
    "hwclock.service": "no hardware clock to save under Xen PV",
    "ModemManager.service": "no modems",
}

NETWORK_SCRIPT = r"""#!/bin/sh
# sfpy: the network and host name of this domain, from the kernel command line's ip= argument
#   ip=<ip>:<server>:<gateway>:<netmask>:<hostname>:<device>:<autoconf>[:<dns0>[:<dns1>]]
# (what sfpy's XenDomain and QemuDomain pass), so one image serves many domains.
spec=
for arg in $(cat /proc/cmdline); do
  case "$arg" in ip=*) spec="${arg#ip=}" ;; esac
done
say() { echo "sfpy-guest: $*"; echo "sfpy-guest: $*" >/dev/console 2>/dev/null || true; }
# swap: any swap device (backends make it with mkswap, no label) not yet in use
for dev in $(blkid -t TYPE=swap -o device 2>/dev/null); do swapon "$dev" 2>/dev/null || true; done
if [ -z "$spec" ]; then say "no ip= on the kernel command line: network left alone"; exit 0; fi
IFS=: read -r addr server gw mask host dev auto dns0 dns1 <<EOF
$spec
EOF
if [ -n "$host" ]; then
  hostname "$host"
  echo "$host" >/etc/hostname 2>/dev/null || true
  if ! grep -q "^127.0.1.1[[:space:]]$host\$" /etc/hosts 2>/dev/null; then
    sed -i '/^127\.0\.1\.1[[:space:]]/d' /etc/hosts 2>/dev/null || true
    echo "127.0.1.1	$host" >>/etc/hosts 2>/dev/null || true
  fi
fi
# wait up to 30 s for the named device; after 2 s take the first one that is not lo (the
# kernel may name it otherwise: enX0 under Xen with predictable names, ens3 under QEMU)
wanted="$dev"; n=0; dev=
while [ $n -lt 60 ]; do
  if [ -n "$wanted" ] && [ -e "/sys/class/net/$wanted" ]; then dev="$wanted"; break; fi
  if [ -z "$wanted" ] || [ $n -ge 4 ]; then
    for d in /sys/class/net/*; do
      d="${d##*/}"; if [ "$d" != lo ] && [ -e "/sys/class/net/$d" ]; then dev="$d"; break; fi
    done
    [ -n "$dev" ] && break
  fi
  n=$((n + 1)); sleep 0.5
done
if [ -z "$dev" ]; then
  say "no network device ${wanted:-found} (have: $(ls /sys/class/net | tr '\n' ' '))"; exit 1
fi
ip link set dev lo up
ip link set dev "$dev" up
case "$auto" in
  dhcp|on|any|both)
    if command -v dhclient >/dev/null; then dhclient -1 "$dev"; else say "ip=...:dhcp needs isc-dhcp-client in the image"; exit 1; fi
    say "hostname $(hostname) address dhcp on $dev"; exit 0 ;;
esac
[ -n "$addr" ] || { say "ip= gives no address"; exit 1; }
prefix=0
if [ -n "$mask" ]; then
  old_ifs=$IFS; IFS=.
  for octet in $mask; do
    case "$octet" in
      255) prefix=$((prefix + 8)) ;; 254) prefix=$((prefix + 7)) ;; 252) prefix=$((prefix + 6)) ;;
      248) prefix=$((prefix + 5)) ;; 240) prefix=$((prefix + 4)) ;; 224) prefix=$((prefix + 3)) ;;
      192) prefix=$((prefix + 2)) ;; 128) prefix=$((prefix + 1)) ;;
    esac
  done
  IFS=$old_ifs
else
  prefix=24
fi
ip addr replace "$addr/$prefix" dev "$dev"
[ -n "$gw" ] && ip route replace default via "$gw" dev "$dev"
if [ -n "$dns0" ]; then
  { echo "nameserver $dns0"; [ -n "$dns1" ] && echo "nameserver $dns1"; } >/etc/resolv.conf
fi
say "hostname $(hostname) address $addr/$prefix on $dev"
"""

NETWORK_UNIT = """[Unit]
Description=sfpy: network and host name from the kernel command line (ip=)
DefaultDependencies=no
After=local-fs.target systemd-udevd.service systemd-udev-trigger.service
Before=network.target network-online.target ssh.service getty.target
Wants=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/sfpy-guest-network
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""

SSH_KEYS_UNIT = """[Unit]
Description=sfpy: this domain's own ssh host keys (the image ships none)
Before=ssh.service
ConditionPathExists=/usr/bin/ssh-keygen

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""


class GuestError(Exception):
    """A customization that cannot be done (a path leaving the tree, a missing kernel)."""


def inside(root: str, path: str) -> str:
    """``path`` (absolute, as seen from inside the tree) resolved inside ``root``: symlinks
    are followed as the guest would follow them, never out of the tree."""
    root = os.path.realpath(root)
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise GuestError(f"too many symlinks resolving {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _write(root: str, path: str, text: str, mode: int = 0o644) -> None:
    target = inside(root, path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(target) or os.path.exists(target):
        os.unlink(target)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(target, mode)


def _symlink(root: str, path: str, target: str) -> None:
    where = inside(root, path)
    os.makedirs(os.path.dirname(where), exist_ok=True)
    if os.path.lexists(where):
        if os.path.isdir(where) and not os.path.islink(where):
            shutil.rmtree(where)
        else:
            os.unlink(where)
    os.symlink(target, where)


def fstab() -> str:
    return (
        "# sfpy image: found by label, so one image boots as /dev/xvda1 (Xen) and /dev/vda (QEMU)\n"
        f"LABEL={ROOT_LABEL}\t/\text4\tdefaults,errors=remount-ro\t0\t0\n"
        "# swap: sfpy-guest-network turns on every swap device at boot, labelled sfpy-swap or\n"
        "# not (storage backends make swap with a plain mkswap; xvda2 under Xen, vdb under QEMU)\n"
        f"LABEL={SWAP_LABEL}\tnone\tswap\tsw,noauto\t0\t0\n"
    )


def _set_root_password(root: str, password_hash: str) -> None:
    shadow = inside(root, "/etc/shadow")
    with open(shadow, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] == "root":
            fields[1] = password_hash
            lines[i] = ":".join(fields)
            break
    else:
        raise GuestError("/etc/shadow of the image has no root entry")
    mode = stat.S_IMODE(os.stat(shadow).st_mode)
    _write(root, "/etc/shadow", "\n".join(lines) + "\n", mode)
    os.chown(inside(root, "/etc/shadow"), 0, _gid(root, "shadow", 0))


def _gid(root: str, group: str, default: int) -> int:
    try:
        with open(inside(root, "/etc/group"), encoding="utf-8") as handle:
            for line in handle:
                fields = line.split(":")
                if fields[0] == group:
                    return int(fields[2])
    except OSError:
        pass
    return default


def _copy_kernel(root: str, out: str) -> dict[str, str]:
    boot = inside(root, "/boot")
    names = sorted(os.listdir(boot)) if os.path.isdir(boot) else []
    kernels = [n for n in names if n.startswith("vmlinuz-")]
    if not kernels:
        raise GuestError("the image has no kernel in /boot (kernel package missing?)")
    version = kernels[-1][len("vmlinuz-"):]
    placed = {"kernel": os.path.join(out, "kernel"), "kernelVersion": version}
    shutil.copyfile(os.path.join(boot, f"vmlinuz-{version}"), placed["kernel"])
    initrd = os.path.join(boot, f"initrd.img-{version}")
    if os.path.exists(initrd):
        placed["ramdisk"] = os.path.join(out, "ramdisk")
        shutil.copyfile(initrd, placed["ramdisk"])
    return placed


def customize(root: str, spec: Mapping[str, Any]) -> dict[str, str]:
    """Make the tree at ``root`` a guest as ``spec`` says (see the module docstring). Returns
    what was placed beside the image (kernel, ramdisk, kernel version)."""
    hostname = spec["hostname"]
    _write(root, "/etc/fstab", fstab())
    _write(root, "/etc/hostname", hostname + "\n")
    _write(root, "/etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n"
                               "::1\tlocalhost ip6-localhost ip6-loopback\n")
    _write(root, "/etc/resolv.conf", "")
    _write(root, "/etc/securetty", "console\nhvc0\nttyS0\ntty1\n")
    _write(root, "/usr/local/sbin/sfpy-guest-network", NETWORK_SCRIPT, 0o755)
    _write(root, "/etc/systemd/system/sfpy-guest-network.service", NETWORK_UNIT)
    _symlink(root, "/etc/systemd/system/multi-user.target.wants/sfpy-guest-network.service",
             "/etc/systemd/system/sfpy-guest-network.service")
    # kernel interface names (eth0, as ip= names them) instead of predictable names
    _symlink(root, "/etc/systemd/network/99-default.link", "/dev/null")
    for unit in MASKED:
        _symlink(root, f"/etc/systemd/system/{unit}", "/dev/null")
    ssh = inside(root, "/etc/ssh")
    if os.path.isdir(ssh):
        for name in os.listdir(ssh):
            if name.startswith("ssh_host_") and ("_key" in name):
                os.unlink(os.path.join(ssh, name))
        _write(root, "/etc/systemd/system/sfpy-ssh-host-keys.service", SSH_KEYS_UNIT)
        _symlink(root, "/etc/systemd/system/multi-user.target.wants/sfpy-ssh-host-keys.service",
                 "/etc/systemd/system/sfpy-ssh-host-keys.service")
    machine_id = inside(root, "/etc/machine-id")
    if os.path.exists(machine_id):  # empty: each domain makes its own at first boot
        _write(root, "/etc/machine-id", "", 0o444)
    if spec.get("rootPasswordHash"):
        _set_root_password(root, spec["rootPasswordHash"])
    if spec.get("sshKeys"):
        ssh_dir = inside(root, "/root/.ssh")
        os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
        os.chmod(ssh_dir, 0o700)
        _write(root, "/root/.ssh/authorized_keys", "\n".join(spec["sshKeys"]) + "\n", 0o600)
    for placed in spec.get("files", []):
        target = inside(root, placed["dest"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):
            os.unlink(target)
        shutil.copyfile(placed["source"], target)
        os.chown(target, 0, 0)
        os.chmod(target, int(placed["mode"], 8))
    placed_out: dict[str, str] = {}
    if spec.get("out") and spec.get("kernel", True):
        placed_out = _copy_kernel(root, spec["out"])
    return placed_out


def main(argv: list[str] | None = None) -> int:
    """``python -m sfpy.images.guest ROOT`` with ``$SFPY_IMAGE_SPEC`` (a builder's hook)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not os.environ.get("SFPY_IMAGE_SPEC"):
        print("usage: SFPY_IMAGE_SPEC=FILE python -m sfpy.images.guest ROOT", file=sys.stderr)
        return 2
    with open(os.environ["SFPY_IMAGE_SPEC"], encoding="utf-8") as handle:
        spec = json.load(handle)
    try:
        placed = customize(argv[0], spec)
    except (GuestError, OSError) as error:
        print(f"sfpy guest customization failed: {error}", file=sys.stderr)
        return 1
    if spec.get("out"):
        with open(os.path.join(spec["out"], "placed.json"), "w", encoding="utf-8") as handle:
            json.dump(placed, handle)
    print(f"I: sfpy guest customization done ({', '.join(sorted(placed)) or 'no kernel'})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
