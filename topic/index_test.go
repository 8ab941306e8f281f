package topic

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// forEachCache runs f with the result cache on and off.
func forEachCache(t *testing.T, f func(t *testing.T, cacheSize int)) {
	t.Helper()
	for _, size := range []int{DefaultCacheSize, 0} {
		t.Run(fmt.Sprintf("cache=%d", size), func(t *testing.T) { f(t, size) })
	}
}

// checkMatch compares every way of matching topic against want, as a set.
func checkMatch[T comparable](t *testing.T, ix *Index[T], topic string, want []T) {
	t.Helper()
	for i := range 2 { // a second round may hit the cache
		results := map[string][]T{
			"Match":         ix.Match(topic),
			"MatchBytes":    ix.MatchBytes([]byte(topic)),
			"AppendMatches": ix.AppendMatches(nil, topic),
		}
		for name, got := range results {
			if !sameSet(got, want) {
				t.Errorf("round %d: %s(%q) = %v; want %v", i, name, topic, got, want)
			}
		}
	}
}

// sameSet reports whether got holds want's values exactly once each.
func sameSet[T comparable](got, want []T) bool {
	if len(got) != len(want) {
		return false
	}
	for _, v := range want {
		if n := count(got, v); n != 1 {
			return false
		}
	}
	return true
}

func count[T comparable](s []T, v T) (n int) {
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func TestIndexMatchTable(t *testing.T) {
	forEachCache(t, func(t *testing.T, cacheSize int) {
		ix := NewIndex[int](cacheSize)
		for i, tt := range matchTests {
			if ValidatePattern(tt.pattern) == nil {
				if err := ix.Insert(tt.pattern, i); err != nil {
					t.Fatalf("Insert(%q, %d) = %v; want nil", tt.pattern, i, err)
				}
			}
		}
		for _, tt := range matchTests {
			if Validate(tt.topic) != nil {
				continue
			}
			var want []int
			for i, p := range matchTests {
				if Match(p.pattern, tt.topic) {
					want = append(want, i)
				}
			}
			checkMatch(t, ix, tt.topic, want)
		}
	})
}

func TestIndexInsertInvalid(t *testing.T) {
	forEachCache(t, func(t *testing.T, cacheSize int) {
		ix := NewIndex[int](cacheSize)
		for _, tt := range patternTests {
			err := ix.Insert(tt.pattern, 1)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !errors.Is(err, ErrInvalidPattern)) {
				t.Errorf("Insert(%q) = %v; want error %q", tt.pattern, err, tt.wantErr)
			}
		}
	})
}

func TestIndexDedupe(t *testing.T) {
	forEachCache(t, func(t *testing.T, cacheSize int) {
		ix := NewIndex[string](cacheSize)
		for _, p := range []string{"#", "a.#", "a.+", "a.b", "+.b", "a.b.#"} {
			mustInsert(t, ix, p, "sub1")
		}
		mustInsert(t, ix, "a.b", "sub2")
		mustInsert(t, ix, "a.b", "sub2") // a repeat is a no-op
		if got := ix.Len(); got != 7 {
			t.Errorf("Len() = %d; want 7", got)
		}
		checkMatch(t, ix, "a.b", []string{"sub1", "sub2"})
		checkMatch(t, ix, "a.c", []string{"sub1"})
		checkMatch(t, ix, "x", []string{"sub1"})
		checkMatch(t, ix, "$sys.b", nil)
	})
}

// TestIndexDedupeLarge dedupes hundreds of values without allocating.
func TestIndexDedupeLarge(t *testing.T) {
	forEachCache(t, func(t *testing.T, cacheSize int) {
		ix := NewIndex[int](cacheSize)
		var want []int
		for v := range 100 {
			want = append(want, v)
			for _, p := range []string{"#", "a.+", "a.b"} {
				mustInsert(t, ix, p, v)
			}
		}
		checkMatch(t, ix, "a.b", want)
		dst := make([]int, 0, 4*len(want))
		if n := testing.AllocsPerRun(100, func() { dst = ix.AppendMatches(dst[:0], "a.b") }); n != 0 {
			t.Errorf("AppendMatches allocs = %v; want 0", n)
		}
	})
}

func TestIndexRemove(t *testing.T) {
	forEachCache(t, func(t *testing.T, cacheSize int) {
		ix := NewIndex[int](cacheSize)
		mustInsert(t, ix, "a.b.c", 1)
		mustInsert(t, ix, "a.+.c", 1)
		mustInsert(t, ix, "a.#", 2)
		checkMatch(t, ix, "a.b.c", []int{1, 2})

		removes := []struct {
			pattern string
			v       int
			want    bool
		}{
			{"a.b.c", 2, false}, // value not under that pattern
			{"a.b", 1, false},   // pattern absent, its node exists
			{"x.y.z", 1, false}, // pattern absent, no nodes
			{"a.#.c", 1, false}, // invalid pattern
			{"a.b.c", 1, true},
			{"a.b.c", 1, false}, // already gone
		}
		for _, tt := range removes {
			if got := ix.Remove(tt.pattern, tt.v); got != tt.want {
				t.Errorf("Remove(%q, %d) = %v; want %v", tt.pattern, tt.v, got, tt.want)
			}
		}
		checkMatch(t, ix, "a.b.c", []int{1, 2}) // 1 still matches through a.+.c
		ix.Remove("a.+.c", 1)
		checkMatch(t, ix, "a.b.c", []int{2})
		ix.Remove("a.#", 2)
		checkMatch(t, ix, "a.b.c", nil)
		if got := ix.Len(); got != 0 {
			t.Errorf("Len() = %d; want 0", got)
		}
		if !ix.root.empty() {
			t.Errorf("root after removing everything = %+v; want pruned", ix.root)
		}
	})
}

// TestIndexRemoveMany crosses setIndexMin so a pattern's position map is used.
func TestIndexRemoveMany(t *testing.T) {
	forEachCache(t, func(t *testing.T, cacheSize int) {
		ix := NewIndex[int](cacheSize)
		const n = 200
		for v := range n {
			mustInsert(t, ix, "a.+", v)
		}
		var want []int
		for v := range n {
			if v%3 == 0 {
				want = append(want, v)
			} else if !ix.Remove("a.+", v) {
				t.Fatalf("Remove(%q, %d) = false; want true", "a.+", v)
			}
		}
		checkMatch(t, ix, "a.x", want)
		for _, v := range want {
			ix.Remove("a.+", v)
		}
		if !ix.root.empty() {
			t.Errorf("root after removing everything = %+v; want pruned", ix.root)
		}
	})
}

// TestIndexCacheNotStale checks that changes after a Match show at once.
func TestIndexCacheNotStale(t *testing.T) {
	forEachCache(t, func(t *testing.T, cacheSize int) {
		ix := NewIndex[int](cacheSize)
		checkMatch(t, ix, "events.process.lifecycle", nil)
		mustInsert(t, ix, "events.process.#", 1)
		checkMatch(t, ix, "events.process.lifecycle", []int{1})
		mustInsert(t, ix, "events.+.lifecycle", 1) // same value again: still once
		mustInsert(t, ix, "events.+.lifecycle", 2)
		mustInsert(t, ix, "events.network.#", 3) // does not match
		checkMatch(t, ix, "events.process.lifecycle", []int{1, 2})
		ix.Remove("events.process.#", 1)
		checkMatch(t, ix, "events.process.lifecycle", []int{1, 2})
		ix.Remove("events.+.lifecycle", 1)
		checkMatch(t, ix, "events.process.lifecycle", []int{2})
	})
}

func TestIndexCacheBounded(t *testing.T) {
	const size = 64
	ix := NewIndex[int](size)
	mustInsert(t, ix, "a.+", 1)
	for i := range 10 * size {
		checkMatch(t, ix, fmt.Sprintf("a.t%d", i), []int{1})
		if n := len(ix.cache); n > size {
			t.Fatalf("cache holds %d entries; want at most %d", n, size)
		}
	}
}

func TestIndexInvalidTopicNotCached(t *testing.T) {
	ix := NewIndex[int](DefaultCacheSize)
	mustInsert(t, ix, "#", 1)
	ix.Match("A..b") // must not panic; the answer is unspecified
	ix.Match("")
	if n := len(ix.cache); n != 0 {
		t.Errorf("cache holds %d entries after invalid topics; want 0", n)
	}
}

func TestIndexZeroValue(t *testing.T) {
	var ix Index[int]
	if got := ix.Match("a"); got != nil {
		t.Errorf("Match on zero Index = %v; want nil", got)
	}
	if ix.Remove("a", 1) {
		t.Errorf("Remove on zero Index = true; want false")
	}
	mustInsert(t, &ix, "a", 1)
	checkMatch(t, &ix, "a", []int{1})
}

func TestMatchBytesAllocs(t *testing.T) {
	ix := NewIndex[int](DefaultCacheSize)
	mustInsert(t, ix, "events.+.lifecycle", 1)
	mustInsert(t, ix, "events.#", 2)
	b := []byte("events.process.lifecycle")
	ix.MatchBytes(b)
	if n := testing.AllocsPerRun(100, func() { ix.MatchBytes(b) }); n != 0 {
		t.Errorf("MatchBytes (cache hit) allocs = %v; want 0", n)
	}
}

// TestIndexConcurrent races inserts and removes against matches; run with -race.
func TestIndexConcurrent(t *testing.T) {
	forEachCache(t, func(t *testing.T, cacheSize int) {
		ix := NewIndex[int](cacheSize)
		mustInsert(t, ix, "events.#", -1) // always there
		patterns := []string{"events.+.lifecycle", "events.process.#", "#", "events.process.lifecycle"}
		topics := []string{"events.process.lifecycle", "events.network.lifecycle", "events.process", "other"}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 300 {
					p, v := patterns[i%len(patterns)], w*1000+i%7
					mustInsert(t, ix, p, v)
					if i%2 == 0 {
						ix.Remove(p, v)
					}
				}
			})
			wg.Go(func() {
				for i := range 2000 {
					got := ix.Match(topics[i%len(topics)])
					if i%len(topics) < 3 && !slices.Contains(got, -1) {
						t.Errorf("Match(%q) = %v; want it to contain -1", topics[i%len(topics)], got)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, topic := range topics { // the cache must agree with a fresh walk
			checkMatch(t, ix, topic, ix.AppendMatches(nil, topic))
		}
	})
}

func mustInsert[T comparable](t *testing.T, ix *Index[T], pattern string, v T) {
	t.Helper()
	if err := ix.Insert(pattern, v); err != nil {
		t.Errorf("Insert(%q, %v) = %v; want nil", pattern, v, err)
	}
}

// TestIndexRandom runs many inserts and removes over a small space of
// patterns and values, checking every topic against Match after each step.
// It covers pruning, id reuse and cache updates beyond what one fuzz input
// reaches.
func TestIndexRandom(t *testing.T) {
	segs := []string{"a", "b", "$s", "+", "#"}
	var patterns, topics []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		for _, s := range segs {
			p := s
			if prefix != "" {
				p = prefix + "." + s
			}
			if ValidatePattern(p) == nil {
				patterns = append(patterns, p)
				if Validate(p) == nil {
					topics = append(topics, p)
				}
			}
			if depth < 3 {
				gen(p, depth+1)
			}
		}
	}
	gen("", 1)
	forEachCache(t, func(t *testing.T, cacheSize int) {
		r := rand.New(rand.NewPCG(3, 4))
		ix := NewIndex[int](cacheSize)
		have := map[[2]int]bool{} // (pattern index, value)
		for step := range 400 {
			p, v := r.IntN(len(patterns)), r.IntN(6)
			if have[[2]int{p, v}] {
				if !ix.Remove(patterns[p], v) {
					t.Fatalf("step %d: Remove(%q, %d) = false; want true", step, patterns[p], v)
				}
				delete(have, [2]int{p, v})
			} else {
				mustInsert(t, ix, patterns[p], v)
				have[[2]int{p, v}] = true
			}
			for _, topic := range topics {
				want := map[int]bool{}
				for pv := range have {
					if Match(patterns[pv[0]], topic) {
						want[pv[1]] = true
					}
				}
				checkMatch(t, ix, topic, slices.Collect(maps.Keys(want)))
			}
			if t.Failed() {
				t.Fatalf("step %d failed after %s %q %d", step, map[bool]string{true: "insert", false: "remove"}[have[[2]int{p, v}]], patterns[p], v)
			}
		}
		for pv := range have {
			ix.Remove(patterns[pv[0]], pv[1])
		}
		if ix.Len() != 0 || !ix.root.empty() || len(ix.ids) != 0 || ix.shared != 0 {
			t.Errorf("after removing everything: Len %d, root %+v, ids %v, shared %d; want all empty",
				ix.Len(), ix.root, ix.ids, ix.shared)
		}
	})
}
