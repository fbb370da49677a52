/*
 * The strict layer over yyjson declared in json.h: one pass after yyjson's
 * parse checks the depth and looks for repeated keys; the rare document that
 * has them is written out without them and parsed again.
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- byte buffer ---- */

void json_buf_append(json_buf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            cap *= 2;
        }
        char *data = realloc(b->data, cap);
        if (data == NULL) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

void json_buf_free(json_buf *b) {
    free(b->data);
    *b = (json_buf){0};
}

/* ---- numbers ---- */

typedef enum { NUM_INT, NUM_UINT, NUM_FLOAT } num_kind;

/* yyjson reads a non-negative integer as a uint and a negative one as a
 * sint; "-0" is a sint 0, which serde_json reads as the double -0.0. */
static num_kind kind_of(yyjson_val *v) {
    if (yyjson_is_uint(v)) return NUM_UINT;
    if (yyjson_is_sint(v) && yyjson_get_sint(v) != 0) return NUM_INT;
    return NUM_FLOAT;
}

static double double_of(yyjson_val *v) {
    if (yyjson_is_sint(v) && yyjson_get_sint(v) == 0) return -0.0;
    return yyjson_get_num(v);
}

int json_number_cmp(yyjson_val *a, yyjson_val *b) {
    num_kind ka = kind_of(a), kb = kind_of(b);
    if (ka != NUM_FLOAT && kb != NUM_FLOAT) {
        /* NUM_INT is always negative, NUM_UINT never */
        if (ka != kb) return ka == NUM_INT ? -1 : 1;
        if (ka == NUM_INT) {
            int64_t x = yyjson_get_sint(a), y = yyjson_get_sint(b);
            return (x > y) - (x < y);
        }
        uint64_t x = yyjson_get_uint(a), y = yyjson_get_uint(b);
        return (x > y) - (x < y);
    }
    double x = double_of(a), y = double_of(b);
    return (x > y) - (x < y);
}

bool json_is_integer(yyjson_val *v) {
    if (!yyjson_is_num(v)) return false;
    if (kind_of(v) != NUM_FLOAT) return true;
    double f = double_of(v);
    return f == trunc(f);
}

/* ---- queries ---- */

/* An object's first key; the keys and values alternate, so a key's value
 * is key + 1 and the next key is unsafe_yyjson_get_next(key + 1). */
static yyjson_val *first_key(yyjson_val *obj) { return unsafe_yyjson_get_first(obj); }

static bool same_string(yyjson_val *a, yyjson_val *b) {
    size_t n = yyjson_get_len(a);
    return n == yyjson_get_len(b) && memcmp(yyjson_get_str(a), yyjson_get_str(b), n) == 0;
}

/* The value of the member whose key equals `key`, or NULL. */
static yyjson_val *get_key(yyjson_val *obj, yyjson_val *key) {
    size_t i, max;
    yyjson_val *k, *v;
    yyjson_obj_foreach(obj, i, max, k, v) {
        if (same_string(k, key)) return v;
    }
    return NULL;
}

bool json_equal(yyjson_val *a, yyjson_val *b) {
    yyjson_type t = yyjson_get_type(a);
    if (t != yyjson_get_type(b)) return false;
    switch (t) {
    case YYJSON_TYPE_NULL: return true;
    case YYJSON_TYPE_BOOL: return yyjson_get_bool(a) == yyjson_get_bool(b);
    case YYJSON_TYPE_NUM: return json_number_cmp(a, b) == 0;
    case YYJSON_TYPE_STR: return same_string(a, b);
    case YYJSON_TYPE_ARR: {
        if (yyjson_arr_size(a) != yyjson_arr_size(b)) return false;
        yyjson_val *x = yyjson_arr_get_first(a), *y = yyjson_arr_get_first(b);
        for (size_t i = 0; i < yyjson_arr_size(a); i++, x = unsafe_yyjson_get_next(x), y = unsafe_yyjson_get_next(y))
            if (!json_equal(x, y)) return false;
        return true;
    }
    case YYJSON_TYPE_OBJ: {
        if (yyjson_obj_size(a) != yyjson_obj_size(b)) return false;
        size_t i, max;
        yyjson_val *k, *v;
        yyjson_obj_foreach(a, i, max, k, v) {
            yyjson_val *other = get_key(b, k);
            if (other == NULL || !json_equal(v, other)) return false;
        }
        return true;
    }
    default: return false;
    }
}

size_t json_string_chars(yyjson_val *v) {
    const char *s = yyjson_get_str(v);
    size_t n = 0, len = yyjson_get_len(v);
    for (size_t i = 0; i < len; i++) n += ((uint8_t)s[i] & 0xC0) != 0x80;
    return n;
}

const char *json_type_name(yyjson_val *v) {
    switch (yyjson_get_type(v)) {
    case YYJSON_TYPE_NULL: return "null";
    case YYJSON_TYPE_BOOL: return "boolean";
    case YYJSON_TYPE_NUM: return "number";
    case YYJSON_TYPE_STR: return "string";
    case YYJSON_TYPE_ARR: return "array";
    default: return "object";
    }
}

/* ---- writer ---- */

static void write_string(json_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    json_buf_append(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed before each escape */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        const char *esc = NULL;
        char u[6];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c >= 0x20) continue;
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
        }
        json_buf_append(b, s + run, i - run);
        if (esc != NULL) json_buf_append(b, esc, strlen(esc));
        else json_buf_append(b, u, 6);
        run = i + 1;
    }
    json_buf_append(b, s + run, n - run);
    json_buf_append(b, "\"", 1);
}

/* The shortest digits that read back as f, laid out as serde_json 1.0.154 does (fixed
 * notation from 1e-5 to below 1e16, else d.ddde+x). */
static void write_double(json_buf *b, double f) {
    char tmp[40];
    if (f == 0) {
        json_buf_append(b, signbit(f) ? "-0.0" : "0.0", signbit(f) ? 4 : 3);
        return;
    }
    if (f < 0) {
        json_buf_append(b, "-", 1);
        f = -f;
    }
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(tmp, sizeof tmp, "%.*e", precision - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp is d[.ddd]e±x: gather the digits and the decimal exponent */
    char digits[20];
    int length = 0;
    char *p = tmp;
    for (; *p != 'e'; p++)
        if (*p != '.') digits[length++] = *p;
    int exp10 = atoi(p + 1);
    int k = exp10 - (length - 1); /* value = digits * 10^k */
    int kk = length + k;          /* 10^(kk-1) <= value < 10^kk */
    if (k >= 0 && kk <= 16) {
        json_buf_append(b, digits, (size_t)length);
        for (int i = length; i < kk; i++) json_buf_append(b, "0", 1);
        json_buf_append(b, ".0", 2);
    } else if (kk > 0 && kk <= 16) {
        json_buf_append(b, digits, (size_t)kk);
        json_buf_append(b, ".", 1);
        json_buf_append(b, digits + kk, (size_t)(length - kk));
    } else if (kk > -5 && kk <= 0) {
        json_buf_append(b, "0.", 2);
        for (int i = kk; i < 0; i++) json_buf_append(b, "0", 1);
        json_buf_append(b, digits, (size_t)length);
    } else {
        json_buf_append(b, digits, 1);
        if (length > 1) {
            json_buf_append(b, ".", 1);
            json_buf_append(b, digits + 1, (size_t)(length - 1));
        }
        int n = snprintf(tmp, sizeof tmp, "e%+d", kk - 1);
        json_buf_append(b, tmp, (size_t)n);
    }
}

/* With `dedupe`, a repeated key is written once, at its first position, with
 * its last value (what json_parse makes of a document that repeats keys). */
static void write_value(json_buf *b, yyjson_val *v, bool dedupe) {
    char tmp[24];
    size_t i, max;
    yyjson_val *k, *x;
    switch (yyjson_get_type(v)) {
    case YYJSON_TYPE_NULL: json_buf_append(b, "null", 4); break;
    case YYJSON_TYPE_BOOL: json_buf_append(b, yyjson_get_bool(v) ? "true" : "false", yyjson_get_bool(v) ? 4 : 5); break;
    case YYJSON_TYPE_NUM:
        switch (kind_of(v)) {
        case NUM_INT: json_buf_append(b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%lld", (long long)yyjson_get_sint(v))); break;
        case NUM_UINT: json_buf_append(b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)yyjson_get_uint(v))); break;
        case NUM_FLOAT: write_double(b, double_of(v)); break;
        }
        break;
    case YYJSON_TYPE_STR: write_string(b, yyjson_get_str(v), yyjson_get_len(v)); break;
    case YYJSON_TYPE_ARR:
        json_buf_append(b, "[", 1);
        yyjson_arr_foreach(v, i, max, x) {
            if (i) json_buf_append(b, ",", 1);
            write_value(b, x, dedupe);
        }
        json_buf_append(b, "]", 1);
        break;
    default: {
        bool first = true;
        json_buf_append(b, "{", 1);
        yyjson_obj_foreach(v, i, max, k, x) {
            yyjson_val *value = x; /* not x itself: the loop steps from it */
            if (dedupe) {
                /* skip a repeat; for a first occurrence, take the last value */
                yyjson_val *k2 = first_key(v), *last = x;
                bool repeat = false;
                for (size_t j = 0; j < max; j++, k2 = unsafe_yyjson_get_next(k2 + 1)) {
                    if (j != i && same_string(k, k2)) {
                        if (j < i) repeat = true;
                        else last = k2 + 1;
                    }
                }
                if (repeat) continue;
                value = last;
            }
            if (!first) json_buf_append(b, ",", 1);
            first = false;
            write_string(b, yyjson_get_str(k), yyjson_get_len(k));
            json_buf_append(b, ":", 1);
            write_value(b, value, dedupe);
        }
        json_buf_append(b, "}", 1);
    }
    }
}

bool json_write(json_buf *b, yyjson_val *v) {
    write_value(b, v, false);
    return !b->failed;
}

/* ---- parse ---- */

static int key_cmp(const void *a, const void *b) {
    yyjson_val *x = *(yyjson_val *const *)a, *y = *(yyjson_val *const *)b;
    size_t nx = yyjson_get_len(x), ny = yyjson_get_len(y);
    if (nx != ny) return nx < ny ? -1 : 1;
    return memcmp(yyjson_get_str(x), yyjson_get_str(y), nx);
}

/* Whether an object repeats a key: pairwise for a small one, sorted for a
 * large one. -1: out of memory. */
static int has_repeats(yyjson_val *obj) {
    size_t n = yyjson_obj_size(obj);
    yyjson_val *first = first_key(obj);
    if (n <= 32) {
        yyjson_val *a = first;
        for (size_t i = 0; i < n; i++, a = unsafe_yyjson_get_next(a + 1)) {
            yyjson_val *b = unsafe_yyjson_get_next(a + 1);
            for (size_t j = i + 1; j < n; j++, b = unsafe_yyjson_get_next(b + 1))
                if (same_string(a, b)) return 1;
        }
        return 0;
    }
    yyjson_val **keys = malloc(n * sizeof *keys);
    if (keys == NULL) return -1;
    yyjson_val *k = first;
    for (size_t i = 0; i < n; i++, k = unsafe_yyjson_get_next(k + 1)) keys[i] = k;
    qsort(keys, n, sizeof *keys, key_cmp);
    int found = 0;
    for (size_t i = 1; i < n && !found; i++) found = key_cmp(&keys[i - 1], &keys[i]) == 0;
    free(keys);
    return found;
}

typedef enum { SCAN_OK, SCAN_REPEATS, SCAN_TOO_DEEP, SCAN_NO_MEMORY } scan_result;

static scan_result scan(yyjson_val *v, int depth) {
    size_t i, max;
    yyjson_val *k, *x;
    scan_result r = SCAN_OK, sub;
    if (!yyjson_is_ctn(v)) return SCAN_OK;
    if (depth >= JSON_MAX_DEPTH) return SCAN_TOO_DEEP;
    if (yyjson_is_arr(v)) {
        yyjson_arr_foreach(v, i, max, x) {
            if ((sub = scan(x, depth + 1)) > r) r = sub;
            if (r >= SCAN_TOO_DEEP) return r;
        }
        return r;
    }
    int repeats = has_repeats(v);
    if (repeats < 0) return SCAN_NO_MEMORY;
    if (repeats) r = SCAN_REPEATS;
    yyjson_obj_foreach(v, i, max, k, x) {
        if ((sub = scan(x, depth + 1)) > r) r = sub;
        if (r >= SCAN_TOO_DEEP) return r;
    }
    return r;
}

yyjson_doc *json_parse(const uint8_t *bytes, size_t len, char *err, size_t err_len) {
    yyjson_read_err e;
    yyjson_doc *doc = yyjson_read_opts((char *)bytes, len, YYJSON_READ_NOFLAG, NULL, &e);
    if (doc == NULL) {
        snprintf(err, err_len, "%s at byte %zu", e.msg, e.pos);
        return NULL;
    }
    switch (scan(yyjson_doc_get_root(doc), 0)) {
    case SCAN_OK: return doc;
    case SCAN_TOO_DEEP:
        snprintf(err, err_len, "nested more than %d arrays and objects deep", JSON_MAX_DEPTH);
        break;
    case SCAN_NO_MEMORY: snprintf(err, err_len, "out of memory"); break;
    case SCAN_REPEATS: {
        json_buf b = {0};
        write_value(&b, yyjson_doc_get_root(doc), true);
        yyjson_doc_free(doc);
        doc = b.failed ? NULL : yyjson_read_opts(b.data, b.len, YYJSON_READ_NOFLAG, NULL, &e);
        json_buf_free(&b);
        if (doc != NULL) return doc;
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    }
    yyjson_doc_free(doc);
    return NULL;
}
