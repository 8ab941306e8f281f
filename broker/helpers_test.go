package broker

import (
	"context"
	"encoding/binary"
	"os"
	"runtime"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"

	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/stats"
)

// testTimeout bounds every wait; tests synchronise on events, not on it.
const testTimeout = testutil.Timeout

// testCtx returns a context that ends with the test or after testTimeout.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startBroker starts a broker with cfg on a fresh socket; the test's
// cleanup closes it and waits for Serve. Without a policy in cfg it uses
// acl.Open: these tests are about routing, not access control.
func startBroker(t testing.TB, cfg Config) (*Broker, string) {
	t.Helper()
	b, err := New(open(cfg))
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return b, testutil.Serve(t, b).Path
}

// open sets an all-public policy unless cfg has one.
func open(cfg Config) Config {
	if cfg.Policy == nil && cfg.PolicyFile == "" {
		cfg.Policy = acl.Open()
	}
	return cfg
}

// procmondPolicy is open but also knows the procmond component, admitted
// from this process's user (uid, or SID on Windows), so tests can see a
// verified component.
func procmondPolicy(t testing.TB) *acl.Policy {
	t.Helper()
	p, err := acl.Parse("test", []byte("default_access: public\ncomponents:\n  procmond:\n    "+testutil.UserEntry(t)+"\n    publish: ['#']\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tempDir is t.TempDir, except that on Windows a failure to remove the
// directory when the test ends is ignored rather than failing the test:
// under Wine (scripts/wine), os.RemoveAll fails, which would fail every
// test that used t.TempDir.
func tempDir(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "windows" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "eventbus-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // best effort; see above
	return dir
}

// dial connects a socket client that is closed when the test ends.
func dial(t testing.TB, path string, opts ...eventbus.ClientOption) *eventbus.Client {
	t.Helper()
	c, err := eventbus.Dial(testCtx(t), path, opts...)
	if err != nil {
		t.Fatalf("Dial(%q): %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// inProcess connects an in-process client that is closed when the test ends.
func inProcess(t testing.TB, b *Broker, opts ...eventbus.ClientOption) *eventbus.Client {
	t.Helper()
	c, err := eventbus.Dial(testCtx(t), "", append([]eventbus.ClientOption{eventbus.InProcess(b)}, opts...)...)
	if err != nil {
		t.Fatalf("Dial(InProcess): %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func subscribe(t testing.TB, c *eventbus.Client, patterns ...string) *eventbus.Subscription {
	t.Helper()
	s, err := c.Subscribe(testCtx(t), patterns...)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", patterns, err)
	}
	return s
}

func publish(t testing.TB, c *eventbus.Client, topicName string, payload []byte) {
	t.Helper()
	if err := c.Publish(testCtx(t), topicName, payload); err != nil {
		t.Fatalf("Publish(%q): %v", topicName, err)
	}
}

// ping proves the broker routed what c published, without waiting for
// subscribers to take it as flush does.
func ping(t testing.TB, c *eventbus.Client) {
	t.Helper()
	if _, err := c.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func flush(t testing.TB, cs ...*eventbus.Client) {
	t.Helper()
	for _, c := range cs {
		if err := c.Flush(testCtx(t)); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
}

// settle makes delivery deterministic: after it, the broker has routed
// everything pub sent and each subscriber holds every message routed to it
// (a subscriber's PONG follows its deliveries on the same stream). The
// second round on each subscriber also orders the broker's delivered
// counters, updated after each write, before anything the test asks next.
func settle(t testing.TB, pub *eventbus.Client, subs ...*eventbus.Client) {
	t.Helper()
	flush(t, pub)
	flush(t, subs...)
	flush(t, subs...)
}

// recv returns the next message on s or fails the test after testTimeout.
func recv(t testing.TB, s *eventbus.Subscription) *eventbus.Message {
	t.Helper()
	select {
	case m, ok := <-s.C:
		if !ok {
			t.Fatalf("subscription %v: channel closed; want a message", s.Patterns())
		}
		return m
	case <-time.After(testTimeout):
		t.Fatalf("subscription %v: no message within %v", s.Patterns(), testTimeout)
		return nil
	}
}

// drain returns the messages already on s.C without waiting; call it after
// settle.
func drain(s *eventbus.Subscription) []*eventbus.Message {
	var out []*eventbus.Message
	for {
		select {
		case m, ok := <-s.C:
			if !ok {
				return out
			}
			out = append(out, m)
		default:
			return out
		}
	}
}

func topicsOf(ms []*eventbus.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Topic
	}
	return out
}

// waitFor polls cond until it holds, for state with no event to wait on
// (the broker noticing that a peer hung up).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", testTimeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// seqPayload is a payload of size bytes (at least 8) starting with n.
func seqPayload(n uint64, size int) []byte {
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(p, n)
	for i := 8; i < len(p); i++ {
		p[i] = byte(n) + byte(i)
	}
	return p
}

func seqOf(t testing.TB, m *eventbus.Message) uint64 {
	t.Helper()
	if len(m.Payload) < 8 {
		t.Fatalf("payload %q too short for a sequence number", m.Payload)
	}
	return binary.BigEndian.Uint64(m.Payload)
}

func findConn(s stats.Snapshot, name string) (stats.Connection, bool) {
	for _, c := range s.ConnectionList {
		if c.ClientName == name {
			return c, true
		}
	}
	return stats.Connection{}, false
}

func findPattern(s stats.Snapshot, p string) int {
	for _, pc := range s.Patterns {
		if pc.Pattern == p {
			return pc.Subscribers
		}
	}
	return 0
}

func findTopic(s stats.Snapshot, name string) uint64 {
	for _, tc := range s.Topics {
		if tc.Topic == name {
			return tc.Published
		}
	}
	return 0
}

func bool2ptr(v bool) *bool { return &v }
