package broker

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/transport"
)

// shutdownRig is a served broker with a publisher and a subscriber whose
// handler is blocked, so messages are queued for it in the broker.
type shutdownRig struct {
	b        *Broker
	run      *testutil.Running
	pub      *eventbus.Client
	slow     *clientSlow
	pubDisc  chan error
	queuedAt int // messages queued for the subscriber when the rig was ready
}

func newShutdownRig(t *testing.T, n int) *shutdownRig {
	b, err := New(open(Config{}))
	if err != nil {
		t.Fatal(err)
	}
	r := &shutdownRig{b: b, run: testutil.Serve(t, b), pubDisc: make(chan error, 10)}
	r.pub = dial(t, r.run.Path, eventbus.WithName("pub"), eventbus.WithDisconnectHandler(func(err error) { r.pubDisc <- err }))
	r.slow = newClientSlow(t, func(o ...eventbus.ClientOption) *eventbus.Client { return dial(t, r.run.Path, o...) }, "q.#")
	for i := range n {
		publish(t, r.pub, "q.data", seqPayload(uint64(i), slowPayload))
	}
	ping(t, r.pub) // flush would wait for the blocked subscriber
	c, _ := findConn(b.Stats(), "slow")
	r.queuedAt = c.QueuedMessages
	return r
}

func expectErr(t *testing.T, what string, ch <-chan error, want error) {
	t.Helper()
	select {
	case err := <-ch:
		if !errors.Is(err, want) {
			t.Errorf("%s: disconnected with %v; want %v", what, err, want)
		}
	case <-time.After(testTimeout):
		t.Errorf("%s: no disconnect within %v", what, testTimeout)
	}
}

// TestShutdownDrains: Shutdown delivers what is queued, tells every client
// it is shutting down, and stops Serve.
func TestShutdownDrains(t *testing.T) {
	const n = 2000
	r := newShutdownRig(t, n)
	if r.queuedAt == 0 {
		t.Fatalf("no messages queued for the blocked subscriber; the test cannot show draining")
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		shut <- r.b.Shutdown(ctx)
	}()
	// Shutdown waits for the subscriber to take its messages.
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while %d messages were queued for a blocked subscriber", err, r.queuedAt)
	case <-r.run.Done():
		// Serve stops at once: accepting ends before draining.
	}
	r.slow.release()
	for i := range n {
		select {
		case m := <-r.slow.msgs:
			if got := seqOf(t, m); got != uint64(i) || m.Missed != 0 {
				t.Fatalf("message %d: sequence %d, missed %d; want %d, 0", i, got, m.Missed, i)
			}
		case <-time.After(testTimeout):
			t.Fatalf("subscriber received %d of %d messages (%d were queued at shutdown)", i, n, r.queuedAt)
		}
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown = %v; want nil", err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("Shutdown did not return within %v", testTimeout)
	}
	expectErr(t, "subscriber", r.slow.discErr, eventbus.ErrShuttingDown)
	expectErr(t, "publisher", r.pubDisc, eventbus.ErrShuttingDown)
	if err := r.run.Wait(t); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("Serve = %v; want %v", err, ErrBrokerClosed)
	}
	checkStopped(t, r.b, r.run.Path)
}

// checkStopped checks that a stopped broker closed everything and its
// listener removed the socket file.
func checkStopped(t *testing.T, b *Broker, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after stop: Lstat = %v; want it removed", err)
	}
	if st := b.Stats(); st.Connections != 0 {
		t.Errorf("Connections after stop = %d; want 0", st.Connections)
	}
	if _, err := eventbus.Dial(testCtx(t), path); !errors.Is(err, transport.ErrNoBroker) {
		t.Errorf("Dial after stop = %v; want %v", err, transport.ErrNoBroker)
	}
	if _, err := eventbus.Dial(testCtx(t), "", eventbus.InProcess(b)); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("Broker.Client after stop = %v; want %v", err, ErrBrokerClosed)
	}
	ln, err := transport.Listen(testutil.SocketPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(ln); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("Serve after stop = %v; want %v", err, ErrBrokerClosed)
	}
	if _, err := ln.Accept(); err == nil {
		t.Errorf("Serve after stop left its listener open")
	}
}

// TestShutdownExpiredContext: Shutdown with a context that has ended
// still returns and closes everything.
func TestShutdownExpiredContext(t *testing.T) {
	tests := []struct {
		name    string
		blocked bool // a subscriber that cannot drain
	}{
		{"idle", false},
		{"blocked subscriber", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b *Broker
			var run *testutil.Running
			if tt.blocked {
				r := newShutdownRig(t, 2000)
				b, run = r.b, r.run
			} else {
				var err error
				if b, err = New(open(Config{})); err != nil {
					t.Fatal(err)
				}
				run = testutil.Serve(t, b)
				dial(t, run.Path)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			done := make(chan error, 1)
			go func() { done <- b.Shutdown(ctx) }()
			select {
			case err := <-done:
				if tt.blocked && !errors.Is(err, context.Canceled) {
					t.Errorf("Shutdown = %v; want %v", err, context.Canceled)
				}
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("Shutdown = %v; want nil or %v", err, context.Canceled)
				}
			case <-time.After(testTimeout):
				t.Fatalf("Shutdown with an expired context did not return within %v", testTimeout)
			}
			if err := run.Wait(t); !errors.Is(err, ErrBrokerClosed) {
				t.Errorf("Serve = %v; want %v", err, ErrBrokerClosed)
			}
			checkStopped(t, b, run.Path)
			if err := b.Close(); err != nil {
				t.Errorf("Close after Shutdown = %v; want nil", err)
			}
		})
	}
}

// TestCloseStopsServe: Close cuts connections and Serve returns
// ErrBrokerClosed.
func TestCloseStopsServe(t *testing.T) {
	b, err := New(open(Config{}))
	if err != nil {
		t.Fatal(err)
	}
	run := testutil.Serve(t, b)
	c := dial(t, run.Path, eventbus.WithReconnect(false))
	s := subscribe(t, c, "x")
	if err := b.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := run.Wait(t); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("Serve = %v; want %v", err, ErrBrokerClosed)
	}
	if !closedWithin(s) {
		t.Errorf("client subscription not closed after broker Close")
	}
	checkStopped(t, b, run.Path)
	if err := b.Shutdown(testCtx(t)); err != nil {
		t.Errorf("Shutdown after Close = %v; want nil", err)
	}
}
