package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/wire"
)

// TestCorrelationEndToEnd: every metadata field a publisher sets reaches
// subscribers unchanged, over the socket and in process, with sequence
// numbers per correlation and the final flag; the broker records each
// message with the identity it verified.
func TestCorrelationEndToEnd(t *testing.T) {
	b, path := startBroker(t, Config{})
	ctx := testCtx(t)
	sockSub := subscribe(t, dial(t, path), "control.collector.#")
	inSub := subscribe(t, inProcess(t, b), "control.collector.#")
	pub := dial(t, path)

	root := correlation.New(correlation.WithStage("enumeration"), correlation.WithSource("agent"),
		correlation.WithTag("investigation_id", "INC-12345"), correlation.WithTag("host", "server-01"))
	child := root.NewChild(correlation.WithStage("integrity"))
	sends := []struct {
		meta  correlation.Metadata
		final bool
		seq   uint64
	}{{root, false, 1}, {root, true, 2}, {child, false, 1}}
	reused := eventbus.WithCorrelation(root) // an option used twice numbers each use
	for i, s := range sends {
		opts := []eventbus.PublishOption{eventbus.WithCorrelation(s.meta)}
		if i < 2 {
			opts[0] = reused
		}
		if s.final {
			opts = append(opts, eventbus.WithFinal())
		}
		if err := pub.Publish(ctx, "control.collector.task.process", []byte("task"), opts...); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, pub)
	for _, sub := range []*eventbus.Subscription{sockSub, inSub} {
		for i, s := range sends {
			m := recv(t, sub)
			want := s.meta
			want.Sequence = s.seq
			if m.Correlation() == nil {
				t.Fatalf("message %d: Correlation = nil; want %+v", i, want)
			}
			if !sameMetadata(*m.Correlation(), want) || m.Final != s.final {
				t.Errorf("message %d: got %+v final=%v; want %+v final=%v", i, *m.Correlation(), m.Final, want, s.final)
			}
		}
	}

	events := b.Tracker().ByCorrelation(root.CorrelationID)
	if len(events) != 2 {
		t.Fatalf("tracker holds %d events of the root correlation; want 2", len(events))
	}
	if e := events[0]; e.PublisherPID != os.Getpid() || e.Topic != "control.collector.task.process" || string(e.Payload) != "task" {
		t.Errorf("recorded event = pid %d topic %q payload %q; want the verified pid %d and the published topic and payload", e.PublisherPID, e.Topic, e.Payload, os.Getpid())
	}
	timeline := b.Tracker().Timeline(root.RootID)
	if len(timeline) != 3 || timeline[2].Stage != "integrity" || timeline[2].Depth != 1 {
		t.Errorf("timeline of the root = %+v; want 3 entries ending with stage integrity at depth 1", timeline)
	}
	if got := b.Tracker().ByTags(map[string]string{"investigation_id": "INC-12345"}, correlation.Query{}); len(got) != 3 {
		t.Errorf("ByTags(investigation_id=INC-12345) = %d events; want 3", len(got))
	}
}

func sameMetadata(a, b correlation.Metadata) bool {
	if a.CorrelationID != b.CorrelationID || a.ParentID != b.ParentID || a.RootID != b.RootID || a.Sequence != b.Sequence ||
		a.Stage != b.Stage || a.SourceProcess != b.SourceProcess || !a.StartedAt.Equal(b.StartedAt) || len(a.Tags) != len(b.Tags) {
		return false
	}
	for k, v := range b.Tags {
		if a.Tags[k] != v {
			return false
		}
	}
	return true
}

// TestCorrelationInvalidRefused: a limit broken is an error, locally and
// at the broker, and the connection carries on.
func TestCorrelationInvalidRefused(t *testing.T) {
	_, path := startBroker(t, Config{})
	ctx := testCtx(t)
	pub := dial(t, path)
	bad := correlation.New(correlation.WithTag(strings.Repeat("k", correlation.MaxTagKeyBytes+1), "v"))
	err := pub.Publish(ctx, "events.process.lifecycle", nil, eventbus.WithCorrelation(bad))
	if !errors.Is(err, wire.ErrInvalidCorrelation) || !strings.Contains(err.Error(), "tag key too long") {
		t.Fatalf("Publish with a 129-byte tag key = %v; want eventbus.ErrInvalidCorrelation naming the limit", err)
	}

	raw := testutil.HandshakeRaw(t, path)
	raw.Send(wire.TypePublish, &wire.Envelope{Topic: "events.process.lifecycle", Correlation: wireconv.MetadataToWire(&bad)})
	if f := raw.ExpectError(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, false); !strings.Contains(f.Message, "tag key too long") {
		t.Errorf("broker refusal = %q; want it to name the broken limit", f.Message)
	}
	raw.Ping(7)
	if err := pub.Flush(ctx); err != nil {
		t.Errorf("Flush after a refused publish = %v; want nil", err)
	}
}

// TestCorrelationRepeats: the broker and the subscriber recognize metadata
// repeated but for its sequence number and skip decoding it again; every
// message must still arrive, and be recorded, with its own metadata, when
// publishers interleave metadata that differs in one field or a tag.
func TestCorrelationRepeats(t *testing.T) {
	b, path := startBroker(t, Config{})
	ctx := testCtx(t)
	sub := subscribe(t, dial(t, path), "events.#")
	pub := dial(t, path)
	a := correlation.New(correlation.WithStage("collection"), correlation.WithSource("procmond"),
		correlation.WithTag("investigation_id", "INC-1"), correlation.WithTag("host", "server-01"))
	otherTag := a.Clone()
	otherTag.Tags["host"] = "server-02"
	otherStage := a.Clone()
	otherStage.Stage = "analysis"
	child := a.NewChild()
	metas := []correlation.Metadata{a, a, otherTag, otherTag, a, otherStage, child, child, a}
	opts := map[string]eventbus.PublishOption{}
	var want []correlation.Metadata
	seqs := map[string]uint64{}
	for i, m := range metas {
		key := fmt.Sprint(m.Stage, m.Tags, m.CorrelationID)
		if _, ok := opts[key]; !ok || i%2 == 0 { // options reused, and made afresh
			opts[key] = eventbus.WithCorrelation(m)
		}
		if err := pub.Publish(ctx, "events.process.lifecycle", fmt.Append(nil, i), opts[key]); err != nil {
			t.Fatal(err)
		}
		seqs[m.CorrelationID]++
		m.Sequence = seqs[m.CorrelationID]
		want = append(want, m)
	}
	flush(t, pub)
	for i, w := range want {
		m := recv(t, sub)
		if got := m.Correlation(); got == nil || !sameMetadata(*got, w) {
			t.Fatalf("message %d: metadata %+v; want %+v", i, got, w)
		}
	}
	events := b.Tracker().InRange(time.Time{}, time.Time{})
	if len(events) != len(want) {
		t.Fatalf("history holds %d events; want %d", len(events), len(want))
	}
	for i, e := range events {
		if !sameMetadata(e.Metadata, want[i]) {
			t.Errorf("recorded event %d: %+v; want %+v", i, e.Metadata, want[i])
		}
	}
	if got := b.Tracker().ByTags(map[string]string{"host": "server-02"}, correlation.Query{}); len(got) != 2 {
		t.Errorf("ByTags(host=server-02) = %d events; want 2", len(got))
	}

	// The same invalid metadata twice is refused twice: only what passed
	// validation is remembered.
	bad := a.Clone()
	bad.Tags[strings.Repeat("k", correlation.MaxTagKeyBytes+1)] = "v"
	raw := testutil.HandshakeRaw(t, path)
	for range 2 {
		raw.Send(wire.TypePublish, &wire.Envelope{Topic: "events.process.lifecycle", Correlation: wireconv.MetadataToWire(&bad)})
		raw.ExpectError(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, false)
	}
}

// TestMessageCorrelationConcurrent: Correlation builds its value once,
// whichever goroutine asks first, every caller sees the same value, and
// it is the caller's to modify.
func TestMessageCorrelationConcurrent(t *testing.T) {
	_, path := startBroker(t, Config{})
	ctx := testCtx(t)
	sub := subscribe(t, dial(t, path), "events.#")
	pub := dial(t, path)
	meta := correlation.New(correlation.WithTag("k", "v"))
	for range 2 {
		if err := pub.Publish(ctx, "events.a", nil, eventbus.WithCorrelation(meta)); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, pub)
	m, next := recv(t, sub), recv(t, sub)
	got := make(chan *correlation.Metadata, 8)
	for range cap(got) {
		go func() { got <- m.Correlation() }()
	}
	first := <-got
	for range cap(got) - 1 {
		if c := <-got; c != first {
			t.Fatalf("Correlation returned %p and %p", first, c)
		}
	}
	if first == nil || first.CorrelationID != meta.CorrelationID || first.Tags["k"] != "v" || first.Sequence != 1 {
		t.Errorf("Correlation = %+v; want %+v with sequence 1", first, meta)
	}
	// The two messages share their decoded metadata inside the client;
	// what one caller does to its copy is not seen through the other.
	first.Tags["k"] = "changed"
	if c := next.Correlation(); c.Tags["k"] != "v" || c.Sequence != 2 {
		t.Errorf("second message's Correlation = %+v; want tag k=v and sequence 2", c)
	}
	if m := (&eventbus.Message{}); m.Correlation() != nil {
		t.Errorf("a message without metadata has Correlation %+v", m.Correlation())
	}
}

// TestWaitForResults is the seed's agent → collectors pattern: the agent
// publishes a task, two collectors answer with the same correlation and
// mark their result final, and the agent's wait returns both results.
func TestWaitForResults(t *testing.T) {
	// Publishers are told apart by pid and verified component; these two
	// collectors share the test's pid, so each claims its own component.
	user := testutil.UserEntry(t)
	policy, err := acl.Parse("test", []byte(
		"default_access: public\ncomponents:\n  procmond:\n    "+user+"\n  netmond:\n    "+user+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, path := startBroker(t, Config{Policy: policy})
	ctx := testCtx(t)
	agent := inProcess(t, b)
	task := correlation.New(correlation.WithStage("enumeration"), correlation.WithSource("agent"))

	for _, name := range []string{"procmond", "netmond"} {
		c := dial(t, path, eventbus.WithName(name), eventbus.WithComponent(name))
		s := subscribe(t, c, "control.collector.task.process")
		go func() {
			select {
			case m := <-s.C:
				c.Publish(ctx, "events.process.batch", []byte(name), eventbus.WithCorrelation(*m.Correlation()), eventbus.WithFinal())
			case <-time.After(10 * time.Second):
			}
		}()
	}
	if err := agent.Publish(ctx, "control.collector.task.process", []byte("enumerate"), eventbus.WithCorrelation(task)); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	results, err := b.Tracker().Wait(wctx, task.CorrelationID, correlation.FinalPublishers(2))
	if err != nil {
		t.Fatalf("Wait(2 final publishers) = %v after %d events", err, len(results))
	}
	var answers []string
	for _, e := range results {
		if e.Final {
			answers = append(answers, string(e.Payload))
		}
	}
	if len(answers) != 2 {
		t.Errorf("final results = %q; want one from each collector", answers)
	}
}

// TestCorrelationFilters: the broker applies each subscription's filter
// before queueing, for every criterion alone and combined; what a filter
// rejects never crosses the socket (the connection's delivered count).
func TestCorrelationFilters(t *testing.T) {
	b, path := startBroker(t, Config{})
	ctx := testCtx(t)
	u64 := func(v uint64) *uint64 { return &v }
	rootA := correlation.New(correlation.WithStage("enumeration"), correlation.WithTag("investigation_id", "INC-1"), correlation.WithTag("host", "h1"))
	childA := rootA.NewChild(correlation.WithStage("integrity"))
	rootB := correlation.New(correlation.WithStage("enumeration"), correlation.WithTag("investigation_id", "INC-2"))
	// Messages in publish order, named for the expectations below; the
	// client numbers each correlation's messages 1, 2, ...
	msgs := []struct {
		name string
		meta *correlation.Metadata
	}{{"a1", &rootA}, {"a2", &rootA}, {"c1", &childA}, {"b1", &rootB}, {"none", nil}}

	tests := []struct {
		name   string
		filter correlation.Filter
		want   []string
	}{
		{"empty matches all", correlation.Filter{}, []string{"a1", "a2", "c1", "b1", "none"}},
		{"correlation id", correlation.Filter{CorrelationIDs: []string{childA.CorrelationID}}, []string{"c1"}},
		{"parent id", correlation.Filter{ParentIDs: []string{rootA.CorrelationID}}, []string{"c1"}},
		{"root id", correlation.Filter{RootIDs: []string{rootA.RootID}}, []string{"a1", "a2", "c1"}},
		{"stage", correlation.Filter{Stages: []string{"enumeration"}}, []string{"a1", "a2", "b1"}},
		{"required tags", correlation.Filter{RequiredTags: map[string]string{"investigation_id": "INC-1", "host": "h1"}}, []string{"a1", "a2", "c1"}},
		{"any tags", correlation.Filter{AnyTags: map[string]string{"investigation_id": "INC-2", "host": "nope"}}, []string{"b1"}},
		{"sequence range", correlation.Filter{MinSequence: u64(2), MaxSequence: u64(2)}, []string{"a2"}},
		{"combined: root and stage", correlation.Filter{RootIDs: []string{rootA.RootID}, Stages: []string{"integrity"}}, []string{"c1"}},
		{"combined: nothing matches both", correlation.Filter{Stages: []string{"integrity"}, AnyTags: map[string]string{"investigation_id": "INC-2"}}, nil},
	}
	subs := make([]*eventbus.Subscription, len(tests))
	subClients := make([]*eventbus.Client, len(tests))
	for i, tt := range tests {
		subClients[i] = dial(t, path, eventbus.WithName(fmt.Sprintf("filter-%d", i)))
		s, err := subClients[i].SubscribeWith(ctx, eventbus.SubscribeOptions{Patterns: []string{"events.#"}, Filter: &tt.filter})
		if err != nil {
			t.Fatalf("%s: SubscribeWith: %v", tt.name, err)
		}
		subs[i] = s
	}
	pub := dial(t, path)
	for _, m := range msgs {
		var opts []eventbus.PublishOption
		if m.meta != nil {
			opts = append(opts, eventbus.WithCorrelation(*m.meta))
		}
		if err := pub.Publish(ctx, "events.process.lifecycle", []byte(m.name), opts...); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, pub)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for range tt.want {
				got = append(got, string(recv(t, subs[i]).Payload))
			}
			flush(t, subClients[i])
			if extra := drain(subs[i]); len(extra) > 0 || !slicesEqual(got, tt.want) {
				t.Errorf("received %q then %d more; want %q", got, len(extra), tt.want)
			}
			// The broker counts a batch after its write returns, which can
			// be just after the client read it: wait for the count to
			// reach the expected value, then check it is not above it.
			delivered := func() uint64 { c, _ := findConn(b.Stats(), fmt.Sprintf("filter-%d", i)); return c.Delivered }
			waitFor(t, "the broker's delivered count", func() bool { return delivered() >= uint64(len(tt.want)) })
			if conn, _ := findConn(b.Stats(), fmt.Sprintf("filter-%d", i)); conn.Delivered != uint64(len(tt.want)) {
				t.Errorf("broker delivered %d messages to this connection; want %d (filtered ones must not cross the socket)", conn.Delivered, len(tt.want))
			}
		})
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCorrelationFilterInvalid: a filter over the limits is refused.
func TestCorrelationFilterInvalid(t *testing.T) {
	_, path := startBroker(t, Config{})
	ids := make([]string, correlation.MaxFilterValues+1)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	_, err := dial(t, path).SubscribeWith(testCtx(t), eventbus.SubscribeOptions{Patterns: []string{"#"}, Filter: &correlation.Filter{RootIDs: ids}})
	if !errors.Is(err, wire.ErrInvalidCorrelation) {
		t.Errorf("SubscribeWith(%d root ids) = %v; want eventbus.ErrInvalidCorrelation", len(ids), err)
	}
}

// TestCorrelationRefs: the rules of PROTOCOL.md §5.3.1 over a raw
// connection, seen by a Go subscriber and by the history.
func TestCorrelationRefs(t *testing.T) {
	b, path := startBroker(t, Config{})
	sub := subscribe(t, dial(t, path), "events.#")
	a := correlation.New(correlation.WithStage("collection"), correlation.WithTag("host", "h1"))
	other := correlation.New(correlation.WithStage("analysis"))
	bad := a.Clone()
	bad.Tags[strings.Repeat("k", correlation.MaxTagKeyBytes+1)] = "v"
	base := func(m correlation.Metadata) []byte {
		return wire.AppendCorrelationBase(nil, wireconv.MetadataToWire(&m))
	}
	raw := testutil.HandshakeRaw(t, path)
	send := func(topicName, payload string, f *wire.CorrelationFields) {
		t.Helper()
		frame := wire.AppendPublish(nil, &wire.Envelope{Topic: topicName, Payload: []byte(payload)}, f)
		if err := raw.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	expectRefused := func(code wire.ErrorCode, msg string) {
		t.Helper()
		if e := raw.ExpectError(code, false); !strings.Contains(e.Message, msg) {
			t.Errorf("refusal %q; want it to mention %q", e.Message, msg)
		}
	}

	send("events.a", "unknown", &wire.CorrelationFields{Ref: 1, Seq: 1})
	expectRefused(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "correlation ref 1 is not defined on this connection")
	send("events.a", "a1", &wire.CorrelationFields{Base: base(a), Seq: 1, Ref: 1, Define: true})
	send("events.a", "a2", &wire.CorrelationFields{Seq: 2, Ref: 1})
	// A refused publish defines nothing: not even for a refusal of its topic.
	send("$sys.x", "refused", &wire.CorrelationFields{Base: base(other), Seq: 1, Ref: 2, Define: true})
	expectRefused(wire.ErrorCode_ERROR_CODE_RESERVED_TOPIC, "reserved")
	send("events.a", "o2", &wire.CorrelationFields{Seq: 2, Ref: 2})
	expectRefused(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "correlation ref 2 is not defined")
	// Nor does a refused redefinition leave the old one in place.
	send("events.a", "o3", &wire.CorrelationFields{Base: base(other), Seq: 3, Ref: 2, Define: true})
	send("$sys.x", "refused", &wire.CorrelationFields{Base: base(a), Seq: 1, Ref: 2, Define: true})
	expectRefused(wire.ErrorCode_ERROR_CODE_RESERVED_TOPIC, "reserved")
	send("events.a", "o4", &wire.CorrelationFields{Seq: 4, Ref: 2})
	expectRefused(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "correlation ref 2 is not defined")
	// Redefining ref 1; then an invalid definition leaves ref 2 undefined.
	send("events.a", "r1", &wire.CorrelationFields{Base: base(other), Seq: 7, Ref: 1, Define: true})
	send("events.a", "bad", &wire.CorrelationFields{Base: base(bad), Seq: 1, Ref: 2, Define: true})
	expectRefused(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "tag key too long")
	send("events.a", "after bad", &wire.CorrelationFields{Seq: 3, Ref: 2})
	expectRefused(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "correlation ref 2 is not defined")
	send("events.a", "r2", &wire.CorrelationFields{Seq: 8, Ref: 1})
	// In full without a ref: delivered as published, and a connection's
	// refs are unaffected by it.
	send("events.a", "f1", &wire.CorrelationFields{Base: base(a), Seq: 3})
	send("events.a", "f2", &wire.CorrelationFields{Base: base(a), Seq: 4})
	send("events.a", "f3", &wire.CorrelationFields{Base: base(other), Seq: 9})
	send("events.a", "r3", &wire.CorrelationFields{Seq: 10, Ref: 1})
	raw.Ping(1)

	want := []struct {
		payload string
		meta    correlation.Metadata
		seq     uint64
	}{{"a1", a, 1}, {"a2", a, 2}, {"o3", other, 3}, {"r1", other, 7}, {"r2", other, 8},
		{"f1", a, 3}, {"f2", a, 4}, {"f3", other, 9}, {"r3", other, 10}}
	for _, w := range want {
		m := recv(t, sub)
		w.meta.Sequence = w.seq
		if got := m.Correlation(); string(m.Payload) != w.payload || got == nil || !sameMetadata(*got, w.meta) {
			t.Fatalf("received %q with %+v; want %q with %+v", m.Payload, got, w.payload, w.meta)
		}
	}
	if extra := drain(sub); len(extra) > 0 {
		t.Errorf("%d messages more than the %d accepted", len(extra), len(want))
	}
	events := b.Tracker().InRange(time.Time{}, time.Time{})
	if len(events) != len(want) {
		t.Fatalf("history holds %d events; want %d", len(events), len(want))
	}
	for i, e := range events {
		w := want[i].meta
		w.Sequence = want[i].seq
		if string(e.Payload) != want[i].payload || !sameMetadata(e.Metadata, w) {
			t.Errorf("recorded event %d: %q %+v; want %q %+v", i, e.Payload, e.Metadata, want[i].payload, w)
		}
	}
}

// TestCorrelationRefsLateSubscriber: a subscriber that missed a ref's
// definition, because it subscribed later or its filter skipped the
// defining message, receives the metadata in full with its first message.
func TestCorrelationRefsLateSubscriber(t *testing.T) {
	_, path := startBroker(t, Config{})
	ctx := testCtx(t)
	pub := dial(t, path)
	early := subscribe(t, dial(t, path), "events.#")
	a := correlation.New(correlation.WithStage("collection"))
	opt := eventbus.WithCorrelation(a)
	seqFilter := func(min uint64) *correlation.Filter { return &correlation.Filter{MinSequence: &min} }
	filtered, err := dial(t, path).SubscribeWith(ctx, eventbus.SubscribeOptions{Patterns: []string{"events.#"}, Filter: seqFilter(3)})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := pub.Publish(ctx, "events.a", nil, opt); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, pub)
	late := subscribe(t, dial(t, path), "events.#")
	for range 2 {
		if err := pub.Publish(ctx, "events.a", nil, opt); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, pub)
	for _, tc := range []struct {
		name string
		sub  *eventbus.Subscription
		seqs []uint64
	}{{"early", early, []uint64{1, 2, 3, 4}}, {"filtered", filtered, []uint64{3, 4}}, {"late", late, []uint64{3, 4}}} {
		for _, seq := range tc.seqs {
			want := a
			want.Sequence = seq
			if got := recv(t, tc.sub).Correlation(); got == nil || !sameMetadata(*got, want) {
				t.Errorf("%s subscriber: metadata %+v; want %+v", tc.name, got, want)
			}
		}
	}
}

// TestCorrelationRefsReused: past wire.MaxCorrelationRef distinct
// correlations on one connection, the client and the broker reuse refs,
// and every message still carries its own metadata: a publisher's
// (the client's refs wrap) and a subscriber's (the broker's refs toward
// it wrap while another publisher's ref stays the same).
func TestCorrelationRefsReused(t *testing.T) {
	b, path := startBroker(t, Config{})
	ctx := testCtx(t)
	sub := subscribe(t, dial(t, path), "events.#")
	pub, steady := dial(t, path), dial(t, path)
	n := wire.MaxCorrelationRef + 100
	metas := make([]correlation.Metadata, n+1) // metas[n] is steady's
	opts := make([]eventbus.PublishOption, n+1)
	for i := range metas {
		metas[i] = correlation.New(correlation.WithTag("i", fmt.Sprint(i)))
		opts[i] = eventbus.WithCorrelation(metas[i])
	}
	var order []int
	publish := func(c *eventbus.Client, i int) {
		t.Helper()
		if err := c.Publish(ctx, "events.a", fmt.Append(nil, i), opts[i]); err != nil {
			t.Fatal(err)
		}
		flush(t, c) // one order across both publishers
		order = append(order, i)
	}
	publish(steady, n)
	for i := range n {
		publish(pub, i)
	}
	publish(steady, n)
	publish(pub, 0)
	publish(pub, n-1)
	got := make([]uint64, n+1)
	for _, i := range order {
		m := recv(t, sub)
		if string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("received message %q; want %d", m.Payload, i)
		}
		got[i]++
		want := metas[i]
		want.Sequence = got[i]
		if c := m.Correlation(); c == nil || !sameMetadata(*c, want) {
			t.Fatalf("message %d, the %d. with its option: metadata %+v; want %+v", i, got[i], c, want)
		}
	}
	if r := b.Tracker().Stats().Recorded; r != uint64(len(order)) {
		t.Errorf("recorded %d events; want %d", r, len(order))
	}
}

// TestCorrelationRefBytesBounded: one connection's ref definitions hold at
// most max_correlation_bytes; past it a definition is refused naming the
// limit, and redefining a ref frees what the old definition held.
func TestCorrelationRefBytesBounded(t *testing.T) {
	b, path := startBroker(t, Config{MaxCorrelationBytes: 64 << 10})
	raw := testutil.HandshakeRaw(t, path)
	var opts []correlation.Option
	for i := range 8 {
		opts = append(opts, correlation.WithTag(fmt.Sprintf("k%d", i), strings.Repeat("v", 1000))) // ~8 KB encoded
	}
	big := correlation.New(opts...)
	b8 := wire.AppendCorrelationBase(nil, wireconv.MetadataToWire(&big))
	ref := uint64(0)
	for refused := false; !refused; {
		ref++
		raw.Write(wire.AppendPublish(nil, &wire.Envelope{Topic: "events.a"}, &wire.CorrelationFields{Base: b8, Seq: 1, Ref: ref, Define: true}))
		raw.Send(wire.TypePing, &wire.Ping{Id: ref})
		typ, body, err := raw.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if typ == wire.TypeError {
			var f wire.ErrorFrame
			if err := f.UnmarshalVT(body); err != nil || f.Code != wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION || !strings.Contains(f.Message, "max_correlation_bytes") {
				t.Fatalf("refusal %v %q; want INVALID_CORRELATION naming max_correlation_bytes", f.Code, f.Message)
			}
			raw.Expect(wire.TypePong)
			refused = true
		}
	}
	if ref < 3 || ref > 5 {
		t.Errorf("refused at ref %d; want about 64 KiB / 17 KiB", ref)
	}
	// Redefining ref 1 frees its old definition first, so it fits.
	raw.Write(wire.AppendPublish(nil, &wire.Envelope{Topic: "events.a"}, &wire.CorrelationFields{Base: b8, Seq: 1, Ref: 1, Define: true}))
	raw.Ping(100)
	if n := limitCount(b.Stats(), "max_correlation_bytes"); n != 1 {
		t.Errorf("max_correlation_bytes in stats = %d; want 1", n)
	}
}
