"""The domain configurations :func:`sfpy.host.xl.domain_config` writes, read back by Xen's own
configuration parser (``libxlutil``, from Debian's ``xen-utils-4.17``) through ctypes: every
value must come back as written — name, kernel, ramdisk, memory, vcpus, extra, the disk list
(each item also through ``xlu_disk_parse``, as ``xl create`` does) and the vif list.
"""

from __future__ import annotations

import ctypes
import glob
from collections.abc import Iterator
from pathlib import Path

import pytest

from sfpy.host import xl

LIBRARIES = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libxlutil.so.*")
                   + glob.glob("/usr/lib/*/libxlutil.so.*"))
pytestmark = pytest.mark.skipif(not LIBRARIES, reason="needs libxlutil (libxlutil.so.*, from "
                                                      "Debian's xen-utils-4.17)")

# libxl_disk_format (libxl_types.idl)
RAW, QCOW2 = 4, 2


class DiskPrefix(ctypes.Structure):
    """The leading fields of ``libxl_device_disk``, which xlu_disk_parse fills (the rest of the
    struct lies in a larger zeroed buffer, as libxl_device_disk_init leaves it)."""

    _fields_ = [("backend_domid", ctypes.c_uint32), ("backend_domname", ctypes.c_char_p),
                ("pdev_path", ctypes.c_char_p), ("vdev", ctypes.c_char_p),
                ("backend", ctypes.c_int), ("format", ctypes.c_int),
                ("script", ctypes.c_char_p), ("removable", ctypes.c_int),
                ("readwrite", ctypes.c_int), ("is_cdrom", ctypes.c_int)]


class Parsed:
    """One configuration text parsed by libxlutil; values read with its getters."""

    def __init__(self, library: ctypes.CDLL, text: str, report: Path) -> None:
        self.lib = library
        libc = ctypes.CDLL(None)
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        self._libc = libc
        self._report = libc.fopen(str(report).encode(), b"w")
        self.cfg = library.xlu_cfg_init(self._report, b"domain.cfg")
        assert self.cfg, "xlu_cfg_init failed"
        data = text.encode()
        self.status = library.xlu_cfg_readdata(self.cfg, data, len(data))
        self._libc.fflush(None)
        self.messages = report.read_text()

    def string(self, key: str) -> str | None:
        value = ctypes.c_char_p()
        if self.lib.xlu_cfg_get_string(self.cfg, key.encode(), ctypes.byref(value), 1):
            return None
        return (value.value or b"").decode()

    def long(self, key: str) -> int | None:
        value = ctypes.c_long()
        if self.lib.xlu_cfg_get_long(self.cfg, key.encode(), ctypes.byref(value), 1):
            return None
        return value.value

    def items(self, key: str) -> list[str] | None:
        listed, count = ctypes.c_void_p(), ctypes.c_int()
        if self.lib.xlu_cfg_get_list(self.cfg, key.encode(), ctypes.byref(listed),
                                     ctypes.byref(count), 1):
            return None
        return [self.lib.xlu_cfg_get_listitem(listed, i).decode() for i in range(count.value)]

    def disk(self, spec: str) -> DiskPrefix:
        buffer = ctypes.create_string_buffer(4096)
        specs = (ctypes.c_char_p * 1)(spec.encode())
        status = self.lib.xlu_disk_parse(self.cfg, 1, specs, buffer)
        assert status == 0, f"xlu_disk_parse refused {spec!r}: {status}"
        return DiskPrefix.from_buffer(buffer)

    def close(self) -> None:
        self.lib.xlu_cfg_destroy(self.cfg)
        self._libc.fclose(self._report)


@pytest.fixture(scope="module")
def libxlutil() -> ctypes.CDLL:
    library = ctypes.CDLL(LIBRARIES[0])
    library.xlu_cfg_init.restype = ctypes.c_void_p
    library.xlu_cfg_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    library.xlu_cfg_readdata.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    library.xlu_cfg_destroy.argtypes = [ctypes.c_void_p]
    library.xlu_cfg_get_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                           ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    library.xlu_cfg_get_long.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                         ctypes.POINTER(ctypes.c_long), ctypes.c_int]
    library.xlu_cfg_get_list.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                         ctypes.POINTER(ctypes.c_void_p),
                                         ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    library.xlu_cfg_get_listitem.restype = ctypes.c_char_p
    library.xlu_cfg_get_listitem.argtypes = [ctypes.c_void_p, ctypes.c_int]
    library.xlu_disk_parse.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                       ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p]
    return library


@pytest.fixture
def parse(libxlutil: ctypes.CDLL, tmp_path: Path) -> Iterator:
    opened: list[Parsed] = []

    def parse_text(text: str) -> Parsed:
        parsed = Parsed(libxlutil, text, tmp_path / f"report{len(opened)}.txt")
        opened.append(parsed)
        return parsed

    yield parse_text
    for parsed in opened:
        parsed.close()


CONFIGS = {
    "loopback, everything given": xl.DomainConfig(
        name="vm1", kernel="/boot/vmlinuz-2.6.16-xen", ramdisk="/boot/initrd-2.6.16-xen.img",
        memory=512, hostname="vm1.cern.ch", ip="10.1.2.3", netmask="255.255.0.0",
        gateway="10.1.0.1", extra="fastboot quiet", vcpus=2, bridge="xenbr1",
        mac="00:16:3e:01:02:03",
        disks=[("/srv/xen/xen-domain-vm1.img", "raw"),
               ("/srv/xen/xen-domain-vm1-swap.img", "raw")]),
    "qcow2 overlay, no ramdisk, no gateway, no extra": xl.DomainConfig(
        name="web-2.test", kernel="/boot/vmlinuz", memory=128, hostname="web-2",
        ip="192.168.0.20", netmask="255.255.255.0",
        disks=[("/var/lib/xen/images/xen-domain-web-2.test.qcow2", "qcow2"),
               ("/var/lib/xen/images/xen-domain-web-2.test-swap.img", "raw")]),
    "lvm, no swap": xl.DomainConfig(
        name="db_1", kernel="/boot/vmlinuz", memory=4096, hostname="db1.example.org",
        ip="10.0.0.7", netmask="255.0.0.0", gateway="10.0.0.1", extra="console=tty0",
        disks=[("/dev/vg0/xen-domain-db_1", "raw")]),
}


@pytest.mark.parametrize("about", CONFIGS)
def test_the_real_parser_reads_back_every_value(parse, about: str):
    config = CONFIGS[about]
    text = xl.domain_config(config)
    parsed = parse(text)
    assert parsed.status == 0, f"{about}: libxlutil refused the configuration: " \
                               f"{parsed.messages}\n{text}"
    assert parsed.string("name") == config.name
    assert parsed.string("type") == "pv"
    assert parsed.string("kernel") == config.kernel
    assert parsed.string("ramdisk") == config.ramdisk
    assert parsed.long("memory") == config.memory
    assert parsed.long("vcpus") == config.vcpus
    extra = parsed.string("extra")
    assert extra is not None
    assert extra.split() == [f"root={config.root}", "ro", "console=hvc0", xl.kernel_ip(config),
                             *config.extra.split()]
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"),
                          ("on_crash", "destroy")):
        assert parsed.string(event) == action

    disks = parsed.items("disk")
    assert disks is not None and len(disks) == len(config.disks)
    for spec, (target, fmt), device in zip(disks, config.disks, config.devices, strict=False):
        disk = parsed.disk(spec)
        assert (disk.pdev_path or b"").decode() == target
        assert (disk.vdev or b"").decode() == device
        assert disk.format == {"raw": RAW, "qcow2": QCOW2}[fmt]
        assert disk.readwrite == 1

    vifs = parsed.items("vif")
    assert vifs is not None and len(vifs) == 1
    settings = dict(part.strip().split("=", 1) for part in vifs[0].split(","))
    assert settings == {"mac": config.mac or xl.mac_for(config.hostname),
                        "bridge": config.bridge}


def test_a_broken_configuration_is_refused(parse):
    # the check can fail: a value libxlutil cannot read is reported, not silently accepted
    parsed = parse('name = "vm1"\nmemory = [ "unclosed"\n')
    assert parsed.status != 0
