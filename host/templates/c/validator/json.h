/*
 * A small strict JSON (RFC 8259) parser and compact writer, shared by the C
 * example plugins. C has no JSON library of its own; this one accepts exactly
 * what Rust's serde_json accepts, so the C plugins give the Rust ones'
 * verdicts:
 * - no NaN/Infinity, no trailing commas, no comments, no leading zeros or
 *   '+', no single quotes, nothing but whitespace after the value;
 * - strings are valid UTF-8 (no overlongs, no surrogates, nothing past
 *   U+10FFFF), have no raw control characters, and only the eight escapes
 *   plus \uXXXX, whose surrogates must pair up;
 * - a number that overflows a double is an error (1e400), as in serde_json;
 * - at most JSON_MAX_DEPTH nested arrays/objects (serde_json's limit);
 * - a repeated object key keeps its first position and takes the last value
 *   (serde_json's Map with `preserve_order`).
 *
 * Ownership: every value of a parse lives in one arena owned by the
 * `json_doc`; json_doc_free releases all of it at once, so a per-message
 * parse cannot leak piecemeal. Values are read-only after the parse.
 */
#ifndef WEIR_JSON_H
#define WEIR_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 127

typedef enum {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
} json_type;

/* How a number was written: an integer literal that fits i64 (negative) or
 * u64 (non-negative) stays exact; anything else is a double. */
typedef enum { JSON_INT, JSON_UINT, JSON_FLOAT } json_number_kind;

typedef struct json_value json_value;

typedef struct {
    const char *key; /* UTF-8, NUL-terminated; may contain NUL (see key_len) */
    size_t key_len;
    json_value *value;
} json_member;

struct json_value {
    json_type type;
    union {
        bool boolean;
        struct {
            json_number_kind kind;
            int64_t i;  /* JSON_INT */
            uint64_t u; /* JSON_UINT */
            double f;   /* always set: the value as a double */
        } number;
        struct {
            const char *data; /* decoded UTF-8, NUL-terminated */
            size_t len;
        } string;
        struct {
            json_value **items;
            size_t len;
        } array;
        struct {
            json_member *members; /* in input order */
            size_t len;
        } object;
    };
};

typedef struct json_doc json_doc;

/*
 * Parses `len` bytes. On success returns the root value and sets *doc (free
 * it with json_doc_free). On failure returns NULL, sets *doc to NULL and
 * writes a message naming the problem and its byte offset into err.
 * Running out of memory is reported the same way ("out of memory").
 */
json_value *json_parse(const uint8_t *bytes, size_t len, json_doc **doc, char *err, size_t err_len);
void json_doc_free(json_doc *doc);

/* The member of an object named by the NUL-terminated key, or NULL (also when
 * v is not an object). */
const json_value *json_get(const json_value *v, const char *key);
/* JSON equality: numbers by value (1 == 1.0), objects regardless of order. */
bool json_equal(const json_value *a, const json_value *b);
/* Whether a number is an integer in JSON Schema's sense (1.0 is, 1.5 is not). */
bool json_is_integer(const json_value *v);
/* a < b: -1, a == b: 0, a > b: 1, for two numbers (exact for integers). */
int json_number_cmp(const json_value *a, const json_value *b);
/* The number of Unicode code points in a JSON string value. */
size_t json_string_chars(const json_value *v);
const char *json_type_name(json_type type);

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
bool json_write(json_buf *b, const json_value *v);

#endif
