/*
 * {{name}}: a weir validator plugin in C. It accepts a message whose value is
 * a JSON object and rejects anything else as `invalid`.
 *
 * The types and functions come from gen/validator_plugin.h, which build.sh
 * generates from wit/plugin.wit with wit-bindgen. Memory, as that header's
 * ABI says: the arguments of an export are yours (free them before
 * returning, with the *_free helpers); what you return (the error string)
 * must be malloc'd, e.g. with validator_plugin_string_dup, and is freed for
 * you after the call.
 */
#include <stdio.h>

#include "json.h"
#include "validator_plugin.h"

/* Called once per instance with the pipeline's [pipeline.config] pairs. */
bool exports_weir_plugin_validator_init(validator_plugin_list_tuple2_string_string_t *config,
                                        validator_plugin_string_t *err) {
    (void)err;
    validator_plugin_list_tuple2_string_string_free(config);
    return true;
}

/* true: the message is produced unchanged; false: *err says why not. */
bool exports_weir_plugin_validator_validate(exports_weir_plugin_validator_message_t *msg,
                                            exports_weir_plugin_validator_error_t *err) {
    char why[200], reason[300];
    bool ok = false;
    yyjson_doc *doc = NULL;
    err->tag = WEIR_PLUGIN_TYPES_ERROR_INVALID;
    if (!msg->value.is_some) {
        validator_plugin_string_dup(&err->val.invalid, "value is null; expected a JSON object");
    } else if ((doc = json_parse(msg->value.val.ptr, msg->value.val.len, why, sizeof why)) == NULL) {
        snprintf(reason, sizeof reason, "value is not JSON: %s", why);
        validator_plugin_string_dup(&err->val.invalid, reason);
    } else if (!yyjson_is_obj(yyjson_doc_get_root(doc))) {
        validator_plugin_string_dup(&err->val.invalid, "value is JSON but not an object");
    } else {
        ok = true;
    }
    yyjson_doc_free(doc);
    exports_weir_plugin_validator_message_free(msg);
    return ok;
}
