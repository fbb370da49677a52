"""A validator plugin that accepts a message only if its value is JSON that
conforms to a JSON Schema: the Python twin of plugins/rust/json-schema.

Config: `schema` = the JSON Schema document as text (the host reads
`schema = "@file.json"` from a file). It is compiled once in `init` with
fastjsonschema (pure Python, bundled into the component; it generates the
validator's code and runs it with `exec`). A missing or broken schema fails
`init`, so the pipeline never starts with it; so does a keyword of drafts
2019-09/2020-12 that fastjsonschema (drafts 4, 6 and 7) would silently ignore.
A null, non-UTF-8 or non-JSON value (as strict as serde_json: see
../common/strict_json.py), or one that breaks the schema, is `invalid`,
naming the first violation, e.g. `data.id must be integer`.
"""

# componentize-py snapshots the modules imported while it builds; the host
# gives no filesystem to import more from later, so what fastjsonschema
# loads lazily (the codec it writes string literals with) is imported here.
import encodings.unicode_escape  # noqa: F401

import fastjsonschema
import strict_json
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import Error_Failed, Error_Invalid

# Keywords of drafts 2019-09/2020-12 that fastjsonschema does not know: a schema
# using one is refused rather than half enforced.
UNSUPPORTED = {"prefixItems", "dependentRequired", "dependentSchemas", "unevaluatedProperties",
               "unevaluatedItems", "minContains", "maxContains", "$anchor", "$dynamicRef",
               "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor"}
# Keywords fastjsonschema still honours beside `$ref` (it ignores the others there).
BESIDE_REF = {"$schema", "$id", "$comment", "title", "description", "default", "examples",
              "definitions", "$defs", "deprecated", "readOnly", "writeOnly"}
DATA = {"enum", "const", "default", "examples"}  # their values are data, not schemas
NAMED = {"properties", "patternProperties", "definitions", "$defs", "dependencies"}  # name → schema

validator = None


def unsupported(schema, pointer=""):
    """Yields one line per keyword at or under `schema` that would not be enforced."""
    if isinstance(schema, list):
        for index, sub in enumerate(schema):
            yield from unsupported(sub, f"{pointer}/{index}")
    elif isinstance(schema, dict):
        if "$ref" in schema and set(schema) - BESIDE_REF - {"$ref"}:
            yield f"{pointer or '(root)'}: keywords beside $ref would be ignored"
        for key, sub in schema.items():
            where = f"{pointer}/{key}"
            if key in UNSUPPORTED:
                yield f"{where}: keyword not implemented"
            elif key in NAMED and isinstance(sub, dict):
                for name, item in sub.items():
                    yield from unsupported(item, f"{where}/{name}")
            elif key not in DATA:
                yield from unsupported(sub, where)


class Validator(exports.Validator):
    def init(self, config):
        global validator
        if validator is not None:
            raise Err("init was called twice")
        text = next((value for key, value in config if key == "schema"), None)
        if text is None:
            raise Err("config key `schema` is missing: set it to a JSON Schema document or @file")
        try:
            schema = strict_json.loads(text.encode())
        except ValueError as e:
            raise Err(f"config key `schema` is not JSON: {e}")
        problems = list(unsupported(schema))
        if problems:
            raise Err("config key `schema` uses what fastjsonschema does not enforce: " + "; ".join(problems))
        # Drafts 4-7 check `format`; from 2019-09 on it is an annotation (as in the Rust plugin).
        declared = schema.get("$schema") if isinstance(schema, dict) else None
        formats = isinstance(declared, str) and any(
            draft in declared for draft in ("draft-04", "draft-06", "draft-07"))
        try:
            validator = fastjsonschema.compile(schema, use_default=False, use_formats=formats)
        except Exception as e:  # the library raises several kinds for a bad schema
            raise Err(f"config key `schema` is not a valid JSON Schema: {e}")

    def validate(self, msg):
        if validator is None:
            raise Err(Error_Failed("validate was called before init"))
        if msg.value is None:
            raise Err(Error_Invalid("value is null; expected JSON"))
        try:
            value = strict_json.loads(msg.value)
        except ValueError as e:  # UnicodeError and JSONDecodeError are ValueErrors
            raise Err(Error_Invalid(f"value is not JSON: {e}"))
        try:
            validator(value)
        except fastjsonschema.JsonSchemaValueException as e:
            raise Err(Error_Invalid(e.message))
