"""QemuDomain's and the boot kit's parts that need no guest: the QEMU command line, the
values checked before anything is made, the readiness pattern, the KVM probe's bound, the
journal's cleaners, the module order and the initramfs archive. Fast; no ``vm`` marker."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sfpy.components.qemu import QemuDomain, ready_regex
from sfpy.host import bootkit, qemu
from sfpy.host.hosts import LocalHost, RecordingHost, UnexpectedCommand
from sfpy.host.journal import Entry

REPO = Path(__file__).resolve().parents[2]


def config(**changes) -> qemu.GuestConfig:
    values = dict(name="vm1", kernel="/k/vmlinuz", memory=128, append="root=/dev/vda rw",
                  console="/c/vm1.console.log", qmp="/c/vm1.qmp", pidfile="/c/vm1.pid",
                  disks=[("/i/vm1.qcow2", "qcow2"), ("/i/vm1-swap.img", "raw")],
                  ramdisk="/k/initrd", mac="52:54:00:01:02:03", tap="sfq-vm1")
    values.update(changes)
    return qemu.GuestConfig(**values)


def option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == name]


def test_the_command_line_always_names_the_accelerator_and_the_disks_in_order():
    argv = qemu.command_line(config())
    assert option(argv, "-machine") == ["q35,accel=tcg"]
    assert option(argv, "-drive") == ["file=/i/vm1.qcow2,format=qcow2,if=virtio,index=0",
                                      "file=/i/vm1-swap.img,format=raw,if=virtio,index=1"]
    assert option(argv, "-nic") == ["none"] and "-no-reboot" in argv
    assert option(argv, "-qmp") == ["unix:/c/vm1.qmp,server=on,wait=off"]
    assert option(argv, "-chardev") == ["file,id=console,path=/c/vm1.console.log"]
    assert "-daemonize" not in argv and "-enable-kvm" not in argv
    assert option(qemu.command_line(config(accel="kvm")), "-machine") == ["q35,accel=kvm"]


def test_the_network_is_none_user_or_a_tap_qemu_makes():
    bridge = qemu.command_line(config(network="bridge"))
    assert option(bridge, "-netdev") == ["tap,id=net0,ifname=sfq-vm1,script=no,downscript=no"]
    assert option(bridge, "-device") == ["virtio-net-pci,netdev=net0,mac=52:54:00:01:02:03"]
    assert option(qemu.command_line(config(network="user")), "-netdev") == ["user,id=net0"]
    assert qemu.in_netns(["qemu"], "ns1") == ["ip", "netns", "exec", "ns1", "qemu"]


def test_a_path_with_a_comma_is_escaped_in_a_drive_option():
    argv = qemu.command_line(config(disks=[("/i/a,b.img", "raw")]))
    assert option(argv, "-drive") == ["file=/i/a,,b.img,format=raw,if=virtio,index=0"]


def test_tap_names_fit_an_interface_name():
    assert qemu.tap_name("vm1") == "sfq-vm1"
    long = qemu.tap_name("a-very-long-domain-name")
    assert len(long) <= 15 and long != qemu.tap_name("a-very-long-domain-other")
    assert qemu.mac_for("vm1.example.org").startswith("52:54:00:")


def test_the_ready_pattern_stands_for_the_escaped_values():
    regex = ready_regex("sfpy-guest hostname=@hostname@ ip=@ip@",
                        {"hostname": "vm1.example.org", "ip": "10.0.0.2"})
    assert regex.search("sfpy-guest hostname=vm1.example.org ip=10.0.0.2")
    assert not regex.search("sfpy-guest hostname=vm1xexample.org ip=10.0.0.2")


def test_every_problem_of_a_domain_is_reported_before_anything_is_made():
    problems = dict(QemuDomain.check_values({
        "hostname": "vm1", "ip": "10.0.0.300", "netmask": "255.255.255.0",
        "kernel": "vmlinuz", "memory": 128, "storageBackend": object(), "accel": "xen",
        "network": "bridge", "readyPattern": "([", "configDirectory": "/" + "d" * 120}))
    assert set(problems) == {"ip", "kernel", "accel", "bridge", "readyPattern",
                             "configDirectory"}, problems
    assert "not one of tcg, kvm" in problems["accel"]
    assert "bridge is required" in problems["bridge"]
    assert QemuDomain.check_values({"hostname": "vm1", "ip": "10.0.0.2",
                                    "netmask": "255.255.255.0", "kernel": "/k",
                                    "memory": 64, "storageBackend": object()}) == []


def test_sfrun_refuses_a_wrong_domain_before_anything_runs(tmp_path: Path):
    description = tmp_path / "site.sf"
    description.write_text("""#include "org/smartfrog/components.sf"
#include "ch/cern/openlab/smartdomains/components.sf"
sfConfig extends Compound {
  disk extends LoopbackStorageBackend { baseImage "/nonexistent.ext4"; imageDirectory "IMAGES"; }
  vm extends QemuDomain { storageBackend LAZY ATTRIB disk; hostname "vm1"; ip "10.0.0.2";
    netmask "255.255.255.0"; kernel "/k"; memory 64; accel "kvm:tcg"; network "bridge"; }
}
""".replace("IMAGES", str(tmp_path)))
    run = subprocess.run([sys.executable, "-m", "sfpy.cli.sfrun", str(description)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert run.returncode == 3, run.stderr
    assert "accel 'kvm:tcg' is not one of tcg, kvm" in run.stderr
    assert "bridge is required when network is \"bridge\"" in run.stderr


def test_the_kvm_probe_is_bounded(tmp_path: Path):
    if not os.path.exists("/dev/kvm"):
        pytest.skip("needs /dev/kvm (the probe answers at once without it)")
    hanging = tmp_path / "qemu"
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging.chmod(0o755)
    host = LocalHost()
    try:
        began = time.monotonic()
        works, why = qemu.kvm_works(host, str(hanging), "/k", str(tmp_path / "probe.log"),
                                    timeout=1.0)
        assert time.monotonic() - began < 15
    finally:
        host.close()
    assert not works and "within 1 s" in why


def test_qmp_on_a_missing_socket_fails_clearly_and_quickly(tmp_path: Path):
    began = time.monotonic()
    with pytest.raises(qemu.QmpError, match="QMP query-status on"):
        qemu.status(str(tmp_path / "none.qmp"), timeout=2)
    assert time.monotonic() - began < 5


def test_the_qemu_cleaner_stops_the_process_it_recorded_and_only_that(tmp_path: Path):
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        import psutil

        created = psutil.Process(sleeper.pid).create_time()
        stale = Entry(1, "qemu-process", "sfConfig:vm", {
            "name": "vm", "pid": sleeper.pid, "create_time": created - 100,
            "qmp": str(tmp_path / "vm.qmp")}, "t:1")
        assert "already gone" in qemu.stop_qemu_entry(stale)  # another process had that pid
        assert sleeper.poll() is None
        (tmp_path / "vm.pid").write_text(f"{sleeper.pid}\n")
        entry = Entry(2, "qemu-process", "sfConfig:vm", {
            "name": "vm", "pidfile": str(tmp_path / "vm.pid"),
            "qmp": str(tmp_path / "vm.qmp")}, "t:2")
        assert qemu.stop_qemu_entry(entry) == f"stopped QEMU guest vm (pid {sleeper.pid}, killed)"
        sleeper.wait(5)
        assert not (tmp_path / "vm.pid").exists()
        assert "already gone" in qemu.stop_qemu_entry(entry)  # safe to run twice
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_the_tap_cleaner_says_when_the_tap_is_gone():
    if shutil.which("ip") is None:
        pytest.skip("needs ip (iproute2)")
    entry = Entry(1, "tap", "sfConfig:vm", {"name": "sfq-absent0", "netns": None}, "t:1")
    assert qemu.delete_tap_entry(entry) == "tap sfq-absent0 was already gone"


def test_modules_come_after_what_they_depend_on(tmp_path: Path):
    def module(name: str, depends: str) -> None:
        path = tmp_path / "kernel" / f"{name}.ko"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x7fELF junk\0license=GPL\0depends=" + depends.encode() + b"\0x\0")

    module("virtio_ring", "")
    module("virtio", "virtio_ring")
    module("virtio_pci", "virtio,virtio_ring")
    module("virtio_blk", "virtio,virtio_ring")
    order = [path.stem for path in bootkit.module_order(tmp_path, ["virtio_pci", "virtio_blk",
                                                                  "ext4"])]
    assert order == ["virtio_ring", "virtio", "virtio_pci", "virtio_blk"]  # ext4: built in


def test_the_initramfs_is_a_newc_archive_with_a_console(tmp_path: Path):
    fake = tmp_path / "busybox"
    fake.write_bytes(b"#!busybox")
    module = tmp_path / "virtio.ko"
    module.write_bytes(b"module")
    bootkit.write_initrd(tmp_path / "initrd", fake, [module])
    data = gzip.decompress((tmp_path / "initrd").read_bytes())
    entries = {}
    offset = 0
    while True:
        assert data[offset:offset + 6] == b"070701"
        fields = [int(data[offset + 6 + 8 * i: offset + 14 + 8 * i], 16) for i in range(13)]
        size, name_size = fields[6], fields[11]
        start = offset + 110
        name = data[start:start + name_size - 1].decode()
        start += name_size + (-(110 + name_size) % 4)
        if name == "TRAILER!!!":
            break
        entries[name] = (fields[1], data[start:start + size], (fields[9], fields[10]))
        offset = start + size + (-size % 4)
    assert stat.S_ISCHR(entries["dev/console"][0]) and entries["dev/console"][2] == (5, 1)
    assert entries["init"][1].startswith(b"#!/bin/busybox sh") and entries["init"][0] & 0o111
    assert entries["bin/busybox"][1] == b"#!busybox"
    assert entries["modules/order"][1] == b"virtio\n"


def test_the_kit_version_comes_from_apt_and_a_cached_kit_serves_without_apt(tmp_path: Path):
    show = ("Package: linux-image-cloud-amd64\nVersion: 6.1.1-1\n"
            "Depends: linux-image-6.1.0-99-cloud-amd64 (= 6.1.1-1)\n\n"
            "Package: busybox-static\nVersion: 1:1.35.0-4\n")
    command = ("apt-cache", "show", "--no-all-versions", "linux-image-cloud-amd64",
               "busybox-static")
    host = RecordingHost(probes={command: {"stdout": show}})
    assert bootkit.resolve(host) == ("linux-image-6.1.0-99-cloud-amd64",
                                     "6.1.0-99-cloud-amd64", "1:1.35.0-4")
    version = bootkit.kit_version("6.1.0-99-cloud-amd64", "1:1.35.0-4")
    assert version == f"6.1.0-99-cloud-amd64+busybox1_1.35.0-4+kit{bootkit.KIT_FORMAT}"
    kit = tmp_path / version
    kit.mkdir()
    for name in ("vmlinuz", "initrd", "rootfs.tar.gz", "rootfs.ext4"):
        (kit / name).write_bytes(b"x")
    with pytest.raises(UnexpectedCommand, match="apt-get download"):
        bootkit.ensure(tmp_path, host=host)  # no kit.json: incomplete, so it builds
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".build")] == []
    (kit / "kit.json").write_text(json.dumps({"version": version}))
    found = bootkit.ensure(tmp_path, host=host)
    assert found.kernel == str(kit / "vmlinuz") and not found.built
    offline = RecordingHost(probes={command: {"exit_code": 100, "stderr": "E: no lists"}})
    assert bootkit.ensure(tmp_path, host=offline).version == version
    with pytest.raises(bootkit.BootKitError, match="cannot find the boot kit's packages"):
        bootkit.ensure(tmp_path / "empty", host=offline)
