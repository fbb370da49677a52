/*
 * Drives a C plugin through the same exported entry points and post-return
 * functions the component calls (wit-bindgen's generated glue, compiled
 * natively under AddressSanitizer by plugins/c/build.sh), thousands of
 * messages in a row: a leak across calls, a double free of a moved buffer or
 * a read past a buffer fails the build. Arguments are malloc'd as the
 * canonical ABI's cabi_realloc would; the plugin owns and frees them.
 *
 * Built with -DTRANSFORMER for the router, else for the json-schema plugin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TRANSFORMER
#include "transformer_plugin.h"
#define INIT __wasm_export_exports_weir_plugin_transformer_init
#define INIT_POST __wasm_export_exports_weir_plugin_transformer_init_post_return
#define CALL __wasm_export_exports_weir_plugin_transformer_transform
#define CALL_POST __wasm_export_exports_weir_plugin_transformer_transform_post_return
/* Natively there is no component-type object to force into the link. */
void __component_type_object_force_link_transformer_plugin(void) {}
#else
#include "validator_plugin.h"
#define INIT __wasm_export_exports_weir_plugin_validator_init
#define INIT_POST __wasm_export_exports_weir_plugin_validator_init_post_return
#define CALL __wasm_export_exports_weir_plugin_validator_validate
#define CALL_POST __wasm_export_exports_weir_plugin_validator_validate_post_return
void __component_type_object_force_link_validator_plugin(void) {}
#endif

uint8_t *INIT(uint8_t *, size_t);
void INIT_POST(uint8_t *);
uint8_t *CALL(uint8_t *, size_t, int32_t, int64_t, int32_t, int64_t, int32_t, uint8_t *, size_t, int32_t, uint8_t *,
              size_t, uint8_t *, size_t);
void CALL_POST(uint8_t *);

static size_t logged;

/* The host's log import. */
void __wasm_import_weir_plugin_log_log(int32_t level, uint8_t *message, size_t len) {
    (void)level;
    (void)message;
    logged += len > 0;
}

/* A copy the callee owns; an empty list is no allocation, as in the ABI. */
static uint8_t *owned(const char *s, size_t len) {
    if (len == 0) return (uint8_t *)1;
    uint8_t *p = malloc(len);
    memcpy(p, s, len);
    return p;
}

typedef struct {
    uint8_t *key;
    size_t key_len;
    int32_t has_value;
    uint8_t *value;
    size_t value_len;
} header;

static const char *const VALUES[] = {
    "{\"id\":1,\"text\":\"hello\"}",
    "{\"text\":\"no id\"}",
    "{\"id\":\"3\",\"text\":7}",
    "[1,2]",
    "not json",
    "",
    "{\"drop\":true}",
    "{\"region\":\"eu\",\"items\":[{\"region\":\"us\",\"sku\":\"a\"},2,\"x\",{\"b\":[1.5,null]}]}",
    "{\"region\":\"us\",\"v\":1}",
    "{\"items\":[]}",
    "{\"id\":1,\"text\":\"caf\xc3\xa9\",\"extra\":{\"deep\":[[[1]]]}}",
    "{\"id\": 1e400}",
    "\"\xff\"",
    NULL, /* a null value */
};

int main(void) {
    const char *config[][2] = {
#ifdef TRANSFORMER
        {"route_field", "region"}, {"route.eu", "orders.eu"}, {"route.us", "orders.us"},
#else
        {"schema", "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},\"text\":{\"type\":\"string\"}},"
                   "\"required\":[\"id\",\"text\"]}"},
#endif
    };
    size_t n_config = sizeof config / sizeof config[0];
    uint8_t **pairs = malloc(n_config * 4 * sizeof(void *));
    for (size_t i = 0; i < n_config; i++) {
        pairs[i * 4] = owned(config[i][0], strlen(config[i][0]));
        pairs[i * 4 + 1] = (uint8_t *)strlen(config[i][0]);
        pairs[i * 4 + 2] = owned(config[i][1], strlen(config[i][1]));
        pairs[i * 4 + 3] = (uint8_t *)strlen(config[i][1]);
    }
    uint8_t *ret = INIT((uint8_t *)pairs, n_config);
    if (ret[0] != 0) {
        printf("FAIL init returned an error\n0 passed, 1 failed\n");
        return 1;
    }
    INIT_POST(ret);

    size_t n_values = sizeof VALUES / sizeof VALUES[0], calls = 0, errors = 0;
    size_t outputs = 0;
    (void)outputs;
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < n_values; i++) {
            const char *v = VALUES[i];
            header *headers = malloc(2 * sizeof(header));
            headers[0] = (header){owned("trace", 5), 5, 1, owned("abc", 3), 3};
            headers[1] = (header){owned("none", 4), 4, 0, NULL, 0};
            ret = CALL(owned("orders", 6), 6, 0, (int64_t)calls, 1, 1700000000000, 1, owned("k", 1), 1,
                               v != NULL, v ? owned(v, strlen(v)) : NULL, v ? strlen(v) : 0, (uint8_t *)headers, 2);
            errors += ret[0] != 0;
#ifdef TRANSFORMER
            if (ret[0] == 0) outputs += *(size_t *)(ret + 2 * sizeof(void *));
#endif
            CALL_POST(ret);
            calls++;
        }
    }
    int failed = 0;
#ifdef TRANSFORMER
    /* per round: 6 invalid; outputs 1+1+1+0+4+1+0+1 */
    if (errors != 6 * 2000 || outputs != 9 * 2000 || logged != 8 * 2000) {
        printf("FAIL router: %zu errors, %zu outputs, %zu log lines\n", errors, outputs, logged);
        failed = 1;
    }
#else
    if (errors != 12 * 2000) {
        printf("FAIL json-schema: %zu rejected\n", errors);
        failed = 1;
    }
#endif
    printf("%d passed, %d failed\n", 1 - failed, failed);
    return failed;
}
