//go:build linux

package hostile_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/stats"
)

// The routing attack: anonymous peers fill the subscription index with
// the most patterns they may hold, every one of which can match topics
// they may not read (a `#` among them), hoping to see a restricted topic
// or to slow its delivery to the agent.
const (
	restrictedTopic = "events.process.lifecycle" // restricted: procmond publishes, the agent reads
	publicTopic     = "events.process.anomaly"   // public: anonymous peers read it too
	anonSubscribers = 5
	routingWindow   = 2048 // messages in flight from procmond to the agent
)

// anonymousPatterns are anonymous subscriber k's max_subscriptions
// patterns: `#` and distinct others like `+.k0-n1.#` and `events.k0-n2.#`.
// An anonymous peer may subscribe to them because each can also match a
// public topic (`events.+.anomaly`), so the broker accepts them and
// checks every delivery; none can match anything else it may read.
func anonymousPatterns(k int) []string {
	ps := []string{"#"}
	for n := 1; len(ps) < maxSubscriptions; n++ {
		if n%2 == 0 {
			ps = append(ps, fmt.Sprintf("+.k%d-n%d.#", k, n))
		} else {
			ps = append(ps, fmt.Sprintf("events.k%d-n%d.#", k, n))
		}
	}
	return ps
}

// routingRig is procmond publishing to the agent, and the anonymous
// subscribers added to it.
type routingRig struct {
	b        *broker
	pub      *eventbus.Client
	agent    *eventbus.Client
	got      chan *eventbus.Message // what the agent received, in order
	anon     []*eventbus.Subscription
	anonConn []*eventbus.Client
	payload  []byte
}

func newRoutingRig(tb testing.TB, b *broker) *routingRig {
	tb.Helper()
	r := &routingRig{b: b, got: make(chan *eventbus.Message, routingWindow), payload: make([]byte, 128)}
	r.agent = b.agent(tb, "agent")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// The handler runs on the client's reader; the publisher takes from
	// got before it has routingWindow messages in flight, so it never
	// blocks long.
	if _, err := r.agent.SubscribeFunc(ctx, func(m *eventbus.Message) { r.got <- m }, restrictedTopic); err != nil {
		tb.Fatal(err)
	}
	r.pub = b.procmond(tb, "procmond")
	return r
}

// addAnonymous connects anonSubscribers anonymous clients, each holding
// anonymousPatterns in one subscription.
func (r *routingRig) addAnonymous(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for k := range anonSubscribers {
		c := r.b.dial(tb, fmt.Sprintf("anon-%d", k))
		sub, err := c.Subscribe(ctx, anonymousPatterns(k)...)
		if err != nil {
			tb.Fatalf("anonymous subscriber %d: %v", k, err)
		}
		r.anon, r.anonConn = append(r.anon, sub), append(r.anonConn, c)
	}
}

// stream publishes n messages on restrictedTopic as procmond, with at
// most routingWindow in flight, and checks that the agent receives each
// once, in order, none missed.
func (r *routingRig) stream(tb testing.TB, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	next := 0
	receive := func() {
		select {
		case m := <-r.got:
			if seq, err := strconv.Atoi(string(m.Payload[:8])); err != nil || seq != next || m.Missed != 0 {
				tb.Fatalf("the agent received %q (missed %d); want message %d, none missed", m.Payload[:8], m.Missed, next)
			}
			next++
		case <-ctx.Done():
			tb.Fatalf("the agent received %d of %d messages", next, n)
		}
	}
	for i := range n {
		copy(r.payload, fmt.Sprintf("%08d", i))
		if err := r.pub.Publish(ctx, restrictedTopic, r.payload); err != nil {
			tb.Fatal(err)
		}
		if i >= routingWindow-1 {
			receive()
		}
	}
	for next < n {
		receive()
	}
}

// TestRoutingIsolation: five anonymous connections each subscribe the
// most patterns a connection may hold (max_subscriptions, 10,000), `#`
// and 9,999 others that can match restricted topics too; then procmond
// publishes on a restricted topic.
//
// Bound: the anonymous subscribers receive none of it (their first
// message is a later public marker), the broker counts no drop for them,
// and the agent receives every message, in order, none missed.
func TestRoutingIsolation(t *testing.T) {
	n := 5000
	if raceEnabled {
		n = 2000
	}
	b := startBroker(t)
	r := newRoutingRig(t, b)
	r.addAnonymous(t)
	r.stream(t, n)
	ctx := testCtx(t)
	if err := r.pub.Publish(ctx, publicTopic, []byte("marker")); err != nil {
		t.Fatal(err)
	}
	// Per-publisher order: any restricted message routed to an anonymous
	// subscriber would arrive before the marker.
	for k, sub := range r.anon {
		select {
		case m := <-sub.C:
			if m.Topic != publicTopic || string(m.Payload) != "marker" || m.Missed != 0 {
				t.Errorf("anonymous subscriber %d first received %s %q (missed %d); want only the marker on %s", k, m.Topic, m.Payload, m.Missed, publicTopic)
			}
		case <-ctx.Done():
			t.Fatalf("anonymous subscriber %d never received the public marker", k)
		}
		if len(sub.C) != 0 || sub.Missed() != 0 {
			t.Errorf("anonymous subscriber %d holds %d more messages, missed %d; want none", k, len(sub.C), sub.Missed())
		}
	}
	s := snapshot(t, r.agent)
	anon := connsNamed(s, "anon-")
	if len(anon) != anonSubscribers {
		t.Fatalf("stats list %d anonymous subscribers; want %d", len(anon), anonSubscribers)
	}
	for _, c := range anon {
		if c.Dropped != 0 || c.Delivered > 1 || c.Subscriptions != 1 {
			t.Errorf("anonymous subscriber %s: %d delivered, %d dropped, %d subscriptions; want at most the marker, none dropped, 1",
				c.ClientName, c.Delivered, c.Dropped, c.Subscriptions)
		}
	}
	if got := patternsHeld(s); got < anonSubscribers*maxSubscriptions {
		t.Errorf("stats show %d subscribed patterns; want at least %d", got, anonSubscribers*maxSubscriptions)
	}
	if s.Dropped != 0 {
		t.Errorf("broker dropped %d messages; want none", s.Dropped)
	}
	t.Logf("%d messages procmond -> agent, all received, with %d patterns held; the anonymous subscribers received only the marker; broker RSS %s",
		n, patternsHeld(s), mib(s.RSSBytes))
}

// patternsHeld counts the subscriptions' patterns in s.
func patternsHeld(s stats.Snapshot) int {
	n := 0
	for _, p := range s.Patterns {
		n += p.Subscribers
	}
	return n
}

// BenchmarkRoutingIsolation measures the procmond -> agent delivery rate
// of a broker process, without and then with five anonymous subscribers
// holding 50,000 patterns that can match the topic (`#` among them) but
// may not read it. The ratio of the two msg/s is what those
// subscriptions cost a publish; docs/SECURITY.md §7 says nothing.
//
//	go test -run '^$' -bench RoutingIsolation -benchtime 5000x -count 3 ./integration/hostile/
func BenchmarkRoutingIsolation(b *testing.B) {
	r := newRoutingRig(b, startBroker(b))
	bench := func(b *testing.B) {
		start := time.Now()
		r.stream(b, b.N)
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
	}
	const warmUp = 10 * routingWindow // untimed: each case starts from a broker in steady state
	r.stream(b, warmUp)
	b.Run("without", bench)
	r.addAnonymous(b)
	r.stream(b, warmUp)
	b.Run(fmt.Sprintf("with-%d-anonymous-patterns", anonSubscribers*maxSubscriptions), bench)
}
