//go:build unix

package main

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestCollectorStopped: a registered collector process that stops
// heartbeating (SIGSTOP) is marked unhealthy, then expired, and both
// transitions are published; resumed, it registers again.
func TestCollectorStopped(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "broker.yaml", "heartbeat_interval: 100ms\nheartbeat_unhealthy_after: 3\nheartbeat_expire_after: 8\n", 0o600)
	_, sock := startOpenBroker(t, "--config", cfg)
	watch := startCLI(t, "sub", "--socket", sock, "--as", "procmond", "control.health.status", "control.collector.registration")
	waitForSubscribers(t, sock, "control.health.status", 1, watch)
	col := startCLI(t, "reply", "--socket", sock, "--as", "procmond", "--register", "--exec", "cat", "svc.scan")
	pid := fmt.Sprintf(`"pid":%d,`, col.Pid())
	event := func(topicName, name string) string {
		return fmt.Sprintf(`^%s \{"event":"%s",.*%s`, regexp.QuoteMeta(topicName), name, regexp.QuoteMeta(pid))
	}
	watch.Stdout.WaitMatch(t, regexp.MustCompile("(?m)"+event("control.collector.registration", "registered")), waitLimit)
	// Ready (its last setup step): stopping it now stops nothing but its
	// heartbeats.
	watch.Stdout.WaitMatch(t, regexp.MustCompile("(?m)"+event("control.health.status", "status")+`.*"status":"ready"`), waitLimit)
	col.Signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { col.Cmd.Process.Signal(syscall.SIGCONT) })
	watch.Stdout.WaitMatch(t, regexp.MustCompile("(?m)"+event("control.health.status", "unhealthy")), waitLimit)
	watch.Stdout.WaitMatch(t, regexp.MustCompile("(?m)"+event("control.health.status", "expired")), waitLimit)
	out := watch.Stdout.String()
	if u, e := strings.Index(out, `"event":"unhealthy"`), strings.Index(out, `"event":"expired"`); u < 0 || e < u {
		t.Errorf("health events out of order:\n%s", out)
	}
	col.Signal(t, syscall.SIGCONT)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("collector stderr:\n%s", col.Stderr.String())
		}
	})
	// Its connection was closed at expiry: it reconnects and registers again.
	watch.Stdout.WaitMatch(t, regexp.MustCompile(`(?s)"event":"expired".*`+regexp.QuoteMeta(`control.collector.registration {"event":"registered"`)+`[^\n]*`+regexp.QuoteMeta(pid)), waitLimit)
}
