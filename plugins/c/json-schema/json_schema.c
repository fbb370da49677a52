/*
 * A validator plugin that accepts a message only if its value is JSON that
 * conforms to a JSON Schema: the C twin of plugins/rust/json-schema, giving
 * the same verdict for every message.
 *
 * Config: `schema` = the JSON Schema document as text (the host reads
 * `schema = "@file.json"` from a file). It is parsed and checked once in
 * init against the subset schema.h implements; a missing, non-JSON or
 * unsupported schema fails init, naming the problem (an unsupported keyword
 * by name). A null, non-UTF-8 or non-JSON value, or one that breaks the
 * schema, is `invalid`, naming up to ten violations by JSON pointer.
 *
 * Memory (wit-bindgen's C ABI): the arguments of an export belong to us and
 * are freed before returning; what we return is malloc'd and freed by the
 * generated post-return function. Each message's parse is one yyjson
 * document freed before returning, so nothing outlives a call.
 */
#include <stdio.h>
#include <string.h>

#include "../common/json.h"
#include "schema.h"
#include "validator_plugin.h"

#define MAX_REPORTED 10

static yyjson_doc *schema_doc; /* lives as long as the instance */

/* Sets *err to a malloc'd copy of the message; returns false for the ABI. */
static bool init_error(validator_plugin_string_t *err, const char *message) {
    validator_plugin_string_dup(err, message);
    return false;
}

bool exports_weir_plugin_validator_init(validator_plugin_list_tuple2_string_string_t *config,
                                        validator_plugin_string_t *err) {
    char message[1200];
    const validator_plugin_string_t *text = NULL;
    for (size_t i = 0; i < config->len; i++)
        if (config->ptr[i].f0.len == 6 && memcmp(config->ptr[i].f0.ptr, "schema", 6) == 0) text = &config->ptr[i].f1;
    bool ok = false;
    if (schema_doc != NULL) {
        init_error(err, "init was called twice");
    } else if (text == NULL) {
        init_error(err, "config key `schema` is missing: set it to a JSON Schema document or @file");
    } else if ((schema_doc = json_parse(text->ptr, text->len, message, 200)) == NULL) {
        char full[1300];
        snprintf(full, sizeof full, "config key `schema` is not JSON: %s", message);
        init_error(err, full);
    } else if (!schema_check(yyjson_doc_get_root(schema_doc), message, sizeof message)) {
        char full[1300];
        snprintf(full, sizeof full, "config key `schema` is not a JSON Schema this plugin supports: %s", message);
        init_error(err, full);
        yyjson_doc_free(schema_doc);
        schema_doc = NULL;
    } else {
        ok = true;
    }
    validator_plugin_list_tuple2_string_string_free(config);
    return ok;
}

static bool invalid(exports_weir_plugin_validator_error_t *err, const char *reason, size_t len) {
    err->tag = WEIR_PLUGIN_TYPES_ERROR_INVALID;
    validator_plugin_string_dup_n(&err->val.invalid, reason, len);
    return false;
}

bool exports_weir_plugin_validator_validate(exports_weir_plugin_validator_message_t *msg,
                                            exports_weir_plugin_validator_error_t *err) {
    bool ok = false;
    char message[300];
    if (schema_doc == NULL) {
        err->tag = WEIR_PLUGIN_TYPES_ERROR_FAILED;
        validator_plugin_string_dup(&err->val.failed, "validate was called before init");
    } else if (!msg->value.is_some) {
        invalid(err, "value is null; expected JSON", 28);
    } else {
        char why[200];
        yyjson_doc *doc = json_parse(msg->value.val.ptr, msg->value.val.len, why, sizeof why);
        if (doc == NULL) {
            int n = snprintf(message, sizeof message, "value is not JSON: %s", why);
            invalid(err, message, (size_t)n);
        } else {
            json_buf problems = {0};
            size_t count =
                schema_validate(yyjson_doc_get_root(schema_doc), yyjson_doc_get_root(doc), &problems, MAX_REPORTED);
            if (count > MAX_REPORTED) {
                int n = snprintf(message, sizeof message, "; and %zu more", count - MAX_REPORTED);
                json_buf_append(&problems, message, (size_t)n);
            }
            if (count == 0) ok = true;
            else if (problems.failed) invalid(err, "value breaks the schema", 23);
            else invalid(err, problems.data, problems.len);
            json_buf_free(&problems);
            yyjson_doc_free(doc);
        }
    }
    exports_weir_plugin_validator_message_free(msg);
    return ok;
}
