"""{{name}}: a weir validator plugin. It accepts a message whose value is a
JSON object and rejects anything else as `invalid` (dead-lettered, never
retried). Put your own rule in `validate`.

componentize-py runs this module once while it builds and snapshots the
result: import everything you need at the top, since the component has no
filesystem to import more from when it runs.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.log import Level, log
from wit_world.imports.types import Error_Invalid

# What `init` got from the pipeline's `[pipeline.config]`, for every message.
config = None


def no_nan(name):
    raise ValueError(f"{name} is not JSON")  # Python's json would accept NaN and Infinity


# Built once: json.loads with a hook would build a decoder on every call.
DECODER = json.JSONDecoder(parse_constant=no_nan)


class Validator(exports.Validator):
    def init(self, pairs):
        global config
        if config is not None:
            raise Err("init was called twice")
        log(Level.INFO, f"{{name}}: {len(pairs)} config keys")
        # Raising Err(reason) here stops the pipeline at start-up with `reason`.
        config = dict(pairs)

    def validate(self, msg):
        if msg.value is None:
            raise Err(Error_Invalid("value is null; expected a JSON object"))
        try:
            value = DECODER.decode(msg.value.decode("utf-8"))
        except ValueError as e:  # not UTF-8 or not JSON
            raise Err(Error_Invalid(f"value is not JSON: {e}"))
        if not isinstance(value, dict):
            raise Err(Error_Invalid("value is JSON but not an object"))
        log(Level.DEBUG, f"offset {msg.offset}: accepted")
