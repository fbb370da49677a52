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
// The library is @cfworker/json-schema (drafts 4, 7, 2019-09, 2020-12): pure
// JavaScript that generates no code, small once bundled (~50 KB).
// The value is parsed as strictly as serde_json does (../common/json.js).
// JavaScript numbers are doubles: 1 and 1.0 are the same value (both
// integers, as JSON Schema says) and integers past 2^53 lose precision.

import { Validator, format } from '@cfworker/json-schema';
import { parseJson, parseText } from '../common/json.js';

const MAX_REPORTED = 10;
const SUMMARY = /^(A subschema had errors|Property ".*" does not match schema|Items did not match schema)\.$/s;

// `$schema` URI (without a trailing `#`) → the library's draft name. No
// `$schema`: 2020-12, as the Rust plugin's `jsonschema` crate assumes.
const DRAFTS = new Map([
  ['https://json-schema.org/draft/2020-12/schema', '2020-12'],
  ['https://json-schema.org/draft/2019-09/schema', '2019-09'],
  ['http://json-schema.org/draft-07/schema', '7'],
  ['http://json-schema.org/draft-04/schema', '4'],
]);

let compiled = null;

// The library checks a `$ref` and compiles a `pattern` only while
// validating, and throws there; it takes any `type` name; and it applies
// every keyword it knows under every draft. The Rust plugin refuses such
// schemas at init, or ignores a keyword its draft does not define: refuse
// them all at init, by name. Values of `enum`, `const`, … are data.
const DATA = new Set(['enum', 'const', 'default', 'examples']);
const MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'dependencies']);
const TYPES = new Set(['null', 'boolean', 'object', 'array', 'number', 'string', 'integer']);
const LATER = ['prefixItems', 'dependentRequired', 'dependentSchemas', 'unevaluatedProperties',
  'unevaluatedItems', 'minContains', 'maxContains', '$recursiveRef', '$recursiveAnchor'];
const NOT_IN = {
  4: new Set([...LATER, 'if', 'then', 'else', 'contains', 'const', 'propertyNames']),
  7: new Set(LATER),
  '2019-09': new Set(['prefixItems', '$dynamicRef', '$dynamicAnchor']),
  '2020-12': new Set(['$recursiveRef', '$recursiveAnchor', '$dynamicRef', '$dynamicAnchor']),
};

function checkSchema(node, draft, lookup, where) {
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
  if (typeof node.$ref === 'string' && lookup[node.__absolute_ref__ ?? node.$ref] === undefined) {
    refuse(`$ref ${JSON.stringify(node.$ref)} cannot be resolved (remote schemas are not fetched)`);
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
    for (const [name, sub] of subs) checkSchema(sub, draft, lookup, name === null ? `${where}/${key}` : `${where}/${key}/${name}`);
  }
}

// `/id: Instance type "string" is invalid. Expected "integer".`
function describe(error) {
  const pointer = error.instanceLocation.replace(/^#/, '') || '(root)';
  return `${pointer}: ${error.error}`;
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
      // shortCircuit = false: report every violation, not just the first.
      compiled = new Validator(schema, draft, false);
    } catch (e) {
      throw `config key \`schema\` is not a valid JSON Schema: ${e.message}`;
    }
    try {
      checkSchema(schema, draft, compiled.lookup, '(root)');
    } catch (e) {
      throw `config key \`schema\` is not a valid JSON Schema: ${e}`;
    }
    // Since 2019-09 `format` is an annotation, which the Rust plugin does not
    // check; the library always would. One schema per instance: switch it off.
    if (draft === '2019-09' || draft === '2020-12') {
      for (const name of Object.keys(format)) format[name] = () => true;
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
    const result = compiled.validate(value);
    if (result.valid) return;
    // The library also reports each failing parent ("Property "id" does not
    // match schema."); the leaves say what is wrong.
    let problems = result.errors.filter((e) => !SUMMARY.test(e.error)).map(describe);
    if (problems.length === 0) problems = result.errors.map(describe);
    if (problems.length > MAX_REPORTED) {
      const more = problems.length - MAX_REPORTED;
      problems = problems.slice(0, MAX_REPORTED);
      problems.push(`and ${more} more`);
    }
    throw { tag: 'invalid', val: problems.join('; ') };
  },
};
