package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestRequestReplyCLI(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	upper := startCLI(t, "reply", "--socket", sock, "--exec", "tr a-z A-Z", "svc.upper")
	fail := startCLI(t, "reply", "--socket", sock, "--exec", "echo first >&2; echo oops >&2; exit 3", "svc.fail")
	slow := startCLI(t, "reply", "--socket", sock, "--exec", "sleep 5", "svc.slow")
	waitForSubscribers(t, sock, "svc.upper", 1, upper)
	waitForSubscribers(t, sock, "svc.fail", 1, fail)
	waitForSubscribers(t, sock, "svc.slow", 1, slow)

	tests := []struct {
		name       string
		args       []string
		stdin      string
		code       int
		stdout     string
		stderrPart string
	}{
		{"reply", []string{"svc.upper", "hello"}, "", 0, "HELLO\n", ""},
		{"payload from stdin", []string{"svc.upper"}, "from stdin", 0, "FROM STDIN\n", ""},
		{"no responders", []string{"svc.nobody", "x"}, "", 1, "", "no responders"},
		{"error reply", []string{"svc.fail", "x"}, "", 1, "", "reply error exit_status (server): oops"},
		{"deadline", []string{"--timeout", "300ms", "svc.slow", "x"}, "", 1, "", "deadline exceeded"},
		{"bad timeout", []string{"--timeout", "0s", "svc.upper", "x"}, "", 2, "", "--timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.stdin, append([]string{"request", "--socket", sock}, tt.args...)...)
			if r.code != tt.code || r.stdout != tt.stdout || !strings.Contains(r.stderr, tt.stderrPart) {
				t.Errorf("request %q = %d, stdout %q, stderr %q; want %d, %q, stderr containing %q",
					tt.args, r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderrPart)
			}
		})
	}
}

// TestSubGroup: two subs in one queue group share a stream, each message
// printed by exactly one of them.
func TestSubGroup(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	a := startCLI(t, "sub", "--socket", sock, "--group", "g", "events.#")
	b := startCLI(t, "sub", "--socket", sock, "--group", "g", "events.#")
	waitForSubscribers(t, sock, "events.#", 2, b)
	if r := runCLI(t, "", "pub", "--socket", sock, "--count", "10", "events.a", "x"); r.code != 0 {
		t.Fatalf("pub = %d, %q", r.code, r.stderr)
	}
	// Round robin: five each.
	a.Stdout.WaitFor(t, strings.Repeat("events.a x\n", 5), waitLimit)
	b.Stdout.WaitFor(t, strings.Repeat("events.a x\n", 5), waitLimit)
	// Refused as an invalid subscription, like a bad pattern (exit 2).
	if r := runCLI(t, "", "sub", "--socket", sock, "--group", "g", "--strategy", "random", "--count", "1", "events.#"); r.code != 2 ||
		!strings.Contains(r.stderr, `group "g" uses strategy round-robin, not random`) {
		t.Errorf("sub joining with another strategy = %d, %q; want 2 and the conflict named", r.code, r.stderr)
	}
	if r := runCLI(t, "", "sub", "--socket", sock, "--strategy", "fastest", "events.#"); r.code != 2 {
		t.Errorf("sub --strategy fastest = %d; want 2 (usage)", r.code)
	}
	if got := strings.Count(a.Stdout.String()+b.Stdout.String(), "events.a x\n"); got != 10 {
		t.Errorf("the group printed %d messages; want 10", got)
	}
}

// TestCollectorsCLI: reply --register is listed by collectors, as text
// and as JSON, and leaves the list when it ends.
func TestCollectorsCLI(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	if r := runCLI(t, "", "collectors", "--socket", sock, "--as", "procmond"); r.code != 0 || r.stdout != "no registered collectors\n" {
		t.Errorf("collectors with none = %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	col := startCLI(t, "reply", "--socket", sock, "--as", "procmond", "--register", "--exec", "cat", "svc.scan")
	waitForSubscribers(t, sock, "svc.scan", 1, col)
	r := runCLI(t, "", "collectors", "--socket", sock, "--as", "procmond", "--json")
	var got jsonCollector
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
		t.Fatalf("collectors --json = %d, %q (%v)", r.code, r.stdout, err)
	}
	if got.Component != "procmond" || got.PID != col.Pid() || got.Status != "ready" || !got.Healthy || !slices.Equal(got.Operations, []string{"svc.scan"}) {
		t.Errorf("collectors --json: %+v; want the reply process, ready and healthy, serving svc.scan", got)
	}
	text := runCLI(t, "", "collectors", "--socket", sock, "--as", "procmond")
	if !strings.HasPrefix(text.stdout, "COMPONENT") || !strings.Contains(text.stdout, "procmond") || !strings.Contains(text.stdout, "ops=svc.scan") {
		t.Errorf("collectors:\n%s", text.stdout)
	}
	if r := runCLI(t, "", "control", "--socket", sock, "--as", "agent", "procmond", "health-check"); r.code != 0 || r.stdout != `{"status":"ready"}`+"\n" {
		t.Errorf("control health-check = %d, %q, %q; want the collector's status", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "", "control", "--socket", sock, "--as", "agent", "procmond", "pause"); r.code != 1 || !strings.Contains(r.stderr, "unsupported") {
		t.Errorf("control pause = %d, %q; want 1, unsupported", r.code, r.stderr)
	}
	if r := runCLI(t, "", "control", "--socket", sock, "--as", "agent", "procmond", "explode"); r.code != 2 {
		t.Errorf("control explode = %d; want 2 (usage)", r.code)
	}
	if r := runCLI(t, "", "collectors", "--socket", sock); r.code == 0 {
		t.Errorf("an anonymous collectors = 0; want refused")
	}
	if r := runCLI(t, "", "reply", "--socket", sock, "--register", "--exec", "cat", "svc.x"); r.code != 2 {
		t.Errorf("reply --register without --as = %d; want 2", r.code)
	}
}
