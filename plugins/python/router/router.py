"""A transformer plugin that shows the three things a transformer can do
besides passing a message on: drop it, fan it out and route it. The Python
twin of plugins/rust/router, with the same results byte for byte.

The value must be a JSON object (as strict as serde_json: see
../common/strict_json.py), else the message is `invalid`.
- `"drop": true` → no output: the message is dropped.
- an array field `"items"` → one output per item (the item as compact JSON,
  keys in input order, non-ASCII as UTF-8; the original key and headers plus
  `weir.split.index` = its index).
- otherwise → one output with the original key, value and headers.

Routing: config `route_field` (default `region`) names a string field and
each `route.<value> = <topic>` entry sends outputs whose object (for a
fan-out: whose item) has that value to `<topic>`; anything else goes to the
pipeline's output topic. Every route must also be declared by the pipeline.
"""

import strict_json
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.log import Level, log
from wit_world.imports.types import Error_Failed, Error_Invalid, Header, Output

routes = None  # (field, {value: topic}) once init has run


def topic_for(value):
    field, topics = routes
    name = value.get(field) if isinstance(value, dict) else None
    return topics.get(name) if isinstance(name, str) else None


class Transformer(exports.Transformer):
    def init(self, config):
        global routes
        if routes is not None:
            raise Err("init was called twice")
        field, topics = "region", {}
        for key, value in config:
            if key == "route_field":
                field = value
            elif key.startswith("route."):
                topics[key[len("route."):]] = value
        routes = (field, topics)

    def transform(self, msg):
        if routes is None:
            raise Err(Error_Failed("transform was called before init"))
        if msg.value is None:
            raise Err(Error_Invalid("value is null; expected a JSON object"))
        try:
            obj = strict_json.loads(msg.value)
        except ValueError as e:
            raise Err(Error_Invalid(f"value is not JSON: {e}"))
        if not isinstance(obj, dict):
            raise Err(Error_Invalid("value is JSON but not an object"))

        items = obj.get("items")
        if obj.get("drop") is True:  # `is`: 1 == True in Python, but not in JSON
            outputs = []
        elif isinstance(items, list):
            outputs = [
                Output(
                    topic=topic_for(item),
                    key=msg.key,
                    value=strict_json.dumps(item).encode(),
                    headers=msg.headers + [Header("weir.split.index", str(index).encode())],
                )
                for index, item in enumerate(items)
            ]
        else:
            outputs = [Output(topic_for(obj), msg.key, msg.value, msg.headers)]

        if outputs:
            topics = ", ".join(o.topic or "(output topic)" for o in outputs)
            summary = f"{len(outputs)} output(s) to {topics}"
        else:
            summary = "dropped"
        log(Level.DEBUG, f"offset {msg.offset}: {summary}")
        return outputs
