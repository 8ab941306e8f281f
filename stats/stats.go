package stats

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency limits: values are nanoseconds, clamped into [1ns, 60s], with
// three significant digits.
const (
	latencyMin     = 1
	latencyMax     = int64(60 * time.Second)
	latencySigFigs = 3
)

// Latency is a histogram of durations, safe for concurrent use.
type Latency struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// NewLatency returns an empty histogram.
func NewLatency() *Latency {
	return &Latency{h: hdrhistogram.New(latencyMin, latencyMax, latencySigFigs)}
}

// RecordSince records now-start for every start, under one lock.
func (l *Latency) RecordSince(now int64, starts []int64) {
	l.mu.Lock()
	for _, s := range starts {
		l.h.RecordValue(clamp(now - s)) // cannot fail: the value is within range
	}
	l.mu.Unlock()
}

// RecordMany records durations given in nanoseconds, under one lock.
func (l *Latency) RecordMany(ns []int64) {
	l.mu.Lock()
	for _, d := range ns {
		l.h.RecordValue(clamp(d))
	}
	l.mu.Unlock()
}

func clamp(ns int64) int64 { return min(max(ns, latencyMin), latencyMax) }

// LatencySnapshot is a histogram's summary.
type LatencySnapshot struct {
	Count uint64        `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Snapshot summarises the histogram.
func (l *Latency) Snapshot() LatencySnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := func(p float64) time.Duration { return time.Duration(l.h.ValueAtQuantile(p)) }
	return LatencySnapshot{
		Count: uint64(l.h.TotalCount()),
		P50:   q(50), P90: q(90), P99: q(99), P999: q(99.9),
		Max: time.Duration(l.h.Max()),
	}
}

// Topics counts publishes per topic. It tracks at most its limit of
// distinct topics, so a client inventing topics cannot grow the broker's
// memory; later topics are counted as untracked.
type Topics struct {
	limit     int
	untracked atomic.Uint64

	mu sync.RWMutex
	m  map[string]*atomic.Uint64
}

// DefaultTopicLimit is the number of distinct topics counted by default.
const DefaultTopicLimit = 10000

// NewTopics counts up to limit distinct topics.
func NewTopics(limit int) *Topics {
	return &Topics{limit: limit, m: make(map[string]*atomic.Uint64)}
}

// Inc counts one publish to topic. It allocates only for a topic's first
// publish.
func (t *Topics) Inc(topic []byte) {
	t.mu.RLock()
	c := t.m[string(topic)]
	t.mu.RUnlock()
	if c == nil {
		c = t.add(topic)
	}
	if c == nil {
		t.untracked.Add(1)
		return
	}
	c.Add(1)
}

func (t *Topics) add(topic []byte) *atomic.Uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.m[string(topic)]; c != nil {
		return c
	}
	if len(t.m) >= t.limit {
		return nil
	}
	c := new(atomic.Uint64)
	t.m[string(topic)] = c
	return c
}

// TopicCount is one topic's publish count.
type TopicCount struct {
	Topic     string `json:"topic"`
	Published uint64 `json:"published"`
}

// Snapshot returns the counts sorted by topic, and the untracked count.
func (t *Topics) Snapshot() ([]TopicCount, uint64) {
	t.mu.RLock()
	out := make([]TopicCount, 0, len(t.m))
	for k, c := range t.m {
		out = append(out, TopicCount{Topic: k, Published: c.Load()})
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b TopicCount) int { return cmp.Compare(a.Topic, b.Topic) })
	return out, t.untracked.Load()
}
