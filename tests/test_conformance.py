"""SmartFrog conformance: every corpus file resolves as the original parser resolved it.

For each row of the corpus MANIFEST, the file is parsed and resolved with the corpus include
roots (sfpy's own descriptions come last, as for any description):

* ``OK`` rows: :func:`to_sf` of the resolved sfConfig equals what ``sfParse -d`` printed,
  ignoring the numbers of generated ``uniqueN`` names, the order of tags inside ``[ ]`` and
  the Java package of ``sfFunctionClass`` values; and the JSON form carries it unchanged;
* ``FAIL`` rows: resolution fails with a DescriptionError of the matching phase, naming the
  reference the original named;
* ``tcn98`` (never finishes in the original) must end with a cycle error; ``tcp15`` (random
  numbers) and ``tcp17`` (today's date) must have the same shape.

Known differences are listed, with their reasons, in ``docs/compatibility.md``; those rows
are reported as expected failures carrying that reason.

Without the corpus these tests are skipped, saying where it was looked for; under ``CI=true``
(``.ci/run`` sets it) they fail instead, so that a gate cannot go green without the corpus.
"""

from __future__ import annotations

import csv
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

pytestmark = pytest.mark.conformance

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("SFPY_CORPUS", REPO.parent / "shared" / "corpus" / "smartfrog"))

INCLUDE_ROOTS = (
    "steveloughran_smartfrog/core/smartfrog/src",
    "steveloughran_smartfrog/core/testharness/test",
    "steveloughran_smartfrog/core/smartfrog/bin",
)


def in_ci() -> bool:
    """True when the environment says this is a CI run (``CI`` set, and not to false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def corpus_absent(reason: str) -> NoReturn:
    """Skip a test that needs the corpus, or fail it in CI, where a skip would pass the gate."""
    if in_ci():
        pytest.fail(f"{reason}; CI=true requires the conformance corpus", pytrace=False)
    pytest.skip(reason)


BANNER = "PHASE sfAsComponentDescription"
TIME_LIMIT = 60.0  # seconds for one file; the slowest takes well under one


@dataclass(frozen=True)
class Row:
    corpus_file: str
    note: str
    expected_by_source: str
    observed: str
    output_file: str


def load_rows() -> list[Row]:
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        return [
            Row(r["corpus_file"], r["note"], r["expected_by_source"], r["hp_parse_observed"], r["hp_output_file"])
            for r in csv.DictReader(handle, delimiter="\t")
        ]


def load_known_differences(path: Path = REPO / "docs" / "compatibility.md") -> dict[str, str]:
    """corpus file -> reason, from the table between the known-differences markers."""
    text = path.read_text(encoding="utf-8")
    start = text.index("<!-- known-differences:start -->")
    end = text.index("<!-- known-differences:end -->")
    known: dict[str, str] = {}
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            known[cells[0].strip("`")] = cells[1]
    return known


# -- what the original printed, normalised -----------------------------------------------------

_UNIQUE = re.compile(r"\bunique\d+\b")
_TAGS = re.compile(r"^(\s*)\[ ((?:\S+ )+)\] ", re.MULTILINE)
_FUNCTION_CLASS = re.compile(r'\bsfFunctionClass "(?:[\w$]+\.)*([\w$]+)"')


def normalise(text: str) -> str:
    text = _UNIQUE.sub("uniqueN", text)
    text = _TAGS.sub(lambda m: f"{m.group(1)}[ {' '.join(sorted(m.group(2).split()))} ] ", text)
    text = _FUNCTION_CLASS.sub(r'sfFunctionClass "\1"', text)
    return text.rstrip("\n")


def original_body(row: Row) -> str:
    """The resolved sfConfig the original printed (between the banner and SFParse:)."""
    lines = (CORPUS / "_hp_output" / f"{row.corpus_file}.out").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if BANNER in line) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("SFParse: SUCCESSFUL"))
    return "\n".join(lines[start:end])


# Values that cannot print the same twice, replaced by their shape.
_SHAPES = {
    "tcp15.sf": [(re.compile(r"^(throw[12]) ([1-6]);$", re.MULTILINE), r"\1 <1..6>;")],
    "tcp17.sf": [
        (
            re.compile(r'^today "[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \S+ \d{4}";$', re.MULTILINE),
            'today "<date>";',
        )
    ],
}


def shaped(row: Row, text: str) -> str:
    for pattern, replacement in _SHAPES.get(Path(row.corpus_file).name, []):
        text = pattern.sub(replacement, text)
    return text


# -- what the original reported, as sfpy's phases ------------------------------------------------


def expected_phases(observed: str) -> set[str]:
    """The DescriptionError phases that match the original's exception class."""
    if "SmartFrogParseException" in observed:
        return {"parse"}
    if "SmartFrogTypeResolutionException" in observed:  # also "type, cause: ... TypeResolution"
        return {"type"}
    if "SmartFrogPlaceResolutionException" in observed:
        return {"place"}
    if "SmartFrogLinkResolutionException" in observed:
        # Functions and assertions are evaluated during link resolution; sfpy may call a
        # failing evaluation a function-phase error.
        return {"link", "function"} if re.search(r"data: \[(APPLY|ASSERT) ", observed) else {"link"}
    if "SmartFrogResolutionException" in observed:
        return {"sfConfig"}
    raise AssertionError(f"unknown outcome in MANIFEST: {observed}")


def expected_words(observed: str) -> list[str] | None:
    """Words the error must mention (any one of them), or None when nothing is required."""
    if "cyclic reference" in observed:
        return ["cycl"]
    if "SmartFrogResolutionException:: Unresolved Reference: HERE sfConfig" in observed or (
        "must be a Component Description" in observed
    ):
        return ["sfConfig"]
    names = []
    for reference, attribute in re.findall(r"(?:\[|, )([^\[\],]+?) in: HERE \S+(?: attribute: (\S+))?", observed):
        if reference.startswith(("APPLY ", "ASSERT ")):
            continue
        names += [p for p in re.split(r"[: ]", reference) if p and p not in {"HERE", "ATTRIB", "PARENT"}]
        if attribute:
            names.append(attribute)
    return names or None


# -- running sfpy on one file ----------------------------------------------------------------------


def run_with_limit(function, limit: float = TIME_LIMIT):
    """Call ``function`` in a daemon thread; fail the test if it does not finish in time."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        pytest.fail(f"sfpy did not finish within {limit:.0f} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")


def resolve_corpus_file(corpus_file: str):
    from sfpy.language import parse_file

    try:  # the package attribute `resolve` is shadowed once the submodule is imported
        from sfpy.language.resolve import resolve
    except ImportError:  # pragma: no cover - if the module is ever renamed
        from sfpy.language import resolve

    roots = [str(CORPUS / r) for r in INCLUDE_ROOTS]
    return resolve(parse_file(str(CORPUS / corpus_file), roots))


# -- the parametrisation ---------------------------------------------------------------------------


def _params():
    if not (CORPUS / "MANIFEST.tsv").is_file():
        return [pytest.param(None, id="corpus-missing")]
    known = load_known_differences()
    params = []
    for row in load_rows():
        marks = []
        if row.corpus_file in known:
            marks.append(pytest.mark.xfail(reason=f"known difference: {known[row.corpus_file]}", strict=False))
        params.append(pytest.param(row, id=row.corpus_file.split("/", 1)[1], marks=marks))
    return params


@pytest.fixture(autouse=True)
def _fresh_run(monkeypatch):
    """Each file is resolved as by a fresh sfparse: no SFPY_PATH, counters (next) reset."""
    monkeypatch.delenv("SFPY_PATH", raising=False)
    reset_functions()


def reset_functions() -> None:
    from sfpy.language import functions

    reset = getattr(functions, "reset_state", None)
    if reset is not None:
        reset()


@pytest.mark.parametrize("row", _params())
def test_corpus_file(row: Row | None) -> None:
    if row is None:
        corpus_absent(f"SmartFrog corpus not found at {CORPUS} (set SFPY_CORPUS or add ../shared/corpus/smartfrog)")
    from sfpy.language import DescriptionError
    from sfpy.language.unparse import from_json, to_json, to_sf

    if row.observed.startswith("OK"):
        sf_config = run_with_limit(lambda: resolve_corpus_file(row.corpus_file))
        expected = shaped(row, normalise(original_body(row)))
        actual = shaped(row, normalise(to_sf(sf_config)))
        assert actual == expected
        # the JSON (wire) form carries the same description
        again = from_json(to_json(sf_config))
        assert again == sf_config and to_sf(again) == to_sf(sf_config)
        return

    if row.observed.startswith("NO RESULT"):  # tcn98: the original never finishes
        with pytest.raises(DescriptionError) as info:
            run_with_limit(lambda: resolve_corpus_file(row.corpus_file))
        assert "cycl" in info.value.render().lower(), info.value.render()
        return

    assert row.observed.startswith("FAIL: "), row.observed
    with pytest.raises(DescriptionError) as info:
        run_with_limit(lambda: resolve_corpus_file(row.corpus_file))
    error = info.value
    assert error.phase in expected_phases(row.observed), (
        f"sfpy failed in phase {error.phase!r}, the original with {row.observed[6:120]!r}:\n{error.render()}"
    )
    words = expected_words(row.observed)
    if words:
        text = f"{error.render()} {error.path or ''}".lower()
        assert any(w.lower() in text for w in words), (
            f"the error should name one of {words}:\n{error.render()}"
        )


def test_known_differences_name_corpus_files():
    """Every entry of the known-differences list is a real corpus row (no stale entries)."""
    if not (CORPUS / "MANIFEST.tsv").is_file():
        corpus_absent(f"SmartFrog corpus not found at {CORPUS}")
    rows = {r.corpus_file for r in load_rows()}
    known = load_known_differences()
    assert known, "docs/compatibility.md lists no known differences table"
    assert set(known) <= rows, sorted(set(known) - rows)


# -- the helpers themselves ------------------------------------------------------------------------


def test_normalise_ignores_unique_numbers_tag_order_and_function_packages():
    ours = '[ b a ] x 1;\nunique12 LAZY APPLY {sfFunctionClass "sfpy.Sum";\nunique3 2;\n};'
    theirs = '[ a b ] x 1;\nunique99 LAZY APPLY {sfFunctionClass "org.smartfrog.x.Sum";\nunique7 2;\n};\n\n'
    assert normalise(ours) == normalise(theirs)
    assert normalise("x 1;") != normalise("x 2;")


def test_expected_phases_follow_the_exception_class():
    assert expected_phases("FAIL: SmartFrogParseException:: x") == {"parse"}
    assert expected_phases("FAIL: SmartFrogTypeResolutionException:: , data: []") == {"type"}
    assert expected_phases("FAIL: SmartFrogResolutionException:: type, cause: SmartFrogTypeResolutionException") == {
        "type"
    }
    assert expected_phases("FAIL: SmartFrogPlaceResolutionException:: x") == {"place"}
    assert expected_phases("FAIL: SmartFrogResolutionException:: Unresolved Reference: HERE sfConfig") == {
        "sfConfig"
    }
    assert expected_phases("FAIL: SmartFrogLinkResolutionException:: , data: [x in: HERE a cause: y]") == {"link"}
    assert expected_phases("FAIL: SmartFrogLinkResolutionException:: , data: [ASSERT {y true;") == {
        "link",
        "function",
    }


def test_expected_words_name_the_unresolved_reference():
    observed = (
        "FAIL: SmartFrogLinkResolutionException:: , source: HERE sfConfig, data: [dataLazy in: "
        "HERE sfConfig:c3 attribute: attributeMissingATTRIB cause: Reference not found]"
    )
    assert expected_words(observed) == ["dataLazy", "attributeMissingATTRIB"]
    assert expected_words("FAIL: x data: [HERE P:z in: HERE sfConfig cause: Reference not found]") == ["P", "z"]
    assert expected_words("FAIL: x data: [], Failed to resolve 'link link'. Possible cause: cyclic reference.") == [
        "cycl"
    ]


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_missing_corpus_skips_but_fails_in_ci(tmp_path, ci):
    """The gate: ``CI=true`` (set by .ci/run) turns the missing-corpus skip into a failure."""
    import subprocess
    import sys

    env = {**os.environ, "SFPY_CORPUS": str(tmp_path / "absent"), "CI": ci}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         f"{Path(__file__)}::test_known_differences_name_corpus_files"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if ci:
        assert result.returncode == 1, result.stdout + result.stderr
        assert "CI=true requires the conformance corpus" in result.stdout
    else:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 skipped" in result.stdout and str(tmp_path / "absent") in result.stdout
