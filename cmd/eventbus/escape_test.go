package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/stats"
	"daemoneye.dev/eventbus/transport"
)

// terminalHazard describes the first thing in s that could act on a
// terminal rather than print: a control byte other than newline and tab,
// a C1 control, a format character (bidi controls among them), a line or
// paragraph separator, or invalid UTF-8; "" if there is none.
func terminalHazard(s string) string {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("invalid UTF-8 byte %#x at %d", s[i], i)
		case r < ' ' && r != '\n' && r != '\t', r == 0x7f, r >= 0x80 && r <= 0x9f:
			return fmt.Sprintf("control %U at %d", r, i)
		case unicode.Is(unicode.Cf, r), r == '\u2028', r == '\u2029':
			return fmt.Sprintf("format character %U at %d", r, i)
		}
		i += size
	}
	return ""
}

// unescape undoes safe, to show that it loses nothing.
func unescape(s string) (string, error) {
	var b []byte
	for s != "" {
		r, multibyte, tail, err := strconv.UnquoteChar(s, 0)
		if err != nil {
			return "", fmt.Errorf("%q: %v", s, err)
		}
		if r < utf8.RuneSelf || !multibyte && r < 0x100 && strings.HasPrefix(s, `\x`) {
			b = append(b, byte(r))
		} else {
			b = utf8.AppendRune(b, r)
		}
		s = tail
	}
	return string(b), nil
}

func TestSafe(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"ASCII", "eventbus-sub 1.2 (x=y, z)", "eventbus-sub 1.2 (x=y, z)"},
		{"UTF-8 text", "héllo wörld ✓ 日本語 🙂 \ufffd", "héllo wörld ✓ 日本語 🙂 \ufffd"},
		{"CSI color", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"OSC 52 clipboard write", "\x1b]52;c;cm0gLXJmIH4K\a", `\x1b]52;c;cm0gLXJmIH4K\a`},
		{"carriage return", "ok\rFAIL", `ok\rFAIL`},
		{"BEL", "\a", `\a`},
		{"backspace", "abc\b\b\bxyz", `abc\b\b\bxyz`},
		{"NUL", "a\x00b", `a\x00b`},
		{"newline and tab", "a\nb\tc", `a\nb\tc`},
		{"DEL", "x\x7f", `x\x7f`},
		{"C1 CSI", "\u009b31m", `\u009b31m`},
		{"bidi override", "\u202egnp.exe", `\u202egnp.exe`},
		{"bidi isolates and marks", "\u2066a\u2069\u200e\u200f\u061c", `\u2066a\u2069\u200e\u200f\u061c`},
		{"zero width", "a\u200bb\ufeff", `a\u200bb\ufeff`},
		{"line separator", "a\u2028b", `a\u2028b`},
		{"supplementary format", "\U000e0041", `\U000e0041`},
		{"private use", "\ue000", `\ue000`},
		{"invalid UTF-8", "a\xffb\xfe", `a\xffb\xfe`},
		{"truncated rune", "\xe2\x80", `\xe2\x80`},
		{"backslash", `C:\bin`, `C:\\bin`},
		{"escaped-looking", `\x1b[31m`, `\\x1b[31m`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := safe(tt.in)
			if got != tt.want {
				t.Errorf("safe(%q) = %q; want %q", tt.in, got, tt.want)
			}
			if h := terminalHazard(got); h != "" {
				t.Errorf("safe(%q) = %q: %s", tt.in, got, h)
			}
			if back, err := unescape(got); err != nil || back != tt.in {
				t.Errorf("unescape(%q) = %q, %v; want %q", got, back, err, tt.in)
			}
			if b := appendSafe([]byte("pre "), tt.in); string(b) != "pre "+tt.want {
				t.Errorf("appendSafe(%q) = %q; want %q", tt.in, b, "pre "+tt.want)
			}
		})
	}
	// An escape and the text that looks like it stay apart.
	if safe("\x1b") == safe(`\x1b`) {
		t.Errorf("safe(ESC) = safe(`\\x1b`) = %q", safe("\x1b"))
	}
}

func TestSafeAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	for _, s := range []string{"events.process.lifecycle", "eventbus-sub", "01a201f9-47ac-7afb-98b2-0bef127c8e46", "héllo 日本語"} {
		if n := testing.AllocsPerRun(100, func() { _ = safe(s) }); n != 0 {
			t.Errorf("safe(%q) allocates %v times; want 0", s, n)
		}
		if n := testing.AllocsPerRun(100, func() { buf = appendSafe(buf[:0], s) }); n != 0 {
			t.Errorf("appendSafe(%q) allocates %v times; want 0", s, n)
		}
		if n := testing.AllocsPerRun(100, func() { _ = safeMessage(s) }); n != 0 {
			t.Errorf("safeMessage(%q) allocates %v times; want 0", s, n)
		}
		listing := s + "\n" + s + "\n"
		if n := testing.AllocsPerRun(100, func() { _ = safeLines(listing) }); n != 0 {
			t.Errorf("safeLines(%q) allocates %v times; want 0", listing, n)
		}
	}
}

// TestSafeMessage: messages keep their own backslashes unless they need
// escaping; listings keep their lines.
func TestSafeMessage(t *testing.T) {
	tests := []struct {
		name, in, message, lines string
	}{
		{"plain", "acl: component x refused: uid 1 not in [0]",
			"acl: component x refused: uid 1 not in [0]", "acl: component x refused: uid 1 not in [0]"},
		{"Windows path", `open C:\Users\x\agent.token: denied`, `open C:\Users\x\agent.token: denied`, `open C:\Users\x\agent.token: denied`},
		{"Go-quoted", `invalid topic "a\x1b": bad`, `invalid topic "a\x1b": bad`, `invalid topic "a\x1b": bad`},
		{"bidi", "workflow \u202eR: not tracked", `workflow \u202eR: not tracked`, `workflow \u202eR: not tracked`},
		{"control", `C:\x ` + "\x1b[2J", `C:\\x \x1b[2J`, `C:\\x \x1b[2J`},
		{"lines", "a\\b\nc\n", `a\\b\nc\n`, "a\\b\nc\n"},
		{"control on one line", "a\\b\nc\r\n", `a\\b\nc\r\n`, "a\\b\n" + `c\r` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := safeMessage(tt.in); got != tt.message {
				t.Errorf("safeMessage(%q) = %q; want %q", tt.in, got, tt.message)
			}
			if got := safeLines(tt.in); got != tt.lines {
				t.Errorf("safeLines(%q) = %q; want %q", tt.in, got, tt.lines)
			}
		})
	}
}

// TestSafeErr: main prints the escaped message; errors.Is and the exit
// status still see the error inside.
func TestSafeErr(t *testing.T) {
	hostile := errors.New("wait for 2 on \x1b]52;c;eA==\a\u202e")
	tests := []struct {
		name     string
		err      error
		wantMsg  string
		wantCode int
	}{
		{"hostile", fmt.Errorf("%w: %w", eventbus.ErrWaitUnmet, hostile),
			`eventbus: wait condition not met: wait for 2 on \x1b]52;c;eA==\a\u202e`, exitError},
		{"usage", usageErrorf("--count must be at least 1, got 0"), "eventbus: --count must be at least 1, got 0", exitUsage},
		{"silent", &exitStatus{code: exitError}, "", exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := safeErr(tt.err)
			if got := message(err); got != tt.wantMsg {
				t.Errorf("message = %q; want %q", got, tt.wantMsg)
			}
			if got := exitCode(err); got != tt.wantCode || !errors.Is(err, tt.err) {
				t.Errorf("exitCode = %d, Is %v; want %d, true", got, errors.Is(err, tt.err), tt.wantCode)
			}
		})
	}
	if safeErr(nil) != nil {
		t.Error("safeErr(nil) != nil")
	}
}

// hostile is every kind of terminal trick at once, invalid UTF-8 included:
// the writers are tested here with what the wire would refuse, too.
const hostile = "\x1b]52;c;cm0gLXJmIH4K\a\x1b[2J\rok\b\x7f\u009b1m\u202egnp.exe\u2066\\x1b\xff\t\n"

// TestWritersEscape: each text writer shows hostile strings escaped and
// aligns columns by what it shows.
func TestWritersEscape(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	act := correlation.Activity{FirstSeen: at, LastSeen: at, Events: 1}
	msg := &eventbus.Message{Topic: hostile, Payload: []byte(hostile), PublisherPID: 7, PublisherComponent: hostile, ReceivedAt: at}
	policy := acl.DefaultFor(transport.Peer{UID: 1000, GID: 1000})
	id := acl.Identity{Component: hostile, SID: hostile, Exe: hostile}
	tests := []struct {
		name  string
		write func(w io.Writer) error
		shown int // times safe(hostile) must appear
	}{
		// Go-quoting the payload escapes it as safe does, here.
		{"sub", func(w io.Writer) error { return (&printer{out: w, errOut: w}).print(msg) }, 2},
		{"history", func(w io.Writer) error { return writeMessages(w, w, []*eventbus.Message{msg}, false, idFormat{}) }, 3},
		{"timeline", func(w io.Writer) error {
			e := correlation.TimelineEntry{ReceivedAt: at, Stage: hostile, SourceProcess: hostile, PublisherPID: 7,
				PublisherComponent: hostile, Topic: hostile, CorrelationID: hostile, ParentID: hostile}
			return writeTimeline(w, []correlation.TimelineEntry{e}, false, idFormat{full: true})
		}, 6},
		{"workflows", func(w io.Writer) error {
			return writeWorkflows(w, []correlation.WorkflowSummary{{RootID: hostile, CurrentStage: hostile, Activity: act}}, false)
		}, 2},
		{"workflow", func(w io.Writer) error {
			return writeWorkflow(w, &correlation.WorkflowState{RootID: hostile, Activity: act,
				Stages:       []correlation.StageState{{Name: hostile, Activity: act}},
				Correlations: []correlation.CorrelationState{{ID: hostile, ParentID: hostile, Stage: hostile, Activity: act}},
				Processes:    []correlation.ProcessState{{PID: 7, Component: hostile, Activity: act}}}, false)
		}, 6},
		{"stats", func(w io.Writer) error {
			return writeStats(w, &stats.Snapshot{StartedAt: at, StatisticsEnabled: true,
				ConnectionList: []stats.Connection{{ID: 1, ClientName: hostile, Component: hostile, SID: hostile, Exe: hostile}},
				Denials:        []stats.DenialCount{{Component: hostile, Count: 1}},
				Topics:         []stats.TopicCount{{Topic: hostile, Published: 1}},
				Patterns:       []stats.PatternCount{{Pattern: hostile, Subscribers: 1}}})
		}, 7},
		{"explain publish", func(w io.Writer) error { explain(w, policy, id, acl.Publish, "events.a"); return nil }, 2},
		{"explain reserved", func(w io.Writer) error { explain(w, policy, id, acl.Publish, "$sys.a"); return nil }, 2},
		{"explain subscribe", func(w io.Writer) error { explain(w, policy, id, acl.Subscribe, "events.#"); return nil }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tt.write(&out); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if h := terminalHazard(got); h != "" {
				t.Errorf("output has %s:\n%q", h, got)
			}
			if n := strings.Count(got, safe(hostile)); n != tt.shown {
				t.Errorf("output shows the escaped string %d times; want %d:\n%s", n, tt.shown, got)
			}
		})
	}
}

// TestColumnsOfEscapedText: a cell is as wide as its escaped text, so the
// next column still lines up with its header.
func TestColumnsOfEscapedText(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		write  func(w io.Writer)
		column int    // the column after the escaped one
		header string // its header, if the table has one
	}{
		{"workflows", func(w io.Writer) {
			writeWorkflows(w, []correlation.WorkflowSummary{{RootID: "\u202eR\x1b[1m", CurrentStage: "s"}}, false)
		}, 1, "STAGE "},
		{"stats", func(w io.Writer) {
			writeConnections(w, []stats.Connection{{ID: 1, ClientName: "\u202eN\x1b[1m", Component: "c"}})
		}, 5, "COMPONENT "},
		{"timeline", func(w io.Writer) {
			writeTimeline(w, []correlation.TimelineEntry{{ReceivedAt: at, Stage: "\u202e\x1b[1m", Topic: "a"}, {ReceivedAt: at, Stage: "s", Topic: "b"}},
				false, idFormat{})
		}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			tt.write(&out)
			var rows []string
			for l := range strings.Lines(out.String()) {
				l = strings.TrimSuffix(l, "\n")
				if !strings.HasPrefix(l, "─") && l != "" && l != "CONNECTIONS" {
					rows = append(rows, l)
				}
			}
			if len(rows) != 2 {
				t.Fatalf("got %d rows; want 2:\n%s", len(rows), out.String())
			}
			col := nthColumn(rows[0], tt.column)
			if nthColumn(rows[1], tt.column) != col || !strings.HasPrefix(rows[0][col:], tt.header) {
				t.Errorf("column %d does not line up under %q:\n%s", tt.column, tt.header, out.String())
			}
		})
	}
}

// nthColumn is the byte offset of the n-th (0-based) space-separated field
// of a row of single-word ASCII cells.
func nthColumn(row string, n int) int {
	f := strings.Fields(row)
	i := 0
	for k := range n {
		i = strings.Index(row[i:], f[k]) + i + len(f[k])
	}
	return strings.Index(row[i:], f[n]) + i
}

// FuzzSafe: safe's output can do nothing to a terminal, is valid UTF-8,
// undoes back to the input, and is the input itself when that was clean.
func FuzzSafe(f *testing.F) {
	for _, s := range []string{"", "events.a", "\x1b]52;c;eA==\a", "\r\b\x7f", "\u009b\u202e\u2066", "\xff\xe2\x80", `\x1b\\`, "日本 🙂", "\U000e0041"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safe(s)
		if h := terminalHazard(strings.NewReplacer("\n", "", "\t", "").Replace(got)); h != "" || strings.ContainsAny(got, "\n\t") {
			t.Fatalf("safe(%q) = %q: %s", s, got, h)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("safe(%q) = %q: not valid UTF-8", s, got)
		}
		if back, err := unescape(got); err != nil || back != s {
			t.Fatalf("unescape(safe(%q)) = %q, %v", s, back, err)
		}
		clean := utf8.ValidString(s) && !strings.ContainsRune(s, '\\') &&
			strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
		if clean && got != s {
			t.Fatalf("safe(%q) = %q; want it unchanged", s, got)
		}
		if msg := safeMessage(s); terminalHazard(msg) != "" || strings.ContainsAny(msg, "\n\t") || clean && msg != s {
			t.Fatalf("safeMessage(%q) = %q: %s", s, msg, terminalHazard(msg))
		}
		if text := safeLines(s); terminalHazard(text) != "" || strings.Count(text, "\n") != strings.Count(s, "\n") || clean && text != s {
			t.Fatalf("safeLines(%q) = %q: %s", s, text, terminalHazard(text))
		}
	})
}
