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

static bool check_at(yyjson_val *s, char *path, size_t path_len, char *err, size_t err_len);

/* Recurses into a sub-schema at path + suffix. */
static bool check_sub(yyjson_val *s, char *path, size_t path_len, const char *suffix, char *err, size_t err_len) {
    size_t n = strlen(path);
    snprintf(path + n, path_len - n, "%s", suffix);
    bool ok = check_at(s, path, path_len, err, err_len);
    path[n] = '\0';
    return ok;
}

static bool check_at(yyjson_val *s, char *path, size_t path_len, char *err, size_t err_len) {
    const char *where = path[0] ? path : "(root)";
    if (yyjson_is_bool(s)) return true;
    if (!yyjson_is_obj(s)) return snprintf(err, err_len, "%s: a schema must be an object or a boolean", where), false;
    size_t i, max;
    yyjson_val *key, *v;
    yyjson_obj_foreach(s, i, max, key, v) {
        const char *k = yyjson_get_str(key);
        const char *bad = NULL; /* what the keyword's value should have been */
        if (in(k, ANNOTATIONS)) continue;
        if (is(k, "type")) {
            bool ok = yyjson_is_str(v) ? in(yyjson_get_str(v), TYPES) : yyjson_arr_size(v) > 0;
            size_t j, n;
            yyjson_val *t;
            yyjson_arr_foreach(v, j, n, t) ok = ok && yyjson_is_str(t) && in(yyjson_get_str(t), TYPES);
            if (!ok) bad = "a type name (null, boolean, object, array, number, string, integer) or a list of them";
        } else if (is(k, "properties")) {
            if (!yyjson_is_obj(v)) bad = "an object of schemas";
            size_t j, n;
            yyjson_val *name, *sub;
            yyjson_obj_foreach(v, j, n, name, sub) {
                char suffix[160];
                snprintf(suffix, sizeof suffix, "/properties/%s", yyjson_get_str(name));
                if (!check_sub(sub, path, path_len, suffix, err, err_len)) return false;
            }
        } else if (is(k, "required")) {
            size_t j, n;
            yyjson_val *name;
            if (!yyjson_is_arr(v)) bad = "a list of property names";
            yyjson_arr_foreach(v, j, n, name) if (!yyjson_is_str(name)) bad = "a list of property names";
        } else if (is(k, "additionalProperties")) {
            if (!check_sub(v, path, path_len, "/additionalProperties", err, err_len)) return false;
        } else if (is(k, "items")) {
            if (yyjson_is_arr(v)) bad = "one schema for every item (a list of schemas, draft 4-7 tuples, is not supported)";
            else if (!check_sub(v, path, path_len, "/items", err, err_len)) return false;
        } else if (is(k, "enum")) {
            if (!yyjson_is_arr(v)) bad = "a list of values";
        } else if (is(k, "const")) {
        } else if (is(k, "minimum") || is(k, "maximum") || is(k, "exclusiveMinimum") || is(k, "exclusiveMaximum")) {
            if (!yyjson_is_num(v)) bad = "a number";
        } else if (is(k, "minLength") || is(k, "maxLength") || is(k, "minItems") || is(k, "maxItems")) {
            if (!json_is_integer(v) || yyjson_get_num(v) < 0) bad = "a non-negative integer";
        } else {
            return snprintf(err, err_len, "%s: keyword \"%s\" is not supported by this plugin's JSON Schema subset (supported: " SUPPORTED ")", where, k), false;
        }
        if (bad) return snprintf(err, err_len, "%s: \"%s\" must be %s", where, k, bad), false;
    }
    return true;
}

bool schema_check(yyjson_val *schema, char *err, size_t err_len) {
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

static bool has_type(yyjson_val *v, const char *name) {
    if (is(name, "integer")) return json_is_integer(v);
    return is(name, json_type_name(v));
}

static void validate_at(walk *w, yyjson_val *s, yyjson_val *v) {
    char msg[200];
    if (yyjson_is_bool(s)) {
        if (!yyjson_get_bool(s)) problem(w, "no value is allowed here (schema false)");
        return;
    }
    size_t i, max, j, n;
    yyjson_val *key, *kv, *name, *sub;
    yyjson_obj_foreach(s, i, max, key, kv) {
        const char *k = yyjson_get_str(key);
        if (is(k, "type")) {
            bool ok = yyjson_is_str(kv) && has_type(v, yyjson_get_str(kv));
            yyjson_arr_foreach(kv, j, n, name) ok = ok || has_type(v, yyjson_get_str(name));
            if (!ok) {
                snprintf(msg, sizeof msg, "%s is not of type %s", json_type_name(v),
                         yyjson_is_str(kv) ? yyjson_get_str(kv) : "any of the listed types");
                problem(w, msg);
            }
        } else if (is(k, "properties") && yyjson_is_obj(v)) {
            yyjson_obj_foreach(kv, j, n, name, sub) {
                yyjson_val *p = yyjson_obj_getn(v, yyjson_get_str(name), yyjson_get_len(name));
                if (p == NULL) continue;
                size_t at = enter(w, yyjson_get_str(name));
                validate_at(w, sub, p);
                w->path[at] = '\0';
            }
        } else if (is(k, "required") && yyjson_is_obj(v)) {
            yyjson_arr_foreach(kv, j, n, name) {
                if (yyjson_obj_getn(v, yyjson_get_str(name), yyjson_get_len(name)) == NULL) {
                    snprintf(msg, sizeof msg, "required property \"%s\" is missing", yyjson_get_str(name));
                    problem(w, msg);
                }
            }
        } else if (is(k, "additionalProperties") && yyjson_is_obj(v)) {
            yyjson_val *declared = yyjson_obj_get(s, "properties");
            yyjson_obj_foreach(v, j, n, name, sub) {
                if (yyjson_obj_getn(declared, yyjson_get_str(name), yyjson_get_len(name)) != NULL) continue;
                size_t at = enter(w, yyjson_get_str(name));
                if (yyjson_is_false(kv)) problem(w, "additional property is not allowed");
                else validate_at(w, kv, sub);
                w->path[at] = '\0';
            }
        } else if (is(k, "items") && yyjson_is_arr(v)) {
            yyjson_arr_foreach(v, j, n, sub) {
                char index[24];
                snprintf(index, sizeof index, "%zu", j);
                size_t at = enter(w, index);
                validate_at(w, kv, sub);
                w->path[at] = '\0';
            }
        } else if (is(k, "enum")) {
            bool found = false;
            yyjson_arr_foreach(kv, j, n, sub) found = found || json_equal(sub, v);
            if (!found) problem(w, "value is not one of the enum's values");
        } else if (is(k, "const")) {
            if (!json_equal(kv, v)) problem(w, "value is not the const value");
        } else if ((is(k, "minimum") || is(k, "maximum") || is(k, "exclusiveMinimum") || is(k, "exclusiveMaximum")) &&
                   yyjson_is_num(v)) {
            int c = json_number_cmp(v, kv);
            if ((is(k, "minimum") && c < 0) || (is(k, "exclusiveMinimum") && c <= 0) ||
                (is(k, "maximum") && c > 0) || (is(k, "exclusiveMaximum") && c >= 0)) {
                snprintf(msg, sizeof msg, "number breaks %s", k);
                problem(w, msg);
            }
        } else if ((is(k, "minLength") || is(k, "maxLength")) && yyjson_is_str(v)) {
            size_t chars = json_string_chars(v);
            double limit = yyjson_get_num(kv);
            if (is(k, "minLength") ? chars < limit : chars > limit) {
                snprintf(msg, sizeof msg, "string of %zu characters breaks %s", chars, k);
                problem(w, msg);
            }
        } else if ((is(k, "minItems") || is(k, "maxItems")) && yyjson_is_arr(v)) {
            size_t items = yyjson_arr_size(v);
            double limit = yyjson_get_num(kv);
            if (is(k, "minItems") ? items < limit : items > limit) {
                snprintf(msg, sizeof msg, "array of %zu items breaks %s", items, k);
                problem(w, msg);
            }
        }
    }
}

size_t schema_validate(yyjson_val *schema, yyjson_val *instance, json_buf *out, size_t max) {
    walk w = {.out = out, .max = max};
    validate_at(&w, schema, instance);
    return w.count;
}
