package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/stats"
)

// The tests run the eventbus binary, built once by proctest, as real
// processes.

// waitLimit bounds every wait in these tests; a healthy run takes
// milliseconds.
const waitLimit = 10 * time.Second

func TestMain(m *testing.M) {
	proctest.Exit(m.Run())
}

// result is what a finished eventbus process left.
type result struct {
	stdout, stderr string
	code           int
	pid            int
}

// cli is eventbus with args and env added to the environment; its stdin
// is empty, as no background process here reads one.
func cli(t *testing.T, stdin string, env []string, args ...string) proctest.Cmd {
	t.Helper()
	return proctest.Cmd{Path: proctest.Binary(t), Args: args, Env: env, Stdin: strings.NewReader(stdin),
		Name: "eventbus " + strings.Join(args, " ")}
}

// runCLI runs eventbus with args to completion.
func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	p := proctest.Run(t, cli(t, stdin, nil, args...), waitLimit)
	return result{stdout: p.Stdout.String(), stderr: p.Stderr.String(), code: p.ExitCode(), pid: p.Pid()}
}

// startCLI starts eventbus with args; the process is killed at the end of
// the test if it is still running.
func startCLI(t *testing.T, args ...string) *proctest.Proc {
	t.Helper()
	return startCLIEnv(t, nil, args...)
}

// startCLIEnv is startCLI with env added to the environment.
func startCLIEnv(t *testing.T, env []string, args ...string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, cli(t, "", env, args...))
}

// startBroker starts `eventbus broker` on a new socket and waits until it
// accepts clients.
func startBroker(t *testing.T, args ...string) (*proctest.Proc, string) {
	t.Helper()
	sock := filepath.Join(testutil.SocketDir(t), "eb.sock")
	b := startCLI(t, append([]string{"broker", "--socket", sock}, args...)...)
	waitForBroker(t, b, sock)
	return b, sock
}

// startOpenBroker starts a broker whose policy makes every topic public,
// for tests of delivery rather than access control; it admits procmond
// from this uid, as the built-in policy does, so brokerStats sees all.
func startOpenBroker(t *testing.T, args ...string) (*proctest.Proc, string) {
	t.Helper()
	open := fmt.Sprintf("default_access: public\ncomponents:\n  procmond:\n    uids: [%d]\n", os.Getuid())
	return startBroker(t, append([]string{"--policy", writeFile(t, "open.yaml", open, 0o600)}, args...)...)
}

// writeFile writes content to a new file named name in a temporary
// directory and returns its path.
func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // beat the umask
		t.Fatal(err)
	}
	return path
}

// accessLinePattern matches the broker's line saying which policy it enforces. The
// broker prints it once it is listening, after its "listening on" line.
var accessLinePattern = regexp.MustCompile(`(?m)^access policy: .*\n`)

// waitForBroker waits for the broker's access line, so that what it
// printed before is in b.Stderr too, then checks that it completes a
// handshake.
func waitForBroker(t *testing.T, b *proctest.Proc, sock string) {
	t.Helper()
	if _, err := b.Stderr.FindMatch(accessLinePattern, waitLimit); err != nil {
		t.Fatalf("broker printed no access policy line: %v; stderr:\n%s", err, b.Stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := eventbus.Dial(ctx, sock, eventbus.WithReconnect(false))
	if err != nil {
		t.Fatalf("broker not serving at %s: %v; stderr:\n%s", sock, err, b.Stderr.String())
	}
	c.Close()
}

// brokerStats returns the broker's statistics, asked in process.
func brokerStats(t *testing.T, sock string) stats.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	// Registered: an anonymous peer's statistics show only itself.
	c, err := eventbus.Dial(ctx, sock, eventbus.WithReconnect(false), eventbus.WithComponent("procmond"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitForSubscribers waits until the broker's stats show n subscriptions
// holding pattern, so that what is published next reaches them. Neither
// sub nor the broker prints anything on subscribing, so this polls.
func waitForSubscribers(t *testing.T, sock, pattern string, n int, sub *proctest.Proc) {
	t.Helper()
	var s stats.Snapshot
	ok := poll(sub, func() bool {
		s = brokerStats(t, sock)
		i := slices.IndexFunc(s.Patterns, func(p stats.PatternCount) bool { return p.Pattern == pattern })
		return i >= 0 && s.Patterns[i].Subscribers >= n
	})
	if !ok {
		t.Fatalf("%d subscribers to %q not seen; patterns %v; sub exited %t, stderr:\n%s",
			n, pattern, s.Patterns, sub.Exited(), sub.Stderr.String())
	}
}

// poll checks cond every few milliseconds until it holds (true), p exits
// or waitLimit passes (false). It is for broker state that no event
// announces; wait on output or exit wherever there is one.
func poll(p *proctest.Proc, cond func() bool) bool {
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-p.Done():
			return cond()
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
	return true
}
