package eventbus

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"daemoneye.dev/eventbus/broker"
	"daemoneye.dev/eventbus/internal/testutil"
)

// confirmRig is a publisher, a fast subscriber and a subscriber whose
// handler blocks: once its socket is full, the broker queues for it, and
// the publisher's confirmations wait (write_timeout is an hour here).
type confirmRig struct {
	pub, fastC *Client
	fast       *Subscription
	release    func()
}

func newConfirmRig(t *testing.T, pubOpts ...ClientOption) *confirmRig {
	t.Helper()
	_, path := startBroker(t, broker.Config{WriteTimeout: time.Hour})
	r := &confirmRig{fastC: dial(t, path, WithChannelSize(1<<16))}
	r.fast = subscribe(t, r.fastC, "r.#")
	stuck := dial(t, path)
	block := make(chan struct{})
	var once sync.Once
	r.release = func() { once.Do(func() { close(block) }) }
	t.Cleanup(r.release) // before the clients close: cleanups run last first
	if _, err := stuck.SubscribeFunc(testCtx(t), func(*Message) { <-block }, "r.#"); err != nil {
		t.Fatal(err)
	}
	r.pub = dial(t, path, pubOpts...)
	return r
}

const rigMessages = 2000 // of 1 KiB: far more than the stuck socket takes, less than the resend buffer

// publishAll publishes numbered messages and waits until the fast
// subscriber has each, once and in order.
func (r *confirmRig) publishAll(t *testing.T) {
	t.Helper()
	payload := make([]byte, 1<<10)
	for i := range rigMessages {
		binary.BigEndian.PutUint64(payload, uint64(i))
		publish(t, r.pub, "r.x", payload)
	}
	for i := range rigMessages {
		m := recvMsg(t, r.fast)
		if got := binary.BigEndian.Uint64(m.Payload); got != uint64(i) {
			t.Fatalf("fast subscriber got message %d; want %d", got, i)
		}
		if m.Sequence != uint64(i)+1 || m.PublisherSession == 0 {
			t.Fatalf("message %d: Sequence %d, PublisherSession %x; want %d and a session", i, m.Sequence, m.PublisherSession, i+1)
		}
	}
}

// dropConn cuts the publisher's connection and returns the range of its
// unconfirmed publishes at that moment, and how many of them it kept.
func (r *confirmRig) dropConn(t *testing.T) (first, last, kept uint64) {
	t.Helper()
	c := r.pub
	c.mu.Lock()
	first, last, kept = c.doneSeq+1, c.lastSeq, uint64(len(c.retain.live()))
	c.conn.nc.Close()
	c.mu.Unlock()
	if last < first {
		t.Fatalf("every publish is confirmed already (%d): the stuck subscriber holds nothing back", last)
	}
	return first, last, kept
}

func recvMsg(t *testing.T, s *Subscription) *Message {
	t.Helper()
	select {
	case m, ok := <-s.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		return m
	case <-time.After(testutil.Timeout):
		t.Fatalf("no message within %v", testutil.Timeout)
	}
	return nil
}

// TestResendDropsDuplicates: after a reconnect to the same broker, the
// publishes not yet confirmed are sent again, as many as the resend buffer
// kept; the subscriber that had them drops the copies, everyone hears of
// the gap, and the publishes not kept are reported lost.
func TestResendDropsDuplicates(t *testing.T) {
	for _, tt := range []struct {
		name   string
		buffer int
	}{{"all kept", DefaultResendBuffer}, {"buffer full", 256 << 10}} {
		t.Run(tt.name, func(t *testing.T) { testResend(t, tt.buffer) })
	}
}

func testResend(t *testing.T, buffer int) {
	r := newConfirmRig(t, WithResendBuffer(buffer))
	gaps := subscribe(t, r.pub, "unrelated.#")
	r.publishAll(t)
	first, last, kept := r.dropConn(t)
	if buffer == DefaultResendBuffer && kept != last-first+1 || buffer < DefaultResendBuffer && (kept == 0 || kept > uint64(buffer>>10)) {
		t.Fatalf("%d of %d unconfirmed publishes kept with a %d-byte resend buffer", kept, last-first+1, buffer)
	}

	select {
	case g := <-gaps.Gaps():
		if g.BrokerRestarted || g.Epoch != g.PrevEpoch || g.Epoch == 0 {
			t.Errorf("gap after a reconnect to the same broker: %+v; want BrokerRestarted false, one epoch", g)
		}
	case <-time.After(testutil.Timeout):
		t.Fatal("no gap notice after the reconnect")
	}
	// The resends were queued before the gap notice: pub's PONG follows
	// their routing, and the fast subscriber's PONG their delivery.
	if _, err := r.pub.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	settle(t, r.fastC)
	if got := r.fast.Duplicates(); got != kept {
		t.Fatalf("fast subscriber dropped %d duplicates; want the %d resent (%d-%d)", got, kept, last-kept+1, last)
	}
	select {
	case m := <-r.fast.C:
		t.Fatalf("fast subscriber received message %d (sequence %d) a second time", binary.BigEndian.Uint64(m.Payload), m.Sequence)
	default:
	}
	r.release()
	err := r.pub.Flush(testCtx(t))
	var lost *LostError
	switch notKept := last - first + 1 - kept; {
	case notKept == 0 && err != nil:
		t.Errorf("Flush once the stuck subscriber reads = %v; want nil: the resent publishes are confirmed", err)
	case notKept > 0 && (!errors.As(err, &lost) || lost.Count != notKept || lost.First != first || lost.Last != first+notKept-1):
		t.Errorf("Flush = %v; want the %d publishes not kept (%d-%d) lost", err, notKept, first, first+notKept-1)
	}
}

// TestLostCounted: with resending off, the publishes unconfirmed when the
// connection fails are reported, exactly, by Flush.
func TestLostCounted(t *testing.T) {
	handled := make(chan error, 10)
	r := newConfirmRig(t, WithResendBuffer(0), WithErrorHandler(func(err error) { handled <- err }))
	r.publishAll(t)
	first, last, _ := r.dropConn(t)
	err := r.pub.Flush(testCtx(t))
	var lost *LostError
	if !errors.As(err, &lost) || !errors.Is(err, ErrPublishLost) || !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Flush after the connection failed = %v; want a *LostError matching ErrPublishLost and ErrDisconnected", err)
	}
	if lost.Count != last-first+1 || lost.First != first || lost.Last != last {
		t.Errorf("LostError %d (%d-%d); want %d (%d-%d)", lost.Count, lost.First, lost.Last, last-first+1, first, last)
	}
	select {
	case e := <-handled:
		if !errors.As(e, &lost) || lost.Count != last-first+1 {
			t.Errorf("error handler got %v; want the same loss", e)
		}
	case <-time.After(testutil.Timeout):
		t.Error("error handler not told of the loss")
	}
	if err := r.pub.Flush(testCtx(t)); err != nil {
		t.Errorf("second Flush = %v; want nil (a loss is reported once)", err)
	}
}

// TestConfirmWaits: Publish with Confirm returns once the broker is done
// with the message, which needs every subscriber to take it; until then it
// honours ctx. Close reports what is still unconfirmed.
func TestConfirmWaits(t *testing.T) {
	r := newConfirmRig(t)
	r.publishAll(t)
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	if err := r.pub.Publish(ctx, "r.x", []byte("one"), Confirm()); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnconfirmed) {
		t.Fatalf("Publish(Confirm) while a subscriber holds the queue = %v; want %v and %v", err, context.DeadlineExceeded, ErrUnconfirmed)
	}
	ctx2, cancel2 := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel2()
	if err := r.pub.Flush(ctx2); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnconfirmed) {
		t.Fatalf("Flush while a subscriber holds the queue = %v; want %v and %v", err, context.DeadlineExceeded, ErrUnconfirmed)
	}
	r.release()
	if err := r.pub.Publish(testCtx(t), "r.x", []byte("two"), Confirm()); err != nil {
		t.Fatalf("Publish(Confirm) once the subscriber reads = %v; want nil", err)
	}

	// Unconfirmed at Close: counted.
	r2 := newConfirmRig(t)
	r2.publishAll(t)
	r2.pub.mu.Lock()
	want := r2.pub.lastSeq - r2.pub.doneSeq
	r2.pub.mu.Unlock()
	var lost *LostError
	if err := r2.pub.Close(); !errors.As(err, &lost) || lost.Count < 1 || lost.Count > want {
		t.Errorf("Close with %d unconfirmed = %v; want a *LostError for 1 to %d", want, err, want)
	}
}

func TestDuplicate(t *testing.T) {
	var s Subscription
	steps := []struct {
		pid        int32
		session    uint64
		seq        uint64
		duplicated bool
	}{
		{1, 10, 1, false}, {1, 10, 2, false}, {1, 10, 2, true}, {1, 10, 1, true},
		{2, 10, 1, false}, // another process, the same session number
		{1, 11, 1, false}, // another session of the same process
		{1, 10, 5, false}, // a gap (drops) is not a duplicate
		{1, 10, 3, true}, {2, 10, 2, false},
	}
	for i, st := range steps {
		if got := s.duplicate(st.pid, st.session, st.seq); got != st.duplicated {
			t.Errorf("step %d: duplicate(%d, %d, %d) = %v; want %v", i, st.pid, st.session, st.seq, got, st.duplicated)
		}
	}
	if s.Duplicates() != 3 {
		t.Errorf("Duplicates = %d; want 3", s.Duplicates())
	}
	// Bounded, forgetting the session silent longest: one that keeps
	// publishing among many new ones is remembered.
	for i := range 2 * maxSeenPublishers { // random eviction would likely hit it
		s.duplicate(int32(100+i), 1, 1)
		s.duplicate(1, 10, uint64(6+i))
	}
	if len(s.seen) > maxSeenPublishers {
		t.Errorf("%d publishers remembered; want at most %d", len(s.seen), maxSeenPublishers)
	}
	if !s.duplicate(1, 10, 6) {
		t.Error("the active session was forgotten among new ones: its resent copy got through")
	}
}

// TestWriteTimeoutFreesConfirmations: a subscriber that takes nothing for
// write_timeout is closed as a slow consumer, counted, and the publisher's
// Flush then completes: no stopped peer holds confirmations for longer.
func TestWriteTimeoutFreesConfirmations(t *testing.T) {
	b, path := startBroker(t, broker.Config{WriteTimeout: 200 * time.Millisecond})
	stuck := dial(t, path, WithReconnect(false))
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	if _, err := stuck.SubscribeFunc(testCtx(t), func(*Message) { <-block }, "r.#"); err != nil {
		t.Fatal(err)
	}
	pub := dial(t, path)
	payload := make([]byte, 1<<10)
	for range rigMessages {
		publish(t, pub, "r.x", payload)
	}
	if err := pub.Flush(testCtx(t)); err != nil {
		t.Fatalf("Flush = %v; want nil once the stuck subscriber is closed", err)
	}
	var hits uint64
	for _, l := range b.Stats().Limits {
		if l.Limit == "write_timeout" {
			hits = l.Count
		}
	}
	if hits != 1 {
		t.Errorf("write_timeout enforced %d times; want 1 (%v)", hits, b.Stats().Limits)
	}
}
