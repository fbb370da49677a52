/*
 * A transformer plugin that drops, fans out and routes JSON objects: the C
 * twin of plugins/rust/router, with the same outputs byte for byte.
 *
 * The value must be a JSON object, else the message is `invalid`.
 * - `"drop": true` -> no output: the message is dropped.
 * - an array field `"items"` -> one output per item (the item as compact
 *   JSON, keys in input order, the original key and headers plus
 *   `weir.split.index` = its index).
 * - otherwise -> one output with the original key, value and headers.
 *
 * Routing: config `route_field` (default `region`) names a string field and
 * each `route.<value> = <topic>` entry sends outputs whose object (for a
 * fan-out: whose item) has that value to `<topic>`; anything else goes to the
 * pipeline's output topic. Every route must also be declared by the pipeline.
 *
 * Memory (wit-bindgen's C ABI): the message is ours and freed before
 * returning, except the parts moved into the single output; every output
 * owns its own malloc'd buffers, which the generated post-return frees.
 */
#define _POSIX_C_SOURCE 200809L /* strndup */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "transformer_plugin.h"

typedef transformer_plugin_string_t string_t;
typedef transformer_plugin_list_u8_t bytes_t;

static bool initialised;
static char *field; /* route_field, NUL-terminated for yyjson_obj_get */
static transformer_plugin_list_tuple2_string_string_t config; /* kept: the routes */

bool exports_weir_plugin_transformer_init(transformer_plugin_list_tuple2_string_string_t *cfg, string_t *err) {
    if (initialised) {
        transformer_plugin_list_tuple2_string_string_free(cfg);
        transformer_plugin_string_dup(err, "init was called twice");
        return false;
    }
    initialised = true;
    config = *cfg; /* owned from here on, for the instance's life */
    const string_t *name = NULL;
    for (size_t i = 0; i < config.len; i++)
        if (config.ptr[i].f0.len == 11 && memcmp(config.ptr[i].f0.ptr, "route_field", 11) == 0) name = &config.ptr[i].f1;
    field = name ? strndup((const char *)name->ptr, name->len) : strdup("region");
    if (field == NULL) {
        transformer_plugin_string_dup(err, "out of memory");
        return false;
    }
    return true;
}

/* The topic for an object whose route field has a routed value, else none;
 * the last `route.<value>` entry wins, as in a map. */
static transformer_plugin_option_string_t topic_for(yyjson_val *v) {
    transformer_plugin_option_string_t topic = {0};
    yyjson_val *value = yyjson_obj_get(v, field);
    if (!yyjson_is_str(value)) return topic;
    size_t len = yyjson_get_len(value);
    for (size_t i = 0; i < config.len; i++) {
        const string_t *key = &config.ptr[i].f0;
        if (key->len == 6 + len && memcmp(key->ptr, "route.", 6) == 0 &&
            memcmp(key->ptr + 6, yyjson_get_str(value), len) == 0) {
            topic.is_some = true;
            topic.val = config.ptr[i].f1;
        }
    }
    if (topic.is_some) transformer_plugin_string_dup_n(&topic.val, (const char *)topic.val.ptr, topic.val.len);
    return topic;
}

static void copy_bytes(bytes_t *to, const uint8_t *from, size_t len) {
    to->len = len;
    to->ptr = len ? malloc(len) : NULL;
    if (len) memcpy(to->ptr, from, len);
}

/* The message's headers plus weir.split.index, each buffer a fresh copy. */
static weir_plugin_types_list_header_t split_headers(const weir_plugin_types_list_header_t *from, size_t index) {
    weir_plugin_types_list_header_t h = {calloc(from->len + 1, sizeof(weir_plugin_types_header_t)), from->len + 1};
    for (size_t i = 0; i < from->len; i++) {
        transformer_plugin_string_dup_n(&h.ptr[i].key, (const char *)from->ptr[i].key.ptr, from->ptr[i].key.len);
        h.ptr[i].value.is_some = from->ptr[i].value.is_some;
        if (from->ptr[i].value.is_some) copy_bytes(&h.ptr[i].value.val, from->ptr[i].value.val.ptr, from->ptr[i].value.val.len);
    }
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%zu", index);
    transformer_plugin_string_dup(&h.ptr[from->len].key, "weir.split.index");
    h.ptr[from->len].value.is_some = true;
    copy_bytes(&h.ptr[from->len].value.val, (const uint8_t *)digits, (size_t)n);
    return h;
}

static bool invalid(exports_weir_plugin_transformer_error_t *err, const char *reason) {
    err->tag = WEIR_PLUGIN_TYPES_ERROR_INVALID;
    transformer_plugin_string_dup(&err->val.invalid, reason);
    return false;
}

bool exports_weir_plugin_transformer_transform(exports_weir_plugin_transformer_message_t *msg,
                                               exports_weir_plugin_transformer_list_output_t *ret,
                                               exports_weir_plugin_transformer_error_t *err) {
    yyjson_doc *doc = NULL;
    char why[200], reason[300];
    bool ok = false;
    yyjson_val *object = NULL, *items;
    *ret = (exports_weir_plugin_transformer_list_output_t){0};
    if (!initialised) {
        err->tag = WEIR_PLUGIN_TYPES_ERROR_FAILED;
        transformer_plugin_string_dup(&err->val.failed, "transform was called before init");
    } else if (!msg->value.is_some) {
        invalid(err, "value is null; expected a JSON object");
    } else if ((doc = json_parse(msg->value.val.ptr, msg->value.val.len, why, sizeof why)) == NULL) {
        snprintf(reason, sizeof reason, "value is not JSON: %s", why);
        invalid(err, reason);
    } else if (!yyjson_is_obj(object = yyjson_doc_get_root(doc))) {
        invalid(err, "value is JSON but not an object");
    } else if (yyjson_is_true(yyjson_obj_get(object, "drop"))) {
        ok = true; /* dropped: no outputs */
    } else if (yyjson_is_arr(items = yyjson_obj_get(object, "items"))) {
        ok = true;
        ret->len = yyjson_arr_size(items);
        ret->ptr = ret->len ? calloc(ret->len, sizeof *ret->ptr) : NULL;
        size_t i, max;
        yyjson_val *item;
        yyjson_arr_foreach(items, i, max, item) {
            weir_plugin_types_output_t *out = &ret->ptr[i];
            json_buf value = {0};
            if (!json_write(&value, item)) abort(); /* out of memory: trap */
            out->topic = topic_for(item);
            out->key.is_some = msg->key.is_some;
            if (msg->key.is_some) copy_bytes(&out->key.val, msg->key.val.ptr, msg->key.val.len);
            out->value.is_some = true;
            out->value.val = (bytes_t){(uint8_t *)value.data, value.len}; /* the buffer moves */
            if (value.len == 0) free(value.data);
            out->headers = split_headers(&msg->headers, i);
        }
    } else {
        ok = true;
        ret->len = 1;
        ret->ptr = calloc(1, sizeof *ret->ptr);
        ret->ptr[0] = (weir_plugin_types_output_t){topic_for(object), msg->key, msg->value, msg->headers};
        /* moved into the output: the post-return frees them */
        msg->key.is_some = msg->value.is_some = false;
        msg->headers.len = 0;
    }
    if (ok) {
        char line[300];
        int n = snprintf(line, sizeof line, "offset %lld: ", (long long)msg->offset);
        json_buf summary = {0};
        json_buf_append(&summary, line, (size_t)n);
        if (ret->len == 0) json_buf_append(&summary, "dropped", 7);
        n = snprintf(line, sizeof line, "%zu output(s) to ", ret->len);
        if (ret->len) json_buf_append(&summary, line, (size_t)n);
        for (size_t i = 0; i < ret->len; i++) {
            const transformer_plugin_option_string_t *t = &ret->ptr[i].topic;
            if (i) json_buf_append(&summary, ", ", 2);
            if (t->is_some) json_buf_append(&summary, (const char *)t->val.ptr, t->val.len);
            else json_buf_append(&summary, "(output topic)", 14);
        }
        string_t text = {(uint8_t *)summary.data, summary.len};
        weir_plugin_log_log(WEIR_PLUGIN_LOG_LEVEL_DEBUG, &text);
        json_buf_free(&summary);
    }
    yyjson_doc_free(doc);
    exports_weir_plugin_transformer_message_free(msg);
    return ok;
}
