// A validator plugin that accepts a message only if its value is JSON that
// conforms to a JSON Schema: the Go twin of plugins/rust/json-schema,
// giving the same verdict for every message.
//
// Config: `schema` = the JSON Schema document as text (the host reads
// `schema = "@file.json"` from a file), compiled once in init (draft
// 2020-12 unless it says otherwise, as in Rust) by
// github.com/santhosh-tekuri/jsonschema; a missing or broken schema fails
// init. A null, non-UTF-8 or non-JSON value (strictjson: serde_json's
// strictness) or one that breaks the schema is `invalid`, naming up to ten
// violations by JSON pointer.
package main

import (
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"weirplugins/strictjson"
	"weirplugins/weir"
	"weirplugins/weir/validator"
)

const maxReported = 10

var (
	schema  *jsonschema.Schema
	printer = message.NewPrinter(language.English)
)

func init() {
	validator.Init = setUp
	validator.Validate = validate
}

func setUp(config [][2]string) error {
	if schema != nil {
		return fmt.Errorf("init was called twice")
	}
	text, found := "", false
	for _, kv := range config {
		if kv[0] == "schema" {
			text, found = kv[1], true
		}
	}
	if !found {
		return fmt.Errorf("config key `schema` is missing: set it to a JSON Schema document or @file")
	}
	doc, err := strictjson.Parse([]byte(text))
	if err != nil {
		return fmt.Errorf("config key `schema` is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("config:schema", doc.Any()); err != nil {
		return fmt.Errorf("config key `schema` is not a valid JSON Schema: %v", err)
	}
	if schema, err = c.Compile("config:schema"); err != nil {
		return fmt.Errorf("config key `schema` is not a valid JSON Schema: %v", err)
	}
	return nil
}

// leaves appends `<JSON pointer>: <problem>` for each innermost violation.
func leaves(e *jsonschema.ValidationError, out []string) []string {
	if len(e.Causes) == 0 {
		pointer := "(root)"
		if len(e.InstanceLocation) > 0 {
			pointer = "/" + strings.Join(e.InstanceLocation, "/")
		}
		return append(out, pointer+": "+e.ErrorKind.LocalizedString(printer))
	}
	for _, c := range e.Causes {
		out = leaves(c, out)
	}
	return out
}

func validate(msg weir.Message) error {
	if schema == nil {
		return weir.Failed("validate was called before init")
	}
	if msg.Value == nil {
		return weir.Invalid("value is null; expected JSON")
	}
	value, err := strictjson.Parse(msg.Value)
	if err != nil {
		return weir.Invalid("value is not JSON: " + err.Error())
	}
	err = schema.Validate(value.Any())
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return weir.Failed("cannot validate: " + err.Error())
	}
	problems := leaves(ve, nil)
	if len(problems) > maxReported {
		more := len(problems) - maxReported
		problems = append(problems[:maxReported], fmt.Sprintf("and %d more", more))
	}
	return weir.Invalid(strings.Join(problems, "; "))
}

func main() {}
