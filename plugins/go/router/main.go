// A transformer plugin that drops, fans out and routes JSON objects: the Go
// twin of plugins/rust/router, with the same outputs byte for byte.
//
// The value must be a JSON object, else the message is `invalid`.
//   - `"drop": true` -> no output: the message is dropped.
//   - an array field `"items"` -> one output per item (the item as compact
//     JSON, keys in input order, the original key and headers plus
//     `weir.split.index` = its index).
//   - otherwise -> one output with the original key, value and headers.
//
// Routing: config `route_field` (default `region`) names a string field and
// each `route.<value> = <topic>` entry sends outputs whose object (for a
// fan-out: whose item) has that value to `<topic>`; anything else goes to
// the pipeline's output topic. Every route must also be declared by the
// pipeline.
package main

import (
	"fmt"
	"strconv"
	"strings"

	"weirplugins/strictjson"
	"weirplugins/weir"
	"weirplugins/weir/transformer"
)

var (
	initialised bool
	field       = "region"
	routes      = map[string]string{}
)

func init() {
	transformer.Init = setUp
	transformer.Transform = transform
}

func setUp(config [][2]string) error {
	if initialised {
		return fmt.Errorf("init was called twice")
	}
	initialised = true
	for _, kv := range config {
		if kv[0] == "route_field" {
			field = kv[1]
		} else if name, ok := strings.CutPrefix(kv[0], "route."); ok {
			routes[name] = kv[1]
		}
	}
	return nil
}

// topicFor is the route of an object whose route field has a routed value,
// else "" (the output topic).
func topicFor(v *strictjson.Value) string {
	if f := v.Get(field); f != nil && f.Kind == strictjson.String {
		return routes[f.Text]
	}
	return ""
}

func transform(msg weir.Message) ([]weir.Output, error) {
	if !initialised {
		return nil, weir.Failed("transform was called before init")
	}
	if msg.Value == nil {
		return nil, weir.Invalid("value is null; expected a JSON object")
	}
	object, err := strictjson.Parse(msg.Value)
	if err != nil {
		return nil, weir.Invalid("value is not JSON: " + err.Error())
	}
	if object.Kind != strictjson.Object {
		return nil, weir.Invalid("value is JSON but not an object")
	}

	var outputs []weir.Output
	if drop := object.Get("drop"); drop != nil && drop.Kind == strictjson.Bool && drop.Bool {
		// dropped: no outputs
	} else if items := object.Get("items"); items != nil && items.Kind == strictjson.Array {
		outputs = make([]weir.Output, len(items.Items))
		for i := range items.Items {
			item := &items.Items[i]
			headers := append(append(make([]weir.Header, 0, len(msg.Headers)+1), msg.Headers...),
				weir.Header{Key: "weir.split.index", Value: []byte(strconv.Itoa(i))})
			outputs[i] = weir.Output{
				Topic:   topicFor(item),
				Key:     msg.Key,
				Value:   strictjson.Append(nil, item),
				Headers: headers,
			}
		}
	} else {
		outputs = []weir.Output{{Topic: topicFor(&object), Key: msg.Key, Value: msg.Value, Headers: msg.Headers}}
	}

	summary := "dropped"
	if len(outputs) > 0 {
		topics := make([]string, len(outputs))
		for i, o := range outputs {
			topics[i] = o.Topic
			if o.Topic == "" {
				topics[i] = "(output topic)"
			}
		}
		summary = fmt.Sprintf("%d output(s) to %s", len(outputs), strings.Join(topics, ", "))
	}
	weir.Log(weir.Debug, fmt.Sprintf("offset %d: %s", msg.Offset, summary))
	return outputs, nil
}

func main() {}
