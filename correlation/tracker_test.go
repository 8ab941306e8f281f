package correlation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake Config.Now and Config.NewTimer that tests move by hand.
type clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	armed  chan struct{} // a send each time a timer is armed
}

func newClock() *clock {
	return &clock{now: time.Unix(1_700_000_000, 0), armed: make(chan struct{}, 64)}
}

// fakeTimer fires when its clock is moved past its deadline.
type fakeTimer struct {
	clk      *clock
	c        chan time.Time
	deadline time.Time
	active   bool
}

func (c *clock) NewTimer(d time.Duration) Timer {
	ft := &fakeTimer{clk: c, c: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, ft)
	c.mu.Unlock()
	ft.Reset(d)
	return ft
}

func (ft *fakeTimer) C() <-chan time.Time { return ft.c }

func (ft *fakeTimer) Reset(d time.Duration) bool {
	ft.clk.mu.Lock()
	was := ft.active
	ft.deadline, ft.active = ft.clk.now.Add(d), true
	ft.clk.mu.Unlock()
	select {
	case ft.clk.armed <- struct{}{}:
	default:
	}
	return was
}

func (ft *fakeTimer) Stop() bool {
	ft.clk.mu.Lock()
	defer ft.clk.mu.Unlock()
	was := ft.active
	ft.active = false
	return was
}

// waitArmed waits until a timer of c has been armed (or re-armed).
func (c *clock) waitArmed(t testing.TB) {
	t.Helper()
	select {
	case <-c.armed:
	case <-time.After(5 * time.Second):
		t.Fatal("no timer was armed")
	}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// tick advances the clock by d, fires the timers it passes and returns
// the new time.
func (c *clock) tick(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, ft := range c.timers {
		if ft.active && !c.now.Before(ft.deadline) {
			ft.active = false
			select {
			case ft.c <- c.now:
			default:
			}
		}
	}
	return c.now
}

func newTestTracker(t testing.TB, cfg Config) (*Tracker, *clock) {
	t.Helper()
	clk := newClock()
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	if cfg.NewTimer == nil {
		cfg.NewTimer = clk.NewTimer
	}
	tr, err := NewTracker(cfg)
	if err != nil {
		t.Fatalf("NewTracker(%+v) = %v", cfg, err)
	}
	return tr, clk
}

// md builds metadata; tags alternate key, value.
func md(corr, parent, root, stage string, tags ...string) Metadata {
	m := Metadata{CorrelationID: corr, ParentID: parent, RootID: root, Stage: stage}
	for i := 0; i+1 < len(tags); i += 2 {
		if m.Tags == nil {
			m.Tags = make(map[string]string)
		}
		m.Tags[tags[i]] = tags[i+1]
	}
	return m
}

// record records an event received one millisecond after the previous one
// from the given process, failing the test on error.
func record(t testing.TB, tr *Tracker, clk *clock, m Metadata, pid int, component string, final bool) Event {
	t.Helper()
	ev := Event{
		Topic:              "events.process.lifecycle",
		Payload:            fmt.Appendf(nil, "payload of %s", m.CorrelationID),
		PublishedAt:        clk.Now(),
		ReceivedAt:         clk.tick(time.Millisecond),
		PublisherPID:       pid,
		PublisherUID:       1000,
		PublisherComponent: component,
		Metadata:           m,
		Final:              final,
	}
	if err := tr.Record(ev); err != nil {
		t.Fatalf("Record(%+v) = %v", m, err)
	}
	return ev
}

// corrIDs lists each event's correlation id, to compare results briefly.
func corrIDs(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Metadata.CorrelationID
	}
	return out
}

func TestNewTrackerConfig(t *testing.T) {
	tr, err := NewTracker(Config{})
	if err != nil {
		t.Fatalf("NewTracker(Config{}) = %v", err)
	}
	cfg := tr.Config()
	if cfg.MaxEvents != 10000 || cfg.MaxBytes != 64<<20 || cfg.IdleTimeout != time.Hour ||
		cfg.MaxWorkflows != 1024 || cfg.MaxWaiters != 1024 || cfg.Now == nil {
		t.Errorf("defaults = %+v; want 10000 events, 64 MiB, 1h, 1024 workflows, 1024 waiters, a clock", cfg)
	}
	bad := []Config{{MaxEvents: -1}, {MaxBytes: -1}, {IdleTimeout: -time.Second}, {MaxWorkflows: -1}, {MaxWaiters: -1}}
	for _, c := range bad {
		if _, err := NewTracker(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewTracker(%+v) = %v; want ErrInvalid", c, err)
		}
	}
}

func TestRecordRejects(t *testing.T) {
	tr, _ := newTestTracker(t, Config{MaxBytes: 1000})
	tests := []struct {
		name string
		ev   Event
		want error
	}{
		{"invalid metadata", Event{Metadata: md("", "", "r", "")}, ErrInvalid},
		{"larger than the history", Event{Payload: make([]byte, 1000), Metadata: md("c", "", "r", "")}, ErrEventTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tr.Record(tt.ev); !errors.Is(err, tt.want) {
				t.Errorf("Record = %v; want %v", err, tt.want)
			}
		})
	}
	if s := tr.Stats(); s.Events != 0 || s.Recorded != 0 || s.Workflows != 0 {
		t.Errorf("after rejected records: %+v; want nothing recorded", s)
	}
	tr.Close()
	if err := tr.Record(Event{Metadata: md("c", "", "r", "")}); !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close = %v; want ErrClosed", err)
	}
}

func TestRecordCopiesInputAndResults(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	m := md("c1", "", "r1", "s", "case", "INC-1")
	ev := record(t, tr, clk, m, 1, "procmond", false)
	ev.Payload[0] = 'X'
	m.Tags["case"] = "changed"

	got := tr.ByCorrelation("c1")
	if len(got) != 1 {
		t.Fatalf("ByCorrelation(c1) = %d events; want 1", len(got))
	}
	if !bytes.HasPrefix(got[0].Payload, []byte("payload")) || got[0].Metadata.Tags["case"] != "INC-1" {
		t.Fatalf("stored event changed with the caller's buffers: payload %q, tags %v", got[0].Payload, got[0].Metadata.Tags)
	}
	got[0].Payload[0] = 'Y'
	got[0].Metadata.Tags["case"] = "mutated"
	again := tr.ByTags(map[string]string{"case": "INC-1"}, Query{})
	if len(again) != 1 || again[0].Payload[0] != 'p' || again[0].Metadata.Tags["case"] != "INC-1" {
		t.Fatalf("history changed through a returned event: %+v", again)
	}
}

func TestRecordKeepsEveryField(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	start := clk.Now().Add(-time.Minute)
	want := Event{
		Topic: "events.process.integrity", Payload: []byte{1, 2, 3},
		PublishedAt: clk.Now(), ReceivedAt: clk.tick(time.Millisecond),
		PublisherPID: 4892, PublisherUID: 1001, PublisherComponent: "procmond", Final: true,
		Metadata: Metadata{CorrelationID: "c", ParentID: "p", RootID: "r", Sequence: 9, Stage: "integrity",
			SourceProcess: "procmond", Tags: map[string]string{"a": "1", "b": ""}, StartedAt: start},
	}
	if err := tr.Record(want); err != nil {
		t.Fatal(err)
	}
	got := tr.ByRoot("r")
	if len(got) != 1 || !eventsEqual(got[0], want) {
		t.Fatalf("ByRoot(r) = %+v; want [%+v]", got, want)
	}
}

func eventsEqual(a, b Event) bool {
	am, bm := a.Metadata, b.Metadata
	return a.Topic == b.Topic && bytes.Equal(a.Payload, b.Payload) && a.PublishedAt.Equal(b.PublishedAt) &&
		a.ReceivedAt.Equal(b.ReceivedAt) && a.PublisherPID == b.PublisherPID && a.PublisherUID == b.PublisherUID &&
		a.PublisherComponent == b.PublisherComponent && a.Final == b.Final &&
		am.CorrelationID == bm.CorrelationID && am.ParentID == bm.ParentID && am.RootID == bm.RootID &&
		am.Sequence == bm.Sequence && am.Stage == bm.Stage && am.SourceProcess == bm.SourceProcess &&
		am.StartedAt.Equal(bm.StartedAt) && fmt.Sprint(am.Tags) == fmt.Sprint(bm.Tags)
}

func TestEviction(t *testing.T) {
	size := (&Event{Payload: make([]byte, 100), Metadata: md("c0", "", "r", "s", "k", "v")}).Size()
	tests := []struct {
		name string
		cfg  Config
		n    int
		want []string // correlation ids retained
	}{
		{"by count", Config{MaxEvents: 3}, 5, []string{"c2", "c3", "c4"}},
		{"by bytes", Config{MaxBytes: 2*size + size/2}, 5, []string{"c3", "c4"}},
		{"bytes exactly full", Config{MaxBytes: 2 * size}, 5, []string{"c3", "c4"}},
		{"under both", Config{MaxEvents: 10}, 5, []string{"c0", "c1", "c2", "c3", "c4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, clk := newTestTracker(t, tt.cfg)
			for i := range tt.n {
				ev := Event{Payload: make([]byte, 100), ReceivedAt: clk.tick(time.Second),
					Metadata: md(fmt.Sprint("c", i), "", "r", "s", "k", "v")}
				if err := tr.Record(ev); err != nil {
					t.Fatal(err)
				}
			}
			if got := corrIDs(tr.InRange(time.Time{}, time.Time{})); !slices.Equal(got, tt.want) {
				t.Errorf("history = %v; want %v", got, tt.want)
			}
			for i := range tt.n {
				id := fmt.Sprint("c", i)
				if got, want := len(tr.ByCorrelation(id)), btoi(slices.Contains(tt.want, id)); got != want {
					t.Errorf("ByCorrelation(%s) = %d events; want %d", id, got, want)
				}
			}
			for name, got := range map[string][]Event{
				"ByRoot": tr.ByRoot("r"), "ByStage": tr.ByStage("s"), "ByTags": tr.ByTags(map[string]string{"k": "v"}, Query{}),
			} {
				if !slices.Equal(corrIDs(got), tt.want) {
					t.Errorf("%s = %v; want %v", name, corrIDs(got), tt.want)
				}
			}
			s := tr.Stats()
			if s.Events != len(tt.want) || s.Bytes != int64(len(tt.want))*size || s.Evicted != uint64(tt.n-len(tt.want)) {
				t.Errorf("Stats = %+v; want %d events of %d bytes, %d evicted", s, len(tt.want), size, tt.n-len(tt.want))
			}
			checkInvariants(t, tr)
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestReceivedAtNeverDecreases(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	t0 := clk.Now()
	times := []time.Time{t0.Add(2 * time.Second), t0.Add(time.Second), {}, t0.Add(3 * time.Second)}
	for i, at := range times {
		if err := tr.Record(Event{ReceivedAt: at, Metadata: md(fmt.Sprint("c", i), "", "r", "")}); err != nil {
			t.Fatal(err)
		}
	}
	// The second is raised to the first; the zero one takes the clock (t0),
	// raised too.
	want := []time.Time{t0.Add(2 * time.Second), t0.Add(2 * time.Second), t0.Add(2 * time.Second), t0.Add(3 * time.Second)}
	got := tr.InRange(time.Time{}, time.Time{})
	for i := range want {
		if !got[i].ReceivedAt.Equal(want[i]) {
			t.Errorf("event %d ReceivedAt = %v; want %v", i, got[i].ReceivedAt, want[i])
		}
	}
}

func TestQueries(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	t0 := clk.Now()
	// Receive times t0+1ms ... t0+6ms.
	record(t, tr, clk, md("a1", "", "A", "enumeration", "case", "INC-1", "analyst", "alice"), 1, "agent", false)
	record(t, tr, clk, md("b1", "", "B", "enumeration", "case", "INC-2", "analyst", "alice"), 1, "agent", false)
	record(t, tr, clk, md("a1", "", "A", "enumeration", "case", "INC-1", "analyst", "bob"), 2, "procmond", false)
	record(t, tr, clk, md("a2", "a1", "A", "integrity", "case", "INC-1", "analyst", "alice"), 2, "procmond", false)
	record(t, tr, clk, md("b1", "", "B", "enumeration"), 2, "procmond", true)
	record(t, tr, clk, md("a2", "a1", "A", "integrity", "case", "INC-1"), 3, "netmond", true)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	seq := func(evs []Event) string {
		var b strings.Builder
		for _, e := range evs {
			fmt.Fprintf(&b, "%s@%d ", e.Metadata.CorrelationID, e.ReceivedAt.Sub(t0).Milliseconds())
		}
		return strings.TrimSpace(b.String())
	}
	tests := []struct {
		name string
		got  []Event
		want string
	}{
		{"tag", tr.ByTags(map[string]string{"case": "INC-1"}, Query{}), "a1@1 a1@3 a2@4 a2@6"},
		{"two tags ANDed", tr.ByTags(map[string]string{"case": "INC-1", "analyst": "alice"}, Query{}), "a1@1 a2@4"},
		{"tag value differs", tr.ByTags(map[string]string{"analyst": "carol"}, Query{}), ""},
		{"one tag unknown", tr.ByTags(map[string]string{"case": "INC-1", "host": "x"}, Query{}), ""},
		{"no tags: all", tr.ByTags(nil, Query{}), "a1@1 b1@2 a1@3 a2@4 b1@5 a2@6"},
		{"no tags, limit", tr.ByTags(nil, Query{Limit: 2}), "b1@5 a2@6"},
		{"tag since", tr.ByTags(map[string]string{"case": "INC-1"}, Query{Since: ms(3)}), "a1@3 a2@4 a2@6"},
		{"tag until", tr.ByTags(map[string]string{"case": "INC-1"}, Query{Until: ms(4)}), "a1@1 a1@3"},
		{"tag window", tr.ByTags(map[string]string{"case": "INC-1"}, Query{Since: ms(2), Until: ms(5)}), "a1@3 a2@4"},
		{"tag limit: most recent", tr.ByTags(map[string]string{"case": "INC-1"}, Query{Limit: 3}), "a1@3 a2@4 a2@6"},
		{"two tags, limit", tr.ByTags(map[string]string{"case": "INC-1", "analyst": "alice"}, Query{Limit: 1}), "a2@4"},
		{"empty window", tr.ByTags(map[string]string{"case": "INC-1"}, Query{Since: ms(5), Until: ms(5)}), ""},
		{"correlation", tr.ByCorrelation("a1"), "a1@1 a1@3"},
		{"correlation unknown", tr.ByCorrelation("zz"), ""},
		{"root", tr.ByRoot("B"), "b1@2 b1@5"},
		{"stage", tr.ByStage("enumeration"), "a1@1 b1@2 a1@3 b1@5"},
		{"stage unknown", tr.ByStage(""), ""},
		{"range", tr.InRange(ms(2), ms(4)), "b1@2 a1@3"},
		{"range open end", tr.InRange(ms(5), time.Time{}), "b1@5 a2@6"},
		{"range all", tr.InRange(time.Time{}, time.Time{}), "a1@1 b1@2 a1@3 a2@4 b1@5 a2@6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := seq(tt.got); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestTimeline(t *testing.T) {
	tr, clk := newTestTracker(t, Config{MaxEvents: 7})
	// The seed's multi-stage workflow: stage 1 has the root but no parent.
	record(t, tr, clk, md("s1", "", "R", "enumeration"), 1, "agent", false)
	record(t, tr, clk, md("s1", "", "R", "enumeration"), 10, "procmond", true)
	record(t, tr, clk, md("s2", "s1", "R", "integrity"), 1, "agent", false)
	record(t, tr, clk, md("s3", "s2", "R", "network_analysis"), 20, "netmond", false)
	record(t, tr, clk, md("s2", "s1", "R", "integrity"), 10, "procmond", true)
	record(t, tr, clk, md("x", "", "OTHER", "enumeration"), 1, "agent", false)
	record(t, tr, clk, md("s4", "s3", "R", "network_analysis"), 20, "netmond", false)

	type row struct {
		corr, stage, component string
		depth                  int
	}
	want := []row{
		{"s1", "enumeration", "agent", 0},
		{"s1", "enumeration", "procmond", 0},
		{"s2", "integrity", "agent", 1},
		{"s3", "network_analysis", "netmond", 2},
		{"s2", "integrity", "procmond", 1},
		{"s4", "network_analysis", "netmond", 3},
	}
	check := func(name string, want []row) {
		t.Helper()
		tl := tr.Timeline("R")
		var got []row
		for i, e := range tl {
			got = append(got, row{e.CorrelationID, e.Stage, e.PublisherComponent, e.Depth})
			if i > 0 && e.ReceivedAt.Before(tl[i-1].ReceivedAt) {
				t.Errorf("%s: entry %d received %v before entry %d at %v", name, i, e.ReceivedAt, i-1, tl[i-1].ReceivedAt)
			}
			if e.Topic != "events.process.lifecycle" {
				t.Errorf("%s: entry %d topic %q", name, i, e.Topic)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: Timeline(R) =\n%v\nwant\n%v", name, got, want)
		}
	}
	check("all retained", want)

	// Evict the first three events: s1's and s2's first events are gone,
	// yet depths still come from the workflow's parent links.
	record(t, tr, clk, md("y", "", "OTHER", ""), 1, "agent", false)
	record(t, tr, clk, md("y", "", "OTHER", ""), 1, "agent", false)
	record(t, tr, clk, md("y", "", "OTHER", ""), 1, "agent", false)
	check("after eviction", want[3:])

	// With the workflow expired, depths come from the events alone: s3's
	// parent s2 is retained, s2's parent s1 is not (so s2 counts as a child
	// of an unknown top-level correlation).
	tr.Expire(clk.tick(2 * time.Hour))
	check("after expiry", want[3:])

	if got := tr.Timeline("nope"); got != nil {
		t.Errorf("Timeline(unknown) = %v; want nil", got)
	}
}

func TestDepth(t *testing.T) {
	parents := map[string]string{"b": "a", "c": "b", "d": "x", "loop1": "loop2", "loop2": "loop1", "self": "self"}
	tests := []struct {
		id   string
		want int
	}{
		{"a", 0}, {"b", 1}, {"c", 2}, {"d", 1}, {"x", 0}, {"loop1", 1}, {"self", 0},
	}
	memo := make(map[string]int)
	for _, tt := range tests {
		if got := depth(tt.id, parents, memo); got != tt.want {
			t.Errorf("depth(%q) = %d; want %d", tt.id, got, tt.want)
		}
	}
	// With a fresh memo, the loop's other member is at depth 1 as well.
	if got := depth("loop2", parents, make(map[string]int)); got != 1 {
		t.Errorf("depth(loop2) = %d; want 1", got)
	}
}

// TestPayloadBlocksReused records enough payloads that the history reuses
// its payload blocks many times over, and checks that neither the retained
// events nor anything a query or a Wait returned changes with them. The
// history is bounded by count, or by bytes with a few large events that
// evict many at once and leave room for many small ones.
func TestPayloadBlocksReused(t *testing.T) {
	for _, cfg := range []Config{{MaxEvents: 20}, {MaxBytes: 200 << 10}} {
		t.Run(fmt.Sprint(cfg.MaxEvents, cfg.MaxBytes), func(t *testing.T) { testPayloadBlocksReused(t, cfg) })
	}
}

func testPayloadBlocksReused(t *testing.T, cfg Config) {
	tr, clk := newTestTracker(t, cfg)
	ch := startWait(t, tr, context.Background(), "c1", EventCount(400))
	r := rand.New(rand.NewPCG(1, 2))
	intact := func(evs []Event) {
		t.Helper()
		for _, ev := range evs {
			if want := byte(ev.Metadata.Sequence); bytes.Count(ev.Payload, []byte{want}) != len(ev.Payload) {
				t.Fatalf("payload of event %d changed: %d bytes starting %q", ev.Metadata.Sequence, len(ev.Payload), ev.Payload[:min(8, len(ev.Payload))])
			}
		}
	}
	var held [][]Event
	for i := range 4000 {
		size := r.IntN(maxBlockedPayload + 1)
		if r.IntN(50) == 0 {
			size = 100 << 10
		}
		ev := Event{
			Topic:      "t",
			Payload:    bytes.Repeat([]byte{byte(i)}, size),
			ReceivedAt: clk.tick(time.Millisecond),
			Metadata:   md(fmt.Sprint("c", i%3), "", "r", "", "k", "v"),
		}
		ev.Metadata.Sequence = uint64(i)
		if err := tr.Record(ev); err != nil {
			t.Fatal(err)
		}
		retainedIntact(t, tr)
		if i%97 == 0 {
			held = append(held, tr.ByCorrelation("c0"), tr.ByTags(map[string]string{"k": "v"}, Query{Limit: 7}))
		}
	}
	w := mustReturn(t, ch)
	if want := min(400, tr.Config().MaxEvents); w.err != nil || len(w.events) < want {
		t.Fatalf("Wait = %d events, %v; want %d or more", len(w.events), w.err, want)
	}
	for _, evs := range append(held, w.events) {
		intact(evs)
	}
	// The history spans at most a few blocks, plus the one being filled.
	if max := int(min(tr.Config().MaxBytes, 20*maxBlockedPayload)/payloadBlock) + 2; len(tr.payloads.full) > max {
		t.Errorf("history holds %d payload blocks; want at most %d", len(tr.payloads.full), max)
	}
}

// retainedIntact checks that each retained payload is still its
// sequence number's byte repeated, as the payload tests record them.
func retainedIntact(t *testing.T, tr *Tracker) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i := range tr.n {
		e := tr.slot(i)
		if bytes.Count(e.payload, []byte{byte(e.seqNo)}) != len(e.payload) {
			t.Fatalf("payload of retained event %d changed: %d bytes starting %q", e.seqNo, len(e.payload), e.payload[:min(8, len(e.payload))])
		}
	}
}

// TestPayloadBlockNotReusedEarly sets up the one case where a block is
// retired while its last event is the oldest retained: that event's
// payload is at the block's end, and the history has room to refill the
// block up to it before evicting it.
func TestPayloadBlockNotReusedEarly(t *testing.T) {
	const small = 4000 // payloadBlock/small fit a block, with room to spare
	perBlock := payloadBlock / small
	sized := func(i, n int) Event {
		return Event{Topic: "t", Payload: bytes.Repeat([]byte{byte(i)}, n), Metadata: Metadata{CorrelationID: "c", RootID: "r", Sequence: uint64(i)}}
	}
	size := func(n int) int64 { ev := sized(0, n); return ev.Size() }
	s, x := size(small), size(100<<10)
	// Recording the big event leaves one small one before it; the next
	// small one evicts that, and the one after evicts the big one.
	tr, clk := newTestTracker(t, Config{MaxBytes: x + 2*s - 1})
	i := 0
	record := func(n int) {
		ev := sized(i, n)
		ev.ReceivedAt = clk.tick(time.Millisecond)
		if err := tr.Record(ev); err != nil {
			t.Fatal(err)
		}
		i++
	}
	for range perBlock - 1 {
		record(small)
	}
	record(100 << 10) // not blocked
	record(small)     // the last that fits the first block
	last := i - 1
	for range perBlock + 1 {
		record(small) // the first starts a block and evicts the big one
		retainedIntact(t, tr)
	}
	if evs := tr.InRange(time.Time{}, time.Time{}); evs[0].Metadata.Sequence != uint64(last) {
		t.Fatalf("oldest retained event is %d; the test wants %d still retained", evs[0].Metadata.Sequence, last)
	}
}

// TestRecordRepeatAllocs checks that a steady stream of repeats into a
// full history allocates nothing: payload blocks and ids are reused.
func TestRecordRepeatAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	tr, clk := newTestTracker(t, Config{MaxEvents: 1000})
	rec := tr.NewRecorder()
	ev := Event{Topic: "t", Payload: make([]byte, 128), Metadata: md("c", "", "r", "s", "k", "v")}
	repeat := false
	record := func() {
		ev.Metadata.Sequence++
		ev.ReceivedAt = clk.tick(time.Millisecond)
		if err := rec.Check(&ev, repeat); err != nil {
			t.Fatal(err)
		}
		if err := rec.Record(&ev); err != nil {
			t.Fatal(err)
		}
		repeat = true
	}
	for range 5000 {
		record()
	}
	if n := testing.AllocsPerRun(5000, record); n != 0 {
		t.Errorf("a repeat allocates %v times; want 0", n)
	}
}

// TestRecordSharesMetas checks that events repeating metadata share metas
// even through Tracker.Record, where no Recorder remembers them: one per
// metadata, publisher and topic, with a stream alternating topics.
func TestRecordSharesMetas(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	for i := range 100 {
		m := md("c", "p", "r", "s", "k", "v")
		m.Sequence = uint64(i)
		ev := Event{Topic: []string{"t0", "t1"}[i%2], ReceivedAt: clk.tick(time.Millisecond), PublisherPID: 1, Metadata: m}
		if err := tr.Record(ev); err != nil {
			t.Fatal(err)
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	metas := make(map[*meta]bool)
	for i := range tr.n {
		metas[tr.slot(i).meta] = true
	}
	if len(metas) != 2 {
		t.Errorf("100 events of one metadata on two topics share %d metas; want 2", len(metas))
	}
}

// TestTagsReturnAfterEviction records a correlation's tags again after the
// history evicted every event with them, while a Recorder kept streaming
// the correlation under other tags: the tags must be indexed anew.
func TestTagsReturnAfterEviction(t *testing.T) {
	tr, clk := newTestTracker(t, Config{MaxEvents: 4})
	stream := tr.NewRecorder()
	ev := Event{Topic: "t", Metadata: md("c", "", "r", "", "a", "1")}
	record := func(rec *Recorder, ev Event, repeat bool) {
		t.Helper()
		ev.ReceivedAt = clk.tick(time.Millisecond)
		if err := rec.Check(&ev, repeat); err != nil {
			t.Fatal(err)
		}
		if err := rec.Record(&ev); err != nil {
			t.Fatal(err)
		}
	}
	record(stream, ev, false)
	other := ev
	other.Metadata = md("c", "", "r", "", "b", "2")
	record(tr.NewRecorder(), other, false)
	for range 4 { // evicts the event tagged b=2
		record(stream, ev, true)
	}
	if got := tr.ByTags(map[string]string{"b": "2"}, Query{}); len(got) != 0 {
		t.Fatalf("b=2 still finds %d events after eviction", len(got))
	}
	record(tr.NewRecorder(), other, false)
	if got := tr.ByTags(map[string]string{"b": "2"}, Query{}); len(got) != 1 {
		t.Errorf("b=2 recorded again finds %d events; want 1", len(got))
	}
	checkInvariants(t, tr)
}
