/*
 * The strict JSON parser and compact writer declared in json.h: a recursive
 * descent over the bytes, every value allocated from the document's arena.
 */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena: chunks freed all at once by json_doc_free ---- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
} chunk;

struct json_doc {
    chunk *chunks;
};

static void *arena_alloc(json_doc *doc, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    chunk *c = doc->chunks;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        c = malloc(sizeof(chunk) + cap);
        if (c == NULL) return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = doc->chunks;
        doc->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

void json_doc_free(json_doc *doc) {
    if (doc == NULL) return;
    chunk *c = doc->chunks;
    while (c != NULL) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    free(doc);
}

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

/* ---- parser ---- */

typedef struct {
    const uint8_t *p, *start, *end;
    json_doc *doc;
    json_buf scratch; /* a string's decoded bytes before they move to the arena */
    int depth;
    char *err;
    size_t err_len;
    bool failed;
} parser;

static void *fail(parser *ps, const char *what) {
    if (!ps->failed) {
        snprintf(ps->err, ps->err_len, "%s at byte %zu", what, (size_t)(ps->p - ps->start));
        ps->failed = true;
    }
    return NULL;
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static json_value *new_value(parser *ps, json_type type) {
    json_value *v = arena_alloc(ps->doc, sizeof *v);
    if (v == NULL) return fail(ps, "out of memory");
    memset(v, 0, sizeof *v);
    v->type = type;
    return v;
}

static bool literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return false;
    ps->p += n;
    return true;
}

/* Length of the valid UTF-8 sequence at p (at most end), or 0 if invalid. */
static size_t utf8_len(const uint8_t *p, const uint8_t *end) {
    size_t avail = (size_t)(end - p);
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90) return 0; /* past U+10FFFF */
        return 4;
    }
    return 0;
}

static void put_utf8(json_buf *b, uint32_t cp) {
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | cp >> 18);
        out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    json_buf_append(b, out, n);
}

static int hex4(parser *ps) {
    if (ps->end - ps->p < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = ps->p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    ps->p += 4;
    return v;
}

/* Parses a string (ps->p just past the opening quote) into the arena. */
static bool parse_string(parser *ps, const char **out, size_t *out_len) {
    json_buf *b = &ps->scratch;
    b->len = 0;
    for (;;) {
        if (ps->p >= ps->end) return fail(ps, "unterminated string"), false;
        uint8_t c = *ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) return fail(ps, "control character in string"), false;
        if (c == '\\') {
            ps->p++;
            if (ps->p >= ps->end) return fail(ps, "unterminated string"), false;
            uint8_t e = *ps->p++;
            const char *simple = NULL;
            switch (e) {
            case '"': simple = "\""; break;
            case '\\': simple = "\\"; break;
            case '/': simple = "/"; break;
            case 'b': simple = "\b"; break;
            case 'f': simple = "\f"; break;
            case 'n': simple = "\n"; break;
            case 'r': simple = "\r"; break;
            case 't': simple = "\t"; break;
            case 'u': {
                int cp = hex4(ps);
                if (cp < 0) return fail(ps, "bad \\u escape"), false;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(ps, "lone surrogate in \\u escape"), false;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
                        return fail(ps, "lone surrogate in \\u escape"), false;
                    ps->p += 2;
                    int lo = hex4(ps);
                    if (lo < 0) return fail(ps, "bad \\u escape"), false;
                    if (lo < 0xDC00 || lo > 0xDFFF) return fail(ps, "lone surrogate in \\u escape"), false;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                put_utf8(b, (uint32_t)cp);
                continue;
            }
            default:
                ps->p--;
                return fail(ps, "bad escape in string"), false;
            }
            json_buf_append(b, simple, 1);
            continue;
        }
        size_t n = utf8_len(ps->p, ps->end);
        if (n == 0) return fail(ps, "invalid UTF-8 in string"), false;
        json_buf_append(b, (const char *)ps->p, n);
        ps->p += n;
    }
    if (b->failed) return fail(ps, "out of memory"), false;
    char *s = arena_alloc(ps->doc, b->len + 1);
    if (s == NULL) return fail(ps, "out of memory"), false;
    if (b->len) memcpy(s, b->data, b->len);
    s[b->len] = '\0';
    *out = s;
    *out_len = b->len;
    return true;
}

static json_value *parse_number(parser *ps) {
    const uint8_t *start = ps->p;
    bool negative = false, integer = true;
    if (*ps->p == '-') {
        negative = true;
        ps->p++;
    }
    if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return fail(ps, "invalid number");
    if (*ps->p == '0') {
        ps->p++;
        if (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') return fail(ps, "leading zero in number");
    } else {
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    if (ps->p < ps->end && *ps->p == '.') {
        integer = false;
        ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return fail(ps, "invalid number");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integer = false;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return fail(ps, "invalid number");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    size_t n = (size_t)(ps->p - start);
    json_value *v = new_value(ps, JSON_NUMBER);
    if (v == NULL) return NULL;
    /* strtod wants a NUL-terminated copy; a long one goes in the arena */
    char small[64], *text = n < sizeof small ? small : arena_alloc(ps->doc, n + 1);
    if (text == NULL) return fail(ps, "out of memory");
    memcpy(text, start, n);
    text[n] = '\0';
    v->number.kind = JSON_FLOAT;
    errno = 0;
    if (integer && !negative) {
        unsigned long long u = strtoull(text, NULL, 10);
        if (errno == 0) {
            v->number.kind = JSON_UINT;
            v->number.u = u;
        }
    } else if (integer) {
        long long i = strtoll(text, NULL, 10);
        /* serde_json reads "-0" as the double -0.0 */
        if (errno == 0 && i != 0) {
            v->number.kind = JSON_INT;
            v->number.i = i;
        }
    }
    v->number.f = strtod(text, NULL);
    if (isinf(v->number.f)) {
        ps->p = start;
        return fail(ps, "number out of range");
    }
    return v;
}

static json_value *parse_value(parser *ps);

static bool push(parser *ps, json_buf *list, const void *item, size_t size) {
    json_buf_append(list, item, size);
    if (list->failed) return fail(ps, "out of memory"), false;
    return true;
}

/* Moves a temporary list into the arena. */
static void *settle(parser *ps, json_buf *list) {
    if (list->len == 0) return NULL;
    void *p = arena_alloc(ps->doc, list->len);
    if (p == NULL) return fail(ps, "out of memory");
    memcpy(p, list->data, list->len);
    return p;
}

static json_value *parse_array(parser *ps) {
    json_value *v = new_value(ps, JSON_ARRAY);
    if (v == NULL) return NULL;
    json_buf items = {0};
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return v;
    }
    for (;;) {
        json_value *item = parse_value(ps);
        if (item == NULL || !push(ps, &items, &item, sizeof item)) goto error;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ']') {
                fail(ps, "trailing comma in array");
                goto error;
            }
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            break;
        }
        fail(ps, ps->p >= ps->end ? "unterminated array" : "expected ',' or ']'");
        goto error;
    }
    v->array.len = items.len / sizeof(json_value *);
    v->array.items = settle(ps, &items);
    json_buf_free(&items);
    return ps->failed ? NULL : v;
error:
    json_buf_free(&items);
    return NULL;
}

static json_value *parse_object(parser *ps) {
    json_value *v = new_value(ps, JSON_OBJECT);
    if (v == NULL) return NULL;
    json_buf members = {0};
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return v;
    }
    for (;;) {
        json_member m;
        if (ps->p >= ps->end || *ps->p != '"') {
            fail(ps, ps->p >= ps->end ? "unterminated object" : "expected a string key");
            goto error;
        }
        ps->p++;
        if (!parse_string(ps, &m.key, &m.key_len)) goto error;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            fail(ps, "expected ':'");
            goto error;
        }
        ps->p++;
        m.value = parse_value(ps);
        if (m.value == NULL) goto error;
        /* A repeated key: first position, last value (serde_json's Map). */
        json_member *seen = (json_member *)members.data;
        size_t count = members.len / sizeof(json_member), i;
        for (i = 0; i < count; i++) {
            if (seen[i].key_len == m.key_len && memcmp(seen[i].key, m.key, m.key_len) == 0) {
                seen[i].value = m.value;
                break;
            }
        }
        if (i == count && !push(ps, &members, &m, sizeof m)) goto error;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == '}') {
                fail(ps, "trailing comma in object");
                goto error;
            }
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            break;
        }
        fail(ps, ps->p >= ps->end ? "unterminated object" : "expected ',' or '}'");
        goto error;
    }
    v->object.len = members.len / sizeof(json_member);
    v->object.members = settle(ps, &members);
    json_buf_free(&members);
    return ps->failed ? NULL : v;
error:
    json_buf_free(&members);
    return NULL;
}

static json_value *parse_value(parser *ps) {
    skip_ws(ps);
    if (ps->p >= ps->end) return fail(ps, "unexpected end of input");
    switch (*ps->p) {
    case '{':
    case '[': {
        if (++ps->depth > JSON_MAX_DEPTH) return fail(ps, "nested too deeply");
        bool object = *ps->p++ == '{';
        json_value *v = object ? parse_object(ps) : parse_array(ps);
        ps->depth--;
        return v;
    }
    case '"': {
        ps->p++;
        json_value *v = new_value(ps, JSON_STRING);
        if (v == NULL || !parse_string(ps, &v->string.data, &v->string.len)) return NULL;
        return v;
    }
    case 't':
    case 'f': {
        json_value *v = new_value(ps, JSON_BOOL);
        if (v == NULL) return NULL;
        v->boolean = *ps->p == 't';
        if (!literal(ps, v->boolean ? "true" : "false")) return fail(ps, "invalid literal");
        return v;
    }
    case 'n':
        if (!literal(ps, "null")) return fail(ps, "invalid literal");
        return new_value(ps, JSON_NULL);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps);
        return fail(ps, "expected a JSON value");
    }
}

json_value *json_parse(const uint8_t *bytes, size_t len, json_doc **doc, char *err, size_t err_len) {
    parser ps = {.p = bytes, .start = bytes, .end = bytes + len, .err = err, .err_len = err_len};
    *doc = NULL;
    if (err_len) err[0] = '\0';
    ps.doc = calloc(1, sizeof *ps.doc);
    if (ps.doc == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    json_value *root = parse_value(&ps);
    if (root != NULL) {
        skip_ws(&ps);
        if (ps.p != ps.end) root = fail(&ps, "trailing characters after the JSON value");
    }
    json_buf_free(&ps.scratch);
    if (root == NULL) {
        json_doc_free(ps.doc);
        return NULL;
    }
    *doc = ps.doc;
    return root;
}

/* ---- queries ---- */

const json_value *json_get(const json_value *v, const char *key) {
    if (v == NULL || v->type != JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < v->object.len; i++) {
        const json_member *m = &v->object.members[i];
        if (m->key_len == n && memcmp(m->key, key, n) == 0) return m->value;
    }
    return NULL;
}

static const json_value *get_n(const json_value *v, const char *key, size_t n) {
    for (size_t i = 0; i < v->object.len; i++) {
        const json_member *m = &v->object.members[i];
        if (m->key_len == n && memcmp(m->key, key, n) == 0) return m->value;
    }
    return NULL;
}

int json_number_cmp(const json_value *a, const json_value *b) {
    json_number_kind ka = a->number.kind, kb = b->number.kind;
    if (ka != JSON_FLOAT && kb != JSON_FLOAT) {
        /* JSON_INT is always negative, JSON_UINT never */
        if (ka != kb) return ka == JSON_INT ? -1 : 1;
        if (ka == JSON_INT) return (a->number.i > b->number.i) - (a->number.i < b->number.i);
        return (a->number.u > b->number.u) - (a->number.u < b->number.u);
    }
    return (a->number.f > b->number.f) - (a->number.f < b->number.f);
}

bool json_equal(const json_value *a, const json_value *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case JSON_NULL: return true;
    case JSON_BOOL: return a->boolean == b->boolean;
    case JSON_NUMBER: return json_number_cmp(a, b) == 0;
    case JSON_STRING: return a->string.len == b->string.len && memcmp(a->string.data, b->string.data, a->string.len) == 0;
    case JSON_ARRAY:
        if (a->array.len != b->array.len) return false;
        for (size_t i = 0; i < a->array.len; i++)
            if (!json_equal(a->array.items[i], b->array.items[i])) return false;
        return true;
    case JSON_OBJECT:
        if (a->object.len != b->object.len) return false;
        for (size_t i = 0; i < a->object.len; i++) {
            const json_member *m = &a->object.members[i];
            const json_value *other = get_n(b, m->key, m->key_len);
            if (other == NULL || !json_equal(m->value, other)) return false;
        }
        return true;
    }
    return false;
}

bool json_is_integer(const json_value *v) {
    return v->type == JSON_NUMBER && (v->number.kind != JSON_FLOAT || v->number.f == trunc(v->number.f));
}

size_t json_string_chars(const json_value *v) {
    size_t n = 0;
    for (size_t i = 0; i < v->string.len; i++) n += ((uint8_t)v->string.data[i] & 0xC0) != 0x80;
    return n;
}

const char *json_type_name(json_type type) {
    static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
    return names[type];
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

static void write_value(json_buf *b, const json_value *v) {
    char tmp[24];
    switch (v->type) {
    case JSON_NULL: json_buf_append(b, "null", 4); break;
    case JSON_BOOL: json_buf_append(b, v->boolean ? "true" : "false", v->boolean ? 4 : 5); break;
    case JSON_NUMBER:
        if (v->number.kind == JSON_INT) json_buf_append(b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%lld", (long long)v->number.i));
        else if (v->number.kind == JSON_UINT) json_buf_append(b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v->number.u));
        else write_double(b, v->number.f);
        break;
    case JSON_STRING: write_string(b, v->string.data, v->string.len); break;
    case JSON_ARRAY:
        json_buf_append(b, "[", 1);
        for (size_t i = 0; i < v->array.len; i++) {
            if (i) json_buf_append(b, ",", 1);
            write_value(b, v->array.items[i]);
        }
        json_buf_append(b, "]", 1);
        break;
    case JSON_OBJECT:
        json_buf_append(b, "{", 1);
        for (size_t i = 0; i < v->object.len; i++) {
            if (i) json_buf_append(b, ",", 1);
            write_string(b, v->object.members[i].key, v->object.members[i].key_len);
            json_buf_append(b, ":", 1);
            write_value(b, v->object.members[i].value);
        }
        json_buf_append(b, "}", 1);
        break;
    }
}

bool json_write(json_buf *b, const json_value *v) {
    write_value(b, v);
    return !b->failed;
}
