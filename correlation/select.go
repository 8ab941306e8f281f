package correlation

import (
	"slices"
	"time"
)

// Selection is a history query bounded in what it returns and in what it
// costs (docs/CORRELATION.md §3): its criteria are ANDed, empty ones match
// all, and only the events Visible accepts are counted or copied.
type Selection struct {
	// Tags must all be present with these values.
	Tags          map[string]string
	CorrelationID string
	RootID        string
	Stage         string
	// Since and Until bound ReceivedAt to [Since, Until); zero is unbounded.
	Since, Until time.Time
	// Limit keeps the most recent Limit matches; it must be positive.
	Limit int
	// MaxBytes bounds the events returned, each counted as Event.Size; it
	// must be positive. The most recent that fit are returned.
	MaxBytes int64
	// Visible, if set, reports whether the asker may see events on a topic.
	// It is called with the tracker's lock held, so it must not call the
	// tracker.
	Visible func(topic string) bool
}

// Select returns, in receive order, the most recent events that match s,
// at most s.Limit of them and s.MaxBytes in all; truncated reports that
// MaxBytes left out events Limit would have kept. It walks the most selective index under the lock and
// copies only the events it returns: a query never copies the history.
func (t *Tracker) Select(s Selection) (evs []Event, truncated bool) {
	if s.Limit <= 0 || s.MaxBytes <= 0 {
		return nil, false
	}
	t.mu.Lock()
	q := Query{Since: s.Since, Until: s.Until}
	var cands []*entry
	switch {
	case len(s.Tags) > 0:
		cands = t.byTagsLocked(s.Tags, q)
	case s.CorrelationID != "":
		if c := t.byCorr[s.CorrelationID]; c != nil {
			cands = t.collectLocked(c.metas, q, nil)
		}
	case s.RootID != "":
		if p := t.byRoot[s.RootID]; p != nil {
			cands = t.collectLocked(p.metas, q, nil)
		}
	case s.Stage != "":
		if p := t.byStage[s.Stage]; p != nil {
			cands = t.collectLocked(p.metas, q, nil)
		}
	default:
		cands = t.rangeLocked(q)
	}
	// Newest first: the limits keep the most recent.
	var picked []*entry
	var bytes int64
	for i := len(cands) - 1; i >= 0; i-- {
		e := cands[i]
		if !s.matches(e.meta) {
			continue
		}
		if len(picked) == s.Limit {
			break // the caller's limit: not a truncation
		}
		if bytes+int64(e.size) > s.MaxBytes {
			truncated = true
			break
		}
		bytes += int64(e.size)
		picked = append(picked, e)
	}
	slices.Reverse(picked)
	h := hitsOf(picked)
	t.mu.Unlock()
	return h.finish(), truncated
}

// matches applies the criteria the index walk did not.
func (s *Selection) matches(m *meta) bool {
	return (s.CorrelationID == "" || m.corr.key == s.CorrelationID) &&
		(s.RootID == "" || m.root.key == s.RootID) &&
		(s.Stage == "" || m.stageName() == s.Stage) &&
		(s.Visible == nil || s.Visible(m.topic))
}
