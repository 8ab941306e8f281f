package broker

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/transport"
)

// closedWithin reports whether s.C is closed, discarding what it still
// holds, waiting at most testTimeout.
func closedWithin(s *eventbus.Subscription) bool {
	deadline := time.After(testTimeout)
	for {
		select {
		case _, ok := <-s.C:
			if !ok {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func TestUnsubscribe(t *testing.T) {
	b, path := startBroker(t, Config{})
	for _, inProc := range []bool{false, true} {
		t.Run(map[bool]string{false: "socket", true: "in process"}[inProc], func(t *testing.T) {
			var c *eventbus.Client
			if inProc {
				c = inProcess(t, b)
			} else {
				c = dial(t, path)
			}
			gone := subscribe(t, c, "unsub.#")
			kept := subscribe(t, c, "unsub.x")
			var calls atomic.Int32
			fn, err := c.SubscribeFunc(testCtx(t), func(*eventbus.Message) { calls.Add(1) }, "unsub.+")
			if err != nil {
				t.Fatal(err)
			}
			publish(t, c, "unsub.x", []byte("1"))
			settle(t, c, c)
			if got := calls.Load(); got != 1 {
				t.Fatalf("handler called %d times; want 1", got)
			}

			for _, s := range []*eventbus.Subscription{gone, fn} {
				if err := s.Unsubscribe(testCtx(t)); err != nil {
					t.Fatalf("Unsubscribe: %v", err)
				}
			}
			if !closedWithin(gone) {
				t.Errorf("C not closed after Unsubscribe")
			}
			if fn.C != nil {
				t.Errorf("handler subscription has a channel")
			}
			st := b.Stats()
			if n := findPattern(st, "unsub.#") + findPattern(st, "unsub.+"); n != 0 {
				t.Errorf("broker still lists %d subscribers of the unsubscribed patterns", n)
			}

			publish(t, c, "unsub.x", []byte("2"))
			settle(t, c, c)
			if got := calls.Load(); got != 1 {
				t.Errorf("handler called %d times; want 1 (no calls after Unsubscribe)", got)
			}
			var payloads []string
			for _, m := range drain(kept) {
				payloads = append(payloads, string(m.Payload))
			}
			if !slices.Equal(payloads, []string{"1", "2"}) {
				t.Errorf("remaining subscription received %q; want [1 2]", payloads)
			}
			if err := gone.Unsubscribe(testCtx(t)); err != nil {
				t.Errorf("second Unsubscribe = %v; want nil", err)
			}
		})
	}
}

func TestClientClose(t *testing.T) {
	b, path := startBroker(t, Config{})
	for _, inProc := range []bool{false, true} {
		t.Run(map[bool]string{false: "socket", true: "in process"}[inProc], func(t *testing.T) {
			var c *eventbus.Client
			if inProc {
				c = inProcess(t, b, eventbus.WithName("closing"))
			} else {
				c = dial(t, path, eventbus.WithName("closing"))
			}
			s1 := subscribe(t, c, "close.a")
			s2 := subscribe(t, c, "close.#")
			if err := c.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			for i, s := range []*eventbus.Subscription{s1, s2} {
				if !closedWithin(s) {
					t.Errorf("subscription %d: C not closed by Close", i)
				}
			}
			calls := []struct {
				name string
				err  func() error
			}{
				{"Subscribe", func() error { _, err := c.Subscribe(testCtx(t), "close.b"); return err }},
				{"SubscribeFunc", func() error { _, err := c.SubscribeFunc(testCtx(t), func(*eventbus.Message) {}, "close.b"); return err }},
				{"Publish", func() error { return c.Publish(testCtx(t), "close.a", nil) }},
				{"Flush", func() error { return c.Flush(testCtx(t)) }},
				{"Stats", func() error { _, err := c.Stats(testCtx(t)); return err }},
			}
			for _, call := range calls {
				if err := call.err(); !errors.Is(err, eventbus.ErrClientClosed) {
					t.Errorf("%s after Close = %v; want %v", call.name, err, eventbus.ErrClientClosed)
				}
			}
			if err := c.Close(); err != nil {
				t.Errorf("second Close = %v; want nil", err)
			}
			waitFor(t, "the broker to drop the closed client", func() bool {
				_, open := findConn(b.Stats(), "closing")
				return !open
			})
			if n := findPattern(b.Stats(), "close.#"); n != 0 {
				t.Errorf("broker lists %d subscribers of a closed client's pattern; want 0", n)
			}
		})
	}
}

// TestReconnect: a client whose broker goes away reports eventbus.ErrDisconnected
// while it has no connection, then reconnects to a new broker on the same
// path and its subscriptions work again.
func TestReconnect(t *testing.T) {
	path := testutil.SocketPath(t)
	a, err := New(open(Config{}))
	if err != nil {
		t.Fatal(err)
	}
	runA := testutil.ServeAt(t, a, path)

	disconnected := make(chan error, 10)
	reconnected := make(chan struct{}, 10)
	c := dial(t, path, eventbus.WithBackoff(time.Millisecond, 20*time.Millisecond),
		eventbus.WithDisconnectHandler(func(err error) { disconnected <- err }),
		eventbus.WithReconnectHandler(func() { reconnected <- struct{}{} }))
	s := subscribe(t, c, "re.#")
	fn := make(chan *eventbus.Message, 10)
	if _, err := c.SubscribeFunc(testCtx(t), func(m *eventbus.Message) { fn <- m }, "re.x"); err != nil {
		t.Fatal(err)
	}

	a.Close()
	if err := runA.Wait(t); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("broker A's Serve = %v; want %v", err, ErrBrokerClosed)
	}
	select {
	case <-disconnected:
	case <-time.After(testTimeout):
		t.Fatalf("no disconnect reported within %v", testTimeout)
	}
	// No broker listens now: operations fail, none silently.
	if err := c.Publish(testCtx(t), "re.x", []byte("lost")); !errors.Is(err, eventbus.ErrDisconnected) {
		t.Errorf("Publish while disconnected = %v; want %v", err, eventbus.ErrDisconnected)
	}
	if _, err := c.Ping(testCtx(t)); !errors.Is(err, eventbus.ErrDisconnected) {
		t.Errorf("Ping while disconnected = %v; want %v", err, eventbus.ErrDisconnected)
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Errorf("Flush while disconnected, with nothing to confirm = %v; want nil", err)
	}
	if _, err := eventbus.Dial(testCtx(t), path); !errors.Is(err, transport.ErrNoBroker) {
		t.Errorf("Dial with no broker = %v; want %v", err, transport.ErrNoBroker)
	}

	bb, err := New(open(Config{}))
	if err != nil {
		t.Fatal(err)
	}
	testutil.ServeAt(t, bb, path)
	select {
	case <-reconnected:
	case <-time.After(testTimeout):
		t.Fatalf("no reconnect within %v", testTimeout)
	}
	flush(t, c) // the restoring SUBSCRIBEs went first
	if n := findPattern(bb.Stats(), "re.#"); n != 1 {
		t.Errorf("broker B lists %d subscribers of re.#; want 1 (restored)", n)
	}

	pub := inProcess(t, bb)
	publish(t, pub, "re.x", []byte("after"))
	if m := recv(t, s); m.Topic != "re.x" || string(m.Payload) != "after" {
		t.Errorf("old subscription received %q %q; want re.x after", m.Topic, m.Payload)
	}
	select {
	case m := <-fn:
		if string(m.Payload) != "after" {
			t.Errorf("old handler received %q; want after", m.Payload)
		}
	case <-time.After(testTimeout):
		t.Errorf("old handler subscription received nothing after reconnect")
	}
	// And the client publishes again.
	publish(t, c, "re.y", []byte("mine"))
	if m := recv(t, s); m.Topic != "re.y" {
		t.Errorf("received %q; want re.y", m.Topic)
	}
	if err := errors.Join(drainErrs(s)...); err != nil {
		t.Error(err)
	}
}

// TestReconnectOff: without reconnection a lost broker closes the client.
func TestReconnectOff(t *testing.T) {
	b, path := startBroker(t, Config{})
	c := dial(t, path, eventbus.WithReconnect(false))
	s := subscribe(t, c, "x")
	b.Close()
	if !closedWithin(s) {
		t.Fatalf("C not closed after the broker went away")
	}
	if err := c.Publish(testCtx(t), "x", nil); !errors.Is(err, eventbus.ErrClientClosed) {
		t.Errorf("Publish = %v; want %v", err, eventbus.ErrClientClosed)
	}
}

// TestInProcessAfterBrokerClose: the in-process client cannot reconnect to
// a stopped broker; its operations then fail with ErrBrokerClosed.
func TestInProcessAfterBrokerClose(t *testing.T) {
	b, _ := startBroker(t, Config{})
	c := inProcess(t, b)
	s := subscribe(t, c, "x")
	b.Close()
	if !closedWithin(s) {
		t.Fatalf("C not closed after the broker closed")
	}
	for name, err := range map[string]error{
		"Publish":   c.Publish(testCtx(t), "x", nil),
		"Subscribe": func() error { _, err := c.Subscribe(testCtx(t), "y"); return err }(),
	} {
		if !errors.Is(err, eventbus.ErrClientClosed) || !errors.Is(err, ErrBrokerClosed) {
			t.Errorf("%s = %v; want it to match %v and %v", name, err, eventbus.ErrClientClosed, ErrBrokerClosed)
		}
	}
	if _, err := eventbus.Dial(testCtx(t), "", eventbus.InProcess(b)); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("Broker.Client after Close = %v; want %v", err, ErrBrokerClosed)
	}
}
