package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/stats"
)

// binary is the eventbus binary TestMain builds; the tests run it as a
// real process.
var binary string

// waitLimit bounds every wait in these tests; a healthy run takes
// milliseconds.
const waitLimit = 10 * time.Second

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eventbus-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "eventbus")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
		// The race runtime sleeps a second at exit by default; the binary
		// runs as dozens of processes here.
		os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building eventbus:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a finished eventbus process left.
type result struct {
	stdout, stderr string
	code           int
	pid            int
}

// runCLI runs eventbus with args to completion.
func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("eventbus %s: %v", strings.Join(args, " "), err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode(), pid: cmd.Process.Pid}
}

// proc is an eventbus process running in the background.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{}
}

// startCLI starts eventbus with args; the process is killed at the end of
// the test if it is still running.
func startCLI(t *testing.T, args ...string) *proc {
	t.Helper()
	return startCLIEnv(t, nil, args...)
}

// startCLIEnv is startCLI with env added to the environment.
func startCLIEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(binary, args...), done: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting eventbus %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(waitLimit):
		p.t.Fatalf("eventbus %v still running after %v; stderr:\n%s", p.cmd.Args[1:], waitLimit, p.stderr.String())
		return -1
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// socketDir returns a new short directory for a socket (sun_path holds
// 108 bytes, too few for t.TempDir() paths).
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "eb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startBroker starts `eventbus broker` on a new socket and waits until it
// accepts clients.
func startBroker(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	sock := filepath.Join(socketDir(t), "eb.sock")
	b := startCLI(t, append([]string{"broker", "--socket", sock}, args...)...)
	waitForBroker(t, b, sock)
	return b, sock
}

// startOpenBroker starts a broker whose policy makes every topic public,
// for tests of delivery rather than access control.
func startOpenBroker(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	return startBroker(t, append([]string{"--policy", writeFile(t, "open.yaml", "default_access: public\n", 0o600)}, args...)...)
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

// waitForBroker polls Dial until the broker at sock completes a handshake.
func waitForBroker(t *testing.T, b *proc, sock string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		c, err := eventbus.Dial(context.Background(), sock, eventbus.WithReconnect(false))
		if err == nil {
			c.Close()
			return
		}
		if b.exited() || time.Now().After(deadline) {
			t.Fatalf("broker not serving at %s: %v; stderr:\n%s", sock, err, b.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// brokerStats returns the broker's statistics, asked in process.
func brokerStats(t *testing.T, sock string) stats.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := eventbus.Dial(ctx, sock, eventbus.WithReconnect(false))
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

// waitForSubscribers polls the broker's stats until n subscriptions hold
// pattern, so that what is published next reaches them.
func waitForSubscribers(t *testing.T, sock, pattern string, n int, sub *proc) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s := brokerStats(t, sock)
		i := slices.IndexFunc(s.Patterns, func(p stats.PatternCount) bool { return p.Pattern == pattern })
		if i >= 0 && s.Patterns[i].Subscribers >= n {
			return
		}
		if sub.exited() || time.Now().After(deadline) {
			t.Fatalf("%d subscribers to %q not seen; patterns %v; sub stderr:\n%s", n, pattern, s.Patterns, sub.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
