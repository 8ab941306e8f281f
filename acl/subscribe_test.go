package acl

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"daemoneye.dev/eventbus/topic"
)

// specTopics are topics of docs/SECURITY.md §3 and some outside it, for checking
// which topics a Filter subscription delivers.
var specTopics = []string{
	"events.process.lifecycle", "events.process.metadata", "events.process.tree", "events.process.integrity",
	"events.process.anomaly", "events.process.batch", "events.network.lifecycle", "events.network.anomaly",
	"events.filesystem.anomaly", "events.performance.metrics", "control.collector.lifecycle",
	"control.collector.config", "control.collector.task.process", "control.collector.task.process.17",
	"control.collector.task.network.3", "control.collector.registration", "control.agent.orchestration",
	"control.agent.policy", "control.health.heartbeat", "control.health.status", "control.health.diagnostics",
	"events", "control", "other.topic", "$sys.stats",
}

func TestCheckSubscribe(t *testing.T) {
	p := Default(0)
	tests := []struct {
		who     string
		id      Identity
		pattern string
		want    Decision
		pass    []string // for Filter: the specTopics it delivers, all others being refused
	}{
		{"anonymous", anonymous, "#", Filter, []string{"events.process.anomaly", "events.network.anomaly",
			"events.filesystem.anomaly", "control.health.heartbeat", "control.health.status", "control.health.diagnostics"}},
		{"anonymous", anonymous, "events.#", Filter, []string{"events.process.anomaly", "events.network.anomaly", "events.filesystem.anomaly"}},
		{"anonymous", anonymous, "events.+.lifecycle", Deny, nil},
		{"anonymous", anonymous, "control.#", Filter, []string{"control.health.heartbeat", "control.health.status", "control.health.diagnostics"}},
		{"anonymous", anonymous, "control.health.#", Allow, nil},
		{"anonymous", anonymous, "events.+.anomaly", Allow, nil},
		{"anonymous", anonymous, "+.+.anomaly", Filter, []string{"events.process.anomaly", "events.network.anomaly", "events.filesystem.anomaly"}},
		{"anonymous", anonymous, "control.collector.#", Deny, nil},
		{"anonymous", anonymous, "control.health.status", Allow, nil},
		{"anonymous", anonymous, "control.collector.config", Deny, nil},
		{"anonymous", anonymous, "$sys.#", Deny, nil},

		{"granted", procmond, "control.collector.task.process.#", Allow, nil},
		{"granted", procmond, "control.collector.+", Filter, []string{"control.collector.lifecycle", "control.collector.config"}},
		{"granted", procmond, "control.#", Filter, []string{"control.collector.lifecycle", "control.collector.config",
			"control.collector.task.process", "control.collector.task.process.17", "control.health.heartbeat",
			"control.health.status", "control.health.diagnostics"}},
		{"granted", procmond, "events.+.lifecycle", Deny, nil},
		{"granted", procmond, "#", Filter, []string{"events.process.anomaly", "events.network.anomaly",
			"events.filesystem.anomaly", "control.collector.lifecycle", "control.collector.config",
			"control.collector.task.process", "control.collector.task.process.17", "control.health.heartbeat",
			"control.health.status", "control.health.diagnostics"}},

		{"not granted", netmond, "events.+.lifecycle", Deny, nil},
		{"not granted", netmond, "events.process.#", Filter, []string{"events.process.anomaly"}},
		{"not granted", netmond, "control.collector.task.process.#", Deny, nil},

		{"agent", agent, "#", Allow, nil},
		{"agent", agent, "events.#", Allow, nil},
		{"agent", agent, "events.+.lifecycle", Allow, nil},
		{"agent", agent, "control.#", Allow, nil},
		{"agent", agent, "$sys.#", Deny, nil}, // '#' grants do not cover "$" topics

		{"invalid", agent, "events.#.x", Deny, nil},
	}
	for _, tt := range tests {
		t.Run(tt.who+"/"+tt.pattern, func(t *testing.T) {
			got, err := p.CheckSubscribe(tt.id, tt.pattern)
			if got != tt.want {
				t.Fatalf("CheckSubscribe(%q) = %v, %v; want %v", tt.pattern, got, err, tt.want)
			}
			if (err != nil) != (got == Deny) || (err != nil && !errors.Is(err, ErrDenied)) {
				t.Errorf("CheckSubscribe(%q) error = %v; want an ErrDenied exactly for Deny", tt.pattern, err)
			}
			if got == Deny && !strings.HasPrefix(err.Error(), "acl: subscribe to "+tt.pattern+" denied: ") {
				t.Errorf("error = %q; want it to name the pattern", err)
			}
			for _, tp := range specTopics {
				if !topic.Match(tt.pattern, tp) {
					continue
				}
				delivered := p.Check(tt.id, Subscribe, tp) == nil
				want := got == Allow || (got == Filter && contains(tt.pass, tp))
				if delivered != want {
					t.Errorf("%s via %s: delivered %v; want %v", tp, tt.pattern, delivered, want)
				}
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestCheckSubscribeExact checks CheckSubscribe against brute force: random
// policies over a small alphabet, every pattern of up to three segments,
// every topic of up to four segments (rules have at most three, so a fourth
// "other" segment covers every longer topic's class).
func TestCheckSubscribeExact(t *testing.T) {
	segs := []string{"a", "b", "+", "#"}
	var patterns []string
	var build func(prefix string, n int)
	build = func(prefix string, n int) {
		for _, s := range segs {
			p := s
			if prefix != "" {
				p = prefix + "." + s
			}
			if topic.ValidatePattern(p) == nil {
				patterns = append(patterns, p)
			}
			if n > 1 && s != "#" {
				build(p, n-1)
			}
		}
	}
	build("", 3)
	var topics []string
	var buildTopics func(prefix string, n int)
	buildTopics = func(prefix string, n int) {
		for _, s := range []string{"a", "b", "c"} {
			tp := s
			if prefix != "" {
				tp = prefix + "." + s
			}
			topics = append(topics, tp)
			if n > 1 {
				buildTopics(tp, n-1)
			}
		}
	}
	buildTopics("", 4)
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return patterns[rng.IntN(len(patterns))] }
	levels := []string{"public", "restricted", "privileged"}
	for i := range 40 {
		var b strings.Builder
		fmt.Fprintf(&b, "default_access: %s\ntopics:\n", levels[rng.IntN(3)])
		used := map[string]bool{}
		for range 1 + rng.IntN(4) {
			if p := pick(); !used[p] {
				used[p] = true
				fmt.Fprintf(&b, "  - {pattern: %q, access: %s}\n", p, levels[rng.IntN(3)])
			}
		}
		b.WriteString("components:\n  c:\n")
		used = map[string]bool{}
		for _, list := range []string{"subscribe", "deny_subscribe"} {
			fmt.Fprintf(&b, "    %s: [", list)
			for range rng.IntN(4) {
				if p := pick(); !used[p] {
					used[p] = true
					fmt.Fprintf(&b, "%q, ", p)
				}
			}
			b.WriteString("]\n")
		}
		p := mustParse(t, b.String())
		for _, id := range []Identity{anonymous, {Component: "c", Registered: true}} {
			for _, pat := range patterns {
				got, _ := p.CheckSubscribe(id, pat)
				var allowed, denied bool
				for _, tp := range topics {
					if topic.Match(pat, tp) {
						if p.Check(id, Subscribe, tp) == nil {
							allowed = true
						} else {
							denied = true
						}
					}
				}
				want := Filter
				switch {
				case !denied:
					want = Allow
				case !allowed:
					want = Deny
				}
				if got != want {
					t.Fatalf("policy %d:\n%s\nCheckSubscribe(%s, %q) = %v; brute force says %v", i, b.String(), id, pat, got, want)
				}
			}
		}
	}
}

// TestCheckSubscribeBudget: a policy whose classes are too many to walk
// gets the always-safe Filter, quickly, even where Deny would be exact.
func TestCheckSubscribeBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("components:\n  c:\n    deny_subscribe: [")
	for pos := range 8 {
		for v := range 6 {
			segs := []string{"+", "+", "+", "+", "+", "+", "+", "+"}
			segs[pos] = fmt.Sprintf("l%d", v)
			fmt.Fprintf(&b, "%q, ", strings.Join(segs, "."))
		}
	}
	b.WriteString("]\n")
	p := mustParse(t, b.String())
	id := Identity{Component: "c", Registered: true}
	x := p.newExplorer(id, "#")
	x.visit(0, x.rules)
	if x.steps <= maxExplore {
		t.Fatalf("explored %d steps; the test wants a policy exceeding %d", x.steps, maxExplore)
	}
	if got, err := p.CheckSubscribe(id, "#"); got != Filter || err != nil {
		t.Errorf("CheckSubscribe(#) = %v, %v; want filter", got, err)
	}
	if err := p.Check(id, Subscribe, "l1.x.x.x.x.x.x.x"); err == nil {
		t.Error("Check(denied topic) = nil")
	}
}
