// {{name}}: a weir validator plugin. It accepts a message whose value is a
// JSON object and rejects anything else as `invalid` (dead-lettered, never
// retried). Put your own rule in `validate`.
//
// componentize-js runs this module once while it builds and snapshots the
// result: top-level code runs at build time, not in the pipeline.

import { log } from 'weir:plugin/log@0.1.0';

// `fatal`: bytes that are not UTF-8 are an error instead of U+FFFD.
const UTF8 = new TextDecoder('utf-8', { fatal: true });

// What `init` got from the pipeline's `[pipeline.config]`, for every message.
let config = null;

export const validator = {
  init(pairs) {
    // Throwing a string stops the pipeline at start-up with that reason.
    if (config !== null) throw 'init was called twice';
    config = new Map(pairs);
    log('info', `{{name}}: ${config.size} config keys`);
  },

  // Returning accepts the message; throwing { tag: 'invalid', val: reason }
  // dead-letters it, { tag: 'failed', val: reason } applies the failure policy.
  validate(msg) {
    if (msg.value == null) throw { tag: 'invalid', val: 'value is null; expected a JSON object' };
    let value;
    try {
      value = JSON.parse(UTF8.decode(msg.value));
    } catch (e) {
      throw { tag: 'invalid', val: `value is not JSON: ${e.message}` };
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw { tag: 'invalid', val: 'value is JSON but not an object' };
    }
    log('debug', `offset ${msg.offset}: accepted`);
  },
};
