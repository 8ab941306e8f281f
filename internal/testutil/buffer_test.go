package testutil

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeThenClose writes chunks to b from another goroutine, then closes
// it: a wait ends either way, found or ErrBufferClosed, whatever the
// interleaving.
func writeThenClose(b *Buffer, chunks ...string) {
	go func() {
		for _, c := range chunks {
			b.Write([]byte(c))
		}
		b.Close()
	}()
}

func TestBufferFind(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		substr string
		found  bool
	}{
		{"one write", []string{"hello world\n"}, "world", true},
		{"split across writes", []string{"hello wo", "r", "ld\n"}, "world", true},
		{"after a long miss", []string{strings.Repeat("x", 5000), "wor", "ld"}, "world", true},
		{"never written", []string{"hello wo", "rl"}, "world", false},
		{"nothing written", nil, "world", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := new(Buffer)
			writeThenClose(b, tt.chunks...)
			err := b.Find(tt.substr, Timeout)
			if tt.found && err != nil {
				t.Fatalf("Find(%q) = %v; want nil, it was written as %q", tt.substr, err, tt.chunks)
			}
			if !tt.found && !errors.Is(err, ErrBufferClosed) {
				t.Fatalf("Find(%q) = %v; want ErrBufferClosed", tt.substr, err)
			}
		})
	}
}

func TestBufferFindLine(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		prefix string
		want   string // "": not found
	}{
		{"first of two", []string{"a 1\nready 1\nready 2\n"}, "ready", "ready 1"},
		{"line split across writes", []string{"a\nrea", "dy 3", "\n"}, "ready", "ready 3"},
		{"prefix inside a line", []string{"not ready\n"}, "ready", ""},
		{"unterminated", []string{"ready"}, "ready", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := new(Buffer)
			writeThenClose(b, tt.chunks...)
			got, err := b.FindLine(tt.prefix, Timeout)
			if tt.want == "" {
				if !errors.Is(err, ErrBufferClosed) {
					t.Fatalf("FindLine(%q) = %q, %v; want ErrBufferClosed", tt.prefix, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FindLine(%q) = %q, %v; want %q", tt.prefix, got, err, tt.want)
			}
		})
	}
}

func TestBufferFindMatch(t *testing.T) {
	b := new(Buffer)
	writeThenClose(b, "listening on /s (pid ", "42)\n")
	m, err := b.FindMatch(regexp.MustCompile(`pid (\d+)\)\n`), Timeout)
	if err != nil || !slices.Equal(m, []string{"pid 42)\n", "42"}) {
		t.Fatalf("FindMatch = %q, %v; want the match and submatch 42", m, err)
	}
}

// TestBufferAwait checks that a wait ends at its timeout when nothing it
// waits for comes, and that cond may read the buffer.
func TestBufferAwait(t *testing.T) {
	b := new(Buffer)
	b.Write([]byte("x"))
	if err := b.Await(time.Millisecond, func() bool { return b.String() == "xy" }); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Await with nothing more written = %v; want os.ErrDeadlineExceeded", err)
	}
	writeThenClose(b, "y")
	if err := b.Await(Timeout, func() bool { return b.String() == "xy" }); err != nil {
		t.Fatalf("Await after the write = %v; want nil", err)
	}
}

func TestBufferLines(t *testing.T) {
	b := new(Buffer)
	b.Write([]byte("one\ntwo\nthr"))
	if got := b.Lines(); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("Lines before Close = %q; want the complete lines", got)
	}
	if got := b.Tail(5); got != "...o\nthr" {
		t.Errorf("Tail(5) = %q; want %q", got, "...o\nthr")
	}
	b.Close()
	if got := b.Lines(); !slices.Equal(got, []string{"one", "two", "thr"}) {
		t.Errorf("Lines after Close = %q; want the unterminated last line too", got)
	}
	if n, err := b.Write([]byte("late")); n != 0 || !errors.Is(err, ErrBufferClosed) {
		t.Errorf("Write after Close = %d, %v; want 0, ErrBufferClosed", n, err)
	}
	if got := new(Buffer).Lines(); got != nil {
		t.Errorf("Lines of an empty buffer = %q; want none", got)
	}
}

// TestBufferWaitFails checks that a failed wait fails the test showing
// what was written.
func TestBufferWaitFails(t *testing.T) {
	b := new(Buffer)
	b.Write([]byte("eventbus broker listening\n"))
	b.Close()
	for name, wait := range map[string]func(testing.TB){
		"WaitFor":   func(tb testing.TB) { b.WaitFor(tb, "access policy", Timeout) },
		"WaitLine":  func(tb testing.TB) { b.WaitLine(tb, "access policy", Timeout) },
		"WaitMatch": func(tb testing.TB) { b.WaitMatch(tb, regexp.MustCompile(`access policy`), Timeout) },
	} {
		msg := Failure(t, wait)
		if !strings.Contains(msg, "access policy") || !strings.Contains(msg, "eventbus broker listening") {
			t.Errorf("%s failed with %q; want it to name what it waited for and show what was written", name, msg)
		}
	}
	if msg := Failure(t, func(tb testing.TB) { b.WaitFor(tb, "listening", Timeout) }); msg != "" {
		t.Errorf("WaitFor of written text failed: %s", msg)
	}
}
