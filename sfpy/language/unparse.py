"""Printing descriptions: SmartFrog's own layout and sfpy's JSON form.

:func:`to_sf` writes a (resolved) description the way SmartFrog's ``sfParse -d`` prints it,
character for character, so sfpy's output can be compared with the original parser's
(``ContextImpl.writeOn``, ``ComponentDescriptionImpl.writeOn``, ``Reference.toString``).

:func:`to_json` / :func:`from_json` are the lossless form: every SmartFrog type stays
distinct, and it is also the wire form daemons exchange, so :func:`from_json` trusts
nothing (see ``docs/json-form.md``).
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import struct
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sfpy.language.errors import DescriptionError
from sfpy.language.model import (
    BARE_PARTS,
    HERE,
    HOST,
    NAMED_PARTS,
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
)

__all__ = [
    "JSON_FORMAT",
    "MAX_DEPTH",
    "from_data",
    "from_json",
    "java_double",
    "java_float",
    "quote_name",
    "reference_text",
    "to_data",
    "to_json",
    "to_sf",
    "value_text",
]

# ------------------------------------------------------------------------------------------
# SmartFrog layout
# ------------------------------------------------------------------------------------------

# Characters SmartFrog's ContextImpl treats as name characters (the lexer's WORD alphabet).
_SPECIAL = frozenset(".-+@#~$%^&_")
# Characters written as they are inside strings without being name characters.
_OTHER = frozenset(" !'*()[]{}:;,<>?/|`=")
# Words a bare name may not be. SmartFrog's list, plus ATTRIB (which SmartFrog forgets, so
# that an attribute called ATTRIB would not re-parse).
_RESERVED = frozenset(
    "APPLY ASSERT ATTRIB DATA extends false HERE HOST PROPERTY IPROPERTY ENVPROPERTY "
    "IENVPROPERTY CONSTANT LAZY NULL OPTIONAL PARENT PROCESS ROOT TBD THIS true IF THEN "
    "ELSE FI SWITCH ENDSWITCH VAR".split()
)
_ESCAPES = {
    "\\": "\\\\",
    "\n": "\\n",
    "\t": "\\t",
    "\b": "\\b",
    "\r": "\\r",
    "\f": "\\f",
    '"': '\\"',
}


def _is_letter(c: str) -> bool:
    o = ord(c)
    return (
        0x61 <= o <= 0x7A
        or 0x41 <= o <= 0x5A
        or o in (0x24, 0x5F, 0xAA, 0xB5, 0xBA)
        or 0xA1 <= o <= 0xA5
        or 0xC0 <= o <= 0xD6
        or 0xD8 <= o <= 0xF6
        or 0xF8 <= o <= 0xFF
    )


def _is_name_char(c: str) -> bool:
    return _is_letter(c) or "0" <= c <= "9" or c in _SPECIAL


def _escape(text: str) -> str:
    """SmartFrog's ``unfixEscapes``: control and non-Latin-1 characters become escapes."""
    if _PLAIN_TEXT.fullmatch(text):  # the common case, without a loop per character
        return text
    out: list[str] = []
    for c in text:
        if _is_name_char(c) or c in _OTHER:
            out.append(c)
        elif c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif 0xD800 <= ord(c) <= 0xDFFF:
            # A lone surrogate (from an escape like \\uD800) is one UTF-16 unit, as in Java.
            out.append(f"\\u{ord(c):04X}")
        else:
            # Java escapes UTF-16 code units, so astral characters become a surrogate pair.
            units = c.encode("utf-16-be")
            for i in range(0, len(units), 2):
                out.append(f"\\u{units[i]:02X}{units[i + 1]:02X}")
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _is_word(name: str) -> bool:
    return bool(name) and _is_letter(name[0]) and all(_is_name_char(c) for c in name)


# Characters _escape keeps as they are; built from the same predicates, once.
_PLAIN_TEXT = re.compile(
    "[" + "".join(re.escape(chr(o)) for o in range(256) if _is_name_char(chr(o)) or chr(o) in _OTHER) + "]*"
)


def quote_name(name: Any) -> str:
    """An attribute name as SmartFrog writes it: bare when it is a WORD, else quoted."""
    text = reference_text(name) if isinstance(name, Reference) else str(name)
    if _is_word(text) and text not in _RESERVED:
        return text
    return f'"{_escape(text)}"'


def _java_layout(digits: str, exponent: int) -> str:
    """Java's Double/Float.toString layout for digits ``d.ddd × 10^exponent``."""
    if -3 <= exponent < 7:
        if exponent >= 0:
            whole = digits[: exponent + 1].ljust(exponent + 1, "0")
            frac = digits[exponent + 1 :] or "0"
        else:
            whole = "0"
            frac = "0" * (-exponent - 1) + digits
        return f"{whole}.{frac}"
    return f"{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    return None


# (significand bits, smallest normal exponent) of IEEE binary32 and binary64.
_FLOAT_FORMAT = (24, -126)
_DOUBLE_FORMAT = (53, -1022)


def _decimal_exponent(x: Fraction) -> int:
    """``floor(log10(x))`` for ``x > 0``, exactly."""
    estimate = math.floor(math.log10(x.numerator) - math.log10(x.denominator))
    while Fraction(10) ** estimate > x:
        estimate -= 1
    while Fraction(10) ** (estimate + 1) <= x:
        estimate += 1
    return estimate


def _shortest(magnitude: float, form: tuple[int, int], start: int = 1) -> tuple[str, int]:
    """Java's (JDK 19+) ``toString`` digits of a positive finite binary float, exactly.

    Among the decimals that read back as ``magnitude`` (round half to even) take those with
    the fewest digits, but at least two when one would do, and of those the one closest to
    ``magnitude`` (an even last digit on a tie). That rule is why Java prints ``4.9E-324``
    and ``1.4E-45`` where a plain shortest form would say ``5E-324`` / ``1E-45``.
    """
    bits, min_exponent = form
    x = Fraction(magnitude)
    _, binary_exponent = math.frexp(magnitude)  # magnitude = f × 2^binary_exponent, ½ ≤ f < 1
    top = max(binary_exponent - 1, min_exponent)  # exponent of the leading bit (normal or not)
    ulp = Fraction(2) ** (top - bits + 1)
    significand = x / ulp  # an integer
    # At a power of two the gap to the next smaller float is half the gap above.
    below = ulp / 2 if significand == 2 ** (bits - 1) and top > min_exponent else ulp
    low, high = x - below / 2, x + ulp / 2
    inclusive = significand.numerator % 2 == 0

    def reads_back(candidate: Fraction) -> bool:
        return low <= candidate <= high if inclusive else low < candidate < high

    exponent = _decimal_exponent(x)
    length = start
    while True:
        scale = Fraction(10) ** (exponent - length + 1)
        floor = math.floor(x / scale)
        hits = [d for d in (floor, floor + 1) if d > 0 and reads_back(d * scale)]
        if hits and length == 1:
            length = 2  # one digit would do: Java picks the closest of up to two
            continue
        if hits:
            best = min(hits, key=lambda d: (abs(d * scale - x), d % 2))
            text = str(best)
            return text.rstrip("0") or "0", len(text) - 1 + exponent - length + 1
        length += 1


def java_double(value: float) -> str:
    """``Double.toString`` (JDK 19+): the shortest digits that read back as the same double."""
    special = _special(value)
    if special is not None:
        return special
    sign = "-" if value < 0 else ""
    # Python's repr has the shortest length; _shortest applies Java's choice among those.
    shortest = len(Decimal(repr(abs(float(value)))).normalize().as_tuple().digits)
    digits, exponent = _shortest(abs(float(value)), _DOUBLE_FORMAT, shortest)
    return sign + _java_layout(digits, exponent)


def _to_float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def java_float(value: float) -> str:
    """``Float.toString`` of ``value`` rounded to single precision (SmartFrog's Float).

    A value too large for a Float prints as Java would hold it: ``Infinity``. The parser
    refuses such literals, so only the JSON form or Python code can bring one here.
    """
    try:
        single = _to_float32(float(value))
    except OverflowError:
        return "Infinity" if value > 0 else "-Infinity"
    special = _special(single)
    if special is not None:
        return special
    sign = "-" if single < 0 else ""
    return sign + _java_layout(*_shortest(abs(single), _FLOAT_FORMAT))


def _part_name(name: Any) -> str:
    text = str(name)
    return text if _is_word(text) and text not in _RESERVED else f'"{_escape(text)}"'


def _part_text(part: RefPart, index: int) -> str:
    if part.kind in BARE_PARTS:
        return part.kind
    name = _part_name(part.name)
    if part.kind == HERE:
        return f"HERE {name}" if index == 0 else name
    if part.kind == "ATTRIB":
        return name if index == 0 else f"ATTRIB {name}"
    if part.kind == HOST:
        return f"HOST {name}"
    return f"{part.kind} {name}"


def reference_text(ref: Reference) -> str:
    """SmartFrog's ``Reference.toString`` (``LAZY OPTIONAL  (3) DATA PARENT:x``).

    The double space after ``OPTIONAL`` when a default is shown is SmartFrog's own.
    """
    prefix = "LAZY " if ref.lazy else ""
    if ref.optional:
        prefix += "OPTIONAL "
        if ref.default is not NULL:
            prefix += f" ({value_text(ref.default)}) "
    if ref.data:
        prefix += "DATA "
    return prefix + ":".join(_part_text(p, i) for i, p in enumerate(ref.parts))


def value_text(value: Any) -> str:
    """A value as SmartFrog's ``writeBasicValueOn`` writes it (descriptions as their context)."""
    if isinstance(value, str):
        return f'"{_escape(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Long):
        return f"{int(value)}L"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, Double):
        return java_double(value) + "D"
    if isinstance(value, float):
        return java_float(value)
    if isinstance(value, list):
        return "[|" + ", ".join(value_text(v) for v in value) + "|]"
    if value is NULL:
        return "NULL"
    if value is TBD:
        return "TBD"
    if isinstance(value, ByteArray):
        return f"#HEX#{bytes(value).hex().upper()}#"
    if isinstance(value, Reference):
        return reference_text(value)
    if isinstance(value, ApplyReference):
        prefix = ("LAZY " if value.lazy else "") + ("DATA " if value.data else "")
        return f"{prefix}{value.keyword} {{{_context_text(value.description, 0)}}}"
    if isinstance(value, ComponentDescription):
        return _context_text(value, 0)
    raise DescriptionError(
        f"a value of type {type(value).__name__} cannot be written as SmartFrog text"
    )


def _context_text(cd: ComponentDescription, indent: int) -> str:
    out: list[str] = []
    _write_context(out, cd, indent)
    return "".join(out)


def _write_context(out: list[str], cd: ComponentDescription, indent: int) -> None:
    """SmartFrog's layout of ``cd``'s attributes, with an explicit stack (any nesting depth)."""
    work: list[tuple[ComponentDescription, Any, int]] = [(cd, iter(cd.attributes.items()), indent)]
    while work:
        current, items, level = work[-1]
        item = next(items, None)
        if item is None:
            work.pop()
            if work:  # close the description this one was the value of
                out.append("  " * work[-1][2] + "}\n")
            continue
        key, value = item
        pad = "  " * level
        out.append(pad)
        tags = current.tags.get(key)
        if tags:
            out.append("[ " + "".join(f"{t} " for t in sorted(tags)) + "] ")
        out.append(quote_name(key))
        out.append(" ")
        if isinstance(value, ComponentDescription):
            out.append("extends DATA " if not value.eager else "extends ")
            if value.attributes:
                out.append(" {\n")
                work.append((value, iter(value.attributes.items()), level + 1))
                continue
            out.append(" {}")
        else:
            out.append(value_text(value))
            out.append(";")
        out.append("\n")


def to_sf(cd: ComponentDescription) -> str:
    """``cd``'s attributes as ``sfParse -d`` prints a resolved sfConfig (one per line)."""
    return _context_text(cd, 0)


# ------------------------------------------------------------------------------------------
# JSON form
# ------------------------------------------------------------------------------------------

JSON_FORMAT = 1
# Nesting of values in the JSON form; hostile documents are refused beyond it. The writer,
# the reader and the json module recurse, so this stays well inside Python's default
# recursion limit (sfpy never raises it): as deep as the parser's own nesting limit.
MAX_DEPTH = 200


_TAG = "$"
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _float_data(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float(value)


def to_data(value: Any) -> Any:
    """``value`` as plain JSON-able data (dict/list/str/int/float/bool/None)."""
    return _to_data(value, 0)


def _to_data(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise DescriptionError(f"description nested deeper than {MAX_DEPTH} levels", phase="parse")
    depth += 1
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, Long):
        return {_TAG: "Long", "value": int(value)}
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Double):
        return {_TAG: "Double", "value": _float_data(value)}
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return {_TAG: "Float", "value": _float_data(value)}
        return float(value)
    if isinstance(value, list):
        return [_to_data(v, depth) for v in value]
    if value is NULL:
        return None
    if value is TBD:
        return {_TAG: "TBD"}
    if isinstance(value, ByteArray):
        return {_TAG: "ByteArray", "base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Reference):
        return _reference_data(value, depth)
    if isinstance(value, ApplyReference):
        data: dict[str, Any] = {_TAG: "Assert" if isinstance(value, AssertReference) else "Apply"}
        if value.lazy:
            data["lazy"] = True
        if value.data:
            data["data"] = True
        data["description"] = _to_data(value.description, depth)
        return data
    if isinstance(value, ComponentDescription):
        return _component_data(value, depth)
    raise DescriptionError(
        f"a value of type {type(value).__name__} has no JSON form", phase="parse"
    )


def _reference_data(ref: Reference, depth: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        _TAG: "Reference",
        "parts": [[p.kind] if p.name is None else [p.kind, str(p.name)] for p in ref.parts],
    }
    for flag in ("lazy", "data", "optional"):
        if getattr(ref, flag):
            data[flag] = True
    if ref.default is not NULL:
        data["default"] = _to_data(ref.default, depth)
    return data


def _component_data(cd: ComponentDescription, depth: int) -> dict[str, Any]:
    attributes = []
    for key, value in cd.attributes.items():
        entry: dict[str, Any] = {
            "name": key if isinstance(key, str) else _to_data(key, depth),
            "value": _to_data(value, depth),
        }
        tags = cd.tags.get(key)
        if tags:
            entry["tags"] = sorted(tags)
        attributes.append(entry)
    data: dict[str, Any] = {_TAG: "Component", "eager": cd.eager, "attributes": attributes}
    if cd.prototypes:
        data["prototypes"] = [_to_data(p, depth) for p in cd.prototypes]
    return data


def to_json(cd: ComponentDescription, *, indent: int | None = None) -> str:
    """``cd`` in the JSON form (plain JSON text, no NaN/Infinity tokens)."""
    if not isinstance(cd, ComponentDescription):
        raise DescriptionError("to_json needs a ComponentDescription", phase="parse")
    document = {"sfpy": JSON_FORMAT, "description": to_data(cd)}
    try:
        text = json.dumps(document, indent=indent, ensure_ascii=False, allow_nan=False)
    except RecursionError:
        raise DescriptionError(
            "the description is nested too deeply for its JSON form", phase="parse"
        ) from None
    # Lone surrogates cannot be encoded as UTF-8: write them as JSON escapes (which can only
    # occur inside strings), which read back as the same lone surrogates.
    return _SURROGATE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class _Reader:
    """Strict reader of the JSON form; every complaint names where in the document it is."""

    def fail(self, where: str, message: str) -> DescriptionError:
        return DescriptionError(f"invalid description JSON at {where}: {message}", phase="parse")

    def keys(self, data: dict, where: str, required: set[str], optional: set[str]) -> None:
        missing = required - data.keys()
        if missing:
            raise self.fail(where, f"missing {', '.join(sorted(missing))}")
        extra = data.keys() - required - optional
        if extra:
            raise self.fail(where, f"unexpected key {sorted(extra)[0]!r}")

    def flag(self, data: dict, key: str, where: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", "must be true or false")
        return value

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, str) and value in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, 'must be a number (or "NaN", "Infinity", "-Infinity")')
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(where, "must be finite")
        return float(value)

    def value(self, data: Any, where: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(where, f"nested deeper than {MAX_DEPTH} levels")
        depth += 1
        if data is None:
            return NULL
        if isinstance(data, (str, bool)):
            return data
        if isinstance(data, int):
            return int(data)
        if isinstance(data, float):
            if not math.isfinite(data):
                raise self.fail(where, "non-finite number")
            return data
        if isinstance(data, list):
            return [self.value(item, f"{where}[{i}]", depth) for i, item in enumerate(data)]
        if not isinstance(data, dict):
            raise self.fail(where, f"unexpected {type(data).__name__}")
        kind = data.get(_TAG)
        if kind == "Component":
            return self.component(data, where, depth)
        if kind == "Long":
            self.keys(data, where, {_TAG, "value"}, set())
            number = data["value"]
            if isinstance(number, bool) or not isinstance(number, int):
                raise self.fail(f"{where}.value", "a Long must be an integer")
            return Long(number)
        if kind in ("Double", "Float"):
            self.keys(data, where, {_TAG, "value"}, set())
            number = self.number(data["value"], f"{where}.value")
            return Double(number) if kind == "Double" else number
        if kind == "TBD":
            self.keys(data, where, {_TAG}, set())
            return TBD
        if kind == "ByteArray":
            self.keys(data, where, {_TAG, "base64"}, set())
            text = data["base64"]
            if not isinstance(text, str):
                raise self.fail(f"{where}.base64", "must be a string")
            try:
                return ByteArray(base64.b64decode(text.encode("ascii"), validate=True))
            except (ValueError, UnicodeEncodeError):
                raise self.fail(f"{where}.base64", "not valid base64") from None
        if kind == "Reference":
            return self.reference(data, where, depth)
        if kind in ("Apply", "Assert"):
            self.keys(data, where, {_TAG, "description"}, {"lazy", "data"})
            description = data["description"]
            if not isinstance(description, dict) or description.get(_TAG) != "Component":
                raise self.fail(f"{where}.description", "must be a Component")
            cls = AssertReference if kind == "Assert" else ApplyReference
            return cls(
                self.component(description, f"{where}.description", depth),
                lazy=self.flag(data, "lazy", where),
                data=self.flag(data, "data", where),
            )
        raise self.fail(
            where, f"unknown value kind {kind!r}" if kind is not None else 'object without "$"'
        )

    def reference(self, data: dict, where: str, depth: int) -> Reference:
        self.keys(data, where, {_TAG, "parts"}, {"lazy", "data", "optional", "default"})
        parts_data = data["parts"]
        if not isinstance(parts_data, list):
            raise self.fail(f"{where}.parts", "must be a list")
        parts = []
        for i, part in enumerate(parts_data):
            at = f"{where}.parts[{i}]"
            if not isinstance(part, list) or not part or not isinstance(part[0], str):
                raise self.fail(at, "must be [KIND] or [KIND, name]")
            kind = part[0]
            if kind in NAMED_PARTS:
                if len(part) != 2 or not isinstance(part[1], str):
                    raise self.fail(at, f"{kind} needs exactly one name")
                parts.append(RefPart(kind, part[1]))
            elif kind in BARE_PARTS:
                if len(part) != 1:
                    raise self.fail(at, f"{kind} takes no name")
                parts.append(RefPart(kind))
            else:
                raise self.fail(at, f"unknown reference part {kind!r}")
        default = (
            self.value(data["default"], f"{where}.default", depth) if "default" in data else NULL
        )
        return Reference(
            parts,
            lazy=self.flag(data, "lazy", where),
            data=self.flag(data, "data", where),
            optional=self.flag(data, "optional", where),
            default=default,
        )

    def component(self, data: dict, where: str, depth: int) -> ComponentDescription:
        self.keys(data, where, {_TAG, "attributes"}, {"eager", "prototypes"})
        cd = ComponentDescription(
            eager=self.flag({"eager": data.get("eager", True)}, "eager", where)
        )
        attributes = data["attributes"]
        if not isinstance(attributes, list):
            raise self.fail(f"{where}.attributes", "must be a list")
        for i, entry in enumerate(attributes):
            at = f"{where}.attributes[{i}]"
            if not isinstance(entry, dict):
                raise self.fail(at, "must be an object")
            self.keys(entry, at, {"name", "value"}, {"tags"})
            name = entry["name"]
            if isinstance(name, dict) and name.get(_TAG) == "Reference":
                name = self.reference(name, f"{at}.name", depth)
            elif not isinstance(name, str):
                raise self.fail(f"{at}.name", "must be a string (or a placement Reference)")
            if name in cd.attributes:
                raise self.fail(f"{at}.name", f"attribute {name!r} appears twice")
            tags = entry.get("tags", [])
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise self.fail(f"{at}.tags", "must be a list of strings")
            cd.put(name, self.value(entry["value"], f"{at}.value", depth), set(tags))
        prototypes = data.get("prototypes", [])
        if not isinstance(prototypes, list):
            raise self.fail(f"{where}.prototypes", "must be a list")
        for i, proto in enumerate(prototypes):
            value = self.value(proto, f"{where}.prototypes[{i}]", depth)
            if not isinstance(value, (Reference, ComponentDescription)) or isinstance(
                value, ApplyReference
            ):
                raise self.fail(f"{where}.prototypes[{i}]", "must be a Reference or a Component")
            if isinstance(value, ComponentDescription):
                value.parent = cd
            cd.prototypes.append(value)
        return cd


def from_data(data: Any) -> Any:
    """The value that :func:`to_data` turned into ``data``; DescriptionError if malformed."""
    try:
        return _Reader().value(data, "$", 0)
    except RecursionError:
        raise DescriptionError(
            f"invalid description JSON: nested deeper than {MAX_DEPTH} levels", phase="parse"
        ) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def from_json(text: str | bytes) -> ComponentDescription:
    """The description in ``text`` (as written by :func:`to_json`); strict, never trusting."""
    try:
        document = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except RecursionError:
        raise DescriptionError(
            "invalid description JSON: nested too deeply", phase="parse"
        ) from None
    except (ValueError, TypeError) as exc:
        raise DescriptionError(f"invalid description JSON: {exc}", phase="parse") from None
    if not isinstance(document, dict) or set(document) != {"sfpy", "description"}:
        raise DescriptionError(
            'invalid description JSON: expected {"sfpy": 1, "description": {...}}', phase="parse"
        )
    if document["sfpy"] != JSON_FORMAT or isinstance(document["sfpy"], bool):
        raise DescriptionError(
            f"invalid description JSON: unsupported format {document['sfpy']!r}", phase="parse"
        )
    description = document["description"]
    if not isinstance(description, dict) or description.get(_TAG) != "Component":
        raise DescriptionError("invalid description JSON at $: must be a Component", phase="parse")
    return from_data(description)
