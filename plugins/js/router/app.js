// A transformer plugin that shows the three things a transformer can do
// besides passing a message on: drop it, fan it out and route it. The
// JavaScript twin of plugins/rust/router, with the same outputs byte for byte.
//
// The value must be a JSON object, else the message is `invalid`.
// - `"drop": true` → no output: the message is dropped.
// - an array field `"items"` → one output per item (the item as compact
//   JSON, the original key and headers plus `weir.split.index` = its index).
// - otherwise → one output with the original key, value and headers.
//
// Routing: config `route_field` (default `region`) names a string field and
// each `route.<value> = <topic>` entry sends outputs whose object (for a
// fan-out: whose item) has that value to `<topic>`; anything else goes to the
// pipeline's output topic. Every route must also be declared by the pipeline.

import { log } from 'weir:plugin/log@0.1.0';
import { STRING, parseJson } from '../common/json.js';

const ENCODER = new TextEncoder();

// A JSON token: a string, a scalar (number, true, false, null) or punctuation.
const TOKEN = new RegExp(String.raw`\s*(${STRING.source}|[^\s",:{}[\]]+|[,:{}[\]])`, 'gy');

// serde_json's spelling of a number: integers that fit 64 bits as written,
// any other number as the shortest double, in decimal from 1e-5 to 1e16
// (with ".0" if whole), else as `<digits>e<sign><exponent>`.
function number(token) {
  if (/^-?\d+$/.test(token) && token !== '-0') {
    const n = BigInt(token);
    if (n >= -(2n ** 63n) && n < 2n ** 64n) return token;
  }
  const x = Number(token);
  if (Object.is(x, -0)) return '-0.0';
  const [digits, exponent] = x.toExponential().split('e');
  const e = Number(exponent);
  if (e >= -5 && e < 16) return Number.isInteger(x) ? `${x}.0` : String(x);
  return `${digits}e${e < 0 ? '-' : '+'}${Math.abs(e)}`;
}

// The compact text of each element of the top-level object's `items` array,
// cut from the (already validated) source rather than re-serialised: a parsed
// JS object lists integer-like keys ("7") first, and outputs keep the input's
// key order. Strings and numbers are re-spelled the way serde_json writes them.
function itemTexts(text) {
  const tokens = Array.from(text.matchAll(TOKEN), ([, t]) =>
    t[0] === '"' ? JSON.stringify(JSON.parse(t)) : /^[-\d]/.test(t) ? number(t) : t);
  let items = [];
  let item = null; // the item being collected, null outside `items`
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (item !== null && depth === 2 && (t === ',' || t === ']')) {
      if (item !== '') items.push(item);
      item = t === ',' ? '' : null;
    } else if (item !== null) {
      item += t;
    } else if (depth === 1 && tokens[i + 1] === ':' && tokens[i + 2] === '[' && JSON.parse(t) === 'items') {
      // A repeated key: the last one wins, as in JSON.parse and serde_json.
      items = [];
      item = '';
      i += 2;
      depth = 2;
      continue;
    }
    if (t === '{' || t === '[') depth++;
    else if (t === '}' || t === ']') depth--;
  }
  return items;
}

let routes = null; // { field, topics: Map<value, topic> } once init ran

function topicFor(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const key = Object.hasOwn(value, routes.field) ? value[routes.field] : undefined;
  return typeof key === 'string' ? routes.topics.get(key) : undefined;
}

export const transformer = {
  init(config) {
    if (routes !== null) throw 'init was called twice';
    routes = { field: 'region', topics: new Map() };
    for (const [key, value] of config) {
      if (key === 'route_field') routes.field = value;
      else if (key.startsWith('route.')) routes.topics.set(key.slice('route.'.length), value);
    }
  },

  transform(msg) {
    if (routes === null) throw { tag: 'failed', val: 'transform was called before init' };
    if (msg.value == null) throw { tag: 'invalid', val: 'value is null; expected a JSON object' };
    let text;
    let object;
    try {
      ({ text, value: object } = parseJson(msg.value));
    } catch (e) {
      throw { tag: 'invalid', val: e.message };
    }
    if (object === null || typeof object !== 'object' || Array.isArray(object)) {
      throw { tag: 'invalid', val: 'value is JSON but not an object' };
    }

    let outputs;
    if (object.drop === true && Object.hasOwn(object, 'drop')) {
      outputs = [];
    } else if (Object.hasOwn(object, 'items') && Array.isArray(object.items)) {
      // JSON.stringify is native and fast, and writes what serde_json writes
      // unless the value has integer-like keys (which a JS object lists
      // first) or numbers other than short integers (1.0 parses as 1).
      const texts = /"\d+"\s*:/.test(text) || /\d[.eE]|-0|\d{16}/.test(text)
        ? itemTexts(text)
        : object.items.map((item) => JSON.stringify(item));
      outputs = object.items.map((item, index) => ({
        topic: topicFor(item),
        key: msg.key,
        value: ENCODER.encode(texts[index]),
        headers: [...msg.headers, { key: 'weir.split.index', value: ENCODER.encode(String(index)) }],
      }));
    } else {
      outputs = [{ topic: topicFor(object), key: msg.key, value: msg.value, headers: msg.headers }];
    }

    const summary = outputs.length === 0
      ? 'dropped'
      : `${outputs.length} output(s) to ${outputs.map((o) => o.topic ?? '(output topic)').join(', ')}`;
    log('debug', `offset ${msg.offset}: ${summary}`);
    return outputs;
  },
};
