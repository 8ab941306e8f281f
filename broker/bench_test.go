package broker

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

// benchRig is a broker with subscriber connections whose writers drain
// into io.Discard over in-memory pipes, and a publisher connection driven
// directly: the broker's publish→deliver path with no client in the way.
type benchRig struct {
	b     *Broker
	pub   *conn
	pipes []net.Conn
	wg    sync.WaitGroup
}

func newBenchRig(b testing.TB, subs int, pattern string) *benchRig {
	return newBenchRigPolicy(b, subs, pattern, acl.Open(), acl.InProcessIdentity(inProcessPeer()))
}

// newBenchRigPolicy builds a rig whose broker enforces policy, with the
// publisher holding identity pubID and subscribers being the agent.
func newBenchRigPolicy(b testing.TB, subs int, pattern string, policy *acl.Policy, pubID acl.Identity) *benchRig {
	br, err := New(Config{Policy: policy})
	if err != nil {
		b.Fatal(err)
	}
	rig := &benchRig{b: br}
	for i := 0; i < subs; i++ {
		client, server := net.Pipe()
		c := newConn(br, server, inProcessPeer(), true)
		if _, err := br.addConn(c); err != nil {
			b.Fatal(err)
		}
		c.publisherFields = wire.AppendPublisherFields(nil, 1, 0, "", 0)
		c.identity = acl.InProcessIdentity(inProcessPeer())
		c.access = acl.NewCache(br.policy, c.identity, 0)
		if err := c.subscribe(&wire.Subscribe{SubscriptionId: 1, Patterns: []string{pattern}}); err != nil {
			b.Fatal(err)
		}
		br.goFunc(c.writeFrames)
		rig.pipes = append(rig.pipes, client)
		rig.wg.Add(1)
		go func() {
			defer rig.wg.Done()
			io.Copy(io.Discard, client)
		}()
	}
	_, server := net.Pipe()
	rig.pub = newConn(br, server, inProcessPeer(), true)
	rig.pub.publisherFields = wire.AppendPublisherFields(nil, 2, 0, "procmond", 0)
	rig.pub.identity = pubID
	rig.pub.access = acl.NewCache(br.policy, pubID, 0)
	return rig
}

func (r *benchRig) close() {
	r.b.Close()
	for _, p := range r.pipes {
		p.Close()
	}
	r.wg.Wait()
	r.pub.nc.Close()
}

func publishBody(topicName string, size int) []byte {
	env := &wire.Envelope{Topic: topicName, Payload: make([]byte, size), PublishedAt: time.Now().UnixNano()}
	return wire.AppendFrame(nil, wire.TypePublish, env)[wire.HeaderSize:]
}

// BenchmarkBrokerPublish measures the broker's work for one PUBLISH:
// scan, validate, match, queue for each subscriber, and the writers'
// vectored writes. Steady state is allocation-free.
func BenchmarkBrokerPublish(b *testing.B) {
	for _, subs := range []int{1, 10} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			rig := newBenchRig(b, subs, "events.#")
			defer rig.close()
			rig.publishN(b, publishBody("events.process.lifecycle", 128))
			var dropped uint64
			for c := range rig.b.conns {
				dropped += c.dropped.Load()
			}
			b.ReportMetric(float64(dropped)/float64(b.N*subs)*100, "%dropped")
		})
	}
}

// BenchmarkBrokerPublishCorrelation measures what correlation metadata
// (stage, source, 4 tags) adds to the broker's work for one PUBLISH:
// metadata=ref names metadata defined once on the connection, as the Go
// client sends it (PROTOCOL.md §5.3.1); metadata=repeat sends the
// connection's last metadata in full but the sequence (recognized by one
// comparison); metadata=new changes it every time (decoded, validated,
// every index looked up), cycling through 1,000 correlations. Every
// publish is recorded.
func BenchmarkBrokerPublishCorrelation(b *testing.B) {
	base := func(i int) []byte {
		m := correlation.New(correlation.WithStage("collection"), correlation.WithSource("procmond"),
			correlation.WithTag("investigation_id", fmt.Sprintf("INC-%d", i)), correlation.WithTag("host", "server-01"),
			correlation.WithTag("collector", "procmond"), correlation.WithTag("severity", "high"))
		return wire.AppendCorrelationBase(nil, wireconv.MetadataToWire(&m))
	}
	body := func(f wire.CorrelationFields) []byte {
		env := &wire.Envelope{Topic: "events.process.lifecycle", Payload: make([]byte, 128), PublishedAt: time.Now().UnixNano()}
		return wire.AppendPublish(nil, env, &f)[wire.HeaderSize:]
	}
	b.Run("metadata=none", func(b *testing.B) {
		rig := newBenchRig(b, 1, "events.#")
		defer rig.close()
		rig.publishN(b, publishBody("events.process.lifecycle", 128))
	})
	b.Run("metadata=ref", func(b *testing.B) {
		rig := newBenchRig(b, 1, "events.#")
		defer rig.close()
		rig.pub.handlePublish(body(wire.CorrelationFields{Base: base(0), Seq: 1, Ref: 1, Define: true}))
		rig.pub.frameDone(true)
		rig.publishN(b, body(wire.CorrelationFields{Seq: 2, Ref: 1}))
		if got := rig.b.tracker.Stats().Recorded; got != uint64(b.N)+1 {
			b.Fatalf("recorded %d publishes; want %d: publishes by ref were refused", got, b.N+1)
		}
	})
	b.Run("metadata=repeat", func(b *testing.B) {
		rig := newBenchRig(b, 1, "events.#")
		defer rig.close()
		rig.publishN(b, body(wire.CorrelationFields{Base: base(0), Seq: 1}))
	})
	b.Run("metadata=new", func(b *testing.B) {
		rig := newBenchRig(b, 1, "events.#")
		defer rig.close()
		bodies := make([][]byte, 1000)
		for i := range bodies {
			bodies[i] = body(wire.CorrelationFields{Base: base(i), Seq: 1})
		}
		rig.publishEach(b, bodies)
	})
}

// BenchmarkBrokerPublishPolicy compares the publish path with every topic
// public against a 50-rule policy under which the publisher is a
// registered component and the topic restricted: the cost of enforcement
// once each connection's decision cache is warm (issue 4: within 5%).
func BenchmarkBrokerPublishPolicy(b *testing.B) {
	rules50 := fiftyRulePolicy(b)
	procmond := acl.Identity{Component: "procmond", UID: uint32(os.Geteuid()), PID: 1, Registered: true}
	for _, bc := range []struct {
		name   string
		policy *acl.Policy
		id     acl.Identity
	}{
		{"open", acl.Open(), acl.Identity{UID: uint32(os.Geteuid()), PID: 1}},
		{"rules=50", rules50, procmond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rig := newBenchRigPolicy(b, 1, "events.#", bc.policy, bc.id)
			defer rig.close()
			rig.publishN(b, publishBody("events.process.lifecycle", 128))
			if got := rig.b.Stats().Denials; len(got) != 0 {
				b.Fatalf("denials %v: the publish was refused, so nothing was measured", got)
			}
		})
	}
}

// fiftyRulePolicy is a policy of 50 rules: 30 topic rules and 20 grants.
func fiftyRulePolicy(b *testing.B) *acl.Policy {
	var y strings.Builder
	y.WriteString("default_access: restricted\ntopics:\n")
	for i := 0; i < 28; i++ {
		fmt.Fprintf(&y, "  - pattern: events.kind%d.#\n    access: restricted\n", i)
	}
	y.WriteString("  - pattern: events.+.anomaly\n    access: public\n  - pattern: control.health.#\n    access: public\n")
	fmt.Fprintf(&y, "components:\n  procmond:\n    uids: [%d]\n    publish: [events.process.#", os.Geteuid())
	for i := 0; i < 17; i++ {
		fmt.Fprintf(&y, ", events.kind%d.+", i)
	}
	y.WriteString("]\n    deny_publish: [events.process.secret]\n    subscribe: [control.collector.task.process.#]\n")
	p, err := acl.Parse("rules50", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	if n := len(p.Rules()); n < 50 {
		b.Fatalf("policy has %d rules; want at least 50", n)
	}
	return p
}

// publishN handles b.N PUBLISH frames of body as the publisher's reader
// would, waking subscribers every 64 frames and waiting for the queues to
// drain every 4096, so the benchmark measures delivery, not drops.
func (r *benchRig) publishN(b *testing.B, body []byte) { r.publishEach(b, [][]byte{body}) }

// publishEach is publishN cycling through bodies.
func (r *benchRig) publishEach(b *testing.B, bodies [][]byte) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.pub.readAt = int64(i)
		r.pub.handlePublish(bodies[i%len(bodies)])
		r.pub.frameDone(i%64 == 63)
		if i%4096 == 4095 {
			r.waitDrained()
		}
	}
	r.pub.wakeSubscribers()
	r.waitDrained()
	b.StopTimer()
}

// waitDrained waits for the subscribers' queues to empty, so the
// benchmark measures delivery rather than drops.
func (r *benchRig) waitDrained() {
	for {
		busy := false
		r.b.mu.Lock()
		for c := range r.b.conns {
			if m, _ := c.out.pending(); m > 0 {
				busy = true
			}
		}
		r.b.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// BenchmarkEndToEnd publishes from one client to one subscribing client
// through a broker over a real Unix socket and reports delivered msgs/s.
// policy=open has every topic public; policy=rules50 enforces a 50-rule
// policy with a registered publisher and the agent subscribing (issue 4:
// within 5% of open).
func BenchmarkEndToEnd(b *testing.B) {
	token := []byte("0123456789abcdef0123456789abcdef")
	pubOpts := []eventbus.ClientOption{eventbus.WithComponent("procmond")}
	subOpts := []eventbus.ClientOption{eventbus.WithComponent("agent"), eventbus.WithToken(token)}
	// Both policies admit the same identities, so envelopes are the same
	// size and only the rules differ.
	open, err := acl.Parse("open", []byte(fmt.Sprintf("default_access: public\ncomponents:\n  procmond:\n    uids: [%d]\n", os.Geteuid())))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("policy=open", func(b *testing.B) { endToEnd(b, open.WithAgentToken(token), pubOpts, subOpts) })
	b.Run("policy=rules50", func(b *testing.B) { endToEnd(b, fiftyRulePolicy(b).WithAgentToken(token), pubOpts, subOpts) })
}

// BenchmarkEndToEndCorrelation compares 1 -> 1 delivery with and without
// typical correlation metadata (stage, source, 4 tags), which the broker
// decodes, validates and records (issue 3: within 5%).
func BenchmarkEndToEndCorrelation(b *testing.B) {
	meta := correlation.New(correlation.WithStage("collection"), correlation.WithSource("procmond"),
		correlation.WithTag("investigation_id", "INC-12345"), correlation.WithTag("host", "server-01"),
		correlation.WithTag("collector", "procmond"), correlation.WithTag("severity", "high"))
	b.Run("metadata=none", func(b *testing.B) { endToEndWith(b, acl.Open(), nil, nil, nil, nil) })
	b.Run("metadata=full", func(b *testing.B) {
		endToEndWith(b, acl.Open(), nil, nil, []eventbus.PublishOption{eventbus.WithCorrelation(meta)}, nil)
	})
	// The subscriber also reads every message's metadata, as the agent
	// tracking workflows does.
	b.Run("metadata=full,read", func(b *testing.B) {
		endToEndWith(b, acl.Open(), nil, nil, []eventbus.PublishOption{eventbus.WithCorrelation(meta)}, func(m *eventbus.Message) {
			if m.Correlation() == nil {
				panic("message without its metadata")
			}
		})
	})
}

func endToEnd(b *testing.B, policy *acl.Policy, pubOpts, subOpts []eventbus.ClientOption) {
	endToEndWith(b, policy, pubOpts, subOpts, nil, nil)
}

// endToEndWith publishes b.N messages with publishOpts; the subscriber
// calls read, if not nil, on each.
func endToEndWith(b *testing.B, policy *acl.Policy, pubOpts, subOpts []eventbus.ClientOption, publishOpts []eventbus.PublishOption, read func(*eventbus.Message)) {
	dir, err := os.MkdirTemp("", "ebb")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "b.sock")
	br, err := New(Config{Policy: policy, MessageBufferSize: 1 << 20, MaxPendingBytes: 512 << 20})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := transport.Listen(path)
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); br.Serve(ln) }()
	defer func() { br.Close(); <-served }()

	ctx := context.Background()
	sub, err := eventbus.Dial(ctx, path, append(subOpts, eventbus.WithReconnect(false))...)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	got := make(chan struct{}, 1)
	var n, want int
	var mu sync.Mutex
	s, err := sub.SubscribeFunc(ctx, func(m *eventbus.Message) {
		if read != nil {
			read(m)
		}
		mu.Lock()
		if n++; n == want {
			got <- struct{}{}
		}
		mu.Unlock()
	}, "events.#")
	if err != nil {
		b.Fatal(err)
	}
	pub, err := eventbus.Dial(ctx, path, append(pubOpts, eventbus.WithReconnect(false))...)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	payload := make([]byte, 128)
	mu.Lock()
	want = b.N
	mu.Unlock()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := pub.Publish(ctx, "events.process.lifecycle", payload, publishOpts...); err != nil {
			b.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		b.Fatalf("publishes refused, nothing measured: %v", err)
	}
	select {
	case <-got:
	case <-time.After(time.Minute):
		b.Fatalf("delivered %d of %d (missed %d)", n, b.N, s.Missed())
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// addAnonymousSubscribers adds conns anonymous connections, each holding
// subs subscriptions to `#`, which under the built-in policy can never
// receive a restricted topic.
func (r *benchRig) addAnonymousSubscribers(tb testing.TB, conns, subs int) {
	for i := range conns {
		client, server := net.Pipe()
		c := newConn(r.b, server, transport.Peer{UID: 4000 + uint32(i), GID: 4000, PID: 100 + i}, true)
		if _, err := r.b.addConn(c); err != nil {
			tb.Fatal(err)
		}
		c.identity = acl.Identity{UID: c.peer.UID, PID: c.peer.PID}
		c.access = acl.NewCache(r.b.policy, c.identity, 0)
		for j := range subs {
			if err := c.subscribe(&wire.Subscribe{SubscriptionId: uint64(j + 1), Patterns: []string{"#"}}); err != nil {
				tb.Fatal(err)
			}
		}
		r.pipes = append(r.pipes, client)
	}
}

// BenchmarkRoutingIsolation: procmond's restricted publish to the agent,
// without and with 5 anonymous connections of 10,000 `#` subscriptions
// each; they cannot read the topic, so they must cost the publish
// nothing (docs/SECURITY.md §7). Compare the two in one run.
func BenchmarkRoutingIsolation(b *testing.B) {
	procmond := acl.Identity{Component: "procmond", UID: uint32(os.Geteuid()), PID: 1, Registered: true}
	for _, anon := range []int{0, 5} {
		b.Run(fmt.Sprintf("anonymous-conns=%d", anon), func(b *testing.B) {
			rig := newBenchRigPolicy(b, 1, "events.process.#", acl.DefaultFor(inProcessPeer()), procmond)
			defer rig.close()
			rig.addAnonymousSubscribers(b, anon, 10000)
			rig.publishN(b, publishBody("events.process.lifecycle", 128))
		})
	}
}

// TestRoutingIsolation: anonymous `#` subscriptions live in their class's
// index, which a restricted publish never visits, while the agent's
// subscription is in the main index and receives it.
func TestRoutingIsolation(t *testing.T) {
	procmond := acl.Identity{Component: "procmond", UID: uint32(os.Geteuid()), PID: 1, Registered: true}
	rig := newBenchRigPolicy(t, 1, "events.process.#", acl.DefaultFor(inProcessPeer()), procmond)
	defer rig.close()
	rig.addAnonymousSubscribers(t, 2, 100)
	if n := len(rig.b.routes.main.MatchBytes([]byte("events.process.lifecycle"))); n != 1 {
		t.Errorf("main index matches %d subscriptions; want the agent's alone", n)
	}
	classes := *rig.b.routes.classes.Load()
	if len(classes) != 1 || classes[0].class.String() != "anonymous" {
		t.Fatalf("classes with filtered subscriptions = %v; want anonymous alone", classes)
	}
	if err := classes[0].access.CheckBytes(acl.Subscribe, []byte("events.process.lifecycle")); err == nil {
		t.Error("the anonymous class may read events.process.lifecycle; want it refused, so its index is skipped")
	}
	if n := len(classes[0].index.MatchBytes([]byte("events.process.anomaly"))); n != 200 {
		t.Errorf("anonymous index matches %d subscriptions for a public topic; want all 200", n)
	}
}
