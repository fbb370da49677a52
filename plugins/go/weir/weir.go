// Package weir is the Go side of weir's plugin contract, wit/plugin.wit
// (weir:plugin@0.1.0): the message and output types, the log import, and
// the canonical ABI that carries them across the component boundary. A
// plugin imports weir/validator or weir/transformer (one per component: each
// exports its world's functions) and sets that package's handlers in init.
//
// Why by hand: mainline Go (GOOS=wasip1, GOARCH=wasm) has 64-bit pointers
// and ints, so Go structs never have the canonical ABI's 32-bit layout, and
// //go:wasmexport takes only scalars and unsafe.Pointer. The bindings
// wit-bindgen-go generates assume TinyGo's 32-bit layout and do not compile
// here. This package reads and writes the canonical layout field by field
// instead; `wasm-tools component embed`/`new` check its exports and imports
// against the WIT when the component is made, so a mismatch fails the build.
//
// Memory: cabi_realloc runs while the host lowers a call's arguments, when
// the component may not call out, and a Go heap allocation can (the GC and
// the scavenger read the clock). So it hands out memory from an arena of
// pages it grows itself (memory.grow, through the runtime patch in
// plugins/go/_goruntime) and reuses from the next call on; the arena's size is
// the largest call's arguments. Lifting copies what the host wrote into Go
// values, so a Message is the plugin's to keep. What a call returns is held
// until the host's post-return call, then let go.
package weir

import "unsafe"

// Header is a Kafka record header; a nil Value is a header without a value.
type Header struct {
	Key   string
	Value []byte
}

// Message is a record consumed from Kafka. A nil Key or Value is Kafka's
// null; an empty one is []byte{}.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is milliseconds since the Unix epoch, or nil.
	Timestamp *int64
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Output is a record a transformer wants produced.
type Output struct {
	// Topic "" is the pipeline's output topic; any other must be one of the
	// pipeline's declared routes.
	Topic   string
	Key     []byte
	Value   []byte
	Headers []Header
}

// Error says why a plugin did not accept a message: Invalid messages are
// dead-lettered and never retried; Failed ones go to the pipeline's failure
// policy.
type Error struct {
	Failed bool
	Reason string
}

func (e *Error) Error() string { return e.Reason }

// Invalid is the error for a message that breaks the contract.
func Invalid(reason string) *Error { return &Error{Reason: reason} }

// Failed is the error for a message the plugin could not process.
func Failed(reason string) *Error { return &Error{Failed: true, Reason: reason} }

// Level is how severe a log line is.
type Level uint32

const (
	Trace Level = iota
	Debug
	Info
	Warn
	LevelError
)

//go:wasmimport weir:plugin/log@0.1.0 log
//go:noescape
func hostLog(level uint32, ptr unsafe.Pointer, len uint32)

// Log writes one line to the host's log, tagged with the pipeline, plugin
// and message.
func Log(level Level, message string) {
	hostLog(uint32(level), unsafe.Pointer(unsafe.StringData(message)), uint32(len(message)))
}

// ---- the canonical ABI ----

// pinned holds what the host reads after a call returns (the return area
// and what it points to), until the call's post-return.
var pinned []any

//go:linkname growMemory runtime.weirGrowMemory
func growMemory(pages int32) int32

const page = 64 << 10

// arena is where cabi_realloc allocates: chunks of pages from memory.grow,
// used in order and all reused once a call is over.
var arena struct {
	chunks [32][2]uintptr // start, end; an array: appending could allocate
	n      int            // chunks so far (each at least doubles the arena)
	at     int            // the chunk in use
	next   uintptr        // the first free byte in it
}

func arenaAlloc(size, align uintptr) unsafe.Pointer {
	for {
		if arena.at < arena.n {
			c := arena.chunks[arena.at]
			p := (max(arena.next, c[0]) + align - 1) &^ (align - 1)
			if p+size <= c[1] {
				arena.next = p + size
				return unsafe.Pointer(p)
			}
			if arena.at+1 < arena.n {
				arena.at++
				arena.next = 0
				continue
			}
		}
		// Grow: at least double what the arena has, so a steady load
		// settles on a few chunks.
		have := uintptr(0)
		for _, c := range arena.chunks[:arena.n] {
			have += c[1] - c[0]
		}
		pages := (max(size+align, have, 4*page) + page - 1) / page
		old := int32(-1)
		if arena.n < len(arena.chunks) {
			old = growMemory(int32(pages))
		}
		if old < 0 {
			return nil // the host's memory limit: the host reports it
		}
		start := uintptr(old) * page
		arena.chunks[arena.n] = [2]uintptr{start, start + pages*page}
		arena.at = arena.n
		arena.n++
		arena.next = 0
	}
}

//go:wasmexport cabi_realloc
func cabiRealloc(old unsafe.Pointer, oldSize, align, newSize uint32) unsafe.Pointer {
	if newSize <= oldSize {
		return old
	}
	p := arenaAlloc(uintptr(newSize), uintptr(max(align, 1)))
	if oldSize > 0 && p != nil {
		copy(unsafe.Slice((*byte)(p), oldSize), unsafe.Slice((*byte)(old), oldSize))
	}
	return p
}

// PostReturn lets go of everything a call handed to or took from the host.
// For the world packages' post-return exports.
func PostReturn() {
	clear(pinned)
	pinned = pinned[:0]
	arena.at, arena.next = 0, 0
}

// Keep pins v until the call's post-return; for the world packages.
func Keep(v any) { pinned = append(pinned, v) }

func ptr(addr uint32) unsafe.Pointer { return unsafe.Pointer(uintptr(addr)) }

func addr(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }

func u32(base unsafe.Pointer, off uintptr) uint32 { return *(*uint32)(unsafe.Add(base, off)) }

func setU32(base unsafe.Pointer, off uintptr, v uint32) { *(*uint32)(unsafe.Add(base, off)) = v }

func setU8(base unsafe.Pointer, off uintptr, v uint8) { *(*uint8)(unsafe.Add(base, off)) = v }

// String lifts (copies) a string the host wrote at p.
func String(p, n uint32) string {
	if n == 0 {
		return ""
	}
	return string(unsafe.Slice((*byte)(ptr(p)), n))
}

// Bytes lifts (copies) an option<list<u8>>: nil for none.
func Bytes(tag, p, n uint32) []byte {
	if tag == 0 {
		return nil
	}
	return append([]byte{}, unsafe.Slice((*byte)(ptr(p)), n)...)
}

// Config lifts list<tuple<string, string>>: 16 bytes an entry.
func Config(p, n uint32) [][2]string {
	out := make([][2]string, n)
	for i := range out {
		e := unsafe.Add(ptr(p), uintptr(i)*16)
		out[i] = [2]string{String(u32(e, 0), u32(e, 4)), String(u32(e, 8), u32(e, 12))}
	}
	return out
}

// Headers lifts list<header>: 20 bytes a header (key string, then
// option<list<u8>> as tag, pointer, length).
func Headers(p, n uint32) []Header {
	out := make([]Header, n)
	for i := range out {
		h := unsafe.Add(ptr(p), uintptr(i)*20)
		out[i] = Header{
			Key:   String(u32(h, 0), u32(h, 4)),
			Value: Bytes(uint32(*(*uint8)(unsafe.Add(h, 8))), u32(h, 12), u32(h, 16)),
		}
	}
	return out
}

// LiftMessage builds a Message from validate's or transform's flattened
// parameters.
func LiftMessage(topicPtr, topicLen, partition uint32, offset uint64, tsTag uint32, ts uint64,
	keyTag, keyPtr, keyLen, valueTag, valuePtr, valueLen, headersPtr, headersLen uint32) Message {
	m := Message{
		Topic:     String(topicPtr, topicLen),
		Partition: int32(partition),
		Offset:    int64(offset),
		Key:       Bytes(keyTag, keyPtr, keyLen),
		Value:     Bytes(valueTag, valuePtr, valueLen),
		Headers:   Headers(headersPtr, headersLen),
	}
	if tsTag != 0 {
		t := int64(ts)
		m.Timestamp = &t
	}
	return m
}

// Area returns a pinned, 8-aligned block of n bytes, zeroed.
func Area(n int) unsafe.Pointer {
	buf := make([]uint64, (n+7)/8)
	Keep(buf)
	return unsafe.Pointer(unsafe.SliceData(buf))
}

// lowerString writes a string's pointer and length at base+off, pinning it.
func lowerString(base unsafe.Pointer, off uintptr, s string) {
	if len(s) == 0 {
		setU32(base, off, 0)
		setU32(base, off+4, 0)
		return
	}
	Keep(s)
	setU32(base, off, addr(unsafe.Pointer(unsafe.StringData(s))))
	setU32(base, off+4, uint32(len(s)))
}

// lowerBytes writes an option<list<u8>> (tag, pointer, length) at base+off.
func lowerBytes(base unsafe.Pointer, off uintptr, b []byte) {
	if b == nil {
		setU8(base, off, 0)
		return
	}
	setU8(base, off, 1)
	if len(b) == 0 {
		return
	}
	Keep(b)
	setU32(base, off+4, addr(unsafe.Pointer(unsafe.SliceData(b))))
	setU32(base, off+8, uint32(len(b)))
}

// LowerUnitResult writes result<_, string> (init) and returns its address.
func LowerUnitResult(err error) uint32 {
	area := Area(12)
	if err != nil {
		setU8(area, 0, 1)
		lowerString(area, 4, err.Error())
	}
	return addr(area)
}

// LowerError writes result<_, error> or, for a transform, the error case of
// result<list<output>, error>: both put the error variant at offset 4.
func LowerError(area unsafe.Pointer, err error) {
	setU8(area, 0, 1)
	e, ok := err.(*Error)
	if !ok {
		e = Failed(err.Error())
	}
	if e.Failed {
		setU8(area, 4, 1)
	}
	lowerString(area, 8, e.Reason)
}

// LowerOutputs writes list<output> (44 bytes an output) and returns its
// address and length.
func LowerOutputs(outs []Output) (uint32, uint32) {
	if len(outs) == 0 {
		return 0, 0
	}
	list := Area(44 * len(outs))
	for i, o := range outs {
		e := unsafe.Add(list, uintptr(i)*44)
		if o.Topic != "" {
			setU8(e, 0, 1)
			lowerString(e, 4, o.Topic)
		}
		lowerBytes(e, 12, o.Key)
		lowerBytes(e, 24, o.Value)
		if len(o.Headers) > 0 {
			hs := Area(20 * len(o.Headers))
			for j, h := range o.Headers {
				he := unsafe.Add(hs, uintptr(j)*20)
				lowerString(he, 0, h.Key)
				lowerBytes(he, 8, h.Value)
			}
			setU32(e, 36, addr(hs))
			setU32(e, 40, uint32(len(o.Headers)))
		}
	}
	return addr(list), uint32(len(outs))
}
