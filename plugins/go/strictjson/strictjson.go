// Package strictjson parses JSON (RFC 8259) exactly as strictly as Rust's
// serde_json, keeping object keys in input order, and writes it back
// compactly byte for byte as serde_json's to_string, so the Go plugins give
// the Rust ones' verdicts and outputs. encoding/json is laxer (invalid UTF-8
// and lone surrogates become U+FFFD, numbers of any size pass, nesting to
// 10,000) and forgets key order.
//
// Accepted: what serde_json accepts. Refused: NaN/Infinity, trailing
// commas, comments, leading zeros or '+', single quotes, anything but
// whitespace after the value, invalid UTF-8, raw control characters in
// strings, escapes other than the eight and \uXXXX, unpaired surrogates, a
// number that overflows a double (1e400), more than MaxDepth nested arrays
// and objects. A repeated object key keeps its first position and takes the
// last value (serde_json's Map with preserve_order).
package strictjson

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDepth is serde_json's nesting limit.
const MaxDepth = 127

// Kind is a JSON value's type.
type Kind uint8

const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

// Value is a parsed JSON value.
type Value struct {
	Kind Kind
	Bool bool
	// Text is a String's decoded text, or a Number as written.
	Text    string
	Items   []Value
	Members []Member // in input order, each key once
}

// Member is one key of an object.
type Member struct {
	Key   string
	Value Value
}

// Get returns the member named key of an object, or nil.
func (v *Value) Get(key string) *Value {
	if v == nil || v.Kind != Object {
		return nil
	}
	for i := range v.Members {
		if v.Members[i].Key == key {
			return &v.Members[i].Value
		}
	}
	return nil
}

// Any converts v for encoding/json-style consumers (map[string]any,
// []any, json.Number, string, bool, nil), as a JSON Schema library wants it.
func (v *Value) Any() any {
	switch v.Kind {
	case Bool:
		return v.Bool
	case Number:
		return json.Number(v.Text)
	case String:
		return v.Text
	case Array:
		out := make([]any, len(v.Items))
		for i := range v.Items {
			out[i] = v.Items[i].Any()
		}
		return out
	case Object:
		out := make(map[string]any, len(v.Members))
		for i := range v.Members {
			out[v.Members[i].Key] = v.Members[i].Value.Any()
		}
		return out
	}
	return nil
}

type parser struct {
	s     []byte
	i     int
	depth int
}

// SyntaxError names the problem and its byte offset.
type SyntaxError struct {
	Msg    string
	Offset int
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.Msg, e.Offset) }

type failure struct{ err *SyntaxError }

func (p *parser) fail(msg string) { panic(failure{&SyntaxError{msg, p.i}}) }

// Parse parses one JSON document.
func Parse(data []byte) (v Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			err = f.err
		}
	}()
	if !utf8.Valid(data) {
		// Outside a string, any non-ASCII byte is an error anyway.
		return Value{}, &SyntaxError{"invalid UTF-8", invalidAt(data)}
	}
	p := &parser{s: data}
	p.ws()
	v = p.value()
	p.ws()
	if p.i < len(p.s) {
		p.fail("trailing characters")
	}
	return v, nil
}

func invalidAt(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(data)
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) literal(word string) {
	if !strings.HasPrefix(string(p.s[p.i:min(len(p.s), p.i+len(word))]), word) {
		p.fail("expected value")
	}
	p.i += len(word)
}

func (p *parser) value() Value {
	if p.i >= len(p.s) {
		p.fail("EOF while parsing a value")
	}
	switch c := p.s[p.i]; {
	case c == 'n':
		p.literal("null")
		return Value{}
	case c == 't':
		p.literal("true")
		return Value{Kind: Bool, Bool: true}
	case c == 'f':
		p.literal("false")
		return Value{Kind: Bool}
	case c == '"':
		return Value{Kind: String, Text: p.str()}
	case c == '[':
		return p.array()
	case c == '{':
		return p.object()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	p.fail("expected value")
	return Value{}
}

func (p *parser) enter() {
	p.depth++
	if p.depth > MaxDepth {
		p.fail("recursion limit exceeded")
	}
	p.i++
}

func (p *parser) array() Value {
	p.enter()
	v := Value{Kind: Array}
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		p.depth--
		return v
	}
	for {
		p.ws()
		v.Items = append(v.Items, p.value())
		p.ws()
		if p.i >= len(p.s) {
			p.fail("EOF while parsing a list")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			p.depth--
			return v
		default:
			p.fail("expected `,` or `]`")
		}
	}
}

func (p *parser) object() Value {
	p.enter()
	v := Value{Kind: Object}
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		p.depth--
		return v
	}
	for {
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			p.fail("key must be a string")
		}
		key := p.str()
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			p.fail("expected `:`")
		}
		p.i++
		p.ws()
		val := p.value()
		if old := v.Get(key); old != nil {
			*old = val
		} else {
			v.Members = append(v.Members, Member{key, val})
		}
		p.ws()
		if p.i >= len(p.s) {
			p.fail("EOF while parsing an object")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			p.depth--
			return v
		default:
			p.fail("expected `,` or `}`")
		}
	}
}

func (p *parser) digits() int {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

func (p *parser) number() Value {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.s) && p.s[p.i] == '0' {
		p.i++
		if p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.fail("invalid number")
		}
	} else if p.digits() == 0 {
		p.fail("invalid number")
	}
	float := false
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		float = true
		if p.digits() == 0 {
			p.fail("invalid number")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		float = true
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			p.fail("invalid number")
		}
	}
	text := string(p.s[start:p.i])
	if float || !fitsInt(text) {
		if f, _ := strconv.ParseFloat(text, 64); math.IsInf(f, 0) {
			p.i = start
			p.fail("number out of range")
		}
	}
	return Value{Kind: Number, Text: text}
}

// fitsInt: an integer literal serde_json keeps exact (i64 if negative, u64
// if not; "-0" is the double -0.0).
func fitsInt(text string) bool {
	if text[0] == '-' {
		n, err := strconv.ParseInt(text, 10, 64)
		return err == nil && n != 0
	}
	_, err := strconv.ParseUint(text, 10, 64)
	return err == nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func (p *parser) str() string {
	p.i++ // the opening quote
	start := p.i
	// The common case: no escapes, a substring of the input.
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			s := string(p.s[start:p.i])
			p.i++
			return s
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			p.fail("control character in string")
		}
		p.i++
	}
	buf := append([]byte(nil), p.s[start:p.i]...)
	for {
		if p.i >= len(p.s) {
			p.fail("EOF while parsing a string")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf)
		case c < 0x20:
			p.fail("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.s) {
			p.fail("EOF while parsing a string")
		}
		e := p.s[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(p.s[p.i:])
			if !ok {
				p.fail("invalid \\u escape")
			}
			p.i += 4
			if r >= 0xDC00 && r <= 0xDFFF {
				p.fail("lone surrogate in \\u escape")
			}
			if r >= 0xD800 && r <= 0xDBFF {
				if p.i+1 >= len(p.s) || p.s[p.i] != '\\' || p.s[p.i+1] != 'u' {
					p.fail("lone surrogate in \\u escape")
				}
				lo, ok := hex4(p.s[p.i+2:])
				if !ok {
					p.fail("invalid \\u escape")
				}
				if lo < 0xDC00 || lo > 0xDFFF {
					p.fail("lone surrogate in \\u escape")
				}
				p.i += 6
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			p.fail("invalid escape")
		}
	}
}

// ---- numbers, as JSON Schema and serde_json see them ----

// Float is a number's value as a double.
func (v *Value) Float() float64 {
	f, _ := strconv.ParseFloat(v.Text, 64)
	return f
}

// ---- writer ----

// Append appends v as compact JSON, byte for byte what serde_json's
// to_string writes: no spaces, keys in input order, non-ASCII as raw UTF-8,
// only '"', '\\' and control characters escaped, integers exact, other
// numbers as the shortest round-tripping form in serde_json's layout (1.5,
// 100.0, 1e+100, 1e-7).
func Append(b []byte, v *Value) []byte {
	switch v.Kind {
	case Null:
		return append(b, "null"...)
	case Bool:
		if v.Bool {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case Number:
		if !strings.ContainsAny(v.Text, ".eE") && fitsInt(v.Text) {
			return append(b, v.Text...)
		}
		return appendFloat(b, v.Float())
	case String:
		return appendString(b, v.Text)
	case Array:
		b = append(b, '[')
		for i := range v.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = Append(b, &v.Items[i])
		}
		return append(b, ']')
	default:
		b = append(b, '{')
		for i := range v.Members {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v.Members[i].Key)
			b = append(b, ':')
			b = Append(b, &v.Members[i].Value)
		}
		return append(b, '}')
	}
}

func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[run:i]...)
		run = i + 1
		switch c {
		case '"':
			b = append(b, `\"`...)
		case '\\':
			b = append(b, `\\`...)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
	}
	b = append(b, s[run:]...)
	return append(b, '"')
}

// appendFloat lays out the shortest round-tripping digits as serde_json
// (ryu) does: fixed notation from 1e-5 to below 1e16, else d.ddde+x.
func appendFloat(b []byte, f float64) []byte {
	if f == 0 {
		if math.Signbit(f) {
			return append(b, "-0.0"...)
		}
		return append(b, "0.0"...)
	}
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±x
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp10, _ := strconv.Atoi(exp)
	length := len(digits)
	k := exp10 - (length - 1) // value = digits * 10^k
	kk := length + k          // 10^(kk-1) <= value < 10^kk
	switch {
	case k >= 0 && kk <= 16:
		b = append(b, digits...)
		b = append(b, strings.Repeat("0", kk-length)...)
		return append(b, ".0"...)
	case kk > 0 && kk <= 16:
		b = append(b, digits[:kk]...)
		b = append(b, '.')
		return append(b, digits[kk:]...)
	case kk > -5 && kk <= 0:
		b = append(b, "0."...)
		b = append(b, strings.Repeat("0", -kk)...)
		return append(b, digits...)
	default:
		b = append(b, digits[0])
		if length > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		return fmt.Appendf(b, "e%+d", kk-1)
	}
}
