package topic

import (
	"errors"
	"strings"
	"testing"
)

var (
	seg64   = strings.Repeat("a", 64)
	seg70   = strings.Repeat("b", 70)
	long255 = strings.Repeat("abcdefghi.", 25) + "abcde" // 26 segments, 255 bytes
	long300 = strings.Repeat("x", 300)
)

// topicTests are shared by Validate, ValidateBytes and the fuzz seeds.
// A topic with a wantErr of "" is valid.
var topicTests = []struct {
	topic   string
	wantErr string
}{
	{"events", ""},
	{"events.process.lifecycle", ""},
	{"a.b.c.d.e.f.g.h", ""},
	{"a-b_c.0-9_z", ""},
	{seg64, ""},
	{seg64 + "." + seg64 + "." + seg64 + "." + seg64[:60], ""}, // 255 bytes
	{"$sys.stats", ""},
	{"$sys", ""},
	{"$a-b_0", ""},
	{"", "empty topic"},
	{long300, "topic too long: 300 bytes, limit 255"},
	{seg64 + "." + seg64 + "." + seg64 + "." + seg64[:61], "topic too long: 256 bytes, limit 255"},
	{"a.b.c.d.e.f.g.h.i", "topic has 9 segments, limit 8"},
	{long255, "topic has 26 segments, limit 8"},
	{"a..b", `empty segment 2 in "a..b"`},
	{".a", `empty segment 1 in ".a" (leading dot)`},
	{"a.", `empty segment 2 in "a." (trailing dot)`},
	{".", `empty segment 1 in "."`},
	{"a." + seg70, "segment too long: 70 bytes, limit 64"},
	{"Abc", `segment "Abc": invalid character 'A' at byte 0 (allowed: a-z 0-9 - _)`},
	{"A.b", `invalid topic "A.b": segment "A": invalid character 'A' at byte 0`},
	{"events.Process", `segment "Process": invalid character 'P' at byte 0`},
	{"a b", `segment "a b": invalid character ' ' at byte 1`},
	{"ab\n", `segment "ab\n": invalid character '\n' at byte 2`},
	{"caf\u00e9", `segment "café": invalid character 'é' at byte 3`},
	{"a\xff", `segment "a\xff": invalid byte 0xff at byte 1`},
	{"a/b", `invalid character '/' at byte 1`},
	{"*", `segment "*": '*' is not a wildcard; use '+' or '#'`},
	{"events.*", `'*' is not a wildcard; use '+' or '#'`},
	{"+", `segment "+": wildcard '+' is not allowed in a topic (only in patterns)`},
	{"events.#", `wildcard '#' is not allowed in a topic`},
	{"ev+", `wildcard '+' is not allowed in a topic`},
	{"$", `segment "$": '$' must be followed by a name`},
	{"$.a", `segment "$": '$' must be followed by a name`},
	{"$$a", `segment "$$a": '$' is allowed only as the first byte of a topic`},
	{"a$", `segment "a$": '$' is allowed only as the first byte`},
	{"a.$b", `segment "$b": '$' is allowed only as the first byte`},
	{"$A", `segment "$A": invalid character 'A' at byte 1`},
}

// patternTests: every valid topic is a valid pattern; these add the wildcards.
var patternTests = []struct {
	pattern string
	wantErr string
}{
	{"events.process.lifecycle", ""},
	{"$sys.stats", ""},
	{"#", ""},
	{"+", ""},
	{"events.process.#", ""},
	{"events.+.lifecycle", ""},
	{"a.+.#", ""},
	{"+.+.+.+.+.+.+.#", ""},
	{"$sys.#", ""},
	{"$sys.+", ""},
	{"", "empty pattern"},
	{long300, "pattern too long: 300 bytes, limit 255"},
	{"+.+.+.+.+.+.+.+.+", "pattern has 9 segments, limit 8"},
	{"a..#", `empty segment 2 in "a..#"`},
	{"a.#.b", "'#' must be the last segment"},
	{"#.a", "'#' must be the last segment"},
	{"#.#", "'#' must be the last segment"},
	{"ev+", `segment "ev+": wildcard '+' must be a whole segment`},
	{"a.+b", "wildcard '+' must be a whole segment"},
	{"a#", `segment "a#": wildcard '#' must be a whole segment`},
	{"a.b#c", "wildcard '#' must be a whole segment"},
	{"++", "wildcard '+' must be a whole segment"},
	{"$+", "wildcard '+' must be a whole segment"},
	{"$#", "wildcard '#' must be a whole segment"},
	{"*", "'*' is not a wildcard; use '+' or '#'"},
	{"events.*.x", "'*' is not a wildcard; use '+' or '#'"},
	{"a." + seg70 + ".#", "segment too long: 70 bytes, limit 64"},
	{"Events.#", `segment "Events": invalid character 'E' at byte 0`},
	{"$", `'$' must be followed by a name`},
	{"+.$sys", `'$' is allowed only as the first byte`},
}

func TestValidate(t *testing.T) {
	for _, tt := range topicTests {
		t.Run(tt.topic, func(t *testing.T) {
			checkErr(t, "Validate", tt.topic, Validate(tt.topic), tt.wantErr, ErrInvalidTopic)
			checkErr(t, "ValidateBytes", tt.topic, ValidateBytes([]byte(tt.topic)), tt.wantErr, ErrInvalidTopic)
		})
	}
}

func TestValidatePattern(t *testing.T) {
	for _, tt := range patternTests {
		t.Run(tt.pattern, func(t *testing.T) {
			checkErr(t, "ValidatePattern", tt.pattern, ValidatePattern(tt.pattern), tt.wantErr, ErrInvalidPattern)
		})
	}
	// A topic's only errors that differ as a pattern are about wildcards.
	for _, tt := range topicTests {
		if tt.wantErr == "" || strings.Contains(tt.wantErr, "wildcard") {
			continue
		}
		want := tt.wantErr
		for _, prefix := range []string{"topic ", "empty topic", "invalid topic"} {
			if strings.HasPrefix(want, prefix) {
				want = strings.Replace(want, "topic", "pattern", 1)
			}
		}
		checkErr(t, "ValidatePattern", tt.topic, ValidatePattern(tt.topic), want, ErrInvalidPattern)
	}
}

func checkErr(t *testing.T, fn, in string, err error, want string, sentinel error) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("%s(%q) = %v; want nil", fn, in, err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s(%q) = %v; want error containing %q", fn, in, err, want)
		return
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(%s(%q), %v) = false; want true", fn, in, sentinel)
	}
	other := ErrInvalidTopic
	if sentinel == ErrInvalidTopic {
		other = ErrInvalidPattern
	}
	if errors.Is(err, other) {
		t.Errorf("errors.Is(%s(%q), %v) = true; want false", fn, in, other)
	}
	var e *Error
	if !errors.As(err, &e) || e.Input != in || e.Rule == "" || !strings.HasSuffix(err.Error(), e.Rule) {
		t.Errorf("%s(%q) = %#v; want *Error with Input and Rule", fn, in, err)
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Input: "A.b", Rule: "r"}, `invalid topic "A.b": r`},
		{&Error{Input: "a#", Pattern: true, Rule: "r"}, `invalid pattern "a#": r`},
		{&Error{Input: long300, Rule: "r"}, `invalid topic "` + long300[:64] + `"...: r`},
		{&Error{Input: strings.Repeat("a", 63) + "é", Rule: "r"}, `invalid topic "` + strings.Repeat("a", 63) + `"...: r`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
	}
	err := Validate(long300)
	var e *Error
	if !errors.As(err, &e) || e.Rule != "topic too long: 300 bytes, limit 255" {
		t.Errorf("Validate(300 bytes).Rule = %q; want %q", e.Rule, "topic too long: 300 bytes, limit 255")
	}
}

func TestIsReserved(t *testing.T) {
	tests := []struct {
		topic string
		want  bool
	}{
		{"$sys.stats", true},
		{"$sys", true},
		{"$", true},
		{"sys.$stats", false},
		{"events.process", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsReserved(tt.topic); got != tt.want {
			t.Errorf("IsReserved(%q) = %v; want %v", tt.topic, got, tt.want)
		}
		if got := IsReservedBytes([]byte(tt.topic)); got != tt.want {
			t.Errorf("IsReservedBytes(%q) = %v; want %v", tt.topic, got, tt.want)
		}
	}
}

func TestIsWildcard(t *testing.T) {
	tests := []struct {
		pattern string
		want    bool
	}{
		{"#", true},
		{"+", true},
		{"events.process.#", true},
		{"events.+.lifecycle", true},
		{"+.a", true},
		{"events.process.lifecycle", false},
		{"$sys.stats", false},
		{"ev+.a#", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsWildcard(tt.pattern); got != tt.want {
			t.Errorf("IsWildcard(%q) = %v; want %v", tt.pattern, got, tt.want)
		}
	}
}

func TestValidateBytesAllocs(t *testing.T) {
	b := []byte("events.process.lifecycle")
	if n := testing.AllocsPerRun(100, func() { _ = ValidateBytes(b) }); n != 0 {
		t.Errorf("ValidateBytes(valid) allocs = %v; want 0", n)
	}
}
