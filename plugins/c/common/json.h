/*
 * Strict JSON (RFC 8259) for the C example plugins: yyjson parses, this thin
 * layer adds what serde_json checks and yyjson does not, so the C plugins
 * give the Rust ones' verdicts. yyjson's defaults already refuse NaN,
 * Infinity, trailing commas, comments, leading zeros, '+', single quotes,
 * trailing content, raw control characters, invalid UTF-8 (overlongs,
 * surrogates, past U+10FFFF), lone or unpaired \u surrogates and numbers
 * that overflow a double (1e400). json_parse adds:
 * - at most JSON_MAX_DEPTH nested arrays/objects (serde_json's limit);
 * - a repeated object key keeps its first position and takes the last value
 *   (serde_json's Map with `preserve_order`): such a document is rewritten
 *   without the repeats, so yyjson_obj_get and iteration see each key once.
 * json_write writes compact JSON byte for byte as serde_json's to_string.
 *
 * yyjson's sources are not in this repository: plugins/c/setup.sh puts
 * yyjson 0.10.0 (MIT, from the yyjson-sys crate) into the toolchain cache and
 * the build compiles them beside these files.
 *
 * Ownership: a parse is one yyjson_doc; yyjson_doc_free releases all of it.
 */
#ifndef WEIR_JSON_H
#define WEIR_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yyjson.h"

#define JSON_MAX_DEPTH 127

/* Parses `len` bytes. On failure returns NULL and writes a message naming
 * the problem and its byte offset into err. */
yyjson_doc *json_parse(const uint8_t *bytes, size_t len, char *err, size_t err_len);

/* JSON equality: numbers by value (1 == 1.0), objects regardless of order. */
bool json_equal(yyjson_val *a, yyjson_val *b);
/* Whether a number is an integer in JSON Schema's sense (1.0 is, 1.5 is not). */
bool json_is_integer(yyjson_val *v);
/* a < b: -1, a == b: 0, a > b: 1, for two numbers (exact for integers). */
int json_number_cmp(yyjson_val *a, yyjson_val *b);
/* The number of Unicode code points in a JSON string value. */
size_t json_string_chars(yyjson_val *v);
/* null, boolean, number, string, array or object. */
const char *json_type_name(yyjson_val *v);

/* A growable byte buffer; `failed` is set once an allocation fails. */
typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} json_buf;

void json_buf_append(json_buf *b, const char *s, size_t n);
void json_buf_free(json_buf *b);

/*
 * Appends v as compact JSON, byte for byte what serde_json's to_string
 * writes: no spaces, object members in input order, non-ASCII as raw UTF-8,
 * only '"', '\\' and control characters escaped, integers exact, other
 * numbers as the shortest round-tripping form in its layout (1.5, 100.0,
 * 1e+100, 1e-7). Returns false if out of memory.
 */
bool json_write(json_buf *b, yyjson_val *v);

#endif
