//go:build linux

package loss

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/wire"
)

// TestStalledSubscriberCannotHoldConfirmations: a subscriber that stops
// reading (SIGSTOP) holds up the confirmation of every publish routed to
// it, since a publish is confirmed once written to every matching
// subscriber's socket. The broker's write_timeout must cut it off, so that
// an honest publisher's Flush still returns nil, with nothing lost, well
// before its own deadline, while the stalled subscriber is still stopped;
// the honest subscriber gets everything, and the stalled one, resumed, is
// told by a gap notice (the same broker: BrokerRestarted false) that it
// missed messages.
func TestStalledSubscriberCannotHoldConfirmations(t *testing.T) {
	const (
		writeTimeout = time.Second
		n            = 20000 // of 256 bytes: 5 MB, far more than a stopped reader's socket holds
	)
	path := testutil.SocketPath(t)
	b := startBroker(t, "broker", path, "-write-timeout", writeTimeout.String())
	stalled := startSub(t, "stalled", path, nil, "-n", strconv.Itoa(n))
	cont := stop(t, stalled)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	pc := dial(t, ctx, path, "pub")
	sc := dial(t, ctx, path, "sub", eventbus.WithChannelSize(1<<16))
	sub, err := sc.Subscribe(ctx, streamTopic)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	want := map[int]bool{}
	for i := range n {
		p := make([]byte, 256)
		copy(p, strconv.Itoa(i)+" ")
		if err := pc.Publish(ctx, streamTopic, p); err != nil {
			t.Fatalf("publish #%d: %v", i, err)
		}
		want[i] = true
	}
	published := time.Since(start)
	if err := pc.Flush(ctx); err != nil {
		t.Fatalf("Flush with a stalled subscriber: %v", err)
	}
	took := time.Since(start)
	t.Logf("published %d messages in %v; Flush returned nil %v after the first, the stalled subscriber still stopped",
		n, published.Round(time.Millisecond), took.Round(time.Millisecond))
	// A bound, not a measurement: the stall is cut off write_timeout after
	// the broker's write to it blocked, which is early in the stream.
	if limit := published + 5*writeTimeout; took > limit {
		t.Errorf("Flush took %v; want at most %v (the stream's %v plus 5 x write_timeout)", took, limit, published)
	}
	closed := regexp.MustCompile(`msg="connection closed" conn=\d+ pid=` + strconv.Itoa(stalled.Pid()) + ` .*reason="slow consumer"`)
	b.Stderr.WaitMatch(t, closed, waitTimeout)
	expect(t, ctx, sc, sub, want)

	cont()
	gap := stalled.WaitLine(t, "gap ", waitTimeout)
	if f := fields(gap); f["restarted"] != "false" {
		t.Errorf("stalled subscriber's gap notice %q; want BrokerRestarted false: the same broker cut it off", gap)
	}
	stalled.Signal(t, syscall.SIGTERM)
	stalled.WaitOK(t, waitTimeout)
	d := parseDigest(t, stalled, n)
	if d.unique >= n || d.dups != 0 {
		t.Errorf("stalled subscriber: %s; want fewer than %d numbers (it was cut off), none twice", truncate(d.line, 300), n)
	}
	t.Logf("stalled subscriber, resumed: %s; %s", gap, truncate(d.line, 200))
}

// TestForgedSessionCannotSuppress: subscribers drop resent duplicates by
// publisher session and sequence, so a peer that learns a publisher's
// session (every delivered message names it) could try to silence that
// publisher by publishing under its session with sequence numbers ahead
// of it. The key includes the publisher's pid, which the broker takes from
// the kernel: the forgeries arrive as another publisher's messages, and
// every one of the victim's later messages still reaches the subscriber.
func TestForgedSessionCannotSuppress(t *testing.T) {
	const n = 2000
	path := testutil.SocketPath(t)
	startBroker(t, "broker", path)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sc := dial(t, ctx, path, "sub", eventbus.WithChannelSize(1<<16))
	sub, err := sc.Subscribe(ctx, streamTopic)
	if err != nil {
		t.Fatal(err)
	}
	victim := startPub(t, "victim", path, "-n", strconv.Itoa(n), "-allow", strconv.Itoa(n/2))

	// The victim's first half names its session and pid.
	var session uint64
	var pid int
	for i := range n / 2 {
		m := recv(t, sub)
		if m.Sequence != uint64(i)+1 || string(m.Payload) != strconv.Itoa(i) {
			t.Fatalf("victim's message %d: payload %q, sequence %d", i, m.Payload, m.Sequence)
		}
		session, pid = m.PublisherSession, m.PublisherPID
	}
	if pid != victim.Pid() {
		t.Fatalf("victim's messages name pid %d; the victim is %d", pid, victim.Pid())
	}

	// The forger claims the session and publishes the victim's next
	// sequence numbers, and one far beyond them.
	raw := testutil.DialRaw(t, path)
	raw.Write(wire.AppendOpening(nil, wire.TypeHello, &wire.Hello{ClientName: "forger", SessionId: session}))
	raw.ReadHandshake()
	var forged []uint64
	for s := uint64(n/2 + 1); s <= n; s++ {
		forged = append(forged, s)
	}
	forged = append(forged, 1<<62) // last: the forger's own later copies would be dropped behind it
	var frames []byte
	for _, s := range forged {
		frames = wire.AppendPublish(frames, &wire.Envelope{Topic: streamTopic, Payload: fmt.Appendf(nil, "forged %d", s),
			PublishedAt: time.Now().UnixNano(), Sequence: s}, nil)
	}
	raw.Write(frames)
	for range forged {
		m := recv(t, sub)
		if !strings.HasPrefix(string(m.Payload), "forged ") || m.PublisherPID != os.Getpid() || m.PublisherSession != session {
			t.Fatalf("forged message arrived as payload %q from pid %d session %x; want the forger's pid %d, the claimed session %x",
				m.Payload, m.PublisherPID, m.PublisherSession, os.Getpid(), session)
		}
	}

	// The victim goes on: none of its messages may be taken for a copy.
	fmt.Fprintf(victim.Stdin, "allow %d\n", n)
	victim.WaitOK(t, waitTimeout)
	if l := lineOf(t, victim, "flush "); l != "flush ok" {
		t.Errorf("victim's Flush: %s", l)
	}
	for i := n / 2; i < n; i++ {
		m := recv(t, sub)
		if m.PublisherPID != pid || m.Sequence != uint64(i)+1 || string(m.Payload) != strconv.Itoa(i) {
			t.Fatalf("victim's message %d: payload %q, sequence %d, pid %d", i, m.Payload, m.Sequence, m.PublisherPID)
		}
	}
	if d := sub.Duplicates(); d != 0 {
		t.Errorf("the subscriber dropped %d messages as duplicates; there were none", d)
	}
}

// recv returns sub's next message, failing the test after waitTimeout.
func recv(t *testing.T, sub *eventbus.Subscription) *eventbus.Message {
	t.Helper()
	select {
	case m, ok := <-sub.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		return m
	case <-time.After(waitTimeout):
		t.Fatalf("no message within %v", waitTimeout)
		return nil
	}
}
