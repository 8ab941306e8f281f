//go:build linux

package loss

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"daemoneye.dev/eventbus/internal/proctest"
)

// waitTimeout bounds every wait for an event; a failure bound, never a
// delay: each wait ends as soon as what it waits for happens.
const waitTimeout = 30 * time.Second

// startHelper runs the test binary as role; onLine, if set, sees each line
// of its stdout before a wait on its output does. The process is killed
// and waited for when the test ends.
func startHelper(t *testing.T, name, role string, onLine func(string), args ...string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, proctest.Cmd{Role: role, Name: name, Args: args, OnLine: onLine})
}

// startBroker starts a broker helper on path and waits until it listens.
func startBroker(t *testing.T, name, path string, args ...string) *proctest.Proc {
	t.Helper()
	p := startHelper(t, name, "broker", nil, append([]string{"-socket", path}, args...)...)
	p.WaitLine(t, "ready", waitTimeout)
	return p
}

// startSub starts a subscriber helper and waits until it has subscribed.
func startSub(t *testing.T, name, path string, onLine func(string), args ...string) *proctest.Proc {
	t.Helper()
	p := startHelper(t, name, "sub", onLine, append([]string{"-socket", path}, args...)...)
	p.WaitLine(t, "subscribed", waitTimeout)
	return p
}

// startPub starts a publisher helper and waits until it has connected.
func startPub(t *testing.T, name, path string, args ...string) *proctest.Proc {
	t.Helper()
	p := startHelper(t, name, "pub", nil, append([]string{"-socket", path}, args...)...)
	p.WaitLine(t, "ready", waitTimeout)
	return p
}

// kill SIGKILLs p and waits until it is reaped: its sockets are closed by
// then, by the kernel, with nothing of its own flushed.
func kill(t *testing.T, p *proctest.Proc) {
	t.Helper()
	p.Signal(t, syscall.SIGKILL)
	p.Wait(t, waitTimeout)
}

// stop SIGSTOPs p until the test ends or cont is called.
func stop(t *testing.T, p *proctest.Proc) (cont func()) {
	t.Helper()
	p.Signal(t, syscall.SIGSTOP)
	waitState(t, p, 'T')
	var once sync.Once
	cont = func() { once.Do(func() { p.Cmd.Process.Signal(syscall.SIGCONT) }) }
	t.Cleanup(cont) // before proctest's own cleanup, which runs later
	return cont
}

// waitState waits until p's state in /proc is state ('T': stopped). A
// signal is delivered asynchronously; the kernel says when it took effect.
func waitState(t *testing.T, p *proctest.Proc, state byte) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		// pid (comm) state ...: comm may hold spaces and parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) not in state %c after %v: %s", p.Name, p.Pid(), state, waitTimeout, stat)
		}
		time.Sleep(time.Millisecond) // no notification exists for this; a poll bounded by waitTimeout
	}
}

// relay paces a publisher by its subscriber: on each "recv <max>" line of
// the subscriber it allows the publisher the numbers up to max+window, by
// an "allow" line on the publisher's stdin. So the publisher is never more
// than window (and a progress step) ahead of what the subscriber received,
// and a broker killed once the subscriber reports k numbers dies mid-stream
// whatever the machine's speed: the publisher cannot be past k+window.
type relay struct {
	window int

	mu     sync.Mutex
	w      io.Writer // the publisher's stdin; nil until attach
	max    int       // the subscriber's highest number, -1 before any
	sent   int       // the highest allowance given, the initial one included
	gapAt  int       // sent when the subscriber's first gap line came; -1 before
	gaps   []string  // the subscriber's gap lines
	werr   error     // the first failed write to the publisher
	frozen bool      // unlimited was called
}

func newRelay(window int) *relay { return &relay{window: window, max: -1, sent: window, gapAt: -1} }

// onSubLine is the subscriber's OnLine.
func (r *relay) onSubLine(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case strings.HasPrefix(line, "recv "):
		if n, err := strconv.Atoi(strings.TrimPrefix(line, "recv ")); err == nil && n > r.max {
			r.max = n
			r.allowLocked(n + 1 + r.window)
		}
	case strings.HasPrefix(line, "gap "):
		r.gaps = append(r.gaps, line)
		if r.gapAt < 0 {
			// Every number from here on is published after the gap notice,
			// so after the broker processed the restored subscription.
			r.gapAt = r.sent
			// A fresh window: what the dead broker held may never reach the
			// subscriber, whose progress would then stall the publisher.
			r.allowLocked(r.sent + r.window)
		}
	}
}

// attach starts relaying to the publisher's stdin.
func (r *relay) attach(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.w = w
	r.allowLocked(r.max + 1 + r.window)
}

// unlimited allows the publisher everything below n, once and for all.
func (r *relay) unlimited(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.allowLocked(n)
	r.frozen = true
}

func (r *relay) allowLocked(n int) {
	if r.w == nil || r.frozen || n <= r.sent {
		return
	}
	if _, err := fmt.Fprintf(r.w, "allow %d\n", n); err != nil && r.werr == nil {
		r.werr = err
	}
	r.sent = n
}

// received is the subscriber's highest number reported so far.
func (r *relay) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.max
}

// gapState returns the subscriber's gap lines and the allowance given when
// the first came (-1: none came).
func (r *relay) gapState() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.gaps...), r.gapAt
}

// --- output parsing ---

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

// lineOf returns p's first stdout line starting with prefix, failing the
// test if there is none.
func lineOf(t *testing.T, p *proctest.Proc, prefix string) string {
	t.Helper()
	for _, l := range p.Stdout.Lines() {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("%s printed no line starting %q; stdout:\n%s", p.Name, prefix, p.Stdout.Tail(3000))
	return ""
}

// num parses f[key] as an integer, failing the test if it is not one.
func num(t *testing.T, f map[string]string, key string) int {
	t.Helper()
	n, err := strconv.Atoi(f[key])
	if err != nil {
		t.Fatalf("field %s=%q: %v (fields %v)", key, f[key], err, f)
	}
	return n
}

// digest is a subscriber's digest line, parsed.
type digest struct {
	line                              string
	unique, dups, missed, bad, seqBad int
	sessions, pids, suppressed        int
	firstSeqBad                       string
	got                               []bool // got[i]: number i was received
}

func parseDigest(t *testing.T, p *proctest.Proc, n int) digest {
	t.Helper()
	line := lineOf(t, p, "digest ")
	f := fields(line)
	d := digest{line: line, unique: num(t, f, "unique"), dups: num(t, f, "dups"), missed: num(t, f, "missed"),
		bad: num(t, f, "bad"), seqBad: num(t, f, "seqbad"), firstSeqBad: f["firstseqbad"], sessions: num(t, f, "sessions"),
		pids: num(t, f, "pids"), suppressed: num(t, f, "suppressed"), got: make([]bool, n)}
	if f["ranges"] != "-" {
		for _, r := range strings.Split(f["ranges"], ",") {
			a, b, ok := strings.Cut(r, "-")
			lo, err1 := strconv.Atoi(a)
			hi, err2 := strconv.Atoi(b)
			if !ok || err1 != nil || err2 != nil || lo > hi || hi >= n {
				t.Fatalf("%s: bad range %q in its digest", p.Name, r)
			}
			for i := lo; i <= hi; i++ {
				d.got[i] = true
			}
		}
	}
	count := 0
	for _, g := range d.got {
		if g {
			count++
		}
	}
	if count != d.unique {
		t.Fatalf("%s: digest ranges hold %d numbers; unique=%d", p.Name, count, d.unique)
	}
	return d
}

// missing returns how many of the numbers in [lo, hi) d lacks, and the
// first few.
func (d digest) missing(lo, hi int) (int, []int) {
	var n int
	var first []int
	for i := max(lo, 0); i < hi && i < len(d.got); i++ {
		if !d.got[i] {
			n++
			if len(first) < 10 {
				first = append(first, i)
			}
		}
	}
	return n, first
}

// present returns how many of the numbers in [lo, hi) d has.
func (d digest) present(lo, hi int) int {
	n := 0
	for i := max(lo, 0); i < hi && i < len(d.got); i++ {
		if d.got[i] {
			n++
		}
	}
	return n
}

// pubResult is what a publisher helper reported.
type pubResult struct {
	accepted, never, stopped, retries int
	stopLine, flushLine               string
	// lostCount, lostFirst, lostLast are Flush's LostError, zero if none.
	lostCount, lostFirst, lostLast int
	flushOK                        bool
}

func parsePub(t *testing.T, p *proctest.Proc) pubResult {
	t.Helper()
	r := pubResult{stopLine: lineOf(t, p, "published "), flushLine: lineOf(t, p, "flush ")}
	f := fields(r.stopLine)
	r.accepted, r.never, r.stopped, r.retries = num(t, f, "accepted"), num(t, f, "never"), num(t, f, "stopped"), num(t, f, "retries")
	switch fl := fields(r.flushLine); {
	case r.flushLine == "flush ok":
		r.flushOK = true
	case strings.HasPrefix(r.flushLine, "flush lost "):
		if fl["is"] != "true" {
			t.Errorf("%s: Flush's LostError does not match ErrPublishLost: %s", p.Name, r.flushLine)
		}
		r.lostCount, r.lostFirst, r.lostLast = num(t, fl, "count"), num(t, fl, "first"), num(t, fl, "last")
	default:
		t.Fatalf("%s: Flush returned neither nil nor a LostError: %s", p.Name, r.flushLine)
	}
	if l := lineOf(t, p, "close "); l != "close ok" {
		t.Errorf("%s: Close after Flush returned %q; want nil: Flush settled every publish", p.Name, l)
	}
	return r
}
