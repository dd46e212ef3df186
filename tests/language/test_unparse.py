"""The unparser: SmartFrog's ``sfParse -d`` layout and the lossless JSON form."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfpy.language.errors import DescriptionError
from sfpy.language.model import (
    NULL,
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
from sfpy.language.unparse import (
    MAX_DEPTH,
    from_data,
    from_json,
    java_double,
    java_float,
    reference_text,
    to_data,
    to_json,
    to_sf,
    value_text,
)


def cd_of(*pairs, eager: bool = True) -> ComponentDescription:
    cd = ComponentDescription(eager=eager)
    for key, value in pairs:
        cd.put(key, value)
    return cd


def ref(*parts, **flags) -> Reference:
    return Reference([RefPart(*p) if isinstance(p, tuple) else RefPart(p) for p in parts], **flags)


# -- SmartFrog layout ------------------------------------------------------------------------


def test_nested_descriptions_use_two_space_indent_and_extends_with_two_spaces():
    inner = cd_of(("sfClass", "kk.class"), ("dos", 2))
    lazy = cd_of(("uno", "1"), eager=False)
    top = cd_of(("sfCodeBase", "default"), ("data", cd_of(("deeper", inner), ("dataLazy", lazy))))
    assert to_sf(top) == (
        'sfCodeBase "default";\n'
        "data extends  {\n"
        "  deeper extends  {\n"
        '    sfClass "kk.class";\n'
        "    dos 2;\n"
        "  }\n"
        "  dataLazy extends DATA  {\n"
        '    uno "1";\n'
        "  }\n"
        "}\n"
    )


def test_empty_descriptions_print_braces_on_one_line():
    top = cd_of(("sendTo", ComponentDescription(eager=False)), ("x", ComponentDescription()))
    assert to_sf(top) == "sendTo extends DATA  {}\nx extends  {}\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (42, "42"),
        (-7, "-7"),
        (Long(240), "240L"),
        (Long(-1), "-1L"),
        (True, "true"),
        (False, "false"),
        (NULL, "NULL"),
        (TBD, "TBD"),
        (1.0, "1.0"),
        (1.25, "1.25"),
        (1e10, "1.0E10"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1234567.0, "1234567.0"),
        (12345678.0, "1.2345678E7"),
        (0.1, "0.1"),
        (math.pi, "3.1415927"),  # a Float has single precision
        (Double(1.5), "1.5D"),
        (Double(math.pi), "3.141592653589793D"),
        (Double(1e-5), "1.0E-5D"),
        (Double(100.0), "100.0D"),
        (float("nan"), "NaN"),
        (Double(float("-inf")), "-InfinityD"),
        (ByteArray(b"\xab\x34"), "#HEX#AB34#"),
        ([], "[||]"),
        ([1, "a", [True, NULL], Long(3)], '[|1, "a", [|true, NULL|], 3L|]'),
    ],
)
def test_basic_values_print_as_smartfrog_does(value, text):
    assert value_text(value) == text


def test_strings_are_re_escaped():
    assert value_text('say "hi"\n\ttab\\') == '"say \\"hi\\"\\n\\ttab\\\\"'
    assert value_text("euro \u20ac é") == '"euro \\u20AC é"'
    assert value_text("x\x01") == '"x\\u0001"'


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("plain", "plain"),
        ("a.b-c+d@e#f~g$h%i^j&k", "a.b-c+d@e#f~g$h%i^j&k"),
        ("a name", '"a name"'),
        ("1st", '"1st"'),
        ("extends", '"extends"'),
        ("TBD", '"TBD"'),
        ("true", '"true"'),
        ("ATTRIB", '"ATTRIB"'),
        ("", '""'),
    ],
)
def test_names_that_are_not_words_are_quoted(name, text):
    assert to_sf(cd_of((name, 1))) == f"{text} 1;\n"


def test_tags_print_before_the_name():
    cd = ComponentDescription()
    cd.put("port", 8080, {"sfFinal", "b"})
    assert to_sf(cd) == "[ b sfFinal ] port 8080;\n"


@pytest.mark.parametrize(
    ("reference", "text"),
    [
        (ref(("ATTRIB", "x")), "x"),
        (ref(("HERE", "x")), "HERE x"),
        (ref(("ATTRIB", "a"), ("HERE", "b"), ("HERE", "c")), "a:b:c"),
        (ref("PARENT", ("ATTRIB", "v6"), lazy=True), "LAZY PARENT:ATTRIB v6"),
        (ref("PARENT", ("HERE", "sfConfig"), ("HERE", "link")), "PARENT:sfConfig:link"),
        (ref("ROOT", lazy=True), "LAZY ROOT"),
        (ref("THIS"), "THIS"),
        (ref("PROCESS", lazy=True), "LAZY PROCESS"),
        (ref(("PROPERTY", "java.home"), lazy=True), "LAZY PROPERTY java.home"),
        (ref(("IPROPERTY", "n")), "IPROPERTY n"),
        (ref(("ENVPROPERTY", "HOME")), "ENVPROPERTY HOME"),
        (ref(("IENVPROPERTY", "N")), "IENVPROPERTY N"),
        (ref(("CONSTANT", "a.B.C")), "CONSTANT a.B.C"),
        (ref(("HOST", "eb97202"), ("HERE", "p"), ("HERE", "name"), lazy=True), "LAZY HOST eb97202:p:name"),
        (ref(("HOST", "15.76.97.201"), ("HERE", "p")), 'HOST "15.76.97.201":p'),
        (ref(("ATTRIB", "x"), data=True), "DATA x"),
        (ref(("ATTRIB", "nosuch"), optional=True), "OPTIONAL nosuch"),
        (ref(("ATTRIB", "nosuch"), optional=True, default=99), "OPTIONAL  (99) nosuch"),
        (ref(("ATTRIB", "n"), optional=True, default="d", lazy=True), 'LAZY OPTIONAL  ("d") n'),
        (ref(("ATTRIB", "a b")), '"a b"'),
    ],
)
def test_references_print_like_reference_to_string(reference, text):
    assert reference_text(reference) == text


def test_apply_and_assert_print_their_context_unindented():
    function = cd_of(
        ("sfFunctionClass", "org.smartfrog.sfcore.languages.sf.functions.Vector"),
        ("unique1", "a"),
        ("unique2", ref(("ATTRIB", "pivot"), lazy=True)),
    )
    schema = cd_of(
        ("x", ApplyReference(cd_of(("sfFunctionClass", "C"), ("name", "x")))),
        ("sfFunctionClass", "org.smartfrog.sfcore.languages.sf.functions.CheckAssertions"),
    )
    top = cd_of(("inner", cd_of(("handlers", ApplyReference(function, lazy=True)))))
    top.put("schema", AssertReference(schema, lazy=True))
    top.put("d", ApplyReference(cd_of(("sfFunctionClass", "S")), data=True))
    assert to_sf(top) == (
        "inner extends  {\n"
        '  handlers LAZY APPLY {sfFunctionClass "org.smartfrog.sfcore.languages.sf.functions.Vector";\n'
        'unique1 "a";\n'
        "unique2 LAZY pivot;\n"
        "};\n"
        "}\n"
        'schema LAZY ASSERT {x APPLY {sfFunctionClass "C";\n'
        'name "x";\n'
        "};\n"
        'sfFunctionClass "org.smartfrog.sfcore.languages.sf.functions.CheckAssertions";\n'
        "};\n"
        'd DATA APPLY {sfFunctionClass "S";\n'
        "};\n"
    )


def test_description_inside_apply_is_indented_from_the_left_margin():
    function = cd_of(("sfFunctionClass", "F"), ("arg", cd_of(("a", 1))))
    top = cd_of(("outer", cd_of(("f", ApplyReference(function, lazy=True)))))
    assert to_sf(top) == (
        "outer extends  {\n"
        '  f LAZY APPLY {sfFunctionClass "F";\n'
        "arg extends  {\n"
        "  a 1;\n"
        "}\n"
        "};\n"
        "}\n"
    )


def test_unknown_python_value_is_a_description_error():
    with pytest.raises(DescriptionError):
        to_sf(cd_of(("x", object())))


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1.0"), (1e-3, "0.001"), (9999999.0, "9999999.0"), (1e7, "1.0E7"), (-0.0, "-0.0"), (1e300, "1.0E300")],
)
def test_java_double_layout(value, text):
    assert java_double(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.1, "1.1"), (16777216.0, "1.6777216E7"), (1e40, "Infinity"), (0.3, "0.3"), (2.5e3, "2500.0")],
)
def test_java_float_layout(value, text):
    assert java_float(value) == text


# -- JSON form -------------------------------------------------------------------------------


def sample() -> ComponentDescription:
    top = ComponentDescription()
    top.put("i", 1)
    top.put("l", Long(1))
    top.put("f", 1.0)
    top.put("d", Double(1.0))
    top.put("b", True)
    top.put("s", "1")
    top.put("n", NULL)
    top.put("t", TBD)
    top.put("bytes", ByteArray(b"\x00\xff"))
    top.put("v", [1, Long(2), [Double(3.0), NULL], "x"])
    top.put("tagged", 5, {"sfFinal", "x"})
    top.put("data", cd_of(("a", 1), eager=False))
    top.put("r", ref("PARENT", ("ATTRIB", "x"), lazy=True, optional=True, default=Long(3)))
    top.put("dr", ref(("HOST", "h"), ("HERE", "rootProcess"), data=True))
    top.put("apply", ApplyReference(cd_of(("sfFunctionClass", "F"), ("unique1", ref(("ATTRIB", "i")))), lazy=True))
    top.put("assert", AssertReference(cd_of(("sfFunctionClass", "C"), ("ok", True)), data=True))
    top.put(ref(("HERE", "a"), ("HERE", "b")), 42)
    return top


def test_json_round_trip_keeps_every_type_apart():
    original = sample()
    back = from_json(to_json(original))
    assert back == original
    assert list(back.attributes) == list(original.attributes)
    assert type(back["l"]) is Long and type(back["i"]) is int
    assert type(back["d"]) is Double and type(back["f"]) is float
    assert back["t"] is TBD and back["n"] is NULL
    assert back.tags["tagged"] == {"sfFinal", "x"}
    assert back["data"].eager is False and back["data"].parent is back
    assert isinstance(back["assert"], AssertReference) and back["assert"].data


def test_json_is_plain_json():
    text = to_json(sample())
    document = json.loads(text)

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, (str, int, float, bool))

    assert plain(document)
    assert document["description"]["$"] == "Component"


def test_special_floats_are_tagged_not_json_tokens():
    top = cd_of(("nan", float("nan")), ("inf", Double(float("inf"))))
    text = to_json(top)
    assert "NaN" not in text.replace('"NaN"', "")
    back = from_json(text)
    assert math.isnan(back["nan"]) and type(back["nan"]) is float
    assert back["inf"] == math.inf and type(back["inf"]) is Double


def test_prototypes_of_a_raw_description_survive():
    raw = ComponentDescription()
    raw.prototypes = [ref(("ATTRIB", "Prim")), cd_of(("x", 1))]
    back = from_data(to_data(raw))
    assert back.prototypes[0] == raw.prototypes[0]
    assert back.prototypes[1] == raw.prototypes[1]


BAD_DOCUMENTS = [
    "",
    "not json",
    "[]",
    '{"sfpy": 1}',
    '{"sfpy": 2, "description": {"$": "Component", "attributes": []}}',
    '{"sfpy": true, "description": {"$": "Component", "attributes": []}}',
    '{"sfpy": 1, "description": 3}',
    '{"sfpy": 1, "description": {"$": "Component"}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": {}}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [3]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": 1, "value": 1}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a"}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": 1, "x": 1}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": '
    '[{"name": "a", "value": 1}, {"name": "a", "value": 2}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": 1, "tags": "t"}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "eager": "yes", "attributes": []}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [], "attributes": []}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": NaN}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"x": 1}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"$": "Nope"}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"$": "Long", "value": 1.5}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"$": "Long"}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"$": "Double", "value": "x"}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"$": "ByteArray", "base64": "!!"}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"$": "Reference", "parts": "x"}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"$": "Reference", "parts": [["NOPE", "x"]]}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"$": "Reference", "parts": [["HERE"]]}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"$": "Reference", "parts": [["PARENT", "x"]]}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"$": "Reference", "parts": [], "lazy": 1}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": {"$": "Apply", "description": 1}}]}}',
    '{"sfpy": 1, "description": {"$": "Component", "attributes": [], "prototypes": [1]}}',
]


@pytest.mark.parametrize("text", BAD_DOCUMENTS)
def test_malformed_json_is_a_description_error(text):
    with pytest.raises(DescriptionError) as info:
        from_json(text)
    assert "invalid description JSON" in info.value.message


def test_deep_nesting_is_refused_cleanly():
    deep = (
        '{"sfpy": 1, "description": {"$": "Component", "attributes": [{"name": "a", "value": '
        + "[" * 50000
        + "]" * 50000
        + "}]}}"
    )
    with pytest.raises(DescriptionError):
        from_json(deep)
    nested = {"$": "Component", "attributes": []}
    for _ in range(MAX_DEPTH + 5):
        nested = {"$": "Component", "attributes": [{"name": "x", "value": nested}]}
    with pytest.raises(DescriptionError):
        from_data(nested)


def test_deep_but_legitimate_descriptions_travel():
    """As deep as the JSON form allows (the parser's nesting limit), in Python's default
    recursion limit."""
    top = ComponentDescription()
    node = top
    for _ in range(MAX_DEPTH - 2):
        child = ComponentDescription()
        node.put("x", child)
        node = child
    node.put("leaf", Long(1))
    again = from_json(to_json(top))
    assert to_sf(again) == to_sf(top)  # (== would recurse too deeply for the test itself)


# -- property: any description survives the JSON form ----------------------------------------

names = st.text(min_size=1, max_size=8)
part = st.one_of(
    st.builds(RefPart, st.sampled_from(["ATTRIB", "HERE", "HOST", "PROPERTY", "CONSTANT"]), names),
    st.builds(RefPart, st.sampled_from(["PARENT", "ROOT", "THIS", "PROCESS"])),
)
primitives = st.one_of(
    st.integers(),
    st.integers().map(Long),
    st.floats(allow_nan=False),
    st.floats(allow_nan=False).map(Double),
    st.booleans(),
    st.text(max_size=10),
    st.just(NULL),
    st.just(TBD),
    st.binary(max_size=8).map(ByteArray),
)
references = st.builds(
    lambda parts, lazy, data, optional, default: Reference(
        parts, lazy=lazy, data=data, optional=optional, default=default
    ),
    st.lists(part, min_size=1, max_size=4),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.one_of(st.just(NULL), st.integers(), st.text(max_size=4)),
)


def _descriptions(children):
    entries = st.lists(st.tuples(names, children, st.sets(names, max_size=2)), max_size=5)

    def build(items, eager):
        cd = ComponentDescription(eager=eager)
        for key, value, tags in items:
            cd.put(key, value, tags)
        return cd

    return st.builds(build, entries, st.booleans())


values = st.recursive(
    st.one_of(primitives, references),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        _descriptions(children),
        st.builds(ApplyReference, _descriptions(children), lazy=st.booleans(), data=st.booleans()),
        st.builds(AssertReference, _descriptions(children), lazy=st.booleans()),
    ),
    max_leaves=25,
)


@settings(max_examples=75, deadline=None)
@given(_descriptions(values))
def test_json_round_trip_property(cd):
    back = from_json(to_json(cd))
    assert back == cd
    assert to_sf(back) == to_sf(cd)


@settings(max_examples=100, deadline=None)
@given(values)
def test_data_round_trip_property(value):
    assert same_value(from_data(json.loads(json.dumps(to_data(value)))), value)
