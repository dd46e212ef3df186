"""Host operations from tables (pyinfra's tests/operations/*.json is the model): each file in
``operations/<operation>/`` gives the attributes, the facts the host answers (files that
exist, what each probe prints) and the commands expected, in order; ``again`` gives the facts
after the run and expects no command (the operation is idempotent); ``error`` expects the
operation to refuse with that text. Then the same operation is run for real where its
programs exist, and the seam itself is checked."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from host_support import FakeStep

from sfpy.host import storage, xl
from sfpy.host.filesystems import ext4_image
from sfpy.host.hosts import Host, LocalHost, RecordingHost, UnexpectedCommand
from sfpy.host.runner import HostError, Result, ShellError
from sfpy.host.work import WorkCancelled, activate

TABLES = Path(__file__).resolve().parent / "operations"
OPERATIONS = {"ext4_image": ext4_image,
              "loopback_put_in_place": storage.loopback_put_in_place,
              "lvm_put_in_place": storage.lvm_put_in_place,
              "save_image": storage.save_image,
              "xl_stop": xl.stop}
CASES = sorted(TABLES.glob("*/*.json"))


def recording_host(facts: dict[str, Any], commands: list[Any]) -> RecordingHost:
    """A host answering the case's probes, and each expected command (exit 0 unless the case
    gives its result)."""
    probes = {tuple(p["argv"]): p for p in facts.get("probes", [])}
    table = {}
    for command in commands:
        if isinstance(command, dict):
            table[tuple(command["argv"])] = command
        else:
            table[tuple(command)] = 0
    return RecordingHost(table, probes=probes, files=facts.get("files", {}))


def expected_argv(commands: list[Any]) -> list[list[str]]:
    return [c["argv"] if isinstance(c, dict) else c for c in commands]


def run_case(operation, attributes: dict[str, Any], facts: dict[str, Any], commands: list[Any],
             error: str | None, changed: bool | None) -> None:
    host = recording_host(facts, commands)
    if error is None:
        outcome = operation(host, **attributes)
        if changed is not None:
            assert outcome is changed
    else:
        with pytest.raises(HostError) as failure:
            operation(host, **attributes)
        assert not isinstance(failure.value, UnexpectedCommand), failure.value
        assert error in str(failure.value)
    assert host.commands == expected_argv(commands)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.stem}" for c in CASES])
def test_operation_table(case: Path):
    spec = json.loads(case.read_text(encoding="utf-8"))
    operation = OPERATIONS[case.parent.name]
    run_case(operation, spec["attributes"], spec["facts"], spec["commands"], spec.get("error"),
             spec.get("changed"))
    again = spec.get("again")
    if again is not None:
        assert again["commands"] == [], "run again: an idempotent operation changes nothing"
        run_case(operation, spec["attributes"], again["facts"], again["commands"], None,
                 again.get("changed"))


def test_the_tables_cover_every_path_of_ext4_image():
    names = {case.stem for case in CASES if case.parent.name == "ext4_image"}
    assert {"missing_image", "file_without_filesystem", "other_filesystem_is_refused",
            "failing_mkfs"} <= names


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None or shutil.which("blkid") is None,
                    reason="mkfs.ext4 or blkid is not installed on this machine")
def test_ext4_image_for_real(tmp_path):
    host = LocalHost(log=logging.getLogger("sfpy.test.host"))
    image = str(tmp_path / "disk.img")
    assert ext4_image(host, image, "8M", label="root") is True
    assert (tmp_path / "disk.img").stat().st_size == 8 * 1024 * 1024
    assert (tmp_path / "disk.img").stat().st_blocks * 512 < 8 * 1024 * 1024  # sparse
    found = subprocess.run(["blkid", "-p", "-o", "value", "-s", "LABEL", image],
                           capture_output=True, text=True)
    assert found.stdout.strip() == "root"
    ran = [r.command[0] for r in host.runner.history]
    assert ran == ["truncate", "mkfs.ext4"]
    assert ext4_image(host, image, "8M", label="root") is False  # again: only asked
    assert [r.command[0] for r in host.runner.history][2:] == ["blkid"]


def test_a_missing_directory_is_said_in_words_not_as_dfs_message(tmp_path):
    with pytest.raises(HostError, match=f"directory {tmp_path}/images does not exist: make it"):
        storage.free_in_directory(LocalHost(), str(tmp_path / "images"))
    assert storage.free_in_directory(LocalHost(), str(tmp_path)) > 0


# -- the seam ----------------------------------------------------------------------------------
def test_both_hosts_are_hosts():
    assert isinstance(LocalHost(), Host) and isinstance(RecordingHost(), Host)


def test_a_host_runs_argument_vectors_only():
    for host in (LocalHost(), RecordingHost()):
        with pytest.raises(ShellError, match="argument vectors only"):
            host.run("rm -rf /tmp/x")  # type: ignore[arg-type]


def test_the_recording_host_fails_clearly_on_an_unexpected_command():
    host = RecordingHost({("lvs", "--noheadings"): Result(["lvs"], 0, "  root vg0\n")})
    assert host.run(["lvs", "--noheadings"]).stdout == "  root vg0\n"
    with pytest.raises(UnexpectedCommand, match="unexpected command on recording: "
                                               "lvremove -f vg0/root .the table knows: lvs"):
        host.run(["lvremove", "-f", "vg0/root"])
    assert host.commands == [["lvs", "--noheadings"], ["lvremove", "-f", "vg0/root"]]


def test_the_recording_host_answers_with_callables_codes_and_files():
    host = RecordingHost(
        {("xl", "create", "/etc/xen/a.cfg"): lambda argv: Result(argv, 0, f"{argv[-1]} made")},
        probes={("xl", "list", "a"): 1},
        files={"/etc/xen/a.cfg": "name = 'a'\n", "/dev/loop0": None},
    )
    assert host.probe(["xl", "list", "a"]).exit_code == 1
    assert host.run(["xl", "create", "/etc/xen/a.cfg"], label="xl create").stdout == \
        "/etc/xen/a.cfg made"
    assert host.exists("/dev/loop0") and not host.exists("/dev/loop1")
    assert host.read_text("/etc/xen/a.cfg") == "name = 'a'\n"
    with pytest.raises(FileNotFoundError):
        host.read_text("/etc/xen/b.cfg")
    assert host.probed == [["xl", "list", "a"]] and host.calls[1].options["label"] == "xl create"


def test_the_recording_host_honours_a_cancelled_step():
    host = RecordingHost({("true",): 0})
    step = FakeStep()
    step.cancel("Timeout fired")
    with activate(step), pytest.raises(WorkCancelled):
        host.run(["true"])
    assert host.commands == []


def test_file_operations_start_no_process_and_are_recorded(tmp_path):
    """write_text, make_directories and remove_files act without a command on the local
    host (nothing in the runner's history) and are recorded as commands by the fake."""
    host = LocalHost()
    folder = tmp_path / "a" / "b"
    host.make_directories(str(folder), caller="app:domain")
    host.make_directories(str(folder))  # mkdir -p: there already is fine
    host.write_text(str(folder / "x.args"), "qemu\n-m\n", caller="app:domain")
    host.write_text(str(folder / "x.args"), "qemu\n", caller="app:domain")  # replaced
    assert (folder / "x.args").read_text() == "qemu\n"
    host.remove_files([str(folder / "x.args"), str(folder / "never-made")])
    assert not (folder / "x.args").exists()
    assert list(host.runner.history) == []
    with pytest.raises(HostError, match="cannot write"):
        host.write_text(str(tmp_path / "no" / "such" / "dir" / "f"), "x")

    fake = RecordingHost()
    fake.make_directories("/d")
    fake.write_text("/d/x.args", "qemu\n", caller="c")
    fake.remove_files(["/d/x.log"])
    assert fake.commands == [["mkdir", "-p", "/d"], ["write", "/d/x.args"], ["rm", "-f", "/d/x.log"]]
    assert fake.read_text("/d/x.args") == "qemu\n" and fake.calls[1].options["text"] == "qemu\n"


def test_file_operations_honour_a_cancelled_step(tmp_path):
    step = FakeStep()
    step.cancel("Timeout fired")
    for host in (LocalHost(), RecordingHost()):
        with activate(step), pytest.raises(WorkCancelled):
            host.write_text(str(tmp_path / "f"), "x")
    assert not (tmp_path / "f").exists()


def test_the_local_host_runs_through_its_runner(tmp_path):
    host = LocalHost()
    (tmp_path / "f").write_text("text")
    assert host.exists(str(tmp_path / "f")) and host.read_text(str(tmp_path / "f")) == "text"
    result = host.run(["cat"], input="in", cwd=str(tmp_path), label="cat")
    assert result.stdout == "in" and result.label == "cat"
    assert host.probe(["pwd"]).ok
    host.close()
