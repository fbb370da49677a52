"""JSON as strictly as serde_json reads it, so the Python plugins give the
same verdict as the Rust ones for every message.

Python's `json` is more lenient in four ways, each closed here: it accepts
NaN/Infinity (refused), reads `1e400` as infinity (refused: out of range),
accepts lone UTF-16 surrogate escapes like `"\\ud800"` (refused, even in
the value of a key repeated later, which serde_json also refuses) and nests
as deep as the stack allows, which in wasm overflows it and traps (refused
from 128 levels on, serde_json's limit, before parsing). Bytes must be
UTF-8: `json.loads` would also guess UTF-16/32. And like serde_json, an
integer beyond 64 bits becomes a float; `dumps` writes numbers as it does.
"""

import json
import math
import re

MAX_DEPTH = 128
# The scans run on the UTF-8 bytes: faster than on text with non-ASCII
# characters, and a multi-byte sequence never holds `"`, `\\` or a bracket.
STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
INNERMOST = re.compile(rb"\[\]|\{\}")
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# One translated copy answers two questions with plain substring searches
# and a count (in C, far faster than a regex): with every digit read as 0
# and E and + as e, a number beyond 64 bits or out of float range shows as
# 19 digits, `e000` or `e-000`; with `{` read as `[`, one count gives the
# brackets. A false alarm (inside a string) only takes the slow path. The
# searches are `find`, not `in`: `bytes.__contains__` first tries its
# argument as an int, and raises and clears a TypeError for every bytes one.
FOLD = bytes.maketrans(b"123456789E+{", b"000000000ee[")
DIGITS_19 = b"0" * 19


def _finite(text):
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"number out of range: {text}")
    return number


def _integer(text):
    if text == "-0":
        return -0.0  # serde_json reads -0 as the float -0.0
    number = int(text)
    if -(2**63) <= number < 2**64:
        return number
    return _finite(text)


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _check_nesting(data):
    """Raises ValueError if the brackets outside strings nest MAX_DEPTH deep or
    do not balance (then it is not JSON anyway). Each pass of INNERMOST takes
    off the innermost level, in C: a loop over the brackets in Python took
    too long for a large value."""
    brackets = NOT_BRACKET.sub(b"", STRING.sub(b"", data))
    for _ in range(MAX_DEPTH - 1):
        if not brackets:
            return
        shorter = INNERMOST.sub(b"", brackets)
        if len(shorter) == len(brackets):
            raise ValueError("brackets do not balance")
        brackets = shorter
    if brackets:
        raise ValueError(f"nested {MAX_DEPTH} levels deep or more")


def loads(data):
    """Parses UTF-8 JSON bytes; raises ValueError saying what is wrong."""
    text = data.decode("utf-8")
    # Cheap filters first: only a text that could break a rule is scanned.
    folded = data.translate(FOLD)
    if len(data) >= MAX_DEPTH and folded.count(b"[") >= MAX_DEPTH:
        _check_nesting(data)
    huge = folded.find(DIGITS_19) >= 0 or folded.find(b"e000") >= 0 or folded.find(b"e-000") >= 0
    surrogates = SURROGATE_ESCAPE.search(data) is not None
    decoder = DECODERS[huge, surrogates]
    # The decoder's C scanner straight away: `decode` adds two regular
    # expression matches and two Python calls for the whitespace around a
    # value, which most values lack. Anything else takes `decode`, whose
    # error says what is wrong.
    try:
        value, end = decoder.scan_once(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        value = decoder.decode(text)
    if surrogates:
        _utf8(value)
    return value


def _utf8(value):
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate


def _utf8_pairs(pairs):
    """Checks every pair, even one a repeated key drops (serde_json refuses
    a lone surrogate wherever it is)."""
    _utf8(pairs)
    return dict(pairs)


# Built once: `json.loads` with any hook builds a decoder (and its scanner)
# on every call. The hooks other than parse_constant cost a Python call per
# number or object, so each is used only when the filters above ask for it.
DECODERS = {
    (huge, surrogates): json.JSONDecoder(
        parse_constant=_no_constant,
        parse_float=_finite if huge else None,
        parse_int=_integer if huge else None,
        object_pairs_hook=_utf8_pairs if surrogates else None,
    )
    for huge in (False, True)
    for surrogates in (False, True)
}


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
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # Python writes every float as serde_json does but those with an exponent
    # from -5 to -9 (`1e-05`, `1e-07`): only then take the slow path.
    return text if "e-0" not in text else _dumps(value)


def _dumps(value):
    if isinstance(value, dict):
        return "{" + ",".join(f"{_dumps(k)}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(_dumps, value)) + "]"
    if isinstance(value, float):
        return _number(value)
    return json.dumps(value, ensure_ascii=False)
