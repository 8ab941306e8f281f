//go:build unix

package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/stats"
)

// What a hostile peer sends: escape sequences, an OSC 52 clipboard write,
// BEL, backspace, DEL, CR, C1 CSI, bidi controls. The wire takes strings
// only as valid UTF-8, so invalid UTF-8 comes in the payload and, on
// Linux, the executable path.
const (
	evilName   = "\x1b]52;c;cm0gLXJmIH4K\a\x1b[2J\r\b\x7f\u009b31m\u202eeman"
	evilRoot   = "\x1b[31mroot\u202e\r\a"
	evilChild  = "\x1b]0;title\a\u2066child\x7f"
	evilStage1 = "\x1b[2Kenum\r"
	evilStage2 = "\u009b2Janalysis\u202e"
	evilSource = "\x1b]52;c;eA==\aprocmond\b"
	evilGhost  = "\x1b[5mghost\u202e"
	evilDir    = "bin\x1b[7m\u202e\r\a"
)

var (
	evilTags    = map[string]string{"\x1b[1mkey\r": "\x1b]52;c;dmFs\a\u202evalue", "host": "h\u200f1"}
	evilPayload = []byte("\x1b]52;c;cGF5\a\xff\xfe\u202e\r")
)

// TestTerminalSafety: a peer with a hostile client name, executable path,
// correlation ids, stages, source, tags and payload cannot reach the
// operator's terminal through any text output, while --json keeps every
// string exact.
func TestTerminalSafety(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	const pattern = "events.hostile.#"
	exe := hostileExe(t)
	lurker := proctest.Start(t, proctest.Cmd{Path: exe, Args: []string{"sub", "--socket", sock, "events.lurk"}, Name: "sub run from a hostile path"})
	text := startCLI(t, "sub", "--socket", sock, "--count", "2", "--timeout", "10s", pattern)
	js := startCLI(t, "sub", "--socket", sock, "--count", "2", "--timeout", "10s", "--json", pattern)
	waitForSubscribers(t, sock, "events.lurk", 1, lurker)
	waitForSubscribers(t, sock, pattern, 2, js)

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	if c, err := eventbus.Dial(ctx, sock, eventbus.WithReconnect(false), eventbus.WithName("bad\xff")); err == nil {
		c.Close()
		t.Error("a hello naming the client in invalid UTF-8 was accepted; test that name's output too")
	}
	c, err := eventbus.Dial(ctx, sock, eventbus.WithReconnect(false), eventbus.WithName(evilName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() }) // after the parallel subtests: stats shows it
	want := []correlation.Metadata{
		{CorrelationID: evilRoot, RootID: evilRoot, Stage: evilStage1, SourceProcess: evilSource, Tags: evilTags},
		{CorrelationID: evilChild, ParentID: evilRoot, RootID: evilRoot, Stage: evilStage2, SourceProcess: evilSource, Tags: evilTags},
	}
	for i, m := range want {
		if err := c.Publish(ctx, "events.hostile.e"+strconv.Itoa(i), evilPayload, eventbus.WithCorrelation(m), eventbus.WithFinal()); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Publish(ctx, "events.hostile.x", nil, eventbus.WithCorrelation(correlation.Metadata{CorrelationID: "x", RootID: "x", Stage: "\xff"})); err == nil {
		t.Error("metadata in invalid UTF-8 was published; test its output too")
	}
	if err := c.Flush(ctx); err != nil { // the broker has recorded both
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		args  []string
		code  int
		shown []string                          // in the text output, escaped
		json  func(t *testing.T, stdout string) // checks the --json output, if any
	}{
		{"stats", []string{"stats", "--as", "agent"}, 0, append([]string{safe(evilName)}, exeShown(t, exe)...), func(t *testing.T, out string) {
			var s stats.Snapshot
			decodeJSON(t, out, &s)
			if !slices.ContainsFunc(s.ConnectionList, func(c stats.Connection) bool { return c.ClientName == evilName }) {
				t.Errorf("no connection named %q in %+v", evilName, s.ConnectionList)
			}
			// JSON has no invalid UTF-8: encoding/json writes U+FFFD.
			wantExe := strings.ToValidUTF8(resolved(t, exe), "\ufffd")
			if exeShown(t, exe) != nil && !slices.ContainsFunc(s.ConnectionList, func(c stats.Connection) bool { return c.Exe == wantExe }) {
				t.Errorf("no connection with exe %q in %+v", wantExe, s.ConnectionList)
			}
		}},
		{"history", []string{"history", "--full-ids", "--root", evilRoot}, 0,
			[]string{safe(evilRoot), safe(evilChild), safe(evilStage1), safe(evilStage2), strconv.Quote(string(evilPayload))},
			func(t *testing.T, out string) { checkMessages(t, out, want) }},
		{"timeline", []string{"timeline", "--full-ids", evilRoot}, 0,
			[]string{safe(evilRoot), safe(evilChild), safe(evilStage1), safe(evilStage2), safe(evilSource)},
			func(t *testing.T, out string) {
				var got []jsonTimelineEntry
				for _, l := range lines(out) {
					var e jsonTimelineEntry
					decodeJSON(t, l, &e)
					got = append(got, e)
				}
				if len(got) != 2 || got[0].CorrelationID != evilRoot || got[0].Stage != evilStage1 || got[0].SourceProcess != evilSource ||
					got[1].CorrelationID != evilChild || got[1].ParentID != evilRoot || got[1].Stage != evilStage2 {
					t.Errorf("timeline --json = %+v; want the two events as published", got)
				}
			}},
		{"workflows", []string{"workflows", "--as", "agent"}, 0, []string{safe(evilRoot), safe(evilStage2)}, func(t *testing.T, out string) {
			var w jsonWorkflowSummary
			decodeJSON(t, out, &w)
			if w.RootID != evilRoot || w.CurrentStage != evilStage2 {
				t.Errorf("workflows --json = %+v; want root %q, stage %q", w, evilRoot, evilStage2)
			}
		}},
		{"workflow", []string{"workflow", "--as", "agent", evilRoot}, 0,
			[]string{safe(evilRoot), safe(evilChild), safe(evilStage1), safe(evilStage2)}, func(t *testing.T, out string) {
				var w jsonWorkflow
				decodeJSON(t, out, &w)
				if w.RootID != evilRoot || len(w.Stages) != 2 || w.Stages[0].Name != evilStage1 || w.Stages[1].Name != evilStage2 ||
					len(w.Correlations) != 2 || w.Correlations[1].ID != evilChild || w.Correlations[1].ParentID != evilRoot {
					t.Errorf("workflow --json = %+v; want the workflow as published", w)
				}
			}},
		{"wait", []string{"wait", "--full-ids", "--count", "1", evilChild}, 0, []string{safe(evilChild), safe(evilStage2)},
			func(t *testing.T, out string) { checkMessages(t, out, want[1:]) }},
		{"wait unmet", []string{"wait", "--publishers", "2", "--timeout", "300ms", evilChild}, 1, []string{safe(evilChild)}, nil},
		{"timeline unknown", []string{"timeline", evilGhost}, 1, []string{safe(evilGhost)}, nil},
		{"workflow unknown", []string{"workflow", "--as", "agent", evilGhost}, 1, []string{safe(evilGhost)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{tt.args[0], "--socket", sock}, tt.args[1:]...)
			r := runCLI(t, "", args...)
			checkTerminal(t, r.stdout+r.stderr, tt.shown)
			if r.code != tt.code {
				t.Errorf("%s = %d; want %d; stderr %q", tt.name, r.code, tt.code, r.stderr)
			}
			if tt.json == nil {
				return
			}
			r = runCLI(t, "", append(args, "--json")...)
			if r.code != 0 {
				t.Fatalf("%s --json = %d, stderr %q", tt.name, r.code, r.stderr)
			}
			tt.json(t, r.stdout)
		})
	}

	t.Run("sub", func(t *testing.T) {
		got := subLines(t, text, 2)
		checkTerminal(t, strings.Join(got, "\n")+text.Stderr.String(), []string{strconv.Quote(string(evilPayload))})
		checkMessages(t, strings.Join(subLines(t, js, 2), "\n"), want)
	})
}

// checkTerminal fails unless out can do nothing to a terminal and shows
// each of shown.
func checkTerminal(t *testing.T, out string, shown []string) {
	t.Helper()
	if h := terminalHazard(out); h != "" {
		t.Errorf("output has %s:\n%q", h, out)
	}
	for _, s := range shown {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %s:\n%s", s, out)
		}
	}
}

// checkMessages decodes the lines of sub --json and fails unless they are
// the hostile payload with want's metadata, exactly.
func checkMessages(t *testing.T, out string, want []correlation.Metadata) {
	t.Helper()
	got := lines(out)
	if len(got) != len(want) {
		t.Fatalf("%d messages; want %d:\n%s", len(got), len(want), out)
	}
	for i, l := range got {
		var m jsonMessage
		decodeJSON(t, l, &m)
		payload, err := base64.StdEncoding.DecodeString(m.PayloadBase64)
		if err != nil || string(payload) != string(evilPayload) {
			t.Errorf("message %d: payload %q (%v); want %q", i, payload, err, evilPayload)
		}
		w, c := want[i], m.Correlation
		if c == nil || c.CorrelationID != w.CorrelationID || c.ParentID != w.ParentID || c.RootID != w.RootID ||
			c.Stage != w.Stage || c.SourceProcess != w.SourceProcess || !maps.Equal(c.Tags, w.Tags) {
			t.Errorf("message %d: correlation %+v; want %+v", i, c, w)
		}
	}
}

// hostileExe returns the eventbus binary linked (or copied) into a
// directory whose name is hostile: the broker shows peers' executables.
func hostileExe(t *testing.T) string {
	t.Helper()
	name := evilDir
	if runtime.GOOS == "linux" { // file names are bytes: invalid UTF-8 too
		name += "\xff"
	}
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	bin, exe := proctest.Binary(t), filepath.Join(dir, "eventbus")
	if os.Link(bin, exe) == nil {
		return exe
	}
	src, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o700)
	if err == nil {
		_, err = io.Copy(dst, src)
		err = cmp.Or(err, dst.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// resolved is exe as the kernel reports it.
func resolved(t *testing.T, exe string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(exe)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// exeShown is exe as stats shows it where the OS reveals peers'
// executables (Linux), else nothing.
func exeShown(t *testing.T, exe string) []string {
	if runtime.GOOS != "linux" {
		return nil
	}
	return []string{safe(resolved(t, exe))}
}
