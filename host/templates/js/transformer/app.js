// {{name}}: a weir transformer plugin. It passes every message on unchanged
// to the pipeline's output topic. Return several outputs to fan a message
// out, none to drop it, `topic: 'name'` to send one to a route the pipeline
// declares; throw { tag: 'invalid', val: reason } to dead-letter it.
//
// componentize-js runs this module once while it builds and snapshots the
// result: top-level code runs at build time, not in the pipeline.

import { log } from 'weir:plugin/log@0.1.0';

// What `init` got from the pipeline's `[pipeline.config]`, for every message.
let config = null;

export const transformer = {
  init(pairs) {
    // Throwing a string stops the pipeline at start-up with that reason.
    if (config !== null) throw 'init was called twice';
    config = new Map(pairs);
    log('info', `{{name}}: ${config.size} config keys`);
  },

  // key, value and header values are Uint8Array, or undefined for null.
  transform(msg) {
    log('debug', `offset ${msg.offset}: passed on`);
    return [{ topic: undefined, key: msg.key, value: msg.value, headers: msg.headers }];
  },
};
