package correlation

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// checkInvariants checks the tracker's internal consistency: byte and
// count accounting, every meta against the retained history, every index
// against the metas, and the workflow list.
func checkInvariants(t testing.TB, tr *Tracker) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.n > tr.cfg.MaxEvents || tr.bytes > tr.cfg.MaxBytes {
		t.Fatalf("history holds %d events, %d bytes; limits %d, %d", tr.n, tr.bytes, tr.cfg.MaxEvents, tr.cfg.MaxBytes)
	}
	var bytes int64
	events := make(map[*meta]int) // retained events of each live meta
	for i := range tr.n {
		seq := tr.first + uint64(i)
		e := tr.at(seq)
		bytes += int64(e.size)
		if _, ok := slices.BinarySearch(e.meta.ids.ids(), seq); !ok {
			t.Fatalf("event %d missing from its meta's ids %v", seq, e.meta.ids.ids())
		}
		events[e.meta]++
	}
	if bytes != tr.bytes {
		t.Fatalf("bytes = %d; retained events add up to %d", tr.bytes, bytes)
	}
	// Each live meta: exactly its retained events, and in exactly the
	// indexed postings of its keys.
	indexed := 0
	for m, n := range events {
		if ids := m.ids.ids(); len(ids) != n || !slices.IsSorted(ids) {
			t.Fatalf("meta of %q holds ids %v; %d of its events are retained", m.corr.key, ids, n)
		}
		own := []*posting{&m.corr.posting, m.root}
		if got := tr.byCorr[m.corr.key]; got != m.corr {
			t.Fatalf("live meta's correlation posting %q is not the indexed one", m.corr.key)
		}
		if tr.byRoot[m.root.key] != m.root {
			t.Fatalf("live meta's root posting %q is not the indexed one", m.root.key)
		}
		if m.stage != nil {
			own = append(own, m.stage)
			if m.stage.key == "" || tr.byStage[m.stage.key] != m.stage {
				t.Fatalf("live meta's stage posting %q is not the indexed one", m.stage.key)
			}
		}
		for _, p := range m.tags {
			own = append(own, p)
			if tr.byTag[p.key] != p {
				t.Fatalf("live meta's tag posting %q is not the indexed one", p.key)
			}
		}
		for _, p := range own {
			if k := countOf(p.metas, m); k != 1 {
				t.Fatalf("live meta of %q is %d times in its posting %q", m.corr.key, k, p.key)
			}
		}
		indexed += len(own)
	}
	// Each posting: its key, its dead count, and only live metas of the
	// retained history (counted against indexed above).
	total := 0
	check := func(name, key string, p *posting) {
		dead := 0
		for _, m := range p.metas {
			switch {
			case !m.live():
				dead++
			case events[m] == 0:
				t.Fatalf("%s posting %q holds a live meta with no retained event", name, key)
			}
		}
		if p.key != key || dead != p.dead || p.live() == 0 {
			t.Fatalf("%s posting %q under map key %q with %d metas, %d dead, counted %d", name, p.key, key, len(p.metas), dead, p.dead)
		}
		total += p.live()
	}
	for k, p := range tr.byCorr {
		check("correlation", k, &p.posting)
	}
	for k, p := range tr.byRoot {
		check("root", k, p)
	}
	for k, p := range tr.byStage {
		check("stage", k, p)
	}
	for k, p := range tr.byTag {
		check("tag", k, p)
	}
	if total != indexed {
		t.Fatalf("indexes hold %d live metas; the retained events' metas are in %d postings", total, indexed)
	}
	if tr.activity.Len() != len(tr.flows) || len(tr.flows) > tr.cfg.MaxWorkflows {
		t.Fatalf("%d workflows, %d in the activity list, limit %d", len(tr.flows), tr.activity.Len(), tr.cfg.MaxWorkflows)
	}
	last := int64(0)
	for el := tr.activity.Front(); el != nil; el = el.Next() {
		w := el.Value.(*workflow)
		if w.last < last || tr.flows[w.root] != w {
			t.Fatalf("activity list out of order or stale at workflow %q", w.root)
		}
		if w.last < tr.idleFrom {
			t.Fatalf("workflow %q last active at %d, before idleFrom %d", w.root, w.last, tr.idleFrom)
		}
		last = w.last
	}
	for id, ws := range tr.waiters {
		if len(ws) == 0 {
			t.Fatalf("waiters[%q] is empty but present", id)
		}
	}
}

func countOf(ms []*meta, m *meta) int {
	n := 0
	for _, x := range ms {
		if x == m {
			n++
		}
	}
	return n
}

// byteSource feeds the driver; exhausted, it returns zeros.
type byteSource struct{ data []byte }

func (s *byteSource) next() byte {
	if len(s.data) == 0 {
		return 0
	}
	b := s.data[0]
	s.data = s.data[1:]
	return b
}

func (s *byteSource) pick(n int) int { return int(s.next()) % n }

// modelEvent is an event as the reference model holds it.
type modelEvent struct {
	ev   Event
	size int64
}

// runTrackerOps drives a tracker with small limits by the operations data
// encodes, and after each one compares every indexed query with a linear
// scan of a reference model of the retained history. A second tracker
// gets the same events through Recorders, told whenever an event repeats
// its Recorder's previous metadata, and must end up in the same state:
// history, indexes and workflows.
func runTrackerOps(t testing.TB, data []byte) {
	src := &byteSource{data: data}
	cfg := Config{
		MaxEvents:    1 + src.pick(12),
		MaxBytes:     eventOverhead + 40 + int64(src.pick(8))*200,
		MaxWorkflows: 1 + src.pick(4),
		IdleTimeout:  time.Duration(1+src.pick(20)) * time.Millisecond,
	}
	tr, clk := newTestTracker(t, cfg)
	cfg.Now = clk.Now
	viaRecorders, _ := newTestTracker(t, cfg)
	recorders := make([]*Recorder, 3)
	lastMeta := make([]*Metadata, len(recorders)) // of each Recorder's last event recorded
	for i := range recorders {
		recorders[i] = viaRecorders.NewRecorder()
	}
	var model []modelEvent
	lastRecv := time.Time{}
	lastTags := make(map[string]map[string]string) // by correlation id
	for step := 0; len(src.data) > 0 && step < 400; step++ {
		switch op := src.pick(10); {
		case op < 8:
			ev := randomEvent(src, clk, step, lastTags)
			who := src.pick(len(recorders))
			repeat := lastMeta[who] != nil && src.pick(2) == 0
			if repeat { // the same metadata but the sequence, as publishers send
				ev.Metadata = *lastMeta[who]
				ev.Metadata.Sequence++
			}
			ev.PublisherPID = who
			recv := ev.ReceivedAt
			if recv.Before(lastRecv) {
				recv = lastRecv
			}
			err := tr.Record(ev)
			err2 := recorders[who].Check(&ev, repeat)
			if err2 == nil && src.pick(4) > 0 { // else Record checks by itself
				err2 = recorders[who].Record(&ev)
			} else if err2 == nil {
				rec := &ev
				recorders[who].Check(&Event{}, false) // forgets the Check of ev
				err2 = recorders[who].Record(rec)
			}
			if fmt.Sprint(err2) != fmt.Sprint(err) {
				t.Fatalf("step %d: Tracker.Record = %v but Recorder.Record(repeat %v) = %v", step, err, repeat, err2)
			}
			if err == nil {
				meta := ev.Metadata
				lastMeta[who] = &meta
			}
			if ev.Size() > cfg.MaxBytes {
				if !errors.Is(err, ErrEventTooLarge) {
					t.Fatalf("step %d: Record(%d bytes, limit %d) = %v; want ErrEventTooLarge", step, ev.Size(), cfg.MaxBytes, err)
				}
				break
			}
			if err != nil {
				t.Fatalf("step %d: Record = %v", step, err)
			}
			lastRecv = recv
			ev.ReceivedAt = recv
			model = append(model, modelEvent{ev, ev.Size()})
			model = evictModel(model, cfg)
		case op == 8:
			now := clk.tick(time.Duration(src.pick(30)) * time.Millisecond)
			tr.Expire(now)
			viaRecorders.Expire(now)
		default:
			tr.Workflows()
			viaRecorders.Workflows()
		}
		checkInvariants(t, tr)
		checkInvariants(t, viaRecorders)
		compareQueries(t, []*Tracker{tr, viaRecorders}, model, src, clk, step)
		compareTrackers(t, tr, viaRecorders, step)
	}
}

// compareTrackers checks that b holds what a holds: the history and every
// workflow's state.
func compareTrackers(t testing.TB, a, b *Tracker, step int) {
	t.Helper()
	ha, hb := a.InRange(time.Time{}, time.Time{}), b.InRange(time.Time{}, time.Time{})
	if len(ha) != len(hb) {
		t.Fatalf("step %d: histories hold %d and %d events", step, len(ha), len(hb))
	}
	for i := range ha {
		if !eventsEqual(ha[i], hb[i]) {
			t.Fatalf("step %d: event %d differs:\n%+v\n%+v", step, i, ha[i], hb[i])
		}
	}
	if wa, wb := fmt.Sprint(a.Workflows()), fmt.Sprint(b.Workflows()); wa != wb {
		t.Fatalf("step %d: workflows differ:\n%s\n%s", step, wa, wb)
	}
	for i := range 3 {
		root := fmt.Sprint("r", i)
		wa, oka := a.Workflow(root)
		wb, okb := b.Workflow(root)
		if oka != okb || fmt.Sprintf("%+v", wa) != fmt.Sprintf("%+v", wb) {
			t.Fatalf("step %d: workflow %s differs:\n%+v\n%+v", step, root, wa, wb)
		}
	}
}

func evictModel(model []modelEvent, cfg Config) []modelEvent {
	var bytes int64
	for _, m := range model {
		bytes += m.size
	}
	for len(model) > cfg.MaxEvents || bytes > cfg.MaxBytes {
		bytes -= model[0].size
		model = model[1:]
	}
	return model
}

// randomEvent makes an event from src. Half the time it repeats the tags
// of the correlation's previous event, as publishers usually do.
func randomEvent(src *byteSource, clk *clock, step int, lastTags map[string]map[string]string) Event {
	m := Metadata{
		CorrelationID: fmt.Sprint("c", src.pick(5)),
		RootID:        fmt.Sprint("r", src.pick(3)),
		Stage:         []string{"", "s0", "s1"}[src.pick(3)],
	}
	if src.pick(2) == 0 {
		m.ParentID = fmt.Sprint("c", src.pick(6))
		if m.ParentID == m.CorrelationID {
			m.ParentID = ""
		}
	}
	if prev, ok := lastTags[m.CorrelationID]; ok && src.pick(2) == 0 {
		m.Tags = maps.Clone(prev)
	} else {
		for range src.pick(4) {
			if m.Tags == nil {
				m.Tags = make(map[string]string)
			}
			m.Tags[fmt.Sprint("k", src.pick(3))] = fmt.Sprint("v", src.pick(2))
		}
	}
	lastTags[m.CorrelationID] = m.Tags
	// Mostly forward in time, sometimes backwards (clamped by Record).
	recv := clk.tick(time.Duration(src.pick(3)) * time.Millisecond)
	if src.pick(8) == 0 {
		recv = recv.Add(-2 * time.Millisecond)
	}
	// Fields outside Metadata vary too, mostly not, so that a repeat of
	// the metadata may come on another topic or from another publisher.
	rare := func(common, other string) string {
		if src.pick(4) == 0 {
			return other
		}
		return common
	}
	m.SourceProcess = rare("", "p")
	if src.pick(4) == 0 {
		m.StartedAt = clk.Now()
	}
	return Event{
		Topic:              rare("t", "u"),
		Payload:            fmt.Appendf(make([]byte, 0, 64), "#%d%*s", step, src.pick(40), ""),
		ReceivedAt:         recv,
		PublisherPID:       src.pick(2),
		PublisherUID:       uint32(src.pick(4) / 3),
		PublisherComponent: rare("", "a"),
		Metadata:           m,
		Final:              src.pick(4) == 0,
	}
}

// compareQueries checks every query of each tracker against a scan of the
// model.
func compareQueries(t testing.TB, trs []*Tracker, model []modelEvent, src *byteSource, clk *clock, step int) {
	t.Helper()
	scan := func(keep func(*Event) bool) []string {
		var out []string
		for i := range model {
			if keep(&model[i].ev) {
				out = append(out, string(model[i].ev.Payload))
			}
		}
		return out
	}
	byPayload := make(map[string]*Event, len(model))
	for i := range model {
		byPayload[string(model[i].ev.Payload)] = &model[i].ev
	}
	same := func(what string, query func(*Tracker) []Event, want []string) {
		t.Helper()
		for n, tr := range trs {
			got := query(tr)
			g := make([]string, len(got))
			for i, e := range got {
				g[i] = string(e.Payload)
				if m := byPayload[g[i]]; m == nil || !eventsEqual(e, *m) {
					t.Fatalf("step %d: tracker %d: %s returned %+v; recorded %+v", step, n, what, e, m)
				}
			}
			if !slices.Equal(g, want) {
				t.Fatalf("step %d: tracker %d: %s = %q; want %q", step, n, what, g, want)
			}
		}
	}
	same("history", func(tr *Tracker) []Event { return tr.InRange(time.Time{}, time.Time{}) }, scan(func(*Event) bool { return true }))
	for i := range 5 {
		id := fmt.Sprint("c", i)
		same("ByCorrelation "+id, func(tr *Tracker) []Event { return tr.ByCorrelation(id) },
			scan(func(e *Event) bool { return e.Metadata.CorrelationID == id }))
	}
	for i := range 3 {
		id := fmt.Sprint("r", i)
		same("ByRoot "+id, func(tr *Tracker) []Event { return tr.ByRoot(id) },
			scan(func(e *Event) bool { return e.Metadata.RootID == id }))
	}
	for _, s := range []string{"s0", "s1"} {
		same("ByStage "+s, func(tr *Tracker) []Event { return tr.ByStage(s) },
			scan(func(e *Event) bool { return e.Metadata.Stage == s }))
	}
	// A random window: bounds near the clock, zero for unbounded.
	bound := func() time.Time {
		if src.pick(3) == 0 {
			return time.Time{}
		}
		return clk.Now().Add(-time.Duration(src.pick(40)) * time.Millisecond)
	}
	q := Query{Since: bound(), Until: bound(), Limit: src.pick(4)}
	inQ := func(e *Event) bool {
		return (q.Since.IsZero() || !e.ReceivedAt.Before(q.Since)) && (q.Until.IsZero() || e.ReceivedAt.Before(q.Until))
	}
	same(fmt.Sprintf("InRange(%v, %v)", q.Since, q.Until), func(tr *Tracker) []Event { return tr.InRange(q.Since, q.Until) }, scan(inQ))
	tags := map[string]string{}
	for range src.pick(3) {
		tags[fmt.Sprint("k", src.pick(3))] = fmt.Sprint("v", src.pick(2))
	}
	want := scan(func(e *Event) bool {
		for k, v := range tags {
			if got, ok := e.Metadata.Tags[k]; !ok || got != v {
				return false
			}
		}
		return inQ(e)
	})
	if q.Limit > 0 && len(want) > q.Limit {
		want = want[len(want)-q.Limit:]
	}
	same(fmt.Sprintf("ByTags(%v, %+v)", tags, q), func(tr *Tracker) []Event { return tr.ByTags(tags, q) }, want)
}

func FuzzTracker(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 1, 0, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	r := rand.New(rand.NewPCG(7, 7))
	for range 4 {
		seed := make([]byte, 300)
		for i := range seed {
			seed[i] = byte(r.Uint32())
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) { runTrackerOps(t, data) })
}

// TestTrackerRandom runs the same checks on seeded random operations.
func TestTrackerRandom(t *testing.T) {
	runs := 200
	if testing.Short() || raceEnabled {
		runs = 40 // the checks are quadratic in history size; -race is slow
	}
	for seed := range uint64(runs) {
		r := rand.New(rand.NewPCG(seed, 42))
		data := make([]byte, 4000)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runTrackerOps(t, data) })
	}
}
