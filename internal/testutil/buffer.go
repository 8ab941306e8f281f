package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrBufferClosed is what Buffer.Await returns when the buffer was closed
// (its writer finished, e.g. the process exited) before the condition held.
var ErrBufferClosed = errors.New("testutil: buffer closed: nothing more will be written")

// Buffer collects what a process or a logger writes. It is safe for
// concurrent use, and a test can wait for text to appear instead of
// sleeping: every Write (and Close) wakes the waiters.
type Buffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced at each Write and at Close
	closed  bool
}

// Write appends p and wakes the waiters. It fails after Close.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, ErrBufferClosed
	}
	n, err := b.b.Write(p)
	b.wakeLocked()
	return n, err
}

// Close says nothing more will be written, so that waits for text that
// has not appeared end at once rather than at their timeout.
func (b *Buffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.wakeLocked()
	return nil
}

func (b *Buffer) wakeLocked() {
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Tail returns the last n bytes written, marked "..." if cut.
func (b *Buffer) Tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	data := b.b.Bytes()
	if len(data) > n {
		return "..." + string(data[len(data)-n:])
	}
	return string(data)
}

// Lines returns the complete lines written so far, without their
// newlines; once the buffer is closed, an unterminated last line too.
func (b *Buffer) Lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.b.String()
	if !b.closed {
		s = s[:strings.LastIndexByte(s, '\n')+1]
	}
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Await waits until cond returns true, calling it now and after each
// Write. It returns nil then; ErrBufferClosed if the buffer is closed with
// cond still false; os.ErrDeadlineExceeded after timeout. cond runs
// without the buffer's lock, so it may read the buffer.
func (b *Buffer) Await(timeout time.Duration, cond func() bool) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		b.mu.Lock()
		closed := b.closed
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		// Taken before cond runs: a Write after this wakes the select.
		if cond() {
			return nil
		}
		if closed {
			return ErrBufferClosed
		}
		select {
		case <-changed:
		case <-timer.C:
			return os.ErrDeadlineExceeded
		}
	}
}

// scan waits until check, called under the lock with everything written
// so far, returns true.
func (b *Buffer) scan(timeout time.Duration, check func(data []byte) bool) error {
	return b.Await(timeout, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return check(b.b.Bytes())
	})
}

// Find waits until substr has been written; see Await for the error.
func (b *Buffer) Find(substr string, timeout time.Duration) error {
	from := 0 // where the next search starts: substr is not wholly before it
	return b.scan(timeout, func(data []byte) bool {
		if bytes.Contains(data[from:], []byte(substr)) {
			return true
		}
		from = max(0, len(data)-len(substr)+1)
		return false
	})
}

// FindMatch waits until re matches what has been written and returns the
// match and its submatches; see Await for the error.
func (b *Buffer) FindMatch(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	var m [][]byte
	err := b.scan(timeout, func(data []byte) bool {
		m = re.FindSubmatch(data)
		return m != nil
	})
	out := make([]string, len(m))
	for i, s := range m {
		out[i] = string(s)
	}
	return out, err
}

// FindLine waits for a complete line starting with prefix and returns it
// without its newline: the first such line written; see Await for the
// error.
func (b *Buffer) FindLine(prefix string, timeout time.Duration) (string, error) {
	var line string
	from := 0 // start of the first line not yet looked at
	err := b.scan(timeout, func(data []byte) bool {
		for {
			i := bytes.IndexByte(data[from:], '\n')
			if i < 0 {
				return false
			}
			l := data[from : from+i]
			from += i + 1
			if bytes.HasPrefix(l, []byte(prefix)) {
				line = string(l)
				return true
			}
		}
	})
	return line, err
}

// WaitFor waits until substr has been written and fails the test, showing
// what was written, if it is not within timeout or before Close.
func (b *Buffer) WaitFor(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	if err := b.Find(substr, timeout); err != nil {
		t.Fatalf("waiting for %q: %v; written:\n%s", substr, describeWait(err, timeout), b.String())
	}
}

// WaitMatch is WaitFor for a regular expression; it returns the match and
// its submatches.
func (b *Buffer) WaitMatch(t testing.TB, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	m, err := b.FindMatch(re, timeout)
	if err != nil {
		t.Fatalf("waiting for a match of %v: %v; written:\n%s", re, describeWait(err, timeout), b.String())
	}
	return m
}

// WaitLine is WaitFor for a complete line starting with prefix; it
// returns the line.
func (b *Buffer) WaitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	line, err := b.FindLine(prefix, timeout)
	if err != nil {
		t.Fatalf("waiting for a line starting %q: %v; written:\n%s", prefix, describeWait(err, timeout), b.String())
	}
	return line
}

func describeWait(err error, timeout time.Duration) string {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Sprintf("not written within %v", timeout)
	}
	return err.Error()
}
