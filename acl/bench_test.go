package acl

import (
	"fmt"
	"strings"
	"testing"
)

// fiftyRulePolicy has 20 topic rules and a component with 30 grant rules.
func fiftyRulePolicy(tb testing.TB) *Policy {
	var b strings.Builder
	b.WriteString("topics:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "  - {pattern: \"events.c%d.#\", access: restricted}\n", i)
		fmt.Fprintf(&b, "  - {pattern: \"events.c%d.anomaly\", access: public}\n", i)
	}
	b.WriteString("components:\n  c0:\n    publish: [")
	for i := range 10 {
		fmt.Fprintf(&b, "\"events.c%d.#\", \"control.task.c%d.+\", ", i, i)
	}
	b.WriteString("]\n    deny_publish: [")
	for i := range 10 {
		fmt.Fprintf(&b, "events.c%d.secret, ", i)
	}
	b.WriteString("]\n")
	p := mustParse(tb, b.String())
	if n := len(p.Rules()); n != 52 { // 50 + the agent's two implicit rules
		tb.Fatalf("policy has %d rules; want 52", n)
	}
	return p
}

var benchTopics = func() [][]byte {
	var ts [][]byte
	for i := range 64 {
		ts = append(ts, fmt.Appendf(nil, "events.c%d.%s", i%10, []string{"lifecycle", "anomaly", "secret", "x"}[i%4]))
	}
	return ts
}()

func BenchmarkCacheHit(b *testing.B) {
	c := NewCache(fiftyRulePolicy(b), Identity{Component: "c0", Registered: true}, 0)
	topic := []byte("events.c3.lifecycle")
	if err := c.CheckBytes(Publish, topic); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if c.CheckBytes(Publish, topic) != nil {
			b.Fatal("denied")
		}
	}
}

func BenchmarkCacheHitParallel(b *testing.B) {
	c := NewCache(fiftyRulePolicy(b), Identity{Component: "c0", Registered: true}, 0)
	for _, t := range benchTopics {
		c.CheckBytes(Subscribe, t)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.CheckBytes(Subscribe, benchTopics[i%len(benchTopics)])
			i++
		}
	})
}

func BenchmarkCheckUncached(b *testing.B) {
	p := fiftyRulePolicy(b)
	id := Identity{Component: "c0", Registered: true}
	topics := make([]string, len(benchTopics))
	for i, t := range benchTopics {
		topics[i] = string(t)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Check(id, Publish, topics[i%len(topics)])
		i++
	}
}

func BenchmarkCheckAllowedUncached(b *testing.B) {
	p := fiftyRulePolicy(b)
	id := Identity{Component: "c0", Registered: true}
	b.ReportAllocs()
	for b.Loop() {
		if p.Check(id, Publish, "events.c3.lifecycle") != nil {
			b.Fatal("denied")
		}
	}
}

func BenchmarkCheckSubscribe(b *testing.B) {
	p := Default(0)
	for _, pattern := range []string{"#", "events.+.lifecycle", "control.collector.task.process.#"} {
		b.Run(pattern, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.CheckSubscribe(procmond, pattern)
			}
		})
	}
}
