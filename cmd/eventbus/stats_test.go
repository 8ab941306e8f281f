//go:build unix

package main

import (
	"encoding/json"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/stats"
)

// TestStats runs on the built-in policy: the agent subscribes, procmond
// publishes, and an anonymous publish is denied and counted.
func TestStats(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t)
	sub := startCLI(t, "sub", "--socket", sock, "--as", "agent", "events.process.#")
	waitForSubscribers(t, sock, "events.process.#", 1, sub)
	if r := runCLI(t, "", "pub", "--socket", sock, "--as", "procmond", "--name", "tester", "--count", "2", "events.process.lifecycle", "x"); r.code != 0 {
		t.Fatalf("pub = %d, %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", "pub", "--socket", sock, "events.process.lifecycle", "x"); r.code != 1 {
		t.Fatalf("anonymous pub = %d, %q; want 1 (denied)", r.code, r.stderr)
	}

	// Registered: an anonymous peer's statistics show only itself.
	r := runCLI(t, "", "stats", "--socket", sock, "--json", "--as", "procmond")
	var s stats.Snapshot
	if err := json.Unmarshal([]byte(r.stdout), &s); r.code != 0 || err != nil {
		t.Fatalf("stats --json = %d, %v; stderr %q", r.code, err, r.stderr)
	}
	i := slices.IndexFunc(s.ConnectionList, func(c stats.Connection) bool { return c.PID == sub.Pid() })
	if i < 0 {
		t.Fatalf("sub (pid %d) not in connection_list %+v", sub.Pid(), s.ConnectionList)
	}
	exe := binaryExe(t)
	if c := s.ConnectionList[i]; c.ClientName != "eventbus-sub" || c.Subscriptions != 1 || c.Delivered != 2 ||
		c.Component != "agent" || !c.Agent || c.Exe != exe {
		t.Errorf("sub's connection = %+v; want name eventbus-sub, component agent, agent, exe %q, 1 subscription, 2 delivered", c, exe)
	}
	if s.Published != 2 || len(s.Topics) != 1 || s.Topics[0].Published != 2 {
		t.Errorf("published %d, topics %+v; want 2 on events.process.lifecycle", s.Published, s.Topics)
	}
	if want := []stats.DenialCount{{Component: "(anonymous)", Count: 1}}; !slices.Equal(s.Denials, want) {
		t.Errorf("denials = %+v; want %+v", s.Denials, want)
	}

	r = runCLI(t, "", "stats", "--socket", sock, "--as", "procmond")
	for _, want := range []string{"uptime", "access denials   1", "memory", "resident", "CONNECTIONS", "eventbus-sub", strconv.Itoa(sub.Pid()),
		"AGENT", "EXE", orDash(exe), "DENIALS", "(anonymous)  1",
		"TOPICS", "events.process.lifecycle", "PATTERNS", "events.process.#", "DELIVERY LATENCY", "p99.9"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stats output lacks %q:\n%s", want, r.stdout)
		}
	}
	// The sub's row marks it as the agent; stats itself claimed procmond.
	for line := range strings.Lines(r.stdout) {
		f := strings.Fields(line)
		switch {
		case len(f) > 6 && f[1] == strconv.Itoa(sub.Pid()):
			if f[5] != "agent" || f[6] != "yes" {
				t.Errorf("sub's row %q; want component agent, AGENT yes", line)
			}
		case len(f) > 6 && f[4] == "eventbus-stats":
			if f[5] != "procmond" || f[6] != "-" {
				t.Errorf("stats's row %q; want component procmond, AGENT -", line)
			}
		}
	}
}

// binaryExe is the executable path the broker reports for the binary
// under test: the resolved path on Linux, "" where the OS does not reveal it.
func binaryExe(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		return ""
	}
	exe, err := filepath.EvalSymlinks(proctest.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	return exe
}
