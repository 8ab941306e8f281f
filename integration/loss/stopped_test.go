//go:build linux

package loss

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/testutil"
)

// Deadlines of TestStoppedBrokerHonoursDeadline: each call gets deadline,
// and must return within slack after it.
const (
	deadline = 200 * time.Millisecond
	slack    = 50 * time.Millisecond
)

// TestStoppedBrokerHonoursDeadline SIGSTOPs the broker under a client of
// this process: the client's 1 MiB write buffer fills (publishes go on
// until one blocks), and then Publish, Publish with Confirm and Flush must
// each give up with ctx's error when ctx's deadline passes, within 50ms;
// so must Flush and a confirmed Publish that wait for the broker's answer
// with the buffer not full. After SIGCONT every publish that returned nil
// is confirmed and reaches a subscriber, and none that returned ctx's
// error while waiting for room does: it was not taken.
func TestStoppedBrokerHonoursDeadline(t *testing.T) {
	path := testutil.SocketPath(t)
	b := startBroker(t, "broker", path)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c := dial(t, ctx, path, "pub")
	sc := dial(t, ctx, path, "sub", eventbus.WithChannelSize(1<<16))
	sub, err := sc.Subscribe(ctx, streamTopic)
	if err != nil {
		t.Fatal(err)
	}
	// payload i is the number i, padded to 4 KiB so that the buffer
	// fills in a few hundred publishes.
	payload := func(i int) []byte {
		p := make([]byte, 4096)
		copy(p, strconv.Itoa(i)+" ")
		return p
	}

	cont := stop(t, b)
	resume := func() { cont() } // the current stop's
	taken := map[int]bool{}
	next := 0
	// publish publishes the next number with opts under a deadline, and
	// returns how long after the deadline it returned, and its error.
	publish := func(opts ...eventbus.PublishOption) (time.Duration, error) {
		return timed(t, ctx, resume, func(ctx context.Context) error {
			return c.Publish(ctx, streamTopic, payload(next), opts...)
		})
	}
	flush := func() (time.Duration, error) { return timed(t, ctx, resume, c.Flush) }
	// Fill the buffer: the kernel's socket buffer, then the client's MiB.
	var blocked error
	var late time.Duration
	for filled := 0; blocked == nil; filled += 4096 {
		if filled > 64<<20 {
			t.Fatalf("published %d bytes to a stopped broker without blocking", filled)
		}
		var err error
		if late, err = publish(); err != nil {
			blocked = err
			break
		}
		taken[next] = true
		next++
	}
	t.Logf("Publish blocked after %d publishes (%d KiB) to the stopped broker", next, next*4)
	check := func(what string, err error, late time.Duration) {
		t.Helper()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s returned %v; want context.DeadlineExceeded", what, err)
		}
		if late > slack {
			t.Errorf("%s returned %v after its deadline; want within %v", what, late.Round(time.Millisecond), slack)
		}
		t.Logf("%s: %v after the deadline: %v", what, late.Round(100*time.Microsecond), err)
	}
	check("Publish with the buffer full", blocked, late)
	late, err = publish(eventbus.Confirm())
	check("Publish(Confirm) with the buffer full", err, late)
	late, err = flush()
	check("Flush with the buffer full", err, late)

	// Resumed, the broker takes everything: every publish that returned
	// nil is confirmed, and none of those that failed was sent.
	cont()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush after SIGCONT: %v", err)
	}
	expect(t, ctx, sc, sub, taken)

	// Stopped again, with room in the buffer: the frames go out, and the
	// calls wait for the broker's answer.
	cont = stop(t, b)
	if _, err := publish(); err != nil {
		t.Fatalf("Publish to the stopped broker with the buffer empty: %v", err)
	}
	taken[next] = true
	next++
	late, err = flush()
	check("Flush waiting for the stopped broker's PONG", err, late)
	late, err = publish(eventbus.Confirm())
	check("Publish(Confirm) waiting for the stopped broker's CONFIRM", err, late)
	taken[next] = true // it was taken: only the wait for its confirmation gave up
	next++
	cont()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush after the second SIGCONT: %v", err)
	}
	expect(t, ctx, sc, sub, taken)
}

// dial connects a client of this process, closed when the test ends.
func dial(t *testing.T, ctx context.Context, path, name string, opts ...eventbus.ClientOption) *eventbus.Client {
	t.Helper()
	c, err := eventbus.Dial(ctx, path, append(opts, eventbus.WithName(name))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close %s: %v", name, err)
		}
	})
	return c
}

// timed calls call with a context whose deadline is deadline away, and
// returns how long after the deadline it returned, and its error. A call
// still blocked long after its deadline fails the test, once resume (of
// the broker) has let it return.
func timed(t *testing.T, ctx context.Context, resume func(), call func(context.Context) error) (time.Duration, error) {
	t.Helper()
	dctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	end, _ := dctx.Deadline()
	done := make(chan error, 1)
	go func() { done <- call(dctx) }()
	select {
	case err := <-done:
		return time.Since(end), err
	case <-time.After(deadline + 10*time.Second):
	}
	resume()
	select {
	case err := <-done:
		t.Fatalf("a call was still blocked 10s after its deadline; it returned %v once the broker resumed", err)
	case <-time.After(waitTimeout):
		t.Fatalf("a call was still blocked 10s after its deadline, and %v after the broker resumed", waitTimeout)
	}
	return 0, nil
}

// expect checks that sub has received exactly the numbers in want since
// the last call, and empties want: its client pings the broker first, so that everything
// the broker confirmed to publishers is in sub.C by then.
func expect(t *testing.T, ctx context.Context, sc *eventbus.Client, sub *eventbus.Subscription, want map[int]bool) {
	t.Helper()
	if _, err := sc.Ping(ctx); err != nil {
		t.Fatalf("subscriber's ping: %v", err)
	}
	got := map[int]bool{}
	for len(sub.C) > 0 {
		m := <-sub.C
		var i int
		for i < len(m.Payload) && m.Payload[i] != ' ' {
			i++
		}
		n, err := strconv.Atoi(string(m.Payload[:i]))
		if err != nil || got[n] || m.Missed != 0 {
			t.Errorf("subscriber got payload %q (missed %d) twice or unparsable", m.Payload[:i], m.Missed)
		}
		got[n] = true
	}
	for n := range want {
		if !got[n] {
			t.Errorf("publish #%d returned nil but never reached the subscriber", n)
		}
	}
	for n := range got {
		if !want[n] {
			t.Errorf("publish #%d returned an error but reached the subscriber", n)
		}
	}
	clear(want)
}
