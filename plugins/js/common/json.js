// Strict JSON for the example plugins: a message value read the way the Rust
// examples' serde_json reads it, so every language answers the same verdict.
//
// JSON.parse alone is laxer than serde_json in five ways, each refused here:
// bytes that are not UTF-8 (TextDecoder would put U+FFFD), a leading BOM
// (TextDecoder would drop it), numbers too large for a double (1e400 would be
// Infinity), lone surrogate escapes ("\ud800"), and nesting deeper than
// serde_json's limit of 127 arrays/objects.
//
// The engine is an interpreter (no JIT inside a component), so a JavaScript
// loop over a large value is slow: the checks use native calls (JSON.parse,
// JSON.stringify, includes, split) first and walk values in JavaScript only
// when those say a rare case may be present.

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const MAX_DEPTH = 127;

function strict(key, value) {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new SyntaxError('number out of range');
  if (!key.isWellFormed() || (typeof value === 'string' && !value.isWellFormed())) {
    throw new SyntaxError('lone surrogate in a string');
  }
  return value;
}

const count = (text, part) => text.split(part).length - 1;

function parseStrict(text) {
  let value = JSON.parse(text);
  // Infinity and lone surrogates are rare: JSON.stringify writes Infinity as
  // `null` (so more nulls than the source has), and a surrogate needs a \u
  // escape. Only then pay for the reviver, a JavaScript call per value.
  // The reviver never sees a repeated key's dropped value, so surrogates and
  // numbers out of range are also looked for in the text itself.
  const compact = JSON.stringify(value);
  const escapes = /\\u[dD]/.test(text);
  if (escapes || count(compact, 'null') > count(text, 'null')) {
    value = JSON.parse(text, strict);
  }
  if (escapes && !(text.match(STRING) ?? []).every((token) => JSON.parse(token).isWellFormed())) {
    throw new SyntaxError('lone surrogate in a string');
  }
  if (/\d[eE]\+?\d{3}|\d{309}/.test(text)) {
    const numbers = text.replace(STRING, '""').match(/-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g) ?? [];
    if (!numbers.every((n) => Number.isFinite(Number(n)))) throw new SyntaxError('number out of range');
  }
  // Fewer opening brackets than the limit (most values) cannot nest deeper.
  if (text.length - text.replaceAll('[', '').replaceAll('{', '').length > MAX_DEPTH) {
    // Indented by one space a line, a value inside d containers starts with d
    // spaces: too deep is a line with 128, or an empty container at 127.
    const pretty = JSON.stringify(value, null, 1);
    const deep = '\n' + ' '.repeat(MAX_DEPTH);
    for (let at = pretty.indexOf(deep); at !== -1; at = pretty.indexOf(deep, at + 1)) {
      const end = pretty.indexOf('\n', at + 1);
      const line = pretty.slice(at + 1, end === -1 ? undefined : end).replace(/,$/, '');
      if (line[MAX_DEPTH] === ' ' || line.endsWith('[]') || line.endsWith('{}')) {
        throw new SyntaxError(`nested deeper than ${MAX_DEPTH} levels`);
      }
    }
  }
  return value;
}

// The text and the value of `bytes`; throws an Error whose message says why
// they are not strict JSON.
export function parseJson(bytes) {
  let text;
  try {
    text = UTF8.decode(bytes);
  } catch (e) {
    throw new Error(`value is not UTF-8: ${e.message}`);
  }
  try {
    return { text, value: parseStrict(text) };
  } catch (e) {
    throw new Error(`value is not JSON: ${e.message}`);
  }
}

// Parses a config value (already a string) as strictly as a message value.
export const parseText = parseStrict;

// A JSON string token, written to loop over runs of plain characters.
export const STRING = /"[^"\\]*(?:\\.[^"\\]*)*"/g;
