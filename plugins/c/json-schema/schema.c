/* The JSON Schema subset of schema.h: check once in init, walk per message. */
#include "schema.h"

#include <stdio.h>
#include <string.h>

static const char *const ANNOTATIONS[] = {"$schema", "$id", "$comment", "title", "description", "default",
                                          "examples", "deprecated", "readOnly", "writeOnly", NULL};
static const char *const TYPES[] = {"null", "boolean", "object", "array", "number", "string", "integer", NULL};
#define SUPPORTED                                                                                        \
    "type, properties, required, additionalProperties, items, enum, const, minimum, maximum, "           \
    "exclusiveMinimum, exclusiveMaximum, minLength, maxLength, minItems, maxItems"

static bool is(const char *key, const char *name) { return strcmp(key, name) == 0; }

static bool in(const char *key, const char *const *list) {
    for (; *list != NULL; list++)
        if (is(key, *list)) return true;
    return false;
}

/* ---- check ---- */

static bool check_at(const json_value *s, char *path, size_t path_len, char *err, size_t err_len);

/* Recurses into a sub-schema at path + suffix. */
static bool check_sub(const json_value *s, char *path, size_t path_len, const char *suffix, char *err, size_t err_len) {
    size_t n = strlen(path);
    snprintf(path + n, path_len - n, "%s", suffix);
    bool ok = check_at(s, path, path_len, err, err_len);
    path[n] = '\0';
    return ok;
}

static bool check_at(const json_value *s, char *path, size_t path_len, char *err, size_t err_len) {
    const char *where = path[0] ? path : "(root)";
    if (s->type == JSON_BOOL) return true;
    if (s->type != JSON_OBJECT) return snprintf(err, err_len, "%s: a schema must be an object or a boolean", where), false;
    for (size_t i = 0; i < s->object.len; i++) {
        const char *k = s->object.members[i].key;
        const json_value *v = s->object.members[i].value;
        const char *bad = NULL; /* what the keyword's value should have been */
        if (in(k, ANNOTATIONS)) continue;
        if (is(k, "type")) {
            bool ok = v->type == JSON_STRING ? in(v->string.data, TYPES) : v->type == JSON_ARRAY && v->array.len > 0;
            for (size_t j = 0; v->type == JSON_ARRAY && j < v->array.len; j++)
                ok = ok && v->array.items[j]->type == JSON_STRING && in(v->array.items[j]->string.data, TYPES);
            if (!ok) bad = "a type name (null, boolean, object, array, number, string, integer) or a list of them";
        } else if (is(k, "properties")) {
            if (v->type != JSON_OBJECT) bad = "an object of schemas";
            for (size_t j = 0; !bad && j < v->object.len; j++) {
                char suffix[160];
                snprintf(suffix, sizeof suffix, "/properties/%s", v->object.members[j].key);
                if (!check_sub(v->object.members[j].value, path, path_len, suffix, err, err_len)) return false;
            }
        } else if (is(k, "required")) {
            if (v->type != JSON_ARRAY) bad = "a list of property names";
            for (size_t j = 0; !bad && j < v->array.len; j++)
                if (v->array.items[j]->type != JSON_STRING) bad = "a list of property names";
        } else if (is(k, "additionalProperties")) {
            if (!check_sub(v, path, path_len, "/additionalProperties", err, err_len)) return false;
        } else if (is(k, "items")) {
            if (v->type == JSON_ARRAY) bad = "one schema for every item (a list of schemas, draft 4-7 tuples, is not supported)";
            else if (!check_sub(v, path, path_len, "/items", err, err_len)) return false;
        } else if (is(k, "enum")) {
            if (v->type != JSON_ARRAY) bad = "a list of values";
        } else if (is(k, "const")) {
        } else if (is(k, "minimum") || is(k, "maximum") || is(k, "exclusiveMinimum") || is(k, "exclusiveMaximum")) {
            if (v->type != JSON_NUMBER) bad = "a number";
        } else if (is(k, "minLength") || is(k, "maxLength") || is(k, "minItems") || is(k, "maxItems")) {
            if (v->type != JSON_NUMBER || !json_is_integer(v) || v->number.f < 0) bad = "a non-negative integer";
        } else {
            return snprintf(err, err_len, "%s: keyword \"%s\" is not supported by this plugin's JSON Schema subset (supported: " SUPPORTED ")", where, k), false;
        }
        if (bad) return snprintf(err, err_len, "%s: \"%s\" must be %s", where, k, bad), false;
    }
    return true;
}

bool schema_check(const json_value *schema, char *err, size_t err_len) {
    char path[1024] = "";
    return check_at(schema, path, sizeof path, err, err_len);
}

/* ---- validate ---- */

typedef struct {
    json_buf *out;
    size_t count, max;
    char path[1024]; /* the instance's JSON pointer, grown and cut while walking */
} walk;

static void problem(walk *w, const char *what) {
    if (w->count++ >= w->max) return;
    if (w->count > 1) json_buf_append(w->out, "; ", 2);
    const char *where = w->path[0] ? w->path : "(root)";
    json_buf_append(w->out, where, strlen(where));
    json_buf_append(w->out, ": ", 2);
    json_buf_append(w->out, what, strlen(what));
}

/* Appends one JSON pointer token (~ and / escaped); returns the old length. */
static size_t enter(walk *w, const char *token) {
    size_t n = strlen(w->path), at = n;
    if (at + 1 < sizeof w->path) w->path[at++] = '/';
    for (; *token && at + 2 < sizeof w->path; token++) {
        if (*token == '~' || *token == '/') {
            w->path[at++] = '~';
            w->path[at++] = *token == '~' ? '0' : '1';
        } else {
            w->path[at++] = *token;
        }
    }
    w->path[at] = '\0';
    return n;
}

static bool has_type(const json_value *v, const char *name) {
    if (is(name, "integer")) return json_is_integer(v);
    return is(name, json_type_name(v->type));
}

static void validate_at(walk *w, const json_value *s, const json_value *v) {
    char msg[200];
    if (s->type == JSON_BOOL) {
        if (!s->boolean) problem(w, "no value is allowed here (schema false)");
        return;
    }
    for (size_t i = 0; i < s->object.len; i++) {
        const char *k = s->object.members[i].key;
        const json_value *kv = s->object.members[i].value;
        if (is(k, "type")) {
            bool ok = kv->type == JSON_STRING && has_type(v, kv->string.data);
            for (size_t j = 0; kv->type == JSON_ARRAY && j < kv->array.len; j++)
                ok = ok || has_type(v, kv->array.items[j]->string.data);
            if (!ok) {
                snprintf(msg, sizeof msg, "%s is not of type %s", json_type_name(v->type),
                         kv->type == JSON_STRING ? kv->string.data : "any of the listed types");
                problem(w, msg);
            }
        } else if (is(k, "properties") && v->type == JSON_OBJECT) {
            for (size_t j = 0; j < kv->object.len; j++) {
                const json_value *p = json_get(v, kv->object.members[j].key);
                if (p == NULL) continue;
                size_t n = enter(w, kv->object.members[j].key);
                validate_at(w, kv->object.members[j].value, p);
                w->path[n] = '\0';
            }
        } else if (is(k, "required") && v->type == JSON_OBJECT) {
            for (size_t j = 0; j < kv->array.len; j++)
                if (json_get(v, kv->array.items[j]->string.data) == NULL) {
                    snprintf(msg, sizeof msg, "required property \"%s\" is missing", kv->array.items[j]->string.data);
                    problem(w, msg);
                }
        } else if (is(k, "additionalProperties") && v->type == JSON_OBJECT) {
            const json_value *declared = json_get(s, "properties");
            for (size_t j = 0; j < v->object.len; j++) {
                const json_member *m = &v->object.members[j];
                if (json_get(declared, m->key) != NULL) continue;
                size_t n = enter(w, m->key);
                if (kv->type == JSON_BOOL && !kv->boolean) problem(w, "additional property is not allowed");
                else validate_at(w, kv, m->value);
                w->path[n] = '\0';
            }
        } else if (is(k, "items") && v->type == JSON_ARRAY) {
            for (size_t j = 0; j < v->array.len; j++) {
                char index[24];
                snprintf(index, sizeof index, "%zu", j);
                size_t n = enter(w, index);
                validate_at(w, kv, v->array.items[j]);
                w->path[n] = '\0';
            }
        } else if (is(k, "enum")) {
            bool found = false;
            for (size_t j = 0; j < kv->array.len && !found; j++) found = json_equal(kv->array.items[j], v);
            if (!found) problem(w, "value is not one of the enum's values");
        } else if (is(k, "const")) {
            if (!json_equal(kv, v)) problem(w, "value is not the const value");
        } else if ((is(k, "minimum") || is(k, "maximum") || is(k, "exclusiveMinimum") || is(k, "exclusiveMaximum")) &&
                   v->type == JSON_NUMBER) {
            int c = json_number_cmp(v, kv);
            if ((is(k, "minimum") && c < 0) || (is(k, "exclusiveMinimum") && c <= 0) ||
                (is(k, "maximum") && c > 0) || (is(k, "exclusiveMaximum") && c >= 0)) {
                snprintf(msg, sizeof msg, "number breaks %s", k);
                problem(w, msg);
            }
        } else if ((is(k, "minLength") || is(k, "maxLength")) && v->type == JSON_STRING) {
            size_t n = json_string_chars(v);
            if (is(k, "minLength") ? n < kv->number.f : n > kv->number.f) {
                snprintf(msg, sizeof msg, "string of %zu characters breaks %s", n, k);
                problem(w, msg);
            }
        } else if ((is(k, "minItems") || is(k, "maxItems")) && v->type == JSON_ARRAY) {
            size_t n = v->array.len;
            if (is(k, "minItems") ? n < kv->number.f : n > kv->number.f) {
                snprintf(msg, sizeof msg, "array of %zu items breaks %s", n, k);
                problem(w, msg);
            }
        }
    }
}

size_t schema_validate(const json_value *schema, const json_value *instance, json_buf *out, size_t max) {
    walk w = {.out = out, .max = max};
    validate_at(&w, schema, instance);
    return w.count;
}
