"""JSON as strictly as serde_json reads it, so the Python plugins give the
same verdict as the Rust ones for every message.

Python's `json` is more lenient in four ways, each closed here: it accepts
NaN/Infinity (refused), reads `1e400` as infinity (refused: out of range),
accepts lone UTF-16 surrogate escapes like `"\\ud800"` (refused) and nests
as deep as the stack allows, which in wasm overflows it and traps (refused
from 128 levels on, serde_json's limit, before parsing). Bytes must be
UTF-8: `json.loads` would also guess UTF-16/32. And like serde_json, an
integer beyond 64 bits becomes a float; `dumps` writes numbers as it does.
"""

import json
import math
import re

MAX_DEPTH = 128
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
BRACKET = re.compile(r"[\[\]{}]")
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _finite(text):
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"number out of range: {text}")
    return number


def _integer(text):
    number = int(text)
    if -(2**63) <= number < 2**64:
        return number
    return _finite(text)


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _depth(text):
    """The deepest nesting of brackets outside strings."""
    level = deepest = 0
    for bracket in BRACKET.finditer(STRING.sub("", text)):
        level += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, level)
    return deepest


def loads(data):
    """Parses UTF-8 JSON bytes; raises ValueError saying what is wrong."""
    text = data.decode("utf-8")
    # Cheap filters first: only a text that could break a rule is scanned.
    if text.count("[") + text.count("{") >= MAX_DEPTH and _depth(text) >= MAX_DEPTH:
        raise ValueError(f"nested {MAX_DEPTH} levels deep or more")
    value = json.loads(text, parse_constant=_no_constant, parse_float=_finite,
                       parse_int=_integer)
    if SURROGATE_ESCAPE.search(text):
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate
    return value


def _number(value):
    """A float as serde_json writes it: Python's repr, but 1e-5 ≤ |x| < 1e-4 in
    positional notation and no zero-padded exponent (`1e-7`, not `1e-07`)."""
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    if not exponent:
        return text
    if int(exponent) == -5:
        return ("-" if value < 0 else "") + "0.0000" + mantissa.lstrip("-").replace(".", "")
    return f"{mantissa}e{exponent[0]}{int(exponent[1:])}"


def dumps(value):
    """Compact JSON as serde_json writes it: keys in order, UTF-8 unescaped."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{dumps(k)}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(dumps, value)) + "]"
    if isinstance(value, float):
        return _number(value)
    return json.dumps(value, ensure_ascii=False)
