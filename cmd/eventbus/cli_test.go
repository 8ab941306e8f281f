package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"daemoneye.dev/eventbus/internal/testutil"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "", "version")
	want := regexp.MustCompile(`^eventbus 0\.1\.0 \(protocol 1, go1\.\d+\S* \w+/\w+\)\n$`)
	if r.code != 0 || !want.MatchString(r.stdout) {
		t.Errorf("version = %d, %q; want 0 and a match for %v", r.code, r.stdout, want)
	}
}

func TestTopicCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pattern, topic string
		code                 int
		stdout, stderr       string
	}{
		{"match", "events.+.lifecycle", "events.network.lifecycle", 0, "match\n", ""},
		{"match hash zero segments", "events.process.#", "events.process", 0, "match\n", ""},
		{"no match", "events.+.lifecycle", "events.lifecycle", 1, "no match\n", ""},
		{"hash skips reserved", "#", "$sys.stats", 1, "no match\n", ""},
		{"invalid pattern", "a.#.b", "a.x.b", 2, "",
			"eventbus: invalid pattern \"a.#.b\": '#' must be the last segment\n"},
		{"invalid topic", "a.#", "A.b", 2, "",
			"eventbus: invalid topic \"A.b\": segment \"A\": invalid character 'A' at byte 0 (allowed: a-z 0-9 - _)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, "", "topic", "check", tt.pattern, tt.topic)
			if r.code != tt.code || r.stdout != tt.stdout || r.stderr != tt.stderr {
				t.Errorf("topic check %q %q = %d, stdout %q, stderr %q; want %d, %q, %q",
					tt.pattern, tt.topic, r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"pub", "--bogus", "a", "b"}, "unknown flag: --bogus"},
		{[]string{"pub"}, "eventbus pub takes TOPIC [PAYLOAD]; got 0 argument(s)"},
		{[]string{"sub"}, "eventbus sub takes PATTERN...; got 0 argument(s)"},
		{[]string{"topic", "check", "a"}, "takes PATTERN TOPIC"},
		{[]string{"pub", "--count", "0", "a", "b"}, "--count must be at least 1, got 0"},
		{[]string{"pub", "--file", "x", "a", "b"}, "give PAYLOAD or --file, not both"},
		{[]string{"broker", "--slow-policy", "never"}, `--slow-policy: "never" is not one of drop, disconnect`},
		{[]string{"pub", "--token-file", "x", "a", "b"}, "--token-file is for --as agent"},
		{[]string{"sub", "--as", "procmond", "--token-file", "x", "a"}, "--token-file is for --as agent, not --as procmond"},
		{[]string{"policy", "explain", "frob", "a"}, `ACTION must be publish or subscribe, not "frob"`},
		{[]string{"policy", "explain", "publish"}, "takes ACTION TOPIC"},
		{[]string{"policy", "explain", "publish", "a.#"}, "wildcard '#' is not allowed in a topic"},
		{[]string{"policy", "explain", "--uid", "-1", "publish", "a"}, `invalid argument "-1" for "--uid"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, "", tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "eventbus: ") == 0 {
				t.Errorf("eventbus %v = %d, stderr %q; want 2 and %q", tt.args, r.code, r.stderr, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, sub := range []string{"broker", "pub", "sub", "stats", "topic", "policy", "version", "bench"} {
		r := runCLI(t, "", sub, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "--socket") {
			t.Errorf("eventbus %s --help = %d, %q; want 0 and the --socket flag", sub, r.code, r.stdout)
		}
	}
}

func TestPubInvalidTopic(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(testutil.SocketDir(t), "missing.sock") // checked before dialing
	tests := []struct{ topic, want string }{
		{strings.Repeat("a", 300), "topic too long: 300 bytes, limit 255\n"},
		{"events..x", `empty segment 2 in "events..x"` + "\n"},
		{"events.*", "'*' is not a wildcard; use '+' or '#'\n"},
	}
	for _, tt := range tests {
		r := runCLI(t, "", "pub", "--socket", sock, tt.topic, "x")
		if r.code != 2 || !strings.HasPrefix(r.stderr, "eventbus: invalid topic ") ||
			!strings.HasSuffix(r.stderr, tt.want) || strings.Contains(r.stderr, "eventbus: eventbus") {
			t.Errorf("pub %.20q = %d, stderr %q; want 2 and ...%q", tt.topic, r.code, r.stderr, tt.want)
		}
	}
}

func TestMessage(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errors.New("eventbus: publish a.b: not connected to the broker"), "eventbus: publish a.b: not connected to the broker"},
		{fmt.Errorf("x line 2: %w", errors.New("message too large")), "eventbus: x line 2: message too large"},
		{errors.New("transport: permission denied on /s"), "eventbus: transport: permission denied on /s"},
		{&exitStatus{code: 1}, ""},
	}
	for _, tt := range tests {
		if got := message(tt.err); got != tt.want {
			t.Errorf("message(%q) = %q; want %q", tt.err, got, tt.want)
		}
	}
}

func TestAppendText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello world", "hello world"},
		{"tab\there", "tab\there"},
		{"two\nlines", `"two\nlines"`},
		{"\xff\x00", `"\xff\x00"`},
		{"", ""},
	}
	for _, tt := range tests {
		if got := string(appendText(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("appendText(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
