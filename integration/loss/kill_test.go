//go:build linux

package loss

import (
	"strconv"
	"testing"

	"daemoneye.dev/eventbus/internal/testutil"
)

// The stream the broker dies under: 200,000 numbered messages, the
// publisher at most window numbers ahead of the subscriber, and the broker
// killed once the subscriber has killAt.
const (
	streamLen = 200000
	window    = 20000
	killAt    = 50000
)

// TestKillBrokerMidStream SIGKILLs the broker in the middle of a stream,
// reconnection off everywhere, and checks the publisher's account of it
// against what the subscriber received: every publish the publisher saw
// confirmed was received, the unconfirmed ones are exactly the LostError's
// range, the rest were never taken, and nothing arrived twice.
func TestKillBrokerMidStream(t *testing.T) {
	path := testutil.SocketPath(t)
	b := startBroker(t, "broker", path)
	rl := newRelay(window)
	sub := startSub(t, "sub", path, rl.onSubLine, "-n", strconv.Itoa(streamLen), "-reconnect=false")
	pub := startPub(t, "pub", path, "-n", strconv.Itoa(streamLen), "-reconnect=false", "-allow", strconv.Itoa(window))
	rl.attach(pub.Stdin)

	sub.Await(t, waitTimeout, "receive "+strconv.Itoa(killAt)+" messages", func() bool { return rl.received() >= killAt })
	kill(t, b)
	// Let the publisher run into the dead connection: its next publishes
	// fail, and it reports.
	rl.unlimited(streamLen)
	pub.WaitOK(t, waitTimeout)
	sub.WaitOK(t, waitTimeout)

	p := parsePub(t, pub)
	d := parseDigest(t, sub, streamLen)
	t.Logf("publisher: %s; %s", p.stopLine, p.flushLine)
	t.Logf("subscriber: %s", truncate(d.line, 300))

	// The publisher's account. Publish numbered the accepted messages
	// 1..accepted; the stream stopped at the first failure.
	if p.stopped != p.accepted {
		t.Fatalf("publisher accepted %d messages but stopped at #%d: a failed publish is not the first after the accepted ones", p.accepted, p.stopped)
	}
	never := p.never
	if never == 0 {
		t.Fatalf("the publisher published all %d messages: the broker was not killed mid-stream", streamLen)
	}
	confirmed := p.accepted
	if !p.flushOK {
		// The lost publishes are the tail of the accepted ones: every
		// publish before them was confirmed.
		if p.lostLast != p.accepted || p.lostFirst < 1 || p.lostCount != p.lostLast-p.lostFirst+1 {
			t.Fatalf("LostError count=%d first=%d last=%d; want the range ending at the last accepted publish, %d, counted exactly",
				p.lostCount, p.lostFirst, p.lostLast, p.accepted)
		}
		confirmed = p.lostFirst - 1
	}
	lost := p.lostCount // from the LostError: with confirmed, from First, and never, three numbers the publisher reported
	if confirmed+lost+never != streamLen {
		t.Errorf("confirmed %d + lost %d + never published %d = %d; want %d", confirmed, lost, never, confirmed+lost+never, streamLen)
	}

	// Against the subscriber: confirmed means it was written to the
	// subscriber's socket, which outlives the broker.
	if n, first := d.missing(0, confirmed); n > 0 {
		t.Errorf("%d of the %d confirmed messages never reached the subscriber, first %v", n, confirmed, first)
	}
	if n := d.present(p.accepted, streamLen); n > 0 {
		t.Errorf("the subscriber received %d messages the publisher never published", n)
	}
	checkClean(t, d, 0)
	t.Logf("%d confirmed, %d lost of which %d were received anyway, %d never published; the subscriber received %d; broker killed when it had #%d",
		confirmed, lost, d.present(confirmed, p.accepted), never, d.unique, killAt)
}

// checkClean checks what a subscriber reports of its stream: no number
// twice at the application, none dropped (the broker's queues are deep
// enough), every payload a number whose Sequence is its number + 1, one
// publisher; and that its client suppressed at most maxSuppressed resent
// copies.
func checkClean(t *testing.T, d digest, maxSuppressed int) {
	t.Helper()
	if d.dups != 0 {
		t.Errorf("%d message numbers reached the subscriber's application twice", d.dups)
	}
	if d.missed != 0 {
		t.Errorf("the subscriber was told of %d missed messages; the test's queues should drop none", d.missed)
	}
	if d.bad != 0 || d.seqBad != 0 {
		t.Errorf("%d payloads were not stream numbers, %d had a Sequence other than number+1 (first number:sequence %s)",
			d.bad, d.seqBad, d.firstSeqBad)
	}
	if d.unique > 0 && (d.sessions != 1 || d.pids != 1) {
		t.Errorf("messages came from %d sessions and %d pids; want one publisher", d.sessions, d.pids)
	}
	if d.suppressed > maxSuppressed {
		t.Errorf("the subscriber's client suppressed %d duplicates; want at most %d", d.suppressed, maxSuppressed)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
