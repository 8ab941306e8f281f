package correlation

import (
	"fmt"
	"maps"
	"slices"
)

// MaxFilterValues is the most values one list of a Filter may hold.
const MaxFilterValues = 1024

// smallSet is the size up to which a compiled set is a slice scanned
// linearly: for a few short strings that beats hashing.
const smallSet = 8

// Filter selects messages by their correlation metadata (docs/CORRELATION.md).
// Each non-empty criterion must hold (they are ANDed); an empty criterion
// matches everything. A message without metadata matches only the empty
// filter.
type Filter struct {
	CorrelationIDs []string          // CorrelationID is one of these
	ParentIDs      []string          // ParentID is one of these
	RootIDs        []string          // RootID is one of these
	Stages         []string          // Stage is one of these
	RequiredTags   map[string]string // every one of these tags is present with this value
	AnyTags        map[string]string // at least one of these tags is present with this value
	MinSequence    *uint64           // Sequence >= *MinSequence
	MaxSequence    *uint64           // Sequence <= *MaxSequence
}

// IsEmpty reports whether f has no criteria, so it matches every message.
func (f *Filter) IsEmpty() bool {
	return len(f.CorrelationIDs) == 0 && len(f.ParentIDs) == 0 && len(f.RootIDs) == 0 &&
		len(f.Stages) == 0 && len(f.RequiredTags) == 0 && len(f.AnyTags) == 0 &&
		f.MinSequence == nil && f.MaxSequence == nil
}

// Match reports whether m (nil: no metadata) passes f. It scans f's lists;
// compile the filter for repeated use.
func (f *Filter) Match(m *Metadata) bool {
	if m == nil {
		return f.IsEmpty()
	}
	if f.MinSequence != nil && m.Sequence < *f.MinSequence ||
		f.MaxSequence != nil && m.Sequence > *f.MaxSequence {
		return false
	}
	if !inList(f.CorrelationIDs, m.CorrelationID) || !inList(f.ParentIDs, m.ParentID) ||
		!inList(f.RootIDs, m.RootID) || !inList(f.Stages, m.Stage) {
		return false
	}
	for k, v := range f.RequiredTags {
		if got, ok := m.Tags[k]; !ok || got != v {
			return false
		}
	}
	if len(f.AnyTags) == 0 {
		return true
	}
	for k, v := range f.AnyTags {
		if got, ok := m.Tags[k]; ok && got == v {
			return true
		}
	}
	return false
}

// inList is list membership where an empty list admits everything.
func inList(list []string, s string) bool { return len(list) == 0 || slices.Contains(list, s) }

// Compile validates f and returns a matcher that does not depend on f
// afterwards. Lists may hold at most MaxFilterValues non-empty values within
// the metadata limits; tag maps obey the metadata tag limits; MinSequence
// must not exceed MaxSequence.
func (f *Filter) Compile() (*Compiled, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	c := &Compiled{
		empty:    f.IsEmpty(),
		corr:     newStrSet(f.CorrelationIDs),
		parent:   newStrSet(f.ParentIDs),
		root:     newStrSet(f.RootIDs),
		stage:    newStrSet(f.Stages),
		required: tagPairs(f.RequiredTags),
		any:      tagPairs(f.AnyTags),
	}
	if f.MinSequence != nil {
		c.hasMin, c.min = true, *f.MinSequence
	}
	if f.MaxSequence != nil {
		c.hasMax, c.max = true, *f.MaxSequence
	}
	return c, nil
}

func (f *Filter) validate() error {
	lists := []struct {
		name  string
		vals  []string
		limit int
	}{
		{"filter correlation id", f.CorrelationIDs, MaxIDBytes},
		{"filter parent id", f.ParentIDs, MaxIDBytes},
		{"filter root id", f.RootIDs, MaxIDBytes},
		{"filter stage", f.Stages, MaxStageBytes},
	}
	for _, l := range lists {
		if len(l.vals) > MaxFilterValues {
			return invalid(l.name+" count", fmt.Sprintf("too large: %d, limit %d", len(l.vals), MaxFilterValues))
		}
		for i, v := range l.vals {
			if err := checkText(fmt.Sprintf("%s[%d]", l.name, i), v, l.limit, true); err != nil {
				return err
			}
		}
	}
	if _, err := checkTags("filter required tag", f.RequiredTags); err != nil {
		return err
	}
	if _, err := checkTags("filter any tag", f.AnyTags); err != nil {
		return err
	}
	if f.MinSequence != nil && f.MaxSequence != nil && *f.MinSequence > *f.MaxSequence {
		return invalid("filter sequence range", fmt.Sprintf("empty: min %d > max %d", *f.MinSequence, *f.MaxSequence))
	}
	return nil
}

// Compiled is a validated Filter prepared for fast matching. It is
// immutable and safe for concurrent use. A nil *Compiled matches everything.
type Compiled struct {
	empty                     bool
	hasMin, hasMax            bool
	min, max                  uint64
	corr, parent, root, stage strSet
	required, any             []tagPair
}

type tagPair struct{ key, value string }

// Match reports whether m (nil: no metadata) passes the filter. It does not
// allocate; the broker calls it per message per subscriber.
func (c *Compiled) Match(m *Metadata) bool {
	if c == nil || c.empty {
		return true
	}
	if m == nil {
		return false
	}
	if c.hasMin && m.Sequence < c.min || c.hasMax && m.Sequence > c.max {
		return false
	}
	if !c.corr.admits(m.CorrelationID) || !c.parent.admits(m.ParentID) ||
		!c.root.admits(m.RootID) || !c.stage.admits(m.Stage) {
		return false
	}
	for _, t := range c.required {
		if got, ok := m.Tags[t.key]; !ok || got != t.value {
			return false
		}
	}
	if len(c.any) == 0 {
		return true
	}
	for _, t := range c.any {
		if got, ok := m.Tags[t.key]; ok && got == t.value {
			return true
		}
	}
	return false
}

// strSet is a set of strings: a slice when small, a map otherwise. The
// empty set admits everything.
type strSet struct {
	list []string
	set  map[string]struct{}
}

func newStrSet(vals []string) strSet {
	if len(vals) == 0 {
		return strSet{}
	}
	list := slices.Clone(vals)
	slices.Sort(list)
	list = slices.Compact(list)
	if len(list) <= smallSet {
		return strSet{list: list}
	}
	set := make(map[string]struct{}, len(list))
	for _, v := range list {
		set[v] = struct{}{}
	}
	return strSet{list: list, set: set}
}

func (s *strSet) admits(v string) bool {
	if len(s.list) == 0 {
		return true
	}
	if s.set != nil {
		_, ok := s.set[v]
		return ok
	}
	return slices.Contains(s.list, v)
}

// tagPairs flattens a tag map in key order, so matching is deterministic.
func tagPairs(tags map[string]string) []tagPair {
	if len(tags) == 0 {
		return nil
	}
	out := make([]tagPair, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, tagPair{k, tags[k]})
	}
	return out
}
