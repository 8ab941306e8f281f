//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// msg is one "msg" line a subscriber printed.
type msg struct {
	topic  string
	seq    int64
	size   int
	missed uint64
	pid    int
	ok     bool
}

func parseMsg(line string) (msg, bool) {
	f := strings.Fields(line)
	if len(f) != 7 || f[0] != "msg" {
		return msg{}, false
	}
	seq, err1 := strconv.ParseInt(f[2], 10, 64)
	size, err2 := strconv.Atoi(f[3])
	missed, err3 := strconv.ParseUint(f[4], 10, 64)
	pid, err4 := strconv.Atoi(f[5])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return msg{}, false
	}
	return msg{topic: f[1], seq: seq, size: size, missed: missed, pid: pid, ok: f[6] == "ok"}, true
}

// proc is a helper process: the test binary run in one role. Its stdout is
// read line by line by a goroutine that never blocks on the test, so a
// child never stalls on a full pipe.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stderr lockedBuffer
	notify chan struct{} // capacity 1: new output or exit
	done   chan struct{} // closed once the process has exited and been waited for

	mu      sync.Mutex
	msgs    []msg    // "msg" lines
	lines   []string // every other line
	exited  bool
	waitErr error
}

// state is what a wait condition sees; it is read under proc.mu.
type state struct {
	msgs  []msg
	lines []string
}

// hasLine reports whether a line starting with prefix was printed.
func (s state) hasLine(prefix string) bool {
	for _, l := range s.lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// linesWith returns the lines starting with prefix.
func (s state) linesWith(prefix string) []string {
	var out []string
	for _, l := range s.lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last n bytes written.
func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// socketPath returns a fresh socket path short enough for sun_path.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ebi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// start runs the test binary as role with args and extra environment. The
// process is killed and waited for when the test ends.
func start(t *testing.T, name, role string, env []string, args ...string) *proc {
	t.Helper()
	return startAs(t, nil, name, role, env, args...)
}

// runAs runs a helper as another user: exe is a copy of the test binary
// that user can execute, dir a working directory it can enter.
type runAs struct {
	uid, gid uint32
	exe, dir string
}

// startAs is start, as the user as describes when as is not nil.
func startAs(t *testing.T, as *runAs, name, role string, env []string, args ...string) *proc {
	t.Helper()
	exe := os.Args[0]
	if as != nil {
		exe = as.exe
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), append([]string{envHelper + "=" + role}, env...)...)
	// If the test binary dies, its helpers die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if as != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: as.uid, Gid: as.gid}
		cmd.Dir = as.dir
	}
	p := &proc{t: t, name: name, cmd: cmd, notify: make(chan struct{}, 1), done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.add(sc.Text())
		}
		err := cmd.Wait()
		p.mu.Lock()
		p.exited, p.waitErr = true, err
		p.mu.Unlock()
		p.wake()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit 10s after SIGKILL", name, p.pid())
		}
		if tail := p.stderr.tail(4000); t.Failed() && tail != "" {
			t.Logf("%s (pid %d) stderr:\n%s", name, p.pid(), tail)
		}
	})
	return p
}

func (p *proc) add(line string) {
	p.mu.Lock()
	if m, ok := parseMsg(line); ok {
		p.msgs = append(p.msgs, m)
	} else {
		p.lines = append(p.lines, line)
	}
	p.mu.Unlock()
	p.wake()
}

func (p *proc) wake() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// snapshot returns copies of what the process printed so far.
func (p *proc) snapshot() state {
	p.mu.Lock()
	defer p.mu.Unlock()
	return state{msgs: p.msgs[:len(p.msgs):len(p.msgs)], lines: append([]string(nil), p.lines...)}
}

func (p *proc) received() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.msgs)
}

func (p *proc) isRunning() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.exited
}

// waitFor waits until cond holds for the process's output, failing the
// test if the process exits first or timeout passes.
func (p *proc) waitFor(timeout time.Duration, what string, cond func(state) bool) {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		ok := cond(state{msgs: p.msgs, lines: p.lines})
		exited, err, n := p.exited, p.waitErr, len(p.msgs)
		p.mu.Unlock()
		if ok {
			return
		}
		if exited {
			p.t.Fatalf("%s exited (%v) before %s; it printed %d messages; stderr:\n%s", p.name, err, what, n, p.stderr.tail(2000))
		}
		select {
		case <-p.notify:
		case <-deadline.C:
			p.t.Fatalf("timed out after %v waiting for %s to %s; it printed %d messages, last lines %q; stderr:\n%s",
				timeout, p.name, what, n, lastLines(p.snapshot().lines, 5), p.stderr.tail(2000))
		}
	}
}

// waitLine waits for a line starting with prefix.
func (p *proc) waitLine(timeout time.Duration, prefix string) {
	p.t.Helper()
	p.waitFor(timeout, fmt.Sprintf("print %q", prefix), func(s state) bool { return s.hasLine(prefix) })
}

// waitExit waits for the process to exit and fails the test unless it
// exited with status 0.
func (p *proc) waitExit(timeout time.Duration) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("timed out after %v waiting for %s (pid %d) to exit; it printed %d messages, last lines %q; stderr:\n%s",
			timeout, p.name, p.pid(), p.received(), lastLines(p.snapshot().lines, 5), p.stderr.tail(2000))
	}
	if p.waitErr != nil {
		p.t.Fatalf("%s (pid %d) failed: %v; stderr:\n%s", p.name, p.pid(), p.waitErr, p.stderr.tail(4000))
	}
}

func lastLines(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// --- process starters ---

func startBroker(t *testing.T, path string, env ...string) *proc {
	t.Helper()
	p := start(t, "broker", "broker", env, "-socket", path)
	p.waitLine(10*time.Second, "ready")
	return p
}

func startSub(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	p := start(t, name, "sub", nil, append([]string{"-socket", path}, args...)...)
	p.waitLine(10*time.Second, "subscribed")
	return p
}

func startPub(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	return start(t, name, "pub", nil, append([]string{"-socket", path}, args...)...)
}

// --- checks ---

// checkStream checks the messages a subscriber received before its
// final marker: every one intact, from publisher pid, in order per topic
// with no gap or duplicate, none missed, and exactly want[topic] of each
// topic. It returns the number of problems found (reported, at most 10).
func checkStream(t *testing.T, name string, msgs []msg, want map[string]int64, pid int) int {
	t.Helper()
	problems := 0
	report := func(format string, args ...any) {
		t.Helper()
		problems++
		if problems <= 10 {
			t.Errorf("%s: "+format, append([]any{name}, args...)...)
		}
	}
	next := make(map[string]int64)
	for i, m := range msgs {
		switch {
		case !m.ok:
			report("message %d (%s #%d, %d bytes) failed its checksum", i, m.topic, m.seq, m.size)
		case m.pid != pid:
			report("message %d (%s #%d) has publisher pid %d; want %d", i, m.topic, m.seq, m.pid, pid)
		case m.missed != 0:
			report("message %d (%s #%d) reports %d missed; want 0", i, m.topic, m.seq, m.missed)
		}
		if _, ok := want[m.topic]; !ok {
			report("message %d on %s, which its patterns do not match", i, m.topic)
			continue
		}
		if m.seq != next[m.topic] {
			report("message %d on %s is #%d; want #%d (lost, duplicated or reordered)", i, m.topic, m.seq, next[m.topic])
		}
		next[m.topic] = m.seq + 1
	}
	for topicName, n := range want {
		if next[topicName] != n {
			report("received %s up to #%d; want all %d", topicName, next[topicName]-1, n)
		}
	}
	if problems > 10 {
		t.Errorf("%s: %d problems in all", name, problems)
	}
	return problems
}
