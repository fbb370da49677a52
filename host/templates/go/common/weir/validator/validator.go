// Package validator exports weir's validator-plugin world: set Init (may
// stay nil) and Validate in the plugin's init function.
package validator

import "{{name_snake}}/weir"

// Init is called once per instance, before any message, with the
// pipeline's [pipeline.config] pairs; an error stops the pipeline at
// start-up with its text. Nil accepts any config.
var Init func(config [][2]string) error

// Validate accepts a message (nil: it is produced unchanged) or rejects it
// with a *weir.Error (weir.Invalid or weir.Failed; any other error is a
// failure).
var Validate func(msg weir.Message) error

//go:wasmexport weir:plugin/validator@0.1.0#init
func exportInit(p, n uint32) uint32 {
	var err error
	if Init != nil {
		err = Init(weir.Config(p, n))
	}
	return weir.LowerUnitResult(err)
}

//go:wasmexport cabi_post_weir:plugin/validator@0.1.0#init
func postInit(uint32) { weir.PostReturn() }

//go:wasmexport weir:plugin/validator@0.1.0#validate
func exportValidate(topicPtr, topicLen, partition uint32, offset uint64, tsTag uint32, ts uint64,
	keyTag, keyPtr, keyLen, valueTag, valuePtr, valueLen, headersPtr, headersLen uint32) uint32 {
	msg := weir.LiftMessage(topicPtr, topicLen, partition, offset, tsTag, ts,
		keyTag, keyPtr, keyLen, valueTag, valuePtr, valueLen, headersPtr, headersLen)
	area := weir.Area(16)
	if Validate == nil {
		weir.LowerError(area, weir.Failed("the plugin set no validator.Validate"))
	} else if err := Validate(msg); err != nil {
		weir.LowerError(area, err)
	}
	return uint32(uintptr(area))
}

//go:wasmexport cabi_post_weir:plugin/validator@0.1.0#validate
func postValidate(uint32) { weir.PostReturn() }
