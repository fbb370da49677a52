// {{name}}: a weir validator plugin in Go. It accepts a message whose value
// is a JSON object and rejects anything else as invalid.
//
// weir/ is weir's Go side of the contract (wit/plugin.wit): the types, the
// log import and the canonical ABI; importing weir/validator makes this a
// validator. strictjson/ parses JSON as strictly as weir's Rust plugins do.
package main

import (
	"{{name_snake}}/strictjson"
	"{{name_snake}}/weir"
	"{{name_snake}}/weir/validator"
)

func init() {
	// Called once per instance with the pipeline's [pipeline.config] pairs;
	// an error stops the pipeline at start-up.
	validator.Init = func(config [][2]string) error { return nil }
	// nil: the message is produced unchanged; an error says why not.
	validator.Validate = func(msg weir.Message) error {
		if msg.Value == nil {
			return weir.Invalid("value is null; expected a JSON object")
		}
		value, err := strictjson.Parse(msg.Value)
		if err != nil {
			return weir.Invalid("value is not JSON: " + err.Error())
		}
		if value.Kind != strictjson.Object {
			return weir.Invalid("value is JSON but not an object")
		}
		return nil
	}
}

func main() {}
