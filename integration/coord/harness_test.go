//go:build linux

package coord

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/stats"
)

// waitTimeout bounds every wait for an event; a failure bound, never a
// delay: each wait ends as soon as what it waits for happens.
const waitTimeout = 30 * time.Second

// helperGrace is how long a helper has to exit once its stdin closes.
const helperGrace = 10 * time.Second

// startHelper runs the test binary as role; onLine, if set, sees each line
// of its stdout before a wait on its output does. The helper exits when
// its stdin closes (Stop, at the test's end at the latest).
func startHelper(t *testing.T, name, role string, onLine func(string), args ...string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, proctest.Cmd{Role: role, Name: name, Args: args, OnLine: onLine, Grace: helperGrace})
}

// startBroker starts a broker helper on path and waits until it listens.
// It is killed when the test ends.
func startBroker(t *testing.T, path string) *proctest.Proc {
	t.Helper()
	p := proctest.Start(t, proctest.Cmd{Role: "broker", Name: "broker", Args: []string{"-socket", path}})
	p.WaitLine(t, "ready", waitTimeout)
	return p
}

// startSubscribed starts a helper and waits until it has subscribed.
func startSubscribed(t *testing.T, name, role string, onLine func(string), args ...string) *proctest.Proc {
	t.Helper()
	p := startHelper(t, name, role, onLine, args...)
	p.WaitLine(t, "subscribed", waitTimeout)
	return p
}

// kill SIGKILLs p and waits until it is reaped: its sockets are closed by
// then, by the kernel, with nothing of its own flushed.
func kill(t *testing.T, p *proctest.Proc) {
	t.Helper()
	p.Signal(t, syscall.SIGKILL)
	p.Wait(t, waitTimeout)
}

// stop SIGSTOPs p and waits until the kernel says it is stopped; it is
// resumed when the test ends, if still alive, so that proctest can stop it.
func stop(t *testing.T, p *proctest.Proc) {
	t.Helper()
	p.Signal(t, syscall.SIGSTOP)
	t.Cleanup(func() {
		if !p.Exited() {
			p.Cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	deadline := time.Now().Add(waitTimeout)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		// pid (comm) state ...: comm may hold spaces and parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) not stopped after %v: %s", p.Name, p.Pid(), waitTimeout, stat)
		}
		time.Sleep(time.Millisecond) // no notification exists for this; a poll bounded by waitTimeout
	}
}

// finish closes p's stdin, its signal to exit, and waits until it has
// exited cleanly: its output is complete then.
func finish(t *testing.T, p *proctest.Proc) {
	t.Helper()
	p.Stdin.Close()
	p.WaitOK(t, waitTimeout)
}

// dial connects the test's own client; it is closed when the test ends.
func dial(t *testing.T, path, name string, opts ...eventbus.ClientOption) *eventbus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := eventbus.Dial(ctx, path, append(opts, eventbus.WithName(name), eventbus.WithReconnect(false))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close %s: %v", name, err)
		}
	})
	return c
}

// requestStats asks the broker, over c, for its request counts.
func requestStats(t *testing.T, c *eventbus.Client) stats.RequestCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return s.Requests
}

// fields parses "word k1=v1 k2=v2 ... err=rest of the line": the value of
// err, always last, runs to the end of the line.
func fields(line string) map[string]string {
	out := map[string]string{}
	if head, rest, ok := strings.Cut(line, " err="); ok {
		out["err"] = rest
		line = head
	}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

// linesWith returns p's stdout lines starting with prefix.
func linesWith(p *proctest.Proc, prefix string) []string {
	var out []string
	for _, l := range p.Stdout.Lines() {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// taskNumber parses the task number a line names after prefix, up to the
// next space; ok is false if it is not one below n.
func taskNumber(line, prefix string, n int) (int, bool) {
	s, _, _ := strings.Cut(strings.TrimPrefix(line, prefix), " ")
	i, err := strconv.Atoi(s)
	return i, err == nil && i >= 0 && i < n
}
