//go:build linux

package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/internal/proctest"
	"daemoneye.dev/eventbus/internal/testutil"
)

// TestNoRespondersFast: a request nobody serves fails with ErrNoResponders
// as soon as the broker has routed it, not at its deadline, even though a
// plain subscriber (which sees it) and a responder on another topic are
// connected. The median over 20 requests, from this process over the real
// socket to a broker process, must be under 10 ms.
func TestNoRespondersFast(t *testing.T) {
	const (
		requests  = 20
		maxMedian = 10 * time.Millisecond
	)
	path := testutil.SocketPath(t)
	startBroker(t, path)
	mon := startSubscribed(t, "monitor", "monitor", nil, "-socket", path)
	startSubscribed(t, "silent", "silent", nil, "-socket", path, "-pattern", "slow.#")
	c := dial(t, path, "requester")

	took := make([]time.Duration, requests)
	for i := range requests {
		// A deadline far past the bound: an answer at the deadline would
		// show as a failed wait, not as a slow success.
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		start := time.Now()
		_, err := c.Request(ctx, "nobody.home", []byte("ask "+strconv.Itoa(i)))
		took[i] = time.Since(start)
		cancel()
		if !errors.Is(err, eventbus.ErrNoResponders) {
			t.Fatalf("request %d to a topic nobody serves = %v; want %v", i, err, eventbus.ErrNoResponders)
		}
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	median := (sorted[requests/2-1] + sorted[requests/2]) / 2
	t.Logf("ErrNoResponders after: median %v, min %v, max %v (all: %v)", median, sorted[0], sorted[requests-1], took)
	if median >= maxMedian {
		t.Errorf("median time to ErrNoResponders %v; want under %v", median, maxMedian)
	}

	// The plain subscriber saw every request as a message it may not
	// answer; the broker counted each as without responders.
	mon.Await(t, waitTimeout, "see every request", func() bool { return len(linesWith(mon, "monitor-reply-error ")) >= requests })
	for _, l := range linesWith(mon, "msg ") {
		if f := fields(l); f["topic"] != "nobody.home" || f["request_id"] == "0" || f["can_reply"] != "false" {
			t.Errorf("monitor saw %q; want each request on nobody.home, with a request id, not answerable", l)
		}
	}
	if rs := requestStats(t, c); rs.NoResponders != requests || rs.Pending != 0 || rs.Replies != 0 || rs.RepliesDropped != 0 {
		t.Errorf("broker request stats %+v; want %d without responders, nothing else", rs, requests)
	}
}

// TestRequestDeadline: a responder that receives the request and never
// answers; the request's 300 ms deadline ends it with ctx's error,
// context.DeadlineExceeded (not ErrRequestTimeout), no earlier than the
// deadline and at most 50 ms after it. Three requests, each checked.
func TestRequestDeadline(t *testing.T) {
	const (
		deadline = 300 * time.Millisecond
		maxLate  = 50 * time.Millisecond
	)
	path := testutil.SocketPath(t)
	startBroker(t, path)
	silent := startSubscribed(t, "silent", "silent", nil, "-socket", path, "-pattern", "slow.#")
	c := dial(t, path, "requester")
	var lates []time.Duration
	for i := range 3 {
		payload := "slow-" + strconv.Itoa(i)
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		_, err := c.Request(ctx, "slow.op", []byte(payload))
		late := time.Since(start) - deadline
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, eventbus.ErrRequestTimeout) {
			t.Errorf("request %d to a silent responder = %v; want %v", i, err, context.DeadlineExceeded)
		}
		if late < 0 || late > maxLate {
			t.Errorf("request %d returned %v after its %v deadline; want between 0 and %v", i, late, deadline, maxLate)
		}
		lates = append(lates, late)
		// The responder had it, answerable: the silence was its own.
		l := silent.WaitLine(t, "got "+payload+" ", waitTimeout)
		if f := fields(l); f["request_id"] == "0" || f["can_reply"] != "true" {
			t.Errorf("silent responder got %q; want a request it may answer", l)
		}
	}
	t.Logf("returned after the %v deadline by: %v", deadline, lates)
}

// secret returns a random string, to recognise in any output.
func secret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

type result struct {
	m   *eventbus.Message
	err error
}

// request issues a request in the background, with a waitTimeout
// deadline; its result arrives on the channel returned.
func request(c *eventbus.Client, topicName string, payload []byte) <-chan result {
	return requestWithin(c, topicName, string(payload), waitTimeout)
}

// TestReplyNotReadable: a third process, subscribed to "#" by the library
// and by a raw connection that prints every frame it is sent, sees the
// request as a plain message but never the reply: the reply's payload, a
// random secret, appears nowhere in its output, though the responder
// publishes a fence after replying on the same connection, which the
// third process does see. Its Reply and ReplyWithError are refused, and
// the request stays unanswered until the responder answers it, with the
// secret.
func TestReplyNotReadable(t *testing.T) {
	path := testutil.SocketPath(t)
	startBroker(t, path)
	reqPayload, replyPayload := secret(t, "request-"), secret(t, "reply-")
	mon := startSubscribed(t, "monitor", "monitor", nil, "-socket", path)
	echo := startSubscribed(t, "echo", "echo", nil, "-socket", path, "-pattern", "svc.#", "-secret", replyPayload, "-fence", "fence.echo")
	c := dial(t, path, "requester")

	res := request(c, "svc.lookup", []byte(reqPayload))
	if l := echo.WaitLine(t, "got ", waitTimeout); l != fmt.Sprintf("got %q request_id=%s can_reply=true", reqPayload, fields(l)["request_id"]) || fields(l)["request_id"] == "0" {
		t.Fatalf("responder got %q; want the request, answerable", l)
	}
	msg := mon.WaitLine(t, "msg ", waitTimeout)
	if want := fmt.Sprintf("msg topic=svc.lookup request_id=%s can_reply=false payload=%q", fields(msg)["request_id"], reqPayload); msg != want || fields(msg)["request_id"] == "0" {
		t.Errorf("monitor saw %q; want %q with a request id", msg, want)
	}
	for _, prefix := range []string{"monitor-reply ", "monitor-reply-error "} {
		if l := mon.WaitLine(t, prefix, waitTimeout); !strings.Contains(l, "not a request this subscription may answer") {
			t.Errorf("monitor's attempt to answer: %q; want it refused", l)
		}
	}
	awaitFrame(t, mon, reqPayload) // the raw connection's DELIVER of the request
	select {
	case r := <-res:
		t.Fatalf("the request was answered (%v, %v) before its responder answered it", r.m, r.err)
	default:
	}

	fmt.Fprintln(echo.Stdin, "answer")
	r := <-res
	if r.err != nil || string(r.m.Payload) != replyPayload || r.m.PublisherPID != echo.Pid() {
		t.Fatalf("Request = %v, %v; want %q from the responder, pid %d", r.m, r.err, replyPayload, echo.Pid())
	}
	echo.WaitLine(t, "fenced err=<nil>", waitTimeout)
	if l := lineOf(t, echo, "replied "); l != "replied err=<nil>" {
		t.Errorf("responder: %q", l)
	}
	// The fence left the responder's connection after the reply: had the
	// broker routed the reply to the monitor, it would be there by now.
	mon.WaitLine(t, "msg topic=fence.echo ", waitTimeout)
	awaitFrame(t, mon, "fence.echo")
	finish(t, mon)
	out := mon.Stdout.String() + mon.Stderr.String()
	if strings.Contains(out, replyPayload) {
		t.Errorf("the monitor's output holds the reply's payload:\n%s", out)
	}
	frames := linesWith(mon, "frame ")
	for _, l := range frames {
		if !strings.HasPrefix(l, "frame type=DELIVER ") {
			t.Errorf("monitor's raw connection got %q; want only DELIVER frames", l)
		}
	}
	if msgs := linesWith(mon, "msg "); len(msgs) != 2 || len(frames) != 2 {
		t.Errorf("monitor saw %d messages and %d raw frames; want 2 of each, the request and the fence:\n%s", len(msgs), len(frames), mon.Stdout.String())
	}
	if rs := requestStats(t, c); rs.Replies != 1 || rs.RepliesDropped != 0 || rs.Pending != 0 {
		t.Errorf("broker request stats %+v; want 1 reply, none dropped: the monitor's refused attempts never reached it", rs)
	}
}

// awaitFrame waits until the monitor's raw connection has printed a
// frame holding s.
func awaitFrame(t *testing.T, mon *proctest.Proc, s string) {
	t.Helper()
	mon.Await(t, waitTimeout, "print a raw frame holding "+s, func() bool {
		for _, l := range linesWith(mon, "frame ") {
			if strings.Contains(l, s) {
				return true
			}
		}
		return false
	})
}

// lineOf returns p's first stdout line starting with prefix, failing the
// test if there is none.
func lineOf(t *testing.T, p *proctest.Proc, prefix string) string {
	t.Helper()
	if l := linesWith(p, prefix); len(l) > 0 {
		return l[0]
	}
	t.Fatalf("%s printed no line starting %q; stdout:\n%s", p.Name, prefix, p.Stdout.Tail(2000))
	return ""
}
