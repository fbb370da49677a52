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
// regular expressions, replaceAll) first and walk values in JavaScript only
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

function parseStrict(text) {
  let value = JSON.parse(text);
  // Lone surrogates are rare: they need a \u escape. Only then pay for the
  // reviver, a JavaScript call per value. The reviver never sees a repeated
  // key's dropped value, so the text's own string tokens are checked too.
  const escapes = /\\u[dD]/.test(text);
  if (escapes) {
    value = JSON.parse(text, strict);
    if (!(text.match(STRING) ?? []).every((token) => JSON.parse(token).isWellFormed())) {
      throw new SyntaxError('lone surrogate in a string');
    }
  }
  // A number past a double's range (about 1.8e308) has an exponent of three
  // digits or a run of digits above 200 (308 less an exponent of at most 99):
  // only such a text has its numbers read one by one (a repeated key's
  // dropped value included, which JSON.parse alone would not show).
  if (/\d[eE]\+?\d{3}|\d{200}/.test(text)) {
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
