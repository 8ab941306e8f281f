//go:build linux

package hostile_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/testutil"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/wire"
)

// The history the memory attacks read: events of eventPayload bytes under
// one correlation, on a public topic so that anonymous peers count and
// receive them too. 10,000 of them nearly fill the default history (64
// MiB, 10,000 events); under the race detector, whose shadow memory
// multiplies the broker's resident size, 2,000 (12 MiB), still three times
// what one query may hold, so every answer is truncated in both runs.
const (
	eventPayload = 6 << 10
	eventTopic   = "events.process.anomaly"
	caseTag      = "hostile-case"
)

func historyEvents() int {
	if raceEnabled {
		return 2000
	}
	return 10000
}

// queryBytes is the max_query_bytes TestWaitMemory runs with, 1 MiB, so
// that max_query_memory can hold all 64 waits within the RSS bound; the
// history holds several times as much.
func queryBytes() int {
	return 1 << 20
}

// fillHistory publishes historyEvents() correlated events as procmond and
// returns their metadata.
func fillHistory(t *testing.T, b *broker) correlation.Metadata {
	t.Helper()
	ctx := testCtx(t)
	pub := b.procmond(t, "filler")
	meta := correlation.New(correlation.WithStage("collection"), correlation.WithSource("procmond"), correlation.WithTag(caseTag, "memory"))
	opt := eventbus.WithCorrelation(meta)
	payload := []byte(strings.Repeat("x", eventPayload))
	for i := range historyEvents() {
		if err := pub.Publish(ctx, eventTopic, payload, opt); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return meta
}

// TestWaitMemory: four connections (two anonymous, two claiming
// procmond, all of this one uid) each start the most waits a connection
// may hold (max_waits, 16; 64 in all, max_waits_per_uid) on the
// correlation of a full history, with a condition that never holds (a
// million events) and a deadline of a few seconds. Each wait copies the
// correlation's events it may read when it starts, and those that come
// while it runs, until its deadline.
//
// Bound: while the waits are in progress, and while they are answered,
// the broker's RSS stays at most 256 MiB; each wait holds and returns at
// most max_query_bytes (4 MiB; see queryBytes) of events, marked truncated; a 17th wait on
// one connection is refused naming max_waits, and a wait on a fifth
// connection of the same uid naming max_waits_per_uid.
func TestWaitMemory(t *testing.T) {
	t.Parallel() // it mostly waits for the waits' deadline
	// Room in max_query_memory for all 64 (each counts twice
	// max_query_bytes): this test is about each wait's bound;
	// TestQueryMemoryDefaults is about their sum.
	b := startBroker(t, fmt.Sprintf("max_query_bytes: %d", queryBytes()), fmt.Sprintf("max_query_memory: %d", 8*64*queryBytes()))
	meta := fillHistory(t, b)
	operator := b.procmond(t, "operator")
	var mem memoryBound
	mem.check(t, fmt.Sprintf("with %d events of %d bytes in the history", historyEvents(), eventPayload), snapshot(t, operator).RSSBytes)

	// A deadline long enough for every step before the 17th wait, which
	// proves the 16 still in progress; the test waits for it once.
	const deadline = 5 * time.Second
	never := correlation.EventCount(1_000_000) // the history holds far fewer
	final, count, quiet := never.Parts()
	wait := func(id uint64) *wire.Query {
		return &wire.Query{RequestId: id, Kind: &wire.Query_Wait{Wait: &wire.WaitQuery{CorrelationId: meta.CorrelationID,
			FinalPublishers: uint32(final), Events: uint32(count), QuietNs: int64(quiet), TimeoutNs: int64(deadline)}}}
	}
	peers := []struct {
		name string
		raw  *testutil.Raw
	}{
		{"anonymous 1", testutil.HandshakeRaw(t, b.Path)},
		{"anonymous 2", testutil.HandshakeRaw(t, b.Path)},
		{"procmond 1", b.rawAs(t, "raw-procmond", "procmond", nil)},
		{"procmond 2", b.rawAs(t, "raw-procmond", "procmond", nil)},
	}
	if len(peers)*maxWaits != maxWaitsPerUID {
		t.Fatalf("%d connections of %d waits; want max_waits_per_uid %d in all", len(peers), maxWaits, maxWaitsPerUID)
	}
	for i, p := range peers {
		for id := uint64(1); id <= maxWaits; id++ {
			p.raw.Send(wire.TypeQuery, wait(id))
		}
		// Every wait was started or refused before the PONG, and a
		// refusal would come first and fail the Ping.
		p.raw.Ping(uint64(100 + i))
	}
	// From here until the first answer arrives, all 64 are in progress.
	inProgress := sampleRSS(operator)

	// One more on each connection: refused, and no wait has ended (its
	// answer would come first).
	for _, p := range peers {
		p.raw.Send(wire.TypeQuery, wait(maxWaits+1))
		f := p.raw.ExpectError(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, false)
		if f.RequestId != maxWaits+1 || !strings.Contains(f.Message, "(max_waits)") {
			t.Errorf("%s: wait %d refused as request %d with %q; want request %d refused naming max_waits", p.name, maxWaits+1, f.RequestId, f.Message, maxWaits+1)
		}
	}
	fifth := testutil.HandshakeRaw(t, b.Path)
	fifth.Send(wire.TypeQuery, wait(1))
	if f := fifth.ExpectError(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, false); !strings.Contains(f.Message, "(max_waits_per_uid)") {
		t.Errorf("a wait on a fifth connection of this uid refused with %q; want max_waits_per_uid named", f.Message)
	}

	// The answers, at the deadline: each truncated and within
	// max_query_bytes.
	var largest, events, dropped atomic.Int64
	first := make(chan struct{})
	var once sync.Once
	answered := make(chan error, 1)
	go func() {
		answered <- parallel(len(peers), func(i int) error {
			p := peers[i]
			seen := make(map[uint64]bool)
			_, err := readUntil(p.raw, func(typ wire.Type, body []byte) (bool, error) {
				once.Do(func() { close(first) })
				if typ == wire.TypeError {
					// An answer that did not fit the connection's queue (an
					// anonymous peer's holds 2 MiB) is replaced by an error
					// for its request: bounded, and still answered.
					f, err := errorFrame(body)
					if err != nil || f.Code != wire.ErrorCode_ERROR_CODE_SLOW_CONSUMER || seen[f.RequestId] || f.RequestId < 1 || f.RequestId > maxWaits {
						return false, fmt.Errorf("%s: got ERROR %v %q for request %d; want QUERY_RESULT or a dropped reply", p.name, f.GetCode(), f.GetMessage(), f.GetRequestId())
					}
					seen[f.RequestId] = true
					dropped.Add(1)
					return len(seen) == maxWaits, nil
				}
				if typ != wire.TypeQueryResult {
					return false, fmt.Errorf("%s: got a %v frame; want QUERY_RESULT", p.name, typ)
				}
				var res wire.QueryResult
				if err := res.UnmarshalVT(body); err != nil {
					return false, fmt.Errorf("%s: %w", p.name, err)
				}
				var size int64
				for _, e := range res.Events {
					size += envelopeSize(e)
				}
				largest.Store(max(largest.Load(), size))
				events.Add(int64(len(res.Events)))
				switch {
				case res.RequestId < 1 || res.RequestId > maxWaits || seen[res.RequestId]:
					return false, fmt.Errorf("%s: unexpected answer to request %d", p.name, res.RequestId)
				case !res.Truncated || res.WaitUnmet == "" || len(res.Events) == 0:
					return false, fmt.Errorf("%s: wait %d answered with %d events, truncated %v, unmet %q; want events, truncated, unmet",
						p.name, res.RequestId, len(res.Events), res.Truncated, res.WaitUnmet)
				case size > int64(queryBytes()):
					return false, fmt.Errorf("%s: wait %d returned %d bytes of events; want at most max_query_bytes %d", p.name, res.RequestId, size, queryBytes())
				}
				seen[res.RequestId] = true
				return len(seen) == maxWaits, nil
			})
			return err
		})
	}()
	var err error
	select {
	case <-first:
	case err = <-answered: // failed before any answer
	}
	peak := inProgress.finish(t)
	mem.check(t, fmt.Sprintf("while %d waits were in progress (peak of %d readings; Go heap peak %s)",
		len(peers)*maxWaits, inProgress.samples, mib(inProgress.heapPeak)), peak)
	if err == nil {
		answering := sampleRSS(operator)
		err = <-answered
		mem.check(t, "while the waits were answered (peak)", answering.finish(t))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d waits answered (%d of them by a dropped-reply error): %d events in all, the largest answer %s (max_query_bytes %s)",
		len(peers)*maxWaits, dropped.Load(), events.Load(), mib(uint64(largest.Load())), mib(uint64(queryBytes())))
	s := snapshot(t, operator)
	mem.check(t, "once the waits were answered", s.RSSBytes)
	if n := limitCount(s, "max_waits"); n != uint64(len(peers)) {
		t.Errorf("max_waits enforced %d times in stats; want %d", n, len(peers))
	}
	if n := limitCount(s, "max_waits_per_uid"); n != 1 {
		t.Errorf("max_waits_per_uid enforced %d times in stats; want 1", n)
	}
	mem.done(t)
}

// TestHistoryQueryMemory: anonymous and registered clients, eight
// connections, send many history queries at once (by tag and by
// correlation id, with the largest limit), four in flight on each
// connection, over a full history. Each answer copies up to
// max_query_bytes of events and encodes them.
//
// Bound: the broker's RSS stays at most 256 MiB throughout, and every
// answer holds at most max_query_bytes of events and says it was truncated
// (ErrTruncated).
func TestHistoryQueryMemory(t *testing.T) {
	const clients, perClient = 8, 4
	rounds := 4
	if raceEnabled {
		rounds = 2
	}
	b := startBroker(t) // the default configuration
	meta := fillHistory(t, b)
	operator := b.procmond(t, "operator")
	var mem memoryBound
	mem.check(t, fmt.Sprintf("with %d events of %d bytes in the history", historyEvents(), eventPayload), snapshot(t, operator).RSSBytes)
	var refused atomic.Int64
	var cs []*eventbus.Client
	for i := range clients {
		if i%2 == 0 {
			cs = append(cs, b.dial(t, fmt.Sprintf("anon-query-%d", i)))
		} else {
			cs = append(cs, b.procmond(t, fmt.Sprintf("procmond-query-%d", i)))
		}
	}
	ctx := testCtx(t)
	sampler := sampleRSS(operator)
	var largest, answers atomic.Int64
	err := parallel(clients*perClient, func(i int) error {
		c := cs[i%clients]
		for r := range rounds {
			q := eventbus.HistoryQuery{Limit: 100_000}
			if (i+r)%2 == 0 {
				q.Tags = map[string]string{caseTag: "memory"}
			} else {
				q.CorrelationID = meta.CorrelationID
			}
			msgs, err := c.History(ctx, q)
			if err != nil && (strings.Contains(err.Error(), "max_query_memory") || errors.Is(err, eventbus.ErrSlowConsumer)) {
				// The sum of all queries in flight is bounded too, and an
				// answer that does not fit its connection's queue is
				// replaced by an error saying so.
				refused.Add(1)
				continue
			}
			if !errors.Is(err, eventbus.ErrTruncated) {
				return fmt.Errorf("query %d.%d: %d events, err %v; want ErrTruncated, a refusal naming max_query_memory or a dropped reply", i, r, len(msgs), err)
			}
			var size int64
			for _, m := range msgs {
				size += eventSize(m)
			}
			if size > maxQueryBytes || len(msgs) == 0 {
				return fmt.Errorf("query %d.%d returned %d events, %d bytes; want some, at most max_query_bytes %d", i, r, len(msgs), size, maxQueryBytes)
			}
			largest.Store(max(largest.Load(), size))
			answers.Add(1)
		}
		return nil
	})
	peak := sampler.finish(t)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d history queries answered and %d refused (max_query_memory, or the reply dropped), %d sent at once, each answer truncated, the largest %s",
		answers.Load(), refused.Load(), clients*perClient, mib(uint64(largest.Load())))
	if answers.Load() == 0 {
		t.Error("no history query was answered")
	}
	mem.check(t, fmt.Sprintf("during the history queries (peak of %d readings; Go heap peak %s)", sampler.samples, mib(sampler.heapPeak)), peak)
	mem.check(t, "after the history queries", snapshot(t, operator).RSSBytes)
	mem.done(t)
}

// bigMetadata is correlation metadata at the limits: 64 tags, each with a
// 128-byte key and a 1 KiB value.
func bigMetadata() correlation.Metadata {
	m := correlation.New(correlation.WithStage(strings.Repeat("s", correlation.MaxStageBytes)))
	m.Tags = make(map[string]string, correlation.MaxTags)
	for i := range correlation.MaxTags {
		key := fmt.Sprintf("%03d%s", i, strings.Repeat("k", correlation.MaxTagKeyBytes-3))
		m.Tags[key] = strings.Repeat(string(rune('a'+i%26)), correlation.MaxTagValueBytes)
	}
	return m
}

// TestCorrelationRefsMemory: twenty raw anonymous connections at once
// each try to define every correlation ref, 1 to 1024, with metadata at
// the limits (64 tags of 1 KiB values, about 74 KB encoded), and first
// define refs in publishes refused for their topic (a `$` topic, and a
// restricted topic an anonymous peer may not publish on).
//
// Bound: a connection's definitions hold at most max_correlation_bytes (1
// MiB, each counted as twice its encoding plus 512 bytes): exactly as many
// as fit are defined, every later one is refused with
// INVALID_CORRELATION naming max_correlation_bytes, and a publish by a
// refused ref is refused as not defined. A publish refused for its topic
// defines no ref: a later publish by that ref is refused as not defined.
// The broker's RSS stays at most 256 MiB throughout.
func TestCorrelationRefsMemory(t *testing.T) {
	const conns, refs = 20, 1024
	b := startBroker(t)
	operator := b.procmond(t, "operator")

	meta := bigMetadata()
	base := wire.AppendCorrelationBase(nil, wireconv.MetadataToWire(&meta))
	publish := func(topicName string, f wire.CorrelationFields) []byte {
		return wire.AppendPublish(nil, &wire.Envelope{Topic: topicName, Payload: []byte("p")}, &f)
	}
	define := func(topicName string, ref uint64) []byte {
		return publish(topicName, wire.CorrelationFields{Base: base, Seq: 1, Ref: ref, Define: true})
	}
	byRef := func(ref uint64) []byte { return publish(eventTopic, wire.CorrelationFields{Ref: ref, Seq: 2}) }

	// Publish sequence numbers (publish_seq) of the frames below.
	var frames []byte
	frames = append(frames, define("$sys.x", 1)...)                   // 1: RESERVED_TOPIC
	frames = append(frames, byRef(1)...)                              // 2: not defined
	frames = append(frames, define("events.process.lifecycle", 2)...) // 3: FORBIDDEN
	frames = append(frames, byRef(2)...)                              // 4: not defined
	for ref := uint64(1); ref <= refs; ref++ {                        // 5...: defined while they fit
		frames = append(frames, define(eventTopic, ref)...)
	}
	// The correlation field is base plus the sequence (2 bytes).
	perDef := 2*(len(base)+2) + 512
	fit := maxCorrelationBytes / perDef
	frames = append(frames, byRef(uint64(fit)+1)...) // refused definition: not defined
	frames = append(frames, byRef(1)...)             // defined: accepted
	frames = append(frames, wire.AppendFrame(nil, wire.TypePing, &wire.Ping{Id: 1})...)
	firstRef := uint64(5)
	lastSeq := firstRef + refs + 1
	t.Logf("each definition counts %d bytes: %d of the %d refs fit in max_correlation_bytes %d", perDef, fit, refs, maxCorrelationBytes)

	raws := make([]*testutil.Raw, conns)
	for i := range raws {
		raws[i] = testutil.HandshakeRaw(t, b.Path)
	}
	var mem memoryBound
	sampler := sampleRSS(operator)
	err := parallel(conns, func(i int) error {
		r := raws[i]
		if _, err := r.Conn().Write(frames); err != nil {
			return fmt.Errorf("conn %d: write: %w", i, err)
		}
		refused := make(map[uint64]*wire.ErrorFrame)
		_, err := readUntil(r, func(typ wire.Type, body []byte) (bool, error) {
			switch typ {
			case wire.TypePong:
				return true, nil
			case wire.TypeError:
				f, err := errorFrame(body)
				if err != nil {
					return false, err
				}
				refused[f.PublishSeq] = f
				return false, nil
			}
			return false, fmt.Errorf("conn %d: got a %v frame; want ERROR or PONG", i, typ)
		})
		if err != nil {
			return fmt.Errorf("conn %d: %w", i, err)
		}
		return checkRefusals(refused, fit, firstRef, refs, lastSeq)
	})
	peak := sampler.finish(t)
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot(t, operator)
	t.Logf("%d connections each sent %d definitions (%s); %d statistics read meanwhile", conns, refs+2, mib(uint64(len(frames))), sampler.samples)
	mem.check(t, "while the refs were defined (peak)", peak)
	mem.check(t, "with every connection's refs defined", s.RSSBytes)
	if n, want := limitCount(s, "max_correlation_bytes"), uint64(conns*(refs-fit)); n != want {
		t.Errorf("max_correlation_bytes enforced %d times in stats; want %d", n, want)
	}
	mem.done(t)
}

// checkRefusals checks one connection's refusals, by publish_seq, against
// the frames TestCorrelationRefsMemory sent.
func checkRefusals(refused map[uint64]*wire.ErrorFrame, fit int, firstRef uint64, refs int, lastSeq uint64) error {
	expect := func(seq uint64, code wire.ErrorCode, text string) error {
		f := refused[seq]
		if f == nil || f.Code != code || !strings.Contains(f.Message, text) {
			return fmt.Errorf("publish %d refused with %v; want %v naming %q", seq, f, code, text)
		}
		return nil
	}
	errs := []error{
		expect(1, wire.ErrorCode_ERROR_CODE_RESERVED_TOPIC, "reserved"),
		expect(2, wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "correlation ref 1 is not defined"),
		expect(3, wire.ErrorCode_ERROR_CODE_FORBIDDEN, "events.process.lifecycle"),
		expect(4, wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "correlation ref 2 is not defined"),
	}
	for i := range refs {
		seq := firstRef + uint64(i)
		if i < fit {
			if f := refused[seq]; f != nil {
				errs = append(errs, fmt.Errorf("definition of ref %d (publish %d), within max_correlation_bytes, refused: %v", i+1, seq, f))
			}
			continue
		}
		errs = append(errs, expect(seq, wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "(max_correlation_bytes)"))
	}
	errs = append(errs, expect(lastSeq-1, wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, fmt.Sprintf("correlation ref %d is not defined", fit+1)))
	if f := refused[lastSeq]; f != nil {
		errs = append(errs, fmt.Errorf("publish by ref 1, defined, refused: %v", f))
	}
	if want := 4 + refs - fit + 1; len(refused) != want {
		errs = append(errs, fmt.Errorf("%d publishes refused; want %d", len(refused), want))
	}
	errs = slices.DeleteFunc(errs, func(err error) bool { return err == nil })
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more", len(errs)-10))
	}
	return errors.Join(errs...)
}

// TestQueryMemoryDefaults: with the default configuration, anonymous and
// registered peers start 64 waits at once (4 connections of 16) that
// never complete, on a full history. Each counts twice max_query_bytes
// against max_query_memory (128 MiB), of which anonymous peers may hold a
// quarter.
//
// Bound: at most 16 waits are held, at most 4 of them anonymous; the rest
// are refused naming max_query_memory; the broker's RSS stays at most
// 256 MiB.
func TestQueryMemoryDefaults(t *testing.T) {
	b := startBroker(t)
	meta := fillHistory(t, b)
	operator := b.procmond(t, "operator")
	var mem memoryBound
	never := correlation.EventCount(1_000_000)
	final, count, quiet := never.Parts()
	wait := func(id uint64) *wire.Query {
		return &wire.Query{RequestId: id, Kind: &wire.Query_Wait{Wait: &wire.WaitQuery{CorrelationId: meta.CorrelationID,
			FinalPublishers: uint32(final), Events: uint32(count), QuietNs: int64(quiet), TimeoutNs: int64(time.Minute)}}}
	}
	peers := []struct {
		raw       *testutil.Raw
		anonymous bool
	}{
		{testutil.HandshakeRaw(t, b.Path), true},
		{testutil.HandshakeRaw(t, b.Path), true},
		{b.rawAs(t, "raw-procmond", "procmond", nil), false},
		{b.rawAs(t, "raw-procmond", "procmond", nil), false},
	}
	held, heldAnon := 0, 0
	sampler := sampleRSS(operator)
	for i, p := range peers {
		for id := uint64(1); id <= maxWaits; id++ {
			p.raw.Send(wire.TypeQuery, wait(id))
		}
		p.raw.Send(wire.TypePing, &wire.Ping{Id: 1000})
		refused := 0
		if _, err := readUntil(p.raw, func(typ wire.Type, body []byte) (bool, error) {
			switch typ {
			case wire.TypePong:
				return true, nil
			case wire.TypeError:
				f, err := errorFrame(body)
				if err != nil || !strings.Contains(f.Message, "max_query_memory") {
					return false, fmt.Errorf("peer %d: refusal %v %q; want one naming max_query_memory", i, err, f.GetMessage())
				}
				refused++
				return false, nil
			}
			return false, fmt.Errorf("peer %d: got a %v frame before the PONG", i, typ)
		}); err != nil {
			t.Fatal(err)
		}
		held += maxWaits - refused
		if p.anonymous {
			heldAnon += maxWaits - refused
		}
	}
	mem.check(t, fmt.Sprintf("with %d waits held (%d anonymous)", held, heldAnon), sampler.finish(t))
	if held > 16 || heldAnon > 4 || held == 0 {
		t.Errorf("%d waits held, %d of them anonymous; want at most 16 and 4 (max_query_memory 128 MiB at 8 MiB each), and some", held, heldAnon)
	}
	if n := limitCount(snapshot(t, operator), "max_query_memory"); n != uint64(len(peers)*maxWaits-held) {
		t.Errorf("max_query_memory enforced %d times in stats; want %d", n, len(peers)*maxWaits-held)
	}
	mem.done(t)
}

// TestPendingOutputMemory: thirty anonymous peers subscribe to a public
// topic and never read, while procmond publishes 96 MiB on it. With the
// default configuration each anonymous queue holds at most
// max_pending_bytes_anonymous (2 MiB), the rest is dropped and counted.
//
// Bound: the broker's RSS stays at most 256 MiB, and every stuck
// subscriber has drops counted.
func TestPendingOutputMemory(t *testing.T) {
	const stuck, n, size = 30, 1536, 64 << 10
	b := startBroker(t)
	operator := b.procmond(t, "operator")
	for range stuck { // each stays open, unread, until the test ends
		r := testutil.HandshakeRaw(t, b.Path)
		r.Send(wire.TypeSubscribe, &wire.Subscribe{RequestId: 1, SubscriptionId: 1, Patterns: []string{"events.process.anomaly"}})
		r.Expect(wire.TypeOK)
	}
	pub := b.procmond(t, "flood")
	ctx := testCtx(t)
	payload := make([]byte, size)
	sampler := sampleRSS(operator)
	for range n {
		if err := pub.Publish(ctx, "events.process.anomaly", payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var mem memoryBound
	mem.check(t, fmt.Sprintf("with %d stuck anonymous subscribers after %d MiB published", stuck, n*size>>20), sampler.finish(t))
	s := snapshot(t, operator)
	for _, c := range s.ConnectionList {
		if c.Component == "" && c.Subscriptions == 1 && (c.Dropped == 0 || c.QueuedBytes > 2<<20+size) {
			t.Errorf("stuck subscriber %d: %d dropped, %d bytes queued; want drops and at most max_pending_bytes_anonymous", c.ID, c.Dropped, c.QueuedBytes)
		}
	}
	mem.done(t)
}
