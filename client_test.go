package eventbus

import (
	"bufio"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

// White-box tests of the client against a real broker over a real socket.

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testutil.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// startBroker serves a broker with cfg, and an open policy unless cfg has
// one, on a fresh socket until the test ends.
func startBroker(t testing.TB, cfg broker.Config) (*broker.Broker, string) {
	t.Helper()
	if cfg.Policy == nil {
		cfg.Policy = acl.Open()
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	return b, testutil.Serve(t, b).Path
}

func dial(t testing.TB, path string, opts ...ClientOption) *Client {
	t.Helper()
	c, err := Dial(testCtx(t), path, opts...)
	if err != nil {
		t.Fatalf("Dial(%q): %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func subscribe(t testing.TB, c *Client, patterns ...string) *Subscription {
	t.Helper()
	s, err := c.Subscribe(testCtx(t), patterns...)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", patterns, err)
	}
	return s
}

func publish(t testing.TB, c *Client, topicName string, payload []byte) {
	t.Helper()
	if err := c.Publish(testCtx(t), topicName, payload); err != nil {
		t.Fatalf("Publish(%q): %v", topicName, err)
	}
}

// settle: after it the broker has routed everything pub sent and each
// subscriber holds what was routed to it (its PONG follows its deliveries).
func settle(t testing.TB, pub *Client, subs ...*Client) {
	t.Helper()
	for _, c := range append([]*Client{pub}, subs...) {
		if err := c.Flush(testCtx(t)); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
}

func drainTopics(s *Subscription) []string {
	var out []string
	for {
		select {
		case m, ok := <-s.C:
			if !ok {
				return out
			}
			out = append(out, m.Topic)
		default:
			return out
		}
	}
}

// TestFlushReturnsRefusals: publishes the broker refuses are reported by
// the next Flush, joined, and only once.
func TestFlushReturnsRefusals(t *testing.T) {
	const limit = 1024
	_, path := startBroker(t, broker.Config{MaxMessageSize: limit})
	var mu sync.Mutex
	var handled []error
	c := dial(t, path, WithErrorHandler(func(err error) {
		mu.Lock()
		handled = append(handled, err)
		mu.Unlock()
	}))
	sub := dial(t, path)
	s := subscribe(t, sub, "flush.#")

	// Make the client believe the broker accepts more than it does, as a
	// client with a stale idea of the limit would, so that the broker is
	// the one to refuse.
	c.mu.Lock()
	c.limits.MaxMessageSize = 4 * limit
	c.mu.Unlock()

	publish(t, c, "flush.big.one", make([]byte, limit+1))
	publish(t, c, "flush.ok", []byte("fine"))
	publish(t, c, "flush.big.two", make([]byte, 2*limit))
	err := c.Flush(testCtx(t))
	if err == nil {
		t.Fatalf("Flush after two refused publishes = nil; want their errors")
	}
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("Flush = %v; want it to match %v", err, ErrMessageTooLarge)
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Fatalf("Flush = %v; want two joined errors", err)
	}
	for i, want := range []struct{ seq, topic string }{{"#1", "flush.big.one"}, {"#3", "flush.big.two"}} {
		e := joined.Unwrap()[i]
		if !strings.Contains(e.Error(), want.seq) {
			t.Errorf("refusal %d: %q does not name publish %s", i, e, want.seq)
		}
		var we *wire.Error
		if !errors.As(e, &we) || we.Topic != want.topic {
			t.Errorf("refusal %d: %v; want a *wire.Error with Topic %q", i, e, want.topic)
		}
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Errorf("second Flush = %v; want nil (errors are reported once)", err)
	}
	mu.Lock()
	if len(handled) != 2 {
		t.Errorf("error handler got %d errors (%v); want 2", len(handled), handled)
	}
	mu.Unlock()

	// The accepted publish between them was delivered, alone.
	settle(t, c, sub)
	if got := drainTopics(s); !slices.Equal(got, []string{"flush.ok"}) {
		t.Errorf("subscriber received %q; want [flush.ok]", got)
	}
}

// TestRefusedSubscriptionsForgotten: a subscription refused, by the client
// or by the broker, is not kept: it would be restored on reconnect.
func TestRefusedSubscriptionsForgotten(t *testing.T) {
	_, path := startBroker(t, broker.Config{MaxSubscriptions: 1})
	c := dial(t, path)
	if _, err := c.Subscribe(testCtx(t), "a..b"); !errors.Is(err, ErrInvalidPattern) {
		t.Errorf("Subscribe(a..b) = %v; want ErrInvalidPattern", err)
	}
	if _, err := c.Subscribe(testCtx(t), "a", "b"); !errors.Is(err, ErrTooManySubscriptions) {
		t.Errorf("Subscribe(a, b) over max_subscriptions 1 = %v; want ErrTooManySubscriptions", err)
	}
	c.mu.Lock()
	n := len(c.subs)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("client keeps %d refused subscriptions; want 0 (they would be restored on reconnect)", n)
	}
}

// TestRefusedDefinitionDefinedAgain: a publish whose correlation the
// broker refused to define (its topic was forbidden) leaves the ref
// undefined there; the client defines it again with its next publish, so
// that one arrives with its metadata.
func TestRefusedDefinitionDefinedAgain(t *testing.T) {
	p, err := acl.Parse("test", []byte("default_access: public\ntopics:\n  - pattern: events.secret.#\n    access: restricted\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, path := startBroker(t, broker.Config{Policy: p})
	sub := dial(t, path)
	s := subscribe(t, sub, "events.#")
	c := dial(t, path)
	task := correlation.New(correlation.WithStage("scan"))
	opt := WithCorrelation(task)
	if err := c.Publish(testCtx(t), "events.secret.keys", nil, opt); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(testCtx(t)); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Flush after a forbidden publish = %v; want ErrForbidden", err)
	}
	if err := c.Publish(testCtx(t), "events.open.result", []byte("after"), opt); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatalf("Flush after the next publish with the same metadata = %v; want nil", err)
	}
	select {
	case m := <-s.C:
		if m.Topic != "events.open.result" || m.Correlation() == nil || m.Correlation().CorrelationID != task.CorrelationID {
			t.Errorf("received %s with %+v; want events.open.result with the task's metadata", m.Topic, m.Correlation())
		}
	case <-time.After(testutil.Timeout):
		t.Fatal("the publish after the refused definition was not delivered")
	}
}

// stuckBroker completes the handshake with one client and then never
// reads, so the client's writes back up.
func stuckBroker(t *testing.T) string {
	t.Helper()
	path := testutil.SocketPath(t)
	ln, err := transport.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r := wire.NewReader(bufio.NewReader(nc), 1<<20)
		if _, err := wire.ReadHello(r); err != nil {
			return
		}
		nc.Write(wire.AppendOpening(nil, wire.TypeHelloOK, &wire.HelloOK{ConnectionId: 1, MaxMessageSize: 1 << 20}))
		<-t.Context().Done() // and read nothing more
	}()
	return path
}

// TestPublishHonoursContext: with the write buffer full because the
// broker reads nothing, Publish and Flush return at their context's
// deadline instead of waiting for room.
func TestPublishHonoursContext(t *testing.T) {
	c := dial(t, stuckBroker(t), WithReconnect(false))
	payload := make([]byte, 64<<10)
	var err error
	for i := 0; err == nil; i++ {
		ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
		err = c.Publish(ctx, "events.a", payload)
		cancel()
		if i > 10000 {
			t.Fatal("Publish never blocked: the buffer did not fill")
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnconfirmed) {
		t.Fatalf("Publish with a full buffer = %v; want its context's deadline, and not %v: it was not taken", err, ErrUnconfirmed)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	if err := c.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush with a full buffer = %v; want its context's deadline", err)
	}
}

// TestBrokerEpoch: a broker has one epoch for its life, said in the
// handshake and in its statistics; another broker has another.
func TestBrokerEpoch(t *testing.T) {
	b1, path1 := startBroker(t, broker.Config{})
	_, path2 := startBroker(t, broker.Config{})
	c1, c1again, c2 := dial(t, path1), dial(t, path1), dial(t, path2)
	e1 := c1.BrokerEpoch()
	if e1 == 0 || c1again.BrokerEpoch() != e1 {
		t.Errorf("epochs of two clients of one broker: %d, %d; want one, not 0", e1, c1again.BrokerEpoch())
	}
	if e2 := c2.BrokerEpoch(); e2 == e1 || e2 == 0 {
		t.Errorf("epoch of another broker = %d; want another than %d, not 0", e2, e1)
	}
	if s := b1.Stats(); s.Epoch != e1 {
		t.Errorf("Stats().Epoch = %d; want the handshake's %d", s.Epoch, e1)
	}
}

// TestCallsHonourContext: against a broker that answers nothing, every
// blocking call returns ctx's error within 50 ms of its deadline.
func TestCallsHonourContext(t *testing.T) {
	c := dial(t, stuckBroker(t), WithReconnect(false))
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Subscribe", func(ctx context.Context) error { _, err := c.Subscribe(ctx, "a.#"); return err }},
		{"Ping", func(ctx context.Context) error { _, err := c.Ping(ctx); return err }},
		{"Flush", c.Flush},
		{"Stats", func(ctx context.Context) error { _, err := c.Stats(ctx); return err }},
		{"History", func(ctx context.Context) error { _, err := c.History(ctx, HistoryQuery{}); return err }},
		{"Timeline", func(ctx context.Context) error { _, err := c.Timeline(ctx, "root"); return err }},
		{"Workflows", func(ctx context.Context) error { _, err := c.Workflows(ctx); return err }},
		{"Wait", func(ctx context.Context) error {
			_, err := c.Wait(ctx, "c1", correlation.EventCount(1))
			return err
		}},
		{"Publish(Confirm)", func(ctx context.Context) error { return c.Publish(ctx, "a.b", nil, Confirm()) }},
	}
	const deadline = 200 * time.Millisecond
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(testCtx(t), deadline)
			defer cancel()
			start := time.Now()
			err := tt.call(ctx)
			late := time.Since(start) - deadline
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s = %v; want %v", tt.name, err, context.DeadlineExceeded)
			}
			if late > 50*time.Millisecond {
				t.Errorf("%s returned %v after its deadline; want within 50ms", tt.name, late)
			}
		})
	}
}
