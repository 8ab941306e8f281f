//go:build linux

package integration

import (
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"daemoneye.dev/eventbus/internal/proctest"
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

// proc is a helper process: the test binary run in one role, through
// proctest. Its stdout lines are parsed as they come.
type proc struct {
	*proctest.Proc
	name string

	mu    sync.Mutex
	msgs  []msg    // "msg" lines
	lines []string // every other line
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
	p := &proc{name: name}
	c := proctest.Cmd{Role: role, Name: name, Args: args, Env: env, OnLine: p.add}
	if as != nil {
		c.Path, c.Dir = as.exe, as.dir
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: as.uid, Gid: as.gid}}
	}
	p.Proc = proctest.Start(t, c)
	return p
}

func (p *proc) add(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m, ok := parseMsg(line); ok {
		p.msgs = append(p.msgs, m)
	} else {
		p.lines = append(p.lines, line)
	}
}

func (p *proc) pid() int { return p.Pid() }

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

// waitFor waits until cond holds for the process's output, failing the
// test if the process exits first or timeout passes.
func (p *proc) waitFor(t *testing.T, timeout time.Duration, what string, cond func(state) bool) {
	t.Helper()
	p.Await(t, timeout, what, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return cond(state{msgs: p.msgs, lines: p.lines})
	})
}

// waitLine waits for a line starting with prefix.
func (p *proc) waitLine(t *testing.T, timeout time.Duration, prefix string) {
	t.Helper()
	p.WaitLine(t, prefix, timeout)
}

// waitExit waits for the process to exit and fails the test unless it
// exited with status 0.
func (p *proc) waitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	p.WaitOK(t, timeout)
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
	p.waitLine(t, 10*time.Second, "ready")
	return p
}

func startSub(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	p := start(t, name, "sub", nil, append([]string{"-socket", path}, args...)...)
	p.waitLine(t, 10*time.Second, "subscribed")
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
