/*
 * A documented subset of JSON Schema (draft 2020-12 semantics) for the C
 * json-schema plugin; C has no JSON Schema library that builds for wasm here.
 *
 * Implemented keywords: type (a name or a list of names; "integer" is any
 * number with no fraction, so 1.0 is one and true is not), properties,
 * required, additionalProperties (true, false or a schema), items (one
 * schema for every item), enum, const, minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum (numbers), minLength, maxLength (in code points),
 * minItems, maxItems. Boolean schemas (true/false) work anywhere a schema does.
 * Annotations that never change a verdict are accepted and ignored: $schema,
 * $id, $comment, title, description, default, examples, deprecated,
 * readOnly, writeOnly.
 *
 * schema_check refuses any other keyword by name (never silently accepting a
 * schema it would enforce only in part), and a keyword whose value has the
 * wrong shape, so every schema that passes it is enforced in full.
 */
#ifndef WEIR_SCHEMA_H
#define WEIR_SCHEMA_H

#include <stdbool.h>

#include "../common/json.h"

/* Checks a schema; on error writes e.g. `/properties/id: keyword "format" is
 * not supported (supported: ...)` into err and returns false. */
bool schema_check(yyjson_val *schema, char *err, size_t err_len);

/* Validates an instance against a checked schema. Returns the number of
 * violations; the first `max` are described in *out, "; "-separated, each as
 * `<JSON pointer or (root)>: <problem>`. */
size_t schema_validate(yyjson_val *schema, yyjson_val *instance, json_buf *out, size_t max);

#endif
