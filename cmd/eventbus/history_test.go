//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/testutil"
)

// pub runs eventbus pub on sock and fails the test unless it succeeds; it
// returns the publisher's pid.
func pub(t *testing.T, sock string, args ...string) int {
	t.Helper()
	r := runCLI(t, "", append([]string{"pub", "--socket", sock}, args...)...)
	if r.code != 0 {
		t.Fatalf("pub %v = %d, stderr %q", args, r.code, r.stderr)
	}
	return r.pid
}

// lines splits output into lines; none for "".
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// historyLine is one line of history's text output.
var historyLine = regexp.MustCompile(`^(\S+)  +(\S+)  +(\S+)  +(\S+)  +(\S+)  +(?:(final)  +)?(.*)$`)

// TestHistoryByTag: history --tag returns exactly the events carrying the
// tags, from several pub processes, in receive order; --json prints them
// exactly as sub --json printed them when they were delivered.
func TestHistoryByTag(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	sub := startCLI(t, "sub", "--socket", sock, "--count", "6", "--timeout", "10s", "--json", "#")
	waitForSubscribers(t, sock, "#", 1, sub)
	before := time.Now()
	pid1 := pub(t, sock, "--tag", "investigation_id=INC-1", "--stage", "enumeration", "events.process.lifecycle", "one")
	pub(t, sock, "--tag", "investigation_id=INC-2", "events.process.lifecycle", "two")
	pid3 := pub(t, sock, "--tag", "investigation_id=INC-1", "--tag", "host=h1", "--count", "2", "--final", "events.network.lifecycle", "three")
	pub(t, sock, "events.process.lifecycle", "no correlation")
	pub(t, sock, "--stage", "enumeration", "events.process.lifecycle", "untagged")
	delivered := subLines(t, sub, 6)

	r := runCLI(t, "", "history", "--socket", sock, "--tag", "investigation_id=INC-1")
	got := lines(r.stdout)
	if r.code != 0 || r.stderr != "" || len(got) != 3 {
		t.Fatalf("history --tag = %d, stderr %q, stdout:\n%s\nwant 0 and 3 lines", r.code, r.stderr, r.stdout)
	}
	want := []struct {
		topic, stage string
		pid          int
		final        string
		payload      string
	}{
		{"events.process.lifecycle", "enumeration", pid1, "", "one"},
		{"events.network.lifecycle", "-", pid3, "final", "three"},
		{"events.network.lifecycle", "-", pid3, "final", "three"},
	}
	for i, line := range got {
		m := historyLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d %q does not match %v", i, line, historyLine)
		}
		at, err := time.Parse(eventTimeFormat, m[1])
		if err != nil || at.Before(before.Add(-time.Second)) || at.After(time.Now()) {
			t.Errorf("line %d: time %q (%v); want the receive time", i, m[1], err)
		}
		w := want[i]
		if m[2] != w.topic || m[3] != w.stage || !strings.HasPrefix(m[4], "…") || m[5] != strconv.Itoa(w.pid) || m[6] != w.final || m[7] != w.payload {
			t.Errorf("line %d = %q; want topic %s, stage %s, a shortened id, pid %d, %q, payload %s",
				i, line, w.topic, w.stage, w.pid, w.final, w.payload)
		}
	}

	r = runCLI(t, "", "history", "--socket", sock, "--json", "--tag", "investigation_id=INC-1")
	wantJSON := []string{delivered[0], delivered[2], delivered[3]}
	if got := lines(r.stdout); r.code != 0 || !slices.Equal(got, wantJSON) {
		t.Errorf("history --json = %d, stderr %q, stdout:\n%s\nwant sub --json's lines:\n%s",
			r.code, r.stderr, r.stdout, strings.Join(wantJSON, "\n"))
	}

	r = runCLI(t, "", "history", "--socket", sock, "--json", "--tag", "investigation_id=INC-1", "--tag", "host=h1")
	if got := lines(r.stdout); r.code != 0 || !slices.Equal(got, wantJSON[1:]) {
		t.Errorf("history with two tags = %d, stdout:\n%s\nwant:\n%s", r.code, r.stdout, strings.Join(wantJSON[1:], "\n"))
	}
	r = runCLI(t, "", "history", "--socket", sock, "--tag", "investigation_id=INC-3")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("history of an unknown tag = %d, %q, %q; want 0 and nothing", r.code, r.stdout, r.stderr)
	}
}

// TestHistoryCriteria checks the other criteria, alone and ANDed, the
// time bounds (relative and RFC 3339) and --limit.
func TestHistoryCriteria(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	pub(t, sock, "--correlation-id", "A", "--stage", "s1", "events.a", "a1")
	pub(t, sock, "--correlation-id", "B", "--parent", "A", "--root", "A", "--stage", "s2", "events.a", "b1")
	mid := time.Now().UTC().Format(time.RFC3339Nano) // pub returns once the broker has its messages
	pub(t, sock, "--correlation-id", "C", "--stage", "s2", "events.b", "c1")

	tests := []struct {
		args []string
		want []string // payloads
	}{
		{nil, []string{"a1", "b1", "c1"}},
		{[]string{"--correlation", "B"}, []string{"b1"}},
		{[]string{"--root", "A"}, []string{"a1", "b1"}},
		{[]string{"--stage", "s2"}, []string{"b1", "c1"}},
		{[]string{"--root", "A", "--stage", "s2"}, []string{"b1"}},
		{[]string{"--correlation", "C", "--root", "A"}, nil},
		{[]string{"--limit", "2"}, []string{"b1", "c1"}},
		{[]string{"--since", "1h"}, []string{"a1", "b1", "c1"}},
		{[]string{"--until", "1h"}, nil},
		{[]string{"--since", mid}, []string{"c1"}},
		{[]string{"--until", mid}, []string{"a1", "b1"}},
		{[]string{"--since", "1h", "--until", mid, "--stage", "s2"}, []string{"b1"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, "", append([]string{"history", "--socket", sock, "--json"}, tt.args...)...)
			var got []string
			for _, line := range lines(r.stdout) {
				got = append(got, decodeLine(t, line)["payload"].(string))
			}
			if r.code != 0 || !slices.Equal(got, tt.want) {
				t.Errorf("history %v = %d, payloads %q, stderr %q; want 0, %q", tt.args, r.code, got, r.stderr, tt.want)
			}
		})
	}
}

// TestQueryUsageErrors: bad flags are usage errors (exit 2), found before
// connecting: there is no broker on the socket, which would be exit 1.
func TestQueryUsageErrors(t *testing.T) {
	t.Parallel()
	sock := testutil.SocketDir(t) + "/none.sock"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"history", "--since", "yesterday"}, `--since "yesterday": want an RFC 3339 time (2006-01-02T15:04:05Z) or a duration ago (10m)`},
		{[]string{"history", "--until", "-5m"}, "--until -5m: a duration means that long ago and must not be negative"},
		{[]string{"history", "--since", "1m", "--until", "2m"}, "--since 1m is not before --until 2m"},
		{[]string{"history", "--limit", "-1"}, "--limit must not be negative, got -1"},
		{[]string{"history", "--tag", "nokey"}, `--tag "nokey": want key=value with a non-empty key`},
		{[]string{"history", "x"}, "eventbus history takes no arguments; got 1 argument(s)"},
		{[]string{"wait", "X"}, "give exactly one of --publishers, --count and --quiet; got 0"},
		{[]string{"wait", "--publishers", "2", "--count", "3", "X"}, "give exactly one of --publishers, --count and --quiet; got 2"},
		{[]string{"wait", "--publishers", "0", "X"}, "--publishers must be at least 1, got 0"},
		{[]string{"wait", "--count", "-1", "X"}, "--count must be at least 1, got -1"},
		{[]string{"wait", "--quiet", "0s", "X"}, "--quiet must be positive, got 0s"},
		{[]string{"wait", "--count", "1", "--timeout", "11m", "X"}, "--timeout 11m0s is over the broker's limit of 10m0s"},
		{[]string{"wait", "--count", "1", "--timeout", "0s", "X"}, "--timeout must be positive, got 0s"},
		{[]string{"wait", "--count", "1", strings.Repeat("x", correlation.MaxIDBytes+1)}, "correlation: correlation id too long: 257 bytes, limit 256"},
		{[]string{"wait", "--count", "1"}, "eventbus wait takes ID; got 0 argument(s)"},
		{[]string{"timeline"}, "eventbus timeline takes ROOT; got 0 argument(s)"},
		{[]string{"workflow", "a", "b"}, "eventbus workflow takes ROOT; got 2 argument(s)"},
		{[]string{"workflows", "--token-file", "x"}, "--token-file is for --as agent"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			args := append([]string{tt.args[0], "--socket", sock}, tt.args[1:]...)
			r := runCLI(t, "", args...)
			if r.code != 2 || !strings.HasPrefix(r.stderr, "eventbus: "+tt.want+"\n") {
				t.Errorf("eventbus %v = %d, stderr %q; want 2 and %q", tt.args, r.code, r.stderr, tt.want)
			}
		})
	}
}

// chain publishes a 3-stage workflow rooted at "scan", each event from its
// own pub process, and one event of another workflow; it returns the
// publishers' pids in order.
func chain(t *testing.T, sock string) []int {
	t.Helper()
	return []int{
		pub(t, sock, "--correlation-id", "scan", "--stage", "enumeration", "--source", "agent",
			"control.collector.task.process", "enumerate"),
		pub(t, sock, "--correlation-id", "proc", "--parent", "scan", "--root", "scan", "--stage", "analysis",
			"--source", "procmond", "events.process.lifecycle", "p1"),
		pub(t, sock, "--correlation-id", "proc", "--parent", "scan", "--root", "scan", "--stage", "analysis",
			"--source", "procmond", "events.process.lifecycle", "p2"),
		pub(t, sock, "--correlation-id", "hash", "--parent", "proc", "--root", "scan", "--stage", "integrity",
			"--source", "fsmond", "--final", "events.fs.hash", "h1"),
		pub(t, sock, "--correlation-id", "other", "--stage", "analysis", "events.fs.hash", "o1"),
	}
}

// timelineLine is one event line of timeline's text output.
var timelineLine = regexp.MustCompile(`^( *)\+(\S+)  +(\S+)  +(\S+)  +(\S+)  +(\S+)  +(\S+)(  +final)?$`)

// TestTimeline: the chain prints as a tree, indented by parent depth, with
// a stage line where the stage changes and relative times.
func TestTimeline(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	pids := chain(t, sock)

	r := runCLI(t, "", "timeline", "--socket", sock, "scan")
	got := lines(r.stdout)
	if r.code != 0 || r.stderr != "" || len(got) != 7 {
		t.Fatalf("timeline = %d, stderr %q, stdout:\n%s\nwant 0 and 7 lines", r.code, r.stderr, r.stdout)
	}
	for i, stage := range map[int]string{0: "enumeration", 2: "analysis", 5: "integrity"} {
		if got[i] != "── stage "+stage {
			t.Errorf("line %d = %q; want %q", i, got[i], "── stage "+stage)
		}
	}
	want := []struct {
		line, depth              int
		stage, topic, source, id string
		pid                      int
		final                    bool
	}{
		{1, 0, "enumeration", "control.collector.task.process", "agent", "scan", pids[0], false},
		{3, 1, "analysis", "events.process.lifecycle", "procmond", "proc", pids[1], false},
		{4, 1, "analysis", "events.process.lifecycle", "procmond", "proc", pids[2], false},
		{6, 2, "integrity", "events.fs.hash", "fsmond", "hash", pids[3], true},
	}
	var last time.Duration
	for _, w := range want {
		line := got[w.line]
		m := timelineLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %d %q does not match %v", w.line, line, timelineLine)
			continue
		}
		rel, err := time.ParseDuration(m[2])
		if err != nil || rel < last || (w.line == 1 && rel != 0) {
			t.Errorf("line %d: relative time %q (%v); want +0s first, then not decreasing", w.line, m[2], err)
		}
		last = rel
		if len(m[1]) != 2*w.depth || m[3] != w.stage || m[4] != w.topic || m[5] != w.source ||
			m[6] != strconv.Itoa(w.pid) || m[7] != w.id || (m[8] != "") != w.final {
			t.Errorf("line %d = %q; want indent %d, %s %s %s %d %s final=%v",
				w.line, line, 2*w.depth, w.stage, w.topic, w.source, w.pid, w.id, w.final)
		}
	}

	r = runCLI(t, "", "timeline", "--socket", sock, "--json", "scan")
	got = lines(r.stdout)
	if r.code != 0 || len(got) != 4 {
		t.Fatalf("timeline --json = %d, stderr %q, stdout:\n%s\nwant 4 lines", r.code, r.stderr, r.stdout)
	}
	for i, w := range want {
		m := decodeLine(t, got[i])
		parent := map[string]any{"proc": "scan", "hash": "proc"}[w.id]
		if m["depth"] != float64(w.depth) || m["stage"] != w.stage || m["topic"] != w.topic || m["source_process"] != w.source ||
			m["publisher_pid"] != float64(w.pid) || m["correlation_id"] != w.id || m["parent_id"] != parent || (m["final"] == true) != w.final {
			t.Errorf("timeline --json line %d = %s; want depth %d, %s %s %s %d %s parent %v final=%v",
				i, got[i], w.depth, w.stage, w.topic, w.source, w.pid, w.id, parent, w.final)
		}
		if _, err := time.Parse(time.RFC3339Nano, m["received_at"].(string)); err != nil {
			t.Errorf("timeline --json line %d: received_at: %v", i, err)
		}
	}

	r = runCLI(t, "", "timeline", "--socket", sock, "proc")
	if want := "eventbus: timeline proc: no events recorded for this workflow, or none this client may see\n"; r.code != 1 || r.stderr != want {
		t.Errorf("timeline of a non-root = %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
}

// TestWorkflows: the chain is listed with its stages, correlations and
// processes, for a registered component only.
func TestWorkflows(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	pids := chain(t, sock)

	r := runCLI(t, "", "workflows", "--socket", sock, "--as", "agent")
	got := lines(r.stdout)
	header := regexp.MustCompile(`^ROOT +STAGE +STAGES DONE +CORRELATIONS +PROCESSES +EVENTS +FIRST SEEN +LAST SEEN$`)
	if r.code != 0 || len(got) != 3 || !header.MatchString(got[0]) {
		t.Fatalf("workflows = %d, stderr %q, stdout:\n%s\nwant a header and 2 workflows", r.code, r.stderr, r.stdout)
	}
	scan := regexp.MustCompile(`^scan +integrity +3/3 +3 +4 +4 \(1 final\) +\S+ +\S+$`)
	other := regexp.MustCompile(`^other +analysis +0/1 +1 +1 +1 +\S+ +\S+$`)
	if !scan.MatchString(got[1]) || !other.MatchString(got[2]) {
		t.Errorf("workflows:\n%s\nwant rows matching %v and %v", r.stdout, scan, other)
	}

	r = runCLI(t, "", "workflows", "--socket", sock, "--as", "agent", "--json")
	if got = lines(r.stdout); r.code != 0 || len(got) != 2 {
		t.Fatalf("workflows --json = %d, stderr %q, stdout:\n%s", r.code, r.stderr, r.stdout)
	}
	m := decodeLine(t, got[0])
	for k, v := range map[string]any{"root_id": "scan", "current_stage": "integrity", "stages": 3.0, "completed_stages": 3.0,
		"correlations": 3.0, "processes": 4.0, "events": 4.0, "finals": 1.0} {
		if m[k] != v {
			t.Errorf("workflows --json: %s = %v; want %v (%s)", k, m[k], v, got[0])
		}
	}

	r = runCLI(t, "", "workflows", "--socket", sock)
	if want := "eventbus: workflows: workflow state is for registered components: claim one at hello (--as COMPONENT claims one)\n"; r.code != 1 || r.stderr != want {
		t.Errorf("anonymous workflows = %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}

	r = runCLI(t, "", "workflow", "--socket", sock, "--as", "agent", "scan")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^root +scan$`),
		regexp.MustCompile(`(?m)^events +4 \(1 final\), 15 B of payload$`),
		regexp.MustCompile(`(?m)^enumeration +1 +\S+ +\S+ +\S+$`),
		regexp.MustCompile(`(?m)^integrity +1 \(1 final\) +\S+ +\S+ +\S+$`),
		regexp.MustCompile(`(?m)^proc +scan +analysis +2 +\S+ +\S+$`),
		regexp.MustCompile(`(?m)^hash +proc +integrity +1 \(1 final\) +\S+ +\S+$`),
		regexp.MustCompile(`(?m)^` + strconv.Itoa(pids[3]) + ` +- +1 \(1 final\) +\S+ +\S+$`),
	} {
		if r.code != 0 || !want.MatchString(r.stdout) {
			t.Errorf("workflow scan = %d, stderr %q, stdout:\n%s\nwant a line matching %v", r.code, r.stderr, r.stdout, want)
		}
	}

	r = runCLI(t, "", "workflow", "--socket", sock, "--as", "agent", "--json", "scan")
	var state struct {
		Stages []struct {
			Name      string
			Completed bool
		}
		Correlations []struct {
			ID       string
			ParentID string `json:"parent_id"`
		}
		Processes []struct{ PID int }
	}
	decodeJSON(t, r.stdout, &state)
	if fmt.Sprint(state.Stages) != "[{enumeration true} {analysis true} {integrity true}]" ||
		fmt.Sprint(state.Correlations) != "[{scan } {proc scan} {hash proc}]" || len(state.Processes) != 4 {
		t.Errorf("workflow --json = %s; want 3 completed stages, 3 linked correlations, 4 processes", r.stdout)
	}

	r = runCLI(t, "", "workflow", "--socket", sock, "--as", "agent", "proc")
	if want := "eventbus: workflow proc: not tracked (never seen, or dropped after being idle)\n"; r.code != 1 || r.stderr != want {
		t.Errorf("workflow of a non-root = %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
}

// TestWait: a wait for two final publishers returns when the second pub
// process marks its result final, with every event of the correlation;
// one that times out exits 1 with what it collected and why.
func TestWait(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	w := startCLI(t, "wait", "--socket", sock, "--publishers", "2", "--timeout", "10s", "--json", "W")
	pub(t, sock, "--correlation-id", "W", "events.a", "partial")
	pub(t, sock, "--correlation-id", "W", "--final", "events.a", "r1")
	if w.Exited() {
		t.Fatalf("wait exited after one final publisher; stdout %q, stderr %q", w.Stdout.String(), w.Stderr.String())
	}
	pub(t, sock, "--correlation-id", "W", "--final", "events.a", "r2")
	if code := w.Wait(t, waitLimit); code != 0 || w.Stderr.String() != "" {
		t.Fatalf("wait = %d, stderr %q; want 0", code, w.Stderr.String())
	}
	var got []string
	for _, line := range lines(w.Stdout.String()) {
		m := decodeLine(t, line)
		c, _ := m["correlation"].(map[string]any)
		if c["correlation_id"] != "W" {
			t.Errorf("wait printed %s; want correlation W", line)
		}
		got = append(got, fmt.Sprintf("%v %v", m["payload"], m["final"] == true))
	}
	if want := []string{"partial false", "r1 true", "r2 true"}; !slices.Equal(got, want) {
		t.Errorf("wait printed %q; want %q", got, want)
	}

	// Conditions already met by the history return at once.
	for _, cond := range [][]string{{"--count", "3"}, {"--publishers", "2"}, {"--quiet", "20ms"}} {
		r := runCLI(t, "", append(append([]string{"wait", "--socket", sock}, cond...), "W")...)
		if r.code != 0 || len(lines(r.stdout)) != 3 {
			t.Errorf("wait %v = %d, stderr %q, stdout:\n%s\nwant 0 and 3 lines", cond, r.code, r.stderr, r.stdout)
		}
	}

	pub(t, sock, "--correlation-id", "U", "--final", "events.a", "u1")
	start := time.Now()
	r := runCLI(t, "", "wait", "--socket", sock, "--publishers", "2", "--timeout", "300ms", "U")
	want := "eventbus: wait condition not met: correlation: wait for 2 final publishers on U: deadline exceeded with 1 final publisher, 1 event\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("wait with a short timeout = %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
	if m := historyLine.FindStringSubmatch(strings.TrimSuffix(r.stdout, "\n")); m == nil || m[4] != "U" || m[6] != "final" || m[7] != "u1" || len(lines(r.stdout)) != 1 {
		t.Errorf("wait with a short timeout printed %q; want the one final result u1", r.stdout)
	}
	// The broker answers just before the deadline (20 ms), so the
	// partial result arrives in time.
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("wait --timeout 300ms returned after %v; want the broker to have waited until just before the deadline", d)
	}
}

// decodeJSON decodes the one JSON object in out into v.
func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
}

// TestWriteHistoryTruncated: results cut to one reply are printed with a
// note, and are no failure; other errors are.
func TestWriteHistoryTruncated(t *testing.T) {
	msgs := []*eventbus.Message{
		{Topic: "events.a", Payload: []byte("x")},
		{Topic: "events.a", Payload: []byte("y")},
	}
	var out, errOut bytes.Buffer
	err := writeHistory(&out, &errOut, msgs, fmt.Errorf("eventbus: history: %w", eventbus.ErrTruncated), false, idFormat{})
	if err != nil || len(lines(out.String())) != 2 || errOut.String() != "# truncated: showing the 2 most recent\n" {
		t.Errorf("writeHistory(truncated) = %v, stdout %q, stderr %q; want nil, 2 lines and the note", err, out.String(), errOut.String())
	}
	boom := errors.New("boom")
	out.Reset()
	if err := writeHistory(&out, &errOut, nil, boom, false, idFormat{}); err != boom || out.Len() != 0 {
		t.Errorf("writeHistory(error) = %v, stdout %q; want boom and nothing", err, out.String())
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"", time.Time{}, true},
		{"10m", now.Add(-10 * time.Minute), true},
		{"0s", now, true},
		{"1h30m", now.Add(-90 * time.Minute), true},
		{"2026-11-21T05:04:03Z", time.Date(2026, 11, 21, 5, 4, 3, 0, time.UTC), true},
		{"2026-11-21T07:04:03.5+02:00", time.Date(2026, 11, 21, 5, 4, 3, 5e8, time.UTC), true},
		{"-1m", time.Time{}, false},
		{"2026-11-21", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := parseTime("since", tt.in, now)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestShortID(t *testing.T) {
	tests := []struct {
		id   string
		full bool
		want string
	}{
		{"", false, "-"},
		{"scan-1", false, "scan-1"},
		{"0123456789abcdef", false, "0123456789abcdef"},
		{"01a201f9-47ac-7afb-98b2-0bef127c8e46", false, "…0bef127c8e46"},
		{"01a201f9-47ac-7afb-98b2-0bef127c8e46", true, "01a201f9-47ac-7afb-98b2-0bef127c8e46"},
		{"ééééééééééééééééé", false, "…éééééééééééé"},
	}
	for _, tt := range tests {
		if got := (idFormat{full: tt.full}).id(tt.id); got != tt.want {
			t.Errorf("id(%q, full %v) = %q; want %q", tt.id, tt.full, got, tt.want)
		}
	}
}

func TestTable(t *testing.T) {
	var tb table
	tb.add("a", "", "ccc", "")
	tb.addNote("── note")
	tb.add("bbbb", "", "c", "tail ")
	var out bytes.Buffer
	if err := tb.write(&out); err != nil {
		t.Fatal(err)
	}
	want := "a     ccc\n── note\nbbbb  c    tail \n"
	if out.String() != want {
		t.Errorf("table:\n%q\nwant\n%q", out.String(), want)
	}
}
