// A validator plugin that accepts a message only if its value is JSON that
// conforms to a JSON Schema: the JavaScript twin of plugins/rust/json-schema,
// answering the same verdict for every message.
//
// Config: `schema` = the JSON Schema document as text (the host reads
// `schema = "@file.json"` from a file). It is compiled once in `init`; a
// missing or non-JSON schema, or a `$schema` draft the library lacks, fails
// `init`. A null, non-UTF-8 or non-JSON value, or one that breaks the schema,
// is `invalid`, naming each violation (up to ten) by its JSON pointer.
//
// The library is ajv 8 (drafts 4, with ajv-draft-04, 6, 7, 2019-09 and
// 2020-12, as in Rust): it compiles the schema into a JavaScript function
// once, in `init`, so a message costs that function's straight-line checks
// instead of a walk of the schema, which was most of a call in an engine
// that only interprets. `validate` is thus mostly ../common/json.js.
// The value is parsed as strictly as serde_json does (../common/json.js).
// JavaScript numbers are doubles: 1 and 1.0 are the same value (both
// integers, as JSON Schema says) and integers past 2^53 lose precision.

import Ajv07 from 'ajv';
import Ajv2019 from 'ajv/dist/2019';
import Ajv2020 from 'ajv/dist/2020';
import AjvDraft04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json';
import { parseJson, parseText } from '../common/json.js';

const MAX_REPORTED = 10;

// `$schema` URI (without a trailing `#`) → draft name. No `$schema`:
// 2020-12, as the Rust plugin's `jsonschema` crate assumes.
const DRAFTS = new Map([
  ['https://json-schema.org/draft/2020-12/schema', '2020-12'],
  ['https://json-schema.org/draft/2019-09/schema', '2019-09'],
  ['http://json-schema.org/draft-07/schema', '7'],
  ['http://json-schema.org/draft-06/schema', '6'],
  ['http://json-schema.org/draft-04/schema', '4'],
]);

// allErrors: name every violation, as Rust's `iter_errors` does. strict off:
// Rust ignores a keyword it does not know, and so must this. Since 2019-09
// `format` is an annotation, which Rust does not check; before, it checks.
const OPTIONS = { allErrors: true, strict: false, logger: false };
const ENGINES = {
  4: () => addFormats(new AjvDraft04({ ...OPTIONS, validateFormats: true })),
  6: () => addFormats(new Ajv07({ ...OPTIONS, validateFormats: true })).addMetaSchema(draft06),
  7: () => addFormats(new Ajv07({ ...OPTIONS, validateFormats: true })),
  '2019-09': () => new Ajv2019({ ...OPTIONS, validateFormats: false }),
  '2020-12': () => new Ajv2020({ ...OPTIONS, validateFormats: false }),
};
// Compiling a draft's meta-schema takes 250-400 ms in the interpreter, so
// the default draft's is compiled here, at build time (componentize runs
// the top level and snapshots it); each draft kept this way adds ~2 MiB to
// every instance, so the others are compiled at init when a schema asks.
const DEFAULT = ENGINES['2020-12']();
DEFAULT.getSchema(DEFAULT.defaultMeta());
ENGINES['2020-12'] = () => DEFAULT;

let compiled = null;

// The Rust plugin ignores a keyword its draft does not define, which ajv
// (strict off) would apply, and refuses some schemas the meta-schemas let
// through: refuse them all at init, by name. Values of `enum`, `const`, …
// are data. ajv itself refuses a `$ref` it cannot resolve (remote schemas
// are not fetched).
const DATA = new Set(['enum', 'const', 'default', 'examples']);
const MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'dependencies']);
const TYPES = new Set(['null', 'boolean', 'object', 'array', 'number', 'string', 'integer']);
const LATER = ['prefixItems', 'dependentRequired', 'dependentSchemas', 'unevaluatedProperties',
  'unevaluatedItems', 'minContains', 'maxContains', '$recursiveRef', '$recursiveAnchor'];
const NOT_IN = {
  4: new Set([...LATER, 'if', 'then', 'else', 'contains', 'const', 'propertyNames']),
  6: new Set([...LATER, 'if', 'then', 'else']),
  7: new Set(LATER),
  '2019-09': new Set(['prefixItems', '$dynamicRef', '$dynamicAnchor']),
  '2020-12': new Set(['$recursiveRef', '$recursiveAnchor', '$dynamicRef', '$dynamicAnchor']),
};

function checkSchema(node, draft, where) {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return;
  const refuse = (what) => { throw `${where}: ${what}`; };
  for (const keyword of Object.keys(node)) {
    if (NOT_IN[draft].has(keyword)) refuse(`keyword "${keyword}" is not supported under draft ${draft}: declare another $schema or remove it`);
  }
  if (draft === '2020-12' && Array.isArray(node.items)) refuse('"items" is an array: since 2020-12 that is "prefixItems"');
  for (const bound of ['exclusiveMinimum', 'exclusiveMaximum']) {
    // A boolean modifying minimum/maximum in draft 4, a number of its own since.
    const type = typeof node[bound];
    if (type !== 'undefined' && (type === 'boolean') !== (draft === '4')) {
      refuse(`"${bound}" is a ${type}, which draft ${draft} does not allow`);
    }
  }
  if ((typeof node.type === 'string' || Array.isArray(node.type)) && ![node.type].flat().every((t) => TYPES.has(t))) {
    refuse(`type ${JSON.stringify(node.type)} is not one of ${[...TYPES].join(', ')}`);
  }
  const patterns = [node.pattern, ...Object.keys(node.patternProperties ?? {})];
  for (const pattern of patterns.filter((p) => typeof p === 'string')) {
    try {
      new RegExp(pattern, 'u');
    } catch (e) {
      refuse(`pattern ${JSON.stringify(pattern)} is not a regular expression: ${e.message}`);
    }
  }
  for (const [key, child] of Object.entries(node)) {
    if (DATA.has(key) || child === null || typeof child !== 'object') continue;
    const subs = Array.isArray(child) || MAPS.has(key) ? Object.entries(child) : [[null, child]];
    for (const [name, sub] of subs) checkSchema(sub, draft, name === null ? `${where}/${key}` : `${where}/${key}/${name}`);
  }
}

// `/id: must be integer`, `(root): must have required property 'text'`.
function describe(error) {
  const extra = error.keyword === 'additionalProperties' ? `: '${error.params.additionalProperty}'` : '';
  return `${error.instancePath || '(root)'}: ${error.message}${extra}`;
}

export const validator = {
  init(config) {
    if (compiled !== null) throw 'init was called twice';
    const entry = config.find(([key]) => key === 'schema');
    if (entry === undefined) {
      throw 'config key `schema` is missing: set it to a JSON Schema document or @file';
    }
    let schema;
    try {
      schema = parseText(entry[1]);
    } catch (e) {
      throw `config key \`schema\` is not JSON: ${e.message}`;
    }
    if (typeof schema !== 'boolean' && (schema === null || typeof schema !== 'object' || Array.isArray(schema))) {
      throw 'config key `schema` is not a valid JSON Schema: it must be an object or a boolean';
    }
    let draft = '2020-12';
    if (typeof schema === 'object' && schema.$schema !== undefined) {
      draft = DRAFTS.get(String(schema.$schema).replace(/#$/, ''));
      if (draft === undefined) {
        throw `config key \`schema\`: unsupported $schema ${JSON.stringify(schema.$schema)}; use one of ${[...DRAFTS.keys()].join(', ')}`;
      }
    }
    try {
      checkSchema(schema, draft, '(root)');
      compiled = ENGINES[draft]().compile(schema);
    } catch (e) {
      throw `config key \`schema\` is not a valid JSON Schema: ${e.message ?? e}`;
    }
  },

  validate(msg) {
    if (compiled === null) throw { tag: 'failed', val: 'validate was called before init' };
    if (msg.value == null) throw { tag: 'invalid', val: 'value is null; expected JSON' };
    let value;
    try {
      ({ value } = parseJson(msg.value));
    } catch (e) {
      throw { tag: 'invalid', val: e.message };
    }
    if (compiled(value)) return;
    let problems = compiled.errors.map(describe);
    if (problems.length > MAX_REPORTED) {
      const more = problems.length - MAX_REPORTED;
      problems = problems.slice(0, MAX_REPORTED);
      problems.push(`and ${more} more`);
    }
    throw { tag: 'invalid', val: problems.join('; ') };
  },
};
