package acl

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus/transport"
)

func TestDenialLog(t *testing.T) {
	var buf bytes.Buffer
	l := NewDenialLog(slog.New(slog.NewTextHandler(&buf, nil)), 2)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	p := Default(0)
	deny := func(id Identity) { l.Record(p.Check(id, Publish, "control.agent.policy")) }
	for range 5 {
		deny(procmond)
	}
	deny(anonymous)
	l.Record(nil)
	l.Record(errors.New("not an acl error"))
	_, refused := p.Admit(transport.Peer{UID: 5}, "", "nosuch", nil)
	l.Record(refused)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 { // 2 procmond, 1 anonymous, 1 refused
		t.Fatalf("logged %d lines; want 4:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"acl: publish to control.agent.policy denied", "component=procmond", "action=publish", "level=WARN"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q does not contain %q", lines[0], want)
		}
	}
	if !strings.Contains(lines[3], "claim=nosuch") {
		t.Errorf("refusal line %q does not name the claim", lines[3])
	}
	want := map[string]uint64{"procmond": 5, AnonymousKey: 1, "(refused)": 1}
	if got := l.Snapshot(); !maps.Equal(got, want) {
		t.Errorf("Snapshot() = %v; want %v", got, want)
	}

	buf.Reset()
	now = now.Add(time.Second) // a new window: the next line reports what was suppressed
	deny(procmond)
	if got := buf.String(); !strings.Contains(got, "suppressed=3") {
		t.Errorf("after the window: %q; want suppressed=3", got)
	}
	buf.Reset()
	deny(procmond)
	if got := buf.String(); got == "" || strings.Contains(got, "suppressed") {
		t.Errorf("second line of the window: %q; want logged without suppressed", got)
	}
}

func TestDenialLogNil(t *testing.T) {
	l := NewDenialLog(nil, 0) // discards, logs nothing, still counts
	l.Record(Default(0).Check(anonymous, Publish, "events.process.tree"))
	if got := l.Snapshot()[AnonymousKey]; got != 1 {
		t.Errorf("count = %d; want 1", got)
	}
}

// TestDenialLogSID: a Windows peer's denials and refusals name its SID.
func TestDenialLogSID(t *testing.T) {
	var buf bytes.Buffer
	l := NewDenialLog(slog.New(slog.NewTextHandler(&buf, nil)), 10)
	win := transport.Peer{UID: ^uint32(0), GID: ^uint32(0), PID: 7, SID: "S-1-5-21-1-2-3-1001"}
	p := DefaultFor(transport.Peer{UID: ^uint32(0), GID: ^uint32(0), SID: "S-1-5-18"})
	id, err := p.Admit(win, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Record(p.Check(id, Publish, "control.agent.policy"))
	_, refused := p.Admit(win, "", "procmond", nil)
	l.Record(refused)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("logged %d lines; want 2:\n%s", len(lines), buf.String())
	}
	for _, line := range lines {
		if !strings.Contains(line, "sid=S-1-5-21-1-2-3-1001") {
			t.Errorf("line %q does not name the peer's SID", line)
		}
	}
	if !strings.Contains(lines[1], "sid S-1-5-21-1-2-3-1001 not in [S-1-5-18]") {
		t.Errorf("refusal %q does not say why", lines[1])
	}
}
