"""Misspelled attribute names: a "did you mean" warning, never an error.

SmartFrog silently ignores an attribute no component reads, so ``startScrpit`` makes a
Script that does nothing. :func:`sfpy.engine.deployer.attribute_warnings` names each
attribute that its component's class does not declare and that is close to one it does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import sfpy.components  # noqa: F401 - registers sfpy's component classes
from sfpy.engine.deployer import DescriptionWarning, attribute_warnings, check_description
from sfpy.language import load

SHELL = '#include "org/smartfrog/services/shellscript/components.sf"\n'
WORKFLOW = '#include "org/smartfrog/sfcore/workflow/components.sf"\n'


def _warnings(tmp_path: Path, text: str) -> list[DescriptionWarning]:
    path = tmp_path / "w.sf"
    path.write_text(text, encoding="utf-8")
    config = load(path)
    check_description(config, "sfConfig")  # a warning never stops the checks that matter
    return attribute_warnings(config, "sfConfig")


@pytest.mark.parametrize(
    ("written", "meant", "component"),
    [
        ("startScrpit", "startScript", 'extends Script { %s "echo hi"; }'),
        ("autoTerminat", "autoTerminate", "extends Script { %s true; }"),
        ("sfLivenessDelya", "sfLivenessDelay", "extends Script { %s 10; }"),
        ("terminatescript", "terminateScript", 'extends Script { %s "x"; }'),
        ("cmnd", "cmd", 'extends BashProcess { %s "sleep 1"; }'),
        ("envProperites", "envProperties", 'extends BashProcess { cmd "x"; %s ["A=1"]; }'),
    ],
)
def test_a_misspelled_attribute_gets_a_did_you_mean(
    tmp_path: Path, written: str, meant: str, component: str
) -> None:
    found = _warnings(
        tmp_path, SHELL + "sfConfig extends Compound {\n  c " + component % written + "\n}\n"
    )
    assert len(found) == 1, found
    warning = found[0]
    assert f"did you mean {meant}?" in warning.message
    assert warning.position is not None and warning.position.line == 3
    rendered = warning.render()
    assert rendered.startswith(f"{tmp_path / 'w.sf'}:3:"), rendered
    assert ": warning: " in rendered


def test_nested_components_are_checked(tmp_path: Path) -> None:
    found = _warnings(
        tmp_path,
        SHELL + WORKFLOW + "sfConfig extends Sequence {\n"
        '  a extends Script { startScript "true"; }\n'
        '  b extends Compound { c extends Script { deployScrpt "x"; } }\n}\n',
    )
    assert [w.path for w in found] == ["sfConfig:b:c:deployScrpt"]


def test_names_a_class_reads_and_names_of_ones_own_give_no_warning(tmp_path: Path) -> None:
    found = _warnings(
        tmp_path,
        SHELL + "sfConfig extends Compound {\n"
        '  workDir "/tmp"; imageName "x"; vmName "vm1"; cmdline "a"; dirs ["a"];\n'
        '  s extends Script { startScript "true"; terminateScript "true"; autoTerminate true;\n'
        '    sfLivenessDelay 5; sfLivenessFactor 2; image "x"; scripts 2; }\n'
        '  p extends BashProcess { cmd ["sleep", "1"]; dir "/tmp"; envProperties []; }\n}\n',
    )
    assert found == []


def test_names_from_a_schema_count_as_declared(tmp_path: Path) -> None:
    found = _warnings(
        tmp_path,
        SHELL + "sfConfig extends Compound {\n"
        "  s extends Script { startScript \"true\"; startScripts 2;\n"
        "    mine extends Schema { startScripts extends Integer; } }\n}\n",
    )
    assert found == []


def test_the_shipped_examples_give_no_warning() -> None:
    root = Path(__file__).resolve().parents[2] / "descriptions" / "examples"
    for path in sorted(root.glob("*.sf")):
        config = load(path)
        try:
            check_description(config, "sfConfig")
        except Exception:  # noqa: BLE001 - an example that is not meant to deploy
            continue
        assert attribute_warnings(config, "sfConfig") == [], path
