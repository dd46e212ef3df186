"""The function library: what ``sfFunctionClass`` names (operators, ``[a, b]``, IF, SWITCH…).

A function is found by its ``sfFunctionClass``: SmartFrog's Java class names are the
language's names for functions (``org.smartfrog.sfcore.languages.sf.functions.Sum``), so the
last dotted segment is what counts (``Sum``); the template names of ``functions.sf``
(``sum``, ``concat``, ``formatString``…) are accepted too.

Every function receives the application's parameters already resolved, in written order,
without ``sfFunctionClass``, and follows SmartFrog's Java behaviour:

* ``Sum Product Minus Divide Mod`` and ``GE GT LE LT`` promote numbers as Java does
  (Integer < Long < Float < Double); Integer and Long arithmetic wraps around at 32/64 bits and
  integer division truncates toward zero; a Float result is rounded to single precision.
  The n-ary ones fold over *all* parameters from left to right (one parameter is returned as
  it is).
* ``Concatenate`` joins the Java ``toString`` of its parameters (:func:`java_string`).
* ``EQ``/``NE`` compare as Java's ``equals``: type-strict (``1`` is not ``1L``).
* ``IfThenElse`` evaluates both branches (they are parameters) and picks one.
* ``Next`` (a counter shared by the whole process) and ``Random`` (Java's generator, seedable)
  keep state between calls; :func:`reset_state` starts them afresh.
* ``UserInput`` reads a line from a terminal; without one it takes ``default`` (and fails
  when there is none) instead of waiting.

Register more with :func:`register_function`.
"""

from __future__ import annotations

import logging
import math
import operator
import shlex
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sfpy.errors import SfpyError
from sfpy.language.errors import DescriptionError
from sfpy.language.model import (
    NULL,
    TBD,
    ApplyReference,
    ByteArray,
    ComponentDescription,
    Double,
    Long,
    Reference,
    SourcePosition,
    same_value,
    type_name,
)
from sfpy.language.references import (
    ResolutionError,
    _Deeper,
    path_text,
    reference_text,
)

__all__ = [
    "Call",
    "FunctionError",
    "call_function",
    "construct_function",
    "find_function",
    "java_string",
    "register_function",
    "reset_state",
]

log = logging.getLogger(__name__)

FUNCTION_CLASS = "sfFunctionClass"
FUNCTION_PHASE = "phase.function"
FUNCTION_LAZY = "sfFunctionLazy"


class FunctionError(ResolutionError):
    """A function was given parameters it cannot work with."""


@dataclass
class Call:
    """One evaluation: the parameters and where the application is."""

    name: str  # the function's short name (``Sum``)
    params: dict[Any, Any]
    description: ComponentDescription  # the application's own description (its parameters)
    holder: Any  # the node that holds the application (references start there)
    resolver: Any  # the Resolver doing the work (for functions that resolve references)
    position: SourcePosition | None = None

    def fail(self, message: str) -> FunctionError:
        return FunctionError(f"{self.name}: {message}", position=self.position)

    @property
    def attribute(self) -> Any:
        """The name of the attribute the application is the value of (for prompts), if known."""
        holder = self.holder
        if isinstance(holder, ComponentDescription):
            for key, value in holder.attributes.items():
                if isinstance(value, ApplyReference) and value.description is self.description:
                    return key
        return None


Function = Callable[[Call], Any]
_FUNCTIONS: dict[str, Function] = {}
_ALIASES: dict[str, str] = {}


def register_function(name: str, function: Function, *aliases: str) -> None:
    """Make ``function`` the implementation of class ``…name`` (and of ``aliases``)."""
    _FUNCTIONS[name] = function
    for alias in aliases:
        _ALIASES[alias.lower()] = name


def find_function(class_name: str) -> tuple[str, Function] | None:
    """The (short name, implementation) for an ``sfFunctionClass`` value, or None."""
    short = class_name.rsplit(".", 1)[-1]
    if short in _FUNCTIONS:
        return short, _FUNCTIONS[short]
    alias = _ALIASES.get(short.lower())
    if alias is not None:
        return alias, _FUNCTIONS[alias]
    return None


def call_function(
    comp: ComponentDescription,
    params: dict[Any, Any],
    holder: Any,
    resolver: Any,
    position: SourcePosition | None = None,
) -> Any:
    """Run the function ``comp`` names on ``params``; errors become ResolutionError."""
    class_name = comp.attributes.get(FUNCTION_CLASS)
    if not isinstance(class_name, str):
        raise FunctionError(
            f"function class is not a string: sfFunctionClass is a {type_name(class_name)}"
            if class_name is not None
            else "a function application needs an sfFunctionClass",
            position=position,
        )
    found = find_function(class_name)
    if found is None:
        raise FunctionError(
            f"unknown function class {class_name!r} (sfFunctionClass): sfpy has no function "
            f"named {class_name.rsplit('.', 1)[-1]!r}",
            position=position,
        )
    short, function = found
    call = Call(short, params, comp, holder, resolver, position)
    try:
        return function(call)
    except (DescriptionError, _Deeper, RecursionError):
        raise
    except Exception as error:  # noqa: BLE001 - a user's function must not leak a traceback
        raise FunctionError(f"{short} failed: {error}", position=position) from None


def reset_state() -> None:
    """Start ``Next`` and ``Random`` afresh (each process starts fresh, as a JVM does)."""
    global _next_last, _random
    with _STATE_LOCK:
        _next_last = -1
        _random = None


# ---------------------------------------------------------------------------------------------
# Java's string forms of values
# ---------------------------------------------------------------------------------------------


def java_string(value: Any) -> str:
    """``value.toString()`` as SmartFrog's Java would write it (used by Concatenate)."""
    from sfpy.language import unparse

    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, Double):
        return unparse.java_double(value)
    if isinstance(value, float):
        return unparse.java_float(value)
    if isinstance(value, list):
        return "[" + ", ".join(java_string(item) for item in value) + "]"
    if value is NULL:
        return "SFNull"
    if value is TBD:
        return "TBD"
    if isinstance(value, Reference):
        return reference_text(value)
    if isinstance(value, (ApplyReference, ByteArray)):
        return unparse.value_text(value)
    if isinstance(value, ComponentDescription):
        return "extends  {\n" + unparse.to_sf(value) + "}"
    return str(value)


# ---------------------------------------------------------------------------------------------
# Numbers, Java style
# ---------------------------------------------------------------------------------------------

_INT, _LONG, _FLOAT, _DOUBLE = 0, 1, 2, 3


def _kind(call: Call, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise call.fail(f"illegal numeric parameter: {type_name(value)} ({java_string(value)})")
    if isinstance(value, Double):
        return _DOUBLE
    if isinstance(value, float):
        return _FLOAT
    if isinstance(value, Long):
        return _LONG
    return _INT


def _wrap(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _single(value: float) -> float:
    """A Float result: rounded to single precision, kept as the shortest decimal that reads back."""
    from sfpy.language.unparse import java_float

    if math.isnan(value) or math.isinf(value):
        return value
    try:
        struct.pack("<f", value)
    except OverflowError:
        return math.copysign(math.inf, value)
    return float(java_float(value))


def _number(kind: int, value: Any) -> Any:
    if kind == _INT:
        return _wrap(int(value), 32)
    if kind == _LONG:
        return Long(_wrap(int(value), 64))
    if kind == _FLOAT:
        return _single(float(value))
    return Double(float(value))


def _float_divide(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


_SAME_IN_EVERY_KIND = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def _arith(call: Call, op: str, a: Any, b: Any) -> Any:
    """Java arithmetic in the wider kind of the two operands (int division truncates)."""
    kind = max(_kind(call, a), _kind(call, b))
    if kind <= _LONG:
        x, y = int(a), int(b)
        if op in _SAME_IN_EVERY_KIND:
            return _number(kind, _SAME_IN_EVERY_KIND[op](x, y))
        if y == 0:
            raise call.fail(f"division by zero ({x} {op} 0)")
        q = abs(x) // abs(y)
        q = q if (x >= 0) == (y >= 0) else -q
        return _number(kind, q if op == "/" else x - q * y)
    u, v = float(a), float(b)
    if op in _SAME_IN_EVERY_KIND:
        r = _SAME_IN_EVERY_KIND[op](u, v)
    elif op == "/":
        r = _float_divide(u, v)
    else:
        r = math.nan if v == 0 or math.isinf(u) else math.fmod(u, v)
    return _number(kind, r)


def _fold(call: Call, step: Callable[[Any, Any], Any]) -> Any:
    """BaseOperator: the first parameter, combined with each next one in order."""
    values = list(call.params.values())
    if not values:
        raise call.fail("needs at least one parameter")
    result = values[0]
    for value in values[1:]:
        result = step(result, value)
    return result


def _binary(call: Call) -> tuple[Any, Any]:
    for name in ("left", "right"):
        if name not in call.params:
            raise call.fail(f"missing parameter '{name}'")
    return call.params["left"], call.params["right"]


def _sum(call: Call) -> Any:
    return _fold(call, lambda a, b: _arith(call, "+", a, b))


def _product(call: Call) -> Any:
    return _fold(call, lambda a, b: _arith(call, "*", a, b))


def _minus(call: Call) -> Any:
    return _arith(call, "-", *_binary(call))


def _divide(call: Call) -> Any:
    return _arith(call, "/", *_binary(call))


def _mod(call: Call) -> Any:
    left, right = _binary(call)
    for value in (left, right):
        if _kind(call, value) > _LONG:
            raise call.fail(f"illegal integer parameter: {type_name(value)} ({java_string(value)})")
    return _arith(call, "%", left, right)


def _compare(op: Callable[[Any, Any], bool]) -> Function:
    def compare(call: Call) -> bool:
        left, right = _binary(call)
        kind = max(_kind(call, left), _kind(call, right))
        if kind <= _LONG:
            return op(int(left), int(right))
        if kind == _FLOAT:
            return op(_single(float(left)), _single(float(right)))
        return op(float(left), float(right))

    return compare


def _java_equals(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and type(a) is type(b):
        if math.isnan(a) and math.isnan(b):
            return True
    if isinstance(a, ComponentDescription) or isinstance(b, ComponentDescription):
        return a is b or (type(a) is type(b) and a == b)
    return same_value(a, b)


def _eq(call: Call) -> bool:
    return _java_equals(*_binary(call))


def _ne(call: Call) -> bool:
    return not _java_equals(*_binary(call))


# ---------------------------------------------------------------------------------------------
# Strings and vectors
# ---------------------------------------------------------------------------------------------


def _concatenate(call: Call) -> Any:
    return _fold(call, lambda a, b: java_string(a) + java_string(b))


def _shell_quote(call: Call) -> str:
    """ShellQuote (sfpy's own): each parameter, in order, as one bash word that bash reads back
    unchanged, whatever it holds (``;``, ``$(…)``, quotes, newlines, nothing); a vector gives
    one word per element; the words are joined by spaces. For values put into a Script line."""
    words: list[str] = []
    for value in call.params.values():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, (list, ComponentDescription)) or item is NULL:
                raise call.fail(f"cannot quote a {type_name(item)} as a shell word")
            words.append(shlex.quote(java_string(item)))
    return " ".join(words)


def _append(call: Call) -> list:
    result: list = []
    for key, value in call.params.items():
        if isinstance(value, list):
            result.extend(value)
        else:
            log.debug("Append: %s=%r ignored, not a vector", key, value)
    return result


def _vector(call: Call) -> list:
    result = []
    for value in call.params.values():
        if isinstance(value, ComponentDescription):
            value.parent = None
        result.append(value)
    return result


def _format(call: Call) -> str:
    text = call.params.get("format", "")
    if not isinstance(text, str):
        raise call.fail(f"'format' must be a string, found {type_name(text)}")
    for index in range(10):
        marker = f"${index}"
        if marker not in text:
            continue
        value = call.params.get(f"s{index}", NULL)
        if value is NULL and f"s{index}" not in call.params:
            raise call.fail(f"the format uses {marker} but there is no parameter s{index}")
        text = text.replace(marker, value if isinstance(value, str) else "")
    return text


# ---------------------------------------------------------------------------------------------
# Booleans and conditionals
# ---------------------------------------------------------------------------------------------


def _boolean(call: Call, value: Any) -> bool:
    if not isinstance(value, bool):
        raise call.fail(f"illegal boolean parameter: {type_name(value)} ({java_string(value)})")
    return value


def _and(call: Call) -> Any:
    return _fold(call, lambda a, b: _boolean(call, a) and _boolean(call, b))


def _or(call: Call) -> Any:
    return _fold(call, lambda a, b: _boolean(call, a) or _boolean(call, b))


def _xor(call: Call) -> Any:
    return _fold(call, lambda a, b: _boolean(call, a) != _boolean(call, b))


def _implies(call: Call) -> Any:
    return _fold(call, lambda a, b: (not _boolean(call, a)) or _boolean(call, b))


def _not(call: Call) -> bool:
    if "data" not in call.params:
        raise call.fail("missing parameter 'data'")
    return not _boolean(call, call.params["data"])


def _if_then_else(call: Call) -> Any:
    for name in ("if", "then", "else"):
        if name not in call.params:
            raise call.fail(f"missing parameter '{name}'")
    return call.params["then"] if _boolean(call, call.params["if"]) else call.params["else"]


def _switch(call: Call) -> Any:
    index = 0
    while f"IF{index}" in call.params:
        if _boolean(call, call.params[f"IF{index}"]):
            if f"THEN{index}" not in call.params:
                raise call.fail(f"missing parameter 'THEN{index}'")
            return call.params[f"THEN{index}"]
        index += 1
    return NULL


# ---------------------------------------------------------------------------------------------
# Stateful and environmental functions
# ---------------------------------------------------------------------------------------------

# Next and Random are process-wide, as SmartFrog's are JVM-wide; descriptions resolved in
# several threads at once share them, so every change happens under this lock.
_STATE_LOCK = threading.Lock()
_next_last = -1


def _next(call: Call) -> int:
    global _next_last
    base = call.params.get("base", 0)
    if isinstance(base, bool) or not isinstance(base, int) or isinstance(base, Long):
        raise call.fail(f"'base' must be an Integer, found {type_name(base)}")
    with _STATE_LOCK:
        if base > _next_last:
            _next_last = int(base)
        else:
            _next_last += 1
        return _next_last


class JavaRandom:
    """``java.util.Random``'s generator, so a seeded ``random`` gives Java's sequence."""

    _MULTIPLIER = 0x5DEECE66D
    _MASK = (1 << 48) - 1

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            seed = time.time_ns()
        self._seed = (seed ^ self._MULTIPLIER) & self._MASK

    def next_bits(self, bits: int) -> int:
        self._seed = (self._seed * self._MULTIPLIER + 0xB) & self._MASK
        return self._seed >> (48 - bits)

    def next_float(self) -> float:
        return self.next_bits(24) / float(1 << 24)


_random: JavaRandom | None = None


def _int_param(call: Call, name: str, default: int) -> int:
    value = call.params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or isinstance(value, Long):
        raise call.fail(f"'{name}' must be an Integer, found {type_name(value)}")
    return int(value)


def _random_function(call: Call) -> Any:
    global _random
    with _STATE_LOCK:
        if _random is None:
            seed = call.params.get("seed")
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise call.fail(f"'seed' must be an Integer or a Long, found {type_name(seed)}")
            _random = JavaRandom(None if seed is None else int(seed))
        number = _random.next_float()
    is_int = call.params.get("integer", False)
    if not isinstance(is_int, bool):
        raise call.fail(f"'integer' must be a Boolean, found {type_name(is_int)}")
    low = _int_param(call, "min", 0)
    high = _int_param(call, "max", 10)
    if not is_int:
        return _single(number)
    if high < low:
        return low
    return int(number * (high - low + 1)) + low


def _date(call: Call) -> str:
    """``new java.util.Date().toString()``: ``Mon Nov 23 23:22:08 UTC 2026``."""
    now = time.localtime()
    return (
        time.strftime("%a %b %d %H:%M:%S ", now)
        + (time.strftime("%Z", now) or "UTC")
        + time.strftime(" %Y", now)
    )


def _parse_reference(call: Call, text: str) -> Reference:
    from sfpy.language.parser import parse_text

    try:
        cd = parse_text(f"reference {text};", "<Ref reference>")
    except DescriptionError as error:
        raise call.fail(f"Error constructing reference in Ref function: {error.message}") from None
    value = cd.attributes.get("reference")
    if len(cd.attributes) != 1 or not isinstance(value, Reference):
        raise call.fail(
            f"Error constructing reference in Ref function: {text!r} is not a reference"
        )
    return value


def _ref(call: Call) -> Any:
    text = call.params.get("reference", "")
    if not isinstance(text, str):
        raise call.fail(f"'reference' must be a String, found {type_name(text)}")
    lazy = call.params.get("lazy", False)
    lazy = lazy if isinstance(lazy, bool) else False
    ref = _parse_reference(call, text)
    if lazy:
        return ref.with_flags(lazy=True, position=call.position)
    ref = ref.with_flags(lazy=False)
    try:
        return call.resolver.resolve(ref, call.holder)
    except SfpyError as error:  # also the engine's resolver's errors, at run time
        if "returnNULLOnException" in call.params:
            return NULL
        message = getattr(error, "message", str(error))
        raise call.fail(f"Error resolving reference in Ref function: {message}") from None


def _system(call: Call) -> Any:
    if "system" not in call.params:
        raise call.fail("missing parameter 'system'")
    return call.params["system"]


def _set(call: Call) -> ComponentDescription:
    values = {"setMin": 0, "setMax": -1, "setInc": 1, "setSize": -1}
    for name in values:
        if name in call.params:
            values[name] = _int_param(call, name, values[name])
    element = call.params.get("setElem")
    prefix = call.params.get("setPrefix", "elem")
    if not isinstance(prefix, str):
        raise call.fail(f"'setPrefix' must be a String, found {type_name(prefix)}")
    if values["setMax"] == -1 and values["setSize"] == -1:
        raise call.fail("One of setMax or setSize must be assigned in a Set")
    if values["setMax"] != -1 and values["setSize"] != -1:
        raise call.fail("Only one of setMax or setSize may be assigned in a Set")
    if not isinstance(element, ComponentDescription):
        raise call.fail("Set requires an element (setElem, a component description)")
    if values["setInc"] == 0:
        raise call.fail("setInc may not be 0")
    size = values["setSize"]
    if size == -1:
        span = values["setMax"] - values["setMin"]
        quotient = abs(span) // abs(values["setInc"])
        size = 1 + (quotient if (span >= 0) == (values["setInc"] > 0) else -quotient)
    if size < 0:
        raise call.fail("Set cannot have a negative size")
    result = ComponentDescription()
    skip = {"setMin", "setMax", "setInc", "setSize", "setElem", "setPrefix", FUNCTION_CLASS}
    for key, value in call.description.attributes.items():
        if key not in skip:
            result.put(key, value)
    for index in range(size):
        result.put(f"{prefix}{values['setMin'] + index * values['setInc']}", element.copy())
    return result


def _user_input(call: Call) -> str:
    attribute = call.attribute
    prompt = call.params.get("prompt")
    if not isinstance(prompt, str):
        prompt = f" Enter value for attribute '{attribute if attribute is not None else '?'}' : "
    default = call.params.get("default")
    if not isinstance(default, str):
        default = None
    if default is not None:
        prompt += f" ({default})"
    stdin = sys.stdin
    interactive = stdin is not None and not stdin.closed and stdin.isatty()
    if not interactive:
        if default is None:
            where = path_text(call.holder, attribute) if attribute is not None else "userinput"
            raise call.fail(f"no terminal to ask for {where} and no 'default' to use instead")
        return default
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = stdin.readline()
    if not line:
        if default is None:
            raise call.fail("end of input and no 'default' to use instead")
        return default
    line = line.rstrip("\r\n")
    return line if line or default is None else default


# ---------------------------------------------------------------------------------------------
# The function phase: a function description becomes an application
# ---------------------------------------------------------------------------------------------


def construct_function(
    cd: ComponentDescription, parent: ComponentDescription | None, key: Any
) -> None:
    """ConstructFunction: ``cd`` (with ``phase.function``) becomes ``APPLY {…}`` in its parent.

    The application holds ``sfFunctionClass`` first, then the other attributes in order;
    ``sfFunctionLazy true`` makes it a LAZY APPLY.
    """
    if parent is None:
        return
    if FUNCTION_CLASS not in cd.attributes:
        raise FunctionError(
            f"Unable to construct apply reference as sfFunctionClass is missing in phase: "
            f"phase.function for component: {path_text(cd)}",
            position=cd.position,
            phase="function",
        )
    comp = ComponentDescription(position=cd.position)
    attributes = comp.attributes
    attributes[FUNCTION_CLASS] = cd.attributes[FUNCTION_CLASS]
    for name, value in cd.attributes.items():
        if name == FUNCTION_PHASE or name == FUNCTION_CLASS:
            continue
        attributes[name] = value
        if isinstance(value, ComponentDescription):
            value.parent = comp
    positions = cd.positions
    comp.positions = (
        {k: p for k, p in positions.items() if k != FUNCTION_PHASE} if positions else {}
    )
    lazy = cd.attributes.get(FUNCTION_LAZY, False) is True
    parent.attributes[key] = ApplyReference(comp, lazy=lazy, position=cd.position)


register_function("Sum", _sum, "sum", "plus")
register_function("Product", _product, "product")
register_function("Minus", _minus, "minus")
register_function("Divide", _divide, "divide")
register_function("Mod", _mod, "mod")
register_function("Concatenate", _concatenate, "concat")
register_function("Append", _append, "append")
register_function("ShellQuote", _shell_quote, "shellQuote")
register_function("Vector", _vector, "vector")
register_function("Format", _format, "formatString")
register_function("And", _and, "and")
register_function("Or", _or, "or")
register_function("Xor", _xor, "xor")
register_function("Implies", _implies, "implies")
register_function("Not", _not, "not")
register_function("EQ", _eq)
register_function("NE", _ne)
register_function("GE", _compare(lambda a, b: a >= b))
register_function("GT", _compare(lambda a, b: a > b))
register_function("LE", _compare(lambda a, b: a <= b))
register_function("LT", _compare(lambda a, b: a < b))
register_function("IfThenElse", _if_then_else, "ifThenElse")
register_function("Switch", _switch)
register_function("Next", _next, "next")
register_function("Random", _random_function, "random")
register_function("Date", _date, "date")
register_function("Ref", _ref, "ref")
register_function("SystemComponent", _system, "System")
register_function("Set", _set)
register_function("UserInput", _user_input, "userinput")
