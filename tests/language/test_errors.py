"""Error quality: every mistake once, where it is, in the words a user would type.

The expected messages are written out in full: ``FILE:LINE:COL: error: WHAT``, then the
source line with a caret under the column, then (for resolution errors) the attribute path
and the phase. lark's internal names never appear, and every message comes well under a
second.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from sfpy.language import DescriptionError, parse_file, parse_text, resolve

FAST = 1.0  # seconds: "well under a second" for one description and its message


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Build the grammar once so the timings below measure the description, not lark's tables."""
    resolve(parse_text("sfConfig extends { a 1; }"))


def failure(path: Path, include_dirs: tuple[str, ...] = ()) -> DescriptionError:
    """Parse and resolve ``path``; return the error it must raise, checking it came fast."""
    started = time.perf_counter()
    with pytest.raises(DescriptionError) as caught:
        resolve(parse_file(str(path), include_dirs))
    error = caught.value
    error.render()
    elapsed = time.perf_counter() - started
    assert elapsed < FAST, f"{elapsed:.2f} s to report: {error.render()}"
    return error


def rendered(path: Path, include_dirs: tuple[str, ...] = ()) -> str:
    return failure(path, include_dirs).render()


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in tmp_path so files are named as a user names them (``t.sf``)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SFPY_PATH", raising=False)
    return tmp_path


def put(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return Path(name) if not Path(name).is_absolute() else path


# ---- the shape of a message ----------------------------------------------------------------


def test_syntax_error_shape(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  port 8080;\n  host extends ;\n}\n")
    assert rendered(path) == (
        "t.sf:3:16: error: unexpected ';'; expected a prototype after 'extends': a reference, "
        "'{' or NULL (an empty description is written 'extends {}')\n"
        "  3 |   host extends ;\n"
        "    |                ^"
    )


def test_error_fields(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a extends ;\n}\n")
    error = failure(path)
    assert (error.position.file, error.position.line, error.position.column) == ("t.sf", 2, 13)
    assert error.phase == "parse"
    assert error.more == []
    assert error.exit_code == 3


def test_caret_with_tabs(here: Path) -> None:
    """Tabs count as one column, and the shown line keeps the caret under the mistake."""
    path = put(here, "t.sf", "sfConfig extends {\n\ta\t(b\t-1);\n}\n")
    text = rendered(path)
    lines = text.splitlines()
    assert lines[0].startswith("t.sf:2:7: error: unexpected number '-1'")
    assert lines[1] == "  2 |  a (b -1);"
    assert lines[2] == "    |       ^"
    assert lines[1][lines[2].index("^")] == "-"


def test_caret_after_non_ascii(here: Path) -> None:
    path = put(here, "t.sf", 'sfConfig extends {\n  name "Jos\u00e9" b (c -1);\n}\n')
    lines = rendered(path).splitlines()
    assert lines[0].startswith("t.sf:2:20: error: ")
    assert lines[1][lines[2].index("^")] == "-"


def test_unclosed_brace_names_the_brace(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a extends {\n    b 1;\n  c 2;\n")
    # The end of the file is line 5, column 1 (after the last newline): nothing to show there.
    assert rendered(path) == (
        "t.sf:5:1: error: unexpected end of file: the '{' at line 2 column 13 is not closed"
    )


def test_stray_closing_brace(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a 1;\n}\n}\n")
    assert rendered(path) == (
        "t.sf:4:1: error: unexpected '}': there is no open '{' for it to close\n"
        "  4 | }\n"
        "    | ^"
    )


def test_unterminated_string(here: Path) -> None:
    path = put(here, "t.sf", 'sfConfig extends {\n  s "abc;\n  t 1;\n}\n')
    assert rendered(path) == (
        "t.sf:2:5: error: unterminated string, or an escape SmartFrog does not know "
        "(\\n \\t \\b \\r \\f \\\\ \\' \\\" \\ooo)\n"
        '  2 |   s "abc;\n'
        "    |     ^"
    )


def test_unterminated_comment(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  /* never closed\n  t 1;\n}\n")
    assert rendered(path) == (
        "t.sf:2:3: error: unterminated /* comment\n"
        "  2 |   /* never closed\n"
        "    |   ^"
    )


def test_unexpected_character(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a ?;\n}\n")
    assert rendered(path) == "t.sf:2:5: error: unexpected character '?'\n  2 |   a ?;\n    |     ^"


def test_unknown_directive(here: Path) -> None:
    path = put(here, "t.sf", "#define X 1\nsfConfig extends { a 1; }\n")
    first = rendered(path).splitlines()[0]
    assert first == (
        "t.sf:1:1: error: unexpected '#': expected #include, #include?, #codebase, "
        "a ##multi-line string# or a #HEX#…# byte array"
    )


def test_negative_number_is_explained(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  b 3;\n  a (b -1);\n}\n")
    assert rendered(path) == (
        "t.sf:3:8: error: unexpected number '-1'; expected '!=', '%', '&&', ')', '*', '+', '++', … "
        "('-1' is read as a negative number: write '- 1')\n"
        "  3 |   a (b -1);\n"
        "    |        ^"
    )


def test_empty_extends_is_explained(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a extends ;\n}\n")
    message = rendered(path).splitlines()[0]
    assert message == (
        "t.sf:2:13: error: unexpected ';'; expected a prototype after 'extends': a reference, "
        "'{' or NULL (an empty description is written 'extends {}')"
    )


def test_extends_without_prototype_before_brace(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a 1\n  b extends\n}\n")
    assert rendered(path) == (
        "t.sf:4:1: error: unexpected '}'; expected a prototype after 'extends': a reference, '{' or NULL\n"
        "  4 | }\n"
        "    | ^"
    )


def test_mixed_operators_are_explained(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a (1 + 2 * 3);\n}\n")
    assert rendered(path) == (
        "t.sf:2:12: error: '+' and '*' in one pair of parentheses: SmartFrog operators have no "
        "precedence, so group them, e.g. (a + (b * c))\n"
        "  2 |   a (1 + 2 * 3);\n"
        "    |            ^"
    )


def test_malformed_byte_array(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a #HEX#ABC#;\n}\n")
    lines = rendered(path).splitlines()
    assert lines[0].startswith("t.sf:2:5: error: malformed #HEX# byte array")
    assert lines[1:] == ["  2 |   a #HEX#ABC#;", "    |     ^"]


# ---- lark's names never reach a user ---------------------------------------------------------

LARK_NAMES = re.compile(
    r"__ANON|\$END|\bRULE\b|\b_?(?:SEMI|COMMA|COLON|LBRACE|RBRACE|LBRACKET|RBRACKET|LPAR|RPAR|"
    r"VSTART|VEND|WORD|NUMBER|MLSTRING|BYTEARRAY|INCLUDE_OPT|CODEBASE|EXTENDS|CONCAT|APPEND|"
    r"IMPLIES|PERCENT|SLASH|STAR|MINUS|PLUS|UNIQUE|EQ|NE|GE|LE|GT|LT|XOR|AND|OR|NOT)\b"
)

BROKEN = [
    "sfConfig extends { a 1; ",
    "sfConfig extends { a 1; } }",
    "sfConfig extends { a extends ; }",
    "sfConfig extends { a (b -1); }",
    "sfConfig extends { a (1 + 2 - 3); }",
    "sfConfig extends { a [1, 2; }",
    "sfConfig extends { a [|1, 2|; }",
    "sfConfig extends { a [|1, [2]|]; }",
    "sfConfig extends { a (; }",
    "sfConfig extends { a (); }",
    "sfConfig extends { a ); }",
    "sfConfig extends { a IF true THEN 1 FI; }",
    "sfConfig extends { a IF true 1 ELSE 2 FI; }",
    "sfConfig extends { a SWITCH ENDSWITCH; }",
    "sfConfig extends { a OPTIONAL (1 b; }",
    "sfConfig extends { a LAZY; }",
    "sfConfig extends { a DATA; }",
    "sfConfig extends { a APPLY; }",
    "sfConfig extends { a ATTRIB; }",
    "sfConfig extends { a HOST; }",
    "sfConfig extends { a b:; }",
    "sfConfig extends { a :b; }",
    "sfConfig extends { [sfFinal a 1; }",
    "sfConfig extends { [sfFinal] ; }",
    "sfConfig extends { a extends b, ; }",
    "sfConfig extends { a extends :x; }",
    "sfConfig extends { a extends LAZY; }",
    "sfConfig extends { extends { } }",
    "sfConfig extends { 1 2; }",
    'sfConfig extends { "a" ; "b" }',
    "sfConfig extends { a ## }",
    "sfConfig extends { a #HEX#zz#; }",
    "sfConfig extends { a !; }",
    "sfConfig extends { a (! ); }",
    "sfConfig extends { a (x| ); }",
    "sfConfig extends { a (1 ++); }",
    "#include sfConfig extends { }",
    '#include "x.sf" "y.sf"',
    '#codebase "x" sfConfig 1;',
    "sfConfig",
    "extends",
    "extends { a 1; } b 2;",
    "{",
    "}",
    ";;;",
    "a b c d e f",
    "sfConfig extends NULL NULL;",
    "sfConfig extends { a TBD TBD TBD }",
    "sfConfig extends { a --; -- }",
    "sfConfig extends { a PROPERTY; }",
    "sfConfig extends { a CONSTANT 1; }",
    "sfConfig extends { a ROOT PARENT; }",
]


@pytest.mark.parametrize("text", BROKEN)
def test_no_lark_names(text: str) -> None:
    started = time.perf_counter()
    with pytest.raises(DescriptionError) as caught:
        resolve(parse_text(text, "t.sf"))
    message = caught.value.render()
    assert time.perf_counter() - started < FAST
    assert not LARK_NAMES.search(message), message
    if caught.value.phase == "parse":
        assert message.startswith("t.sf:"), message
    assert "error: " in message.splitlines()[0]


# ---- one message per mistake -------------------------------------------------------------------


def test_three_independent_mistakes_three_messages(here: Path) -> None:
    path = put(
        here,
        "t.sf",
        "sfConfig extends {\n"
        "  a extends ;\n"
        "  good1 1;\n"
        "  b (c -1);\n"
        "  good2 extends { x 1; }\n"
        "  d [1, 2;\n"
        "  good3 3;\n"
        "}\n",
    )
    error = failure(path)
    assert [str(e.position) for e in error.all()] == ["t.sf:2:13", "t.sf:4:8", "t.sf:6:10"]
    assert rendered(path) == (
        "t.sf:2:13: error: unexpected ';'; expected a prototype after 'extends': a reference, "
        "'{' or NULL (an empty description is written 'extends {}')\n"
        "  2 |   a extends ;\n"
        "    |             ^\n"
        "\n"
        "t.sf:4:8: error: unexpected number '-1'; expected '!=', '%', '&&', ')', '*', '+', '++', … "
        "('-1' is read as a negative number: write '- 1')\n"
        "  4 |   b (c -1);\n"
        "    |        ^\n"
        "\n"
        "t.sf:6:10: error: unexpected ';'; expected ',' or ']'\n"
        "  6 |   d [1, 2;\n"
        "    |          ^"
    )


def test_mistakes_in_nested_descriptions(here: Path) -> None:
    path = put(
        here,
        "t.sf",
        "sfConfig extends {\n"
        "  a 1;\n"
        "  b extends {\n"
        "    c 2;\n"
        "    d extends ;\n"
        "  }\n"
        "  e (x -1);\n"
        "  f 3;\n"
        "}\n",
    )
    assert [str(e.position) for e in failure(path).all()] == ["t.sf:5:15", "t.sf:7:8"]


def test_bad_characters_on_two_lines(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a ?;\n  b 1;\n  c `;\n}\n")
    error = failure(path)
    assert [(str(e.position), e.message) for e in error.all()] == [
        ("t.sf:2:5", "unexpected character '?'"),
        ("t.sf:4:5", "unexpected character '`'"),
    ]


def test_missing_include_is_one_mistake(here: Path) -> None:
    path = put(here, "t.sf", '#include "nope.sf"\nsfConfig extends {\n  a 1;\n}\n')
    error = failure(path)
    assert len(error.all()) == 1, error.render()


def test_missing_include_then_a_real_mistake(here: Path) -> None:
    """After a missing include the parser carries on and finds the next real mistake only."""
    path = put(here, "t.sf", '#include "nope.sf"\nsfConfig extends {\n  a extends ;\n}\n')
    error = failure(path)
    assert [str(e.position) for e in error.all()] == ["t.sf:1:1", "t.sf:3:13"], error.render()


def test_unresolved_references_each_once(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a b;\n  c 1;\n  d e;\n}\n")
    error = failure(path)
    assert [(str(e.position), e.path, e.phase) for e in error.all()] == [
        ("t.sf:2:5", "sfConfig:a", "link"),
        ("t.sf:4:5", "sfConfig:d", "link"),
    ]


def test_a_broken_link_used_twice_is_reported_where_written(here: Path) -> None:
    """``y`` and ``z`` only repeat ``x``'s broken link: at most the one place it is written."""
    path = put(here, "t.sf", "sfConfig extends {\n  x nowhere;\n  y x;\n  z y;\n}\n")
    error = failure(path)
    positions = [str(e.position) for e in error.all()]
    assert positions[0] == "t.sf:2:5"
    assert len(positions) == 1, error.render()


# ---- did you mean ----------------------------------------------------------------------------


def test_unknown_reference_did_you_mean(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  disk 5;\n  x dsik;\n}\n")
    assert rendered(path) == (
        "t.sf:3:5: error: unresolved reference dsik: no attribute 'dsik' in sfConfig or its parents "
        "(did you mean 'disk'?)\n"
        "  3 |   x dsik;\n"
        "    |     ^\n"
        "  in sfConfig:x, during link resolution"
    )


def test_unknown_reference_in_a_path_did_you_mean(here: Path) -> None:
    path = put(
        here, "t.sf", "sfConfig extends {\n  vm extends { disk 5; }\n  size vm:dsik;\n}\n"
    )
    first = rendered(path).splitlines()[0]
    assert first.startswith("t.sf:3:8: error: ") and "(did you mean 'disk'?)" in first, first


def test_unknown_prototype_did_you_mean(here: Path) -> None:
    path = put(
        here,
        "t.sf",
        '#include "org/smartfrog/components.sf"\nsfConfig extends Compund {\n  a 1;\n}\n',
    )
    assert rendered(path) == (
        "t.sf:2:18: error: cannot extend Compund: no attribute 'Compund' in sfConfig or its parents "
        "(did you mean 'Compound'?)\n"
        "  2 | sfConfig extends Compund {\n"
        "    |                  ^\n"
        "  in sfConfig, during type resolution"
    )


def test_unknown_prototype_without_a_close_name(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a extends Zzyzx;\n}\n")
    message = rendered(path)
    assert message.startswith("t.sf:2:13: error: cannot extend Zzyzx: ")
    assert "did you mean" not in message
    assert message.endswith("  in sfConfig:a, during type resolution")


def test_no_sfconfig_did_you_mean(here: Path) -> None:
    path = put(here, "t.sf", "sfconfig extends {\n  a 1;\n}\n")
    message = rendered(path)
    assert "sfConfig" in message and "did you mean 'sfconfig'" in message, message
    assert message.startswith("t.sf"), "the message names the file"


# ---- includes --------------------------------------------------------------------------------


def test_include_not_found_lists_where_it_searched(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFPY_PATH", "/nonexistent/env")
    path = put(here, "t.sf", '#include "lib/missing.sf"\nsfConfig extends {\n  a 1;\n}\n')
    error = failure(path, ("/nonexistent/one", "two"))
    assert error.render().split("\n\n")[0] == (
        't.sf:1:1: error: include file "lib/missing.sf" not found (searched the including '
        "file's folder, /nonexistent/one, two, SFPY_PATH, sfpy's descriptions)\n"
        '  1 | #include "lib/missing.sf"\n'
        "    | ^"
    )


def test_include_cycle_prints_its_path(here: Path) -> None:
    put(here, "a.sf", '#include "b.sf"\nsfConfig extends { x 1; }\n')
    put(here, "b.sf", '#include "c.sf"\n')
    put(here, "c.sf", 'y 1;\n#include "a.sf"\n')
    error = failure(Path("a.sf"))
    assert error.render() == (
        f"{here / 'c.sf'}:2:1: error: include cycle: a.sf -> b.sf -> c.sf -> a.sf\n"
        '  2 | #include "a.sf"\n'
        "    | ^"
    )


def test_error_inside_an_included_file_names_that_file(here: Path) -> None:
    put(here, "lib.sf", "Template extends {\n  a extends ;\n}\n")
    path = put(here, "t.sf", '#include "lib.sf"\nsfConfig extends Template;\n')
    error = failure(path)
    assert error.render() == (
        f"{here / 'lib.sf'}:2:13: error: unexpected ';'; expected a prototype after 'extends': "
        "a reference, '{' or NULL (an empty description is written 'extends {}')\n"
        "  2 |   a extends ;\n"
        "    |             ^"
    )


def test_include_of_other_languages(here: Path) -> None:
    put(here, "site.yaml", "a: 1\n")
    path = put(here, "t.sf", '#include "site.yaml"\nsfConfig extends { a 1; }\n')
    message = rendered(path)
    assert "site.yaml: sfpy reads SmartFrog descriptions (.sf files)" in message


# ---- cycles ----------------------------------------------------------------------------------


def test_cyclic_links_print_their_path(here: Path) -> None:
    path = put(
        here,
        "t.sf",
        "sfConfig extends {\n  one extends {\n    v two:v;\n  }\n  two extends {\n    v one:v;\n  }\n}\n",
    )
    assert rendered(path) == (
        "t.sf:3:7: error: cyclic reference: sfConfig:one:v (two:v) -> sfConfig:two:v (one:v) -> "
        "sfConfig:one:v\n"
        "  3 |     v two:v;\n"
        "    |       ^\n"
        "  in sfConfig:one:v, during link resolution"
    )


def test_self_link(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  link link;\n}\n")
    assert rendered(path) == (
        "t.sf:2:8: error: cyclic reference: sfConfig:link (link) -> sfConfig:link\n"
        "  2 |   link link;\n"
        "    |        ^\n"
        "  in sfConfig:link, during link resolution"
    )


def test_cyclic_extends_print_their_path(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  a extends b;\n  b extends a;\n}\n")
    error = failure(path)
    lines = error.render().splitlines()
    assert lines[0].startswith(
        "t.sf:3:13: error: cyclic extends: sfConfig:a extends b -> sfConfig:b extends a"
    ), lines[0]
    assert lines[1:] == ["  3 |   b extends a;", "    |             ^", "  in sfConfig:b, during type resolution"]
    assert len(error.all()) == 1


def test_three_prototypes_in_a_cycle(here: Path) -> None:
    path = put(here, "t.sf", "A extends B;\nB extends C;\nC extends A;\nsfConfig extends A;\n")
    first = rendered(path).splitlines()[0]
    assert "cyclic extends: A extends B -> B extends C -> C extends A" in first, first


# ---- resolution errors: path and phase -------------------------------------------------------


def test_resolution_error_names_path_and_phase(here: Path) -> None:
    path = put(
        here,
        "t.sf",
        "sfConfig extends {\n  vm extends {\n    disk extends {\n      size (1 / 0);\n    }\n  }\n}\n",
    )
    error = failure(path)
    assert (error.path, error.phase) == ("sfConfig:vm:disk:size", "link")
    assert error.render() == (
        "t.sf:4:15: error: Divide: division by zero (1 / 0)\n"
        "  4 |       size (1 / 0);\n"
        "    |               ^\n"
        "  in sfConfig:vm:disk:size, during link resolution"
    )


def test_placement_error_names_the_phase(here: Path) -> None:
    path = put(here, "t.sf", "sfConfig extends {\n  x:y 1;\n}\n")
    assert rendered(path) == (
        "t.sf:2:3: error: cannot place 'x:y' (written in sfConfig): no attribute 'x' in sfConfig\n"
        "  2 |   x:y 1;\n"
        "    |   ^\n"
        "  in sfConfig, during place resolution"
    )


def test_final_attribute_override_names_the_phase(here: Path) -> None:
    path = put(here, "t.sf", "Foo extends { [sfFinal] x 1; }\nsfConfig extends Foo {\n  x 2;\n}\n")
    error = failure(path)
    assert (str(error.position), error.phase, error.path) == ("t.sf:3:3", "type", "sfConfig:x")
    assert error.render().endswith("  in sfConfig:x, during type resolution")


def test_tbd_left_undefined(here: Path) -> None:
    path = put(here, "t.sf", "Foo extends { port TBD; }\nsfConfig extends Foo;\n")
    error = failure(path)
    assert error.render() == (
        "t.sf:1:15: error: attribute 'port' of sfConfig is still TBD (to be defined)\n"
        "  1 | Foo extends { port TBD; }\n"
        "    |               ^\n"
        "  in sfConfig:port, during link resolution"
    )


def test_function_type_error(here: Path) -> None:
    path = put(here, "t.sf", 'sfConfig extends {\n  a (1 + "x");\n}\n')
    assert rendered(path) == (
        't.sf:2:8: error: Sum: illegal numeric parameter: java.lang.String (x)\n'
        '  2 |   a (1 + "x");\n'
        "    |        ^\n"
        "  in sfConfig:a, during link resolution"
    )


def test_empty_file_has_no_sfconfig(here: Path) -> None:
    path = put(here, "t.sf", "")
    error = failure(path)
    assert error.phase == "sfConfig"
    assert "sfConfig" in error.message
    assert error.render().endswith("during the sfConfig phase")


def test_large_file_with_one_mistake_is_fast(here: Path) -> None:
    """A mistake at the end of a 20,000-line file: found, located and reported about as fast
    as the same file without it parses (measured side by side, so a busy machine slows both)."""
    body = "".join(f"  a{n} {n};\n" for n in range(20_000))
    good = put(here, "good.sf", "sfConfig extends {\n" + body + "  z 1;\n}\n")
    path = put(here, "t.sf", "sfConfig extends {\n" + body + "  z extends ;\n}\n")
    started = time.perf_counter()
    parse_file(str(good))
    parsing = time.perf_counter() - started
    started = time.perf_counter()
    with pytest.raises(DescriptionError) as caught:
        parse_file(str(path))
    assert time.perf_counter() - started < 3 * parsing + 0.2
    assert str(caught.value.position) == "t.sf:20002:13"


def test_column_counts_the_file_not_the_expanded_unicode_escapes(here: Path) -> None:
    """``\\u0041`` is six characters in the file: the column (and the line shown) are the file's."""
    path = put(here, "t.sf", 'sfConfig extends {\n  a "\\u0041" b (c -1);\n}\n')
    lines = rendered(path).splitlines()
    assert lines[0].startswith("t.sf:2:19: error: unexpected number '-1'"), lines[0]
    assert lines[1] == '  2 |   a "\\u0041" b (c -1);'
    assert lines[1][lines[2].index("^")] == "-"


def test_fifty_link_cycle_is_reported_as_a_cycle(here: Path) -> None:
    body = "".join(f"  a{n} a{n + 1};\n" for n in range(50)) + "  a50 a0;\n"
    path = put(here, "t.sf", "sfConfig extends {\n" + body + "}\n")
    error = failure(path)
    assert len(error.all()) == 1, error.render()
    assert error.render().startswith(
        "t.sf:2:6: error: cyclic reference: sfConfig:a0 (a1) -> sfConfig:a1 (a2) -> "
    ), error.render()[:300]
    assert (error.path, error.phase) == ("sfConfig:a0", "link")
