"""``shellQuote``: a value put into a Script line (run by ``bash -c``) arrives as one word.

Each case parses a description that builds a command line with ``shellQuote`` and really
runs the line with bash: no injected command may run, and the argument arrives intact.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sfpy.language import DescriptionError, load

BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="this machine has no bash")

# (text as written in a .sf string, the value it stands for); {t} is the test's folder
HOSTILE = [
    ("vm1; touch {t}/pwned", "vm1; touch {t}/pwned"),
    ("$(touch {t}/pwned)", "$(touch {t}/pwned)"),
    ("`touch {t}/pwned`", "`touch {t}/pwned`"),
    ("a\\'b; touch {t}/pwned; echo \\'", "a'b; touch {t}/pwned; echo '"),
    ('\\"; touch {t}/pwned; \\"', '"; touch {t}/pwned; "'),
    ("line1\\ntouch {t}/pwned", "line1\ntouch {t}/pwned"),
    ("", ""),
    ("*", "*"),
    ("~root", "~root"),
    ("-n", "-n"),
    ("$HOME ${{x:-y}} !! \\\\", "$HOME ${{x:-y}} !! \\"),
    ("  spaced  out  ", "  spaced  out  "),
]


PRINT = """("printf '%s|' " ++ (extends shellQuote { v vmName; }))"""


def _line(tmp_path: Path, written: str, expression: str = PRINT) -> str:
    path = tmp_path / "q.sf"
    path.write_text(
        '#include "org/smartfrog/functions.sf"\n'
        "sfConfig extends {\n"
        f'  vmName "{written}";\n'
        f"  line {expression};\n"
        "}\n",
        encoding="utf-8",
    )
    value = load(path).attributes["line"]
    assert isinstance(value, str)
    return value


@needs_bash
@pytest.mark.parametrize(("written", "meant"), HOSTILE)
def test_a_quoted_value_is_one_word_and_runs_nothing(
    tmp_path: Path, written: str, meant: str
) -> None:
    line = _line(tmp_path, written.format(t=tmp_path))
    run = subprocess.run(
        [BASH, "-c", line], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == meant.format(t=tmp_path) + "|", line
    assert not (tmp_path / "pwned").exists(), f"the value ran a command: {line}"


@needs_bash
def test_several_parameters_and_vectors_give_one_word_each(tmp_path: Path) -> None:
    line = _line(
        tmp_path,
        "x y",
        '("printf \'%s|\' " ++ (extends shellQuote { a vmName; b ["1 2", "$(id)"]; c 3; }))',
    )
    run = subprocess.run([BASH, "-c", line], capture_output=True, text=True, timeout=30)
    assert run.stdout == "x y|1 2|$(id)|3|"


def test_a_description_cannot_be_quoted(tmp_path: Path) -> None:
    with pytest.raises(DescriptionError, match="shellQuote|ShellQuote"):
        _line(tmp_path, "x", "(extends shellQuote { v extends { a 1; } })")


def test_the_quoted_form_is_readable() -> None:
    from sfpy.language import parse_text, resolve

    config = resolve(
        parse_text(
            '#include "org/smartfrog/functions.sf"\n'
            'sfConfig extends { n "vm1"; q (extends shellQuote { v n; }); r (extends shellQuote { v ""; }); }'
        )
    )
    assert config.attributes["q"] == "vm1"
    assert config.attributes["r"] == "''"
