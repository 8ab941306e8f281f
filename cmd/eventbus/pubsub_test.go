//go:build unix

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"daemoneye.dev/eventbus/stats"
)

// TestPubSubJSON runs on the built-in policy: procmond publishes its
// events, the agent (with the token beside the socket) receives them.
func TestPubSubJSON(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t)
	sub := startCLI(t, "sub", "--socket", sock, "--as", "agent", "--count", "3", "--timeout", "10s", "--json", "events.#")
	waitForSubscribers(t, sock, "events.#", 1, sub)
	before := time.Now()
	pub := runCLI(t, "", "pub", "--socket", sock, "--as", "procmond", "--count", "3", "events.process.lifecycle", "hello")
	if pub.code != 0 {
		t.Fatalf("pub = %d, stderr %q", pub.code, pub.stderr)
	}
	if code := sub.Wait(t, waitLimit); code != 0 {
		t.Fatalf("sub = %d, stderr %q", code, sub.Stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(sub.Stdout.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("sub printed %d lines; want 3:\n%s", len(lines), sub.Stdout.String())
	}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		checkJSONMessage(t, m, pub.pid, before)
	}
}

func checkJSONMessage(t *testing.T, m map[string]any, pubPID int, before time.Time) {
	t.Helper()
	want := map[string]any{
		"topic":               "events.process.lifecycle",
		"payload":             "hello",
		"publisher_pid":       float64(pubPID),
		"publisher_uid":       float64(os.Getuid()),
		"publisher_component": "procmond",
		"missed":              float64(0),
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v; want %v", k, m[k], v)
		}
	}
	for _, k := range []string{"published_at", "received_at"} {
		s, _ := m[k].(string)
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || ts.Before(before.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
			t.Errorf("%s = %q (%v); want an RFC 3339 time of the publish", k, s, err)
		}
	}
	if _, ok := m["payload_base64"]; ok {
		t.Errorf("payload_base64 set for a UTF-8 payload")
	}
}

// TestPubLinesSubText publishes stdin lines, some not text, and reads them
// back as text and as JSON.
func TestPubLinesSubText(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	text := startCLI(t, "sub", "--socket", sock, "--count", "4", "--timeout", "10s", "events.+.lifecycle")
	js := startCLI(t, "sub", "--socket", sock, "--count", "4", "--timeout", "10s", "--json", "events.#")
	waitForSubscribers(t, sock, "events.+.lifecycle", 1, text)
	waitForSubscribers(t, sock, "events.#", 1, js)
	pub := runCLI(t, "one\ntwo words\n\xff\xfe\n\n", "pub", "--socket", sock, "events.net.lifecycle")
	if pub.code != 0 {
		t.Fatalf("pub = %d, stderr %q", pub.code, pub.stderr)
	}
	if code := text.Wait(t, waitLimit); code != 0 {
		t.Fatalf("sub = %d, stderr %q", code, text.Stderr.String())
	}
	want := "events.net.lifecycle one\nevents.net.lifecycle two words\nevents.net.lifecycle \"\\xff\\xfe\"\nevents.net.lifecycle \n"
	if got := text.Stdout.String(); got != want {
		t.Errorf("sub printed %q; want %q", got, want)
	}
	js.Wait(t, waitLimit)
	lines := strings.Split(js.Stdout.String(), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &m); err != nil {
		t.Fatal(err)
	}
	if m["payload_base64"] != base64.StdEncoding.EncodeToString([]byte("\xff\xfe")) || m["payload"] != nil {
		t.Errorf("binary payload as JSON = %v; want only payload_base64", m)
	}
}

func TestSubTimeout(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t)
	r := runCLI(t, "", "sub", "--socket", sock, "--count", "2", "--timeout", "200ms", "events.#")
	want := "eventbus: timed out after 200ms waiting for messages (got 0 of 2)\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("sub = %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
}

func TestSubInterrupt(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t)
	sub := startCLI(t, "sub", "--socket", sock, "events.#")
	waitForSubscribers(t, sock, "events.#", 1, sub)
	sub.Signal(t, syscall.SIGINT)
	if code := sub.Wait(t, waitLimit); code != 0 {
		t.Errorf("sub after SIGINT = %d, stderr %q; want 0", code, sub.Stderr.String())
	}
}

func TestSubBrokerGone(t *testing.T) {
	t.Parallel()
	b, sock := startBroker(t)
	sub := startCLI(t, "sub", "--socket", sock, "--no-reconnect", "events.#")
	waitForSubscribers(t, sock, "events.#", 1, sub)
	b.Signal(t, syscall.SIGTERM)
	code := sub.Wait(t, waitLimit)
	if want := "the connection to the broker was lost"; code != 1 || !strings.Contains(sub.Stderr.String(), want) {
		t.Errorf("sub after broker shutdown = %d, stderr %q; want 1 and %q", code, sub.Stderr.String(), want)
	}
}

// TestSubReconnects: sub survives its broker: it says the connection was
// lost, reconnects to the broker started in its place, says that one is a
// restarted broker, and prints what is published there.
func TestSubReconnects(t *testing.T) {
	t.Parallel()
	b, sock := startOpenBroker(t)
	sub := startCLI(t, "sub", "--socket", sock, "events.#")
	waitForSubscribers(t, sock, "events.#", 1, sub)
	b.Signal(t, syscall.SIGTERM)
	b.Wait(t, waitLimit)
	sub.Stderr.WaitFor(t, "connection to the broker lost", waitLimit)
	open := fmt.Sprintf("default_access: public\ncomponents:\n  procmond:\n    uids: [%d]\n", os.Getuid()) // as startOpenBroker's
	b2 := startCLI(t, "broker", "--socket", sock, "--policy", writeFile(t, "open.yaml", open, 0o600))
	waitForBroker(t, b2, sock)
	sub.Stderr.WaitMatch(t, regexp.MustCompile(`eventbus: reconnected: broker restarted \(epoch [0-9a-f]{16}, was [0-9a-f]{16}\) after \S+ without a connection: messages published while no broker ran were not delivered\n`), waitLimit)
	waitForSubscribers(t, sock, "events.#", 1, sub)
	if r := runCLI(t, "", "pub", "--socket", sock, "events.again", "after the restart"); r.code != 0 {
		t.Fatalf("pub to the new broker = %d, %q", r.code, r.stderr)
	}
	sub.Stdout.WaitFor(t, "events.again after the restart", waitLimit)
	if sub.Exited() {
		t.Errorf("sub exited across the restart: %s", sub.Stderr.String())
	}
}

func TestPubOversizeFile(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t)
	file := filepath.Join(t.TempDir(), "big.txt")
	line := append(bytes.Repeat([]byte("x"), 1<<20+1), '\n')
	if err := os.WriteFile(file, append([]byte("small\n"), line...), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "", "pub", "--socket", sock, "--file", file, "events.a")
	want := "eventbus: publish events.a: message too large: 1048577 bytes, limit 1048576 (" + file + " line 2)\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("pub --file = %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
}

// TestSubMissed fills a stopped subscriber's queue so the broker drops,
// and checks that sub reports the loss before the next message.
func TestSubMissed(t *testing.T) {
	t.Parallel()
	_, sock := startOpenBroker(t, "--buffer", "1")
	sub := startCLI(t, "sub", "--socket", sock, "events.#")
	waitForSubscribers(t, sock, "events.#", 1, sub)
	sub.Signal(t, syscall.SIGSTOP)
	// 100 messages of 64 KiB overflow the socket buffers and the broker's
	// one-message queue while sub is stopped.
	// pub waits for the broker's confirmation, which needs sub to take what
	// its queue still holds: it finishes once sub runs again.
	payload := strings.Repeat("p", 64<<10)
	pub := startCLI(t, "pub", "--socket", sock, "--count", "100", "events.a", payload)
	dropped := poll(sub, func() bool {
		s := brokerStats(t, sock)
		i := slices.IndexFunc(s.ConnectionList, func(c stats.Connection) bool { return c.PID == sub.Pid() })
		return i >= 0 && s.ConnectionList[i].Dropped > 0
	})
	if !dropped {
		t.Fatalf("the broker dropped nothing for the stopped sub")
	}
	sub.Signal(t, syscall.SIGCONT)
	if code := pub.Wait(t, waitLimit); code != 0 {
		t.Fatalf("pub = %d, %q", code, pub.Stderr.String())
	}
	// The broker announces no drained queue: poll its stats.
	drained := poll(sub, func() bool {
		s := brokerStats(t, sock)
		i := slices.IndexFunc(s.ConnectionList, func(c stats.Connection) bool { return c.PID == sub.Pid() })
		return i >= 0 && s.ConnectionList[i].QueuedMessages == 0 && s.ConnectionList[i].Dropped > 0
	})
	if !drained {
		t.Fatalf("sub's queue did not drain after drops; sub stderr:\n%s", sub.Stderr.String())
	}
	if r := runCLI(t, "", "pub", "--socket", sock, "events.last", "x"); r.code != 0 {
		t.Fatalf("pub = %d, %q", r.code, r.stderr)
	}
	sub.Stdout.WaitFor(t, "events.last x\n", waitLimit)
	if out := sub.Stdout.String(); !strings.HasSuffix(out, "events.last x\n") {
		t.Errorf("sub printed %q after the last message; want it last", out[strings.LastIndex(out, "events.last x\n"):])
	}
	sub.Signal(t, syscall.SIGINT)
	if code := sub.Wait(t, waitLimit); code != 0 {
		t.Errorf("sub after SIGINT = %d; want 0", code)
	}
	if !regexp.MustCompile(`^(# missed [1-9]\d* messages\n)+$`).MatchString(sub.Stderr.String()) {
		t.Errorf("sub stderr %q; want # missed N messages lines", sub.Stderr.String())
	}
}

// TestPubTimeout: --timeout bounds pub against a broker that stopped
// (SIGSTOP): it fails at the deadline, saying so, instead of waiting.
func TestPubTimeout(t *testing.T) {
	t.Parallel()
	b, sock := startOpenBroker(t)
	b.Signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { b.Cmd.Process.Signal(syscall.SIGCONT) })
	r := runCLI(t, "", "pub", "--socket", sock, "--timeout", "300ms", "events.a", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "deadline exceeded") {
		t.Errorf("pub --timeout against a stopped broker = %d, %q; want 1 and the deadline named", r.code, r.stderr)
	}
	if r := runCLI(t, "", "pub", "--socket", sock, "--timeout", "-1s", "events.a", "x"); r.code != 2 {
		t.Errorf("pub --timeout -1s = %d; want 2 (usage)", r.code)
	}
}

// TestPubBrokerKilled: kill -9 the broker while pub streams; pub says how
// many of its messages were not confirmed, and every other one reached
// the subscriber.
func TestPubBrokerKilled(t *testing.T) {
	t.Parallel()
	b, sock := startOpenBroker(t)
	sub := startCLI(t, "sub", "--socket", sock, "--no-reconnect", "events.#")
	waitForSubscribers(t, sock, "events.#", 1, sub)
	const total = 5_000_000 // far more than pub sends before the kill
	pub := startCLI(t, "pub", "--socket", sock, "--count", strconv.Itoa(total), "events.a", "x")
	sub.Stdout.WaitFor(t, strings.Repeat("events.a x\n", 1000), waitLimit)
	b.Signal(t, syscall.SIGKILL)
	if code := pub.Wait(t, waitLimit); code != 1 {
		t.Fatalf("pub after kill -9 of the broker = %d; want 1; stderr %q", code, pub.Stderr.String())
	}
	m := regexp.MustCompile(`^eventbus: (\d+) of (\d+) messages not confirmed: .+\n$`).FindStringSubmatch(pub.Stderr.String())
	if m == nil {
		t.Fatalf("pub stderr %q; want \"N of M messages not confirmed: ...\"", pub.Stderr.String())
	}
	lost, tried := atoi(t, m[1]), atoi(t, m[2])
	if lost < 1 || tried > total || lost > tried {
		t.Errorf("pub: %d of %d not confirmed; want 1 <= N <= M <= %d", lost, tried, total)
	}
	sub.Wait(t, waitLimit)
	got := strings.Count(sub.Stdout.String(), "events.a x\n")
	if got < tried-lost || got > tried {
		t.Errorf("sub received %d messages; pub had %d of %d confirmed: want at least the confirmed, at most those tried", got, tried-lost, tried)
	}
	t.Logf("pub: %d of %d not confirmed; sub received %d", lost, tried, got)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
