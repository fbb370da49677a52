/*
 * Tests of json.c (the strict layer over yyjson), run natively under AddressSanitizer (leaks included) by
 * plugins/c/build.sh: what the parser must accept and how it re-serialises
 * it, what it must reject, and the helpers the schema subset relies on.
 * Prints one line per failure and "N passed, N failed" at the end.
 */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

static void check(int ok, const char *what, const char *input) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s: %s\n", what, input);
    }
}

static yyjson_doc *parse(const char *text, size_t len, char *err) {
    return json_parse((const uint8_t *)text, len, err, 200);
}

static yyjson_val *get(yyjson_val *v, const char *key) { return yyjson_obj_get(v, key); }

/* Parses input and checks that it writes back as expected. */
static void roundtrip(const char *input, const char *expected) {
    char err[200];
    yyjson_doc *doc = parse(input, strlen(input), err);
    if (doc == NULL) {
        check(0, err, input);
        return;
    }
    json_buf b = {0};
    int ok = json_write(&b, yyjson_doc_get_root(doc)) && b.len == strlen(expected) && memcmp(b.data, expected, b.len) == 0;
    if (!ok) printf("  wrote %.*s, expected %s\n", (int)b.len, b.data, expected);
    check(ok, "roundtrip", input);
    json_buf_free(&b);
    yyjson_doc_free(doc);
}

static void rejects_n(const char *input, size_t len) {
    char err[200] = "";
    yyjson_doc *doc = parse(input, len, err);
    check(doc == NULL && err[0] != '\0', "accepted invalid JSON", input);
    yyjson_doc_free(doc);
}

static void rejects(const char *input) { rejects_n(input, strlen(input)); }

static void nested(int depth, int expect_ok) {
    char *s = malloc((size_t)depth * 2 + 1);
    memset(s, '[', (size_t)depth);
    memset(s + depth, ']', (size_t)depth);
    s[depth * 2] = '\0';
    if (expect_ok) roundtrip(s, s);
    else rejects(s);
    free(s);
}

static yyjson_val *parsed(const char *text, yyjson_doc **doc) {
    char err[200];
    *doc = parse(text, strlen(text), err);
    if (*doc == NULL) printf("FAIL setup: %s: %s\n", err, text);
    return yyjson_doc_get_root(*doc);
}

int main(void) {
    /* accepted, written back compactly in input order */
    roundtrip("{}", "{}");
    roundtrip(" [ ] ", "[]");
    roundtrip("{\"b\": 1, \"a\": [true, false, null]}", "{\"b\":1,\"a\":[true,false,null]}");
    roundtrip("\t\r\n{\"z\":{\"y\":{\"x\":\"w\"}}}\n", "{\"z\":{\"y\":{\"x\":\"w\"}}}");
    roundtrip("\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89\"", "\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89\"");
    roundtrip("\"\\u00e9\\u65e5\\ud83c\\udf89\"", "\"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x8e\x89\"");
    roundtrip("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\\"\\\\/\\b\\f\\n\\r\\t\"");
    roundtrip("\"\\u0000\\u001f\\u007f\"", "\"\\u0000\\u001f\x7f\"");
    roundtrip("{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}");
    roundtrip("[{\"x\":{\"a\":1,\"a\":{\"b\":1,\"b\":-0}}},{\"a\":[1,1.5]}]", "[{\"x\":{\"a\":{\"b\":-0.0}}},{\"a\":[1,1.5]}]");
    /* numbers: integers exact, others as serde_json (ryu) writes them */
    roundtrip("[0,-1,42,18446744073709551615,-9223372036854775808]", "[0,-1,42,18446744073709551615,-9223372036854775808]");
    roundtrip("[18446744073709551616,-9223372036854775809]", "[1.8446744073709552e+19,-9.223372036854776e+18]");
    roundtrip("[-0,0.0,-0.0,1.0,1.50,1e2,1E+2,2.5e-3,1e-7,123456.789]", "[-0.0,0.0,-0.0,1.0,1.5,100.0,100.0,0.0025,1e-7,123456.789]");
    roundtrip("[1e15,1e16,1e17,1.5e300,0.1,1e-400]", "[1000000000000000.0,1e+16,1e+17,1.5e+300,0.1,0.0]");
    /* what the Rust router writes for the same numbers (serde_json 1.0.154) */
    roundtrip("[1e-5,1e-4,0.0001234,1.234e-5,1e21,123456789012345678,1.7976931348623157e308,5e-324,12345678901234567e1,9007199254740993.0,1.25e16,4.35e-6]",
              "[0.00001,0.0001,0.0001234,0.00001234,1e+21,123456789012345678,1.7976931348623157e+308,5e-324,1.2345678901234566e+17,9007199254740992.0,1.25e+16,4.35e-6]");
    nested(JSON_MAX_DEPTH, 1);
    nested(JSON_MAX_DEPTH + 1, 0);

    /* rejected */
    const char *bad[] = {
        "", " ", "nul", "nulls", "tru", "True", "NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400",
        "01", "-01", "+1", ".5", "1.", "1.e5", "1e", "1e+", "-", "0x10", "1 2", "{} {}", "[] x",
        "[1,]", "[1,,2]", "[,1]", "{\"a\":1,}", "{,}", "{\"a\"}", "{\"a\" 1}", "{a:1}", "{'a':1}", "['a']",
        "[1", "{\"a\":1", "\"abc", "[1 2]", "{\"a\":1 \"b\":2}", "/* c */ 1", "1 // c",
        "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\U0041\"", "\"\\'\"", "\"\\\"",
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"\\udbff\\ud800\"",
        "\"tab\there\"", "\"new\nline\"",
        "\"\xc3\"", "\"\xc3\x28\"", "\"\xc0\xaf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
        "\"\xf8\x88\x80\x80\x80\"", "\"\xff\"", "\xef\xbb\xbf{}", "\xff", "[\xc3\xa9]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) rejects(bad[i]);
    rejects_n("[1]\0", 4);
    rejects_n("\"a\0b\"", 5);

    /* the helpers */
    yyjson_doc *doc;
    yyjson_val *v = parsed("{\"i\":1,\"f\":1.0,\"h\":1.5,\"big\":1e300,\"neg\":-3,\"b\":true,\"s\":\"h\xc3\xa9\xf0\x9f\x8e\x89\",\"o\":{\"x\":[1,2]},\"p\":{\"x\":[1.0,2]}}", &doc);
    if (v != NULL) {
        check(json_is_integer(get(v, "i")), "1 is an integer", "i");
        check(json_is_integer(get(v, "f")), "1.0 is an integer", "f");
        check(!json_is_integer(get(v, "h")), "1.5 is not an integer", "h");
        check(json_is_integer(get(v, "big")), "1e300 is an integer", "big");
        check(!json_is_integer(get(v, "b")), "true is not an integer", "b");
        check(json_equal(get(v, "i"), get(v, "f")), "1 == 1.0", "i f");
        check(!json_equal(get(v, "i"), get(v, "h")), "1 != 1.5", "i h");
        check(json_equal(get(v, "o"), get(v, "p")), "{x:[1,2]} == {x:[1.0,2]}", "o p");
        check(json_number_cmp(get(v, "neg"), get(v, "i")) < 0, "-3 < 1", "neg i");
        check(json_number_cmp(get(v, "h"), get(v, "i")) > 0, "1.5 > 1", "h i");
        check(json_string_chars(get(v, "s")) == 3, "three code points", "s");
        check(get(v, "missing") == NULL && get(get(v, "i"), "x") == NULL, "json_get misses", "");
        yyjson_doc_free(doc);
    }
    v = parsed("[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]", &doc);
    if (v != NULL) {
        check(json_equal(yyjson_arr_get(v, 0), yyjson_arr_get(v, 1)), "objects equal regardless of order", "");
        yyjson_doc_free(doc);
    }

    /* a large document: 300 KB of string and 20,000 array items */
    size_t n = 300 * 1024;
    char *big = malloc(n + 3);
    big[0] = '"';
    memset(big + 1, 'x', n);
    big[n + 1] = '"';
    big[n + 2] = '\0';
    roundtrip(big, big);
    free(big);
    json_buf arr = {0};
    json_buf_append(&arr, "[", 1);
    for (int i = 0; i < 20000; i++) json_buf_append(&arr, i ? ",{\"k\":12345}" : "{\"k\":12345}", i ? 12 : 11);
    json_buf_append(&arr, "]", 2);
    roundtrip(arr.data, arr.data);
    json_buf_free(&arr);

    /* an object too large to compare pairwise, with one key repeated */
    json_buf obj = {0}, want = {0};
    json_buf_append(&obj, "{", 1);
    json_buf_append(&want, "{", 1);
    for (int i = 0; i < 40; i++) {
        char m[32];
        int len = snprintf(m, sizeof m, "%s\"k%d\":%d", i ? "," : "", i, i);
        json_buf_append(&obj, m, (size_t)len);
        len = snprintf(m, sizeof m, "%s\"k%d\":%d", i ? "," : "", i, i == 7 ? 99 : i);
        json_buf_append(&want, m, (size_t)len);
    }
    json_buf_append(&obj, ",\"k7\":99}", 10);
    json_buf_append(&want, "}", 2);
    roundtrip(obj.data, want.data);
    json_buf_free(&obj);
    json_buf_free(&want);

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
