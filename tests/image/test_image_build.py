"""Real image builds (marker ``image``: root, mmdebstrap, the Debian package mirror).

One build is shared by the tests that need it (a session fixture): minbase, the ``ssh-server``
group, one extra package (``less``) and a placed file, as an ext4 ``img``. Downloaded packages
are kept between runs in ``$SFPY_TEST_APT_CACHE`` (default ``/var/tmp/sfpy-image-test-apt``).
The same image is booted with QEMU (TCG) until the guest prints the host name and address the
kernel command line gave it (marker ``vm`` too).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from image_support import APT_CACHE, KEY_LINE, build_args, debugfs, image_tier, sfimage

from sfpy.images.store import mounts_under

pytestmark = image_tier()


def test_the_build_holds_the_group_the_package_the_file_and_the_key(built):
    image = built["path"]
    assert built["format"] == "img" and built["cached"] is False
    assert "ssh-server" in built["groups"] and "base" in built["groups"]
    assert debugfs(image, "cat /etc/sfpy-test/placed.txt") == "placed by sfimage\n"
    assert "Mode:  0640" in debugfs(image, "stat /etc/sfpy-test/placed.txt")
    assert "Type: regular" in debugfs(image, "stat /usr/bin/less")
    assert "Type: regular" in debugfs(image, "stat /usr/sbin/sshd")
    assert debugfs(image, "cat /root/.ssh/authorized_keys").strip() == KEY_LINE
    assert debugfs(image, "cat /etc/hostname") == "imgtest\n"
    assert "LABEL=sfpy-root" in debugfs(image, "cat /etc/fstab")
    assert "ssh_host_" not in debugfs(image, "ls /etc/ssh")  # made by each domain at boot
    label = subprocess.run(["blkid", "-o", "value", "-s", "LABEL", image], capture_output=True,
                           text=True).stdout.strip()
    assert label == "sfpy-root"
    # the kernel and initramfs beside the image, the same version as the modules inside
    meta = json.loads(Path(built["path"]).with_name("meta.json").read_text())
    assert os.path.getsize(built["kernel"]) > 1_000_000
    assert os.path.getsize(built["ramdisk"]) > 1_000_000
    assert meta["kernelVersion"] in debugfs(image, "ls /lib/modules")
    assert "less" in meta["params"]["packages"] and meta["builder"]["name"] == "mmdebstrap"
    # progress was shown: phases and counts
    assert "installing remaining packages" in built["stderr"]
    assert "set up" in built["stderr"]


def test_a_second_build_is_answered_from_the_store_in_under_0_3_s(built, inputs):
    """The whole ``sfimage build`` process, measured in the CPU time it uses (what a busy
    machine cannot inflate; benchmarks/bench_images.py measures the wall clock on a quiet
    one), with a generous wall-clock bound that only a real wait would break."""
    cpu, wall = [], []
    for _ in range(3):  # the best of three
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.monotonic()
        result = sfimage(*build_args(inputs))
        wall.append(time.monotonic() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        data = json.loads(result.stdout)
        assert data["cached"] is True and data["path"] == built["path"]
    assert min(cpu) < 0.3, f"cache hits used {cpu} s of CPU"
    assert min(wall) < 3, f"cache hits took {wall} s: something waited"


def test_an_unknown_package_fails_cleanly_and_leaves_nothing(inputs, built):
    before = sorted(os.listdir(Path(inputs["store"]) / "images"))
    result = sfimage(*build_args(inputs, "--package", "sfpy-no-such-package"), check=False)
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("sfimage: error:")]
    assert len(error) == 1 and error[0].startswith("sfimage: error: mmdebstrap failed"), error
    assert error[0].endswith(": Unable to locate package sfpy-no-such-package"), error
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(Path(inputs["store"]) / "images")) == before
    assert os.listdir(Path(inputs["store"]) / ".tmp") == []
    assert mounts_under(inputs["store"]) == []


def test_two_concurrent_identical_builds_build_once(inputs):
    args = ["build", "--store", inputs["store"], "--apt-cache", APT_CACHE, "--json",
            "--no-kernel", "--format", "tar", "--hostname", "concurrent"]
    command = [sys.executable, "-m", "sfpy.cli.sfimage", *args]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=900) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    results = [json.loads(out) for out, _ in outputs]
    assert results[0]["path"] == results[1]["path"]
    assert sorted(r["cached"] for r in results) == [False, True]  # one built, one reused
    waited = outputs[[r["cached"] for r in results].index(True)][1]
    assert "waiting for it" in waited or "is in the store" in waited
    assert "mmdebstrap" in Path(results[0]["path"]).with_name("build.log").read_text()


def test_a_second_builder_plug_in_builds_the_same_request(inputs):
    if shutil.which("debootstrap") is None:
        pytest.skip("the debootstrap builder needs debootstrap")
    args = ["build", "--store", inputs["store"], "--apt-cache", APT_CACHE, "--json",
            "--builder", "debootstrap", "--no-kernel", "--format", "tar.gz",
            "--file", f"{inputs['placed']}:/etc/sfpy-test/placed.txt:0640",
            "--hostname", "bydebootstrap"]
    data = json.loads(sfimage(*args).stdout)
    assert data["cached"] is False
    listing = subprocess.run(["tar", "-tzvf", data["path"]], capture_output=True, text=True,
                             check=True).stdout
    assert "./etc/sfpy-test/placed.txt" in listing and "-rw-r-----" in listing
    def member(name: str) -> str:
        return subprocess.run(["tar", "-xzOf", data["path"], name], capture_output=True,
                              text=True, check=True).stdout

    assert member("./etc/hostname") == "bydebootstrap\n"
    assert "LABEL=sfpy-root" in member("./etc/fstab")
    assert member("./etc/sfpy-test/placed.txt") == "placed by sfimage\n"
    meta = json.loads(Path(data["path"]).with_name("meta.json").read_text())
    assert meta["builder"]["name"] == "debootstrap"


@pytest.mark.vm
def test_the_image_boots_and_takes_its_name_and_address_from_the_kernel_command_line(
        built, tmp_path):
    if shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None:
        pytest.skip("booting the image needs qemu-system-x86_64 and qemu-img")
    overlay = tmp_path / "overlay.qcow2"  # the stored image stays untouched
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", built["path"],
                    str(overlay)], check=True)
    console = tmp_path / "console.log"
    cmdline = ("root=/dev/vda ro console=ttyS0 "
               "ip=10.0.2.15::10.0.2.2:255.255.255.0:vm-imgtest:eth0:off")
    qemu = subprocess.Popen(
        ["qemu-system-x86_64", "-machine", "accel=tcg", "-m", "512",
         "-no-reboot", "-kernel", built["kernel"], "-initrd", built["ramdisk"],
         "-append", cmdline, "-drive", f"file={overlay},if=virtio,format=qcow2",
         "-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-pci,netdev=n0",
         "-serial", f"file:{console}", "-display", "none", "-monitor", "none"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    wanted = "sfpy-guest: hostname vm-imgtest address 10.0.2.15/24 on eth0"
    try:
        deadline = time.monotonic() + 420
        text = ""
        while time.monotonic() < deadline and qemu.poll() is None:
            text = console.read_text(errors="replace") if console.exists() else ""
            if wanted in text and "vm-imgtest login:" in text:
                break
            time.sleep(1)
        assert wanted in text, f"the guest did not say {wanted!r}:\n{text[-3000:]}"
        assert "vm-imgtest login:" in text  # a getty on the console named by console=
    finally:
        qemu.kill()
        qemu.wait(timeout=30)
