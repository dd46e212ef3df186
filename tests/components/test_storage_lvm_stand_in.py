"""The stand-in lvm (``tests/stand_ins/lvm``) answers as lvm2 does, for what the LVM backend
asks: the same commands are run against real lvm2 (metadata-only mode, a volume group on a
loop device; needs root) and against the stand-in, and their exit codes, messages and the
fields the backend reads are compared. Without lvm2 or root only the stand-in's own
answers are checked."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

STAND_IN = Path(__file__).resolve().parents[1] / "stand_ins"
CONFIG = "global{activation=0}"
MIB = 2**20
ENV = {**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"}


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, list[str]]:
    """Exit code, stdout, and stderr's lines without lvm2's warnings about activation."""
    done = subprocess.run(argv, capture_output=True, text=True, env=env or ENV, timeout=120)
    messages = [line.strip() for line in done.stderr.splitlines()
                if line.strip() and not line.strip().startswith("WARNING")]
    return done.returncode, done.stdout, messages


def script(group: str) -> list[list[str]]:
    """The backend's questions and commands, with every failure it must recognise."""
    return [
        ["lvcreate", "--config", CONFIG, "-y", "-L", f"{8 * MIB}b", "-n", "lv1", group],
        ["lvcreate", "--config", CONFIG, "-y", "-L", f"{8 * MIB}b", "-n", "lv1", group],
        ["lvcreate", "--config", CONFIG, "-y", "-L", f"{1024 * MIB}b", "-n", "lv2", group],
        ["lvcreate", "--config", CONFIG, "-y", "-L", f"{4 * MIB}b", "-n", "lv3", "novg"],
        ["lvs", "--config", CONFIG, "--noheadings", "-o", "lv_name", f"{group}/lv1"],
        ["lvs", "--config", CONFIG, "--noheadings", "-o", "lv_name", f"{group}/nolv"],
        ["lvs", "--config", CONFIG, "--noheadings", "-o", "lv_name", "novg/nolv"],
        ["vgs", "--config", CONFIG, "--noheadings", "--units", "b", "--nosuffix", "-o",
         "vg_free", "novg"],
        ["lvs", "--config", CONFIG, "--noheadings", "--units", "b", "--nosuffix", "-o",
         "lv_name,lv_size", group],
        ["lvremove", "--config", CONFIG, "-f", f"{group}/lv1"],
        ["lvremove", "--config", CONFIG, "-f", f"{group}/lv1"],
        ["lvremove", "--config", CONFIG, "-f", "novg/lv1"],
    ]


def answers(prefix: Path | None, group: str, env: dict[str, str] | None = None) -> list:
    found = []
    for argv in script(group):
        program = str(prefix / argv[0]) if prefix is not None else argv[0]
        code, out, messages = run([program, *argv[1:]], env)
        found.append((argv[0], code, " ".join(out.split()).replace(group, "VG"),
                      [m.replace(group, "VG") for m in messages]))
    return found


def stand_in(tmp_path: Path, group: str) -> list:
    state = tmp_path / "lvm"
    (state / group).mkdir(parents=True)
    (state / group / ".size").write_text(f"{60 * MIB}\n")
    return answers(STAND_IN, group, {**os.environ, "SFPY_LVM_STATE": str(state)})


def test_the_stand_in_answers_the_backend_as_the_manual_says(tmp_path: Path):
    got = {i: a for i, a in enumerate(stand_in(tmp_path, "vg0"))}
    assert got[0][1] == 0 and 'Logical volume "lv1" created.' in got[0][2]
    assert got[1][1:] == (5, "", ['Logical Volume "lv1" already exists in volume group "VG"'])
    assert got[2][1] == 5 and got[2][3] == [
        'Volume group "VG" has insufficient free space (13 extents): 256 required.']
    assert got[3][1:] == (5, "", ['Volume group "novg" not found',
                                  "Cannot process volume group novg"])
    assert got[4][1:3] == (0, "lv1")
    assert got[5][1:] == (5, "", ['Failed to find logical volume "VG/nolv"'])
    assert got[8][1:3] == (0, f"lv1 {8 * MIB}")
    assert got[9][1] == 0 and got[10][1:] == (5, "", ['Failed to find logical volume "VG/lv1"'])


@pytest.fixture
def real_group(tmp_path: Path) -> Iterator[str]:
    missing = [t for t in ("lvm", "losetup", "lvcreate") if shutil.which(t) is None]
    if missing or os.geteuid() != 0:
        pytest.skip(f"needs root and lvm2 ({', '.join(missing) or 'root'} missing)")
    backing = tmp_path / "pv.img"
    with backing.open("wb") as handle:
        handle.truncate(64 * MIB)  # lvm2 keeps 1 MiB of metadata: a group of 60 MiB
    name = f"sfpystandin{uuid.uuid4().hex[:10]}"
    device = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True,
                            text=True, check=True).stdout.strip()
    try:
        for argv in (["pvcreate", device], ["vgcreate", name, device]):
            assert run([argv[0], "--config", CONFIG, *argv[1:]])[0] == 0
        yield name
    finally:
        run(["vgremove", "--config", CONFIG, "-f", name])
        run(["pvremove", "--config", CONFIG, "-f", device])
        subprocess.run(["losetup", "-d", device], check=False)


@pytest.mark.integration
def test_the_stand_in_answers_as_real_lvm2(tmp_path: Path, real_group: str):
    real = answers(None, real_group)
    fake = stand_in(tmp_path, "vg0")
    assert [(a[0], a[1], a[3]) for a in fake] == [(a[0], a[1], a[3]) for a in real]
    # the fields the backend reads are the same too (vg_free of a missing group: nothing)
    assert [a[2] for a in fake] == [a[2] for a in real]
