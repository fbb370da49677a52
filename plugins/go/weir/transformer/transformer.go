// Package transformer exports weir's transformer-plugin world: set Init
// (may stay nil) and Transform in the plugin's init function.
package transformer

import (
	"unsafe"

	"weirplugins/weir"
)

// Init is called once per instance, before any message, with the
// pipeline's [pipeline.config] pairs; an error stops the pipeline at
// start-up with its text. Nil accepts any config.
var Init func(config [][2]string) error

// Transform turns a message into zero outputs (it is dropped), one or
// several, or rejects it with a *weir.Error (weir.Invalid or weir.Failed;
// any other error is a failure).
var Transform func(msg weir.Message) ([]weir.Output, error)

//go:wasmexport weir:plugin/transformer@0.1.0#init
func exportInit(p, n uint32) uint32 {
	var err error
	if Init != nil {
		err = Init(weir.Config(p, n))
	}
	return weir.LowerUnitResult(err)
}

//go:wasmexport cabi_post_weir:plugin/transformer@0.1.0#init
func postInit(uint32) { weir.PostReturn() }

//go:wasmexport weir:plugin/transformer@0.1.0#transform
func exportTransform(topicPtr, topicLen, partition uint32, offset uint64, tsTag uint32, ts uint64,
	keyTag, keyPtr, keyLen, valueTag, valuePtr, valueLen, headersPtr, headersLen uint32) uint32 {
	msg := weir.LiftMessage(topicPtr, topicLen, partition, offset, tsTag, ts,
		keyTag, keyPtr, keyLen, valueTag, valuePtr, valueLen, headersPtr, headersLen)
	area := weir.Area(16)
	if Transform == nil {
		weir.LowerError(area, weir.Failed("the plugin set no transformer.Transform"))
		return uint32(uintptr(area))
	}
	outs, err := Transform(msg)
	if err != nil {
		weir.LowerError(area, err)
	} else {
		p, n := weir.LowerOutputs(outs)
		*(*uint32)(unsafe.Add(area, 4)) = p
		*(*uint32)(unsafe.Add(area, 8)) = n
	}
	return uint32(uintptr(area))
}

//go:wasmexport cabi_post_weir:plugin/transformer@0.1.0#transform
func postTransform(uint32) { weir.PostReturn() }
