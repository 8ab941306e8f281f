package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/stats"
	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

func limitCount(s stats.Snapshot, name string) uint64 {
	for _, l := range s.Limits {
		if l.Limit == name {
			return l.Count
		}
	}
	return 0
}

// TestReservedConnections: anonymous peers cannot take the slots kept for
// registered components, which still connect once anonymous ones are
// refused.
func TestReservedConnections(t *testing.T) {
	b, path := startBroker(t, Config{MaxConnections: 5, ReservedConnections: 2, Policy: procmondPolicy(t)})
	for i := range 3 {
		dial(t, path, eventbus.WithName("anon"), eventbus.WithReconnect(false))
		_ = i
	}
	_, err := eventbus.Dial(testCtx(t), path, eventbus.WithReconnect(false))
	if !errors.Is(err, eventbus.ErrTooManyConnections) || !strings.Contains(err.Error(), "reserved_connections") {
		t.Fatalf("fourth anonymous Dial = %v; want ErrTooManyConnections naming reserved_connections", err)
	}
	for range 2 {
		dial(t, path, eventbus.WithComponent("procmond"), eventbus.WithReconnect(false))
	}
	st := b.Stats()
	if n := limitCount(st, "reserved_connections"); n != 1 {
		t.Errorf("reserved_connections enforced %d times in stats; want 1 (%+v)", n, st.Limits)
	}
	if st.Connections != 5 {
		t.Errorf("%d connections; want 5 (3 anonymous, 2 procmond)", st.Connections)
	}
}

// TestHandshakeEviction: with every slot taken by connections that never
// say hello, a client still gets in, and the oldest of them is closed.
func TestHandshakeEviction(t *testing.T) {
	b, path := startBroker(t, Config{MaxConnections: 3, HandshakeTimeout: time.Minute})
	var raws []*testutil.Raw
	for range 3 {
		raws = append(raws, testutil.DialRaw(t, path))
	}
	waitFor(t, "three connections accepted", func() bool { return b.Stats().Connections == 3 })
	c := dial(t, path, eventbus.WithReconnect(false))
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatalf("client among squatting handshakes: %v", err)
	}
	raws[0].ExpectClosed() // the oldest
	if n := limitCount(b.Stats(), "max_connections (handshake evicted)"); n != 1 {
		t.Errorf("handshake evictions in stats = %d; want 1", n)
	}
	raws[1].Write(wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{ClientName: "late"}))
	raws[1].ReadHandshake() // the others keep their slot
}

// TestMaxConnectionsPerUID: another user's connections are bounded; the
// broker's own user and root are not.
func TestMaxConnectionsPerUID(t *testing.T) {
	b, err := New(open(Config{MaxConnections: 10, MaxConnectionsPerUID: 2}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	add := func(p transport.Peer) error {
		client, server := net.Pipe()
		t.Cleanup(func() { client.Close(); server.Close() })
		_, refusal := b.addConn(newConn(b, server, p, false))
		if refusal != nil {
			return refusal
		}
		return nil
	}
	other := transport.Peer{UID: 4242, GID: 4242, PID: 7}
	for i := range 2 {
		if err := add(other); err != nil {
			t.Fatalf("connection %d of uid 4242: %v", i+1, err)
		}
	}
	err = add(other)
	if !errors.Is(err, wire.ErrTooManyConnections) || !strings.Contains(err.Error(), "max_connections_per_uid") || !strings.Contains(err.Error(), "4242") {
		t.Errorf("third connection of uid 4242 = %v; want a refusal naming the user and max_connections_per_uid", err)
	}
	for i := range 4 {
		if err := add(inProcessPeer()); err != nil {
			t.Errorf("connection %d of the broker's own user: %v", i+1, err)
		}
	}
	if n := limitCount(b.Stats(), "max_connections_per_uid"); n != 1 {
		t.Errorf("max_connections_per_uid in stats = %d; want 1", n)
	}
}

// TestIdleConnectionsClosed: past idle_timeout a connection that does
// nothing is closed; one with a subscription or a wait is not.
func TestIdleConnectionsClosed(t *testing.T) {
	b, path := startBroker(t, Config{IdleTimeout: time.Hour})
	idle := testutil.HandshakeRaw(t, path)
	sub := dial(t, path, eventbus.WithReconnect(false))
	s := subscribe(t, sub, "idle.#")
	waiter := dial(t, path, eventbus.WithReconnect(false))
	waitDone := make(chan error, 1)
	go func() {
		_, err := waiter.Wait(testCtx(t), "never", correlation.EventCount(1))
		waitDone <- err
	}()
	waitFor(t, "the broker to hold the wait", func() bool { return b.Tracker().Stats().Waiters == 1 })

	b.closeIdle(time.Now().Add(2 * time.Hour)) // the janitor's check, two timeouts on
	idle.ExpectClosed()
	pub := dial(t, path)
	publish(t, pub, "idle.x", nil)
	if m := recv(t, s); m.Topic != "idle.x" {
		t.Errorf("subscriber received %q; want idle.x", m.Topic)
	}
	if err := waiter.Flush(testCtx(t)); err != nil {
		t.Errorf("waiting client after the idle check: %v", err)
	}
	if n := limitCount(b.Stats(), "idle_timeout"); n != 1 {
		t.Errorf("idle_timeout in stats = %d; want 1", n)
	}
	waiter.Close()
	<-waitDone
}

// TestLineLimiter: one key gets its lines per second and no more; the
// next line after the window, or a flush, says how many were suppressed.
func TestLineLimiter(t *testing.T) {
	var out bytes.Buffer
	var counts limitCounts
	l := newLineLimiter(slog.New(slog.NewTextHandler(&out, nil)), 2, &counts)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for range 5 {
		l.log(slog.LevelWarn, "1000", "connection refused")
	}
	l.log(slog.LevelWarn, "2000", "connection refused") // another source has its own budget
	if got := strings.Count(out.String(), "connection refused"); got != 3 {
		t.Fatalf("logged %d lines; want 2 for uid 1000 and 1 for uid 2000:\n%s", got, out.String())
	}
	now = now.Add(time.Second)
	l.log(slog.LevelWarn, "1000", "connection refused")
	if !strings.Contains(out.String(), "suppressed=3") {
		t.Errorf("the line after the window does not say 3 were suppressed:\n%s", out.String())
	}
	for range 4 {
		l.log(slog.LevelWarn, "1000", "connection refused")
	}
	now = now.Add(time.Second)
	l.flush()
	if !strings.Contains(out.String(), "similar log lines suppressed") || !strings.Contains(out.String(), "suppressed=3 limit=log_lines_per_second") {
		t.Errorf("flush did not report the 3 suppressed lines:\n%s", out.String())
	}
	if n := counts[limitLogLines].Load(); n != 6 {
		t.Errorf("suppressed lines counted %d; want 6", n)
	}
}

// TestMaxSubscriptionsPerUID: one user's patterns are bounded across its
// connections, and unsubscribing gives them back.
func TestMaxSubscriptionsPerUID(t *testing.T) {
	b, path := startBroker(t, Config{MaxSubscriptions: 3, MaxSubscriptionsPerUID: 4})
	c1, c2 := dial(t, path), dial(t, path)
	s := subscribe(t, c1, "a", "b", "c")
	subscribe(t, c2, "d")
	_, err := c2.Subscribe(testCtx(t), "e")
	if !errors.Is(err, eventbus.ErrTooManySubscriptions) || !strings.Contains(err.Error(), "max_subscriptions_per_uid") {
		t.Fatalf("fifth pattern of one user = %v; want ErrTooManySubscriptions naming max_subscriptions_per_uid", err)
	}
	if err := s.Unsubscribe(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	subscribe(t, c2, "e", "f")
	if n := limitCount(b.Stats(), "max_subscriptions_per_uid"); n != 1 {
		t.Errorf("max_subscriptions_per_uid in stats = %d; want 1", n)
	}
}

// TestAnonymousQueueSmaller: an anonymous peer's queue is bounded by
// max_pending_bytes_anonymous, a registered component's by
// max_pending_bytes.
func TestAnonymousQueueSmaller(t *testing.T) {
	b, path := startBroker(t, Config{Policy: procmondPolicy(t), MaxPendingBytesAnonymous: 3 << 20})
	anon := dial(t, path, eventbus.WithName("anon"))
	reg := dial(t, path, eventbus.WithName("reg"), eventbus.WithComponent("procmond"))
	flush(t, anon, reg)
	bounds := map[string]int{}
	b.mu.Lock()
	for c := range b.conns {
		c.out.mu.Lock()
		bounds[c.clientName] = c.out.maxBytes
		c.out.mu.Unlock()
	}
	b.mu.Unlock()
	if bounds["anon"] != 3<<20 || bounds["reg"] != DefaultMaxPendingBytes {
		t.Errorf("queue bounds: anonymous %d, procmond %d; want %d and %d", bounds["anon"], bounds["reg"], 3<<20, DefaultMaxPendingBytes)
	}
}
