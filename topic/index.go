package topic

import (
	"slices"
	"strings"
	"sync"
)

const (
	// DefaultCacheSize is the number of topics whose results an Index caches
	// unless NewIndex is told otherwise.
	DefaultCacheSize = 4096

	// cacheEvictDiv sets how much of a full cache is dropped at once (1/8),
	// so eviction cost is spread over many misses.
	cacheEvictDiv = 8

	// cacheScanMax is the largest cache that a wildcard Insert or Remove
	// scans for results to update; a bigger one is cleared instead, bounding
	// the time a change holds the lock.
	cacheScanMax = 16384

	// setIndexMin is the number of values at one pattern above which the
	// pattern keeps a map from value to position, so Insert and Remove stay
	// O(1) when thousands subscribe to the same pattern.
	setIndexMin = 16
)

// Index maps patterns to values and finds every value whose pattern matches
// a topic. It is a trie with, per level, a map of literal children plus
// dedicated '+' and '#' children, and a bounded cache of results per topic.
// Index is safe for concurrent use. The zero Index is usable and has no cache.
type Index[T comparable] struct {
	cacheMax int       // fixed at NewIndex; 0 disables the cache
	scratch  sync.Pool // *scratch[T]

	mu     sync.RWMutex
	root   *node[T]
	count  int            // (pattern, value) entries
	gen    uint64         // bumped by every change, so a stale miss is not cached
	ids    map[T]valueRef // every distinct value's id and pattern count
	free   []uint32       // ids released by Remove, reused first
	nextID uint32         // ids in use are below it
	shared int            // values under two or more patterns; 0 means no walk repeats one
	cache  map[string][]T // valid topic -> shared, read-only result
}

// valueRef numbers a distinct value densely, so a walk can mark the values
// it has appended in a slice instead of hashing them.
type valueRef struct {
	id   uint32
	refs int // patterns holding the value
}

type node[T comparable] struct {
	lits map[string]*node[T]
	plus *node[T]
	hash *node[T] // a leaf: '#' has no children
	vals valueSet[T]
}

func (n *node[T]) empty() bool {
	return len(n.lits) == 0 && n.plus == nil && n.hash == nil && len(n.vals.list) == 0
}

// NewIndex returns an empty Index caching the results of up to cacheSize
// topics; cacheSize 0 disables the cache.
func NewIndex[T comparable](cacheSize int) *Index[T] {
	ix := &Index[T]{cacheMax: max(cacheSize, 0), root: &node[T]{}}
	if ix.cacheMax > 0 {
		ix.cache = make(map[string][]T)
	}
	return ix
}

// Insert adds v under pattern after validating the pattern. Inserting a
// (pattern, v) pair already present does nothing.
func (ix *Index[T]) Insert(pattern string, v T) error {
	if err := ValidatePattern(pattern); err != nil {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.root == nil {
		ix.root = &node[T]{}
	}
	n := ix.root
	for start := 0; start <= len(pattern); {
		end := segmentEnd(pattern, start)
		n = n.child(pattern[start:end])
		start = end + 1
	}
	if n.vals.index(v) >= 0 {
		return nil
	}
	n.vals.add(v, ix.refLocked(v))
	ix.count++
	ix.gen++
	ix.addToCacheLocked(pattern, v)
	return nil
}

// refLocked counts one more pattern holding v and returns v's id.
func (ix *Index[T]) refLocked(v T) uint32 {
	if ix.ids == nil {
		ix.ids = make(map[T]valueRef)
	}
	r, ok := ix.ids[v]
	switch {
	case !ok && len(ix.free) > 0:
		r.id = ix.free[len(ix.free)-1]
		ix.free = ix.free[:len(ix.free)-1]
	case !ok:
		r.id = ix.nextID
		ix.nextID++
	}
	if r.refs++; r.refs == 2 {
		ix.shared++
	}
	ix.ids[v] = r
	return r.id
}

// unrefLocked counts one pattern fewer holding v, releasing its id at zero.
func (ix *Index[T]) unrefLocked(v T) {
	r := ix.ids[v]
	switch r.refs--; r.refs {
	case 0:
		delete(ix.ids, v)
		ix.free = append(ix.free, r.id)
		if len(ix.ids) == 0 { // start numbering afresh so scratch stays small
			ix.free, ix.nextID = nil, 0
		}
		return
	case 1:
		ix.shared--
	}
	ix.ids[v] = r
}

// child returns n's child for seg, creating it.
func (n *node[T]) child(seg string) *node[T] {
	switch seg {
	case "+":
		if n.plus == nil {
			n.plus = &node[T]{}
		}
		return n.plus
	case "#":
		if n.hash == nil {
			n.hash = &node[T]{}
		}
		return n.hash
	}
	c := n.lits[seg]
	if c == nil {
		if n.lits == nil {
			n.lits = make(map[string]*node[T])
		}
		c = &node[T]{}
		n.lits[strings.Clone(seg)] = c // don't pin the caller's buffer
	}
	return c
}

// Remove deletes v from pattern and reports whether it was there. Trie nodes
// left empty are pruned so their memory returns.
func (ix *Index[T]) Remove(pattern string, v T) bool {
	if check(pattern, true).code != ruleOK {
		return false
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var path [MaxSegments + 1]*node[T]
	var segs [MaxSegments]string
	depth, n := 0, ix.root
	for start := 0; start <= len(pattern) && n != nil; depth++ {
		end := segmentEnd(pattern, start)
		path[depth], segs[depth] = n, pattern[start:end]
		n = n.next(segs[depth])
		start = end + 1
	}
	if n == nil || !n.vals.remove(v) {
		return false
	}
	ix.unrefLocked(v)
	path[depth] = n
	for d := depth; d > 0 && path[d].empty(); d-- {
		path[d-1].detach(segs[d-1])
	}
	ix.count--
	ix.gen++
	ix.dropFromCacheLocked(pattern)
	return true
}

// next returns n's existing child for a pattern segment, or nil.
func (n *node[T]) next(seg string) *node[T] {
	switch seg {
	case "+":
		return n.plus
	case "#":
		return n.hash
	}
	return n.lits[seg]
}

func (n *node[T]) detach(seg string) {
	switch seg {
	case "+":
		n.plus = nil
	case "#":
		n.hash = nil
	default:
		delete(n.lits, seg)
		if len(n.lits) == 0 {
			n.lits = nil // an emptied map keeps its buckets
		}
	}
}

// Len returns the number of (pattern, value) entries.
func (ix *Index[T]) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.count
}

// Match returns the values whose patterns match topic, each once, or nil.
// The result is shared with other callers and the cache: do not modify it.
// Match does not validate topic; the caller has.
func (ix *Index[T]) Match(topic string) []T {
	if ix.cacheMax > 0 {
		ix.mu.RLock()
		r, ok := ix.cache[topic]
		ix.mu.RUnlock()
		if ok {
			return r
		}
	}
	return ix.miss(topic)
}

// MatchBytes is Match for a byte slice. It does not allocate on a cache hit.
func (ix *Index[T]) MatchBytes(topic []byte) []T {
	if ix.cacheMax > 0 {
		ix.mu.RLock()
		r, ok := ix.cache[string(topic)] // no allocation for the lookup
		ix.mu.RUnlock()
		if ok {
			return r
		}
	}
	return ix.miss(string(topic))
}

// miss walks the trie for topic and caches the result when no change raced
// with the walk.
func (ix *Index[T]) miss(topic string) []T {
	ix.mu.RLock()
	s := ix.getScratchLocked()
	buf := ix.appendMatchesLocked(s.buf[:0], topic, s)
	gen := ix.gen
	ix.mu.RUnlock()
	var r []T
	if len(buf) > 0 {
		r = make([]T, len(buf)) // one exact allocation, not append's growth
		copy(r, buf)
	}
	clear(buf) // the pool must not keep values alive
	s.buf = buf[:0]
	ix.scratch.Put(s)
	if ix.cacheMax == 0 || check(topic, false).code != ruleOK {
		return r // only valid topics are cached: invalidation matches them by the rules
	}
	ix.mu.Lock()
	if _, ok := ix.cache[topic]; !ok && gen == ix.gen {
		ix.storeLocked(topic, r)
	}
	ix.mu.Unlock()
	return r
}

// AppendMatches appends to dst the values whose patterns match topic, each
// once, and returns the extended slice. It bypasses the cache and does not
// allocate when dst has room.
func (ix *Index[T]) AppendMatches(dst []T, topic string) []T {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.shared == 0 {
		return ix.appendMatchesLocked(dst, topic, nil)
	}
	s := ix.getScratchLocked()
	defer ix.scratch.Put(s)
	return ix.appendMatchesLocked(dst, topic, s)
}

// appendMatchesLocked walks the trie; s is needed only when values repeat.
func (ix *Index[T]) appendMatchesLocked(dst []T, topic string, s *scratch[T]) []T {
	w := walk[T]{dst: dst}
	if ix.root == nil || !w.split(topic) {
		return dst
	}
	if ix.shared > 0 {
		w.marks = s
	}
	w.collect(ix.root, 0, IsReserved(topic))
	return w.dst
}

// walk is the state of one trie walk.
type walk[T comparable] struct {
	segs  [MaxSegments]string
	n     int // segments in segs
	dst   []T
	marks *scratch[T] // nil when no value can repeat
}

// scratch is private working memory for one walk, pooled per Index.
type scratch[T comparable] struct {
	seen  []uint32 // seen[id] == epoch once the value with that id is appended
	epoch uint32   // new per walk, so the last walk's marks need no clearing
	buf   []T      // a miss's result before its exact-size copy
}

// getScratchLocked returns scratch with, when values can repeat, marks for
// every current id and a new epoch.
func (ix *Index[T]) getScratchLocked() *scratch[T] {
	s, _ := ix.scratch.Get().(*scratch[T])
	if s == nil {
		s = new(scratch[T])
	}
	if ix.shared == 0 {
		return s
	}
	if len(s.seen) < int(ix.nextID) {
		s.seen, s.epoch = make([]uint32, ix.nextID+ix.nextID/4), 0
	}
	if s.epoch++; s.epoch == 0 { // wrapped: old marks could collide
		clear(s.seen)
		s.epoch = 1
	}
	return s
}

// split cuts topic into segments; a topic with too many is invalid and
// matches nothing, as with Match.
func (w *walk[T]) split(topic string) bool {
	for w.n = 0; w.n < MaxSegments; w.n++ {
		i := strings.IndexByte(topic, '.')
		if i < 0 {
			w.segs[w.n] = topic
			w.n++
			return true
		}
		w.segs[w.n], topic = topic[:i], topic[i+1:]
	}
	return false
}

// collect appends the values of patterns below n that match the segments
// from d on. noWild skips n's wildcard children: the root's, for a reserved
// topic.
func (w *walk[T]) collect(n *node[T], d int, noWild bool) {
	for {
		if n.hash != nil && !noWild {
			w.add(&n.hash.vals) // '#' matches the rest, even nothing
		}
		if d == w.n {
			w.add(&n.vals)
			return
		}
		if n.plus != nil && !noWild {
			w.collect(n.plus, d+1, false)
		}
		if n = n.lits[w.segs[d]]; n == nil {
			return
		}
		d, noWild = d+1, false
	}
}

// add appends the values of s not appended before.
func (w *walk[T]) add(s *valueSet[T]) {
	if w.marks == nil {
		w.dst = append(w.dst, s.list...)
		return
	}
	seen, epoch := w.marks.seen, w.marks.epoch
	for i, id := range s.ids {
		if seen[id] != epoch {
			seen[id] = epoch
			w.dst = append(w.dst, s.list[i])
		}
	}
}

// storeLocked caches r for topic, evicting arbitrary entries when full.
func (ix *Index[T]) storeLocked(topic string, r []T) {
	if len(ix.cache) >= ix.cacheMax {
		drop := ix.cacheMax/cacheEvictDiv + 1
		for k := range ix.cache { // map order is random enough
			delete(ix.cache, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	ix.cache[strings.Clone(topic)] = r
}

// addToCacheLocked adds v to the cached results of topics pattern matches.
// Results are shared, so each is replaced by a copy, never appended in place.
func (ix *Index[T]) addToCacheLocked(pattern string, v T) {
	ix.eachCachedLocked(pattern, func(topic string, r []T) {
		if !slices.Contains(r, v) {
			ix.cache[topic] = append(r[:len(r):len(r)], v)
		}
	})
}

// dropFromCacheLocked forgets the results of topics pattern matches; v may
// still match them through another pattern, so they are recomputed on demand.
func (ix *Index[T]) dropFromCacheLocked(pattern string) {
	ix.eachCachedLocked(pattern, func(topic string, _ []T) { delete(ix.cache, topic) })
}

// eachCachedLocked calls f for every cached topic pattern matches. A literal
// pattern is looked up; a wildcard one scans the cache, skipping topics
// without its literal prefix cheaply. A cache too big to scan is cleared.
func (ix *Index[T]) eachCachedLocked(pattern string, f func(topic string, r []T)) {
	if len(ix.cache) == 0 {
		return
	}
	prefix, wild := literalPrefix(pattern)
	switch {
	case !wild:
		if r, ok := ix.cache[pattern]; ok {
			f(pattern, r)
		}
	case len(ix.cache) > cacheScanMax:
		clear(ix.cache)
	default:
		for topic, r := range ix.cache {
			if strings.HasPrefix(topic, prefix) && matchValid(pattern, topic) {
				f(topic, r)
			}
		}
	}
}

// literalPrefix returns the part of a valid pattern before its first
// wildcard segment, without the dot, which every topic it matches starts
// with; wild reports whether there is a wildcard.
func literalPrefix(pattern string) (prefix string, wild bool) {
	for start := 0; start <= len(pattern); {
		end := segmentEnd(pattern, start)
		if end-start == 1 && (pattern[start] == '+' || pattern[start] == '#') {
			return pattern[:max(start-1, 0)], true
		}
		start = end + 1
	}
	return pattern, false
}

// valueSet holds the distinct values of one pattern and their ids in
// parallel slices, for fast appending, plus a position map once it is long.
type valueSet[T comparable] struct {
	list []T
	ids  []uint32
	pos  map[T]int
}

func (s *valueSet[T]) index(v T) int {
	if s.pos == nil {
		return slices.Index(s.list, v)
	}
	if i, ok := s.pos[v]; ok {
		return i
	}
	return -1
}

// add appends v, which the caller has checked is absent.
func (s *valueSet[T]) add(v T, id uint32) {
	s.list = append(s.list, v)
	s.ids = append(s.ids, id)
	switch {
	case s.pos != nil:
		s.pos[v] = len(s.list) - 1
	case len(s.list) > setIndexMin:
		s.pos = make(map[T]int, len(s.list))
		for i, x := range s.list {
			s.pos[x] = i
		}
	}
}

func (s *valueSet[T]) remove(v T) bool {
	i := s.index(v)
	if i < 0 {
		return false
	}
	last := len(s.list) - 1
	s.list[i], s.ids[i] = s.list[last], s.ids[last]
	clear(s.list[last:])
	s.list, s.ids = s.list[:last], s.ids[:last]
	if s.pos != nil {
		if i < last {
			s.pos[s.list[i]] = i
		}
		delete(s.pos, v)
	}
	switch {
	case len(s.list) == 0:
		*s = valueSet[T]{}
	case cap(s.list) > 64 && len(s.list) < cap(s.list)/4: // give back a mostly empty array
		s.list, s.ids = slices.Clone(s.list), slices.Clone(s.ids)
	}
	return true
}
