package correlation

import (
	"math"
	mathbits "math/bits"
	"slices"
	"sort"
	"time"
)

// Query narrows a history query.
type Query struct {
	// Since and Until bound ReceivedAt to [Since, Until); zero is unbounded.
	Since, Until time.Time
	// Limit > 0 keeps only the Limit most recent matches.
	Limit int
}

func (q Query) bounds() (since, until int64) {
	since, until = math.MinInt64, math.MaxInt64
	if !q.Since.IsZero() {
		since = q.Since.UnixNano()
	}
	if !q.Until.IsZero() {
		until = q.Until.UnixNano()
	}
	return since, until
}

// Every query below returns events in receive order, copied: nothing
// returned aliases the history. It holds the lock only to find the events
// and copy their fields; tag maps and payload copies are made after.

// ByTags returns the events carrying every one of tags (key and value);
// empty tags match every event.
func (t *Tracker) ByTags(tags map[string]string, q Query) []Event {
	t.mu.Lock()
	h := hitsOf(t.byTagsLocked(tags, q))
	t.mu.Unlock()
	return h.finish()
}

func (t *Tracker) byTagsLocked(tags map[string]string, q Query) []*entry {
	if len(tags) == 0 {
		return t.rangeLocked(q)
	}
	// Walk the posting with the fewest metas; check the others by posting
	// identity, since each (key, value) has exactly one posting.
	ps := make([]*posting, 0, len(tags))
	for k, v := range tags {
		if len(k) > MaxTagKeyBytes {
			return nil // never recorded; and tagIndexKey needs the bound
		}
		t.keyBuf = tagIndexKey(t.keyBuf, k, v)
		p := t.byTag[string(t.keyBuf)]
		if p == nil {
			return nil
		}
		ps = append(ps, p)
	}
	best := slices.MinFunc(ps, func(a, b *posting) int { return a.live() - b.live() })
	if len(ps) == 1 {
		return t.collectLocked(best.metas, q, nil)
	}
	return t.collectLocked(best.metas, q, func(m *meta) bool {
		for _, p := range ps {
			if !slices.Contains(m.tags, p) {
				return false
			}
		}
		return true
	})
}

// ByCorrelation returns the events of one correlation.
func (t *Tracker) ByCorrelation(id string) []Event {
	t.mu.Lock()
	var h hits
	if c := t.byCorr[id]; c != nil {
		h = hitsOf(t.collectLocked(c.metas, Query{}, nil))
	}
	t.mu.Unlock()
	return h.finish()
}

// ByRoot returns the events of one workflow.
func (t *Tracker) ByRoot(root string) []Event { return t.byKey(t.byRoot, root) }

// ByStage returns the events of one stage, across workflows.
func (t *Tracker) ByStage(stage string) []Event { return t.byKey(t.byStage, stage) }

func (t *Tracker) byKey(idx map[string]*posting, key string) []Event {
	t.mu.Lock()
	var h hits
	if p := idx[key]; p != nil {
		h = hitsOf(t.collectLocked(p.metas, Query{}, nil))
	}
	t.mu.Unlock()
	return h.finish()
}

// InRange returns the events received in [since, until); a zero bound is
// unbounded, so InRange(time.Time{}, time.Time{}) is the whole history.
func (t *Tracker) InRange(since, until time.Time) []Event {
	t.mu.Lock()
	h := hitsOf(t.rangeLocked(Query{Since: since, Until: until}))
	t.mu.Unlock()
	return h.finish()
}

// rangeLocked finds the history's events within q. Receive times do not
// decrease along the ring, so the bounds are binary searches. The entries
// are valid only while the lock is held.
func (t *Tracker) rangeLocked(q Query) []*entry {
	since, until := q.bounds()
	lo := sort.Search(t.n, func(i int) bool { return t.slot(i).recv >= since })
	hi := sort.Search(t.n, func(i int) bool { return t.slot(i).recv >= until })
	if q.Limit > 0 {
		lo = max(lo, hi-q.Limit)
	}
	if lo >= hi {
		return nil
	}
	out := make([]*entry, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, t.slot(i))
	}
	return out
}

// collectLocked finds the events of the live metas that keep accepts (nil:
// all) within q: the most recent up to q.Limit, in receive order. The
// entries are valid only while the lock is held.
func (t *Tracker) collectLocked(metas []*meta, q Query, keep func(*meta) bool) []*entry {
	f := t.findLocked(metas, q, keep)
	out := make([]*entry, 0, f.n)
	t.eachLocked(&f, func(e *entry) { out = append(out, e) })
	return out
}

// found is what findLocked found: the receive numbers of each meta's
// events within the query, of which the most recent n are wanted.
type found struct {
	runs     [][]uint64
	total, n int
	lo, hi   uint64 // the least and greatest receive number in runs
}

func (t *Tracker) findLocked(metas []*meta, q Query, keep func(*meta) bool) found {
	since, until := q.bounds()
	f := found{lo: math.MaxUint64}
	for _, m := range metas {
		if !m.live() || keep != nil && !keep(m) {
			continue
		}
		ids := t.within(m.ids.ids(), since, until)
		if len(ids) == 0 {
			continue
		}
		if f.runs == nil {
			f.runs = make([][]uint64, 0, len(metas))
		}
		f.runs = append(f.runs, ids)
		f.total += len(ids)
		f.lo, f.hi = min(f.lo, ids[0]), max(f.hi, ids[len(ids)-1])
	}
	f.n = f.total
	if q.Limit > 0 {
		f.n = min(f.n, q.Limit)
	}
	return f
}

// within returns the ids (of a meta) of events received in [since, until).
func (t *Tracker) within(ids []uint64, since, until int64) []uint64 {
	if len(ids) == 0 {
		return nil
	}
	i, j := 0, len(ids)
	if t.at(ids[0]).recv < since {
		i = sort.Search(len(ids), func(i int) bool { return t.at(ids[i]).recv >= since })
	}
	if t.at(ids[j-1]).recv >= until {
		j = sort.Search(len(ids), func(i int) bool { return t.at(ids[i]).recv >= until })
	}
	return ids[i:max(i, j)]
}

// eachLocked calls fn with the events f wants, in receive order.
func (t *Tracker) eachLocked(f *found, fn func(*entry)) {
	if f.n == 0 {
		return
	}
	if len(f.runs) == 1 {
		for _, seq := range f.runs[0][f.total-f.n:] {
			fn(t.at(seq))
		}
		return
	}
	// The runs interleave: mark their ids in a bitmap of [lo, hi] and read
	// it in order, skipping all but the last n.
	bits := make([]uint64, (f.hi-f.lo)/64+1)
	for _, ids := range f.runs {
		for _, seq := range ids {
			bits[(seq-f.lo)/64] |= 1 << ((seq - f.lo) % 64)
		}
	}
	skip := f.total - f.n
	for i, w := range bits {
		if c := mathbits.OnesCount64(w); skip >= c {
			skip -= c
			continue
		}
		for ; w != 0; w &= w - 1 {
			if skip > 0 {
				skip--
				continue
			}
			fn(t.at(f.lo + uint64(64*i+mathbits.TrailingZeros64(w))))
		}
	}
}

// TimelineEntry is one event of a workflow's timeline.
type TimelineEntry struct {
	ReceivedAt         time.Time
	Stage              string
	SourceProcess      string // Metadata.SourceProcess, as the publisher said
	PublisherPID       int    // as the broker verified
	PublisherComponent string // as the broker verified
	Topic              string
	CorrelationID      string
	ParentID           string
	Sequence           uint64
	Final              bool
	// Depth counts parent links from CorrelationID up to a correlation with
	// no parent: 0 for a top-level correlation, 1 for its children, ... A
	// parent the tracker no longer knows counts as top-level.
	Depth int
}

// Timeline returns the retained events of the workflow rooted at root in
// receive order, with their depth in the parent tree.
func (t *Tracker) Timeline(root string) []TimelineEntry {
	t.mu.Lock()
	var out []TimelineEntry
	if p := t.byRoot[root]; p != nil {
		f := t.findLocked(p.metas, Query{}, nil)
		out = make([]TimelineEntry, 0, f.n)
		t.eachLocked(&f, func(e *entry) { out = append(out, e.timelineEntry()) })
	}
	var parents map[string]string
	if w := t.flows[root]; w != nil {
		parents = w.parentLinks()
	} else {
		parents = make(map[string]string)
	}
	t.mu.Unlock()
	// Links from the events fill in correlations past the workflow's limit
	// or of a workflow that expired.
	for i := range out {
		if p := out[i].ParentID; p != "" {
			parents[out[i].CorrelationID] = p
		}
	}
	memo := make(map[string]int)
	for i := range out {
		out[i].Depth = depth(out[i].CorrelationID, parents, memo)
	}
	return out
}

func (e *entry) timelineEntry() TimelineEntry {
	m := e.meta
	return TimelineEntry{
		ReceivedAt:         fromNanos(e.recv),
		Stage:              m.stageName(),
		SourceProcess:      m.source,
		PublisherPID:       m.pid,
		PublisherComponent: m.component,
		Topic:              m.topic,
		CorrelationID:      m.corr.key,
		ParentID:           m.parent,
		Sequence:           e.seqNo,
		Final:              e.final,
	}
}

// depth walks parent links from id, memoizing every correlation on the
// way. A cycle (metadata is the publishers' word) ends the walk as if the
// correlation where it closes had no parent.
func depth(id string, parents map[string]string, memo map[string]int) int {
	const visiting = -1
	var path []string
	base := -1 // depth of the correlation above the top of path
	for cur := id; ; {
		if d, ok := memo[cur]; ok {
			if d != visiting {
				base = d
			}
			break
		}
		memo[cur] = visiting
		path = append(path, cur)
		p, ok := parents[cur]
		if !ok || p == "" {
			break
		}
		cur = p
	}
	for i := len(path) - 1; i >= 0; i-- {
		base++
		memo[path[i]] = base
	}
	return memo[id]
}
