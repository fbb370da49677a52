package strictjson

import (
	"strings"
	"testing"
)

// The cases of plugins/c/common/json_test.c: serde_json's verdicts and its
// compact output.
func TestRoundtrip(t *testing.T) {
	cases := [][2]string{
		{"{}", "{}"},
		{" [ ] ", "[]"},
		{`{"b": 1, "a": [true, false, null]}`, `{"b":1,"a":[true,false,null]}`},
		{"\t\r\n{\"z\":{\"y\":{\"x\":\"w\"}}}\n", `{"z":{"y":{"x":"w"}}}`},
		{"\"caf\u00e9 \u65e5\u672c \U0001f389\"", "\"caf\u00e9 \u65e5\u672c \U0001f389\""},
		{`"\u00e9\u65e5\ud83c\udf89"`, "\"\u00e9\u65e5\U0001f389\""},
		{`"\"\\\/\b\f\n\r\t"`, `"\"\\/\b\f\n\r\t"`},
		{`"\u0000\u001f\u007f"`, "\"\\u0000\\u001f\x7f\""},
		{`{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
		{`[0,-1,42,18446744073709551615,-9223372036854775808]`, `[0,-1,42,18446744073709551615,-9223372036854775808]`},
		{`[18446744073709551616,-9223372036854775809]`, `[1.8446744073709552e+19,-9.223372036854776e+18]`},
		{`[-0,0.0,-0.0,1.0,1.50,1e2,1E+2,2.5e-3,1e-7,123456.789]`, `[-0.0,0.0,-0.0,1.0,1.5,100.0,100.0,0.0025,1e-7,123456.789]`},
		{`[1e15,1e16,1e17,1.5e300,0.1,1e-400]`, `[1000000000000000.0,1e+16,1e+17,1.5e+300,0.1,0.0]`},
		{`[1e-5,1e-4,0.0001234,1.234e-5,1e21,123456789012345678,1.7976931348623157e308,5e-324,12345678901234567e1,9007199254740993.0,1.25e16,4.35e-6]`,
			`[0.00001,0.0001,0.0001234,0.00001234,1e+21,123456789012345678,1.7976931348623157e+308,5e-324,1.2345678901234566e+17,9007199254740992.0,1.25e+16,4.35e-6]`},
		{strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)},
	}
	for _, c := range cases {
		v, err := Parse([]byte(c[0]))
		if err != nil {
			t.Errorf("%q: %v", c[0], err)
			continue
		}
		if got := string(Append(nil, &v)); got != c[1] {
			t.Errorf("%q: wrote %q, want %q", c[0], got, c[1])
		}
	}
}

func TestRejects(t *testing.T) {
	bad := []string{
		"", " ", "nul", "nulls", "tru", "True", "NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400",
		"01", "-01", "+1", ".5", "1.", "1.e5", "1e", "1e+", "-", "0x10", "1 2", "{} {}", "[] x",
		"[1,]", "[1,,2]", "[,1]", `{"a":1,}`, "{,}", `{"a"}`, `{"a" 1}`, "{a:1}", "{'a':1}", "['a']",
		"[1", `{"a":1`, `"abc`, "[1 2]", `{"a":1 "b":2}`, "/* c */ 1", "1 // c",
		`"\x"`, `"\u12"`, `"\u12G4"`, `"\U0041"`, `"\'"`, `"\"`,
		`"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, `"\ud800x"`, `"\udbff\ud800"`,
		"\"tab\there\"", "\"new\nline\"",
		"\"\xc3\"", "\"\xc3\x28\"", "\"\xc0\xaf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
		"\"\xf8\x88\x80\x80\x80\"", "\"\xff\"", "\xef\xbb\xbf{}", "\xff", "[\xc3\xa9]",
		"[1]\x00", "\"a\x00b\"",
		strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
	}
	for _, s := range bad {
		if _, err := Parse([]byte(s)); err == nil {
			t.Errorf("accepted %q", s)
		}
	}
}
