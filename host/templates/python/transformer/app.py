"""{{name}}: a weir transformer plugin. It passes every message on unchanged
to the pipeline's output topic. Return several outputs to fan a message out,
none to drop it, `Output(topic=route, ...)` to send it to one of the
pipeline's `routes`, raise `Err(Error_Invalid(reason))` to dead-letter it.

componentize-py runs this module once while it builds and snapshots the
result: import everything you need at the top, since the component has no
filesystem to import more from when it runs.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.log import Level, log
from wit_world.imports.types import Output

# What `init` got from the pipeline's `[pipeline.config]`, for every message.
config = None


class Transformer(exports.Transformer):
    def init(self, pairs):
        global config
        if config is not None:
            raise Err("init was called twice")
        log(Level.INFO, f"{{name}}: {len(pairs)} config keys")
        # Raising Err(reason) here stops the pipeline at start-up with `reason`.
        config = dict(pairs)

    def transform(self, msg):
        log(Level.DEBUG, f"offset {msg.offset}: passed on")
        return [Output(topic=None, key=msg.key, value=msg.value, headers=msg.headers)]
