package correlation

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// workload makes events like the broker would hand to Record: every string
// freshly allocated (as decoding makes them), uuid ids, a 128-byte payload,
// a stage and 4 tags. Events are spread over workflows (one investigation
// tag each) and corrsPerFlow correlations per workflow.
type workload struct {
	roots []string
	corrs [][]string
	pay   []byte
	base  time.Time
	// unique makes every tag value differ between events.
	unique bool
}

func newWorkload(workflows, corrsPerFlow int) *workload {
	w := &workload{pay: []byte(strings.Repeat("x", 128)), base: time.Unix(1_700_000_000, 0)}
	for range workflows {
		w.roots = append(w.roots, NewID())
		var cs []string
		for range corrsPerFlow {
			cs = append(cs, NewID())
		}
		w.corrs = append(w.corrs, cs)
	}
	return w
}

var stages = []string{"enumeration", "integrity", "network_analysis"}

// event returns the i-th event: workflow i%workflows, so consecutive events
// interleave workflows as concurrent collectors would.
func (w *workload) event(i int) Event {
	f := i % len(w.roots)
	c := (i / len(w.roots)) % len(w.corrs[f])
	parent := ""
	if c > 0 {
		parent = strings.Clone(w.corrs[f][c-1])
	}
	pid, analyst, host := fmt.Sprint(4000+c), []string{"alice", "bob", "carol"}[f%3], strings.Clone("host-1")
	if w.unique {
		pid, analyst, host = fmt.Sprint(i), fmt.Sprint("analyst-", i), fmt.Sprint("host-", i)
	}
	return Event{
		Topic:              strings.Clone("events.process.lifecycle"),
		Payload:            w.pay,
		PublishedAt:        w.base.Add(time.Duration(i) * time.Microsecond),
		ReceivedAt:         w.base.Add(time.Duration(i)*time.Microsecond + 50),
		PublisherPID:       4000 + c,
		PublisherUID:       1000,
		PublisherComponent: strings.Clone("procmond"),
		Metadata: Metadata{
			CorrelationID: strings.Clone(w.corrs[f][c]),
			ParentID:      parent,
			RootID:        strings.Clone(w.roots[f]),
			Sequence:      uint64(i),
			Stage:         strings.Clone(stages[c%len(stages)]),
			SourceProcess: strings.Clone("procmond"),
			StartedAt:     w.base,
			Tags: map[string]string{
				"investigation_id": fmt.Sprintf("INC-%05d", f),
				"suspicious_pid":   pid,
				"analyst":          analyst,
				"host":             host,
			},
		},
	}
}

func fill(tb testing.TB, tr *Tracker, w *workload, n int) {
	tb.Helper()
	for i := range n {
		if err := tr.Record(w.event(i)); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkRecord records into a full 10,000-event history (so every
// Record also evicts). "spread" cycles through 10,000 distinct events of
// 1,000 interleaved correlations, so inputs and indexes are mostly cold;
// "bursty" cycles through 64 events of 64 active correlations.
func BenchmarkRecord(b *testing.B) {
	for _, bc := range []struct {
		name string
		pool int
	}{{"spread", 10000}, {"bursty", 64}} {
		b.Run(bc.name, func(b *testing.B) {
			w := newWorkload(100, 10)
			evs := make([]Event, 10000)
			for i := range evs {
				evs[i] = w.event(i)
			}
			tr, err := NewTracker(Config{})
			if err != nil {
				b.Fatal(err)
			}
			for _, ev := range evs { // a full history: every Record below evicts
				if err := tr.Record(ev); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ev := evs[i%bc.pool]
				ev.ReceivedAt = w.base.Add(time.Duration(len(evs)+i) * time.Microsecond)
				if err := tr.Record(ev); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	// "repeat": one publisher's Recorder, told that each event repeats the
	// metadata of the one before but for the sequence, as the broker tells
	// it for a collector streaming results under one correlation.
	b.Run("repeat", func(b *testing.B) { benchmarkRepeat(b, false) })
	// "repeat-steady": the same, into a history already full of that
	// stream, so each Record also evicts an event of the stream.
	b.Run("repeat-steady", func(b *testing.B) { benchmarkRepeat(b, true) })
}

func benchmarkRepeat(b *testing.B, steady bool) {
	w := newWorkload(100, 10)
	tr, err := NewTracker(Config{})
	if err != nil {
		b.Fatal(err)
	}
	if !steady {
		fill(b, tr, w, 10000)
	}
	rec := tr.NewRecorder()
	ev := w.event(0)
	if err := rec.Record(&ev); err != nil {
		b.Fatal(err)
	}
	i := 0
	repeat := func() {
		i++
		ev.Metadata.Sequence = uint64(i)
		ev.ReceivedAt = w.base.Add(time.Duration(10000+i) * time.Microsecond)
		if err := rec.Check(&ev, true); err != nil {
			b.Fatal(err)
		}
		if err := rec.Record(&ev); err != nil {
			b.Fatal(err)
		}
	}
	if steady {
		for range tr.Config().MaxEvents {
			repeat()
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		repeat()
	}
}

func BenchmarkByTags(b *testing.B) {
	// 100 workflows over 10,000 events: each investigation_id tags 100.
	w := newWorkload(100, 10)
	tr, err := NewTracker(Config{})
	if err != nil {
		b.Fatal(err)
	}
	fill(b, tr, w, 10000)
	tags := map[string]string{"investigation_id": "INC-00042"}
	if got := len(tr.ByTags(tags, Query{})); got != 100 {
		b.Fatalf("ByTags matched %d events; want 100", got)
	}
	two := map[string]string{"investigation_id": "INC-00042", "analyst": "alice"}
	if got := len(tr.ByTags(two, Query{})); got != 100 {
		b.Fatalf("ByTags(2 tags) matched %d events; want 100", got)
	}
	b.Run("one-tag", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tr.ByTags(tags, Query{})
		}
	})
	b.Run("two-tags", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tr.ByTags(two, Query{})
		}
	})
}

func BenchmarkTimeline(b *testing.B) {
	// One 1,000-event workflow of 50 correlations in a parent chain, among
	// 9,000 events of other workflows.
	w := newWorkload(10, 50)
	tr, err := NewTracker(Config{})
	if err != nil {
		b.Fatal(err)
	}
	fill(b, tr, w, 10000)
	root := w.roots[3]
	if got := len(tr.Timeline(root)); got != 1000 {
		b.Fatalf("Timeline has %d entries; want 1000", got)
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Timeline(root)
	}
}

// heapGrowth returns how much the live heap grew while build ran and its
// result stayed reachable.
func heapGrowth(build func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	keep := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return after.HeapAlloc - before.HeapAlloc
}

// TestHistoryMemory measures the heap held by 10,000 history events with
// 128-byte payloads and typical metadata (under 10 MB), and
// reports the worst case where no id or tag value repeats.
func TestHistoryMemory(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("memory is measured without -race and -short")
	}
	const n, limit = 10000, 10_000_000
	cases := []struct {
		name       string
		flows, per int
		limit      uint64 // 0: report only
	}{
		{"typical: 100 workflows of 10 correlations", 100, 10, limit},
		{"every id and tag value unique", n, 1, 0},
	}
	for _, c := range cases {
		w := newWorkload(c.flows, c.per)
		w.unique = c.limit == 0
		grew := heapGrowth(func() any {
			tr, err := NewTracker(Config{})
			if err != nil {
				t.Fatal(err)
			}
			fill(t, tr, w, n)
			return tr
		})
		t.Logf("%s: %d events hold %d bytes (%.2f MB), %d bytes per event", c.name, n, grew, float64(grew)/1e6, grew/n)
		if c.limit > 0 && grew > c.limit {
			t.Errorf("%s: %d bytes; want at most %d", c.name, grew, c.limit)
		}
	}
}
