"""Adds a `producers` custom section (language: Python; sdk: componentize-py
VERSION) right after a component's header, so `weir check` and other tools
say what the component was written in: componentize-py records only its
Rust runtime and the tools it ran.

Usage: python3 producers.py COMPONENT.wasm COMPONENTIZE_PY_VERSION
"""

import sys


def leb128(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def name(text):
    data = text.encode()
    return leb128(len(data)) + data


def producers(fields):
    body = leb128(len(fields))
    for field, values in fields:
        body += name(field) + leb128(len(values))
        for value, version in values:
            body += name(value) + name(version)
    payload = name("producers") + body
    return b"\x00" + leb128(len(payload)) + payload  # section id 0: custom


path, version = sys.argv[1], sys.argv[2]
wasm = open(path, "rb").read()
if wasm[:4] != b"\x00asm" or wasm[4:8] != b"\x0d\x00\x01\x00":
    sys.exit(f"{path}: not a WebAssembly component")
section = producers([("language", [("Python", "")]), ("sdk", [("componentize-py", version)])])
open(path, "wb").write(wasm[:8] + section + wasm[8:])
