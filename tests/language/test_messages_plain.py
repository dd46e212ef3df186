"""Parser and schema messages in a user's words, pointing at the user's line."""

from __future__ import annotations

from pathlib import Path

import pytest
from language_support import description_error


def test_an_operator_inside_a_vector_asks_for_parentheses(tmp_path: Path) -> None:
    error = description_error(tmp_path, 'sfConfig extends { dir "/"; a ["cd " ++ dir, "x"]; }\n')
    text = error.render()
    assert "__" not in text and "star" not in text, text
    assert "operator inside a vector needs parentheses" in text
    assert error.position is not None and error.position.column == 38


def test_an_operator_outside_parentheses_asks_for_them(tmp_path: Path) -> None:
    text = description_error(tmp_path, 'sfConfig extends { a "x" ++ y; }\n').render()
    assert "needs parentheses" in text and "__" not in text


def test_lark_rule_names_never_appear(tmp_path: Path) -> None:
    for text in (
        'sfConfig extends { a [1 2]; }\n',
        "sfConfig extends { a [|1 2|]; }\n",
        "sfConfig extends { a SWITCH IF true THEN 1 2 ENDSWITCH; }\n",
        "sfConfig extends { a extends b c d; }\n",
    ):
        rendered = description_error(tmp_path, text).render()
        assert "__" not in rendered and "_star" not in rendered, rendered


@pytest.mark.parametrize(
    ("template", "include"),
    [
        ("Compound", "org/smartfrog/components.sf"),
        ("Script", "org/smartfrog/services/shellscript/components.sf"),
        ("Sequence", "org/smartfrog/sfcore/workflow/components.sf"),
    ],
)
def test_a_library_template_without_its_include_asks_for_it(
    tmp_path: Path, template: str, include: str
) -> None:
    text = description_error(tmp_path, f"sfConfig extends {template};\n").render()
    assert f'did you forget #include "{include}"?' in text


def test_a_schema_type_error_points_at_the_users_line(tmp_path: Path) -> None:
    error = description_error(
        tmp_path,
        '#include "org/smartfrog/services/shellscript/components.sf"\n'
        "sfConfig extends Compound {\n  sh extends BashShell {\n    timeout \"x\";\n  }\n}\n",
    )
    assert error.position is not None
    assert Path(error.position.file).name == "t.sf", error.render()
    assert (error.position.line, error.position.column) == (4, 5)
    assert "expected: java.lang.Integer, found: java.lang.String" in error.message


def test_a_missing_semicolon_before_a_brace_is_shown_where_it_is(tmp_path: Path) -> None:
    error = description_error(
        tmp_path, "sfConfig extends {\n  a extends {\n    b 1;\n    c\n  }\n  d 2;\n}\n"
    )
    assert error.position is not None
    assert (error.position.line, error.position.column) == (4, 6), error.render()
    assert "after 'c'" in error.message
    assert len(error.all()) == 1
