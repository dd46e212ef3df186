"""The parser: SmartFrog text to the raw description, feature by feature (values written out)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sfpy.language import DescriptionError, parse_file, parse_text
from sfpy.language.model import (
    ATTRIB,
    HERE,
    NULL,
    PARENT,
    TBD,
    ApplyReference,
    AssertReference,
    ByteArray,
    ComponentDescription,
    Double,
    Long,
    Reference,
    RefPart,
    same_value,
)

FN = "org.smartfrog.sfcore.languages.sf.functions."


def value(text: str, name: str = "x"):
    return parse_text(text).attributes[name]


def ref(*parts: tuple[str, str | None] | str, **flags) -> Reference:
    built = [RefPart(p) if isinstance(p, str) else RefPart(*p) for p in parts]
    return Reference(built, **flags)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x 42;", 42),
        ("x -7;", -7),
        ("x 007;", 7),
        ("x 240L;", Long(240)),
        ("x 1.25;", 1.25),  # exact: SmartFrog's HEAD would print 1.2
        ("x 1.5f;", 1.5),
        ("x 1e3;", 1000.0),
        ("x 1.5D;", Double(1.5)),
        ("x .5d;", Double(0.5)),
        ("x true;", True),
        ("x false;", False),
        ("x NULL;", NULL),
        ("x;", NULL),
        ("x TBD;", TBD),
        ('x "a\\tb\\n\\"q\\"";', 'a\tb\n"q"'),
        ('x "oct\\101\\102";', "octAB"),
        ("x ##multi \"q\" \\# h\nline#;", 'multi "q" # h\nline'),
        ("x #HEX#AB 34#;", ByteArray(b"\xab\x34")),
        ("x #B64#AQID#;", ByteArray(b"\x01\x02\x03")),
        ("x [|1, \"a\", 2L|];", [1, "a", Long(2)]),
        ("x [||];", []),
        ("x \\u0034\\u0032;", 42),  # Java unicode escapes in the raw text
    ],
)
def test_literals(text, expected):
    assert same_value(value(text), expected)


def test_types_stay_distinct():
    assert type(value("x 1;")) is int
    assert type(value("x 1L;")) is Long
    assert type(value("x 1.0;")) is float
    assert type(value("x 1.0D;")) is Double
    assert not same_value(value("x 1;"), value("x 1L;"))


def test_a_value_needs_no_semicolon():
    root = parse_text('extra "fastboot" domainLivenessDelay 2000;')
    assert root.attributes == {"extra": "fastboot", "domainLivenessDelay": 2000}


def test_stray_semicolons_and_comments():
    root = parse_text("; a 1; ; // line\n /* block\n */ b /** doc */ 2;;")
    assert root.attributes == {"a": 1, "b": 2}


def test_word_characters():
    root = parse_text("a.b-c+d@e#f~g$h%i^j&k 1; y (a+b);")
    assert "a.b-c+d@e#f~g$h%i^j&k" in root
    assert same_value(root["y"], ref((ATTRIB, "a+b")))  # a+b is one name, as in SmartFrog


def test_True_is_a_link_not_a_boolean():
    assert same_value(value("x True;"), ref((ATTRIB, "True")))


def test_quoted_and_generated_names():
    root = parse_text('"a name with spaces" 1; -- 2; -- 3;')
    keys = list(root)
    assert keys[0] == "a name with spaces"
    assert all(re.fullmatch(r"unique\d+", k) for k in keys[1:]) and keys[1] != keys[2]


def test_duplicate_keeps_first_place_last_value():
    root = parse_text("a 1; b 2; a 3;")
    assert list(root.attributes.items()) == [("a", 3), ("b", 2)]


def test_tags():
    root = parse_text('[sfFinal, "my tag" other] port 80; [] q 1;')
    assert root.tags_of("port") == {"sfFinal", "my tag", "other"}
    assert root.tags_of("q") == set()


def test_placement_key_is_a_here_reference():
    root = parse_text("a:b:c 42;")
    (key,) = root.attributes
    assert key == ref((HERE, "a"), (HERE, "b"), (HERE, "c"))


class TestReferences:
    def test_first_word_attrib_later_here(self):
        assert same_value(value("x a:b:c;"), ref((ATTRIB, "a"), (HERE, "b"), (HERE, "c")))

    @pytest.mark.parametrize(
        ("text", "parts"),
        [
            ("PARENT:foo", [PARENT, (HERE, "foo")]),
            ("ROOT:sfConfig", ["ROOT", (HERE, "sfConfig")]),
            ("THIS", ["THIS"]),
            ("PROCESS", ["PROCESS"]),
            ("ATTRIB a:ATTRIB b", [(ATTRIB, "a"), (ATTRIB, "b")]),
            ("HERE a", [(HERE, "a")]),
            ("PROPERTY user.home", [("PROPERTY", "user.home")]),
            ("IPROPERTY n", [("IPROPERTY", "n")]),
            ("ENVPROPERTY HOME", [("ENVPROPERTY", "HOME")]),
            ("IENVPROPERTY N", [("IENVPROPERTY", "N")]),
            ('CONSTANT "java.lang.Integer.MAX_VALUE"', [("CONSTANT", "java.lang.Integer.MAX_VALUE")]),
            ('HOST "127.0.0.2":rootProcess', [("HOST", "127.0.0.2"), (HERE, "rootProcess")]),
        ],
    )
    def test_parts(self, text, parts):
        assert same_value(value(f"x {text};"), ref(*parts))

    def test_flags(self):
        assert value("x LAZY a;") == ref((ATTRIB, "a"), lazy=True)
        assert value("x DATA a;") == ref((ATTRIB, "a"), data=True)
        assert value("x OPTIONAL a;") == ref((ATTRIB, "a"), optional=True)
        assert value("x OPTIONAL (99) a;") == ref((ATTRIB, "a"), optional=True, default=99)
        assert value("x LAZY OPTIONAL (\"d\") a;") == ref((ATTRIB, "a"), lazy=True, optional=True, default="d")

    def test_positions(self):
        reference = value("\n\n  x   PARENT:a;")
        assert (reference.position.line, reference.position.column) == (3, 7)


class TestExtends:
    def test_single_body_becomes_the_description(self):
        cd = value("x extends { a 1; b extends { c 2; } }")
        assert cd.prototypes == [] and cd.eager
        assert cd["a"] == 1 and cd["b"]["c"] == 2
        assert cd["b"].parent is cd

    def test_prototypes_in_order(self):
        cd = value("x extends A, B:c, { d 1; };")
        assert cd.attributes == {}
        assert cd.prototypes[0] == ref((ATTRIB, "A"))
        assert cd.prototypes[1] == ref((ATTRIB, "B"), (HERE, "c"))
        assert isinstance(cd.prototypes[2], ComponentDescription) and cd.prototypes[2]["d"] == 1

    def test_legacy_body_without_comma(self):
        cd = value("x extends Prim { a 1; }")
        assert [type(p) for p in cd.prototypes] == [Reference, ComponentDescription]

    def test_null_and_data(self):
        assert value("x extends NULL;").attributes == {} and value("x extends NULL;").prototypes == []
        assert value("x extends DATA { a 1; }").eager is False
        assert value("x extends LAZY { a 1; }").eager is False

    def test_extends_in_parentheses(self):
        assert value("x (extends { a 1; });")["a"] == 1

    def test_empty_extends_is_an_error(self):
        with pytest.raises(DescriptionError, match=r"extends \{\}"):
            parse_text("x extends ;")


class TestFunctions:
    def test_nary_operator(self):
        cd = value('x ("a" ++ b ++ 2);')
        assert [k for k in cd if not k.startswith("unique")] == ["phase.function", "sfFunctionClass"]
        assert cd["sfFunctionClass"] == FN + "Concatenate"
        params = [v for k, v in cd.items() if k.startswith("unique")]
        assert same_value(params[0], "a") and params[1] == ref((ATTRIB, "b")) and params[2] == 2

    @pytest.mark.parametrize(
        ("op", "cls"),
        [("==", "EQ"), ("!=", "NE"), (">=", "GE"), ("<=", "LE"), (">", "GT"), ("<", "LT"),
         ("-", "Minus"), ("/", "Divide"), ("%", "Mod")],
    )  # fmt: skip
    def test_binary_operators(self, op, cls):
        cd = value(f"x (a {op} 2);")
        assert list(cd) == ["left", "right", "phase.function", "sfFunctionClass"]
        assert cd["sfFunctionClass"] == FN + cls

    @pytest.mark.parametrize(
        ("op", "cls"),
        [("+", "Sum"), ("*", "Product"), ("<>", "Append"), ("&&", "And"), ("||", "Or"),
         ("x|", "Xor"), ("->", "Implies")],
    )  # fmt: skip
    def test_nary_operators(self, op, cls):
        assert value(f"x (a {op} b {op} c);")["sfFunctionClass"] == FN + cls

    def test_not_and_parentheses(self):
        cd = value("x (! a);")
        assert list(cd)[0] == "data" and cd["sfFunctionClass"] == FN + "Not"
        assert value("x (5);") == 5

    def test_mixed_operators_are_refused_with_advice(self):
        with pytest.raises(DescriptionError, match="no precedence"):
            parse_text("x (1 + 2 * 3);")

    def test_negative_number_needs_a_space(self):
        with pytest.raises(DescriptionError, match="negative number"):
            parse_text("x (a -1);")
        assert value("x (5 - -1);")["right"] == -1

    def test_vector_function(self):
        cd = value("x [1, LAZY a, [2]];")
        assert cd["sfFunctionClass"] == FN + "Vector"
        params = [v for k, v in cd.items() if k.startswith("unique")]
        assert params[0] == 1 and params[1] == ref((ATTRIB, "a"), lazy=True)
        assert params[2]["sfFunctionClass"] == FN + "Vector"

    def test_if_then_else(self):
        cd = value("x IF (a > 1) THEN 2 ELSE 3 FI;")
        assert list(cd) == ["phase.function", "sfFunctionClass", "if", "then", "else"]
        assert cd["sfFunctionClass"] == FN + "IfThenElse" and cd["then"] == 2

    def test_switch(self):
        cd = value("x SWITCH { v 1; } IF (v == 1) THEN \"one\" IF (v == 2) THEN \"two\" ENDSWITCH;")
        assert [k for k in cd if k.startswith(("IF", "THEN"))] == ["IF0", "THEN0", "IF1", "THEN1"]
        assert cd["v"] == 1 and cd["sfFunctionClass"] == FN + "Switch"

    def test_apply_and_assert(self):
        apply = value('x LAZY APPLY { sfFunctionClass "' + FN + 'Sum"; a 1; }')
        assert isinstance(apply, ApplyReference) and apply.lazy and apply.description["a"] == 1
        assertion = value("x ASSERT { ok true; }")
        assert isinstance(assertion, AssertReference) and assertion.description["ok"] is True
        assert value("x DATA APPLY { a 1; }").data is True


class TestIncludes:
    def test_spliced_in_place_with_put_semantics(self, write_sf):
        write_sf("b 2; a 10;", "inc.sf")
        main = write_sf('a 1; #include "inc.sf"\n c 3;')
        assert parse_file(main).attributes == {"a": 10, "b": 2, "c": 3}

    def test_include_inside_a_body(self, write_sf):
        write_sf("q 1;", "inner.sf")
        main = write_sf('x extends { #include "inner.sf" }')
        assert parse_file(main)["x"]["q"] == 1

    def test_relative_to_the_including_file_then_I_then_SFPY_PATH(self, tmp_path, write_sf, monkeypatch):
        write_sf("v \"sub\";", "sub/lib.sf")
        write_sf('#include "lib.sf"', "sub/main.sf")
        write_sf("v \"idir\";", "idir/lib.sf")
        write_sf("v \"env\";", "env/lib.sf")
        write_sf("v \"env\";", "env/only-env.sf")
        assert parse_file(tmp_path / "sub/main.sf", [tmp_path / "idir"])["v"] == "sub"
        other = write_sf('#include "lib.sf"\n#include "only-env.sf"', "elsewhere/main.sf")
        monkeypatch.setenv("SFPY_PATH", str(tmp_path / "env"))
        assert parse_file(other, [tmp_path / "idir"])["v"] == "env"  # only-env.sf came last
        assert parse_file(write_sf('#include "lib.sf"', "e2/m.sf"), [tmp_path / "idir"])["v"] == "idir"

    def test_leading_slash_and_shipped_library(self, write_sf):
        main = write_sf('#include "/org/smartfrog/components.sf"\nsfConfig extends Compound {}')
        root = parse_file(main)
        assert "Compound" in root and "Prim" in root

    def test_optional_include(self, write_sf):
        assert parse_file(write_sf('#include? "missing.sf"\n a 1;')).attributes == {"a": 1}

    def test_missing_include(self, write_sf):
        with pytest.raises(DescriptionError, match='include file "missing.sf" not found'):
            parse_file(write_sf('#include "missing.sf"'))

    def test_same_file_twice_is_fine(self, write_sf):
        write_sf("a 1;", "once.sf")
        assert parse_file(write_sf('#include "once.sf"\n#include "once.sf"'))["a"] == 1

    def test_cycle(self, write_sf):
        write_sf('#include "b.sf"', "a.sf")
        write_sf('#include "a.sf"', "b.sf")
        with pytest.raises(DescriptionError, match=r"include cycle: a\.sf -> b\.sf -> a\.sf"):
            parse_file(Path(write_sf('#include "a.sf"', "top.sf")))

    def test_url_codebase_is_refused(self, write_sf):
        with pytest.raises(DescriptionError, match="only from local folders"):
            parse_file(write_sf('#codebase "http://localhost:8080/a.jar" #include "x.sf"'))

    def test_wrapped_file(self, write_sf):
        assert parse_file(write_sf("extends { a 1; }")).attributes == {"a": 1}


class TestErrors:
    def render(self, text: str) -> str:
        with pytest.raises(DescriptionError) as caught:
            parse_text(text, "site.sf")
        return caught.value.render()

    def test_location_source_line_and_caret(self):
        assert self.render("a 1;\nb extends {\n  c ;\n  d }\n") == (
            "site.sf:4:5: error: unexpected '}'; expected a value, 'extends', ':' or ';'\n"
            "  4 |   d }\n"
            "    |     ^"
        )

    def test_one_message_per_mistake(self):
        text = "a 1;\nb (1 +);\nc 2;\nd extends ;\ne 3;\nf \"unterminated;\ng 4;\n"
        rendered = self.render(text)
        assert [int(line.split(":")[1]) for line in rendered.splitlines() if ": error:" in line] == [2, 4, 6]

    def test_unclosed_brace_says_where_it_opened(self):
        assert "the '{' at line 1 column 18 is not closed" in self.render("sfConfig extends {\n a 1;")

    def test_no_internal_terminal_names(self):
        for text in ["a (1 2);", "a [1 2];", "a [|1 2|];", "[x a 1;", "a extends B, ;", "#include x"]:
            message = self.render(text)
            assert not re.search(r"__ANON|_SEMI|_LBRACE|LBRACE|\$END|RULE|NUMBER|WORD", message), message

    def test_nesting_limit(self):
        assert "nesting deeper than" in self.render("x " + "(" * 5000 + "1" + ")" * 5000 + ";")


# ---- the LALR loop against lark's own ------------------------------------------------------------
# parser._Driver runs lark's parse tables with a loop of its own that reads lark's internals
# (lark.parser.parser.parser, its parse table and callbacks). setup.cfg bounds lark's version;
# this checks, on every description we have, that the loop does what lark's parser does.


def _corpus_and_shipped_files() -> list[Path]:
    try:  # tests/ is on sys.path, or is a package
        from test_conformance import CORPUS, corpus_absent
    except ImportError:  # pragma: no cover
        from tests.test_conformance import CORPUS, corpus_absent

    shipped = Path(__file__).resolve().parents[2] / "descriptions"
    files = sorted(shipped.rglob("*.sf"))
    assert len(files) > 40, f"sfpy's descriptions not found in {shipped}"
    corpus = sorted(CORPUS.parent.rglob("*.sf")) if CORPUS.is_dir() else []
    if not corpus:
        corpus_absent(f"SmartFrog corpus not found at {CORPUS}: its files are not compared")
    return files + corpus


def _variants(text: str) -> list[str]:
    """The text, cut short at three places and with a ';' taken out: many syntax errors."""
    cuts = [text[: len(text) * k // 4] for k in (1, 2, 3)]
    semicolons = [i for i, c in enumerate(text) if c == ";"]
    mutated = [text[:i] + " " + text[i + 1 :] for i in semicolons[len(semicolons) // 2 :][:1]]
    return [text, *cuts, *mutated]


def _outcome(parse, text: str):
    from lark.exceptions import UnexpectedInput, UnexpectedToken

    try:
        return ("tree", parse(text)), None
    except UnexpectedToken as error:
        if error.token.type == "$END":
            # sfpy puts the end of file where the text ends; lark at its last token.
            return ("end of file",), error.expected
        return ("error", error.line, error.column, error.token.type), error.expected
    except UnexpectedInput as error:  # the lexer's: the same code on both sides
        return ("lexer error", type(error).__name__, error.line, error.column), None
    except DescriptionError as error:
        return ("description error", str(error)), None


def test_the_lalr_loop_gives_what_lark_gives_on_every_description():
    """Same tree, or the same error at the same place, as ``Lark.parse`` with the same tables."""
    from importlib import resources

    from lark import Lark

    from sfpy.language.lexer import SfLexer
    from sfpy.language.parser import _Driver

    grammar = resources.files("sfpy.language").joinpath("sf.lark").read_text(encoding="utf-8")
    lark = Lark(grammar, parser="lalr", lexer=SfLexer, maybe_placeholders=False)  # builds a tree
    driver = _Driver(lark)
    lexer = lark.parser.lexer.lexer
    # the loop's shortcut for one-child ``?rules`` is exercised, not bypassed
    assert sum(1 for row in driver.states.values() for a in row.values() if len(a) == 3 and a[2] is None) > 100

    compared = {"tree": 0, "error": 0}
    for path in _corpus_and_shipped_files():
        for text in _variants(path.read_text(encoding="utf-8", errors="replace")):
            ours, ours_expected = _outcome(lambda t: driver.parse(lexer.lex(t), t), text)
            theirs, theirs_expected = _outcome(lark.parse, text)
            assert ours == theirs, f"{path}: the LALR loop and lark differ on\n{text}"
            if ours_expected is not None:
                # sfpy lists only what would really be accepted: never more than lark
                assert ours_expected and set(ours_expected) <= set(theirs_expected), path
            compared["tree" if ours[0] == "tree" else "error"] += 1
    assert compared["tree"] > 150 and compared["error"] > 150, compared
