// {{name}}: a weir transformer plugin in Go. It passes every message on
// unchanged to the pipeline's output topic.
//
// weir/ is weir's Go side of the contract (wit/plugin.wit): the types, the
// log import and the canonical ABI; importing weir/transformer makes this a
// transformer. For JSON, copy strictjson/ from weir's plugins/go.
package main

import (
	"{{name_snake}}/weir"
	"{{name_snake}}/weir/transformer"
)

func init() {
	// Called once per instance with the pipeline's [pipeline.config] pairs;
	// an error stops the pipeline at start-up.
	transformer.Init = func(config [][2]string) error { return nil }
	// Zero outputs drop the message, several fan it out; an error says why
	// not. Topic "" is the pipeline's output topic.
	transformer.Transform = func(msg weir.Message) ([]weir.Output, error) {
		return []weir.Output{{Key: msg.Key, Value: msg.Value, Headers: msg.Headers}}, nil
	}
}

func main() {}
