//go:build unix

package main

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"daemoneye.dev/eventbus/stats"
)

func TestStats(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t)
	sub := startCLI(t, "sub", "--socket", sock, "events.process.#")
	waitForSubscribers(t, sock, "events.process.#", 1, sub)
	if r := runCLI(t, "", "pub", "--socket", sock, "--name", "tester", "--count", "2", "events.process.lifecycle", "x"); r.code != 0 {
		t.Fatalf("pub = %d, %q", r.code, r.stderr)
	}

	r := runCLI(t, "", "stats", "--socket", sock, "--json")
	var s stats.Snapshot
	if err := json.Unmarshal([]byte(r.stdout), &s); r.code != 0 || err != nil {
		t.Fatalf("stats --json = %d, %v; stderr %q", r.code, err, r.stderr)
	}
	i := slices.IndexFunc(s.ConnectionList, func(c stats.Connection) bool { return c.PID == sub.cmd.Process.Pid })
	if i < 0 {
		t.Fatalf("sub (pid %d) not in connection_list %+v", sub.cmd.Process.Pid, s.ConnectionList)
	}
	if c := s.ConnectionList[i]; c.ClientName != "eventbus-sub" || c.Subscriptions != 1 || c.Delivered != 2 {
		t.Errorf("sub's connection = %+v; want name eventbus-sub, 1 subscription, 2 delivered", c)
	}
	if s.Published != 2 || len(s.Topics) != 1 || s.Topics[0].Published != 2 {
		t.Errorf("published %d, topics %+v; want 2 on events.process.lifecycle", s.Published, s.Topics)
	}

	r = runCLI(t, "", "stats", "--socket", sock)
	for _, want := range []string{"uptime", "CONNECTIONS", "eventbus-sub", strconv.Itoa(sub.cmd.Process.Pid),
		"TOPICS", "events.process.lifecycle", "PATTERNS", "events.process.#", "DELIVERY LATENCY", "p99.9"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stats output lacks %q:\n%s", want, r.stdout)
		}
	}
}
