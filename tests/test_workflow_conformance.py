"""SmartFrog's own workflow system tests, run with ``sfrun`` as a user would.

Every MANIFEST row under ``core/testharness/test/org/smartfrog/test/system/workflow/`` whose
``expected_by_source`` says what the original JUnit test expected is run under ``sfrun`` (a
subprocess, the corpus include roots as ``-I``, a time limit) and checked against it:

* ``OK run`` — the application runs to its end by itself: exit 0;
* ``deploys OK`` — it deploys and starts (its actions never end by themselves, so it is
  terminated with ``--terminate-after``): exit 0;
* ``abnormal termination "text"`` / ``FAIL: …Lifecycle/Deployment… "text"`` — exit 1, the
  termination record printed by sfrun contains the text;
* ``FAIL: …Resolution… "text"`` — the description must not resolve: exit 3 with the text;
* ``value == true`` — the same file deployed with the engine API leaves ``value`` true on
  the application (the toggles under test set it through LAZY links).

Skipped with a reason when the corpus (tests/conftest.py ``CORPUS``) is absent; under
``CI=true`` its absence fails ``test_the_manifest_has_the_workflow_tests`` instead.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

try:  # shared with the language's conformance test (tests/ is on sys.path, or is a package)
    from test_conformance import corpus_absent
except ImportError:  # pragma: no cover
    from tests.test_conformance import corpus_absent

pytestmark = pytest.mark.conformance

REPO = Path(__file__).resolve().parent.parent


def _shared_corpus_path() -> Path:
    """tests/conftest.py's CORPUS, loaded under its own name (a plain ``import conftest`` may
    find another directory's conftest first)."""
    spec = importlib.util.spec_from_file_location("sfpy_tests_root_conftest",
                                                  REPO / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.CORPUS)


CORPUS = _shared_corpus_path()
INCLUDE_ROOTS = (
    "steveloughran_smartfrog/core/smartfrog/src",
    "steveloughran_smartfrog/core/testharness/test",
    "steveloughran_smartfrog/core/smartfrog/bin",
)
WORKFLOW_TESTS = "core/testharness/test/org/smartfrog/test/system/workflow/"
TIME_LIMIT = 30.0
TERMINATE_AFTER = "0.5"  # seconds, for "deploys OK" applications that never end themselves


@dataclass(frozen=True)
class Expectation:
    exit_code: int
    texts: tuple[str, ...] = ()
    terminate_after: str | None = None
    value_true: bool = False


def expectation_of(text: str) -> Expectation:
    """What a MANIFEST ``expected_by_source`` entry asks for."""
    quoted = tuple(re.findall(r'"([^"]+)"', text))
    value_true = "value == true" in text
    if text.startswith("FAIL:"):
        return Expectation(3 if "Resolution" in text else 1, quoted, None, value_true)
    if text.startswith("abnormal termination"):
        return Expectation(1, quoted, None, value_true)
    if text.startswith("deploys OK"):
        return Expectation(0, (), TERMINATE_AFTER, value_true)
    if text.startswith("OK run"):
        return Expectation(0, (), None, value_true)
    raise ValueError(f"do not know how to check {text!r}")


def workflow_rows() -> list[tuple[str, str]]:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        return []
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        return [
            (row["corpus_file"], row["expected_by_source"])
            for row in csv.DictReader(handle, delimiter="\t")
            if row["path"].startswith(WORKFLOW_TESTS) and row["expected_by_source"].strip() not in ("", "-")
        ]


ROWS = workflow_rows()
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "MANIFEST.tsv").is_file(),
    reason=f"the SmartFrog corpus is not at {CORPUS} (set SFPY_CORPUS to run these tests)",
)


def include_options() -> list[str]:
    options = []
    for root in INCLUDE_ROOTS:
        options += ["-I", str(CORPUS / root)]
    return options


def sfrun(corpus_file: str, *options: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "sfpy.cli.sfrun", "-q", *options, *include_options(),
               str(CORPUS / corpus_file)]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIME_LIMIT, env=env)


def termination_record(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("Termination Record:")]
    return lines[-1] if lines else ""


def test_the_manifest_has_the_workflow_tests():
    if not (CORPUS / "MANIFEST.tsv").is_file():
        corpus_absent(f"the SmartFrog corpus is not at {CORPUS} (set SFPY_CORPUS to run these tests)")
    names = {Path(corpus_file).name for corpus_file, _ in ROWS}
    assert {"testSequence.sf", "testFailingSequence2.sf", "testNormalFailedRetry.sf",
            "testNegativeRetry.sf", "testEmptyRepeat.sf", "testDelayNormal.sf",
            "testSimpleParallel.sf"} <= names


@needs_corpus
@pytest.mark.parametrize(("corpus_file", "expected"), ROWS,
                         ids=[Path(f).stem for f, _ in ROWS] or None)
def test_workflow_system_test_under_sfrun(corpus_file: str, expected: str):
    expect = expectation_of(expected)
    options = ["--terminate-after", expect.terminate_after] if expect.terminate_after else []
    result = sfrun(corpus_file, *options)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == expect.exit_code, (
        f"expected exit {expect.exit_code} ({expected}), got {result.returncode}:\n{result.stderr}")
    where = termination_record(result.stderr) if expect.exit_code == 1 else result.stderr
    for text in expect.texts:
        assert text in where, f"{text!r} not in {where!r}"


VALUE_ROWS = [row for row in ROWS if expectation_of(row[1]).value_true]


@needs_corpus
@pytest.mark.parametrize(("corpus_file", "expected"), VALUE_ROWS,
                         ids=[Path(f).stem for f, _ in VALUE_ROWS] or None)
def test_toggles_leave_value_true(corpus_file: str, expected: str):
    """``value == true``: the toggles of the test set the application's ``value``."""
    from sfpy.engine import DeploymentError, Process, State
    from sfpy.language import load

    description = load(str(CORPUS / corpus_file), [CORPUS / root for root in INCLUDE_ROOTS])
    roots = []
    process = Process("conformance")
    process.add_observer(lambda c, s: roots.append(c) if s is State.CONSTRUCTED and c.sf_parent() is None else None)
    try:
        try:
            process.deploy(description)
        except DeploymentError:
            pass  # an abnormal end is checked by the sfrun test; here only the value matters
        root = roots[0]
        assert root.wait_terminated(TIME_LIMIT) is not None
        assert root.sf_resolve("value") is True
    finally:
        process.shutdown(10)


@needs_corpus
def test_detaching_compound_system_test():
    corpus_file = "steveloughran_smartfrog/core/testharness/test/org/smartfrog/test/system/examples/testDetachingCompound.sf"
    include = CORPUS / INCLUDE_ROOTS[1] / "org/smartfrog/test/system/examples/components.sf"
    if not include.is_file():
        pytest.skip("testDetachingCompound.sf includes org/smartfrog/test/system/examples/"
                    "components.sf, which the corpus does not hold (DetachingCompound is covered "
                    "by tests/engine/test_workflow.py)")
    result = sfrun(corpus_file)
    assert result.returncode == 0, result.stderr


def test_expectations_are_read_as_the_original_tests_meant():
    assert expectation_of("OK run: value == true (SequenceTest.testSequence)") == Expectation(0, (), None, True)
    assert expectation_of('abnormal termination "failure inside retry" (x)') == Expectation(1, ("failure inside retry",))
    assert expectation_of('FAIL: LinkResolutionException "non-optional attribute" (schema)').exit_code == 3
    assert expectation_of('FAIL: LifecycleException/DeploymentException "A negative"').exit_code == 1
    assert expectation_of("deploys OK (testWorkingRetry)").terminate_after == TERMINATE_AFTER
    with pytest.raises(ValueError):
        expectation_of("something else")
