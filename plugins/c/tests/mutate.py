"""Writes N messages (default 4000) whose values are small random mutations
of JSON documents, as weir test input lines, for compare.sh: the Rust and C
plugins must agree on every one (the parsers' strictness, byte for byte).
Usage: python3 mutate.py [N] > FILE.jsonl   (seeded: the same lines each run)
"""
import base64
import json
import random
import sys

SEEDS = [
    b'{"id": 1, "text": "a"}',
    b'{"id":-0.5e3,"text":"\\u00e9\\ud83d\\ude00","items":[1,2.50,{"b":null,"a":[true,false]}],"region":"eu"}',
    b'{"items":[{"region":"us","x":"\xc3\xa9\xf0\x9f\x8e\x89"},"s\\n\\t",0,-1,1E5,1e-9,123456789012345678901]}',
    b'[{"a":{}}]',
    b'"x"',
    b'{"drop":true}',
]
# JSON's own characters, escapes, and bytes that break UTF-8 or strings
ALPHABET = b' \t\r\n{}[]:,"\\/-+.0123456789eEtrufalsn\x00\x1f\x7f\xc3\xa9\xed\xa0\x80\xf0\x9f\xff uUdD8c'

rng = random.Random(7)
for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 4000):
    s = bytearray(rng.choice(SEEDS))
    for _ in range(rng.randint(1, 3)):
        op, pos = rng.random(), rng.randint(0, len(s))
        if op < 0.4 and s:
            del s[min(pos, len(s) - 1)]
        elif op < 0.8:
            s[pos:pos] = bytes([rng.choice(ALPHABET)])
        elif s:
            s[min(pos, len(s) - 1)] = rng.choice(ALPHABET)
    print(json.dumps({"key": "k", "value": {"$base64": base64.b64encode(bytes(s)).decode()}}))
