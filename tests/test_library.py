"""sfpy's own include library (``descriptions/org/smartfrog``).

Every library file is found from any directory through sfpy's ``descriptions`` folder and
resolves on its own; every template in a file that SmartFrog also ships resolves, as
``sfConfig extends <Template>``, to what SmartFrog's own file gives.
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

import pytest

from sfpy.language import DescriptionError, parse_file, parse_text
from sfpy.language.model import ComponentDescription
from sfpy.language.unparse import to_sf, value_text

try:  # the package attribute `resolve` is shadowed once the submodule is imported
    from sfpy.language.resolve import resolve
except ImportError:  # pragma: no cover - if the module is ever renamed
    from sfpy.language import resolve

try:  # helpers shared with the conformance test (tests/ is on sys.path, or is a package)
    from test_conformance import (
        CORPUS,
        load_known_differences,
        load_rows,
        normalise,
        original_body,
        reset_functions,
        shaped,
    )
except ImportError:  # pragma: no cover
    from tests.test_conformance import (
        CORPUS,
        load_known_differences,
        load_rows,
        normalise,
        original_body,
        reset_functions,
        shaped,
    )

LIBRARY = Path(str(importlib.resources.files("sfpy.descriptions")))
LIBRARY_FILES = sorted(p.relative_to(LIBRARY).as_posix() for p in (LIBRARY / "org").rglob("*.sf"))
CORPUS_SRC = CORPUS / "steveloughran_smartfrog" / "core" / "smartfrog" / "src"
# sfpy's own files with no SmartFrog counterpart in the corpus
SFPY_ONLY = {"org/smartfrog/version.sf", "org/smartfrog/services/shellscript/components.sf"}
SFPY_TEMPLATES = {"shellQuote"}  # sfpy's own additions to SmartFrog's library files


@pytest.fixture(autouse=True)
def _fresh_run(monkeypatch):
    monkeypatch.delenv("SFPY_PATH", raising=False)
    reset_functions()


def test_library_is_the_package_data_folder():
    assert "org/smartfrog/components.sf" in LIBRARY_FILES
    assert len(LIBRARY_FILES) >= 45


@pytest.mark.parametrize("relative", LIBRARY_FILES)
def test_each_library_file_resolves_from_anywhere(relative, write_sf):
    path = write_sf(f'#include "{relative}"\nsfConfig extends {{ marker 42; }}\n', name="elsewhere/site.sf")
    assert to_sf(resolve(parse_file(str(path)))) == "marker 42;\n"


def test_leading_slash_includes_work_too(write_sf):
    path = write_sf('#include "/org/smartfrog/components.sf"\nsfConfig extends Compound { x 1; }\n')
    assert to_sf(resolve(parse_file(str(path)))) == (
        'sfCodeBase "default";\nsfClass "org.smartfrog.sfcore.compound.CompoundImpl";\nx 1;\n'
    )


def test_workflow_description_resolves(write_sf):
    path = write_sf(
        '#include "org/smartfrog/sfcore/workflow/components.sf"\n'
        "sfConfig extends Sequence {\n"
        "  first extends DoNothing { time 5; }\n"
        "  stop extends Terminator { kill LAZY PARENT:first; }\n"
        "}\n"
    )
    text = to_sf(resolve(parse_file(str(path))))
    assert 'sfClass "org.smartfrog.sfcore.workflow.combinators.Sequence";' in text
    assert "  time 5;\n" in text
    assert "  kill LAZY PARENT:first;\n" in text
    assert '  type "normal";\n' in text


def test_shellscript_templates_resolve(write_sf):
    path = write_sf(
        '#include "org/smartfrog/services/shellscript/components.sf"\n'
        "sfConfig extends Compound {\n"
        "  shell extends BashShell { dir \"/tmp\"; }\n"
        '  script extends Script { shell LAZY PARENT:shell; startScript ["echo a", "echo b"]; }\n'
        '  own extends Script { deployScript "true"; }\n'
        '  proc extends BashProcess { cmd ["sleep", "10"]; envProperties ["A=1"]; terminate true; }\n'
        "}\n"
    )
    sf_config = resolve(parse_file(str(path)))
    shell, script, own, proc = (sf_config[k] for k in ("shell", "script", "own", "proc"))
    assert shell["sfClass"] == "org.smartfrog.services.shellscript.SFScriptExecutionImpl"
    assert shell["parallel"] is False and shell["timeout"] == 0 and shell["dir"] == "/tmp"
    assert shell["exec"]["cmd"] == ["/bin/bash"] and shell["exec"].eager is False
    assert script["sfClass"] == "org.smartfrog.services.shellscript.SFScriptImpl"
    assert script["autoTerminate"] is False and script["startScript"] == ["echo a", "echo b"]
    assert script["shell"].lazy
    assert "shell" not in own
    assert proc["sfClass"] == "org.smartfrog.services.shellscript.SFProcessExecutionImpl"
    assert proc["cmd"] == ["sleep", "10"] and proc["terminate"] is True


def test_processcompound_publishes_the_version(write_sf):
    path = write_sf('#include "org/smartfrog/sfcore/processcompound/processcompound.sf"\n')
    sf_config = resolve(parse_file(str(path)))
    assert sf_config["sfRootLocatorPort"] == 3800
    assert sf_config["sfVersion"] == "SmartFrog.3.18..016 (@buildDate@), license Apache 2.0"


# -- same templates as SmartFrog's own files ------------------------------------------------------


def own_templates(relative: str, root: ComponentDescription) -> list[str]:
    """Top-level descriptions written in the library file itself (not in what it includes)."""
    own = (LIBRARY / relative).resolve()
    return [
        key
        for key, value in root.attributes.items()
        if isinstance(key, str)
        and key != "sfConfig"
        and isinstance(value, ComponentDescription)
        and key in root.positions
        and Path(root.positions[key].file).resolve() == own
    ]


def _unique(text: str) -> str:
    return re.sub(r"\bunique\d+\b", "uniqueN", text)


def outcome(root: ComponentDescription, template: str) -> tuple[str, str]:
    """("ok", printed sfConfig) or ("error", phase) for ``sfConfig extends <template>``."""
    candidate = root.copy()
    candidate.put("sfConfig", parse_text(f"sfConfig extends {template};")["sfConfig"])
    reset_functions()
    try:
        return "ok", _unique(to_sf(resolve(candidate)))
    except DescriptionError as error:
        return "error", error.phase


def typed_templates(root: ComponentDescription, templates: list[str]) -> dict[str, str]:
    """Each template as it stands after the type, place and function phases (before links)."""
    typed = resolve(root.copy(), phases=["type", "place", "function"])
    return {t: _unique(value_text(typed[t]) + f"eager={getattr(typed[t], 'eager', None)}") for t in templates}


def _pairs():
    return [
        pytest.param(r, marks=pytest.mark.conformance)
        for r in LIBRARY_FILES
        if r not in SFPY_ONLY
    ]


@pytest.mark.parametrize("relative", _pairs())
def test_templates_match_smartfrogs(relative, tmp_path):
    if not CORPUS_SRC.is_dir():
        pytest.skip(f"SmartFrog corpus not found at {CORPUS}")
    if not (CORPUS_SRC / relative).is_file():
        pytest.skip(f"the SmartFrog corpus has no copy of {relative} to compare with")
    # The same prelude on both sides: SmartFrog's own files do not all include what they use.
    text = (
        '#include "org/smartfrog/components.sf"\n'
        '#include "org/smartfrog/sfcore/workflow/eventbus/eventbus.sf"\n'
        '#include "org/smartfrog/sfcore/workflow/combinators/parallel.sf"\n'
        f'#include "{relative}"\n'
    )
    site = tmp_path / "site.sf"
    site.write_text(text, encoding="utf-8")
    ours = parse_file(str(site))
    theirs = parse_file(str(site), [str(CORPUS_SRC)])
    templates = [t for t in own_templates(relative, ours) if t not in SFPY_TEMPLATES]
    assert templates or relative.endswith(("components.sf", "workflow/components.sf")), relative
    missing = [t for t in templates if t not in theirs]
    assert not missing, f"not in SmartFrog's {relative}: {missing}"
    # the templates themselves: same attributes, same order, same values
    assert typed_templates(ours, templates) == typed_templates(theirs, templates)
    # and what a description extending each of them resolves to
    for template in templates:
        assert outcome(ours, template) == outcome(theirs, template), template


# -- the corpus, with sfpy's library in place of SmartFrog's ---------------------------------------


def _ok_rows():
    if not (CORPUS / "MANIFEST.tsv").is_file():
        return [pytest.param(None, id="corpus-missing", marks=pytest.mark.conformance)]
    known = load_known_differences()
    return [
        pytest.param(
            row,
            id=row.corpus_file.split("/", 1)[1],
            marks=[pytest.mark.conformance]
            + ([pytest.mark.xfail(reason=f"known difference: {known[row.corpus_file]}")] if row.corpus_file in known else []),
        )
        for row in load_rows()
        if row.observed.startswith("OK")
    ]


@pytest.fixture(scope="module")
def corpus_without_library(tmp_path_factory) -> Path:
    """SmartFrog's source folder with the files sfpy's library provides left out (symlinks)."""
    mirror = tmp_path_factory.mktemp("src")
    for path in CORPUS_SRC.rglob("*.sf"):
        relative = path.relative_to(CORPUS_SRC)
        if not (LIBRARY / relative).is_file():
            (mirror / relative).parent.mkdir(parents=True, exist_ok=True)
            (mirror / relative).symlink_to(path)
    return mirror


@pytest.mark.parametrize("row", _ok_rows())
def test_corpus_resolves_the_same_with_sfpys_library(row, corpus_without_library):
    """Descriptions written for SmartFrog print what SmartFrog printed, using sfpy's library."""
    if row is None:
        pytest.skip(f"SmartFrog corpus not found at {CORPUS}")
    path = CORPUS / row.corpus_file
    if path.is_relative_to(CORPUS_SRC) and (LIBRARY / path.relative_to(CORPUS_SRC)).is_file():
        path = LIBRARY / path.relative_to(CORPUS_SRC)  # a library file itself: take sfpy's
    roots = [
        str(corpus_without_library),
        str(CORPUS / "steveloughran_smartfrog" / "core" / "testharness" / "test"),
        str(CORPUS / "steveloughran_smartfrog" / "core" / "smartfrog" / "bin"),
    ]
    printed = to_sf(resolve(parse_file(str(path), roots)))
    assert shaped(row, normalise(printed)) == shaped(row, normalise(original_body(row)))
