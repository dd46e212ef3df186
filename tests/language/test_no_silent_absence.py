"""Nothing is silently absent: a reference that cannot be resolved is an error everywhere.

A misspelled eager reference inside an expression of a component whose class has a schema
(Script's ``startScript``, BashProcess's ``cmd`` and ``dir``) used to be swallowed by the
schema check ("the attribute is absent") and the value stayed unresolved without a word.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from language_support import description_error

from sfpy.language import load, parse_text, resolve
from sfpy.language.model import ApplyReference, Reference
from sfpy.language.references import ResolutionError, Resolver

SHELL = '#include "org/smartfrog/services/shellscript/components.sf"\n'


@pytest.mark.parametrize(
    "body",
    [
        'startScript ("x" ++ wrokDir);',
        'terminateScript ("rm -f " ++ wrokDir);',
        'startScript ["cd x", ("ls " ++ wrokDir)];',
        "startScript [wrokDir];",
        'startScript IF (wrokDir == "a") THEN "x" ELSE "y" FI;',
        'deployScript ("a" ++ ("b" ++ ("c" ++ wrokDir)));',
    ],
)
def test_misspelled_reference_in_a_script_is_an_error(tmp_path: Path, body: str) -> None:
    column = 5 + body.index("wrokDir")
    error = description_error(
        tmp_path,
        SHELL + 'sfConfig extends Compound {\n  workDir "/tmp";\n  s extends Script {\n'
        f"    {body}\n  }}\n}}\n",
    )
    text = error.render()
    assert "did you mean 'workDir'?" in text, text
    assert error.position is not None
    assert (error.position.line, error.position.column) == (5, column), text
    assert "^" in text


@pytest.mark.parametrize(
    "body",
    [
        'cmd ("sleep " ++ wrokDir);',
        'cmd ["/bin/echo", wrokDir];',
        'dir ("/" ++ wrokDir);',
    ],
)
def test_misspelled_reference_in_a_bash_process_is_an_error(tmp_path: Path, body: str) -> None:
    error = description_error(
        tmp_path,
        SHELL + 'sfConfig extends Compound {\n  workDir "/tmp";\n  p extends BashProcess {\n'
        f"    {body}\n  }}\n}}\n",
    )
    assert "did you mean 'workDir'?" in error.render()
    assert error.position is not None and error.position.line == 5


def test_the_hint_names_an_attribute_of_an_enclosing_component(tmp_path: Path) -> None:
    error = description_error(
        tmp_path,
        SHELL
        + 'sfConfig extends Compound {\n  imageDirectory "/var/img";\n  g extends Compound {\n'
        '    s extends Script { startScript ("ls " ++ imageDirectroy); }\n  }\n}\n',
    )
    assert "did you mean 'imageDirectory'?" in error.render()


def test_one_mistake_gives_one_message(tmp_path: Path) -> None:
    error = description_error(
        tmp_path,
        SHELL + 'sfConfig extends Compound {\n  workDir "/tmp";\n  s extends Script {\n'
        '    startScript ("x" ++ wrokDir);\n  }\n}\n',
    )
    assert len(error.all()) == 1, error.render()


def test_optional_reference_may_be_absent(tmp_path: Path) -> None:
    path = tmp_path / "t.sf"
    path.write_text(
        SHELL + "sfConfig extends Compound {\n  s extends Script {\n"
        '    startScript ("x" ++ (OPTIONAL ("none") wrokDir));\n  }\n}\n',
        encoding="utf-8",
    )
    assert load(path).attributes["s"].attributes["startScript"] == "xnone"


def test_a_schema_still_reports_a_missing_attribute(tmp_path: Path) -> None:
    error = description_error(
        tmp_path,
        SHELL + "sfConfig extends Compound {\n  s extends Prim {\n"
        "    sfClass \"x\"; sch extends Schema { port extends Integer; }\n  }\n}\n",
    )
    assert "non-optional attribute 'port' is missing" in error.render()


def test_a_lazy_reference_failing_later_raises_the_resolution_error() -> None:
    config = resolve(
        parse_text('sfConfig extends { workDir "/tmp"; s extends { start ("x" ++ LAZY wrokDir); } }')
    )
    script = config.attributes["s"]
    value = script.attributes["start"]
    assert isinstance(value, ApplyReference) and value.lazy
    with pytest.raises(ResolutionError) as caught:
        Resolver(runtime=True).evaluate(value, script)
    assert "wrokDir" in caught.value.message and "workDir" in caught.value.message


def test_a_lazy_link_failing_later_names_the_missing_attribute() -> None:
    config = resolve(parse_text('sfConfig extends { workDir "/tmp"; s extends { d LAZY wrokDir; } }'))
    script = config.attributes["s"]
    reference = script.attributes["d"]
    assert isinstance(reference, Reference)
    with pytest.raises(ResolutionError) as caught:
        Resolver(runtime=True).resolve(reference, script)
    assert "did you mean 'workDir'?" in caught.value.message
