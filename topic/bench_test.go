package topic

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

var benchKinds = []string{"process", "network", "filesystem", "performance", "registry", "dns", "auth", "module"}

// benchIndex returns an index of n subscriptions over events.<kind>.<n>.<m>,
// mostly literal with a realistic share of '+' and '#', held by `holders`
// distinct values, and 1024 topics drawn from the same space.
func benchIndex(n, holders, cacheSize int) (*Index[int], []string) {
	r := rand.New(rand.NewPCG(1, 2))
	kind := func() string { return benchKinds[r.IntN(len(benchKinds))] }
	num := func() int { return r.IntN(50) }
	ix := NewIndex[int](cacheSize)
	for i := 0; ix.Len() < n; i++ {
		var p string
		switch x := r.IntN(1000); {
		case x < 700:
			p = fmt.Sprintf("events.%s.%d.%d", kind(), num(), num())
		case x < 850:
			p = fmt.Sprintf("events.%s.%d.+", kind(), num())
		case x < 930:
			p = fmt.Sprintf("events.%s.+.%d", kind(), num())
		case x < 980:
			p = fmt.Sprintf("events.%s.%d.#", kind(), num())
		case x < 995:
			p = fmt.Sprintf("events.+.%d.%d", num(), num())
		case x < 999:
			p = fmt.Sprintf("events.%s.#", kind())
		default:
			p = []string{"#", "events.#", "+.+.+.+"}[r.IntN(3)]
		}
		if err := ix.Insert(p, i%holders); err != nil {
			panic(err)
		}
	}
	topics := make([]string, 1024)
	for i := range topics {
		topics[i] = fmt.Sprintf("events.%s.%d.%d", kind(), num(), num())
	}
	return ix, topics
}

func BenchmarkIndexMatch(b *testing.B) {
	const subs, holders = 10_000, 1_000 // each holder has about 10 patterns
	for _, h := range []int{holders, subs} {
		b.Run(fmt.Sprintf("miss/AppendMatches/holders=%d", h), func(b *testing.B) {
			ix, topics := benchIndex(subs, h, 0)
			dst := make([]int, 0, 1024)
			b.ReportAllocs()
			total := 0
			for i := 0; b.Loop(); i++ {
				dst = ix.AppendMatches(dst[:0], topics[i%len(topics)])
				total += len(dst)
			}
			b.ReportMetric(float64(total)/float64(b.N), "matches/op")
		})
	}
	b.Run("miss/Match-nocache", func(b *testing.B) {
		ix, topics := benchIndex(subs, holders, 0)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ix.Match(topics[i%len(topics)])
		}
	})
	b.Run("hit/Match", func(b *testing.B) {
		ix, topics := benchIndex(subs, holders, DefaultCacheSize)
		for _, t := range topics {
			ix.Match(t)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ix.Match(topics[i%len(topics)])
		}
	})
	b.Run("hit/MatchBytes", func(b *testing.B) {
		ix, topics := benchIndex(subs, holders, DefaultCacheSize)
		raw := make([][]byte, len(topics))
		for i, t := range topics {
			raw[i] = []byte(t)
			ix.Match(t)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ix.MatchBytes(raw[i%len(raw)])
		}
	})
	b.Run("hit/Match-parallel", func(b *testing.B) {
		ix, topics := benchIndex(subs, holders, DefaultCacheSize)
		for _, t := range topics {
			ix.Match(t)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				ix.Match(topics[i%len(topics)])
			}
		})
	})
}

// BenchmarkIndexInsertRemove measures a subscribe and unsubscribe while the
// cache is full, which a wildcard pattern must scan.
func BenchmarkIndexInsertRemove(b *testing.B) {
	ix, _ := benchIndex(10_000, 1_000, DefaultCacheSize)
	for i := range DefaultCacheSize {
		ix.Match(fmt.Sprintf("events.%s.%d.%d", benchKinds[i%len(benchKinds)], i/8%50, i/400))
	}
	for _, p := range []string{"events.process.7.lifecycle", "events.process.+.lifecycle", "+.process.#"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ix.Insert(p, -1)
				ix.Remove(p, -1)
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	const topic = "events.process.lifecycle"
	b.Run("Validate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = Validate(topic)
		}
	})
	b.Run("ValidateBytes", func(b *testing.B) {
		raw := []byte(topic)
		b.ReportAllocs()
		for b.Loop() {
			_ = ValidateBytes(raw)
		}
	})
	b.Run("ValidatePattern", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ValidatePattern("events.+.lifecycle.#")
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Match("events.+.lifecycle.#", "events.process.lifecycle.start")
	}
}
