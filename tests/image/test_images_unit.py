"""Image parameters, keys, groups, configuration, the guest customization and the store's
operations: fast, no network, no builder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sfpy.images import config as configuration
from sfpy.images import groups as group_files
from sfpy.images import guest
from sfpy.images.builders import (
    CACHE_IN_HOOK,
    CACHE_OUT_HOOK,
    CUSTOMIZE_HOOK,
    NAMES_HOOK,
    BuildJob,
    MmdebstrapBuilder,
)
from sfpy.images.errors import ImageError, ParameterError
from sfpy.images.params import Distribution, ImageParams, PlacedFile, password_hash
from sfpy.images.request import make_params
from sfpy.images.store import Store, remove_tree, write_meta

HASH = "$6$saltsalt$" + "a" * 86
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDlxv3kB5JgctGsoxyxca78i4iQEbvTIJOBzU/cbuhZ/ t@x"


# -- parameters and keys --------------------------------------------------------------------------
def test_the_key_ignores_the_order_packages_groups_and_keys_were_given_in():
    a = ImageParams(packages=("vim", "less"), groups=("devel", "base"), ssh_keys=(KEY,))
    b = ImageParams(packages=("less", "vim"), groups=("base", "devel"), ssh_keys=(KEY,))
    assert a.key("1") == b.key("1")


def test_the_key_changes_with_every_parameter_and_with_the_builder_version():
    base = ImageParams()
    variants = [replace(base, packages=("less",)), replace(base, format="img"),
                replace(base, hostname="other"), replace(base, root_password_hash=HASH),
                replace(base, distribution=replace(base.distribution, suite="trixie")),
                replace(base, distribution=replace(base.distribution, kernel_package=""))]
    keys = {base.key("1"), base.key("2"), *(v.key("1") for v in variants)}
    assert len(keys) == 2 + len(variants)


def test_a_placed_file_enters_the_key_by_its_content_not_its_path(tmp_path: Path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("same")
    two.write_text("same")
    a = ImageParams(files=(PlacedFile.parse(f"{one}:/etc/motd"),))
    b = ImageParams(files=(PlacedFile.parse(f"{two}:/etc/motd"),))
    assert a.key("1") == b.key("1")
    two.write_text("different")
    c = ImageParams(files=(PlacedFile.parse(f"{two}:/etc/motd"),))
    assert c.key("1") != a.key("1")


def test_the_canonical_form_never_holds_the_password_hash():
    params = ImageParams(root_password_hash=HASH)
    text = json.dumps(params.canonical("1"))
    assert HASH not in text and "saltsalt" not in text
    assert HASH not in repr(params)


def test_a_clear_password_is_refused():
    with pytest.raises(ParameterError, match="crypt hash"):
        password_hash("hunter2")
    assert password_hash(HASH) == HASH


@pytest.mark.parametrize("text, problem", [
    ("/nonexistent:/etc/x", "is not a file"),
    ("{src}:etc/x", "absolute"),
    ("{src}:/etc/../x", "absolute"),
    ("{src}:/etc/x:999", "not octal"),
    ("{src}", "SRC:DEST"),
])
def test_bad_file_options_are_refused(tmp_path: Path, text: str, problem: str):
    src = tmp_path / "f"
    src.write_text("x")
    with pytest.raises(ParameterError, match=problem):
        PlacedFile.parse(text.format(src=src))


def test_a_file_mode_is_read_as_octal(tmp_path: Path):
    src = tmp_path / "f"
    src.write_text("x")
    assert PlacedFile.parse(f"{src}:/etc/x:0600").mode == 0o600
    assert PlacedFile.parse(f"{src}:/etc/x").mode == 0o644


@pytest.mark.parametrize("change, problem", [
    ({"packages": ("bad name",)}, "package name"),
    ({"packages": ("x;rm",)}, "package name"),
    ({"hostname": "-bad-"}, "host name"),
    ({"format": "zip"}, "format"),
    ({"size": 1024}, "--size is for"),
])
def test_bad_parameters_are_refused(change: dict, problem: str):
    with pytest.raises(ParameterError, match=problem):
        replace(ImageParams(), **change).check()


def test_the_kernel_package_is_installed_with_the_rest():
    assert ImageParams(packages=("less",)).all_packages() == ["less", "linux-image-cloud-amd64"]
    none = Distribution(kernel_package="")
    assert ImageParams(distribution=none, packages=("less",)).all_packages() == ["less"]


# -- groups -----------------------------------------------------------------------------------------
def test_the_shipped_groups_exist_and_base_is_always_in():
    known = group_files.load([])
    assert {"base", "ssh-server", "devel"} <= set(known)
    names, packages = group_files.resolve([], known)
    assert names == ["base"] and "systemd-sysv" in packages
    names, packages = group_files.resolve(["devel"], known)
    assert names == ["base", "devel", "ssh-server"]  # devel includes ssh-server
    assert "openssh-server" in packages and "build-essential" in packages


def test_users_add_and_replace_groups_in_their_own_directory(tmp_path: Path):
    (tmp_path / "mine.yaml").write_text(
        "glite-ui:\n  description: the slides' example\n  packages: [less, curl]\n"
        "  include: [ssh-server]\n"
        "devel:\n  packages: [make]\n")
    known = group_files.load([str(tmp_path)])
    names, packages = group_files.resolve(["glite-ui", "devel"], known)
    assert "curl" in packages and "openssh-server" in packages
    assert "build-essential" not in packages and "make" in packages  # devel replaced


def test_an_unknown_group_names_the_known_ones():
    with pytest.raises(ParameterError, match="no package group 'nope'.*ssh-server"):
        group_files.resolve(["nope"], group_files.load([]))


def test_groups_that_include_each_other_are_refused(tmp_path: Path):
    (tmp_path / "loop.yaml").write_text("a:\n  include: [b]\nb:\n  include: [a]\n")
    with pytest.raises(ParameterError, match="include each other"):
        group_files.resolve(["a"], group_files.load([str(tmp_path)]))


def test_a_group_with_a_bad_package_name_is_refused(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text("x:\n  packages: ['a b']\n")
    with pytest.raises(ParameterError, match="package name"):
        group_files.load([str(tmp_path)])


# -- configuration ---------------------------------------------------------------------------------
def test_the_configuration_sets_the_distribution_and_the_store(tmp_path: Path):
    path = tmp_path / "images.yaml"
    path.write_text("store: /srv/images\ndistribution:\n  suite: trixie\n  architecture: arm64\n"
                    "  components: [main, contrib]\nquota: 10G\nunusedFor: 2d\n")
    config = configuration.load(str(path))
    assert config.store == "/srv/images"
    assert config.distribution.suite == "trixie"
    assert config.distribution.kernel_package == "linux-image-cloud-arm64"
    assert config.distribution.components == ("main", "contrib")
    assert config.quota == 10 * 2**30 and config.unused_for == 2 * 86400


def test_a_configuration_with_an_unknown_key_is_refused(tmp_path: Path):
    path = tmp_path / "images.yaml"
    path.write_text("stroe: /x\n")
    with pytest.raises(ParameterError, match="unknown keys.*stroe"):
        configuration.load(str(path))


def test_command_line_values_override_the_configuration(tmp_path: Path):
    config = configuration.from_mapping({"distribution": {"suite": "trixie"}})
    params = make_params(config, suite="bookworm", packages=["less,curl"], format="img",
                         size="1G")
    assert params.distribution.suite == "bookworm"
    assert params.packages == ("curl", "less") and params.size == 2**30


# -- the mmdebstrap command ------------------------------------------------------------------------
def test_the_mmdebstrap_command_passes_values_as_arguments_and_hooks_as_constants(tmp_path):
    params = ImageParams(packages=("less",), group_packages=("systemd-sysv",))
    job = BuildJob(params=params, work=str(tmp_path), target=str(tmp_path / "image.tar.gz"),
                   out=str(tmp_path), spec={}, run=lambda *a, **k: None,
                   apt_cache=str(tmp_path / "cache"))
    argv = MmdebstrapBuilder().command(job)
    assert argv[0] == "mmdebstrap" and "--variant=minbase" in argv
    assert "--include=less,linux-image-cloud-amd64,systemd-sysv" in argv
    assert argv[-3:] == ["bookworm", str(tmp_path / "image.tar.gz"),
                         "http://deb.debian.org/debian"]
    hooks = [a.split("=", 1)[1] for a in argv if a.startswith((
        "--customize-hook=", "--setup-hook=", "--essential-hook="))]
    assert hooks == [CACHE_IN_HOOK, CACHE_OUT_HOOK, NAMES_HOOK, CUSTOMIZE_HOOK]
    assert all(str(tmp_path) not in hook for hook in hooks)  # paths come from the environment


# -- the guest customization -----------------------------------------------------------------------
def fake_tree(root: Path) -> None:
    (root / "etc" / "ssh").mkdir(parents=True)
    (root / "boot").mkdir()
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\ndaemon:*:19000::::::\n")
    (root / "etc" / "group").write_text("root:x:0:\nshadow:x:42:\n")
    (root / "etc" / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "etc" / "ssh" / "ssh_host_ed25519_key").write_text("secret")
    (root / "etc" / "ssh" / "ssh_host_ed25519_key.pub").write_text("pub")
    (root / "boot" / "vmlinuz-6.1.0-9-cloud-amd64").write_bytes(b"kernel")
    (root / "boot" / "initrd.img-6.1.0-9-cloud-amd64").write_bytes(b"initrd")


def test_the_guest_customization_makes_the_tree_boot_anywhere(tmp_path: Path):
    root, out = tmp_path / "root", tmp_path / "out"
    fake_tree(root)
    out.mkdir()
    src = tmp_path / "motd"
    src.write_text("hello")
    spec = {"hostname": "guest1", "rootPasswordHash": HASH, "sshKeys": [KEY],
            "files": [{"source": str(src), "dest": "/etc/motd", "mode": "0600"}],
            "out": str(out), "kernel": True}
    placed = guest.customize(str(root), spec)
    assert placed["kernelVersion"] == "6.1.0-9-cloud-amd64"
    assert (out / "kernel").read_bytes() == b"kernel" and (out / "ramdisk").read_bytes() == b"initrd"
    fstab = (root / "etc" / "fstab").read_text()
    assert "LABEL=sfpy-root\t/\text4" in fstab and "LABEL=sfpy-swap\tnone\tswap" in fstab
    assert (root / "etc" / "hostname").read_text() == "guest1\n"
    assert (root / "etc" / "shadow").read_text().startswith(f"root:{HASH}:")
    assert (root / "root" / ".ssh" / "authorized_keys").read_text() == KEY + "\n"
    assert oct((root / "root" / ".ssh" / "authorized_keys").stat().st_mode & 0o777) == "0o600"
    assert (root / "etc" / "motd").read_text() == "hello"
    assert oct((root / "etc" / "motd").stat().st_mode & 0o777) == "0o600"
    assert (root / "etc" / "machine-id").read_text() == ""
    assert not list((root / "etc" / "ssh").glob("ssh_host_*"))  # each domain makes its own
    system = root / "etc" / "systemd" / "system"
    for unit in guest.MASKED:
        assert os.readlink(system / unit) == "/dev/null"
    assert os.readlink(root / "etc" / "systemd" / "network" / "99-default.link") == "/dev/null"
    assert (system / "multi-user.target.wants" / "sfpy-guest-network.service").is_symlink()
    script = root / "usr" / "local" / "sbin" / "sfpy-guest-network"
    assert os.access(script, os.X_OK)
    subprocess.run(["sh", "-n", str(script)], check=True)  # valid sh
    assert "hvc0" in (root / "etc" / "securetty").read_text()


def test_a_symlink_in_the_tree_never_leads_out_of_it(tmp_path: Path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "evil").symlink_to(str(outside))        # absolute: the guest's /…/outside
    (root / "etc" / "up").symlink_to("../../..")     # relative, climbing past the root
    assert guest.inside(str(root), "/evil/x") == str(root / outside.relative_to("/") / "x")
    assert guest.inside(str(root), "/etc/up/etc/passwd") == str(root / "etc" / "passwd")
    src = tmp_path / "f"
    src.write_text("data")
    guest.customize(str(root), {"hostname": "h", "files": [
        {"source": str(src), "dest": "/evil/planted", "mode": "0644"}], "out": None})
    assert not (outside / "planted").exists()
    assert (root / outside.relative_to("/") / "planted").read_text() == "data"


# -- the store --------------------------------------------------------------------------------------
def publish(store: Store, key: str, *, fmt: str = "tar.gz", size: int = 1000,
            used: float | None = None) -> None:
    work = store.new_work_directory(key)
    (Path(work) / f"image.{fmt}").write_bytes(b"x" * size)
    (Path(work) / "kernel").write_bytes(b"k")
    write_meta(work, {"key": key, "kind": "built", "format": fmt, "image": f"image.{fmt}",
                      "kernel": "kernel", "ramdisk": None, "created": "2026-01-01T00:00:00Z",
                      "params": {"groups": ["base"]}})
    image = store.publish(work, key)
    if used is not None:
        os.utime(Path(image.directory) / "used", (used, used))


def test_publish_find_resolve_and_remove(tmp_path: Path):
    store = Store(str(tmp_path / "store"))
    key = "ab" * 32
    assert store.find(key) is None
    publish(store, key)
    image = store.resolve("abab")
    assert image.key == key and image.path.endswith("image.tar.gz")
    assert image.kernel and image.ramdisk is None
    assert not os.listdir(store.tmp_dir)  # the work directory became the image
    with pytest.raises(ParameterError):
        store.resolve("ab")  # too short
    assert store.remove(image)
    assert store.find(key) is None and store.images() == []


def test_an_image_being_built_is_not_removed(tmp_path: Path):
    store = Store(str(tmp_path / "store"))
    key = "cd" * 32
    publish(store, key)
    with store.lock(key) as held:
        assert held
        with store.lock(key, wait=False) as again:
            assert again is False
        assert store.remove(store.find(key)) is False
    assert store.find(key) is not None


def test_gc_removes_what_nobody_used_then_the_least_recently_used_above_the_quota(tmp_path):
    store = Store(str(tmp_path / "store"))
    now = time.time()
    old, older, recent, newest = ("1" * 64, "2" * 64, "3" * 64, "4" * 64)
    publish(store, old, size=10000, used=now - 40 * 86400)
    publish(store, older, size=10000, used=now - 10 * 86400)
    publish(store, recent, size=10000, used=now - 5 * 86400)
    publish(store, newest, size=10000, used=now)
    dry = store.gc(unused_for=30 * 86400, quota=None, dry_run=True)
    assert [e["key"] for e in dry] == [old] and store.find(old) is not None
    removed = store.gc(unused_for=30 * 86400, quota=None)
    assert [(e["key"], e["reason"]) for e in removed] == [(old, "unused")]
    per_image = store.find(newest).bytes_used()
    removed = store.gc(unused_for=None, quota=2 * per_image)
    assert [(e["key"], e["reason"]) for e in removed] == [(older, "quota")]
    assert {i.key for i in store.images()} == {recent, newest}


def test_a_saved_image_is_imported_with_its_origin_once(tmp_path: Path):
    store = Store(str(tmp_path / "store"))
    saved = tmp_path / "xen-domain-web1-20261201T101500Z.tar.gz"
    saved.write_bytes(b"saved image")
    image, new = store.import_file(str(saved), host="dom0-a")
    assert new and image.format == "tar.gz"
    assert image.meta["origin"] == {"file": str(saved), "domain": "web1", "host": "dom0-a",
                                    "time": "2026-12-01T10:15:00Z"}
    again, new = store.import_file(str(saved))
    assert not new and again.key == image.key
    with pytest.raises(ParameterError, match="not an image name"):
        (tmp_path / "notes.txt").write_text("x")
        store.import_file(str(tmp_path / "notes.txt"))


def test_export_to_a_directory_brings_the_kernel_along(tmp_path: Path):
    store = Store(str(tmp_path / "store"))
    publish(store, "ef" * 32)
    out = tmp_path / "out"
    out.mkdir()
    written = store.export(store.resolve("efef"), str(out))
    assert sorted(os.path.basename(w) for w in written) == ["efefefefefef.tar.gz", "kernel"]


def test_stale_build_directories_are_removed_when_their_lock_is_free(tmp_path: Path):
    store = Store(str(tmp_path / "store"))
    busy, stale = store.new_work_directory("a" * 64), store.new_work_directory("b" * 64)
    with store.lock("a" * 64):
        assert store.clean_stale_work() == [os.path.basename(stale)]
    assert os.path.isdir(busy) and not os.path.exists(stale)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount --bind)")
def test_removing_a_build_directory_never_deletes_through_a_leftover_mount(tmp_path: Path):
    precious = tmp_path / "host-dir"
    precious.mkdir()
    (precious / "keep").write_text("host file")
    work = tmp_path / "work"
    (work / "chroot" / "dev").mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(precious), str(work / "chroot" / "dev")], check=True)
    try:
        remove_tree(str(work))
    finally:
        subprocess.run(["umount", "-l", str(work / "chroot" / "dev")], check=False,
                       stderr=subprocess.DEVNULL)
    assert not work.exists()
    assert (precious / "keep").read_text() == "host file"


# -- the command line --------------------------------------------------------------------------------
def sfimage(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sfpy.cli.sfimage", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=60)


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path):
    result = sfimage("build", "--store", str(tmp_path), "--group", "nope")
    assert result.returncode == 2 and "no package group 'nope'" in result.stderr
    assert "Traceback" not in result.stderr
    result = sfimage("build", "--store", str(tmp_path), "--root-password-hash", "hunter2")
    assert result.returncode == 2 and "crypt hash" in result.stderr
    assert not (tmp_path / "images").exists()


def test_store_commands_from_the_command_line(tmp_path: Path):
    store = tmp_path / "store"
    saved = tmp_path / "xen-domain-db1-20261201T101500Z.img"
    saved.write_bytes(b"raw ext4")
    result = sfimage("import", "--store", str(store), str(saved), "--host", "dom0-b")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    listed = json.loads(sfimage("list", "--store", str(store), "--json").stdout)
    assert [(i["key"], i["origin"]["domain"], i["origin"]["host"]) for i in listed] == [
        (key, "db1", "dom0-b")]
    shown = json.loads(sfimage("show", "--store", str(store), "--json", key[:8]).stdout)
    assert shown["meta"]["origin"]["time"] == "2026-12-01T10:15:00Z"
    path = sfimage("get", "--store", str(store), key[:8]).stdout.strip()
    assert Path(path).read_bytes() == b"raw ext4"
    assert sfimage("get", "--store", str(store), key[:8], "--what", "kernel").returncode == 1
    gc = json.loads(sfimage("gc", "--store", str(store), "--unused-for", "1d", "--json").stdout)
    assert gc["removed"] == []
    assert sfimage("rm", "--store", str(store), key[:8]).returncode == 0
    assert json.loads(sfimage("list", "--store", str(store), "--json").stdout) == []
    missing = sfimage("show", "--store", str(store), key[:8])
    assert missing.returncode == 1 and "no image" in missing.stderr


def test_an_image_of_a_key_in_the_store_is_damaged_not_a_traceback(tmp_path: Path):
    store = Store(str(tmp_path))
    (tmp_path / "images" / ("9" * 64)).mkdir(parents=True)
    (tmp_path / "images" / ("9" * 64) / "meta.json").write_text("{not json")
    with pytest.raises(ImageError, match="damaged"):
        store.find("9" * 64)


# -- build_image with a stand-in builder (the real ones: test_image_build.py) ------------------
class StandIn:
    """A builder that writes a small tarball (after ``delay`` seconds) or fails half-way."""

    name, version, distributions = "stand-in", "1", ("debian",)

    def __init__(self, delay: float = 0.0, fail: bool = False, mount: str | None = None):
        self.delay, self.fail, self.mount, self.calls = delay, fail, mount, 0

    def missing(self):
        return None

    def build(self, job):
        self.calls += 1
        time.sleep(self.delay)  # stands for the long work of a real builder
        Path(job.target).write_bytes(b"tar")
        if self.mount:  # what a killed chroot build leaves: a bind mount in the work directory
            inner = Path(job.work) / "chroot" / "dev"
            inner.mkdir(parents=True)
            subprocess.run(["mount", "--bind", self.mount, str(inner)], check=True)
        if self.fail:
            job.run(["false"], label="false").check()
        (Path(job.out) / "placed.json").write_text("{}")


def test_a_build_is_published_with_its_meta_and_found_again(tmp_path: Path):
    from sfpy.images.build import build_image

    store = Store(str(tmp_path / "store"))
    builder = StandIn()
    params = ImageParams(format="tar")
    image, built = build_image(store, params, builder)
    assert built and builder.calls == 1
    assert image.meta["params"] == params.canonical("1") and image.format == "tar"
    again, built = build_image(store, params, builder)
    assert not built and again.key == image.key and builder.calls == 1


def test_two_builds_of_one_key_at_once_build_once(tmp_path: Path):
    import threading

    from sfpy.images.build import build_image

    store = Store(str(tmp_path / "store"))
    builder = StandIn(delay=1.0)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(
        build_image(store, ImageParams(format="tar"), builder))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert builder.calls == 1
    assert sorted(built for _, built in results) == [False, True]
    assert results[0][0].key == results[1][0].key


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount --bind)")
def test_a_failed_build_leaves_nothing_in_the_store_and_no_mount(tmp_path: Path):
    from sfpy.host.runner import CommandFailed
    from sfpy.images.build import build_image

    precious = tmp_path / "host-dev"
    precious.mkdir()
    (precious / "null").write_text("a host file")
    store = Store(str(tmp_path / "store"))
    with pytest.raises(CommandFailed):
        build_image(store, ImageParams(format="tar"), StandIn(fail=True, mount=str(precious)))
    assert store.images() == [] and os.listdir(store.tmp_dir) == []
    from sfpy.images.store import mounts_under

    assert mounts_under(str(tmp_path / "store")) == []
    assert (precious / "null").read_text() == "a host file"
