/*
 * {{name}}: a weir transformer plugin in C. It passes every message on
 * unchanged to the pipeline's output topic.
 *
 * The types and functions come from gen/transformer_plugin.h, which build.sh
 * generates from wit/plugin.wit with wit-bindgen. Memory, as that header's
 * ABI says: the arguments of an export are yours (free them before
 * returning, with the *_free helpers, or move their buffers into what you
 * return); everything you return must be malloc'd, each buffer owned by one
 * output only, and is freed for you after the call.
 */
#include <stdlib.h>

#include "transformer_plugin.h"

/* Called once per instance with the pipeline's [pipeline.config] pairs. */
bool exports_weir_plugin_transformer_init(transformer_plugin_list_tuple2_string_string_t *config,
                                          transformer_plugin_string_t *err) {
    (void)err;
    transformer_plugin_list_tuple2_string_string_free(config);
    return true;
}

/* Zero outputs drop the message, several fan it out; false: *err says why. */
bool exports_weir_plugin_transformer_transform(exports_weir_plugin_transformer_message_t *msg,
                                               exports_weir_plugin_transformer_list_output_t *ret,
                                               exports_weir_plugin_transformer_error_t *err) {
    weir_plugin_types_output_t *out = calloc(1, sizeof *out);
    if (out == NULL) {
        err->tag = WEIR_PLUGIN_TYPES_ERROR_FAILED;
        transformer_plugin_string_dup(&err->val.failed, "out of memory");
        exports_weir_plugin_transformer_message_free(msg);
        return false;
    }
    /* topic none: the pipeline's output topic. The key, value and headers
     * move from the message into the output, so they are not freed here. */
    *out = (weir_plugin_types_output_t){.key = msg->key, .value = msg->value, .headers = msg->headers};
    transformer_plugin_string_free(&msg->topic);
    *ret = (exports_weir_plugin_transformer_list_output_t){out, 1};
    return true;
}
