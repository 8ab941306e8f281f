//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/internal/testutil"
)

// subLines waits for sub to exit 0 and returns its stdout lines.
func subLines(t *testing.T, sub *proctest.Proc, want int) []string {
	t.Helper()
	if code := sub.Wait(t, waitLimit); code != 0 {
		t.Fatalf("sub = %d, stderr %q", code, sub.Stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(sub.Stdout.String(), "\n"), "\n")
	if len(lines) != want {
		t.Fatalf("sub printed %d lines; want %d:\n%s", len(lines), want, sub.Stdout.String())
	}
	return lines
}

// decodeLine decodes one line of sub --json.
func decodeLine(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return m
}

// TestPubSubCorrelation: every correlation flag of pub reaches sub --json
// as sent, numbered 1, 2 within the correlation; sub's text mode stays
// TOPIC PAYLOAD.
func TestPubSubCorrelation(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	const topicName = "control.collector.task.process"
	js := startCLI(t, "sub", "--socket", sock, "--count", "2", "--timeout", "10s", "--json", "control.collector.#")
	text := startCLI(t, "sub", "--socket", sock, "--count", "2", "--timeout", "10s", "control.collector.task.+")
	waitForSubscribers(t, sock, "control.collector.#", 1, js)
	waitForSubscribers(t, sock, "control.collector.task.+", 1, text)
	before := time.Now()
	pub := runCLI(t, "", "pub", "--socket", sock, "--count", "2",
		"--stage", "enumeration", "--tag", "investigation_id=INC-12345", "--tag", "host=h1",
		"--tag", "query=a=b,c", // a value may hold '=' and ','
		"--source", "agent", "--correlation-id", "X", "--parent", "P", "--root", "R", "--final",
		topicName, "enumerate")
	if pub.code != 0 {
		t.Fatalf("pub = %d, stderr %q", pub.code, pub.stderr)
	}

	for i, line := range subLines(t, js, 2) {
		m := decodeLine(t, line)
		if m["topic"] != topicName || m["payload"] != "enumerate" || m["final"] != true {
			t.Errorf("message %d: topic %v payload %v final %v; want %s, enumerate, true", i, m["topic"], m["payload"], m["final"], topicName)
		}
		c, ok := m["correlation"].(map[string]any)
		if !ok {
			t.Fatalf("message %d: correlation = %v; want an object", i, m["correlation"])
		}
		started, _ := c["started_at"].(string)
		ts, err := time.Parse(time.RFC3339Nano, started)
		if err != nil || ts.Before(before.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
			t.Errorf("message %d: started_at = %q (%v); want an RFC 3339 time of the pub", i, started, err)
		}
		delete(c, "started_at")
		want := map[string]any{
			"correlation_id": "X",
			"parent_id":      "P",
			"root_id":        "R",
			"sequence":       float64(i + 1),
			"stage":          "enumeration",
			"source_process": "agent",
			"tags":           map[string]any{"investigation_id": "INC-12345", "host": "h1", "query": "a=b,c"},
		}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("message %d: correlation = %v; want %v", i, c, want)
		}
	}

	want := topicName + " enumerate\n" + topicName + " enumerate\n"
	if code := text.Wait(t, waitLimit); code != 0 || text.Stdout.String() != want {
		t.Errorf("text sub = %d, %q; want 0, %q", code, text.Stdout.String(), want)
	}
}

// TestPubCorrelationDefaults: one correlation flag starts a new workflow
// (a fresh id that is also the root, no parent, no tags); without any, a
// message has no correlation and no final key.
func TestPubCorrelationDefaults(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	js := startCLI(t, "sub", "--socket", sock, "--count", "3", "--timeout", "10s", "--json", "events.#")
	waitForSubscribers(t, sock, "events.#", 1, js)
	for _, args := range [][]string{
		{"--stage", "enumeration"},
		{"--root", "R"},
		nil,
	} {
		args = append(append([]string{"pub", "--socket", sock}, args...), "events.process.batch", "x")
		if r := runCLI(t, "", args...); r.code != 0 {
			t.Fatalf("%v = %d, stderr %q", args, r.code, r.stderr)
		}
	}
	lines := subLines(t, js, 3)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$`)

	m := decodeLine(t, lines[0])
	c, _ := m["correlation"].(map[string]any)
	id, _ := c["correlation_id"].(string)
	if !uuid.MatchString(id) || c["root_id"] != id || c["sequence"] != float64(1) || c["stage"] != "enumeration" {
		t.Errorf("--stage only: correlation = %v; want a new UUIDv7 id, root = id, sequence 1, stage enumeration", c)
	}
	if _, ok := c["parent_id"]; ok {
		t.Errorf("--stage only: parent_id present: %v", c)
	}
	if tags, ok := c["tags"].(map[string]any); !ok || len(tags) != 0 {
		t.Errorf("--stage only: tags = %v; want {}", c["tags"])
	}
	if c["source_process"] != "" {
		t.Errorf("--stage only: source_process = %v; want \"\"", c["source_process"])
	}
	if _, ok := m["final"]; ok {
		t.Errorf("without --final: final present: %v", m)
	}

	c, _ = decodeLine(t, lines[1])["correlation"].(map[string]any)
	if id2, _ := c["correlation_id"].(string); !uuid.MatchString(id2) || id2 == id || c["root_id"] != "R" {
		t.Errorf("--root R: correlation = %v; want a new id (not %s) under root R", c, id)
	}

	m = decodeLine(t, lines[2])
	_, hasCorr := m["correlation"]
	_, hasFinal := m["final"]
	if hasCorr || hasFinal {
		t.Errorf("no correlation flags: %v; want neither correlation nor final", m)
	}
}

// TestPubCorrelationErrors: bad tag syntax and broken limits are usage
// errors (exit 2) found before pub connects: the socket here has no
// broker, which would be exit 1.
func TestPubCorrelationErrors(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(testutil.SocketDir(t), "none.sock")
	longKey := strings.Repeat("k", correlation.MaxTagKeyBytes+1)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"tag without =", []string{"--tag", "nokey"}, `--tag "nokey": want key=value with a non-empty key`},
		{"tag empty key", []string{"--tag", "=v"}, `--tag "=v": want key=value with a non-empty key`},
		{"tag twice", []string{"--tag", "a=1", "--tag", "a=2"}, `--tag "a=2": key "a" given more than once`},
		{"tag key too long", []string{"--tag", longKey + "=v"},
			fmt.Sprintf("correlation: tag key too long: %d bytes, limit %d", correlation.MaxTagKeyBytes+1, correlation.MaxTagKeyBytes)},
		{"tag value too long", []string{"--tag", "k=" + strings.Repeat("v", correlation.MaxTagValueBytes+1)},
			`correlation: tag "k" value too long: 1025 bytes, limit 1024`},
		{"stage too long", []string{"--stage", strings.Repeat("s", correlation.MaxStageBytes+1)},
			"correlation: stage too long: 129 bytes, limit 128"},
		{"id too long", []string{"--correlation-id", strings.Repeat("i", correlation.MaxIDBytes+1)},
			"correlation: correlation id too long: 257 bytes, limit 256"},
		{"empty id", []string{"--correlation-id", ""}, "correlation: correlation id empty"},
		{"empty root", []string{"--root", ""}, "correlation: root id empty"},
		{"own parent", []string{"--correlation-id", "X", "--parent", "X"}, "correlation: parent id equals correlation id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"pub", "--socket", sock}, tt.args...), "events.a", "x")
			r := runCLI(t, "", args...)
			if want := "eventbus: " + tt.want + "\n"; r.code != 2 || r.stderr != want {
				t.Errorf("pub %s = %d, stderr %q; want 2, %q", tt.name, r.code, r.stderr, want)
			}
		})
	}
}

// TestJSONCorrelation checks sub --json's correlation object on messages
// pub cannot make: a zero start time is left out, nil tags print as {}.
func TestJSONCorrelation(t *testing.T) {
	j := toJSON(&eventbus.Message{Topic: "events.a", Payload: []byte("x"), Final: true})
	j.Correlation = correlationJSON(&correlation.Metadata{CorrelationID: "c", RootID: "r", Sequence: 7})
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	want := `"missed":0,"correlation":{"correlation_id":"c","root_id":"r","sequence":7,"stage":"","source_process":"","tags":{}},"final":true}`
	if !strings.HasSuffix(string(b), want) {
		t.Errorf("sub --json = %s; want it to end with %s", b, want)
	}
}
